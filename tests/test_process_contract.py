"""
The L{IProcessRunner} contract, run against the real runner (real processes
on trial's reactor) and against the fake primed to answer like those commands.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from nova.exception import ProcessError
from nova.utils.process import (
    CommandFailed,
    CommandTimedOut,
    FakeProcessRunner,
    IProcessRunner,
    ProcessResult,
    ProcessRunner,
    RecordedCall,
    Reply,
)
from nova.utils.validate import InvalidIdentifier

FAIL_WITH_STDERR = ["sh", "-c", "echo out; echo 'it broke' >&2; exit 3"]


class ProcessRunnerContractMixin:
    """
    What every L{IProcessRunner} does. Subclasses define C{make_runner()}.
    """

    make_runner: Any

    def runner_run(self, *args: Any, **kwargs: Any) -> defer.Deferred[ProcessResult]:
        return defer.Deferred.fromCoroutine(self.make_runner().run(*args, **kwargs))

    def test_provides_interface(self) -> None:
        self.assertTrue(verifyObject(IProcessRunner, self.make_runner()))

    async def test_true(self) -> None:
        result = await self.runner_run(["true"])
        self.assertEqual(result, ProcessResult(argv=("true",), exit_code=0))

    async def test_echo(self) -> None:
        result = await self.runner_run(["echo", "hi"])
        self.assertEqual((result.exit_code, result.stdout, result.stderr), (0, b"hi\n", b""))
        self.assertEqual(result.argv, ("echo", "hi"))

    async def test_false_raises(self) -> None:
        e = await self.assertFailure(self.runner_run(["false"]), CommandFailed)
        self.assertIsInstance(e, ProcessError)
        self.assertEqual((e.argv, e.exit_code, e.result.exit_code), (("false",), 1, 1))
        self.assertIn("false exited with status 1", str(e))

    async def test_false_unchecked(self) -> None:
        result = await self.runner_run(["false"], check=False)
        self.assertEqual(result.exit_code, 1)

    async def test_failure_message_quotes_stderr(self) -> None:
        e = await self.assertFailure(self.runner_run(FAIL_WITH_STDERR), CommandFailed)
        self.assertEqual(e.exit_code, 3)
        self.assertEqual((e.result.stdout, e.result.stderr), (b"out\n", b"it broke\n"))
        self.assertTrue(str(e).endswith("exited with status 3: it broke"), str(e))

    async def test_cat_with_input(self) -> None:
        result = await self.runner_run(["cat"], input=b"some\x00bytes\n")
        self.assertEqual(result.stdout, b"some\x00bytes\n")

    async def test_cat_without_input_gets_eof(self) -> None:
        result = await self.runner_run(["cat"])
        self.assertEqual(result.stdout, b"")

    async def test_timeout(self) -> None:
        e = await self.assertFailure(self.runner_run(["sleep", "5"], timeout=0.2), CommandTimedOut)
        self.assertIsInstance(e, ProcessError)
        self.assertEqual((e.argv, e.timeout), (("sleep", "5"), 0.2))
        self.assertIn("sleep 5 timed out after 0.2 s", str(e))

    async def test_timeout_raises_even_unchecked(self) -> None:
        await self.assertFailure(self.runner_run(["sleep", "5"], timeout=0.2, check=False),
                                 CommandTimedOut)

    async def test_argv_must_be_a_list_not_a_string(self) -> None:
        await self.assertFailure(self.runner_run("echo hi"), TypeError)

    async def test_non_string_argument(self) -> None:
        await self.assertFailure(self.runner_run(["echo", b"hi"]), TypeError)
        await self.assertFailure(self.runner_run(["sleep", 1]), TypeError)

    async def test_nul_in_argument(self) -> None:
        await self.assertFailure(self.runner_run(["echo", "a\x00b"]), ValueError)

    async def test_empty_argv(self) -> None:
        await self.assertFailure(self.runner_run([]), ValueError)
        await self.assertFailure(self.runner_run([""]), ValueError)

    async def test_bad_timeout(self) -> None:
        for bad in (0, -1, float("inf"), float("nan")):
            await self.assertFailure(self.runner_run(["true"], timeout=bad), ValueError)

    async def test_bad_netns_name(self) -> None:
        for bad in ("-n", "a/b", "", "x" * 65, "a b", "../etc"):
            e = await self.assertFailure(self.runner_run(["true"], netns=bad), ValueError)
            self.assertIsInstance(e, InvalidIdentifier)

    async def test_bad_env(self) -> None:
        await self.assertFailure(self.runner_run(["true"], env={"A": 1}), TypeError)
        await self.assertFailure(self.runner_run(["true"], env={"A=B": "c"}), ValueError)
        await self.assertFailure(self.runner_run(["true"], env={"A": "x\x00y"}), ValueError)

    async def test_input_must_be_bytes(self) -> None:
        await self.assertFailure(self.runner_run(["cat"], input="text"), TypeError)


def _cat(call: RecordedCall) -> Reply:
    return Reply(stdout=call.input or b"")


def primed_fake() -> FakeProcessRunner:
    """A fake that answers like the real commands the contract uses."""
    fake = FakeProcessRunner()
    fake.add_result(["false"], exit_code=1)
    fake.add_result(["echo", "hi"], stdout=b"hi\n")
    fake.add_handler(["cat"], _cat)
    fake.add_timeout(["sleep", "5"])
    fake.add_result(FAIL_WITH_STDERR, exit_code=3, stdout=b"out\n", stderr=b"it broke\n")
    return fake


class RealRunnerContractTests(ProcessRunnerContractMixin, unittest.TestCase):
    """The contract against L{ProcessRunner} and real processes."""

    def make_runner(self) -> ProcessRunner:
        from twisted.internet import reactor
        return ProcessRunner(reactor, kill_grace=2.0)


class FakeRunnerContractTests(ProcessRunnerContractMixin, unittest.TestCase):
    """The contract against L{FakeProcessRunner}."""

    def make_runner(self) -> FakeProcessRunner:
        return primed_fake()
