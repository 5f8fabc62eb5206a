"""
The object store's small-PUT machinery: L{SharedGates} (a bucket delete
waits for the installs in flight), the L{Installer}'s batches (one worker
call for the files that arrive together), the batched index writes, and the
bucket records kept for a moment (a delete or an ACL change is seen at once).
Unit tests: no reactor, an inline or a hand-driven thread runner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from twisted.internet import defer, task
from twisted.trial import unittest

from nova.datastore.memory import MemoryDatastore
from nova.objectstore import errors
from nova.objectstore.interfaces import NewObject
from nova.objectstore.store import FilesystemObjectStore, inline_runner
from nova.objectstore.store.concurrency import SharedGates
from nova.objectstore.store.installer import Installer
from tests.test_objectstore_store_harness import OTHER, OWNER, START


class HeldRunner:
    """A thread runner whose calls wait until the test lets them run."""

    def __init__(self) -> None:
        self.calls: list[tuple[Callable[..., Any], tuple[Any, ...], defer.Deferred[Any]]] = []

    async def __call__(self, fn: Callable[..., Any], *args: Any) -> Any:
        d: defer.Deferred[Any] = defer.Deferred()
        self.calls.append((fn, args, d))
        return await d

    def run_next(self) -> None:
        fn, args, d = self.calls.pop(0)
        d.callback(fn(*args))


def started(coro: Any) -> defer.Deferred[Any]:
    return defer.Deferred.fromCoroutine(coro)


class SharedGatesTests(unittest.TestCase):
    def test_exclusive_waits_for_shared_and_holds_back_later_ones(self) -> None:
        gates = SharedGates()
        order: list[str] = []
        first = defer.Deferred()
        release_exclusive = defer.Deferred()

        async def shared(name: str, until: defer.Deferred[None] | None) -> None:
            async with gates.shared("b"):
                order.append(f"{name} in")
                if until is not None:
                    await until
                order.append(f"{name} out")

        async def exclusive() -> None:
            async with gates.exclusive("b"):
                order.append("x in")
                await release_exclusive
                order.append("x out")

        a = started(shared("a", first))
        x = started(exclusive())
        c = started(shared("c", None))
        self.assertEqual(order, ["a in"])  # x waits for a; c waits behind x
        first.callback(None)
        self.assertEqual(order, ["a in", "a out", "x in"])
        release_exclusive.callback(None)
        self.assertEqual(order, ["a in", "a out", "x in", "x out", "c in", "c out"])
        for d in (a, x, c):
            self.successResultOf(d)
        self.assertEqual(len(gates), 0)

    def test_names_are_independent(self) -> None:
        gates = SharedGates()
        hold = defer.Deferred()

        async def exclusive(name: str) -> str:
            async with gates.exclusive(name):
                await hold
            return name

        one, two = started(exclusive("one")), started(exclusive("two"))
        self.assertEqual(len(gates), 2)
        hold.callback(None)
        self.assertEqual((self.successResultOf(one), self.successResultOf(two)), ("one", "two"))


class InstallerTests(unittest.TestCase):
    def setUp(self) -> None:
        self.root = Path(self.mktemp())
        (self.root / "objects" / "aa").mkdir(parents=True)
        self.runner = HeldRunner()
        self.installer = Installer(self.root, self.root / "objects", self.runner)

    def source(self, name: str, data: bytes) -> Path:
        path = self.root / name
        path.write_bytes(data)
        return path

    def test_files_arriving_together_share_one_worker_call(self) -> None:
        target = self.root / "objects" / "aa"
        first = started(self.installer.install(self.source("t1", b"1"), target / "one"))
        self.assertEqual(len(self.runner.calls), 1)  # the first batch left at once
        second = started(self.installer.install(self.source("t2", b"2"), target / "two"))
        third = started(self.installer.install(self.source("t3", b"3"), target / "three"))
        self.assertEqual(len(self.runner.calls), 1)  # the others wait for it
        self.runner.run_next()
        self.successResultOf(first)
        self.assertNoResult(second)
        self.assertEqual(len(self.runner.calls), 1)  # ...and then go together
        self.runner.run_next()
        self.successResultOf(second)
        self.successResultOf(third)
        self.assertEqual(sorted(p.name for p in target.iterdir()), ["one", "three", "two"])
        self.assertEqual((target / "two").read_bytes(), b"2")

    def test_a_failed_item_fails_alone(self) -> None:
        target = self.root / "objects"
        good = started(self.installer.install(self.source("t1", b"1"), target / "aa" / "ok"))
        missing = started(self.installer.install(self.root / "nope", target / "aa" / "bad"))

        def broken_seal() -> Path:
            raise ValueError("no header")

        sealed = started(self.installer.install(self.source("t3", b"3"), target / "aa" / "s",
                                                broken_seal))
        self.runner.run_next()
        self.runner.run_next()
        self.successResultOf(good)
        self.failureResultOf(missing, FileNotFoundError)
        self.failureResultOf(sealed, ValueError)
        self.assertEqual([p.name for p in (target / "aa").iterdir()], ["ok"])


class StoreBatchingTests(unittest.TestCase):
    """The store with the in-memory datastore and the inline runner."""

    async def setUp(self) -> None:
        self.clock = task.Clock()
        self.clock.advance(START)
        self.store = FilesystemObjectStore(Path(self.mktemp()), MemoryDatastore(self.clock),
                                           self.clock, inline_runner)
        await self.store.open()
        self.addCleanup(self.store.close)

    async def put(self, bucket: str, key: str, body: bytes) -> Any:
        writer = self.store.new_writer(bucket)
        writer.write(body)
        return await self.store.commit_object(writer, bucket, key, NewObject(owner=OWNER))

    async def test_kept_bucket_record_follows_changes(self) -> None:
        await self.store.create_bucket("bkt", OWNER)
        self.assertEqual((await self.store.get_bucket("bkt")).acl, "private")
        await self.store.set_bucket_acl("bkt", "public-read")
        self.assertEqual((await self.store.get_bucket("bkt")).acl, "public-read")
        await self.store.delete_bucket("bkt")
        with self.assertRaises(errors.NoSuchBucket):
            await self.store.get_bucket("bkt")
        await self.store.create_bucket("bkt", OTHER)
        self.assertEqual((await self.store.get_bucket("bkt")).owner, OTHER)

    async def test_concurrent_puts_are_all_listed(self) -> None:
        await self.store.create_bucket("bkt", OWNER)
        infos = await defer.gatherResults(
            [started(self.put("bkt", f"k{i}", b"x" * i)) for i in range(20)])
        self.assertEqual(len(infos), 20)
        listing = await self.store.list_objects("bkt")
        self.assertEqual(sorted(i.key for i in listing.contents),
                         sorted(f"k{i}" for i in range(20)))
        self.assertEqual({i.key: i.size for i in listing.contents}["k7"], 7)
