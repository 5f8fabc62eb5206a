"""
Long-running helper programs that a nova process owns, such as the
all-in-one's own redis-server: started without a shell, awaited until they
answer, stopped (and reaped) with their parent.
"""

from __future__ import annotations

import os
import signal
from typing import Any, Awaitable, Callable, Sequence

from twisted.application.service import Service
from twisted.internet import defer, error, protocol
from twisted.logger import Logger

from nova.exception import ProcessError

log = Logger()


class _ChildProtocol(protocol.ProcessProtocol):
    def __init__(self, name: str) -> None:
        self.name = name
        self.ended: defer.Deferred[int | None] = defer.Deferred()
        self.tail: list[bytes] = []

    def _keep(self, data: bytes) -> None:
        self.tail.append(data)
        del self.tail[:-20]

    def outReceived(self, data: bytes) -> None:
        self._keep(data)

    def errReceived(self, data: bytes) -> None:
        self._keep(data)

    def processEnded(self, reason: Any) -> None:
        code = getattr(reason.value, "exitCode", None)
        self.ended.callback(code)


class ChildProcessService(Service):
    """
    Runs C{argv} for as long as this service runs.

    @param argv: the program and its arguments (never passed to a shell).
    @param ready: awaited after the start; returns once the program answers,
        raises if it never does.
    """

    def __init__(self, reactor: Any, name: str, argv: Sequence[str],
                 ready: Callable[[], Awaitable[None]], env: dict[str, str] | None = None,
                 stop_timeout: float = 10.0) -> None:
        self.name = name
        self._reactor = reactor
        self._argv = list(argv)
        self._ready = ready
        self._env = env if env is not None else dict(os.environ)
        self._stop_timeout = stop_timeout
        self._process: Any = None
        self._protocol: _ChildProtocol | None = None

    async def start(self) -> None:
        """Start the program and wait until it answers."""
        self._protocol = _ChildProtocol(self.name)
        try:
            self._process = self._reactor.spawnProcess(
                self._protocol, self._argv[0], self._argv, env=self._env)
        except OSError as e:
            raise ProcessError(f"cannot start {self.name} ({self._argv[0]}): {e}") from None
        ended = self._protocol.ended
        waiting = defer.Deferred.fromCoroutine(self._ready())
        try:
            await defer.DeferredList([waiting, ended], fireOnOneCallback=True,
                                     fireOnOneErrback=True, consumeErrors=True)
        except defer.FirstError as e:
            await self.stop()
            raise ProcessError(f"{self.name} did not answer: {e.subFailure.value}") from None
        if ended.called:
            waiting.cancel()
            output = b"".join(self._protocol.tail).decode("utf-8", "replace").strip()
            raise ProcessError(f"{self.name} exited at start: {output[-500:]}")

    def startService(self) -> None:
        # The owner awaits start() itself (it must know when the child answers);
        # the service only marks the child as owned by the running process.
        super().startService()

    def stopService(self) -> defer.Deferred[None]:
        super().stopService()
        return defer.Deferred.fromCoroutine(self.stop())

    async def stop(self) -> None:
        """Ask the program to exit (SIGTERM), then kill it if it lingers."""
        if self._process is None or self._protocol is None or self._protocol.ended.called:
            return
        try:
            self._process.signalProcess("TERM")
        except error.ProcessExitedAlready:
            return
        timer = self._reactor.callLater(self._stop_timeout, self._kill)
        await self._protocol.ended
        if timer.active():
            timer.cancel()

    def _kill(self) -> None:
        try:
            self._process.signalProcess(signal.SIGKILL)
        except error.ProcessExitedAlready:
            pass
