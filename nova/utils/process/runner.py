"""
L{ProcessRunner}: the real L{IProcessRunner}, on C{reactor.spawnProcess}.
"""

from __future__ import annotations

import os
import signal
from typing import Any, Mapping, Sequence

from twisted.internet import defer, error, protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from nova.exception import ProcessError
from nova.utils.process.interface import (
    DEFAULT_TIMEOUT,
    CommandFailed,
    CommandNotFound,
    CommandTimedOut,
    IProcessRunner,
    OutputTooLarge,
    ProcessResult,
    check_argv,
    check_env,
    check_netns,
    check_timeout,
    describe,
)

__all__ = ["ProcessRunner", "find_executable"]

log = Logger()

#: Bytes of stdout (and, separately, of stderr) a command may write.
DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024


def find_executable(program: str, search_path: str) -> str | None:
    """
    Resolve a program name the way execvp would, without running anything.

    @param program: a bare name (looked up on C{search_path}) or a path
        containing C{/} (taken as is, relative to the current directory).
    @param search_path: a C{PATH}-style, colon-separated directory list.
    @return: the absolute path of an executable regular file, or C{None}.
    """
    if "/" in program:
        candidates = [program]
    else:
        # An empty PATH entry means the current directory, as for execvp.
        candidates = [os.path.join(d or ".", program) for d in search_path.split(os.pathsep)]
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return os.path.abspath(candidate)
    return None


class _RunProtocol(protocol.ProcessProtocol):
    """Collects the output of one command and reports how it ended."""

    def __init__(self, max_output: int, input: bytes | None) -> None:
        self.max_output = max_output
        self.input = input
        self.out: list[bytes] = []
        self.err: list[bytes] = []
        self.sizes = {1: 0, 2: 0}
        self.overflow: str | None = None
        self.exited = False
        self.stopping = False
        self.ended: defer.Deferred[Any] = defer.Deferred()
        self.on_overflow: Any = None
        self.on_exit: Any = None

    def connectionMade(self) -> None:
        if self.input:
            self.transport.write(self.input)
        self.transport.closeStdin()

    def _keep(self, fd: int, chunks: list[bytes], data: bytes) -> None:
        if self.overflow is not None:
            return
        self.sizes[fd] += len(data)
        if self.sizes[fd] > self.max_output:
            self.overflow = "stdout" if fd == 1 else "stderr"
            # Drop what we kept: the caller gets an error, not a truncated result.
            self.out.clear()
            self.err.clear()
            if self.on_overflow is not None:
                self.on_overflow()
            return
        chunks.append(data)

    def outReceived(self, data: bytes) -> None:
        self._keep(1, self.out, data)

    def errReceived(self, data: bytes) -> None:
        self._keep(2, self.err, data)

    def processExited(self, reason: Failure) -> None:
        self.exited = True
        if self.on_exit is not None:
            self.on_exit()

    def processEnded(self, reason: Failure) -> None:
        value = reason.value
        code = getattr(value, "exitCode", None)
        sig = getattr(value, "signal", None)
        if code is None:
            code = -sig if sig else -1
        if not self.ended.called:  # already called when the caller cancelled
            self.ended.callback((code, sig))


@implementer(IProcessRunner)
class ProcessRunner:
    """
    Runs host commands as child processes of this one, never through a shell.

    @param reactor: provides C{spawnProcess} (and C{callLater} unless
        C{clock} is given).
    @param clock: the L{IReactorTime} the timeouts run on; the reactor by
        default (tests pass a C{Clock} to fire timeouts at will).
    @param kill_grace: seconds between SIGTERM and SIGKILL for a command
        that overran its timeout.
    @param max_output: bytes of stdout, and of stderr, kept per command; a
        command writing more is stopped and L{OutputTooLarge} raised.
    @param search_path: the C{PATH} to look programs up in; by default the
        process's own C{PATH} at call time.
    """

    def __init__(self, reactor: Any, *, clock: Any = None, kill_grace: float = 5.0,
                 max_output: int = DEFAULT_MAX_OUTPUT,
                 search_path: str | None = None) -> None:
        self._reactor = reactor
        self._clock = clock if clock is not None else reactor
        self._kill_grace = check_timeout(kill_grace)
        self._max_output = max_output
        self._search_path = search_path

    def _path(self) -> str:
        if self._search_path is not None:
            return self._search_path
        return os.environ.get("PATH", os.defpath)

    def _resolve(self, program: str, argv: Sequence[str], netns: str | None) -> str:
        path = self._path()
        found = find_executable(program, path)
        if found is None:
            raise CommandNotFound(program, argv, netns, path)
        return found

    def _make_protocol(self, input: bytes | None) -> _RunProtocol:
        # A separate method so that tests can observe the child's progress.
        return _RunProtocol(self._max_output, input)

    async def run(self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT,
                  input: bytes | None = None, env: Mapping[str, str] | None = None,
                  check: bool = True, netns: str | None = None) -> ProcessResult:
        """
        Run one command to completion; see L{IProcessRunner.run}.
        """
        args = check_argv(argv)
        clean_env = check_env(env)
        timeout = check_timeout(timeout)
        netns = check_netns(netns)
        if input is not None and not isinstance(input, bytes):
            raise TypeError(f"input must be bytes, not {type(input).__name__}")
        executable = self._resolve(args[0], args, netns)
        full = [executable, *args[1:]]
        if netns is not None:
            # ip(8) execs the command itself after entering the namespace; we
            # resolved argv[0] here so a missing program is our clear error.
            full = [self._resolve("ip", args, netns), "netns", "exec", netns, *full]
        spawn_env = dict(os.environ) if clean_env is None else clean_env
        proto = self._make_protocol(input)
        log.debug("running {command}", command=describe(args, netns))
        try:
            process = self._reactor.spawnProcess(proto, full[0], full, env=spawn_env)
        except OSError as e:
            raise ProcessError(f"cannot start {describe(args, netns)}: {e}") from None
        return await self._supervise(process, proto, args, netns, timeout, check)

    async def _supervise(self, process: Any, proto: _RunProtocol, args: tuple[str, ...],
                         netns: str | None, timeout: float, check: bool) -> ProcessResult:
        timed_out = False
        exited_before_timeout = False
        kill_timer: Any = None

        def release_pipes() -> None:
            # A background child of the command may still hold its stdout or
            # stderr; close our ends so that processEnded can fire.
            process.loseConnection()

        def send(sig: int) -> None:
            try:
                process.signalProcess(sig)
            except error.ProcessExitedAlready:
                pass

        def kill() -> None:
            send(signal.SIGKILL)

        def stop() -> None:
            nonlocal kill_timer
            if proto.stopping:
                return
            proto.stopping = True
            if proto.exited:
                release_pipes()
                return
            send(signal.SIGTERM)
            kill_timer = self._clock.callLater(self._kill_grace, kill)

        def on_timeout() -> None:
            nonlocal timed_out, exited_before_timeout
            timed_out = True
            exited_before_timeout = proto.exited
            stop()

        def on_exit() -> None:
            if proto.stopping:
                release_pipes()

        proto.on_overflow = stop
        proto.on_exit = on_exit
        timer = self._clock.callLater(timeout, on_timeout)
        try:
            code, sig = await proto.ended
        except defer.CancelledError:
            # The caller gave up on the command: do not leave it running.
            if proto.exited:
                release_pipes()
            else:
                proto.stopping = True
                kill()
            raise
        finally:
            if timer.active():
                timer.cancel()
            if kill_timer is not None and kill_timer.active():
                kill_timer.cancel()
        stdout = b"".join(proto.out)
        stderr = b"".join(proto.err)
        if proto.overflow is not None:
            raise OutputTooLarge(args, netns, proto.overflow, self._max_output)
        if timed_out:
            if exited_before_timeout:
                detail = "it exited, but a background child kept its output open"
            elif sig is not None:
                detail = f"ended by signal {sig}"
            else:
                detail = f"stopped, exit status {code}"
            raise CommandTimedOut(args, netns, timeout, signal=sig, stdout=stdout,
                                  stderr=stderr, detail=detail)
        result = ProcessResult(argv=args, exit_code=code, stdout=stdout, stderr=stderr,
                               netns=netns)
        if check and code != 0:
            raise CommandFailed(result)
        return result
