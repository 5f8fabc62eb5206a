"""
The harness of the L{FilesystemObjectStore} tests: a store on a temporary
directory with the in-memory datastore (and an inline thread runner: no
reactor), or with Redis at 127.0.0.1:6379 (a key prefix of its own, and
real worker threads). Used by every C{test_objectstore_store_*} module.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Awaitable

from nova.datastore.interfaces import IDatastore
from nova.objectstore.interfaces import NewObject, ObjectInfo, Owner
from nova.objectstore.store import FilesystemObjectStore, inline_runner, thread_runner
from tests.test_datastore_contract import MemoryHarness, RedisHarness

OWNER = Owner(project_id="proj-a", display_name="proj-a")
OTHER = Owner(project_id="proj-b", display_name="proj-b")
START = 1_700_000_000.0


def files_under(root: Path) -> list[Path]:
    """@return: every file below C{root}."""
    return [Path(d) / f for d, _, names in os.walk(root) for f in names]


class StoreHarness:
    """
    A store on a temporary directory. Subclasses give C{self.store_ds}
    (the datastore) and C{self.runner}; L{make_store} makes more stores on
    the same directory and datastore (a restart).
    """

    store: FilesystemObjectStore
    datastore: IDatastore
    min_part_size = 5 * 1024 * 1024
    max_object_size = 64 * 1024 * 1024

    def runner(self) -> Any:
        raise NotImplementedError

    async def start_store(self) -> None:
        self.root = Path(self.mktemp())  # type: ignore[attr-defined]
        self.store = await self.make_store()

    async def make_store(self, datastore: IDatastore | None = None,
                         open: bool = True) -> FilesystemObjectStore:
        """@return: a store on C{self.root}, opened, closed at the end of the test."""
        store = FilesystemObjectStore(self.root, datastore or self.datastore, self.clock,
                                      self.runner(), self.max_object_size,
                                      min_part_size=self.min_part_size)
        if open:
            await store.open()
        self.addCleanup(store.close)  # type: ignore[attr-defined]
        return store

    async def put(self, bucket: str, key: str, body: bytes = b"body",
                  chunks: int = 3, store: FilesystemObjectStore | None = None,
                  **new: Any) -> ObjectInfo:
        """Stream C{body} in a few writes and commit it as C{bucket/key}."""
        store = store or self.store
        writer = store.new_writer(bucket)
        step = max(1, -(-len(body) // chunks))
        for i in range(0, len(body), step):
            writer.write(body[i:i + step])
        new.setdefault("owner", OWNER)
        return await store.commit_object(writer, bucket, key, NewObject(**new))

    async def read_all(self, bucket: str, key: str,
                       store: FilesystemObjectStore | None = None) -> bytes:
        handle = await (store or self.store).open_object(bucket, key)
        try:
            return handle.read(0, handle.info.size + 10)
        finally:
            handle.close()

    async def assertFails(self, exc: type[BaseException], coro: Awaitable[Any]) -> Any:
        try:
            await coro
        except exc as e:
            return e
        raise AssertionError(f"{exc.__name__} not raised")

    def tmp_files(self) -> list[Path]:
        return files_under(self.root / "tmp")

    async def leftovers(self, store: FilesystemObjectStore | None = None) -> list[Path]:
        """@return: the files in C{tmp/} but the spares the store keeps ready for writers."""
        store = store or self.store
        await store._spares.settled()
        spares = {Path(path) for path, _ in store._spares._ready}
        return [p for p in self.tmp_files() if p not in spares]


class MemoryStoreHarness(MemoryHarness, StoreHarness):
    """The in-memory datastore, blocking work run inline: no reactor."""

    async def setUp(self) -> None:  # type: ignore[override]
        MemoryHarness.setUp(self)
        self.clock.advance(START)
        self.datastore = self.store
        await self.start_store()

    def runner(self) -> Any:
        return inline_runner


class RedisStoreHarness(RedisHarness, StoreHarness):
    """Redis at 127.0.0.1 (a prefix of its own), blocking work in the reactor's threads."""

    async def setUp(self) -> None:  # type: ignore[override]
        await RedisHarness.setUp(self)
        self.clock.advance(START)
        self.datastore = self.store
        await self.start_store()

    def runner(self) -> Any:
        from twisted.internet import reactor

        return thread_runner(reactor)
