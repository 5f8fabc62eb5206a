"""
Listening sockets made inside a named network namespace, without a child
process.

A dedicated short-lived thread opens C{/run/netns/<name>}, enters it with
C{setns(CLONE_NEWNET)} (through ctypes: Python 3.11 has no C{os.setns}),
creates, binds and listens, and goes back to its original namespace in a
C{finally} (checked; a failure is logged as critical and raised). The thread
then ends, so whatever namespace it were left in dies with it: no pooled
thread ever changes namespace. The reactor adopts the socket, which keeps
the namespace it was made in for its whole life.
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading
from typing import Any, Awaitable, Callable

from twisted.internet import error
from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger

from nova.exception import NovaError
from nova.utils import validate

log = Logger()

#: where C{ip netns add} leaves its namespaces
NETNS_DIR = "/run/netns"

_CLONE_NEWNET = 0x40000000


class NetnsError(NovaError):
    """A network namespace cannot be entered, or left again."""


class _RestoreFailed(NetnsError):
    """The listening thread could not go back to its own namespace."""


def _setns(fd: int) -> None:
    # Python 3.12 has os.setns; 3.11 reaches libc's through ctypes.
    setns = getattr(os, "setns", None)
    if setns is not None:
        setns(fd, _CLONE_NEWNET)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def _bind_in_netns(netns: str, interface: str, port: int, backlog: int) -> socket.socket:
    """
    In the calling thread (a dedicated one): enter C{netns}, make a listening
    TCP socket, come back.

    @return: the socket, non-blocking, listening inside C{netns}.
    @raise NetnsError: no such namespace, or no permission to enter it.
    @raise error.CannotListenError: the address cannot be had in there.
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            target = os.open(os.path.join(NETNS_DIR, netns), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NetnsError(f"no network namespace {netns!r} ({NETNS_DIR}/{netns})") from None
        try:
            try:
                _setns(target)
            except OSError as e:
                raise NetnsError(f"cannot enter network namespace {netns!r}: {e.strerror} "
                                 f"(needs CAP_SYS_ADMIN)") from None
            sock = None
            try:
                sock = _listening_socket(interface, port, backlog)
            finally:
                try:
                    _restore(own)
                except _RestoreFailed:
                    if sock is not None:
                        sock.close()
                    raise
            return sock
        finally:
            os.close(target)
    finally:
        os.close(own)


def _listening_socket(interface: str, port: int, backlog: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((interface, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as e:
        sock.close()
        raise error.CannotListenError(interface, port, e) from None
    return sock


def _restore(own: int) -> None:
    try:
        _setns(own)
        back = os.stat("/proc/thread-self/ns/net").st_ino == os.fstat(own).st_ino
    except OSError as e:
        raise _RestoreFailed(f"cannot return to the original network namespace: {e}") from None
    if not back:
        raise _RestoreFailed("still in another network namespace after setns")


def _in_own_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """
    Run C{fn(*args)} in a new thread and wait for it: whatever namespace that
    thread is left in dies with it, so no pooled thread ever changes namespace.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = fn(*args)
        except BaseException as e:  # handed to the waiting thread, re-raised there
            outcome["error"] = e

    thread = threading.Thread(target=run, name="nova-netns-listen", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


async def listen_tcp_in_netns(reactor: Any, netns: str | None, port: int, factory: Any,
                              run_in_thread: Callable[..., Awaitable[Any]],
                              interface: str = "0.0.0.0", backlog: int = 50) -> IListeningPort:
    """
    Listen on TCP C{interface:port} inside network namespace C{netns}.

    @param netns: a namespace made by C{ip netns add}; C{None}: this
        process's own (a plain C{listenTCP}).
    @param port: 0 picks a free port (see C{getHost()}).
    @param run_in_thread: runs a blocking callable off the reactor thread.
    @return: the port, adopted by C{reactor}.
    @raise nova.utils.validate.InvalidIdentifier: a malformed namespace name.
    @raise NetnsError: no such namespace, no permission, or the thread could
        not leave it again (logged as critical).
    @raise error.CannotListenError: the address is in use (in there).
    """
    if netns is None:
        return reactor.listenTCP(port, factory, backlog, interface)
    netns = validate.netns_name(netns)
    try:
        sock = await run_in_thread(_in_own_thread, _bind_in_netns, netns, interface, port,
                                   backlog)
    except _RestoreFailed as e:
        log.critical("a thread stayed in network namespace {netns}: {error}", netns=netns,
                     error=e)
        raise
    try:
        return reactor.adoptStreamPort(sock.fileno(), socket.AF_INET, factory)
    finally:
        sock.close()  # the reactor holds its own duplicate


__all__ = ["listen_tcp_in_netns", "NetnsError", "NETNS_DIR"]
