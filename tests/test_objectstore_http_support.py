"""
The harness of the object store's in-process HTTP tests (no tests here):
the real S3 site on a loopback port of trial's reactor, over the real
filesystem store in a temporary directory, the in-memory datastore, and an
auth manager on an embedded directory with three users (alice in project
"web", bob in "db", root a superuser); requests are signed with the shared
signing helpers and sent with twisted.web's Agent.
"""

from __future__ import annotations

import hashlib
import uuid
from io import BytesIO
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import quote
from xml.etree import ElementTree

import attr
from twisted.internet import defer, protocol
from twisted.trial import unittest
from twisted.web import client
from twisted.web.http_headers import Headers

from nova.auth.directory import EmbeddedDirectory
from nova.auth.ldapdriver import LdapDriver
from nova.auth.manager import AuthManager
from nova.auth.signer import (UNSIGNED_PAYLOAD, aws_quote, presign_v4, sign_s3_v2,
                              sign_v4_headers, SignedRequest)
from nova.config import ObjectStoreConfig
from nova.datastore.memory import MemoryDatastore
from nova.objectstore.http import build_site
from nova.objectstore.store import FilesystemObjectStore, thread_runner

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
REGION = "us-east-1"
VHOST_SUFFIX = "s3.nova.test"


def bucket_name(prefix: str = "b") -> str:
    """@return: a bucket name unique to this run."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@attr.s(frozen=True, auto_attribs=True)
class Reply:
    """An HTTP answer: status, headers (lower-case names), body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def xml(self) -> ElementTree.Element:
        """@return: the body parsed."""
        return ElementTree.fromstring(self.body)

    @property
    def code(self) -> str | None:
        """@return: the S3 error code of an error document."""
        if not self.body:
            return None
        return self.xml().findtext("Code")


@attr.s(frozen=True, auto_attribs=True)
class User:
    """A test user: access key (C{access:project}) and secret."""

    access: str
    secret: str


class _Collect(protocol.Protocol):
    def __init__(self, done: defer.Deferred[bytes]) -> None:
        self._done = done
        self._parts: list[bytes] = []

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        self._parts.append(data)

    def connectionLost(self, reason: Any = None) -> None:  # noqa: N802
        self._done.callback(b"".join(self._parts))


class S3Harness:
    """
    The S3 site on a loopback port, with its store and users.

    @ivar store: the L{FilesystemObjectStore}.
    @ivar site: the twisted.web site.
    @ivar host: C{127.0.0.1:<port>}.
    """

    def __init__(self, test: unittest.TestCase) -> None:
        self._test = test

    async def start(self, max_object_size: int = 64 * 1024 * 1024,
                    min_part_size: int = 5 * 1024 * 1024, **options: Any) -> S3Harness:
        """Open everything; cleanups close it. C{options} go to C{build_site}."""
        from twisted.internet import reactor
        self.reactor = reactor
        test = self._test
        directory = await EmbeddedDirectory.open(Path(test.mktemp()), "dc=test,dc=local")
        self.auth = AuthManager(LdapDriver(directory.base), reactor, cache_ttl=0)
        users = {}
        for name, project, admin in (("alice", "web", False), ("bob", "db", False),
                                     ("root", "ops", True)):
            user = await self.auth.create_user(name, admin=admin)
            await self.auth.create_project(project, name)
            users[name] = User(f"{user.access}:{project}", user.secret)
        self.alice, self.bob, self.root = users["alice"], users["bob"], users["root"]
        root = Path(test.mktemp())
        root.mkdir()
        self.store = FilesystemObjectStore(root, MemoryDatastore(reactor), reactor,
                                           thread_runner(reactor), max_object_size,
                                           min_part_size=min_part_size)
        await self.store.open()
        test.addCleanup(lambda: defer.Deferred.fromCoroutine(self.store.close()))
        self.config = ObjectStoreConfig(virtual_host_suffix=VHOST_SUFFIX)
        options.setdefault("region", "nova")
        self.site = build_site(self.store, self.auth, reactor, self.config,
                               thread_runner(reactor), **options)
        self.connections: list[Any] = []
        build = self.site.buildProtocol

        def track(addr: Any) -> Any:
            built = build(addr)
            self.connections.append(built)
            return built

        self.site.buildProtocol = track  # type: ignore[method-assign]
        self.port = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        test.addCleanup(self._close_connections)
        test.addCleanup(self.port.stopListening)
        self.host = f"127.0.0.1:{self.port.getHost().port}"
        self.pool = client.HTTPConnectionPool(reactor, persistent=True)
        test.addCleanup(self.pool.closeCachedConnections)
        self.agent = client.Agent(reactor, pool=self.pool)
        return self

    async def _close_connections(self) -> None:
        # clients (boto3 in a thread, the Agent's pool) may leave keep-alive
        # connections: the server side is cut here so the reactor is clean
        from twisted.internet import task
        transports = [getattr(c, "_channel", c).transport for c in self.connections]
        for transport in transports:
            if transport is not None and transport.connected:
                transport.abortConnection()
        while any(t is not None and t.connected for t in transports):
            await task.deferLater(self.reactor, 0.01, lambda: None)

    async def request(self, method: str, path: str, *, query: Iterable[tuple[str, str]] = (),
                      headers: dict[str, str] | None = None, body: bytes | None = None,
                      user: User | None = None, sign: str = "v4", host: str | None = None,
                      payload: str | None = None, producer: Any = None,
                      now: float | None = None) -> Reply:
        """
        Send one request.

        @param path: the path, not encoded (it is encoded here, C{/} kept).
        @param sign: C{v4}, C{v2}, C{v4-query} (presigned) or C{none} (anonymous).
        @param payload: the SigV4 payload line (default: the body's SHA-256).
        @param producer: an C{IBodyProducer} instead of C{body}.
        @param now: the SigV4 signing time (default: now).
        """
        query = list(query)
        host = host or self.host
        encoded = aws_quote(path, safe="/~")
        headers = dict(headers or {})
        headers.setdefault("Host", host)
        data = body if body is not None else b""
        if user is not None and sign == "v4":
            headers.update(sign_v4_headers(
                method, host, encoded, query, {k: v for k, v in headers.items()
                                               if k.lower() != "host"},
                user.access, user.secret, REGION, "s3",
                payload_sha256=payload or hashlib.sha256(data).hexdigest(), now=now))
        elif user is not None and sign == "v2":
            headers["Date"] = _http_now()
            view = SignedRequest.from_parts(method, encoded + _raw_query(query),
                                            {k.lower(): v for k, v in headers.items()},
                                            virtual_bucket=_virtual(host))
            headers["Authorization"] = sign_s3_v2(view, user.access, user.secret)
        elif user is not None and sign == "v4-query":
            query = presign_v4(method, host, encoded, query, user.access, user.secret,
                               REGION, "s3", expires=300)
        url = f"http://{self.host}{encoded}{_raw_query(query)}"
        raw = Headers({k.encode(): [v.encode("utf-8")] for k, v in headers.items()})
        if producer is None and body is not None:
            producer = client.FileBodyProducer(BytesIO(body))
        response = await self.agent.request(method.encode(), url.encode(), raw, producer)
        done: defer.Deferred[bytes] = defer.Deferred()
        response.deliverBody(_Collect(done))
        content = await done
        found = {k.decode().lower(): b",".join(v).decode("utf-8", "surrogateescape")
                 for k, v in response.headers.getAllRawHeaders()}
        return Reply(response.code, found, content)

    async def make_bucket(self, user: User, name: str | None = None,
                          acl: str | None = None) -> str:
        """@return: a new bucket of C{user}'s project."""
        name = name or bucket_name()
        headers = {"x-amz-acl": acl} if acl else {}
        reply = await self.request("PUT", f"/{name}", user=user, headers=headers)
        self._test.assertEqual(reply.status, 200, reply.body)
        return name

    async def put(self, user: User, bucket: str, key: str, body: bytes,
                  headers: dict[str, str] | None = None) -> Reply:
        """PutObject, asserting it worked."""
        reply = await self.request("PUT", f"/{bucket}/{key}", user=user, body=body,
                                   headers=headers)
        self._test.assertEqual(reply.status, 200, reply.body)
        return reply


def aws_chunked(data: bytes, chunk_size: int, signer: Any = None,
                trailers: dict[str, str] | None = None) -> bytes:
    """
    Frame C{data} as an C{aws-chunked} body, each chunk signed with C{signer}
    (a client-side L{nova.auth.signer.ChunkSigner}) when given, with
    trailing headers (signed too, with a signer) when given.
    """
    out = []
    pieces = [data[i:i + chunk_size] for i in range(0, len(data), chunk_size)] + [b""]
    for piece in pieces:
        line = b"%x" % len(piece)
        if signer is not None:
            signature = signer.sign_chunk(hashlib.sha256(piece).hexdigest())
            line += b";chunk-signature=" + signature.encode()
        out.append(line + b"\r\n" + piece + (b"\r\n" if piece else b""))
    for name, value in (trailers or {}).items():
        out.append(f"{name}:{value}\r\n".encode())
    if trailers and signer is not None:
        canonical = "".join(f"{n}:{v}\n" for n, v in trailers.items()).encode()
        from nova.auth.signing.chunked import _TRAILER_ALGORITHM
        from nova.auth.signing.sigv4 import compute_v4
        to_sign = "\n".join([_TRAILER_ALGORITHM, signer._amz_date, signer._scope,
                             signer.previous_signature, hashlib.sha256(canonical).hexdigest()])
        out.append(b"x-amz-trailer-signature:" + compute_v4(signer._key, to_sign).encode()
                   + b"\r\n")
    out.append(b"\r\n")
    return b"".join(out)


def _raw_query(query: Iterable[tuple[str, str]]) -> str:
    pairs = [f"{aws_quote(k)}={aws_quote(v)}" if v != "" else aws_quote(k) for k, v in query]
    return ("?" + "&".join(pairs)) if pairs else ""


def _virtual(host: str) -> str | None:
    name = host.rsplit(":", 1)[0]
    if name.endswith("." + VHOST_SUFFIX):
        return name[:-len(VHOST_SUFFIX) - 1]
    return None


def _http_now() -> str:
    import email.utils
    return email.utils.formatdate(usegmt=True)


__all__ = ["NS", "REGION", "Reply", "S3Harness", "UNSIGNED_PAYLOAD", "User", "VHOST_SUFFIX",
           "aws_chunked", "bucket_name", "quote"]
