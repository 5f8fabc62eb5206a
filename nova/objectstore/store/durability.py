"""
Group commit for directory changes (deletes; installs have their own
batches: L{nova.objectstore.store.installer}).

Making a rename (or an unlink) durable takes a journal commit; one per PUT
made concurrent small PUTs wait on each other's commits (fsync of the
directory, measured as the largest cost of a 4 KB PUT). Here concurrent
changes share one: every change made before a C{syncfs(2)} started is durable
when it returns, so callers whose change was made while one was running wait
for the next, and one call covers all of them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path
from typing import Any, Awaitable, Callable

from twisted.internet import defer
from twisted.python.failure import Failure

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def syncfs(path: Path) -> None:
    """
    Make everything written to the filesystem holding C{path} durable.
    Blocking: run it in a worker thread.

    @raise OSError: the call failed.
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _libc.syncfs(fd) != 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error), str(path))
    finally:
        os.close(fd)


class GroupSync:
    """
    Coalesces durability requests for one filesystem.

    @param root: a directory on the filesystem (the store's root).
    @param run_in_thread: runs the blocking C{syncfs} off the reactor.
    """

    def __init__(self, root: Path,
                 run_in_thread: Callable[..., Awaitable[Any]]) -> None:
        self._root = root
        self._run = run_in_thread
        self._running = False
        self._waiting: list[defer.Deferred[None]] = []

    async def sync(self) -> None:
        """Return once every change made before this call is durable."""
        d: defer.Deferred[None] = defer.Deferred()
        self._waiting.append(d)
        if not self._running:
            self._start()
        await d

    def _start(self) -> None:
        batch, self._waiting = self._waiting, []
        self._running = True
        defer.Deferred.fromCoroutine(self._run(syncfs, self._root)).addBoth(
            self._finished, batch)

    def _finished(self, result: Any, batch: list[defer.Deferred[None]]) -> None:
        self._running = False
        for d in batch:
            if isinstance(result, Failure):
                d.errback(result)
            else:
                d.callback(None)
        if self._waiting:
            self._start()
