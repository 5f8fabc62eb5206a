"""
L{Installer}: puts committed object files into place durably, many at a
time.

A small PUT used to pay, each on its own: an C{fdatasync} of its file, a
rename, an fsync of the directory it entered (two device flushes one after
the other) and a trip to a worker thread, where each of those system calls
had to win the interpreter lock back from the busy reactor thread. Here the
files whose headers are written (into the page cache, on the reactor
thread: L{nova.objectstore.store.writer.FileWriter.write_header}) wait
while a batch is being installed, then go together in one worker call:

  1. C{syncfs}: every file of the batch (body and header) is durable;
  2. each file is renamed into place;
  3. C{syncfs}: every rename is durable.

The order is what a crash needs: no rename can be durable before the data
it points at, and the PUT is answered only after step 3. Two device flushes
and one thread trip per batch, not per object; a batch is as large as the
PUTs that arrived while the previous one was installed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import attr
from twisted.internet import defer
from twisted.python.failure import Failure

from nova.objectstore import errors
from nova.objectstore.store.concurrency import RunInThread
from nova.objectstore.store.durability import syncfs
from nova.objectstore.store.layout import ensure_dir


class NotDurable(errors.S3Error):
    """A file was renamed into place, but making that durable failed."""

    code = "InternalError"
    status = 500


@attr.s(auto_attribs=True, eq=False)
class _Item:
    """One file to install (all fields but the first three are outcomes)."""

    source: Path
    target: Path
    #: called first in the worker thread when the header is still to be
    #: written (a header too big for the first page); returns the file
    seal: Callable[[], Path] | None
    done: defer.Deferred[None]
    placed: bool = False
    error: BaseException | None = None


def _install_sync(root: Path, stop: Path, items: list[_Item]) -> None:
    """The batch, in a worker thread: seal what is left, sync, rename, sync."""
    for item in items:
        if item.seal is not None:
            try:
                item.source = item.seal()
            except Exception as e:  # noqa: BLE001 (this item fails, not the batch)
                item.error = e
    try:
        syncfs(root)
    except OSError as e:
        for item in items:
            item.error = item.error or e
        return
    for item in items:
        if item.error is not None:
            continue
        try:
            try:
                os.replace(item.source, item.target)
            except FileNotFoundError:
                # its fan-out directory went missing (made at start): again
                ensure_dir(item.target.parent, stop)
                os.replace(item.source, item.target)
            item.placed = True
        except OSError as e:
            item.error = e
    if any(item.placed for item in items):
        try:
            syncfs(root)
        except OSError as e:
            for item in items:
                if item.placed:
                    item.error = NotDurable(f"making {item.target.name} durable failed: {e}")


class Installer:
    """
    Installs object files into place in batches (see the module docstring).

    @param root: the store's directory (its filesystem is synced).
    @param stop: the directory below which a missing parent is made.
    @param run_in_thread: runs the batches off the reactor thread.
    @param max_batches: how many batches may be installed at once (more
        than one measured slower here: more C{syncfs} calls, smaller batches).
    """

    def __init__(self, root: Path, stop: Path, run_in_thread: RunInThread,
                 max_batches: int = 1) -> None:
        self._root = root
        self._stop = stop
        self._run = run_in_thread
        self._queued: list[_Item] = []
        self._running = 0
        self._max_batches = max_batches

    async def install(self, source: Path, target: Path,
                      seal: Callable[[], Path] | None = None) -> None:
        """
        Rename C{source} over C{target} once its content is durable, and
        return once the rename is durable too.

        @param seal: writes the header of C{source} first, in the worker
            thread, and returns the file to rename (which may then differ).
        @raise NotDurable: C{target} is in place, but may not survive a crash.
        @raise Exception: (C{OSError} mostly) nothing was placed; C{source}
            is left for the caller to remove.
        """
        item = _Item(source=source, target=target, seal=seal, done=defer.Deferred())
        self._queued.append(item)
        if self._running < self._max_batches:
            self._start()
        await item.done

    def _start(self) -> None:
        batch, self._queued = self._queued, []
        self._running += 1
        defer.Deferred.fromCoroutine(self._run(_install_sync, self._root, self._stop, batch)
                                     ).addBoth(self._finished, batch)

    def _finished(self, result: Any, batch: list[_Item]) -> None:
        self._running -= 1
        if self._queued:
            self._start()
        for item in batch:
            if isinstance(result, Failure):
                item.done.errback(result)
            elif item.error is not None:
                item.done.errback(Failure(item.error))
            else:
                item.done.callback(None)


__all__ = ["Installer", "NotDurable"]
