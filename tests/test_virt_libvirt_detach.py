"""
The libvirt driver's wait for a detached disk to leave the guest: libvirt
answers a detach once it asked the guest (or after ~5 s without its answer),
so the driver watches the live XML until the disk is gone. Over a Clock.
"""

from __future__ import annotations

from twisted.internet import defer, task
from twisted.trial import unittest

from nova.virt.errors import VirtError
from nova.virt.libvirt.driver import wait_for_removal


class WaitForRemovalTests(unittest.TestCase):

    def setUp(self) -> None:
        self.clock = task.Clock()
        self.present = ["vda", "vdb"]
        self.looks = 0

    async def devices(self) -> list[str]:
        self.looks += 1
        return list(self.present)

    def wait(self, timeout: float = 1.0) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(
            wait_for_removal(self.clock, self.devices, "vdb", timeout=timeout, interval=0.2))

    def test_gone_at_once(self) -> None:
        self.present.remove("vdb")
        self.assertIsNone(self.successResultOf(self.wait()))
        self.assertEqual(self.looks, 1)

    def test_the_guest_takes_its_time(self) -> None:
        waiting = self.wait()
        self.clock.advance(0.2)
        self.assertNoResult(waiting)
        self.present.remove("vdb")
        self.clock.advance(0.2)
        self.assertIsNone(self.successResultOf(waiting))

    def test_the_guest_keeps_it(self) -> None:
        waiting = self.wait(timeout=1.0)
        self.clock.pump([0.2] * 6)
        failure = self.failureResultOf(waiting, VirtError)
        self.assertIn("has not released vdb within 1 s", str(failure.value))
