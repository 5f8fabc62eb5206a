"""
nova-api's metadata listeners: the wiring (on a MemoryReactor), and the unix
socket service against real sockets in a private directory (mode, stale
socket removal, never taking over a live one, removal at stop).
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
from pathlib import Path
from typing import Any

from twisted.internet import threads
from twisted.internet.testing import MemoryReactorClock
from twisted.trial import unittest
from twisted.web import server

from nova.api.metadata.resource import MetadataResource, forwarded_address, metadata_site
from nova.api.metadata.service import (
    MetadataSocketError, UnixListeningService, clear_stale_socket, metadata_services,
    metadata_socket_path)
from nova.config import NovaConfig
from nova.utils.listening import ListeningService
from tests.test_metadata_data import MetadataWorld


async def _now(fn: Any, *args: Any) -> Any:
    return fn(*args)


def _get(path: str, request: bytes) -> bytes:
    """Blocking: one HTTP/1.0 exchange over the unix socket at C{path} (run in a thread)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(request)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


class WiringTests(unittest.TestCase):

    def setUp(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="nmt-", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_socket_path(self) -> None:
        config = NovaConfig(state_dir=Path("/var/lib/nova"))
        self.assertEqual(metadata_socket_path(config), Path("/var/lib/nova/metadata.sock"))
        config = config.replace(api__metadata_socket="/run/nova/md.sock")
        self.assertEqual(metadata_socket_path(config), Path("/run/nova/md.sock"))
        relative = NovaConfig(state_dir=Path("var"))
        self.assertEqual(metadata_socket_path(relative), Path.cwd() / "var" / "metadata.sock")

    async def test_metadata_services(self) -> None:
        reactor = MemoryReactorClock()
        world = MetadataWorld(reactor)

        class Server:
            config = NovaConfig(state_dir=Path(self.tmp)).replace(api__metadata_port=18775,
                                                                   api__listen="127.0.0.2")
            instances, fixed_ips, keypairs, images = (world.instances, world.fixed_ips,
                                                      world.keypairs, world.images)
            volumes = None  # no volume service here: no ebs entries
            run_in_thread = staticmethod(_now)

        Server.reactor = reactor  # type: ignore[attr-defined]
        tcp, unix = metadata_services(Server())
        self.assertIsInstance(tcp, ListeningService)
        self.assertIsInstance(unix, UnixListeningService)
        for service in (tcp, unix):
            service.startService()
            await service.whenReady()  # type: ignore[attr-defined]
        [(port, site, _, interface)] = reactor.tcpServers
        self.assertEqual((port, interface), (18775, "127.0.0.2"))
        self.assertIsInstance(site, server.Site)
        [(path, unix_site, _, mode, _)] = reactor.unixServers
        self.assertEqual((path, mode), (os.path.join(self.tmp, "metadata.sock"), 0o600))
        self.assertIsNot(unix_site, site)
        for service in (tcp, unix):
            await service.stopService()


class UnixSocketTests(unittest.TestCase):
    """UnixListeningService on the real reactor, in a private directory."""

    def setUp(self) -> None:
        from twisted.internet import reactor
        self.reactor = reactor
        self.tmp = tempfile.mkdtemp(prefix="nmt-", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.path = os.path.join(self.tmp, "run", "metadata.sock")
        self.world = MetadataWorld(reactor)

    async def run_in_thread(self, fn: Any, *args: Any) -> Any:
        return await threads.deferToThread(fn, *args)

    def service(self, path: str | None = None) -> UnixListeningService:
        site = metadata_site(MetadataResource(self.world.source(), forwarded_address),
                             self.reactor)
        service = UnixListeningService(self.reactor, path or self.path, site,
                                       self.run_in_thread, name="metadata socket")
        service.startService()
        self.addCleanup(service.stopService)
        return service

    async def test_serves_with_mode_0600_and_removes_at_stop(self) -> None:
        instance = await self.world.launch()
        service = self.service()
        await service.whenReady()
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
        raw = await threads.deferToThread(
            _get, self.path, b"GET /latest/meta-data/instance-id HTTP/1.0\r\n"
                             b"X-Forwarded-For: " + instance.private_ip.encode() + b"\r\n\r\n")
        self.assertTrue(raw.startswith(b"HTTP/1.0 200 "), raw)
        self.assertTrue(raw.endswith(b"\r\n\r\n" + instance.instance_id.encode()), raw)
        await service.stopService()
        self.assertFalse(os.path.exists(self.path))

    async def test_stale_socket_is_replaced(self) -> None:
        os.makedirs(os.path.dirname(self.path))
        dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        dead.bind(self.path)
        dead.close()  # the file stays, nobody listens: what a killed process leaves
        service = self.service()
        await service.whenReady()
        raw = await threads.deferToThread(_get, self.path, b"GET / HTTP/1.0\r\n\r\n")
        self.assertTrue(raw.startswith(b"HTTP/1.0 200 "), raw)

    async def test_live_socket_is_not_taken_over(self) -> None:
        os.makedirs(os.path.dirname(self.path))
        live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(live.close)
        live.bind(self.path)
        live.listen(1)
        before = os.stat(self.path).st_ino
        with self.assertRaises(MetadataSocketError) as caught:
            await self.service().whenReady()
        self.assertIn("another process", str(caught.exception))
        self.assertEqual(os.stat(self.path).st_ino, before)

    async def test_not_a_socket_is_left_alone(self) -> None:
        os.makedirs(os.path.dirname(self.path))
        Path(self.path).write_text("precious")
        with self.assertRaises(MetadataSocketError):
            await self.service().whenReady()
        self.assertEqual(Path(self.path).read_text(), "precious")

    async def test_path_too_long(self) -> None:
        with self.assertRaises(MetadataSocketError) as caught:
            await self.service(os.path.join(self.tmp, "x" * 120)).whenReady()
        self.assertIn("longer than", str(caught.exception))

    def test_clear_stale_socket_nothing_there(self) -> None:
        self.assertFalse(clear_stale_socket(os.path.join(self.tmp, "none.sock")))
