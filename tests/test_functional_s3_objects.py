"""
Functional: objects on the running all-in-one's object store: put and get with
their headers, Content-MD5, ranges, conditional requests, response overrides,
delete and multi-delete, copy, object ACLs and anonymous reads, key rules;
driven with boto3 and boto 2.49 (and plain urllib as the anonymous user).
"""

from __future__ import annotations

import datetime
import gzip
import os
import urllib.error
import urllib.request

from tests.support.s3 import (S3Case, bucket_name, error_code, md5_b64, md5_hex,
                              url_path)

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
UTC = datetime.timezone.utc
PAST = datetime.datetime(2000, 1, 1, tzinfo=UTC)


def anonymous_get(url: str, method: str = "GET") -> tuple[int, bytes]:
    """@return: status and body of a request without any authentication."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method)) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class PutGetTests(S3Case):
    """What is put comes back: the body and every header S3 keeps."""

    def test_headers_and_metadata_round_trip(self) -> None:
        b = self.bucket()
        body = gzip.compress(b"<p>hello</p>" * 100)
        expires = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
        put = self.s3.put_object(
            Bucket=b, Key="doc.html", Body=body, ContentType="text/html; charset=utf-8",
            CacheControl="max-age=60", ContentDisposition='attachment; filename="doc.html"',
            ContentEncoding="gzip", ContentLanguage="en", Expires=expires,
            Metadata={"colour": "blue", "Mixed-Case": "Some Value"})
        self.assertEqual(put["ETag"], f'"{md5_hex(body)}"')
        for answer in (self.s3.head_object(Bucket=b, Key="doc.html"),
                       self.s3.get_object(Bucket=b, Key="doc.html")):
            headers = answer["ResponseMetadata"]["HTTPHeaders"]
            self.assertEqual(answer["ContentType"], "text/html; charset=utf-8")
            self.assertEqual(answer["CacheControl"], "max-age=60")
            self.assertEqual(answer["ContentDisposition"], 'attachment; filename="doc.html"')
            self.assertEqual(answer["ContentEncoding"], "gzip")
            self.assertEqual(answer["ContentLanguage"], "en")
            self.assertEqual(headers["expires"], "Wed, 02 Jan 2030 03:04:05 GMT")
            self.assertEqual(answer["Metadata"], {"colour": "blue", "mixed-case": "Some Value"})
            self.assertEqual(answer["ContentLength"], len(body))
            self.assertEqual(answer["ETag"], put["ETag"])
            self.assertEqual(headers.get("accept-ranges"), "bytes")
            self.assertLess(abs(answer["LastModified"] - datetime.datetime.now(UTC)),
                            datetime.timedelta(minutes=5))
        got = self.s3.get_object(Bucket=b, Key="doc.html")
        self.assertEqual(got["Body"].read(), body)

    def test_default_content_type_and_empty_body(self) -> None:
        b = self.bucket()
        self.s3.put_object(Bucket=b, Key="empty", Body=b"")
        got = self.s3.get_object(Bucket=b, Key="empty")
        self.assertEqual(got["Body"].read(), b"")
        self.assertEqual(got["ETag"], '"d41d8cd98f00b204e9800998ecf8427e"')
        self.assertEqual(got["ContentLength"], 0)
        self.assertIn(got["ContentType"], ("binary/octet-stream", "application/octet-stream"))

    def test_overwrite(self) -> None:
        b = self.bucket()
        self.s3.put_object(Bucket=b, Key="k", Body=b"first", Metadata={"v": "1"})
        self.s3.put_object(Bucket=b, Key="k", Body=b"second")
        got = self.s3.get_object(Bucket=b, Key="k")
        self.assertEqual(got["Body"].read(), b"second")
        self.assertEqual(got["Metadata"], {})

    def test_content_md5(self) -> None:
        b = self.bucket()
        self.s3.put_object(Bucket=b, Key="good", Body=b"data", ContentMD5=md5_b64(b"data"))
        self.assertEqual(self.s3.get_object(Bucket=b, Key="good")["Body"].read(), b"data")
        self.assertCode("BadDigest", self.s3.put_object, Bucket=b, Key="bad", Body=b"data",
                        ContentMD5=md5_b64(b"other"))
        self.assertCode("InvalidDigest", self.s3.put_object, Bucket=b, Key="bad",
                        Body=b"data", ContentMD5="not base64!")
        self.assertCode("InvalidDigest", self.s3.put_object, Bucket=b, Key="bad",
                        Body=b"data", ContentMD5="c2hvcnQ=")
        self.assertCode("404", self.s3.head_object, Bucket=b, Key="bad")

    def test_missing(self) -> None:
        b = self.bucket()
        self.assertCode("NoSuchKey", self.s3.get_object, Bucket=b, Key="nothing")
        self.assertCode("404", self.s3.head_object, Bucket=b, Key="nothing")
        self.assertCode("NoSuchBucket", self.s3.get_object, Bucket=bucket_name(), Key="x")
        answer = self.alice.request("GET", url_path(b, "nothing"))
        self.assertEqual((answer.status, answer.code), (404, "NoSuchKey"))
        self.assertIn(b"<Resource>", answer.body)
        self.assertIn(b"<RequestId>", answer.body)

    def test_delete(self) -> None:
        b = self.bucket()
        self.s3.put_object(Bucket=b, Key="k", Body=b"x")
        answer = self.s3.delete_object(Bucket=b, Key="k")
        self.assertEqual(answer["ResponseMetadata"]["HTTPStatusCode"], 204)
        self.assertCode("NoSuchKey", self.s3.get_object, Bucket=b, Key="k")
        # deleting a missing key is not an error in S3
        answer = self.s3.delete_object(Bucket=b, Key="k")
        self.assertEqual(answer["ResponseMetadata"]["HTTPStatusCode"], 204)

    def test_delete_objects(self) -> None:
        b = self.bucket()
        for key in ("a", "b", "c", "d"):
            self.s3.put_object(Bucket=b, Key=key, Body=key.encode())
        loud = self.s3.delete_objects(Bucket=b, Delete={
            "Objects": [{"Key": "a"}, {"Key": "missing"}]})
        self.assertEqual(sorted(d["Key"] for d in loud["Deleted"]), ["a", "missing"])
        self.assertNotIn("Errors", loud)
        quiet = self.s3.delete_objects(Bucket=b, Delete={
            "Objects": [{"Key": "b"}, {"Key": "c"}], "Quiet": True})
        self.assertNotIn("Deleted", quiet)
        self.assertNotIn("Errors", quiet)
        self.assertEqual([o["Key"] for o in self.s3.list_objects_v2(Bucket=b)["Contents"]],
                         ["d"])

    def test_delete_objects_malformed(self) -> None:
        b = self.bucket()
        body = b"<Delete><Object><Key>a</Key></Object"
        answer = self.alice.request("POST", url_path(b), query=[("delete", "")], body=body,
                                    headers={"Content-MD5": md5_b64(body)})
        self.assertEqual((answer.status, answer.code), (400, "MalformedXML"))


class RangeTests(S3Case):
    """Range: first-last, open (first-), suffix (-n), clipped, unsatisfiable."""

    def setUp(self) -> None:
        super().setUp()
        self.b = self.bucket()
        self.data = os.urandom(1000)
        self.s3.put_object(Bucket=self.b, Key="r", Body=self.data)

    def get(self, spec: str) -> dict:
        return self.s3.get_object(Bucket=self.b, Key="r", Range=spec)

    def test_ranges(self) -> None:
        cases = {
            "bytes=0-9": (0, 9),
            "bytes=990-": (990, 999),
            "bytes=-10": (990, 999),
            "bytes=995-2000": (995, 999),
            "bytes=0-": (0, 999),
            "bytes=-2000": (0, 999),
        }
        for spec, (first, last) in cases.items():
            got = self.get(spec)
            self.assertEqual(got["ResponseMetadata"]["HTTPStatusCode"], 206, spec)
            self.assertEqual(got["ContentRange"], f"bytes {first}-{last}/1000", spec)
            self.assertEqual(got["ContentLength"], last - first + 1, spec)
            self.assertEqual(got["Body"].read(), self.data[first:last + 1], spec)

    def test_unsatisfiable(self) -> None:
        self.assertCode("InvalidRange", self.get, "bytes=1000-1010")
        answer = self.alice.request("GET", url_path(self.b, "r"),
                                    headers={"Range": "bytes=5000-"})
        self.assertEqual((answer.status, answer.code), (416, "InvalidRange"))

    def test_head_range(self) -> None:
        head = self.s3.head_object(Bucket=self.b, Key="r", Range="bytes=10-19")
        self.assertEqual(head["ResponseMetadata"]["HTTPStatusCode"], 206)
        self.assertEqual(head["ContentLength"], 10)


class ConditionalTests(S3Case):
    """If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since."""

    def setUp(self) -> None:
        super().setUp()
        self.b = self.bucket()
        self.etag = self.s3.put_object(Bucket=self.b, Key="c", Body=b"conditional")["ETag"]
        self.modified = self.s3.head_object(Bucket=self.b, Key="c")["LastModified"]
        self.before = self.modified - datetime.timedelta(days=1)

    def get(self, **kwargs) -> dict:
        return self.s3.get_object(Bucket=self.b, Key="c", **kwargs)

    def test_if_match(self) -> None:
        self.assertEqual(self.get(IfMatch=self.etag)["Body"].read(), b"conditional")
        self.assertEqual(self.get(IfMatch=self.etag.strip('"'))["ETag"], self.etag)
        self.assertCode("PreconditionFailed", self.get, IfMatch='"0123456789abcdef"')
        self.assertCode("412", self.s3.head_object, Bucket=self.b, Key="c",
                        IfMatch='"0123456789abcdef"')

    def test_if_none_match(self) -> None:
        self.assertCode("304", self.get, IfNoneMatch=self.etag)
        self.assertCode("304", self.s3.head_object, Bucket=self.b, Key="c",
                        IfNoneMatch=self.etag)
        self.assertEqual(self.get(IfNoneMatch='"0123"')["ETag"], self.etag)

    def test_if_modified_since(self) -> None:
        self.assertCode("304", self.get, IfModifiedSince=self.modified)
        self.assertCode("304", self.s3.head_object, Bucket=self.b, Key="c",
                        IfModifiedSince=self.modified)
        self.assertEqual(self.get(IfModifiedSince=self.before)["ETag"], self.etag)

    def test_if_unmodified_since(self) -> None:
        self.assertCode("PreconditionFailed", self.get, IfUnmodifiedSince=self.before)
        self.assertEqual(self.get(IfUnmodifiedSince=self.modified)["ETag"], self.etag)

    def test_combinations(self) -> None:
        # S3 (RFC 7232 6): If-Match true wins over If-Unmodified-Since false,
        # If-None-Match false wins over If-Modified-Since true
        self.assertEqual(self.get(IfMatch=self.etag, IfUnmodifiedSince=self.before)["ETag"],
                         self.etag)
        self.assertCode("304", self.get, IfNoneMatch=self.etag, IfModifiedSince=self.before)


class ResponseOverrideTests(S3Case):
    """response-* query parameters set the answer's headers."""

    def test_overrides(self) -> None:
        b = self.bucket()
        self.s3.put_object(Bucket=b, Key="o", Body=b"x", ContentType="text/plain")
        got = self.s3.get_object(
            Bucket=b, Key="o", ResponseContentType="application/json",
            ResponseContentLanguage="fr", ResponseCacheControl="no-cache",
            ResponseContentDisposition="attachment; filename=o.json",
            ResponseContentEncoding="identity",
            ResponseExpires=datetime.datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC))
        headers = got["ResponseMetadata"]["HTTPHeaders"]
        self.assertEqual(got["ContentType"], "application/json")
        self.assertEqual(got["ContentLanguage"], "fr")
        self.assertEqual(got["CacheControl"], "no-cache")
        self.assertEqual(got["ContentDisposition"], "attachment; filename=o.json")
        self.assertEqual(got["ContentEncoding"], "identity")
        self.assertEqual(headers["expires"], "Tue, 06 May 2031 07:08:09 GMT")
        # the stored object is unchanged
        self.assertEqual(self.s3.head_object(Bucket=b, Key="o")["ContentType"], "text/plain")


class CopyTests(S3Case):
    """CopyObject: COPY and REPLACE metadata, conditional copies, errors."""

    def setUp(self) -> None:
        super().setUp()
        self.b = self.bucket()
        self.put = self.s3.put_object(Bucket=self.b, Key="src é", Body=b"source body",
                                      ContentType="text/plain", Metadata={"a": "1"},
                                      CacheControl="max-age=5")
        self.source = {"Bucket": self.b, "Key": "src é"}

    def test_copy_metadata(self) -> None:
        copied = self.s3.copy_object(Bucket=self.b, Key="dst", CopySource=self.source)
        self.assertEqual(copied["CopyObjectResult"]["ETag"], self.put["ETag"])
        head = self.s3.head_object(Bucket=self.b, Key="dst")
        self.assertEqual((head["ContentType"], head["Metadata"], head["CacheControl"]),
                         ("text/plain", {"a": "1"}, "max-age=5"))
        self.assertEqual(self.s3.get_object(Bucket=self.b, Key="dst")["Body"].read(),
                         b"source body")

    def test_replace_metadata(self) -> None:
        self.s3.copy_object(Bucket=self.b, Key="dst", CopySource=self.source,
                            MetadataDirective="REPLACE", Metadata={"b": "2"},
                            ContentType="application/json")
        head = self.s3.head_object(Bucket=self.b, Key="dst")
        self.assertEqual((head["ContentType"], head["Metadata"]),
                         ("application/json", {"b": "2"}))
        self.assertNotIn("CacheControl", head)

    def test_replace_in_place(self) -> None:
        self.s3.copy_object(Bucket=self.b, Key="src é", CopySource=self.source,
                            MetadataDirective="REPLACE", Metadata={"c": "3"})
        self.assertEqual(self.s3.head_object(Bucket=self.b, Key="src é")["Metadata"],
                         {"c": "3"})

    def test_to_another_bucket(self) -> None:
        other = self.bucket()
        self.s3.copy_object(Bucket=other, Key="copy", CopySource=self.source)
        self.assertEqual(self.s3.get_object(Bucket=other, Key="copy")["Body"].read(),
                         b"source body")

    def test_conditional_copy(self) -> None:
        etag = self.put["ETag"]
        modified = self.s3.head_object(**self.source)["LastModified"]
        refused = [
            {"CopySourceIfMatch": '"0123456789"'},
            {"CopySourceIfNoneMatch": etag},
            {"CopySourceIfModifiedSince": modified},
            {"CopySourceIfUnmodifiedSince": PAST},
        ]
        for condition in refused:
            self.assertEqual(error_code(self.s3.copy_object, Bucket=self.b, Key="dst",
                                        CopySource=self.source, **condition),
                             "PreconditionFailed", condition)
        self.assertCode("404", self.s3.head_object, Bucket=self.b, Key="dst")
        self.s3.copy_object(Bucket=self.b, Key="dst", CopySource=self.source,
                            CopySourceIfMatch=etag, CopySourceIfUnmodifiedSince=modified)
        self.assertEqual(self.s3.head_object(Bucket=self.b, Key="dst")["ETag"], etag)

    def test_missing_source(self) -> None:
        self.assertCode("NoSuchKey", self.s3.copy_object, Bucket=self.b, Key="dst",
                        CopySource={"Bucket": self.b, "Key": "nothing"})
        self.assertCode("NoSuchBucket", self.s3.copy_object, Bucket=self.b, Key="dst",
                        CopySource={"Bucket": bucket_name(), "Key": "x"})


class ObjectAclTests(S3Case):
    """Canned object ACLs; anonymous reads of public-read objects only."""

    def url(self, b: str, key: str) -> str:
        return self.alice.endpoint + url_path(b, key)

    def test_public_read_object(self) -> None:
        b = self.bucket()
        self.s3.put_object(Bucket=b, Key="public file", Body=b"for all", ACL="public-read")
        self.assertEqual(anonymous_get(self.url(b, "public file")), (200, b"for all"))
        self.assertEqual(anonymous_get(self.url(b, "public file"), "HEAD"), (200, b""))
        acl = self.s3.get_object_acl(Bucket=b, Key="public file")
        owner = self.s3.list_buckets()["Owner"]
        self.assertEqual(acl["Owner"], owner)
        self.assertIn({"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"},
                      acl["Grants"])
        self.s3.put_object_acl(Bucket=b, Key="public file", ACL="private")
        status, body = anonymous_get(self.url(b, "public file"))
        self.assertEqual(status, 403)
        self.assertIn(b"<Code>AccessDenied</Code>", body)
        self.assertEqual(len(self.s3.get_object_acl(Bucket=b, Key="public file")["Grants"]), 1)

    def test_private_by_default(self) -> None:
        b = self.bucket()
        self.s3.put_object(Bucket=b, Key="private", Body=b"mine")
        status, body = anonymous_get(self.url(b, "private"))
        self.assertEqual(status, 403)
        self.assertIn(b"<Code>AccessDenied</Code>", body)
        status, _ = anonymous_get(self.url(b, "missing"))
        self.assertEqual(status, 403)
        status, body = anonymous_get(self.alice.endpoint + url_path(b))
        self.assertEqual(status, 403)

    def test_authenticated_read(self) -> None:
        b = self.bucket()
        self.s3.put_object(Bucket=b, Key="members", Body=b"signed only",
                           ACL="authenticated-read")
        self.assertEqual(self.bob.s3.get_object(Bucket=b, Key="members")["Body"].read(),
                         b"signed only")
        self.assertEqual(anonymous_get(self.url(b, "members"))[0], 403)

    def test_anonymous_write_refused(self) -> None:
        b = self.bucket(acl="public-read")
        request = urllib.request.Request(self.url(b, "drop"), data=b"x", method="PUT")
        with self.assertRaises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request)
        self.assertEqual(caught.exception.code, 403)
        self.assertCode("404", self.s3.head_object, Bucket=b, Key="drop")


class KeyTests(S3Case):
    """Keys are any UTF-8 up to 1024 bytes, and never escape the store."""

    def test_unusual_keys(self) -> None:
        b = self.bucket()
        keys = ["ünïcødé/файл 名前.txt", "a+b=c&d", "100% sure?", "#hash", "a//b", "a/b",
                "trailing/", " leading space", "~tilde", "emoji \U0001F600"]
        for i, key in enumerate(keys):
            self.s3.put_object(Bucket=b, Key=key, Body=str(i).encode())
        for i, key in enumerate(keys):
            self.assertEqual(self.s3.get_object(Bucket=b, Key=key)["Body"].read(),
                             str(i).encode(), key)
        listed = [o["Key"] for o in self.s3.list_objects_v2(Bucket=b)["Contents"]]
        self.assertEqual(listed, sorted(keys, key=lambda k: k.encode()))

    def test_key_length(self) -> None:
        b = self.bucket()
        longest = "é" * 512  # 1024 bytes of UTF-8
        self.s3.put_object(Bucket=b, Key=longest, Body=b"long")
        self.assertEqual(self.s3.get_object(Bucket=b, Key=longest)["Body"].read(), b"long")
        self.assertCode("KeyTooLongError", self.s3.put_object, Bucket=b, Key=longest + "x",
                        Body=b"too long")

    def test_dot_segments_stay_keys(self) -> None:
        b = self.bucket()
        # sent raw: some HTTP clients would resolve the dots before sending
        answer = self.alice.request("PUT", f"/{b}/../../escape", body=b"trapped")
        self.assertEqual(answer.status, 200, answer.body)
        self.assertEqual(self.alice.request("GET", f"/{b}/../../escape").body, b"trapped")
        self.assertEqual([o["Key"] for o in self.s3.list_objects_v2(Bucket=b)["Contents"]],
                         ["../../escape"])
        found = [os.path.join(d, f) for d, _, files in os.walk(self.cloud.base)
                 for f in files if f == "escape"]
        self.assertEqual(found, [])


class Boto2ObjectTests(S3Case):
    """boto 2.49 keys: contents, metadata, copy, listing, presigned SigV2 URL."""

    def test_keys(self) -> None:
        conn = self.alice.boto2_s3()
        bucket = conn.get_bucket(self.bucket())
        key = bucket.new_key("dir/file.txt")
        key.set_metadata("colour", "red")
        key.set_contents_from_string("boto2 body", headers={"Content-Type": "text/plain"})
        fetched = bucket.get_key("dir/file.txt")
        self.assertEqual(fetched.get_metadata("colour"), "red")
        self.assertEqual(fetched.content_type, "text/plain")
        self.assertEqual(fetched.size, len("boto2 body"))
        self.assertEqual(fetched.get_contents_as_string(), b"boto2 body")
        bucket.copy_key("dir/copy.txt", bucket.name, "dir/file.txt")
        self.assertEqual(bucket.get_key("dir/copy.txt").get_metadata("colour"), "red")
        self.assertEqual(sorted(k.name for k in bucket.list(prefix="dir/")),
                         ["dir/copy.txt", "dir/file.txt"])
        self.assertEqual([p.name for p in bucket.list(delimiter="/")], ["dir/"])
        url = fetched.generate_url(300)
        self.assertIn("Signature=", url)
        self.assertEqual(anonymous_get(url), (200, b"boto2 body"))
        bucket.delete_key("dir/copy.txt")
        self.assertIsNone(bucket.get_key("dir/copy.txt"))

