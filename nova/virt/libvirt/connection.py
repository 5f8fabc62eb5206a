"""
The only place libvirt is called from: one worker thread per connection.

libvirt calls block (a domain start can take seconds), so they never run on
the reactor thread. L{LibvirtConnection} owns one thread and one
C{virConnect}; callers hand it a function of the connection and get a
Deferred for the result. One thread per URI serialises the calls to a
hypervisor, which also makes a check-then-act sequence (look up, then
define) atomic with respect to this process.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable, TypeVar

import libvirt
from twisted.internet import defer
from twisted.internet.interfaces import IReactorFromThreads
from twisted.python.failure import Failure

from nova.exception import NovaError
from nova.virt.errors import (HypervisorUnavailable, InstanceNotFound,
                              InvalidInstanceState, VirtError)

T = TypeVar("T")

_STOP = object()

_UNAVAILABLE_CODES = frozenset({
    libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_RPC,
})


def translate_error(error: libvirt.libvirtError) -> NovaError:
    """
    @param error: what libvirt raised.
    @return: the typed nova error it means.
    """
    code = error.get_error_code()
    message = error.get_error_message() or str(error)
    if code == libvirt.VIR_ERR_NO_DOMAIN:
        return InstanceNotFound(message)
    if code == libvirt.VIR_ERR_OPERATION_INVALID:
        return InvalidInstanceState(message)
    if code in _UNAVAILABLE_CODES:
        return HypervisorUnavailable(message)
    return VirtError(f"libvirt error {code}: {message}")


def _ignore_error(_ctx: object, _error: object) -> None:
    return None


class Worker:
    """
    One daemon thread running submitted functions in order; results come
    back to the reactor thread through C{callFromThread}.
    """

    def __init__(self, reactor: IReactorFromThreads, name: str) -> None:
        """
        @param reactor: delivers results on the reactor thread.
        @param name: the thread's name (shows in debuggers and C{ps -L}).
        """
        self._reactor = reactor
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._stopped: defer.Deferred[None] = defer.Deferred()
        self._stopping = False
        # A daemon thread, so a forgotten stop() cannot hang interpreter exit.
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                self._reactor.callFromThread(self._stopped.callback, None)
                return
            function, result = item
            try:
                value = function()
            except BaseException:
                self._reactor.callFromThread(result.errback, Failure())
            else:
                self._reactor.callFromThread(result.callback, value)

    def submit(self, function: Callable[[], T]) -> defer.Deferred[T]:
        """
        @param function: run in the worker thread, after everything
            submitted before it.
        @return: a Deferred firing (on the reactor thread) with its result
            or its exception.
        @raise RuntimeError: after L{stop}.
        """
        if self._stopping:
            raise RuntimeError("this worker is stopped")
        result: defer.Deferred[T] = defer.Deferred()
        self._queue.put((function, result))
        return result

    def stop(self) -> defer.Deferred[None]:
        """
        Let the queued work finish, then end the thread.

        @return: a Deferred firing once the thread has ended its loop.
        """
        if not self._stopping:
            self._stopping = True
            self._queue.put(_STOP)
        return self._stopped


class LibvirtConnection:
    """
    A C{virConnect} to one URI, used only from its own worker thread, and
    reopened there when libvirt reports it dead (libvirtd restarted).
    """

    def __init__(self, reactor: IReactorFromThreads, uri: str,
                 opener: Callable[[str], Any] = libvirt.open) -> None:
        """
        @param reactor: delivers results on the reactor thread.
        @param uri: the libvirt URI, e.g. C{qemu+unix:///system?socket=...}
            or C{test:///default}.
        @param opener: opens a connection (C{libvirt.open}; tests may swap it).
        """
        self.uri = uri
        self._opener = opener
        self._conn: Any = None
        self._worker = Worker(reactor, f"libvirt {uri}")

    def _connection(self) -> Any:
        # Runs in the worker thread only.
        if self._conn is not None:
            try:
                if self._conn.isAlive():
                    return self._conn
            except libvirt.libvirtError:
                pass
            self._conn = None
        # libvirt's default handler prints every error to stderr, including
        # the ones translated here (an unknown domain on a destroy). Errors
        # still reach us as exceptions; the handler is process-wide.
        libvirt.registerErrorHandler(_ignore_error, None)
        try:
            self._conn = self._opener(self.uri)
        except libvirt.libvirtError as e:
            raise HypervisorUnavailable(
                f"cannot connect to libvirt at {self.uri}: {e.get_error_message()}") from e
        return self._conn

    async def run(self, function: Callable[[Any], T]) -> T:
        """
        Run C{function(conn)} in the worker thread.

        @param function: gets the open C{virConnect}; may raise nova errors.
        @return: its result.
        @raise NovaError: libvirt errors, translated by L{translate_error}.
        """
        def call() -> T:
            conn = self._connection()
            try:
                return function(conn)
            except libvirt.libvirtError as e:
                raise translate_error(e) from e
        return await self._worker.submit(call)

    async def close(self) -> None:
        """Close the connection and end the worker thread."""
        def close_conn() -> None:
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    conn.close()
                except libvirt.libvirtError:
                    pass  # closing a dead connection: nothing left to release
        try:
            await self._worker.submit(close_conn)
        except RuntimeError:
            return  # already closed
        await self._worker.stop()
