"""
How the store runs blocking work off the reactor thread, and orders
operations on one name.

C{run_in_thread(fn, *args)} is a coroutine function returning C{fn(*args)}:
L{thread_runner} runs it in a reactor's thread pool; L{inline_runner} runs
it at once (tests, and tools without a reactor).
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable, Hashable

from twisted.internet import defer, threads
from twisted.python.threadpool import ThreadPool

#: the type of the injected runner: C{await run_in_thread(fn, *args)}
RunInThread = Callable[..., Awaitable[Any]]


async def inline_runner(fn: Callable[..., Any], *args: Any) -> Any:
    """Run C{fn(*args)} on the calling thread (for tests: deterministic, no reactor)."""
    return fn(*args)


def thread_runner(reactor: Any, pool: ThreadPool | None = None) -> RunInThread:
    """
    @param reactor: an L{IReactorThreads} provider.
    @param pool: the pool to use; the reactor's own by default.
    @return: a runner that runs functions in C{pool} and resumes on the reactor thread.
    """
    async def run(fn: Callable[..., Any], *args: Any) -> Any:
        target = pool if pool is not None else reactor.getThreadPool()
        return await threads.deferToThreadPool(reactor, target, fn, *args)

    return run


class KeyedLocks:
    """
    One lock per name, existing only while someone holds or waits for it:
    the store is the only writer of its files, so ordering two operations
    on one key in this process is enough to keep the index in step with the
    files (the index update of the last rename is the last written).
    """

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[defer.DeferredLock, int]] = {}

    @asynccontextmanager
    async def hold(self, name: Hashable) -> AsyncIterator[None]:
        """Hold the lock of C{name} for the body of an C{async with}."""
        lock, users = self._locks.get(name, (None, 0))
        if lock is None:
            lock = defer.DeferredLock()
        self._locks[name] = (lock, users + 1)
        try:
            await lock.acquire()
            try:
                yield
            finally:
                lock.release()
        finally:
            lock, users = self._locks[name]
            if users == 1:
                del self._locks[name]
            else:
                self._locks[name] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class InFlight:
    """
    Counts the operations that change the store, so that closing waits for
    them to finish before it declares the shutdown clean.
    """

    def __init__(self) -> None:
        self.count = 0
        self._idle: list[defer.Deferred[None]] = []

    @asynccontextmanager
    async def track(self) -> AsyncIterator[None]:
        """Count the body of an C{async with} as one operation in flight."""
        self.count += 1
        try:
            yield
        finally:
            self.count -= 1
            if self.count == 0:
                waiting, self._idle = self._idle, []
                for d in waiting:
                    d.callback(None)

    async def drained(self) -> None:
        """Wait until no operation is in flight."""
        if self.count:
            d: defer.Deferred[None] = defer.Deferred()
            self._idle.append(d)
            await d


class _Gate:
    __slots__ = ("shared", "exclusive", "waiting")

    def __init__(self) -> None:
        self.shared = 0
        self.exclusive = False
        self.waiting: list[tuple[bool, defer.Deferred[None]]] = []


class SharedGates:
    """
    One shared/exclusive gate per name, existing only while in use: many
    holders may share a name's gate, an exclusive holder has it alone.
    Waiters are served in arrival order (an exclusive waiter holds back the
    shared ones that come after it, so it is never starved).

    The store uses it per bucket: an object install holds its bucket's gate
    shared from its check that the bucket is still the same one until its
    index entry is written, and a bucket delete holds it exclusively, so a
    delete never runs between the two (it waits, then finds the bucket not
    empty).
    """

    def __init__(self) -> None:
        self._gates: dict[Hashable, _Gate] = {}

    def _enter(self, name: Hashable, exclusive: bool) -> defer.Deferred[None] | None:
        gate = self._gates.get(name)
        if gate is None:
            gate = self._gates[name] = _Gate()
        if not gate.waiting and not gate.exclusive and not (exclusive and gate.shared):
            if exclusive:
                gate.exclusive = True
            else:
                gate.shared += 1
            return None
        d: defer.Deferred[None] = defer.Deferred()
        gate.waiting.append((exclusive, d))
        return d

    def _leave(self, name: Hashable, exclusive: bool) -> None:
        gate = self._gates[name]
        if exclusive:
            gate.exclusive = False
        else:
            gate.shared -= 1
        woken = []
        while gate.waiting and not gate.exclusive:
            wants_exclusive, d = gate.waiting[0]
            if wants_exclusive:
                if gate.shared:
                    break
                gate.exclusive = True
            else:
                gate.shared += 1
            gate.waiting.pop(0)
            woken.append(d)
        if not gate.shared and not gate.exclusive and not gate.waiting:
            del self._gates[name]
        for d in woken:  # after the bookkeeping: a woken holder may re-enter at once
            d.callback(None)

    @asynccontextmanager
    async def shared(self, name: Hashable) -> AsyncIterator[None]:
        """Hold C{name}'s gate, shared, for the body of an C{async with}."""
        waiting = self._enter(name, False)
        if waiting is not None:
            await waiting
        try:
            yield
        finally:
            self._leave(name, False)

    @asynccontextmanager
    async def exclusive(self, name: Hashable) -> AsyncIterator[None]:
        """Hold C{name}'s gate alone for the body of an C{async with}."""
        waiting = self._enter(name, True)
        if waiting is not None:
            await waiting
        try:
            yield
        finally:
            self._leave(name, True)

    def __len__(self) -> int:
        return len(self._gates)
