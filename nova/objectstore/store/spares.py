"""
L{SpareFiles}: empty temporary files made ahead of need, in a worker thread.

A writer starts on the reactor thread, as a request body begins to arrive.
Creating a file is a directory update that takes tens of microseconds on a
quiet filesystem and most of a millisecond on a busy or monitored one, so
the store keeps a few created files ready and only hands one over (no
system call) when a writer starts; a worker thread tops the spares up.
Spares are plain files in C{tmp/}: the next start removes any left over.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from nova.objectstore.store.concurrency import RunInThread
from nova.objectstore.store.layout import Layout, remove_quietly

log = Logger()


def create_temp(layout: Layout) -> tuple[Path, int]:
    """@return: a new empty file in C{tmp/} and its descriptor, open for reading and writing."""
    path = layout.new_temp_path()
    # read-write: sealing may copy the body out of it again
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    return path, fd


def _create_many(layout: Layout, count: int) -> list[tuple[Path, int]]:
    return [create_temp(layout) for _ in range(count)]


def _discard_all(spares: list[tuple[Path, int]]) -> None:
    for path, fd in spares:
        os.close(fd)
        remove_quietly(path)


class SpareFiles:
    """A few empty temporary files, ready to take."""

    def __init__(self, layout: Layout, run_in_thread: RunInThread, target: int = 16) -> None:
        """
        @param layout: where the files go (C{tmp/}).
        @param run_in_thread: creates them off the reactor thread.
        @param target: how many to keep ready.
        """
        self._layout = layout
        self._run = run_in_thread
        self._target = target
        self._ready: list[tuple[Path, int]] = []
        self._filling: defer.Deferred[Any] | None = None
        self._closed = False

    def take(self) -> tuple[Path, int]:
        """
        @return: an empty temporary file and its descriptor, now the caller's.
            Made on the spot (blocking) only when no spare is ready.
        """
        found = self._ready.pop() if self._ready else create_temp(self._layout)
        self.refill()
        return found

    def refill(self) -> None:
        """Top the spares up in a worker thread, unless that is under way."""
        missing = self._target - len(self._ready)
        if self._closed or self._filling is not None or missing <= self._target // 2:
            return
        d = defer.Deferred.fromCoroutine(  # type: ignore[call-overload]
            self._run(_create_many, self._layout, missing))
        self._filling = d

        def done(result: Any) -> None:
            self._filling = None
            if isinstance(result, Failure):
                log.failure("object store: making spare temporary files", result)
            elif self._closed:
                _discard_all(result)  # closed meanwhile: blocking, but a few small files
            else:
                self._ready.extend(result)

        d.addBoth(done)

    async def settled(self) -> None:
        """Wait for a refill under way (tests count the files)."""
        if self._filling is not None:
            await defer.DeferredList([self._filling], consumeErrors=True)

    async def close(self) -> None:
        """Remove the spares (after any refill under way)."""
        self._closed = True
        await self.settled()
        spares, self._ready = self._ready, []
        if spares:
            await self._run(_discard_all, spares)
