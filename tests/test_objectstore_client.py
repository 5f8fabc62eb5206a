"""
Unit tests of nova's S3 client: the requests it writes (URL, signature,
headers, body) checked by the server-side signature code, and how it reads
answers, on a MemoryReactorClock with StringTransports (no network).
"""

from __future__ import annotations

import hashlib
import os
from base64 import b64encode
from typing import Any

from twisted.internet import defer
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial import unittest
from twisted.web.client import Agent
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer

from nova.auth.signer import SignedRequest, identify_s3, verify
from nova.objectstore import errors
from nova.objectstore.client import (DownloadCorrupted, ObjectStoreClient,
                                     ObjectStoreUnavailable, RemoteS3Error)

ACCESS, SECRET = "AKIDEXAMPLE:project", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
NOW = 1_700_000_000.0


def error_xml(code: str, message: str = "no") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
            f"<Message>{message}</Message><Resource>/b/k</Resource>"
            f"<RequestId>req-1</RequestId></Error>").encode()


class Harness:
    """A client on a memory reactor, and the server end of its connections."""

    def __init__(self) -> None:
        self.reactor = MemoryReactorClock()
        self.reactor.advance(NOW)
        self.client = ObjectStoreClient(self.reactor, "http://127.0.0.1:3333", ACCESS, SECRET,
                                        "nova", agent=Agent(self.reactor),
                                        run_in_thread=self._run_now, timeout=30)

    @staticmethod
    async def _run_now(fn: Any, *args: Any) -> Any:
        return fn(*args)

    def call(self, coroutine: Any) -> defer.Deferred[Any]:
        return defer.Deferred.fromCoroutine(coroutine)

    def accept(self) -> tuple[Any, StringTransport]:
        """@return: the protocol and transport of the client's next connection."""
        host, port, factory, _, _ = self.reactor.tcpClients.pop(0)
        assert (host, port) == ("127.0.0.1", 3333)
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        return protocol, transport

    def pump(self) -> None:
        """Let the upload cooperator run until it has nothing left to do."""
        for _ in range(1000):
            if not self.reactor.getDelayedCalls():
                return
            self.reactor.advance(0)

    @staticmethod
    def received(transport: StringTransport) -> tuple[SignedRequest, bytes, dict[str, str]]:
        """@return: the request the client wrote, checked against its signature."""
        head, _, body = transport.value().partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, uri, _ = lines[0].split(" ")
        headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:]]
        req = SignedRequest.from_parts(method, uri, headers, body)
        verify(req, identify_s3(req), SECRET, now=NOW)
        return req, body, {k.lower(): v for k, v in headers}

    @staticmethod
    def answer(protocol: Any, status: str, headers: dict[str, str], body: bytes = b"",
               length: int | None = None) -> None:
        lines = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in headers.items()]
        lines.append(f"Content-Length: {len(body) if length is None else length}")
        protocol.dataReceived(("\r\n".join(lines) + "\r\n\r\n").encode() + body)


class RequestTests(unittest.TestCase):
    """What goes on the wire: path-style URLs, encoding, SigV4 the server accepts."""

    def setUp(self) -> None:
        self.h = Harness()

    def test_signed_head_of_unicode_key(self) -> None:
        d = self.h.call(self.h.client.head_object("bucket", "dir/caf\u00e9 a+b.txt"))
        protocol, transport = self.h.accept()
        req, _, headers = self.h.received(transport)
        self.assertEqual((req.method, req.path), ("HEAD", "/bucket/dir/caf%C3%A9%20a%2Bb.txt"))
        self.assertEqual(headers["host"], "127.0.0.1:3333")
        self.assertIn("/nova/s3/aws4_request", headers["authorization"])
        self.h.answer(protocol, "200 OK", {"ETag": '"abc"', "Content-Type": "text/plain",
                                           "Last-Modified": "Tue, 14 Nov 2023 22:13:20 GMT",
                                           "x-amz-meta-Colour": "blue"}, length=42)
        head = self.successResultOf(d)
        self.assertEqual((head.size, head.etag, head.content_type, head.metadata),
                         (42, "abc", "text/plain", {"colour": "blue"}))
        self.assertEqual(head.last_modified, NOW)

    def test_list_follows_continuation_tokens(self) -> None:
        d = self.h.call(self.h.client.list_objects("bucket", prefix="a/", page_size=2))
        pages = [
            ("<Contents><Key>a/1</Key><Size>1</Size><ETag>\"e1\"</ETag>"
             "<LastModified>2023-11-14T22:13:20.000Z</LastModified></Contents>"
             "<CommonPrefixes><Prefix>a/b/</Prefix></CommonPrefixes>"
             "<IsTruncated>true</IsTruncated>"
             "<NextContinuationToken>tok en/1</NextContinuationToken>"),
            ("<Contents><Key>a/2</Key><Size>2</Size><ETag>\"e2\"</ETag>"
             "<LastModified>2023-11-14T22:13:21.000Z</LastModified></Contents>"
             "<IsTruncated>false</IsTruncated>"),
        ]
        queries = []
        for page in pages:
            protocol, transport = self.h.accept()
            req, _, _ = self.h.received(transport)
            queries.append(dict(req.query))
            body = ('<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                    + page + "</ListBucketResult>").encode()
            self.h.answer(protocol, "200 OK", {}, body)
        listing = self.successResultOf(d)
        self.assertEqual([(o.key, o.size, o.etag) for o in listing.objects],
                         [("a/1", 1, "e1"), ("a/2", 2, "e2")])
        self.assertEqual(listing.common_prefixes, ("a/b/",))
        self.assertEqual(queries[0], {"list-type": "2", "max-keys": "2", "prefix": "a/"})
        self.assertEqual(queries[1]["continuation-token"], "tok en/1")

    def test_put_from_file(self) -> None:
        path = self.mktemp()
        data = os.urandom(700 * 1024)
        with open(path, "wb") as f:
            f.write(data)
        d = self.h.call(self.h.client.put_object_from_file("bucket", "k", path,
                                                           content_type="text/x-test",
                                                           metadata={"origin": "unit"}))
        protocol, transport = self.h.accept()
        self.h.pump()
        req, body, headers = self.h.received(transport)
        self.assertEqual(body, data)
        self.assertEqual(headers["content-md5"], b64encode(hashlib.md5(data).digest()).decode())
        self.assertEqual(headers["x-amz-content-sha256"], hashlib.sha256(data).hexdigest())
        self.assertEqual(headers["content-length"], str(len(data)))
        self.assertEqual((headers["content-type"], headers["x-amz-meta-origin"]),
                         ("text/x-test", "unit"))
        self.h.answer(protocol, "200 OK", {"ETag": f'"{hashlib.md5(data).hexdigest()}"'})
        self.assertEqual(self.successResultOf(d), hashlib.md5(data).hexdigest())

    def test_slow_upload_not_timed_out(self) -> None:
        """The timeout is for silence: an upload that keeps moving may take longer."""
        clock = self.h.reactor

        @implementer(IBodyProducer)
        class Slow:
            length = 5

            def startProducing(self, consumer):  # noqa: N802
                self.done = defer.Deferred()
                for i in range(5):  # a byte every 20 s: 100 s in all
                    clock.callLater(20 * (i + 1), consumer.write, b"x")
                clock.callLater(100, self.done.callback, None)
                return self.done

            def stopProducing(self):  # noqa: N802
                pass

        d = self.h.call(self.h.client.request("PUT", "bucket", "k", body=Slow(),
                                              payload_sha256="UNSIGNED-PAYLOAD"))
        protocol, transport = self.h.accept()
        for _ in range(10):
            clock.advance(10)
        self.assertNoResult(d)
        _, body, _ = self.h.received(transport)
        self.assertEqual(body, b"xxxxx")
        self.h.answer(protocol, "200 OK", {})
        self.assertEqual(self.successResultOf(d).code, 200)
        # then silence is cut after the timeout (within two periods)
        d = self.h.call(self.h.client.request("PUT", "bucket", "k", body=Slow(),
                                              payload_sha256="UNSIGNED-PAYLOAD"))
        self.h.accept()
        for _ in range(16):
            clock.advance(10)
        self.assertIsInstance(self.failureResultOf(d).value, ObjectStoreUnavailable)

    def test_create_bucket_with_acl(self) -> None:
        d = self.h.call(self.h.client.create_bucket("bucket", acl="public-read"))
        protocol, transport = self.h.accept()
        req, _, headers = self.h.received(transport)
        self.assertEqual((req.method, req.path, headers["x-amz-acl"]),
                         ("PUT", "/bucket", "public-read"))
        self.h.answer(protocol, "200 OK", {})
        self.assertIsNone(self.successResultOf(d))


class ErrorTests(unittest.TestCase):
    """S3 error documents become typed errors carrying the code."""

    def setUp(self) -> None:
        self.h = Harness()

    def fail_with(self, status: str, body: bytes) -> Exception:
        d = self.h.call(self.h.client.get_object_bytes("b", "k", 100))
        protocol, _ = self.h.accept()
        self.h.answer(protocol, status, {"Content-Type": "application/xml"}, body)
        return self.failureResultOf(d).value

    def test_known_code(self) -> None:
        error = self.fail_with("404 Not Found", error_xml("NoSuchKey", "gone"))
        self.assertIsInstance(error, errors.NoSuchKey)
        self.assertEqual((error.code, error.status, error.message, error.request_id),
                         ("NoSuchKey", 404, "gone", "req-1"))

    def test_unknown_code(self) -> None:
        error = self.fail_with("403 Forbidden", error_xml("SignatureDoesNotMatch"))
        self.assertIsInstance(error, RemoteS3Error)
        self.assertEqual((error.code, error.status), ("SignatureDoesNotMatch", 403))

    def test_not_xml(self) -> None:
        error = self.fail_with("502 Bad Gateway", b"<html>proxy</html")
        self.assertEqual((error.code, error.status), ("HTTP502", 502))

    def test_head_missing(self) -> None:
        d = self.h.call(self.h.client.head_object("b", "k"))
        protocol, _ = self.h.accept()
        self.h.answer(protocol, "404 Not Found", {})
        self.assertIsInstance(self.failureResultOf(d).value, errors.NoSuchKey)

    def test_bytes_over_limit_not_read(self) -> None:
        d = self.h.call(self.h.client.get_object_bytes("b", "manifest", 10))
        protocol, transport = self.h.accept()
        self.h.answer(protocol, "200 OK", {}, b"x" * 3, length=11)
        self.assertIsInstance(self.failureResultOf(d).value, errors.EntityTooLarge)
        self.h.reactor.advance(0)
        self.assertEqual(transport.producerState, "stopped")  # TCP: the connection closes

    def test_bytes(self) -> None:
        d = self.h.call(self.h.client.get_object_bytes("b", "manifest", 10))
        protocol, _ = self.h.accept()
        self.h.answer(protocol, "200 OK", {}, b"<manifest>")
        self.assertEqual(self.successResultOf(d), b"<manifest>")

    def test_no_answer(self) -> None:
        d = self.h.call(self.h.client.head_object("b", "k"))
        self.h.accept()
        self.h.reactor.advance(31)
        self.assertIsInstance(self.failureResultOf(d).value, ObjectStoreUnavailable)

    def test_connection_refused(self) -> None:
        d = self.h.call(self.h.client.head_object("b", "k"))
        _, _, factory, _, _ = self.h.reactor.tcpClients.pop(0)
        factory.clientConnectionFailed(None, ConnectionRefusedError())
        self.h.reactor.advance(1)
        error = self.failureResultOf(d).value
        self.assertIsInstance(error, ObjectStoreUnavailable)
        self.assertEqual(error.code, "ServiceUnavailable")


class DownloadTests(unittest.TestCase):
    """Downloads go to a temporary file, renamed only once complete and checked."""

    def setUp(self) -> None:
        self.h = Harness()
        self.dir = self.mktemp()
        os.makedirs(self.dir)
        self.target = os.path.join(self.dir, "image")
        self.data = os.urandom(300 * 1024)

    def start(self, expected_etag: str | None = None) -> tuple[defer.Deferred, Any, Any]:
        d = self.h.call(self.h.client.get_object_to_file("b", "k", self.target, expected_etag))
        protocol, transport = self.h.accept()
        return d, protocol, transport

    def test_complete(self) -> None:
        etag = hashlib.md5(self.data).hexdigest()
        d, protocol, transport = self.start(expected_etag=etag)
        _, _, headers = self.h.received(transport)
        self.assertEqual(headers["if-match"], f'"{etag}"')
        self.h.answer(protocol, "200 OK", {"ETag": f'"{etag}"'}, self.data[:1000],
                      length=len(self.data))
        # half-way: nothing at the target yet, a temporary file beside it
        self.assertFalse(os.path.exists(self.target))
        self.assertEqual(len(os.listdir(self.dir)), 1)
        protocol.dataReceived(self.data[1000:])
        self.assertEqual(self.successResultOf(d).etag, etag)
        with open(self.target, "rb") as f:
            self.assertEqual(f.read(), self.data)
        self.assertEqual(os.listdir(self.dir), ["image"])

    def test_multipart_etag_not_an_md5(self) -> None:
        d, protocol, _ = self.start()
        self.h.answer(protocol, "200 OK", {"ETag": '"0123456789abcdef0123456789abcdef-3"'},
                      self.data)
        self.assertEqual(self.successResultOf(d).size, len(self.data))

    def test_corrupted(self) -> None:
        with open(self.target, "wb") as f:
            f.write(b"older version")
        d, protocol, _ = self.start()
        self.h.answer(protocol, "200 OK", {"ETag": '"00000000000000000000000000000000"'},
                      self.data)
        self.assertIsInstance(self.failureResultOf(d).value, DownloadCorrupted)
        self.assertEqual(os.listdir(self.dir), ["image"])
        with open(self.target, "rb") as f:
            self.assertEqual(f.read(), b"older version")

    def test_cut_short(self) -> None:
        d, protocol, transport = self.start()
        self.h.answer(protocol, "200 OK", {"ETag": '"x"'}, self.data[:1000],
                      length=len(self.data))
        protocol.connectionLost(ConnectionDone())
        self.assertIsInstance(self.failureResultOf(d).value, ObjectStoreUnavailable)
        self.assertEqual(os.listdir(self.dir), [])

    def test_stalled(self) -> None:
        d, protocol, transport = self.start()
        self.h.answer(protocol, "200 OK", {"ETag": '"x"'}, self.data[:1000],
                      length=len(self.data))
        self.h.reactor.advance(30)
        self.assertNoResult(d)  # data came within the last period
        self.h.reactor.advance(30)
        self.assertIsInstance(self.failureResultOf(d).value, ObjectStoreUnavailable)
        self.assertEqual(transport.producerState, "stopped")
        self.assertEqual(os.listdir(self.dir), [])

    def test_precondition_failed(self) -> None:
        d, protocol, _ = self.start(expected_etag="abc")
        self.h.answer(protocol, "412 Precondition Failed", {}, error_xml("PreconditionFailed"))
        self.assertIsInstance(self.failureResultOf(d).value, errors.PreconditionFailed)
        self.assertEqual(os.listdir(self.dir), [])

