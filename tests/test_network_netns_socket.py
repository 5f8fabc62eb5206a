"""
L{listen_tcp_in_netns} without root: on a MemoryReactor, with the namespace
directory and C{setns} replaced (a file stands for the namespace), so that
the thread discipline, the error paths and the loud failure to go back can
be seen. The real namespace test is in C{tests.test_metadata_proxy}.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
import uuid
from typing import Any

from twisted.internet import error
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial import unittest

from nova.network import netns_socket
from nova.network.netns_socket import NetnsError, listen_tcp_in_netns
from nova.utils.validate import InvalidIdentifier


async def _now(fn: Any, *args: Any) -> Any:
    """A run_in_thread that runs on the calling thread (unit tests)."""
    return fn(*args)


class ListenTests(unittest.TestCase):
    """L{listen_tcp_in_netns} and the service, on a MemoryReactor."""

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.factory = Factory.forProtocol(Protocol)

    async def test_no_namespace_is_a_plain_listen(self) -> None:
        port = await listen_tcp_in_netns(self.reactor, None, 8775, self.factory, _now)
        self.assertEqual(self.reactor.tcpServers, [(8775, self.factory, 50, "0.0.0.0")])
        self.assertIsNotNone(port)

    async def test_bad_namespace_name(self) -> None:
        called = []

        async def watch(fn: Any, *args: Any) -> Any:
            called.append(fn)
            return fn(*args)

        for name in ("-x", "a/b", "..", "", "x" * 65):
            with self.assertRaises(InvalidIdentifier):
                await listen_tcp_in_netns(self.reactor, name, 8775, self.factory, watch)
        self.assertEqual(called, [])

    async def test_missing_namespace(self) -> None:
        name = f"nmt-absent-{uuid.uuid4().hex[:8]}"
        with self.assertRaises(NetnsError) as caught:
            await listen_tcp_in_netns(self.reactor, name, 8775, self.factory, _now)
        self.assertIn(name, str(caught.exception))
        self.assertEqual(self.reactor.adoptedPorts, [])

    def fake_namespaces(self, fail_on: int | None) -> list[int]:
        """
        Point the listener at a directory holding a namespace file C{ns} and
        replace setns by a recorder that fails on call C{fail_on} (0: entering,
        1: going back).

        @return: the threads setns was called in, filled as it is.
        """
        directory = self.mktemp()
        os.makedirs(directory)
        open(os.path.join(directory, "ns"), "w").close()
        self.patch(netns_socket, "NETNS_DIR", directory)
        calls: list[int] = []

        def fake_setns(fd: int) -> None:
            calls.append(threading.get_ident())
            if len(calls) - 1 == fail_on:
                raise OSError(errno.EPERM, "Operation not permitted")

        self.patch(netns_socket, "_setns", fake_setns)
        return calls

    async def test_setns_happens_in_a_thread_of_its_own(self) -> None:
        calls = self.fake_namespaces(fail_on=None)
        port = await listen_tcp_in_netns(self.reactor, "ns", 0, self.factory, _now,
                                         interface="127.0.0.1")
        self.assertEqual(len(calls), 2)  # in, and back out
        self.assertEqual(len(set(calls)), 1)
        self.assertNotEqual(calls[0], threading.get_ident())
        [(fileno, family, factory)] = self.reactor.adoptedPorts
        self.assertEqual((family, factory), (socket.AF_INET, self.factory))
        self.assertIsNotNone(port)

    async def test_cannot_enter(self) -> None:
        calls = self.fake_namespaces(fail_on=0)
        with self.assertRaises(NetnsError) as caught:
            await listen_tcp_in_netns(self.reactor, "ns", 0, self.factory, _now)
        self.assertIn("cannot enter", str(caught.exception))
        self.assertEqual(len(calls), 1)  # never entered: nothing to undo
        self.assertEqual(self.reactor.adoptedPorts, [])

    async def test_cannot_go_back_is_loud(self) -> None:
        self.fake_namespaces(fail_on=1)
        logged: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        with self.assertRaises(NetnsError) as caught:
            await listen_tcp_in_netns(self.reactor, "ns", 0, self.factory, _now)
        self.assertIn("original network namespace", str(caught.exception))
        self.assertEqual(self.reactor.adoptedPorts, [])
        self.assertIn(LogLevel.critical, [e.get("log_level") for e in logged])

    async def test_port_in_use(self) -> None:
        self.fake_namespaces(fail_on=None)
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        with self.assertRaises(error.CannotListenError):
            await listen_tcp_in_netns(self.reactor, "ns", taken.getsockname()[1], self.factory,
                                      _now, interface="127.0.0.1")
