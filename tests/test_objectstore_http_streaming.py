"""
Upload bodies stream into the store, after authentication, and are never
held whole; refused uploads are answered before their body is read. The
real site, store (inline runner), datastore (in memory) and auth manager,
driven byte by byte through a StringTransport with a Clock: no network.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from twisted.internet import defer, task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from nova.auth.directory import EmbeddedDirectory
from nova.auth.ldapdriver import LdapDriver
from nova.auth.manager import AuthManager
from nova.auth.signer import STREAMING_PAYLOAD, ChunkSigner, Scope, sign_v4_headers, signing_key
from nova.config import ObjectStoreConfig
from nova.datastore.memory import MemoryDatastore
from nova.objectstore.errors import NoSuchKey
from nova.objectstore.http import build_site
from nova.objectstore.http.request import PREADMIT_LIMIT
from nova.objectstore.interfaces import Owner
from nova.objectstore.store import FilesystemObjectStore, inline_runner
from tests.test_objectstore_http_support import aws_chunked

NOW = 1_800_000_000.0
HOST = "127.0.0.1:3333"
MAX = 16 * 1024 * 1024


class GatedAuth:
    """An auth manager whose key lookups wait for L{open} (a slow directory)."""

    def __init__(self, auth: AuthManager) -> None:
        self._auth = auth
        self._gate: defer.Deferred[None] | None = None
        self.lookups = 0

    def close(self) -> None:
        self._gate = defer.Deferred()

    def open(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.callback(None)

    async def credentials_for(self, access: str) -> Any:
        self.lookups += 1
        if self._gate is not None:
            await self._gate
        return await self._auth.credentials_for(access)


class StreamingTests(unittest.TestCase):
    async def setUp(self) -> None:
        self.clock = task.Clock()
        self.clock.advance(NOW)
        directory = await EmbeddedDirectory.open(Path(self.mktemp()), "dc=test,dc=local")
        auth = AuthManager(LdapDriver(directory.base), self.clock)
        alice = await auth.create_user("alice")
        await auth.create_project("web", "alice")
        self.access, self.secret = f"{alice.access}:web", alice.secret
        self.auth = GatedAuth(auth)
        root = Path(self.mktemp())
        root.mkdir()
        self.store = FilesystemObjectStore(root, MemoryDatastore(self.clock), self.clock,
                                           inline_runner, MAX)
        await self.store.open()
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(self.store.close()))
        await self.store.create_bucket("bkt", Owner(project_id="web", display_name="web"))
        self.writers: list[Any] = []
        new_writer = self.store.new_writer

        def spy(bucket: str) -> Any:
            writer = new_writer(bucket)
            self.writers.append(writer)
            return writer

        self.store.new_writer = spy  # type: ignore[method-assign]
        self.site = build_site(self.store, self.auth, self.clock, ObjectStoreConfig(),
                               inline_runner)
        self.protocol = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)
        self.addCleanup(self.protocol.connectionLost, None)

    @property
    def request(self) -> Any:
        return self.protocol._channel.requests[-1]

    def head(self, path: str, body_length: int | None, *, sign: bool = True,
             secret: str | None = None, payload: str | None = None,
             extra: dict[str, str] | None = None) -> bytes:
        headers = {"Content-Length": str(body_length)} if body_length is not None else {}
        headers.update(extra or {})
        if sign:
            headers.update(sign_v4_headers(
                "PUT", HOST, path, [], headers, self.access, secret or self.secret,
                "us-east-1", "s3", payload_sha256=payload or "UNSIGNED-PAYLOAD", now=NOW))
        lines = [f"PUT {path} HTTP/1.1", f"Host: {HOST}"] + [f"{k}: {v}"
                                                           for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def status(self) -> int:
        return int(self.transport.value().split(b" ", 2)[1])

    def answer(self) -> bytes:
        return self.transport.value()

    async def test_body_goes_to_the_writer_piece_by_piece(self) -> None:
        body = bytes(range(256)) * 512  # 128 KiB
        self.protocol.dataReceived(self.head("/bkt/k", len(body),
                                             payload=hashlib.sha256(body).hexdigest()))
        self.assertEqual(len(self.writers), 1, self.answer())
        writer = self.writers[0]
        request = self.request
        for offset in range(0, len(body), 16384):
            self.protocol.dataReceived(body[offset:offset + 16384])
            # every piece is in the store's writer as soon as it arrives, and
            # the request itself keeps nothing
            if offset + 16384 < len(body):
                self.assertEqual(writer.size, offset + 16384)
                self.assertEqual(request.content.getvalue(), b"")
        self.assertEqual(self.status(), 200, self.answer())
        info = await self.store.head_object("bkt", "k")
        self.assertEqual((info.size, info.etag), (len(body), hashlib.md5(body).hexdigest()))

    async def test_connection_paused_until_authenticated(self) -> None:
        self.auth.close()
        body = b"x" * 1000
        self.protocol.dataReceived(self.head("/bkt/k", len(body) * 3) + body)
        # the lookup is pending: reading is stopped, no writer exists, and
        # the bytes that came with the headers wait
        self.assertEqual(self.transport.producerState, "paused")
        self.assertEqual(self.writers, [])
        self.auth.open()
        self.assertEqual(self.transport.producerState, "producing")
        self.assertEqual(self.writers[0].size, 1000)
        self.protocol.dataReceived(body * 2)
        self.assertEqual(self.status(), 200, self.answer())

    async def test_unauthenticated_upload_refused_before_its_body(self) -> None:
        for kind in ("bad-signature", "anonymous"):
            self.transport.clear()
            protocol = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40001))
            transport = StringTransport()
            protocol.makeConnection(transport)
            head = self.head("/bkt/secret", MAX - 1, sign=kind != "anonymous",
                             secret="wrong", extra={"Expect": "100-continue"})
            protocol.dataReceived(head)
            # refused: reading stopped at once, the answer comes on the next turn
            self.assertEqual(transport.producerState, "paused")
            self.clock.advance(0)
            answer = transport.value()
            self.assertTrue(answer.startswith(b"HTTP/1.1 403 "), answer)
            self.assertNotIn(b"100 Continue", answer)
            self.assertIn(b"SignatureDoesNotMatch" if kind == "bad-signature"
                          else b"AccessDenied", answer)
            self.assertIn(b"Connection: close", answer)
            self.assertTrue(transport.disconnecting)
            self.assertEqual(self.writers, [])
            protocol.connectionLost(None)
        await self.assertFailure(defer.Deferred.fromCoroutine(
            self.store.head_object("bkt", "secret")), NoSuchKey)

    async def test_expect_continue_only_once_admitted(self) -> None:
        self.auth.close()
        self.protocol.dataReceived(self.head("/bkt/k", 5, extra={"Expect": "100-continue"}))
        self.assertEqual(self.answer(), b"")
        self.auth.open()
        self.assertEqual(self.answer(), b"HTTP/1.1 100 Continue\r\n\r\n")
        self.protocol.dataReceived(b"hello")
        self.assertIn(b"HTTP/1.1 200 ", self.answer())

    async def test_too_large_refused_from_content_length(self) -> None:
        self.protocol.dataReceived(self.head("/bkt/k", MAX + 1))
        self.clock.advance(0)
        self.assertEqual(self.status(), 400)
        self.assertIn(b"<Code>EntityTooLarge</Code>", self.answer())
        self.assertEqual(self.auth.lookups, 0)  # refused before anything else
        self.assertTrue(self.transport.disconnecting)

    async def test_too_large_mid_stream(self) -> None:
        head = self.head("/bkt/k", None, extra={"Transfer-Encoding": "chunked"})
        self.protocol.dataReceived(head)
        piece = b"z" * 65536
        for _ in range(MAX // len(piece) + 1):
            self.protocol.dataReceived(b"%x\r\n" % len(piece) + piece + b"\r\n")
        self.clock.advance(0)
        self.assertIn(b"<Code>EntityTooLarge</Code>", self.answer())
        self.assertEqual(self.writers[0].state, "aborted")

    async def test_client_gone_mid_upload_leaves_nothing(self) -> None:
        self.protocol.dataReceived(self.head("/bkt/k", 100000) + b"a" * 50000)
        writer = self.writers[0]
        self.assertEqual(writer.size, 50000)
        self.protocol.connectionLost(None)
        self.assertEqual(writer.state, "aborted")
        self.assertFalse(Path(writer.path).exists())
        await self.assertFailure(defer.Deferred.fromCoroutine(
            self.store.head_object("bkt", "k")), NoSuchKey)

    async def test_early_bytes_are_bounded(self) -> None:
        self.auth.close()
        self.protocol.dataReceived(self.head("/bkt/k", 10 * PREADMIT_LIMIT))
        self.protocol.dataReceived(b"q" * (PREADMIT_LIMIT + 1))
        self.clock.advance(0)
        self.assertEqual(self.status(), 503)
        self.auth.open()
        self.assertEqual(self.writers, [])

    async def test_signed_chunks_streamed_and_checked(self) -> None:
        data = bytes(range(256)) * 400
        headers = sign_v4_headers("PUT", HOST, "/bkt/chunked", [], {
            "Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data))},
            self.access, self.secret, "us-east-1", "s3", payload_sha256=STREAMING_PAYLOAD,
            now=NOW)
        seed = headers["Authorization"].rsplit("Signature=", 1)[1]
        amz_date = headers["X-Amz-Date"]
        scope = Scope(amz_date[:8], "us-east-1", "s3")
        chunk_signer = ChunkSigner(signing_key(self.secret, scope), amz_date, scope.value, seed)
        body = aws_chunked(data, 8192, chunk_signer)
        headers.update({"Content-Encoding": "aws-chunked",
                        "x-amz-decoded-content-length": str(len(data))})
        head = ("PUT /bkt/chunked HTTP/1.1\r\n" + f"Host: {HOST}\r\n" +
                f"Content-Length: {len(body)}\r\n" +
                "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()
        good = head + body
        tampered = bytearray(good)
        tampered[len(head) + 30000] ^= 1
        self.protocol.dataReceived(bytes(tampered[:len(head) + 40000]))
        self.clock.advance(0)
        self.assertIn(b"<Code>SignatureDoesNotMatch</Code>", self.answer())
        self.assertEqual(self.writers[0].state, "aborted")
        protocol = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40002))
        transport = StringTransport()
        protocol.makeConnection(transport)
        for offset in range(0, len(good), 5000):
            protocol.dataReceived(good[offset:offset + 5000])
        self.assertIn(b"HTTP/1.1 200 ", transport.value())
        info = await self.store.head_object("bkt", "chunked")
        self.assertEqual((info.size, info.etag), (len(data), hashlib.md5(data).hexdigest()))
        self.assertNotIn("content-encoding", info.headers)
        protocol.connectionLost(None)

    async def test_xml_bodies_are_bounded(self) -> None:
        head = (f"POST /bkt?delete HTTP/1.1\r\nHost: {HOST}\r\n"
                f"Content-Length: {4 * 1024 * 1024}\r\n\r\n").encode()
        self.protocol.dataReceived(head)
        self.clock.advance(0)
        self.assertIn(b"<Code>MaxMessageLengthExceeded</Code>", self.answer())
        self.assertTrue(self.transport.disconnecting)

    async def test_two_uploads_on_one_connection(self) -> None:
        for key, body in (("one", b"first"), ("two", b"second body")):
            self.protocol.dataReceived(self.head(f"/bkt/{key}", len(body)) + body)
        self.assertEqual(self.answer().count(b"HTTP/1.1 200 OK"), 2)
        self.assertFalse(self.transport.disconnecting)
        self.assertEqual((await self.store.head_object("bkt", "two")).size, 11)

    async def test_response_header_spelling(self) -> None:
        body = b"meta"
        self.protocol.dataReceived(self.head("/bkt/m", len(body),
                                             extra={"x-amz-meta-Colour": "blue"}) + body)
        self.transport.clear()
        headers = sign_v4_headers("GET", HOST, "/bkt/m", [], {}, self.access, self.secret,
                                  "us-east-1", "s3", now=NOW)
        self.protocol.dataReceived(("GET /bkt/m HTTP/1.1\r\n" + f"Host: {HOST}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode())
        answer = self.answer()
        # S3's spelling: clients name user metadata after the header as received
        self.assertIn(b"\r\nx-amz-meta-colour: blue\r\n", answer)
        self.assertIn(b"\r\nx-amz-request-id: ", answer)
        self.assertIn(b'\r\nETag: "', answer)
        self.assertTrue(answer.endswith(b"\r\n\r\nmeta"), answer)
