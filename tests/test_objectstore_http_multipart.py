"""
Multipart uploads through the S3 site over a loopback port, on the real
store (with a small minimum part size, so the tests stay fast).
"""

from __future__ import annotations

import base64
import hashlib

from twisted.trial import unittest

from tests.test_objectstore_http_support import NS, S3Harness

PART = 64 * 1024


def etag_of(parts: list[bytes]) -> str:
    joined = b"".join(hashlib.md5(p).digest() for p in parts)
    return f'"{hashlib.md5(joined).hexdigest()}-{len(parts)}"'


class MultipartTests(unittest.TestCase):
    async def setUp(self) -> None:
        self.s3 = await S3Harness(self).start(min_part_size=PART)
        self.bucket = await self.s3.make_bucket(self.s3.alice)

    async def create(self, key: str = "mp", **headers: str) -> str:
        reply = await self.s3.request("POST", f"/{self.bucket}/{key}", query=[("uploads", "")],
                                      user=self.s3.alice, headers=headers)
        self.assertEqual(reply.status, 200, reply.body)
        root = reply.xml()
        self.assertEqual((root.findtext(NS + "Bucket"), root.findtext(NS + "Key")),
                         (self.bucket, key))
        return root.findtext(NS + "UploadId")

    async def part(self, upload_id: str, number: int, data: bytes, key: str = "mp",
                   **headers: str):
        return await self.s3.request("PUT", f"/{self.bucket}/{key}", user=self.s3.alice,
                                     query=[("partNumber", str(number)),
                                            ("uploadId", upload_id)], body=data,
                                     headers=headers)

    async def complete(self, upload_id: str, parts: list[tuple[int, str]], key: str = "mp"):
        body = ("<CompleteMultipartUpload>" + "".join(
            f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>" for n, e in parts)
            + "</CompleteMultipartUpload>").encode()
        return await self.s3.request("POST", f"/{self.bucket}/{key}", user=self.s3.alice,
                                     query=[("uploadId", upload_id)], body=body)

    async def test_whole_upload(self) -> None:
        upload_id = await self.create(**{"Content-Type": "text/x-mp", "x-amz-meta-k": "v"})
        datas = [b"1" * PART, b"2" * PART, b"3" * 10]
        etags = []
        for number, data in enumerate(datas, 1):
            md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
            reply = await self.part(upload_id, number, data, **{"Content-MD5": md5})
            self.assertEqual(reply.status, 200, reply.body)
            self.assertEqual(reply.headers["etag"], f'"{hashlib.md5(data).hexdigest()}"')
            etags.append(reply.headers["etag"])
        listed = await self.s3.request("GET", f"/{self.bucket}/mp", user=self.s3.alice,
                                       query=[("uploadId", upload_id), ("max-parts", "2")])
        root = listed.xml()
        self.assertEqual([e.text for e in root.iter(NS + "PartNumber")], ["1", "2"])
        self.assertEqual((root.findtext(NS + "IsTruncated"),
                          root.findtext(NS + "NextPartNumberMarker")), ("true", "2"))
        rest = await self.s3.request("GET", f"/{self.bucket}/mp", user=self.s3.alice,
                                     query=[("uploadId", upload_id),
                                            ("part-number-marker", "2")])
        self.assertEqual([e.text for e in rest.xml().iter(NS + "PartNumber")], ["3"])
        uploads = await self.s3.request("GET", f"/{self.bucket}", query=[("uploads", "")],
                                        user=self.s3.alice)
        self.assertEqual([e.text for e in uploads.xml().iter(NS + "UploadId")], [upload_id])
        done = await self.complete(upload_id, list(zip((1, 2, 3), etags)))
        self.assertEqual(done.status, 200, done.body)
        self.assertEqual(done.xml().findtext(NS + "ETag"), etag_of(datas))
        got = await self.s3.request("GET", f"/{self.bucket}/mp", user=self.s3.alice)
        self.assertEqual(got.body, b"".join(datas))
        self.assertEqual((got.headers["etag"], got.headers["content-type"],
                          got.headers["x-amz-meta-k"]), (etag_of(datas), "text/x-mp", "v"))
        gone = await self.s3.request("GET", f"/{self.bucket}/mp", user=self.s3.alice,
                                     query=[("uploadId", upload_id)])
        self.assertEqual((gone.status, gone.code), (404, "NoSuchUpload"))

    async def test_part_rules(self) -> None:
        upload_id = await self.create()
        small = await self.part(upload_id, 1, b"small")
        big = await self.part(upload_id, 2, b"b" * PART)
        too_small = await self.complete(upload_id, [(1, small.headers["etag"]),
                                                    (2, big.headers["etag"])])
        self.assertEqual((too_small.status, too_small.code), (400, "EntityTooSmall"))
        order = await self.complete(upload_id, [(2, big.headers["etag"]),
                                                (1, small.headers["etag"])])
        self.assertEqual((order.status, order.code), (400, "InvalidPartOrder"))
        wrong = await self.complete(upload_id, [(1, '"' + "0" * 32 + '"')])
        self.assertEqual((wrong.status, wrong.code), (400, "InvalidPart"))
        for number in ("0", "10001", "x"):
            reply = await self.s3.request("PUT", f"/{self.bucket}/mp", user=self.s3.alice,
                                          query=[("partNumber", number),
                                                 ("uploadId", upload_id)], body=b"x")
            self.assertEqual((reply.status, reply.code), (400, "InvalidArgument"), number)
        empty = await self.s3.request("POST", f"/{self.bucket}/mp", user=self.s3.alice,
                                      query=[("uploadId", upload_id)],
                                      body=b"<CompleteMultipartUpload/>")
        self.assertEqual(empty.code, "MalformedXML")

    async def test_unknown_upload_and_abort(self) -> None:
        reply = await self.part("no-such-upload", 1, b"x")
        self.assertEqual((reply.status, reply.code), (404, "NoSuchUpload"))
        self.assertEqual(reply.xml().findtext("UploadId"), "no-such-upload")
        upload_id = await self.create()
        elsewhere = await self.part(upload_id, 1, b"x", key="other-key")
        self.assertEqual(elsewhere.code, "NoSuchUpload")
        await self.part(upload_id, 1, b"x")
        stranger = await self.s3.request("DELETE", f"/{self.bucket}/mp", user=self.s3.bob,
                                         query=[("uploadId", upload_id)])
        self.assertEqual(stranger.status, 403)
        aborted = await self.s3.request("DELETE", f"/{self.bucket}/mp", user=self.s3.alice,
                                        query=[("uploadId", upload_id)])
        self.assertEqual(aborted.status, 204)
        self.assertEqual((await self.part(upload_id, 2, b"x")).code, "NoSuchUpload")

    async def test_upload_part_copy(self) -> None:
        source = bytes(range(256)) * (PART // 128)
        await self.s3.put(self.s3.alice, self.bucket, "src", source)
        upload_id = await self.create("joined")
        copy = f"/{self.bucket}/src"
        first = await self.s3.request("PUT", f"/{self.bucket}/joined", user=self.s3.alice,
                                      query=[("partNumber", "1"), ("uploadId", upload_id)],
                                      headers={"x-amz-copy-source": copy,
                                               "x-amz-copy-source-range": f"bytes=0-{PART - 1}"})
        self.assertEqual(first.status, 200, first.body)
        first_etag = first.xml().findtext(NS + "ETag")
        self.assertEqual(first_etag, f'"{hashlib.md5(source[:PART]).hexdigest()}"')
        second = await self.s3.request("PUT", f"/{self.bucket}/joined", user=self.s3.alice,
                                       query=[("partNumber", "2"), ("uploadId", upload_id)],
                                       headers={"x-amz-copy-source": copy})
        beyond = await self.s3.request("PUT", f"/{self.bucket}/joined", user=self.s3.alice,
                                       query=[("partNumber", "3"), ("uploadId", upload_id)],
                                       headers={"x-amz-copy-source": copy,
                                                "x-amz-copy-source-range":
                                                    f"bytes=0-{len(source)}"})
        self.assertEqual((beyond.status, beyond.code), (416, "InvalidRange"))
        done = await self.complete(upload_id, [(1, first_etag),
                                               (2, second.xml().findtext(NS + "ETag"))],
                                   key="joined")
        self.assertEqual(done.status, 200, done.body)
        got = await self.s3.request("GET", f"/{self.bucket}/joined", user=self.s3.alice)
        self.assertEqual(got.body, source[:PART] + source)
