"""
L{KeyPairRepository} and L{ServiceRepository}, against the in-memory datastore
and against Redis at 127.0.0.1:6379 (the harnesses of the contract tests).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import attr
from twisted.internet import defer
from twisted.trial import unittest

from nova.datastore import keys
from nova.datastore.errors import CorruptRecord, KeyPairDuplicate, KeyPairNotFound, ServiceNotFound
from nova.datastore.interfaces import IDatastore, ITransaction
from nova.datastore.repositories import KeyPairRepository, ServiceRepository
from nova.exception import Duplicate, NotFound
from tests.test_datastore_contract import MemoryHarness, RedisHarness, run
from tests.test_datastore_records import a_key_pair, a_service

_READS = {"get", "mget", "exists", "hget", "hgetall", "smembers", "sismember", "scard"}


class _PausingTransaction:
    """An L{ITransaction} whose reads let other work run before they return."""

    def __init__(self, txn: ITransaction, pause: Callable[[], Awaitable[None]]) -> None:
        self._txn = txn
        self._pause = pause

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._txn, name)
        if name not in _READS:
            return method

        async def read(*args: Any) -> Any:
            result = await method(*args)
            await self._pause()
            return result

        return read


class _InterleavingStore:
    """
    A datastore whose transactions pause after each read, so that concurrent
    transactions all read before any of them writes: the worst interleaving.
    """

    def __init__(self, store: IDatastore, pause: Callable[[], Awaitable[None]]) -> None:
        self._store = store
        self._pause = pause

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def transact(self, watch_keys: list[str], fn: Callable[[Any], Awaitable[Any]],
                       retries: int = 20) -> Any:
        return await self._store.transact(
            watch_keys, lambda txn: fn(_PausingTransaction(txn, self._pause)), retries)


class RepositoryMixin:
    store: IDatastore
    clock: Any
    pause: Callable[[], Awaitable[None]]
    settle: Callable[[list[defer.Deferred[Any]]], Awaitable[list[Any]]]
    assertEqual: Callable[..., None]
    assertTrue: Callable[..., None]
    assertFalse: Callable[..., None]
    assertIsInstance: Callable[..., None]

    async def assertFails(self, exc: type[BaseException], coro: Awaitable[Any]) -> BaseException:
        """@return: the exception C{coro} raised, which must be an C{exc}."""
        try:
            await coro
        except exc as e:
            return e
        raise AssertionError(f"{exc.__name__} not raised")

    def interleaving(self) -> IDatastore:
        """@return: this test's store, with worst-case interleaving of transactions."""
        return _InterleavingStore(self.store, self.pause)  # type: ignore[return-value]


class KeyPairRepositoryMixin(RepositoryMixin):

    async def test_create_get(self) -> None:
        repo = KeyPairRepository(self.store)
        record = a_key_pair()
        self.assertEqual(await repo.create(record), record)
        self.assertEqual(await repo.get("proj", "mykey"), record)

    async def test_get_missing(self) -> None:
        repo = KeyPairRepository(self.store)
        e = await self.assertFails(KeyPairNotFound, repo.get("proj", "nope"))
        self.assertIsInstance(e, NotFound)
        self.assertEqual(e.code, "InvalidKeyPair.NotFound")  # type: ignore[attr-defined]
        self.assertEqual(e.status, 400)  # type: ignore[attr-defined]

    async def test_duplicate(self) -> None:
        repo = KeyPairRepository(self.store)
        await repo.create(a_key_pair())
        e = await self.assertFails(KeyPairDuplicate,
                                   repo.create(a_key_pair(fingerprint="other")))
        self.assertIsInstance(e, Duplicate)
        self.assertEqual(e.code, "InvalidKeyPair.Duplicate")  # type: ignore[attr-defined]
        self.assertEqual((await repo.get("proj", "mykey")).fingerprint, a_key_pair().fingerprint)
        # the same name in another project is another key pair
        await repo.create(a_key_pair(project_id="proj2"))

    async def test_concurrent_creates_one_wins(self) -> None:
        repo = KeyPairRepository(self.interleaving())
        attempts = [run(repo.create(a_key_pair(fingerprint=f"fp{i}"))) for i in range(10)]
        for d in attempts:
            d.addErrback(lambda f: f.trap(KeyPairDuplicate) and None)
        outcomes = await self.settle(attempts)
        winners = [o for o in outcomes if o is not None]
        self.assertEqual(len(winners), 1)
        self.assertEqual(await KeyPairRepository(self.store).get("proj", "mykey"), winners[0])
        self.assertEqual(len(await repo.list("proj")), 1)

    async def test_list_sorted_by_name_per_project(self) -> None:
        repo = KeyPairRepository(self.store)
        for name in ["zeta", "alpha", "a:b*", "mid"]:
            await repo.create(a_key_pair(name=name))
        await repo.create(a_key_pair(project_id="other", name="beta"))
        self.assertEqual([k.name for k in await repo.list("proj")],
                         ["a:b*", "alpha", "mid", "zeta"])
        self.assertEqual([k.name for k in await repo.list("other")], ["beta"])
        self.assertEqual(await repo.list("empty"), [])

    async def test_delete_is_idempotent(self) -> None:
        repo = KeyPairRepository(self.store)
        await repo.create(a_key_pair())
        self.assertTrue(await repo.delete("proj", "mykey"))
        self.assertFalse(await repo.delete("proj", "mykey"))
        await self.assertFails(KeyPairNotFound, repo.get("proj", "mykey"))
        self.assertEqual(await repo.list("proj"), [])
        self.assertFalse(await self.store.exists(keys.keypairs_of_project("proj")))
        await repo.create(a_key_pair())  # the name is free again

    async def test_corrupt_record_reported(self) -> None:
        repo = KeyPairRepository(self.store)
        await self.store.set(keys.keypair("proj", "bad"), "{garbage")
        await self.assertFails(CorruptRecord, repo.get("proj", "bad"))


class ServiceRepositoryMixin(RepositoryMixin):

    async def test_heartbeat_creates_then_counts(self) -> None:
        repo = ServiceRepository(self.store, self.clock)
        self.clock.advance(1000)
        first = await repo.heartbeat(a_service(report_count=0, updated_at=0))
        self.assertEqual((first.report_count, first.updated_at), (1, 1000.0))
        self.clock.advance(10)
        second = await repo.heartbeat(a_service(capacity={"vcpus": 4, "vcpus_used": 2}))
        self.assertEqual((second.report_count, second.updated_at), (2, 1010.0))
        self.assertEqual(await repo.get("node1", "nova-compute"), second)
        self.assertEqual(second.capacity["vcpus_used"], 2)

    async def test_concurrent_heartbeats_lose_no_count(self) -> None:
        repo = ServiceRepository(self.interleaving(), self.clock)
        beats = [run(repo.heartbeat(a_service())) for _ in range(10)]
        await self.settle(beats)
        self.assertEqual((await repo.get("node1", "nova-compute")).report_count, 10)

    async def test_disabled_survives_heartbeats(self) -> None:
        repo = ServiceRepository(self.store, self.clock)
        await repo.heartbeat(a_service())
        disabled = await repo.set_disabled("node1", "nova-compute", True)
        self.assertTrue(disabled.disabled)
        after = await repo.heartbeat(a_service(disabled=False))
        self.assertTrue(after.disabled)
        self.assertFalse((await repo.set_disabled("node1", "nova-compute", False)).disabled)

    async def test_missing(self) -> None:
        repo = ServiceRepository(self.store, self.clock)
        e = await self.assertFails(ServiceNotFound, repo.get("node9", "nova-compute"))
        self.assertIsInstance(e, NotFound)
        await self.assertFails(ServiceNotFound, repo.set_disabled("node9", "nova-compute", True))
        self.assertFalse(await self.store.exists(keys.service("node9", "nova-compute")))

    async def test_list_sorted(self) -> None:
        repo = ServiceRepository(self.store, self.clock)
        for host, binary in [("node2", "nova-compute"), ("node1", "nova-volume"),
                             ("node1", "nova-compute")]:
            await repo.heartbeat(a_service(host=host, binary=binary))
        self.assertEqual([(s.host, s.binary) for s in await repo.list()],
                         [("node1", "nova-compute"), ("node1", "nova-volume"),
                          ("node2", "nova-compute")])

    async def test_is_up(self) -> None:
        repo = ServiceRepository(self.store, self.clock)
        self.clock.advance(500)
        record = await repo.heartbeat(a_service())
        self.clock.advance(60)
        self.assertTrue(repo.is_up(record, down_time=60))
        self.clock.advance(0.5)
        self.assertFalse(repo.is_up(record, down_time=60))
        self.assertTrue(repo.is_up(attr.evolve(record, updated_at=560.0), down_time=60))

    async def test_delete(self) -> None:
        repo = ServiceRepository(self.store, self.clock)
        await repo.heartbeat(a_service())
        self.assertTrue(await repo.delete("node1", "nova-compute"))
        self.assertFalse(await repo.delete("node1", "nova-compute"))
        self.assertEqual(await repo.list(), [])


class MemoryKeyPairRepositoryTests(MemoryHarness, KeyPairRepositoryMixin, unittest.TestCase):
    pass


class RedisKeyPairRepositoryTests(RedisHarness, KeyPairRepositoryMixin, unittest.TestCase):
    pass


class MemoryServiceRepositoryTests(MemoryHarness, ServiceRepositoryMixin, unittest.TestCase):
    pass


class RedisServiceRepositoryTests(RedisHarness, ServiceRepositoryMixin, unittest.TestCase):
    pass
