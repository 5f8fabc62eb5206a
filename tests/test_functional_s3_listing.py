"""
Functional: ListObjects (v1) and ListObjectsV2 on the running all-in-one:
prefix, delimiter and CommonPrefixes, marker/NextMarker, max-keys and
IsTruncated, continuation-token, start-after, fetch-owner, KeyCount,
encoding-type=url and unicode keys; with boto3, boto 2.49 and raw requests.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from urllib.parse import unquote_plus

from tests.support.s3 import NS, S3Case, url_path

KEYS = [
    "photos/2024/jan/a.jpg", "photos/2024/jan/b.jpg", "photos/2024/feb/c.jpg",
    "photos/2025/d.jpg", "docs/readme.txt", "docs/guide.pdf", "index.html", "zeta",
    "\u00fcn\u00ef/code", "with space/x", "Zulu", "a+plus", "caf\u00e9",
]
ORDERED = sorted(KEYS, key=lambda k: k.encode("utf-8"))  # S3 lists in UTF-8 byte order


class ListingCase(S3Case):
    def setUp(self) -> None:
        super().setUp()
        self.b = self.bucket()
        for key in KEYS:
            self.s3.put_object(Bucket=self.b, Key=key, Body=key.encode())

    def keys(self, page: dict) -> list[str]:
        return [o["Key"] for o in page.get("Contents", [])]

    def prefixes(self, page: dict) -> list[str]:
        return [p["Prefix"] for p in page.get("CommonPrefixes", [])]


class ListObjectsV1Tests(ListingCase):
    def list(self, **kwargs) -> dict:
        return self.s3.list_objects(Bucket=self.b, **kwargs)

    def test_all(self) -> None:
        page = self.list()
        self.assertEqual(self.keys(page), ORDERED)
        self.assertFalse(page["IsTruncated"])
        item = page["Contents"][ORDERED.index("zeta")]
        self.assertEqual(item["Size"], 4)
        self.assertEqual(item["ETag"], self.s3.head_object(Bucket=self.b, Key="zeta")["ETag"])
        self.assertEqual(item["Owner"]["DisplayName"], self.alice.project)

    def test_prefix(self) -> None:
        self.assertEqual(self.keys(self.list(Prefix="photos/2024/")),
                         ["photos/2024/feb/c.jpg", "photos/2024/jan/a.jpg",
                          "photos/2024/jan/b.jpg"])
        self.assertEqual(self.keys(self.list(Prefix="nothing")), [])
        self.assertEqual(self.keys(self.list(Prefix="\u00fcn")), ["\u00fcn\u00ef/code"])

    def test_delimiter(self) -> None:
        page = self.list(Delimiter="/")
        self.assertEqual(self.keys(page), ["Zulu", "a+plus", "caf\u00e9", "index.html", "zeta"])
        self.assertEqual(self.prefixes(page),
                         ["docs/", "photos/", "with space/", "\u00fcn\u00ef/"])
        page = self.list(Prefix="photos/", Delimiter="/")
        self.assertEqual(self.keys(page), [])
        self.assertEqual(self.prefixes(page), ["photos/2024/", "photos/2025/"])
        page = self.list(Prefix="photos/2025/", Delimiter="/")
        self.assertEqual(self.keys(page), ["photos/2025/d.jpg"])

    def test_marker(self) -> None:
        self.assertEqual(self.keys(self.list(Marker="index.html")),
                         ORDERED[ORDERED.index("index.html") + 1:])
        self.assertEqual(self.keys(self.list(Marker="\uffff")), [])

    def test_pages(self) -> None:
        seen: list[str] = []
        marker = ""
        pages = 0
        while True:
            page = self.list(MaxKeys=4, Marker=marker)
            self.assertLessEqual(len(page["Contents"]), 4)
            self.assertEqual(page["MaxKeys"], 4)
            seen.extend(self.keys(page))
            pages += 1
            if not page["IsTruncated"]:
                break
            # S3 sends NextMarker only with a delimiter; clients use the last key
            marker = page.get("NextMarker", page["Contents"][-1]["Key"])
        self.assertEqual(seen, ORDERED)
        self.assertEqual(pages, -(-len(KEYS) // 4))

    def test_pages_with_delimiter(self) -> None:
        entries: list[str] = []
        marker = ""
        while True:
            page = self.list(MaxKeys=2, Delimiter="/", Marker=marker)
            entries.extend(self.keys(page) + self.prefixes(page))
            if not page["IsTruncated"]:
                break
            self.assertIn("NextMarker", page)
            marker = page["NextMarker"]
        self.assertEqual(sorted(entries, key=str.encode),
                         ["Zulu", "a+plus", "caf\u00e9", "docs/", "index.html", "photos/",
                          "with space/", "zeta", "\u00fcn\u00ef/"])

    def test_paginator(self) -> None:
        paginator = self.s3.get_paginator("list_objects")
        keys = [o["Key"] for page in paginator.paginate(Bucket=self.b, PaginationConfig={
            "PageSize": 3}) for o in page.get("Contents", [])]
        self.assertEqual(keys, ORDERED)


class ListObjectsV2Tests(ListingCase):
    def list(self, **kwargs) -> dict:
        return self.s3.list_objects_v2(Bucket=self.b, **kwargs)

    def test_all(self) -> None:
        page = self.list()
        self.assertEqual(self.keys(page), ORDERED)
        self.assertEqual(page["KeyCount"], len(KEYS))
        self.assertFalse(page["IsTruncated"])
        self.assertNotIn("Owner", page["Contents"][0])

    def test_fetch_owner(self) -> None:
        owner = self.s3.list_buckets()["Owner"]
        page = self.list(FetchOwner=True)
        self.assertEqual({tuple(sorted(o["Owner"].items())) for o in page["Contents"]},
                         {tuple(sorted(owner.items()))})

    def test_continuation(self) -> None:
        seen: list[str] = []
        token = None
        while True:
            kwargs = {"ContinuationToken": token} if token else {}
            page = self.list(MaxKeys=5, **kwargs)
            self.assertEqual(page["KeyCount"], len(page["Contents"]))
            self.assertLessEqual(page["KeyCount"], 5)
            if token:
                self.assertEqual(page["ContinuationToken"], token)
            seen.extend(self.keys(page))
            if not page["IsTruncated"]:
                self.assertNotIn("NextContinuationToken", page)
                break
            token = page["NextContinuationToken"]
        self.assertEqual(seen, ORDERED)

    def test_start_after(self) -> None:
        page = self.list(StartAfter="docs/readme.txt")
        self.assertEqual(self.keys(page), ORDERED[ORDERED.index("docs/readme.txt") + 1:])
        self.assertEqual(page["StartAfter"], "docs/readme.txt")
        page = self.list(StartAfter="photos/", Prefix="photos/")
        self.assertEqual(len(self.keys(page)), 4)

    def test_delimiter_key_count(self) -> None:
        page = self.list(Delimiter="/")
        self.assertEqual(page["KeyCount"], 5 + 4)
        page = self.list(Delimiter="/", MaxKeys=2)
        self.assertEqual(page["KeyCount"], 2)
        self.assertTrue(page["IsTruncated"])
        self.assertEqual(self.keys(page) + self.prefixes(page), ["Zulu", "a+plus"])
        everything: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.b, Delimiter="/", PaginationConfig={"PageSize": 2}):
            everything.extend(self.keys(page) + self.prefixes(page))
        self.assertEqual(sorted(everything, key=str.encode),
                         ["Zulu", "a+plus", "caf\u00e9", "docs/", "index.html", "photos/",
                          "with space/", "zeta", "\u00fcn\u00ef/"])

    def test_no_such_bucket(self) -> None:
        self.assertCode("NoSuchBucket", self.s3.list_objects_v2, Bucket=self.b + "-none")


class EncodingTypeTests(ListingCase):
    """encoding-type=url, checked on the wire (boto3 decodes it silently)."""

    def raw_list(self, *query: tuple[str, str]) -> ElementTree.Element:
        answer = self.alice.request("GET", url_path(self.b), query=list(query))
        self.assertEqual(answer.status, 200, answer.body)
        return ElementTree.fromstring(answer.body)

    def check_encoded(self, root: ElementTree.Element, names: list[str]) -> None:
        self.assertEqual(root.findtext(NS + "EncodingType"), "url")
        for raw in names:
            self.assertTrue(raw.isascii() and " " not in raw, raw)
        self.assertEqual([unquote_plus(k) for k in names],
                         [k for k in ORDERED if k.startswith(("w", "\u00fc"))])

    def test_v2(self) -> None:
        root = self.raw_list(("list-type", "2"), ("encoding-type", "url"),
                             ("start-after", "v"))
        self.check_encoded(root, [c.findtext(NS + "Key") for c in root.iter(NS + "Contents")
                                  if not c.findtext(NS + "Key").startswith("z")])
        self.assertEqual(unquote_plus(root.findtext(NS + "StartAfter")), "v")

    def test_v1(self) -> None:
        root = self.raw_list(("encoding-type", "url"), ("marker", "v"))
        self.check_encoded(root, [c.findtext(NS + "Key") for c in root.iter(NS + "Contents")
                                  if not c.findtext(NS + "Key").startswith("z")])

    def test_prefixes_encoded(self) -> None:
        root = self.raw_list(("list-type", "2"), ("encoding-type", "url"),
                             ("delimiter", "/"), ("start-after", "v"))
        prefixes = [p.findtext(NS + "Prefix") for p in root.iter(NS + "CommonPrefixes")]
        self.assertEqual([unquote_plus(p) for p in prefixes], ["with space/", "\u00fcn\u00ef/"])
        self.assertTrue(all(p.isascii() and " " not in p for p in prefixes), prefixes)

    def test_plain_xml_keeps_unicode(self) -> None:
        root = self.raw_list(("list-type", "2"), ("prefix", "\u00fc"))
        self.assertIsNone(root.find(NS + "EncodingType"))
        self.assertEqual([c.findtext(NS + "Key") for c in root.iter(NS + "Contents")],
                         ["\u00fcn\u00ef/code"])

    def test_bad_encoding_type(self) -> None:
        answer = self.alice.request("GET", url_path(self.b),
                                    query=[("list-type", "2"), ("encoding-type", "base64")])
        self.assertEqual((answer.status, answer.code), (400, "InvalidArgument"))


class Boto2ListingTests(ListingCase):
    def test_list(self) -> None:
        bucket = self.alice.boto2_s3().get_bucket(self.b)
        self.assertEqual([k.name for k in bucket.list()], ORDERED)
        self.assertEqual([p.name for p in bucket.list(prefix="photos/", delimiter="/")],
                         ["photos/2024/", "photos/2025/"])
        result = bucket.get_all_keys(max_keys=3)
        self.assertTrue(result.is_truncated)
        self.assertEqual([k.name for k in result], ORDERED[:3])
