"""
nova-network's side of the DHCP lease events (2010 nova's
C{nova-dhcpbridge} made an RPC call; here the script talks to a unix
socket, which works across network namespaces since they share the file
system).

L{DhcpEventServer} takes one JSON event per line from C{bin/nova-dhcpbridge}
(L{nova.network.dhcp_client}), awaits the injected handler and answers
C{ok}, or C{error <why>} when the handler failed (the script then writes
the event to its fallback file). L{replay_events_file} handles that file
at start and empties it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import stat
from typing import Any, Awaitable, Callable

from twisted.internet import defer, error, protocol
from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger
from twisted.protocols.basic import LineOnlyReceiver

from nova.network.dhcp_client import ACK, MAX_LINE, check_socket_path
from nova.utils import validate
from nova.utils.listening import PortService

log = Logger()

__all__ = ["DhcpEventServer", "DhcpEventProtocol", "DhcpEventService", "replay_events_file",
           "check_event", "Handler"]

#: C{async handler(event)}: C{event} has C{action} (add, old or del),
#: C{mac}, C{ip}, C{hostname} (or C{None}) and what else the script sent.
Handler = Callable[[dict[str, Any]], Awaitable[None]]


def check_event(event: Any) -> dict[str, Any]:
    """
    Check one lease event.

    @return: the event, with C{mac} and C{ip} in canonical spelling.
    @raise ValueError: when it is not a dict with a known action, a MAC and an IP.
    """
    if not isinstance(event, dict) or event.get("action") not in ("add", "old", "del"):
        raise ValueError(f"not a lease event: {event!r}")
    hostname = event.get("hostname")
    if hostname is not None and not isinstance(hostname, str):
        raise ValueError(f"bad hostname in lease event: {event!r}")
    return {**event, "mac": validate.mac_address(event.get("mac")),  # type: ignore[arg-type]
            "ip": validate.ipv4_address(event.get("ip")), "hostname": hostname}


class DhcpEventProtocol(LineOnlyReceiver):
    """One lease script's connection: its events are handled in order."""

    delimiter = b"\n"
    MAX_LENGTH = MAX_LINE

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._last: defer.Deferred[None] = defer.succeed(None)

    def lineReceived(self, line: bytes) -> None:
        # Chained so that a second line waits for the first one's answer.
        self._last.addCallback(lambda _: defer.Deferred.fromCoroutine(self._handle(line)))

    async def _handle(self, line: bytes) -> None:
        try:
            event = check_event(json.loads(line))
        except ValueError as e:  # also JSON errors
            self._answer(b"error invalid event: " + str(e).encode()[:200])
            return
        try:
            await self._handler(event)
        except Exception as e:  # noqa: BLE001 - the script falls back to its file
            log.failure("handling dhcp event {event} failed", event=event)
            self._answer(f"error {type(e).__name__}: {e}".encode()[:MAX_LINE - 1])
            return
        self._answer(ACK)

    def _answer(self, line: bytes) -> None:
        if self.transport is not None:
            self.sendLine(line.replace(b"\n", b" "))

    def lineLengthExceeded(self, line: bytes) -> None:
        self._answer(b"error line too long")
        self.transport.loseConnection()  # type: ignore[union-attr]


class DhcpEventServer(protocol.Factory):
    """
    Makes a L{DhcpEventProtocol} per connection.

    @param handler: C{async handler(event)}, awaited before the answer.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler

    def buildProtocol(self, addr: Any) -> DhcpEventProtocol:
        proto = DhcpEventProtocol(self._handler)
        proto.factory = self
        return proto

    @classmethod
    def listen(cls, reactor: Any, path: str, handler: Handler, *,
               mode: int = 0o600) -> defer.Deferred[IListeningPort]:
        """
        Listen on the unix socket C{path}. A socket file left by a process
        that is gone is removed first; stopping the port removes the file.

        @param reactor: an L{IReactorUNIX}.
        @param path: the socket path (what the lease script gets in
            C{$NOVA_DHCPBRIDGE_SOCKET}).
        @param handler: as for L{DhcpEventServer}.
        @param mode: the socket file's permissions.
        @return: a Deferred firing with the listening port, or failing with
            L{twisted.internet.error.CannotListenError} (e.g. another live
            server owns C{path}).
        """
        return defer.maybeDeferred(cls._listen, reactor, path, handler, mode)

    @classmethod
    def _listen(cls, reactor: Any, path: str, handler: Handler, mode: int) -> IListeningPort:
        check_socket_path(path)
        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                _remove_if_dead(path)
        except FileNotFoundError:
            pass
        return reactor.listenUNIX(path, cls(handler), mode=mode, wantPID=False)


class DhcpEventService(PortService):
    """
    Listens for lease events on a unix socket while running.

    @param reactor: an L{IReactorUNIX}.
    @param path: the socket path.
    @param handler: as for L{DhcpEventServer}.
    """

    name = "dhcp-events"

    def __init__(self, reactor: Any, path: str, handler: Handler) -> None:
        super().__init__()
        self._reactor = reactor
        self._path = check_socket_path(path)
        self._handler = handler
        self.where = self._path

    async def _listen(self) -> IListeningPort:
        return await DhcpEventServer.listen(self._reactor, self._path, self._handler)


def _remove_if_dead(path: str) -> None:
    # A connect to a unix socket answers at once: refused when nobody listens.
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.setblocking(False)
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        log.info("removing the stale socket {path}", path=path)
        os.unlink(path)
        return
    except BlockingIOError:
        pass  # a live listener with a full backlog
    finally:
        probe.close()
    raise error.CannotListenError(None, path, "another process listens on it")


async def replay_events_file(path: str, handler: Handler) -> int:
    """
    Hand the events the lease script wrote to its fallback file (while
    nova-network was down or failing) to C{handler}, in order, then empty
    the file. Lines that are not events are logged and dropped.

    The file is locked meanwhile (the script locks it for each append), so
    an event written during the replay waits and lands in the emptied file.
    When the handler fails, the events from the failed one on stay in the
    file and the error is raised.

    @param path: the file (L{nova.network.host.NetworkHost.events_file});
        missing: nothing to do.
    @param handler: as for L{DhcpEventServer}.
    @return: how many events were handled.
    """
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return 0
    try:
        # The script holds the lock for one small write(2) at a time.
        fcntl.flock(fd, fcntl.LOCK_EX)
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        lines = b"".join(chunks).splitlines(keepends=True)
        handled = 0
        for index, raw in enumerate(lines):
            try:
                event = check_event(json.loads(raw))
            except ValueError:
                log.warn("dropping a line of {path} that is no lease event: {raw!r}",
                         path=path, raw=raw[:200])
                continue
            try:
                await handler(event)
            except BaseException:
                _rewrite(fd, b"".join(lines[index:]))
                raise
            handled += 1
        _rewrite(fd, b"")
        if handled:
            log.info("replayed {n} dhcp event(s) from {path}", n=handled, path=path)
        return handled
    finally:
        os.close(fd)


def _rewrite(fd: int, data: bytes) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    if data:
        os.write(fd, data)
