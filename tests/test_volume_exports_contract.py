"""
One contract for every L{IExportDriver}: the in-memory fake, and the real
NBD (qemu-storage-daemon), iSCSI (tgtd, in a fresh namespace) and AoE
(vblade, in a fresh namespace) drivers against the real tools. The real
ones skip, with the reason, where the machine lacks root or the tools.
"""

from __future__ import annotations

import json
import os
from typing import Any

from twisted.internet import defer, threads
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from nova.utils.validate import InvalidIdentifier
from nova.volume.backing import SparseFileBacking
from nova.volume.exports import ExportConflict, IExportDriver
from nova.volume.exports.aoe import AoeExportDriver
from nova.volume.exports.fake import FakeExportDriver
from nova.volume.exports.iscsi import IscsiExportDriver
from nova.volume.exports.nbd import NbdExportDriver
from tests.support import volume_exports as support
from tests.support.compute import run_now
from tests.support.volume_exports import coroutine_test

VOL_A = "vol-0123456789abcdef0"
VOL_B = "vol-00000000000000001"


class ExportContractMixin:
    """
    Subclasses provide C{async _host()} (prepares the volume host once per
    test), C{_driver()} (a new driver object for that host: a restart) and
    C{async _lose()} (the host loses its exports, as on a reboot).
    """

    kind: str
    run_in_thread: Any = staticmethod(run_now)

    def setUp(self) -> defer.Deferred[None]:
        self.dir = support.short_tempdir(self)
        self.backing = SparseFileBacking(self.run_in_thread, os.path.join(self.dir, "volumes"))
        return defer.Deferred.fromCoroutine(self._host())

    async def _host(self) -> None:
        self.driver = self._driver()

    async def _volume(self, volume_id: str) -> str:
        return await self.backing.create(volume_id, 1)

    def test_interface(self) -> None:
        self.assertTrue(verifyObject(IExportDriver, self.driver))
        self.assertEqual(self.driver.kind, self.kind)

    @coroutine_test
    async def test_export_is_idempotent_and_listed(self) -> None:
        path = await self._volume(VOL_A)
        self.assertEqual(await self.driver.exports(), [])
        info = await self.driver.export(VOL_A, path)
        self.assertEqual(info["kind"], self.kind)
        self.assertEqual(json.loads(json.dumps(info)), info)
        self.assertEqual(await self.driver.export(VOL_A, path), info)
        self.assertEqual(await self.driver.exports(), [VOL_A])

    @coroutine_test
    async def test_unexport_is_idempotent(self) -> None:
        path = await self._volume(VOL_A)
        await self.driver.unexport(VOL_A)  # never exported
        await self.driver.export(VOL_A, path)
        await self.driver.unexport(VOL_A)
        await self.driver.unexport(VOL_A)
        self.assertEqual(await self.driver.exports(), [])
        again = await self.driver.export(VOL_A, path)  # and it can come back
        self.assertEqual(again["kind"], self.kind)

    @coroutine_test
    async def test_restarted_driver_finds_exports(self) -> None:
        infos = {v: await self.driver.export(v, await self._volume(v)) for v in (VOL_A, VOL_B)}
        restarted = self._driver()
        self.assertEqual(await restarted.exports(), sorted(infos))
        for volume_id, info in infos.items():
            path = await self.backing.path(volume_id)
            self.assertEqual(await restarted.ensure(volume_id, path), info)
        self.assertEqual(await restarted.exports(), sorted(infos))
        if self.kind != "nbd":  # one export per volume, distinct targets
            self.assertNotEqual(infos[VOL_A], infos[VOL_B])

    @coroutine_test
    async def test_ensure_restores_lost_exports(self) -> None:
        path = await self._volume(VOL_A)
        info = await self.driver.export(VOL_A, path)
        await self._lose()
        restarted = self._driver()
        self.assertEqual(await restarted.exports(), [])
        self.assertEqual(await restarted.ensure(VOL_A, path), info)
        self.assertEqual(await restarted.exports(), [VOL_A])

    @coroutine_test
    async def test_other_path_conflicts(self) -> None:
        path = await self._volume(VOL_A)
        other = await self._volume(VOL_B)
        await self.driver.export(VOL_A, path)
        with self.assertRaises(ExportConflict):
            await self.driver.export(VOL_A, other)
        self.assertEqual(await self.driver.exports(), [VOL_A])

    @coroutine_test
    async def test_bad_input_refused(self) -> None:
        path = await self._volume(VOL_A)
        for volume_id, where in (("vol-1", path), ("--help", path), (VOL_A, "relative.img"),
                                 (VOL_A, "/tmp/a,b.img"), (VOL_A, "/tmp/x/../y.img"),
                                 (VOL_A, "-/x")):
            with self.assertRaises(InvalidIdentifier):
                await self.driver.export(volume_id, where)
        with self.assertRaises(InvalidIdentifier):
            await self.driver.unexport("vol-1")
        self.assertEqual(await self.driver.exports(), [])


class FakeExportContractTests(ExportContractMixin, unittest.TestCase):
    """The in-memory driver, for each kind it imitates (here: aoe)."""

    kind = "aoe"

    def _driver(self) -> FakeExportDriver:
        # The fake's "host" is its dict: a restart keeps it, a reboot loses it.
        if not hasattr(self, "_fake"):
            self._fake = FakeExportDriver(self.kind)
        return self._fake

    async def _lose(self) -> None:
        self._fake.exported.clear()


class RealHostMixin(ExportContractMixin):
    run_in_thread = staticmethod(threads.deferToThread)

    def setUp(self) -> defer.Deferred[None]:
        from twisted.internet import reactor
        self.reactor = reactor
        self.runner = support.real_runner()
        self.tag = support.unique_tag()
        return super().setUp()


class NbdExportContractTests(RealHostMixin, unittest.TestCase):
    """qemu-storage-daemon, driven over QMP."""

    kind = "nbd"
    skip = support.missing("qemu-storage-daemon")

    async def _host(self) -> None:
        self.driver = self._driver()
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(self.driver.shutdown()))

    def _driver(self) -> NbdExportDriver:
        return NbdExportDriver(self.runner, self.reactor, os.path.join(self.dir, "nbd"))

    async def _lose(self) -> None:
        self.assertTrue(await self.driver.shutdown())


class IscsiExportContractTests(RealHostMixin, unittest.TestCase):
    """tgtd in a fresh namespace, its own control port."""

    kind = "iscsi"
    skip = support.missing("tgtd", "tgtadm", "ip")

    async def _host(self) -> None:
        # tgtd dies with the namespace (SIGKILL): a graceful stop takes tgtd a second.
        self.control_port = 1000 + int(self.tag, 16) % 31000
        support.forget_tgtd_sockets(self, self.control_port)
        self.netns = await support.make_netns(self, self.runner, f"nvt-{self.tag}-i")
        self.driver = self._driver()

    def _driver(self) -> IscsiExportDriver:
        return IscsiExportDriver(self.runner, self.reactor, os.path.join(self.dir, "iscsi"),
                                 portal_address="127.0.0.1", control_port=self.control_port,
                                 netns=self.netns)

    async def _lose(self) -> None:
        self.assertTrue(await self.driver.shutdown())


class AoeExportContractTests(RealHostMixin, unittest.TestCase):
    """vblade in a fresh namespace, serving one end of a veth pair."""

    kind = "aoe"
    skip = support.missing("vblade", "ip", "setsid")

    async def _host(self) -> None:
        self.netns = await support.make_netns(self, self.runner, f"nvt-{self.tag}-a")
        await self.runner.run(["ip", "link", "add", f"nvt-{self.tag}-s", "type", "veth",
                               "peer", "name", f"nvt-{self.tag}-p"], netns=self.netns)
        for end in ("s", "p"):
            await self.runner.run(["ip", "link", "set", f"nvt-{self.tag}-{end}", "up"],
                                  netns=self.netns)
        self.driver = self._driver()
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(self.driver.shutdown()))

    def _driver(self) -> AoeExportDriver:
        return AoeExportDriver(self.reactor, os.path.join(self.dir, "aoe"),
                               netif=f"nvt-{self.tag}-s", netns=self.netns,
                               run_in_thread=threads.deferToThread)

    async def _lose(self) -> None:
        self.assertEqual(await self.driver.shutdown(), 1)
