"""
Tests of the libvirt worker thread: calls run off the reactor thread, in
order, results and errors come back as Deferreds, libvirt errors become
typed nova errors, and close ends the thread.
"""

from __future__ import annotations

import threading

import libvirt
from twisted.internet import defer, reactor
from twisted.trial import unittest

from nova.virt.errors import HypervisorUnavailable, InstanceNotFound
from nova.virt.libvirt.connection import LibvirtConnection, Worker


class WorkerTests(unittest.TestCase):
    def setUp(self) -> None:
        self.worker = Worker(reactor, "test worker")
        self.addCleanup(self.worker.stop)

    async def test_runs_off_the_reactor_thread_in_order(self) -> None:
        seen: list[tuple[int, str]] = []
        calls = [self.worker.submit(lambda i=i: seen.append(
            (i, threading.current_thread().name)) or i) for i in range(5)]
        self.assertEqual(await defer.gatherResults(calls), [0, 1, 2, 3, 4])
        self.assertEqual([i for i, _ in seen], [0, 1, 2, 3, 4])
        self.assertEqual({name for _, name in seen}, {"test worker"})

    async def test_errors_come_back(self) -> None:
        def boom() -> None:
            raise KeyError("x")
        with self.assertRaises(KeyError):
            await self.worker.submit(boom)
        self.assertEqual(await self.worker.submit(lambda: 7), 7)

    async def test_stop(self) -> None:
        await self.worker.stop()
        self.assertRaises(RuntimeError, self.worker.submit, lambda: None)


class ConnectionTests(unittest.TestCase):
    async def test_translates_libvirt_errors(self) -> None:
        conn = LibvirtConnection(reactor, "test:///default")
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(conn.close()))
        with self.assertRaises(InstanceNotFound):
            await conn.run(lambda c: c.lookupByName("no-such-domain-here"))
        self.assertIn("test", await conn.run(lambda c: c.listDefinedDomains()
                                             + [d.name() for d in c.listAllDomains()]))

    async def test_unreachable_hypervisor(self) -> None:
        def refuse(uri: str) -> None:
            raise libvirt.libvirtError(f"cannot reach {uri}")
        conn = LibvirtConnection(reactor, "qemu+unix:///system?socket=/nonexistent",
                                 opener=refuse)
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(conn.close()))
        with self.assertRaises(HypervisorUnavailable):
            await conn.run(lambda c: c.getInfo())

    async def test_close_twice(self) -> None:
        conn = LibvirtConnection(reactor, "test:///default")
        await conn.run(lambda c: c.getInfo())
        await conn.close()
        await conn.close()
