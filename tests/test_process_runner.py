"""
Behaviour of the real L{ProcessRunner} that a fake cannot show: real
processes on trial's reactor, signals, pipes, and network namespaces.

Timeouts here run on a L{Clock} that the test advances once the child has
said (on stdout) that it is ready, so nothing depends on how fast it starts.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import uuid
from typing import Any

from twisted.internet import defer, task
from twisted.trial import unittest

from nova.utils.process import (
    CommandFailed,
    CommandNotFound,
    CommandTimedOut,
    OutputTooLarge,
    ProcessResult,
    ProcessRunner,
    find_executable,
)
from nova.utils.process.runner import _RunProtocol


def _reactor() -> Any:
    from twisted.internet import reactor
    return reactor


class _WatchedProtocol(_RunProtocol):
    """Fires C{first_output} with the first bytes the child writes to stdout."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.first_output: defer.Deferred[bytes] = defer.Deferred()

    def outReceived(self, data: bytes) -> None:
        super().outReceived(data)
        if not self.first_output.called:
            self.first_output.callback(data)


class _WatchedRunner(ProcessRunner):
    """A runner whose last child's progress a test can await."""

    protocol: _WatchedProtocol

    def _make_protocol(self, input: bytes | None) -> _RunProtocol:
        self.protocol = _WatchedProtocol(self._max_output, input)
        return self.protocol


class ProcessRunnerTests(unittest.TestCase):
    """Real processes."""

    def setUp(self) -> None:
        self.runner = ProcessRunner(_reactor())

    def run_cmd(self, argv: Any, **kwargs: Any) -> defer.Deferred[ProcessResult]:
        return defer.Deferred.fromCoroutine(self.runner.run(argv, **kwargs))

    async def test_stderr_tail_in_message(self) -> None:
        script = ("import sys\n"
                  "sys.stderr.write('noise line\\n' * 20000)\n"
                  "sys.stderr.write('THE REAL REASON\\n')\n"
                  "sys.exit(4)\n")
        e = await self.assertFailure(self.run_cmd([sys.executable, "-c", script]),
                                     CommandFailed)
        self.assertEqual(e.exit_code, 4)
        self.assertEqual(len(e.result.stderr), 11 * 20000 + 16)
        message = str(e)
        self.assertTrue(message.endswith("THE REAL REASON"), message[-100:])
        self.assertIn("exited with status 4: ...", message)
        self.assertLess(len(message), 2048 + 200 + len(script))

    async def test_env_passed(self) -> None:
        result = await self.run_cmd(["sh", "-c", 'printf %s "$NOVA_TEST_VAR"'],
                                    env={"NOVA_TEST_VAR": "a b;$c"})
        self.assertEqual(result.stdout, b"a b;$c")

    async def test_env_replaces_environment(self) -> None:
        result = await self.run_cmd(["env"], env={"ONLY": "this"})
        self.assertEqual(result.stdout, b"ONLY=this\n")

    async def test_env_inherited_by_default(self) -> None:
        name = f"NOVA_TEST_{uuid.uuid4().hex[:8]}"
        os.environ[name] = "inherited"
        self.addCleanup(os.environ.pop, name)
        result = await self.run_cmd(["sh", "-c", f'printf %s "${name}"'])
        self.assertEqual(result.stdout, b"inherited")

    async def test_missing_program(self) -> None:
        name = f"nova-no-such-program-{uuid.uuid4().hex[:8]}"
        e = await self.assertFailure(self.run_cmd([name, "--help"]), CommandNotFound)
        self.assertEqual(e.program, name)
        self.assertIn(f"command not found: {name!r}", str(e))
        self.assertIn("PATH", str(e))

    async def test_missing_absolute_path(self) -> None:
        path = f"/nonexistent-{uuid.uuid4().hex[:8]}/prog"
        e = await self.assertFailure(self.run_cmd([path]), CommandNotFound)
        self.assertIn(repr(path), str(e))

    async def test_non_executable_file_is_not_found(self) -> None:
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(path, 0o644)
        await self.assertFailure(self.run_cmd([path]), CommandNotFound)

    async def test_search_path_used(self) -> None:
        runner = ProcessRunner(_reactor(), search_path="/nonexistent-dir")
        await self.assertFailure(defer.Deferred.fromCoroutine(runner.run(["true"])),
                                 CommandNotFound)

    def test_find_executable(self) -> None:
        tmp = self.mktemp()
        os.makedirs(tmp)
        prog = os.path.join(tmp, "prog")
        with open(prog, "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(prog, 0o755)
        os.makedirs(os.path.join(tmp, "dir-not-file"))
        self.assertEqual(find_executable("prog", f"/nonexistent:{tmp}"), os.path.abspath(prog))
        self.assertEqual(find_executable(prog, "/nonexistent"), os.path.abspath(prog))
        self.assertIsNone(find_executable("dir-not-file", tmp))
        self.assertIsNone(find_executable("prog", "/nonexistent"))

    async def test_nul_in_argument(self) -> None:
        await self.assertFailure(self.run_cmd(["echo", "ok\x00rm -rf /"]), ValueError)

    async def test_shell_metacharacters_are_literal(self) -> None:
        text = "$(id); rm -rf / `id` | cat > x && * ~ 'q' \"d\" \n next"
        result = await self.run_cmd(["echo", text])
        self.assertEqual(result.stdout, text.encode() + b"\n")

    async def test_exit_by_signal(self) -> None:
        result = await self.run_cmd(["sh", "-c", "kill -9 $$"], check=False)
        self.assertEqual(result.exit_code, -signal.SIGKILL)
        e = await self.assertFailure(self.run_cmd(["sh", "-c", "kill -9 $$"]), CommandFailed)
        self.assertIn("was killed by signal 9", str(e))

    async def test_large_input_and_output(self) -> None:
        data = os.urandom(3 * 1024 * 1024)
        result = await self.run_cmd(["cat"], input=data)
        self.assertEqual(result.stdout, data)

    async def test_input_not_read(self) -> None:
        # The child exits without reading its stdin: no broken-pipe error.
        result = await self.run_cmd(["head", "-c", "5"], input=b"y" * (4 * 1024 * 1024))
        self.assertEqual(result.stdout, b"yyyyy")

    async def test_output_limit(self) -> None:
        runner = ProcessRunner(_reactor(), max_output=64 * 1024)
        e = await self.assertFailure(
            defer.Deferred.fromCoroutine(runner.run(["head", "-c", "1000000", "/dev/zero"])),
            OutputTooLarge)
        self.assertEqual((e.stream, e.limit), ("stdout", 64 * 1024))
        self.assertIn("wrote more than 65536 bytes to stdout", str(e))

    async def test_stderr_limit(self) -> None:
        runner = ProcessRunner(_reactor(), max_output=1024)
        e = await self.assertFailure(
            defer.Deferred.fromCoroutine(
                runner.run(["sh", "-c", "head -c 100000 /dev/zero >&2"])),
            OutputTooLarge)
        self.assertEqual(e.stream, "stderr")


class ProcessRunnerTimeoutTests(unittest.TestCase):
    """Timeouts on a test-driven clock."""

    def setUp(self) -> None:
        self.clock = task.Clock()
        self.runner = _WatchedRunner(_reactor(), clock=self.clock, kill_grace=3.0)

    def start(self, argv: list[str], timeout: float) -> defer.Deferred[ProcessResult]:
        """Run C{argv}; if the test fails half-way, kill it and reap it."""
        running = defer.Deferred.fromCoroutine(self.runner.run(argv, timeout=timeout))
        protocol = self.runner.protocol

        def reap() -> defer.Deferred[Any] | None:
            if running.called:
                return None
            _kill_quietly(protocol.transport.pid)
            return running.addErrback(lambda _: None)

        self.addCleanup(reap)
        return running

    async def test_sigterm(self) -> None:
        script = "import os, time; os.write(1, b'ready\\n'); time.sleep(600)"
        running = self.start([sys.executable, "-c", script], timeout=10)
        self.assertEqual(await self.runner.protocol.first_output, b"ready\n")
        self.clock.advance(10)
        e = await self.assertFailure(running, CommandTimedOut)
        self.assertEqual((e.signal, e.stdout), (signal.SIGTERM, b"ready\n"))
        self.assertIn("timed out after 10 s (ended by signal 15)", str(e))
        # The SIGKILL timer was cancelled once the process ended.
        self.assertEqual(self.clock.getDelayedCalls(), [])

    async def test_sigkill_after_grace(self) -> None:
        script = ("import os, signal, time\n"
                  "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                  "os.write(1, b'ready\\n')\n"
                  "time.sleep(600)\n")
        running = self.start([sys.executable, "-c", script], timeout=10)
        await self.runner.protocol.first_output
        self.clock.advance(10)
        # SIGTERM was sent and is ignored; the SIGKILL waits for the grace period.
        self.assertFalse(running.called)
        self.clock.advance(3)
        e = await self.assertFailure(running, CommandTimedOut)
        self.assertEqual(e.signal, signal.SIGKILL)

    async def test_background_child_holding_pipes(self) -> None:
        # The shell exits at once but leaves a child with its stdout open;
        # the timeout must still end the call.
        argv = ["sh", "-c", "sleep 600 & echo $!"]
        running = self.start(argv, timeout=5)
        pid = int(await self.runner.protocol.first_output)
        self.addCleanup(_kill_quietly, pid)
        self.clock.advance(5)
        e = await self.assertFailure(running, CommandTimedOut)
        self.assertEqual(e.argv, tuple(argv))

    async def test_cancel_kills(self) -> None:
        script = "import os, time; os.write(1, b'ready\\n'); time.sleep(600)"
        running = self.start([sys.executable, "-c", script], timeout=10)
        protocol = self.runner.protocol
        await protocol.first_output
        ended = defer.Deferred()
        protocol.on_exit = lambda: ended.callback(None)
        running.cancel()
        await self.assertFailure(running, defer.CancelledError)
        await ended
        self.assertEqual(self.clock.getDelayedCalls(), [])


def _kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class NetnsTests(unittest.TestCase):
    """Commands inside a network namespace (root only)."""

    def setUp(self) -> None:
        if os.geteuid() != 0:
            raise unittest.SkipTest("network namespaces need root")
        if shutil.which("ip") is None and not os.path.exists("/usr/sbin/ip"):
            raise unittest.SkipTest("iproute2 (ip) is not installed")
        self.runner = ProcessRunner(_reactor())

    async def test_runs_inside_namespace(self) -> None:
        name = f"nova-test-{uuid.uuid4().hex[:8]}"
        await self.runner.run(["ip", "netns", "add", name])
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(
            self.runner.run(["ip", "netns", "delete", name])))
        result = await self.runner.run(["ip", "-o", "link", "show"], netns=name)
        self.assertEqual(result.netns, name)
        self.assertEqual(result.argv, ("ip", "-o", "link", "show"))
        lines = result.stdout.decode().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("1: lo: "), lines)

    async def test_failure_names_namespace(self) -> None:
        name = f"nova-test-{uuid.uuid4().hex[:8]}"
        await self.runner.run(["ip", "netns", "add", name])
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(
            self.runner.run(["ip", "netns", "delete", name])))
        e = await self.assertFailure(
            defer.Deferred.fromCoroutine(self.runner.run(["false"], netns=name)),
            CommandFailed)
        self.assertEqual((e.netns, e.exit_code), (name, 1))
        self.assertIn(f"false (in netns {name}) exited with status 1", str(e))

    async def test_missing_namespace(self) -> None:
        name = f"nova-test-{uuid.uuid4().hex[:8]}"
        e = await self.assertFailure(
            defer.Deferred.fromCoroutine(self.runner.run(["true"], netns=name)),
            CommandFailed)
        self.assertIn(name, e.result.stderr.decode())
