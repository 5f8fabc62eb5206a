"""
A small asynchronous QMP (QEMU Machine Protocol) client over a unix socket.

QMP is JSON objects, one per line: the server greets
(C{{"QMP": {"version": ..., "capabilities": [...]}}}), the client leaves
negotiation mode with C{qmp_capabilities}, then sends
C{{"execute": NAME, "arguments": {...}, "id": N}} and gets back
C{{"return": ..., "id": N}} or C{{"error": {"class": C, "desc": D}, "id": N}};
events (C{{"event": NAME, "data": ..., "timestamp": ...}}) may arrive at any
time in between.

L{connect_qmp} returns a ready L{QmpClient} (greeting read, capabilities
negotiated). Errors are typed: L{QmpCommandError} for an error reply,
L{QmpConnectionLost} when the socket closes under a command, L{QmpTimeout}
when the server does not answer in time.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import defer, error, protocol
from twisted.internet.endpoints import UNIXClientEndpoint
from twisted.logger import Logger
from twisted.protocols.basic import LineOnlyReceiver

from nova.exception import ProcessError

__all__ = ["QmpError", "QmpCommandError", "QmpConnectionLost", "QmpTimeout",
           "QmpProtocol", "QmpClient", "connect_qmp"]

log = Logger()


class QmpError(ProcessError):
    """Talking to a QEMU process over QMP failed."""


class QmpCommandError(QmpError):
    """
    QEMU answered a command with an error.

    @ivar command: the command.
    @ivar error_class: QEMU's error class (C{GenericError}, C{DeviceNotFound}...).
    @ivar desc: QEMU's description of the error.
    """

    def __init__(self, command: str, error_class: str, desc: str) -> None:
        super().__init__(f"QMP {command} failed: {error_class}: {desc}")
        self.command = command
        self.error_class = error_class
        self.desc = desc


class QmpConnectionLost(QmpError):
    """The QMP connection closed (or could not be made)."""


class QmpTimeout(QmpError):
    """QEMU did not answer in time."""


class QmpProtocol(LineOnlyReceiver):
    """
    The wire side: parses lines, matches replies to commands by id, queues events.

    @ivar greeting: a Deferred that fires with the server's greeting object.
    @ivar events: the events received so far, oldest first.
    """

    delimiter = b"\n"
    MAX_LENGTH = 16 * 1024 * 1024

    def __init__(self) -> None:
        self.greeting: defer.Deferred[dict[str, Any]] = defer.Deferred()
        self.events: list[dict[str, Any]] = []
        self._pending: dict[int, tuple[str, defer.Deferred[Any]]] = {}
        self._next_id = 0
        self._lost: QmpConnectionLost | None = None

    def lineReceived(self, line: bytes) -> None:
        line = line.rstrip(b"\r")
        if not line.strip():
            return
        try:
            message = json.loads(line)
        except ValueError:
            log.warn("QMP: ignoring a line that is not JSON: {line!r}", line=line[:200])
            return
        if not isinstance(message, dict):
            return
        if "QMP" in message:
            if not self.greeting.called:
                self.greeting.callback(message)
        elif "event" in message:
            self.events.append(message)
        elif "id" in message:
            entry = self._pending.pop(message["id"], None) if isinstance(
                message["id"], int) else None
            if entry is None:
                log.warn("QMP: a reply nobody waits for: {m!r}", m=message)
                return
            command, waiting = entry
            if "error" in message:
                error = message["error"] or {}
                waiting.errback(QmpCommandError(command, str(error.get("class", "?")),
                                                str(error.get("desc", ""))))
            else:
                waiting.callback(message.get("return"))

    def lineLengthExceeded(self, line: bytes) -> None:
        self.transport.loseConnection()

    def execute(self, command: str, arguments: dict[str, Any] | None = None
                ) -> defer.Deferred[Any]:
        """
        Send one command.

        @return: a Deferred firing with its C{return} value, or failing with
            L{QmpCommandError} or L{QmpConnectionLost}.
        """
        if self._lost is not None:
            return defer.fail(self._lost)
        self._next_id += 1
        request: dict[str, Any] = {"execute": command, "id": self._next_id}
        if arguments:
            request["arguments"] = arguments
        waiting: defer.Deferred[Any] = defer.Deferred()
        self._pending[self._next_id] = (command, waiting)
        self.sendLine(json.dumps(request).encode())
        return waiting

    def connectionLost(self, reason: Any = protocol.connectionDone) -> None:
        self._lost = QmpConnectionLost(f"QMP connection closed: {reason.getErrorMessage()}")
        pending, self._pending = self._pending, {}
        for _command, waiting in pending.values():
            waiting.errback(self._lost)
        if not self.greeting.called:
            self.greeting.errback(self._lost)
            # Whoever awaited the greeting has had the failure by now; nobody
            # else will: keep it from being logged as unhandled.
            self.greeting.addErrback(lambda _: None)


class QmpClient:
    """
    A negotiated QMP connection.

    @param proto: the connected L{QmpProtocol}.
    @param clock: for the command timeouts.
    @param timeout: seconds a command may take.
    """

    def __init__(self, proto: QmpProtocol, clock: Any, timeout: float) -> None:
        self.protocol = proto
        self._clock = clock
        self._timeout = timeout

    @property
    def events(self) -> list[dict[str, Any]]:
        """The events received so far."""
        return self.protocol.events

    async def execute(self, command: str, arguments: dict[str, Any] | None = None,
                      timeout: float | None = None) -> Any:
        """
        Run one command.

        @param command: the QMP command name.
        @param arguments: its arguments (JSON-safe).
        @param timeout: seconds (default: the client's).
        @return: its C{return} value.
        @raise QmpCommandError: QEMU answered with an error.
        @raise QmpConnectionLost: the connection closed first.
        @raise QmpTimeout: no answer in time (the connection is then closed:
            a late reply could not be told apart).
        """
        waiting = self.protocol.execute(command, arguments)
        limit = self._timeout if timeout is None else timeout
        try:
            return await waiting.addTimeout(limit, self._clock)
        except defer.TimeoutError:
            self.close()
            raise QmpTimeout(f"QMP {command}: no answer within {limit:g} s") from None

    def close(self) -> None:
        """Close the connection (pending commands fail with L{QmpConnectionLost})."""
        if self.protocol.transport is not None:
            self.protocol.transport.loseConnection()


class _Factory(protocol.Factory):
    def buildProtocol(self, addr: Any) -> QmpProtocol:
        return QmpProtocol()


async def connect_qmp(reactor: Any, path: str, *, timeout: float = 10.0) -> QmpClient:
    """
    Connect to a QMP unix socket, read the greeting and negotiate capabilities.

    @param reactor: an C{IReactorUNIX} and C{IReactorTime}.
    @param path: the socket.
    @param timeout: seconds for the connection, the greeting, and each command.
    @return: a ready L{QmpClient}; the caller closes it.
    @raise QmpConnectionLost: nothing listens there, or it hung up.
    @raise QmpTimeout: it did not greet in time.
    """
    endpoint = UNIXClientEndpoint(reactor, path, timeout=max(1, int(timeout)))
    try:
        proto = await endpoint.connect(_Factory())
    except (error.ConnectError, OSError) as e:  # nothing serves the socket
        raise QmpConnectionLost(f"cannot connect to QMP socket {path}: {e}") from None
    client = QmpClient(proto, reactor, timeout)
    try:
        await proto.greeting.addTimeout(timeout, reactor)
    except defer.TimeoutError:
        client.close()
        raise QmpTimeout(f"no QMP greeting on {path} within {timeout:g} s") from None
    try:
        await client.execute("qmp_capabilities")
    except QmpError:
        client.close()
        raise
    return client
