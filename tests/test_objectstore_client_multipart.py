"""
Unit tests of the S3 client's multipart upload methods (the requests they
write, checked by the server-side signature code, and how they read the
answers), on a MemoryReactorClock with StringTransports, as
L{tests.test_objectstore_client} does for the rest of the client.
"""

from __future__ import annotations

import hashlib
from base64 import b64encode
from xml.etree import ElementTree

from twisted.trial import unittest

from nova.objectstore import errors
from tests.test_objectstore_client import Harness, error_xml

NS = "http://s3.amazonaws.com/doc/2006-03-01/"


class MultipartTests(unittest.TestCase):
    def setUp(self) -> None:
        self.h = Harness()

    def test_create(self) -> None:
        d = self.h.call(self.h.client.create_multipart_upload(
            "snaps", "vol/snap-1", content_type="application/x-test", metadata={"size": "42"}))
        protocol, transport = self.h.accept()
        req, body, headers = self.h.received(transport)
        self.assertEqual((req.method, req.path, req.query), ("POST", "/snaps/vol/snap-1",
                                                             (("uploads", ""),)))
        self.assertEqual((headers["content-type"], headers["x-amz-meta-size"]),
                         ("application/x-test", "42"))
        self.assertEqual(body, b"")
        self.h.answer(protocol, "200 OK", {}, (
            f'<InitiateMultipartUploadResult xmlns="{NS}"><Bucket>snaps</Bucket>'
            "<Key>vol/snap-1</Key><UploadId>up-1/x</UploadId>"
            "</InitiateMultipartUploadResult>").encode())
        self.assertEqual(self.successResultOf(d), "up-1/x")

    def test_create_no_bucket(self) -> None:
        d = self.h.call(self.h.client.create_multipart_upload("snaps", "k"))
        protocol, _ = self.h.accept()
        self.h.answer(protocol, "404 Not Found", {}, error_xml("NoSuchBucket"))
        self.assertIsInstance(self.failureResultOf(d).value, errors.NoSuchBucket)

    def test_upload_part(self) -> None:
        data = bytes(range(256)) * 3000
        md5 = hashlib.md5(data).hexdigest()
        d = self.h.call(self.h.client.upload_part("snaps", "k", "up 1", 7, data))
        protocol, transport = self.h.accept()
        self.h.pump()
        req, body, headers = self.h.received(transport)
        self.assertEqual((req.method, req.path), ("PUT", "/snaps/k"))
        self.assertEqual(sorted(req.query), [("partNumber", "7"), ("uploadId", "up 1")])
        self.assertEqual(body, data)
        self.assertEqual(headers["content-md5"], b64encode(hashlib.md5(data).digest()).decode())
        self.assertEqual(headers["x-amz-content-sha256"], hashlib.sha256(data).hexdigest())
        self.h.answer(protocol, "200 OK", {"ETag": f'"{md5}"'})
        self.assertEqual(self.successResultOf(d), md5)

    def test_upload_part_other_etag(self) -> None:
        d = self.h.call(self.h.client.upload_part("snaps", "k", "up", 1, b"part"))
        protocol, _ = self.h.accept()
        self.h.pump()
        self.h.answer(protocol, "200 OK", {"ETag": '"' + "0" * 32 + '"'})
        self.assertIsInstance(self.failureResultOf(d).value, errors.BadDigest)

    def test_upload_part_no_upload(self) -> None:
        d = self.h.call(self.h.client.upload_part("snaps", "k", "up", 1, b"part"))
        protocol, _ = self.h.accept()
        self.h.pump()
        self.h.answer(protocol, "404 Not Found", {}, error_xml("NoSuchUpload"))
        self.assertIsInstance(self.failureResultOf(d).value, errors.NoSuchUpload)

    def test_complete(self) -> None:
        d = self.h.call(self.h.client.complete_multipart_upload(
            "snaps", "k", "up", [(1, "aa"), (2, "b<b")]))
        protocol, transport = self.h.accept()
        self.h.pump()
        req, body, headers = self.h.received(transport)
        self.assertEqual((req.method, list(req.query)), ("POST", [("uploadId", "up")]))
        self.assertEqual(headers["x-amz-content-sha256"], hashlib.sha256(body).hexdigest())
        root = ElementTree.fromstring(body)
        self.assertEqual([(p.findtext("PartNumber"), p.findtext("ETag"))
                          for p in root.findall("Part")], [("1", '"aa"'), ("2", '"b<b"')])
        self.h.answer(protocol, "200 OK", {}, (
            f'<CompleteMultipartUploadResult xmlns="{NS}"><Location>http://x/snaps/k'
            '</Location><Bucket>snaps</Bucket><Key>k</Key><ETag>"abc-2"</ETag>'
            "</CompleteMultipartUploadResult>").encode())
        self.assertEqual(self.successResultOf(d), "abc-2")

    def test_complete_error_after_200(self) -> None:
        """S3 may fail a completion in a 200 answer's body: that is an error too."""
        d = self.h.call(self.h.client.complete_multipart_upload("snaps", "k", "up", [(1, "a")]))
        protocol, _ = self.h.accept()
        self.h.pump()
        self.h.answer(protocol, "200 OK", {}, error_xml("InternalError", "try again"))
        error = self.failureResultOf(d).value
        self.assertEqual((error.code, error.message), ("InternalError", "try again"))

    def test_complete_refused(self) -> None:
        d = self.h.call(self.h.client.complete_multipart_upload("snaps", "k", "up", [(1, "a")]))
        protocol, _ = self.h.accept()
        self.h.pump()
        self.h.answer(protocol, "400 Bad Request", {}, error_xml("EntityTooSmall"))
        self.assertIsInstance(self.failureResultOf(d).value, errors.EntityTooSmall)

    def test_abort(self) -> None:
        d = self.h.call(self.h.client.abort_multipart_upload("snaps", "k", "up"))
        protocol, transport = self.h.accept()
        req, _, _ = self.h.received(transport)
        self.assertEqual((req.method, req.path, req.query),
                         ("DELETE", "/snaps/k", (("uploadId", "up"),)))
        self.h.answer(protocol, "204 No Content", {})
        self.assertIsNone(self.successResultOf(d))

    def test_abort_gone(self) -> None:
        """An upload already aborted or completed is not an error."""
        d = self.h.call(self.h.client.abort_multipart_upload("snaps", "k", "up"))
        protocol, _ = self.h.accept()
        self.h.answer(protocol, "404 Not Found", {}, error_xml("NoSuchUpload"))
        self.assertIsNone(self.successResultOf(d))
