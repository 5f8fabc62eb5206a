"""
What L{FakeProcessRunner} offers manager tests beyond the shared contract:
recording, prefix matching, scripted sequences, handlers.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.trial import unittest

from nova.utils.process import (
    CommandFailed,
    CommandNotFound,
    CommandTimedOut,
    FakeProcessRunner,
    RecordedCall,
    Reply,
)


class FakeProcessRunnerTests(unittest.TestCase):

    def setUp(self) -> None:
        self.fake = FakeProcessRunner()

    async def test_default_success_and_recording(self) -> None:
        result = await self.fake.run(["ip", "link", "add", "br100", "type", "bridge"],
                                     netns="host1", timeout=5, input=b"x", env={"A": "b"},
                                     check=False)
        self.assertEqual((result.exit_code, result.stdout, result.stderr, result.netns),
                         (0, b"", b"", "host1"))
        self.assertEqual(self.fake.calls, [RecordedCall(
            argv=("ip", "link", "add", "br100", "type", "bridge"), netns="host1",
            input=b"x", env={"A": "b"}, timeout=5.0, check=False)])

    async def test_commands_filtered_by_netns(self) -> None:
        await self.fake.run(["a"])
        await self.fake.run(["b"], netns="n1")
        await self.fake.run(["c"], netns="n2")
        self.assertEqual(self.fake.commands(), [("a",), ("b",), ("c",)])
        self.assertEqual(self.fake.commands(netns="n1"), [("b",)])
        self.assertEqual(self.fake.commands(netns=None), [("a",)])

    async def test_rejected_calls_are_not_recorded(self) -> None:
        with self.assertRaises(ValueError):
            await self.fake.run(["echo", "a\x00"])
        self.assertEqual(self.fake.calls, [])

    async def test_longest_prefix_wins(self) -> None:
        self.fake.add_result(["ip"], stdout=b"short")
        self.fake.add_result(["ip", "link", "show"], stdout=b"long")
        self.fake.add_result(["ip", "link"], stdout=b"middle")
        self.assertEqual((await self.fake.run(["ip", "link", "show", "x"])).stdout, b"long")
        self.assertEqual((await self.fake.run(["ip", "link", "set"])).stdout, b"middle")
        self.assertEqual((await self.fake.run(["ip", "addr"])).stdout, b"short")
        self.assertEqual((await self.fake.run(["iptables"])).stdout, b"")

    async def test_later_entry_wins_on_tie(self) -> None:
        self.fake.add_result(["x"], stdout=b"first")
        self.fake.add_result(["x"], stdout=b"second")
        self.assertEqual((await self.fake.run(["x"])).stdout, b"second")

    async def test_times_scripts_a_sequence(self) -> None:
        self.fake.add_result(["ip", "link", "show", "br100"], exit_code=1,
                             stderr=b'Device "br100" does not exist.\n', times=1)
        e = await self.assertFailure(
            defer.Deferred.fromCoroutine(self.fake.run(["ip", "link", "show", "br100"])),
            CommandFailed)
        self.assertIn('Device "br100" does not exist.', str(e))
        result = await self.fake.run(["ip", "link", "show", "br100"])
        self.assertEqual(result.exit_code, 0)

    async def test_netns_specific_entry(self) -> None:
        self.fake.add_result(["hostname"], stdout=b"in-ns\n", netns="n1")
        self.fake.add_result(["whoami"], stdout=b"root-ns\n", netns=None)
        self.assertEqual((await self.fake.run(["hostname"], netns="n1")).stdout, b"in-ns\n")
        self.assertEqual((await self.fake.run(["hostname"])).stdout, b"")
        self.assertEqual((await self.fake.run(["whoami"])).stdout, b"root-ns\n")
        self.assertEqual((await self.fake.run(["whoami"], netns="n1")).stdout, b"")

    async def test_handler_sees_call(self) -> None:
        seen: list[RecordedCall] = []

        def handler(call: RecordedCall) -> Reply:
            seen.append(call)
            return Reply(stdout=(call.input or b"").upper())

        self.fake.add_handler(["tr"], handler)
        result = await self.fake.run(["tr", "a-z", "A-Z"], input=b"abc")
        self.assertEqual(result.stdout, b"ABC")
        self.assertEqual(seen[0].argv, ("tr", "a-z", "A-Z"))

    async def test_async_handler(self) -> None:
        async def handler(call: RecordedCall) -> Reply:
            return Reply(exit_code=2)

        self.fake.add_handler(["x"], handler)
        self.assertEqual((await self.fake.run(["x"], check=False)).exit_code, 2)

    async def test_timeout_and_missing(self) -> None:
        self.fake.add_timeout(["dnsmasq"])
        self.fake.add_missing("vblade")
        e = await self.assertFailure(
            defer.Deferred.fromCoroutine(self.fake.run(["dnsmasq", "--test"], timeout=3)),
            CommandTimedOut)
        self.assertEqual(e.timeout, 3.0)
        e2 = await self.assertFailure(
            defer.Deferred.fromCoroutine(self.fake.run(["vblade", "1", "0"], netns="h")),
            CommandNotFound)
        self.assertEqual((e2.program, e2.netns), ("vblade", "h"))

    async def test_calls_matching(self) -> None:
        await self.fake.run(["iptables", "-A", "x"])
        await self.fake.run(["ip", "link"])
        await self.fake.run(["iptables", "-D", "x"])
        self.assertEqual([c.argv for c in self.fake.calls_matching(["iptables"])],
                         [("iptables", "-A", "x"), ("iptables", "-D", "x")])

    def test_bad_priming(self) -> None:
        self.assertRaises(ValueError, self.fake.add_result, [])
        self.assertRaises(ValueError, self.fake.add_result, ["x"], times=0)
        self.assertRaises(ValueError, self.fake.add_result, ["x"], netns="-bad")
