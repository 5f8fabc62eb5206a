"""
The network host's metadata proxy.

Unit: L{MetadataProxy} against a fake upstream (in-memory connections and a
Clock: what it forwards, what it answers, timeouts, limits, errors), and
L{MetadataProxyService} on a MemoryReactor (the listener's own unit tests
are in C{tests.test_network_netns_socket}).

Real (root): a fresh network namespace; the proxy's socket is made inside it
by setns in a thread; busybox wget run inside the namespace reaches the
proxy, which reaches a real unix-socket metadata server; the socket is
shown to live in that namespace and not in the root one.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
import uuid
from typing import Any

from twisted.internet import defer, error, threads
from twisted.internet.address import IPv4Address, UNIXAddress
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial import unittest
from twisted.web import server
from zope.interface import implementer

from nova.api.metadata.resource import MetadataResource, forwarded_address, metadata_site
from nova.api.metadata.service import UnixListeningService
from nova.datastore import keys
from nova.network.metadata_proxy import (
    DEFAULT_TIMEOUT, MetadataProxy, NetnsError, metadata_proxy_service)
from nova.network.records import FixedIp
from nova.utils.process import ProcessRunner, find_executable
from tests.test_metadata_data import MetadataWorld
from tests.test_metadata_resource import parse, send

GUEST = IPv4Address("TCP", "10.0.0.7", 51000)


@implementer(IStreamClientEndpoint)
class FakeUpstream:
    """Connections to nova-api that the test answers by hand."""

    def __init__(self) -> None:
        self.connections: list[tuple[Any, StringTransport]] = []
        self.refuse: Exception | None = None

    def connect(self, factory: Any) -> defer.Deferred[Any]:
        if self.refuse is not None:
            return defer.fail(self.refuse)
        proto = factory.buildProtocol(UNIXAddress("/fake/metadata.sock"))
        transport = StringTransport()
        proto.makeConnection(transport)
        self.connections.append((proto, transport))
        return defer.succeed(proto)

    def request(self) -> tuple[str, dict[str, list[str]]]:
        """@return: the one request sent upstream: its request line and headers."""
        [(_, transport)] = self.connections
        head = transport.value().decode("latin-1").split("\r\n\r\n")[0].split("\r\n")
        headers: dict[str, list[str]] = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        return head[0], headers

    def answer(self, raw: bytes) -> Any:
        [(proto, transport)] = self.connections
        proto.dataReceived(raw)
        return transport


class ProxyTests(unittest.TestCase):

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.upstream = FakeUpstream()
        self.proxy = MetadataProxy(self.reactor, self.upstream, max_response=1000)
        self.site = server.Site(self.proxy, reactor=self.reactor)

    def assertAborted(self, transport: StringTransport) -> None:
        # a real transport closes on stopProducing; StringTransport records it
        self.assertTrue(transport.disconnecting or transport.producerState == "stopped")

    def test_forwards_with_the_peer_as_forwarded_for(self) -> None:
        guest = send(self.site, "/latest/meta-data/instance-id?x=1", peer=GUEST, headers=(
            ("X-Forwarded-For", "10.0.0.99"), ("Cookie", "a=b"), ("Authorization", "x")))
        line, headers = self.upstream.request()
        self.assertEqual(line, "GET /latest/meta-data/instance-id?x=1 HTTP/1.1")
        self.assertEqual(headers["x-forwarded-for"], ["10.0.0.7"])
        self.assertNotIn("cookie", headers)
        self.assertNotIn("authorization", headers)
        self.assertEqual(guest.value(), b"")  # nothing before nova-api answers
        self.upstream.answer(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                             b"Content-Length: 5\r\nX-Other: y\r\n\r\ni-123")
        status, out, body = parse(guest.value())
        self.assertEqual((status, out["content-type"], out["content-length"], body),
                         (200, "text/plain", "5", b"i-123"))
        self.assertNotIn("x-other", out)

    def test_upstream_status_passes(self) -> None:
        guest = send(self.site, "/latest/meta-data/nope", peer=GUEST)
        self.upstream.answer(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
                             b"Content-Length: 9\r\n\r\nNot Found")
        self.assertEqual(parse(guest.value())[0::2], (404, b"Not Found"))

    def test_head_gets_headers_only(self) -> None:
        guest = send(self.site, "/latest/user-data", peer=GUEST, method="HEAD")
        self.assertEqual(self.upstream.request()[0], "GET /latest/user-data HTTP/1.1")
        self.upstream.answer(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                             b"Content-Length: 4\r\n\r\nabcd")
        status, out, body = parse(guest.value())
        self.assertEqual((status, out["content-length"], body), (200, "4", b""))

    def test_other_methods_are_refused_here(self) -> None:
        for method in ("POST", "PUT", "DELETE"):
            status, out, body = parse(send(self.site, "/latest/", peer=GUEST,
                                           method=method).value())
            self.assertEqual((status, out["allow"], body), (405, "GET, HEAD",
                                                            b"Method Not Allowed"))
        self.assertEqual(self.upstream.connections, [])

    def test_absolute_uri_is_refused(self) -> None:
        status, _, _ = parse(send(self.site, "http://elsewhere/latest/", peer=GUEST).value())
        self.assertEqual(status, 400)
        self.assertEqual(self.upstream.connections, [])

    def test_unreachable_upstream_is_502(self) -> None:
        self.upstream.refuse = error.ConnectionRefusedError("no nova-api")
        status, out, body = parse(send(self.site, "/latest/", peer=GUEST).value())
        self.assertEqual((status, out["content-type"], body),
                         (502, "text/plain", b"Bad Gateway"))

    def test_garbage_from_upstream_is_502(self) -> None:
        guest = send(self.site, "/latest/", peer=GUEST)
        self.upstream.answer(b"SPAM\r\n\r\n")
        self.assertEqual(parse(guest.value())[0], 502)

    def test_upstream_closing_early_is_502(self) -> None:
        guest = send(self.site, "/latest/", peer=GUEST)
        self.upstream.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort")
        [(proto, _)] = self.upstream.connections
        proto.connectionLost(error.ConnectionLost("gone"))
        self.assertEqual(parse(guest.value())[0], 502)

    def test_announced_too_large_is_502(self) -> None:
        guest = send(self.site, "/latest/user-data", peer=GUEST)
        transport = self.upstream.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 1001\r\n\r\n")
        self.assertEqual(parse(guest.value())[0], 502)
        self.assertAborted(transport)

    def test_streamed_too_large_is_502(self) -> None:
        guest = send(self.site, "/latest/user-data", peer=GUEST)
        transport = self.upstream.answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                                         b"\r\n258\r\n" + b"x" * 600 + b"\r\n")
        self.assertEqual(guest.value(), b"")  # 600 bytes: still within the limit
        self.upstream.answer(b"258\r\n" + b"x" * 600 + b"\r\n")
        self.assertEqual(parse(guest.value())[0], 502)
        self.assertAborted(transport)

    def test_slow_upstream_is_504(self) -> None:
        guest = send(self.site, "/latest/", peer=GUEST)
        self.reactor.advance(DEFAULT_TIMEOUT - 0.1)
        self.assertEqual(guest.value(), b"")
        self.reactor.advance(0.2)
        status, _, body = parse(guest.value())
        self.assertEqual((status, body), (504, b"Gateway Timeout"))
        [(_, transport)] = self.upstream.connections
        self.assertAborted(transport)

    def test_guest_leaving_cancels_upstream(self) -> None:
        guest = send(self.site, "/latest/", peer=GUEST)
        guest.protocol.connectionLost(Failure(error.ConnectionDone("guest left")))
        [(_, transport)] = self.upstream.connections
        self.assertAborted(transport)
        self.assertEqual(guest.value(), b"")


async def _now(fn: Any, *args: Any) -> Any:
    """A run_in_thread that runs on the calling thread (unit tests)."""
    return fn(*args)


class ProxyServiceTests(unittest.TestCase):
    """L{metadata_proxy_service} on a MemoryReactor."""

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()

    async def test_service_listens_and_stops(self) -> None:
        service = metadata_proxy_service(self.reactor, None, 8775, "/nonexistent/metadata.sock",
                                         _now)
        service.startService()
        await service.whenReady()
        self.assertIsNotNone(service.port)
        [(port, factory, _, interface)] = self.reactor.tcpServers
        self.assertEqual((port, interface), (8775, "0.0.0.0"))
        self.assertIsInstance(factory, server.Site)
        self.assertIsInstance(factory.resource, MetadataProxy)
        await service.stopService()
        self.assertIsNone(service.port)
        self.assertFalse(service.running)

    async def test_service_reports_a_missing_namespace(self) -> None:
        service = metadata_proxy_service(self.reactor, f"nmt-absent-{uuid.uuid4().hex[:8]}",
                                         8775, "/nonexistent/metadata.sock", _now)
        service.startService()
        with self.assertRaises(NetnsError):
            await service.whenReady()
        await service.stopService()  # stopping after a failed start is fine
        self.assertIsNone(service.port)



_SEARCH = os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin", "/sbin"])


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, setns)"
    absent = [p for p in ("ip", "busybox") if find_executable(p, _SEARCH) is None]
    if absent:
        return f"not installed: {', '.join(absent)} (iproute2, busybox-static)"
    return None


def _ns_inode() -> int:
    """@return: the network namespace of the calling thread."""
    return os.stat("/proc/thread-self/ns/net").st_ino


def _listening(proc_net_tcp: str, port: int, inode: int) -> bool:
    """@return: whether a C{/proc/net/tcp} text shows socket C{inode} listening on C{port}."""
    for line in proc_net_tcp.splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        if (local_port, fields[3], fields[9]) == (port, "0A", str(inode)):
            return True
    return False


class RealNamespaceTests(unittest.TestCase):
    """
    The proxy listening inside a fresh namespace, fetched from inside it with
    busybox wget, forwarding to a real metadata unix socket.
    """

    skip = _missing()

    def setUp(self) -> defer.Deferred[None]:
        from twisted.internet import reactor
        self.reactor = reactor
        self.runner = ProcessRunner(reactor, search_path=_SEARCH)
        self.netns = f"nmt-{uuid.uuid4().hex[:8]}"
        self.pool_namespaces: list[int] = []
        return defer.Deferred.fromCoroutine(self._setup())

    async def run_in_thread(self, fn: Any, *args: Any) -> Any:
        """The reactor's pool, noting each pool thread's namespace after the call."""
        def call() -> Any:
            try:
                return fn(*args)
            finally:
                self.pool_namespaces.append(_ns_inode())
        return await threads.deferToThread(call)

    async def _setup(self) -> None:
        await self.runner.run(["ip", "netns", "add", self.netns])
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(self.runner.run(
            ["ip", "netns", "delete", self.netns], check=False)))
        await self.runner.run(["ip", "link", "set", "lo", "up"], netns=self.netns)
        tmp = tempfile.mkdtemp(prefix="nmt-", dir="/tmp")  # short: sun_path is 108 bytes
        self.addCleanup(shutil.rmtree, tmp, True)
        self.socket_path = os.path.join(tmp, "metadata.sock")
        # a metadata server whose instance has the fixed IP 127.0.0.1: the
        # address wget's requests come from inside the namespace
        world = MetadataWorld(self.reactor)
        instance = await world.launch(user_data=base64.b64encode(b"#!/bin/sh\n").decode())
        now = self.reactor.seconds()
        await world.store.set(keys.fixed_ip("127.0.0.1"), FixedIp(
            address="127.0.0.1", network_id=1, instance_id=instance.instance_id,
            mac=instance.mac_address, allocated_at=now, updated_at=now).to_json())
        self.instance = await world.instances.update(instance.instance_id,
                                                     private_ip="127.0.0.1")
        api = UnixListeningService(
            self.reactor, self.socket_path,
            metadata_site(MetadataResource(world.source(), forwarded_address), self.reactor),
            self.run_in_thread, name="test metadata socket")
        api.startService()
        self.addCleanup(api.stopService)
        await api.whenReady()

    async def wget(self, port: int, path: str, check: bool = True) -> Any:
        return await self.runner.run(
            ["busybox", "wget", "-q", "-O", "-", f"http://127.0.0.1:{port}{path}"],
            netns=self.netns, timeout=20, check=check)

    async def test_proxy_lives_in_the_namespace(self) -> None:
        root_namespace = _ns_inode()
        self.pool_namespaces.clear()
        service = metadata_proxy_service(self.reactor, self.netns, 0, self.socket_path,
                                         self.run_in_thread)
        service.startService()
        self.addCleanup(service.stopService)
        await service.whenReady()
        assert service.port is not None
        port = service.port.getHost().port
        inode = os.fstat(service.port.fileno()).st_ino

        # the socket listens in the namespace, and not in the root one
        inside = await self.runner.run(["cat", "/proc/net/tcp"], netns=self.netns)
        self.assertTrue(_listening(inside.stdout.decode(), port, inode))
        with open("/proc/thread-self/net/tcp") as f:
            self.assertFalse(_listening(f.read(), port, inode))
        # no thread of ours stayed in the namespace
        self.assertEqual(_ns_inode(), root_namespace)
        self.assertEqual(self.pool_namespaces, [root_namespace])

        # wget inside the namespace -> proxy -> unix socket -> metadata
        got = await self.wget(port, "/latest/meta-data/instance-id")
        self.assertEqual(got.stdout.decode(), self.instance.instance_id)
        got = await self.wget(port, "/latest/meta-data/local-ipv4")
        self.assertEqual(got.stdout, b"127.0.0.1")
        got = await self.wget(port, "/latest/user-data")
        self.assertEqual(got.stdout, b"#!/bin/sh\n")
        missing = await self.wget(port, "/latest/meta-data/nope", check=False)
        self.assertNotEqual(missing.exit_code, 0)
        self.assertIn(b"404", missing.stderr)

    async def test_no_metadata_server_is_502(self) -> None:
        service = metadata_proxy_service(self.reactor, self.netns, 0,
                                         self.socket_path + ".absent", self.run_in_thread)
        service.startService()
        self.addCleanup(service.stopService)
        await service.whenReady()
        assert service.port is not None
        failed = await self.wget(service.port.getHost().port, "/latest/", check=False)
        self.assertNotEqual(failed.exit_code, 0)
        self.assertIn(b"502", failed.stderr)
