"""nova.utils.polling.poll_until over a Clock."""

from __future__ import annotations

from twisted.internet import defer, task
from twisted.trial import unittest

from nova.utils.polling import poll_until


class PollUntilTests(unittest.TestCase):

    def setUp(self) -> None:
        self.clock = task.Clock()
        self.looks = 0

    def look(self, ready_at: int) -> bool:
        self.looks += 1
        return self.looks >= ready_at

    def test_done_at_once_no_pause(self) -> None:
        d = defer.Deferred.fromCoroutine(
            poll_until(self.clock, lambda: self.look(1), timeout=1, interval=0.5))
        self.assertTrue(self.successResultOf(d))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_done_later_with_an_async_look(self) -> None:
        async def look() -> bool:
            return self.look(3)
        d = defer.Deferred.fromCoroutine(poll_until(self.clock, look, timeout=5, interval=0.5))
        self.clock.advance(0.5)
        self.assertNoResult(d)
        self.clock.advance(0.5)
        self.assertTrue(self.successResultOf(d))
        self.assertEqual(self.looks, 3)

    def test_gives_up_after_the_timeout_with_a_last_look(self) -> None:
        d = defer.Deferred.fromCoroutine(
            poll_until(self.clock, lambda: self.look(100), timeout=1, interval=0.5))
        self.clock.pump([0.5, 0.5])
        self.assertFalse(self.successResultOf(d))
        self.assertEqual(self.looks, 3)  # at 0, 0.5 and 1 s
