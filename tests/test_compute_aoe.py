"""
The compute host's AoE initiator over a directory standing for /dev/etherd
and one for /sys/module/aoe: the device found, discovered, waited for, and
every refusal with its reason. (This machine's kernel has no aoe module: the
real initiator cannot run here; the export side is proven by
tests/test_volume_exports_aoe.py's raw-socket client.)
"""

from __future__ import annotations

from pathlib import Path

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial import unittest

from nova.compute.aoe import AoeInitiator
from nova.compute.volumes import UnsupportedExport
from tests.support.compute import run_now


class AoeInitiatorTests(unittest.TestCase):

    def setUp(self) -> None:
        base = Path(self.mktemp())
        self.etherd = base / "etherd"
        self.module = base / "module"
        self.etherd.mkdir(parents=True)
        self.module.mkdir()
        self.clock = Clock()
        self.initiator = AoeInitiator(self.clock, run_now, etherd_dir=self.etherd,
                                      module_dir=self.module, timeout=1.0, interval=0.1)

    def device(self, shelf: object, slot: object) -> defer.Deferred:
        return defer.Deferred.fromCoroutine(self.initiator.device(shelf, slot))

    def test_present_device_needs_no_discovery(self) -> None:
        (self.etherd / "e1.3").touch()
        self.assertEqual(self.successResultOf(self.device(1, 3)), str(self.etherd / "e1.3"))
        self.assertFalse((self.etherd / "discover").exists())

    def test_discovery_then_the_device_appears(self) -> None:
        waiting = self.device(2, 0)
        self.assertEqual((self.etherd / "discover").read_bytes(), b"\n")
        self.assertNoResult(waiting)
        self.clock.advance(0.1)
        (self.etherd / "e2.0").touch()
        self.clock.advance(0.1)
        self.assertEqual(self.successResultOf(waiting), str(self.etherd / "e2.0"))

    def test_no_target_answers(self) -> None:
        waiting = self.device(1, 4)
        self.clock.pump([0.1] * 11)
        failure = self.failureResultOf(waiting, UnsupportedExport)
        self.assertIn("no AoE target e1.4 answered", str(failure.value))

    def test_no_module(self) -> None:
        self.module.rmdir()
        self.assertFalse(self.initiator.available())
        failure = self.failureResultOf(self.device(1, 3), UnsupportedExport)
        self.assertIn("aoe kernel module", str(failure.value))
        self.assertFalse((self.etherd / "discover").exists())

    def test_malformed_targets(self) -> None:
        for shelf, slot in ((None, 1), (1, None), ("1", 1), (True, 1), (-1, 1),
                            (0xFFFF, 1), (1, 0xFF), (1, "3/../x")):
            failure = self.failureResultOf(self.device(shelf, slot), UnsupportedExport)
            self.assertIn("malformed aoe export", str(failure.value))
        self.assertFalse((self.etherd / "discover").exists())
