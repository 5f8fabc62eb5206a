"""
iSCSI exports through tgt: the argv builders and the C{tgtadm --op show}
parser; L{IscsiExportDriver} against a fake runner (what it runs, in which
order, and what it refuses); and a real tgtd in a fresh namespace.
"""

from __future__ import annotations

import os

from twisted.internet import defer, task
from twisted.trial import unittest

from nova.utils.process import FakeProcessRunner
from nova.utils.validate import InvalidIdentifier
from nova.volume.exports import ExportError, ExportInUse
from nova.volume.exports import tgt
from nova.volume.exports.iscsi import IscsiExportDriver
from tests.support import volume_exports as support
from tests.support.volume_exports import coroutine_test

VOL = "vol-0123456789abcdef0"
IQN = "iqn.2010-10.org.openstack:" + VOL
OTHER = "iqn.2010-10.org.openstack:vol-00000000000000001"

SHOW = f"""Target 1: {OTHER}
    System information:
        Driver: iscsi
        State: ready
    I_T nexus information:
        I_T nexus: 1
            Initiator: iqn.1993-08.org.debian:01:abc alias: compute1
            Connection: 0
                IP Address: 10.0.0.2
    LUN information:
        LUN: 0
            Type: controller
            Backing store type: null
            Backing store path: None
            Backing store flags:
        LUN: 1
            Type: disk
            Size: 1074 MB, Block size: 512
            Backing store type: rdwr
            Backing store path: /v/vol-00000000000000001.img
            Backing store flags:
    Account information:
    ACL information:
        ALL
Target 3: iqn.2001-04.com.example:other-storage
    System information:
        Driver: iscsi
        State: ready
    I_T nexus information:
    LUN information:
        LUN: 0
            Type: controller
            Backing store path: None
    Account information:
    ACL information:
        192.168.0.0/24
        10.1.1.1
"""


class TgtTests(unittest.TestCase):
    """Pure functions."""

    def test_parse_show(self) -> None:
        first, second = tgt.parse_show(SHOW)
        self.assertEqual(first, tgt.TgtTarget(1, OTHER, {0: None,
                                                         1: "/v/vol-00000000000000001.img"},
                                              ("ALL",), 1))
        self.assertEqual(second, tgt.TgtTarget(3, "iqn.2001-04.com.example:other-storage",
                                               {0: None}, ("192.168.0.0/24", "10.1.1.1"), 0))
        self.assertEqual(tgt.parse_show(""), [])

    def test_names(self) -> None:
        self.assertEqual(tgt.iqn(VOL), IQN)
        self.assertEqual(tgt.volume_of_iqn(IQN), VOL)
        self.assertIsNone(tgt.volume_of_iqn("iqn.2001-04.com.example:other-storage"))
        self.assertIsNone(tgt.volume_of_iqn("iqn.2010-10.org.openstack:vol-1"))
        self.assertEqual(tgt.lowest_free_tid(tgt.parse_show(SHOW)), 2)
        self.assertEqual(tgt.lowest_free_tid([]), 1)

    def test_argv(self) -> None:
        base = ["tgtadm", "-C", "7", "--lld", "iscsi"]
        self.assertEqual(tgt.target_new("tgtadm", 7, 2, IQN),
                         base + ["--mode", "target", "--op", "new", "--tid", "2",
                                 "--targetname", IQN])
        self.assertEqual(tgt.lun_new("tgtadm", 7, 2, 1, "/v/a.img"),
                         base + ["--mode", "logicalunit", "--op", "new", "--tid", "2",
                                 "--lun", "1", "--backing-store", "/v/a.img"])
        self.assertEqual(tgt.bind_initiator("tgtadm", 7, 2, "10.0.0.2")[-2:],
                         ["--initiator-address", "10.0.0.2"])
        self.assertEqual(tgt.bind_initiator("tgtadm", 7, 2, "10.0.0.0/24")[-1], "10.0.0.0/24")
        self.assertEqual(tgt.target_delete("tgtadm", 7, 2, force=True),
                         base + ["--mode", "target", "--op", "delete", "--force", "--tid", "2"])
        self.assertEqual(tgt.tgtd_argv("tgtd", 7, "/s/tgtd.pid", "127.0.0.1"),
                         ["tgtd", "-C", "7", "--pid-file", "/s/tgtd.pid",
                          "--iscsi", "portal=127.0.0.1:3260"])
        self.assertEqual(tgt.system_delete("tgtadm", 7),
                         ["tgtadm", "-C", "7", "--mode", "system", "--op", "delete"])

    def test_argv_refuses_bad_values(self) -> None:
        for call in (lambda: tgt.target_new("tgtadm", 0, 0, IQN),
                     lambda: tgt.target_new("tgtadm", 0, 1, "iqn.x:--force"),
                     lambda: tgt.target_new("tgtadm", 32768, 1, IQN),
                     lambda: tgt.lun_new("tgtadm", 0, 1, 0, "/v/a.img"),
                     lambda: tgt.lun_new("tgtadm", 0, 1, 1, "a.img"),
                     lambda: tgt.bind_initiator("tgtadm", 0, 1, "-I"),
                     lambda: tgt.tgtd_argv("tgtd", 0, "/s/p", "0.0.0.0:1")):
            with self.assertRaises(InvalidIdentifier):
                call()


class DriverTests(unittest.TestCase):
    """The driver against a fake runner."""

    def setUp(self) -> None:
        self.runner = FakeProcessRunner()
        self.show = tgt.show_targets("tgtadm", 5)
        self.runner.add_result(self.show, stdout=SHOW.encode())
        self.driver = IscsiExportDriver(self.runner, task.Clock(), os.path.abspath(self.mktemp()),
                                        portal_address="10.0.0.1", control_port=5,
                                        netns="nvt-host")

    @coroutine_test
    async def test_export_takes_lowest_free_tid(self) -> None:
        info = await self.driver.export(VOL, "/v/a.img")
        self.assertEqual(info, {"kind": "iscsi", "portal": "10.0.0.1:3260", "iqn": IQN,
                                "lun": 1})
        self.assertEqual([list(c) for c in self.runner.commands(netns="nvt-host")], [
            self.show,
            tgt.target_new("tgtadm", 5, 2, IQN),
            tgt.lun_new("tgtadm", 5, 2, 1, "/v/a.img"),
            tgt.bind_initiator("tgtadm", 5, 2, "ALL"),
        ])

    @coroutine_test
    async def test_existing_target_is_left_alone(self) -> None:
        info = await self.driver.export("vol-00000000000000001", "/v/vol-00000000000000001.img")
        self.assertEqual(info["iqn"], OTHER)
        self.assertEqual([list(c) for c in self.runner.commands()], [self.show])
        self.assertEqual(await self.driver.exports(), ["vol-00000000000000001"])

    @coroutine_test
    async def test_starts_tgtd_when_it_does_not_answer(self) -> None:
        self.runner.add_result(self.show, exit_code=107, stderr=b"can't connect", times=1)
        await self.driver.export(VOL, "/v/a.img")
        commands = [list(c) for c in self.runner.commands()]
        self.assertEqual(commands[:3], [
            self.show,
            tgt.tgtd_argv("tgtd", 5, self.driver.pid_file, "10.0.0.1"),
            self.show])

    @coroutine_test
    async def test_half_made_target_removed(self) -> None:
        self.runner.add_result(["tgtadm", "-C", "5", "--lld", "iscsi", "--mode", "logicalunit"],
                               exit_code=22, stderr=b"tgtadm: invalid request")
        with self.assertRaises(ExportError):
            await self.driver.export(VOL, "/v/a.img")
        self.assertEqual(list(self.runner.commands()[-1]),
                         tgt.target_delete("tgtadm", 5, 2, force=True))

    @coroutine_test
    async def test_unexport_in_use_and_absent(self) -> None:
        with self.assertRaises(ExportInUse):
            await self.driver.unexport("vol-00000000000000001")
        await self.driver.unexport(VOL)  # not exported: nothing to do
        self.assertEqual(self.runner.calls_matching(
            ["tgtadm", "-C", "5", "--lld", "iscsi", "--mode", "target", "--op", "delete"]), [])

    @coroutine_test
    async def test_restricted_initiators(self) -> None:
        driver = IscsiExportDriver(self.runner, task.Clock(), os.path.abspath(self.mktemp()),
                                   portal_address="10.0.0.1", control_port=5,
                                   initiators=["10.0.0.2", "10.0.1.0/24"])
        await driver.export(VOL, "/v/a.img")
        self.assertEqual([c[-1] for c in self.runner.commands() if "bind" in c],
                         ["10.0.0.2", "10.0.1.0/24"])
        with self.assertRaises(InvalidIdentifier):
            IscsiExportDriver(self.runner, task.Clock(), "/s", portal_address="10.0.0.1",
                              initiators=["everyone"])


class RealTgtdTests(unittest.TestCase):
    """A real tgtd in a fresh namespace."""

    skip = support.missing("tgtd", "tgtadm", "ip", "ss")

    def setUp(self) -> defer.Deferred[None]:
        from twisted.internet import reactor
        self.runner = support.real_runner()
        self.dir = support.short_tempdir(self)
        tag = support.unique_tag()
        self.netns = f"nvt-{tag}-t"
        control_port = 1000 + int(tag, 16) % 31000
        self.driver = IscsiExportDriver(self.runner, reactor, os.path.join(self.dir, "iscsi"),
                                        portal_address="127.0.0.1", control_port=control_port,
                                        netns=self.netns)
        support.forget_tgtd_sockets(self, control_port)
        self.path = os.path.join(self.dir, VOL + ".img")
        with open(self.path, "wb") as f:
            f.truncate(8 * 1024 * 1024)
        return defer.Deferred.fromCoroutine(self._netns())

    async def _netns(self) -> None:
        await support.make_netns(self, self.runner, self.netns)  # tgtd dies with it

    @coroutine_test
    async def test_target_listed_and_portal_open(self) -> None:
        await self.driver.export(VOL, self.path)
        shown = await self.runner.run(tgt.show_targets("tgtadm", self.driver.control_port))
        [target] = tgt.parse_show(shown.stdout.decode())
        self.assertEqual((target.iqn, target.luns.get(1), target.acl, target.sessions),
                         (IQN, self.path, ("ALL",), 0))
        self.assertIn(b"Size: 8 MB", shown.stdout)
        listening = await self.runner.run(["ss", "-Hltn"], netns=self.netns)
        self.assertIn(b"127.0.0.1:3260", listening.stdout)
        self.assertIsNotNone(self.driver.daemon_pid())
        await self.driver.unexport(VOL)
        shown = await self.runner.run(tgt.show_targets("tgtadm", self.driver.control_port))
        self.assertEqual(tgt.parse_show(shown.stdout.decode()), [])

    @coroutine_test
    async def test_shutdown_stops_our_tgtd(self) -> None:
        await self.driver.export(VOL, self.path)
        pid = self.driver.daemon_pid()
        self.assertTrue(await self.driver.shutdown())
        self.assertIsNone(self.driver.daemon_pid())
        self.assertFalse(os.path.exists(f"/proc/{pid}/cmdline")
                         and open(f"/proc/{pid}/cmdline", "rb").read())
        self.assertFalse(await self.driver.shutdown())
        self.assertEqual(await self.driver.exports(), [])
