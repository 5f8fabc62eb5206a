"""
The contract of L{nova.datastore.interfaces.IDatastore}: one suite, run
against L{MemoryDatastore} and against L{RedisDatastore} on the Redis server
at 127.0.0.1:6379 (C{NOVA_TEST_REDIS_PORT} overrides the port).

Every test works under a prefix of its own (C{test-<uuid>:}) and deletes its
keys when it ends. The harness classes here are reused by the repository
tests.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any, Awaitable, Callable

from twisted.internet import defer, task
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from nova.config import RedisConfig
from nova.datastore.errors import DatastoreError, DatastoreUnavailable
from nova.datastore.interfaces import IDatastore, ITransaction
from nova.datastore.memory import MemoryDatastore, MemoryServer
from nova.datastore.redis import RedisDatastore
from nova.exception import ConcurrencyError

REDIS_PORT = int(os.environ.get("NOVA_TEST_REDIS_PORT", "6379"))


def unique_prefix() -> str:
    """@return: a key prefix no other test run uses."""
    return f"test-{uuid.uuid4().hex}:"


async def _delete_all(store: IDatastore) -> None:
    try:
        found = await store.scan("*")
    except DatastoreUnavailable:
        return  # a test closed this client itself (and wrote nothing through it)
    if found:
        await store.delete(*found)


class MemoryHarness:
    """
    Clients of one L{MemoryServer} on a L{task.Clock}; no reactor involved.
    """

    def setUp(self) -> None:
        self.clock = task.Clock()
        self.server = MemoryServer(self.clock)
        self.prefix = unique_prefix()
        self.store = MemoryDatastore(self.clock, self.prefix, self.server)

    async def make_client(self, prefix: str | None = None) -> IDatastore:
        """@return: another client of the same server."""
        return MemoryDatastore(self.clock, self.prefix if prefix is None else prefix,
                               self.server)

    def pause(self) -> defer.Deferred[None]:
        """@return: a Deferred that fires on a later turn, letting others run."""
        return task.deferLater(self.clock, 0, lambda: None)

    async def settle(self, pending: list[defer.Deferred[Any]]) -> list[Any]:
        """Run the clock until every Deferred of C{pending} has fired."""
        for _ in range(100000):
            if all(d.called for d in pending):
                break
            self.clock.advance(0)
        else:
            self.fail("the concurrent operations never finished")  # type: ignore[attr-defined]
        return await defer.gatherResults(pending, consumeErrors=True)


class RedisHarness:
    """
    Clients of the Redis server at 127.0.0.1, each a pool of its own.
    """

    timeout = 30

    async def setUp(self) -> None:
        self.clock = task.Clock()  # for repositories' timestamps only
        self.prefix = unique_prefix()
        self.store = await self.make_client()

    async def make_client(self, prefix: str | None = None, pool_size: int = 4) -> IDatastore:
        """
        @return: a connected client; closed, and its keys deleted, at the end.
        """
        from twisted.internet import reactor

        config = RedisConfig(host="127.0.0.1", port=REDIS_PORT, pool_size=pool_size,
                             prefix=self.prefix if prefix is None else prefix)
        store = RedisDatastore(config, reactor, connect_timeout=5.0)
        try:
            await store.connect()
        except DatastoreUnavailable as e:
            self.fail(  # type: ignore[attr-defined]
                f"Redis is not answering at 127.0.0.1:{REDIS_PORT} ({e}). These tests need "
                f"it: start it with `redis-server --daemonize yes --bind 127.0.0.1 "
                f"--port {REDIS_PORT} --save ''`, or run `make test`, which does.")
        self.addCleanup(store.close)  # type: ignore[attr-defined]
        self.addCleanup(_delete_all, store)  # type: ignore[attr-defined]
        return store

    def pause(self) -> defer.Deferred[None]:
        """@return: a Deferred that fires on a later reactor turn."""
        from twisted.internet import reactor

        return task.deferLater(reactor, 0, lambda: None)

    async def settle(self, pending: list[defer.Deferred[Any]]) -> list[Any]:
        """Wait for every Deferred of C{pending}."""
        return await defer.gatherResults(pending, consumeErrors=True)


def run(coro: Awaitable[Any]) -> defer.Deferred[Any]:
    """@return: a Deferred running C{coro} now."""
    return defer.Deferred.fromCoroutine(coro)  # type: ignore[arg-type]


class DatastoreContractMixin:
    """The behaviour every L{IDatastore} shares."""

    store: IDatastore
    make_client: Callable[..., Awaitable[IDatastore]]
    assertEqual: Callable[..., None]
    assertIs: Callable[..., None]
    assertIsNone: Callable[..., None]
    assertTrue: Callable[..., None]
    assertFalse: Callable[..., None]
    assertIn: Callable[..., None]
    assertIsInstance: Callable[..., None]
    assertRaises: Callable[..., Any]
    failureResultOf: Callable[..., Any]

    async def assertFails(self, exc: type[BaseException], coro: Awaitable[Any]) -> BaseException:
        """@return: the exception C{coro} raised, which must be an C{exc}."""
        try:
            await coro
        except exc as e:
            return e
        raise AssertionError(f"{exc.__name__} not raised")

    def test_provides_interface(self) -> None:
        self.assertTrue(verifyObject(IDatastore, self.store))

    # -- strings ---------------------------------------------------------------

    async def test_set_get(self) -> None:
        self.assertIsNone(await self.store.get("k"))
        self.assertTrue(await self.store.set("k", "h\u00e9llo \u2603"))
        self.assertEqual(await self.store.get("k"), "h\u00e9llo \u2603")

    async def test_numbers_come_back_as_str(self) -> None:
        await self.store.set("n", "42")
        await self.store.set("f", "1.50")
        await self.store.hset("h", {"x": "007"})
        self.assertEqual(await self.store.get("n"), "42")
        self.assertEqual(await self.store.get("f"), "1.50")
        self.assertEqual(await self.store.hgetall("h"), {"x": "007"})
        self.assertIsInstance(await self.store.get("n"), str)

    async def test_non_str_rejected(self) -> None:
        await self.assertFails(TypeError, self.store.set("k", 5))  # type: ignore[arg-type]
        await self.assertFails(TypeError, self.store.sadd("s", 5))  # type: ignore[arg-type]
        self.assertFalse(await self.store.exists("k"))

    async def test_set_nx(self) -> None:
        self.assertTrue(await self.store.set("k", "a", nx=True))
        self.assertFalse(await self.store.set("k", "b", nx=True))
        self.assertEqual(await self.store.get("k"), "a")

    async def test_set_ex_and_ttl(self) -> None:
        self.assertEqual(await self.store.ttl("k"), -2)
        await self.store.set("k", "v", ex=100)
        ttl = await self.store.ttl("k")
        self.assertTrue(0 < ttl <= 100, ttl)
        await self.store.set("k", "w")  # a plain SET clears the expiry
        self.assertEqual(await self.store.ttl("k"), -1)
        await self.assertFails(ValueError, self.store.set("k", "v", ex=0))

    async def test_expire(self) -> None:
        self.assertFalse(await self.store.expire("k", 10))
        await self.store.set("k", "v")
        self.assertTrue(await self.store.expire("k", 50))
        ttl = await self.store.ttl("k")
        self.assertTrue(0 < ttl <= 50, ttl)
        self.assertTrue(await self.store.expire("k", 0))  # zero deletes
        self.assertFalse(await self.store.exists("k"))

    async def test_delete_and_exists(self) -> None:
        await self.store.set("a", "1")
        await self.store.sadd("b", "x")
        self.assertTrue(await self.store.exists("a"))
        self.assertEqual(await self.store.delete("a", "b", "missing"), 2)
        self.assertFalse(await self.store.exists("a"))
        self.assertFalse(await self.store.exists("b"))
        self.assertEqual(await self.store.delete(), 0)

    async def test_incr(self) -> None:
        self.assertEqual(await self.store.incr("c"), 1)
        self.assertEqual(await self.store.incrby("c", 5), 6)
        self.assertEqual(await self.store.incrby("c", -10), -4)
        self.assertEqual(await self.store.get("c"), "-4")
        await self.store.set("t", "1", ex=100)
        await self.store.incr("t")
        self.assertTrue(await self.store.ttl("t") > 0)  # INCR keeps the expiry
        await self.store.set("s", "abc")
        await self.assertFails(DatastoreError, self.store.incr("s"))

    async def test_mget(self) -> None:
        await self.store.set("a", "1")
        await self.store.set("c", "3")
        await self.store.sadd("s", "x")
        self.assertEqual(await self.store.mget("a", "b", "c", "s"), ["1", None, "3", None])
        self.assertEqual(await self.store.mget(), [])

    # -- hashes --------------------------------------------------------------

    async def test_hashes(self) -> None:
        self.assertEqual(await self.store.hgetall("h"), {})
        self.assertEqual(await self.store.hset("h", {"a": "1", "b": "2"}), 2)
        self.assertEqual(await self.store.hset("h", {"b": "3", "c": "4"}), 1)
        self.assertEqual(await self.store.hget("h", "b"), "3")
        self.assertIsNone(await self.store.hget("h", "z"))
        self.assertEqual(await self.store.hgetall("h"), {"a": "1", "b": "3", "c": "4"})
        self.assertEqual(await self.store.hdel("h", "a", "z"), 1)
        self.assertEqual(await self.store.hdel("h", "b", "c"), 2)
        self.assertFalse(await self.store.exists("h"))  # an empty hash does not exist

    # -- sets ------------------------------------------------------------------

    async def test_sets(self) -> None:
        self.assertEqual(await self.store.smembers("s"), set())
        self.assertEqual(await self.store.sadd("s", "a", "b", "a"), 2)
        self.assertEqual(await self.store.sadd("s", "b", "c"), 1)
        self.assertEqual(await self.store.smembers("s"), {"a", "b", "c"})
        self.assertTrue(await self.store.sismember("s", "a"))
        self.assertFalse(await self.store.sismember("s", "z"))
        self.assertEqual(await self.store.scard("s"), 3)
        self.assertEqual(await self.store.srem("s", "a", "z"), 1)
        self.assertEqual(await self.store.srem("s", "b", "c"), 2)
        self.assertFalse(await self.store.exists("s"))
        self.assertEqual(await self.store.scard("s"), 0)

    async def test_spop_takes_each_member_once(self) -> None:
        members = {f"10.0.0.{i}" for i in range(2, 12)}
        await self.store.sadd("pool", *members)
        popped = [await self.store.spop("pool") for _ in members]
        self.assertEqual(set(popped), members)
        self.assertIsNone(await self.store.spop("pool"))
        self.assertFalse(await self.store.exists("pool"))

    async def test_concurrent_spop_never_hands_out_twice(self) -> None:
        members = {str(i) for i in range(40)}
        await self.store.sadd("pool", *members)
        other = await self.make_client()
        pops = [run(client.spop("pool")) for client in [self.store, other] * 25]
        popped = await self.settle(pops)  # type: ignore[attr-defined]
        got = [p for p in popped if p is not None]
        self.assertEqual(sorted(got), sorted(members))
        self.assertEqual(popped.count(None), 10)

    # -- sorted sets -------------------------------------------------------------

    async def test_sorted_sets(self) -> None:
        self.assertEqual(await self.store.zadd("z", {"b": 2.0, "a": 1, "c": 3.25}), 3)
        self.assertEqual(await self.store.zadd("z", {"a": 2, "d": 10}), 1)
        self.assertEqual(await self.store.zcard("z"), 4)
        self.assertEqual(await self.store.zscore("z", "c"), 3.25)
        self.assertIsNone(await self.store.zscore("z", "zz"))
        # ties in byte order of the member
        self.assertEqual(await self.store.zrangebyscore("z"), ["a", "b", "c", "d"])
        self.assertEqual(await self.store.zrangebyscore("z", 2, 3.25), ["a", "b", "c"])
        self.assertEqual(await self.store.zrangebyscore("z", "(2", "+inf"), ["c", "d"])
        self.assertEqual(await self.store.zrangebyscore("z", "-inf", "(3.25"), ["a", "b"])
        self.assertEqual(await self.store.zrangebyscore("z", offset=1, count=2), ["b", "c"])
        self.assertEqual(await self.store.zrangebyscore_withscores("z", 3),
                         [("c", 3.25), ("d", 10.0)])
        self.assertEqual(await self.store.zrem("z", "a", "zz"), 1)
        self.assertEqual(await self.store.zrem("z", "b", "c", "d"), 3)
        self.assertFalse(await self.store.exists("z"))

    async def test_sorted_set_keeps_time_precision(self) -> None:
        stamp = 1764062441.123456789
        await self.store.zadd("z", {"x": stamp})
        self.assertEqual(await self.store.zscore("z", "x"), stamp)
        self.assertEqual(await self.store.zrangebyscore("z", stamp, stamp), ["x"])

    async def test_zrangebylex(self) -> None:
        # UTF-8 byte order, not code-point-of-UTF-16 or locale order
        members = ["b", "a", "ab", "a/b", "a\x00", "\u00e9", "\uffff", "\U0001f600", "Z", ""]
        await self.store.zadd("lex", {m: 0 for m in members})
        ordered = sorted(members, key=lambda m: m.encode("utf-8"))
        self.assertEqual(await self.store.zrangebylex("lex"), ordered)
        self.assertEqual(await self.store.zrangebylex("lex", "[a", "(b"),
                         ["a", "a\x00", "a/b", "ab"])
        self.assertEqual(await self.store.zrangebylex("lex", "(a", "[b"), ["a\x00", "a/b", "ab", "b"])
        self.assertEqual(await self.store.zrangebylex("lex", "-", "(a"), ["", "Z"])
        self.assertEqual(await self.store.zrangebylex("lex", "[a", "+", offset=2, count=3),
                         ["a/b", "ab", "b"])
        self.assertEqual(await self.store.zrangebylex("lex", "(b", "+", offset=0, count=-1),
                         ["\u00e9", "\uffff", "\U0001f600"])
        # a bytes bound past every member starting with "a"
        self.assertEqual(await self.store.zrangebylex("lex", b"(a\xff", "+", 0, 2),
                         ["b", "\u00e9"])
        self.assertEqual(await self.store.zrangebylex("lex", "[a", b"(a\xff"),
                         ["a", "a\x00", "a/b", "ab"])
        self.assertEqual(await self.store.zrangebylex("lex", "+", "-"), [])
        self.assertEqual(await self.store.zrangebylex("lex", "[c", "[b"), [])
        self.assertEqual(await self.store.zrangebylex("missing"), [])
        await self.assertFails(ValueError, self.store.zrangebylex("lex", "a", "+"))
        await self.assertFails(ValueError, self.store.zrangebylex("lex", "-", "+", offset=1))

    async def test_zrangebylex_follows_writes(self) -> None:
        await self.store.zadd("lex", {f"k{i:03d}": 0 for i in range(100)})
        self.assertEqual(await self.store.zrangebylex("lex", "(k010", "+", 0, 2), ["k011", "k012"])
        await self.store.zadd("lex", {"k010a": 0})
        await self.store.zrem("lex", "k011")
        self.assertEqual(await self.store.zrangebylex("lex", "(k010", "+", 0, 2), ["k010a", "k012"])
        await self.store.zrem("lex", *[f"k{i:03d}" for i in range(100)])
        self.assertEqual(await self.store.zrangebylex("lex"), ["k010a"])
        await self.store.delete("lex")
        await self.store.zadd("lex", {"new": 0})
        self.assertEqual(await self.store.zrangebylex("lex"), ["new"])

    async def test_hmget(self) -> None:
        await self.store.hset("h", {"a": "1", "b": "\u00e9"})
        self.assertEqual(await self.store.hmget("h", "b", "zz", "a"), ["\u00e9", None, "1"])
        self.assertEqual(await self.store.hmget("missing", "a"), [None])
        self.assertEqual(await self.store.hmget("h"), [])

    async def test_wrong_type(self) -> None:
        await self.store.set("k", "v")
        await self.store.sadd("s", "m")
        await self.assertFails(DatastoreError, self.store.sadd("k", "m"))
        await self.assertFails(DatastoreError, self.store.hgetall("k"))
        await self.assertFails(DatastoreError, self.store.get("s"))
        self.assertEqual(await self.store.get("k"), "v")

    # -- scan and prefixes -----------------------------------------------------------

    async def test_scan(self) -> None:
        for key in ["keypair:p1:a", "keypair:p1:b", "keypair:p2:a", "service:h:b", "k*", "kx"]:
            await self.store.set(key, "v")
        self.assertEqual(await self.store.scan("keypair:p1:*"), ["keypair:p1:a", "keypair:p1:b"])
        self.assertEqual(await self.store.scan("keypair:p?:a"), ["keypair:p1:a", "keypair:p2:a"])
        self.assertEqual(await self.store.scan("keypair:p[^1]:*"), ["keypair:p2:a"])
        self.assertEqual(await self.store.scan("k[*x]"), ["k*", "kx"])
        self.assertEqual(await self.store.scan("k\\*"), ["k*"])
        self.assertEqual(len(await self.store.scan()), 6)

    async def test_prefix_isolation(self) -> None:
        other = await self.make_client(unique_prefix())
        await self.store.set("k", "mine")
        await other.set("k", "theirs")
        await other.sadd("only-theirs", "x")
        self.assertEqual(await self.store.get("k"), "mine")
        self.assertEqual(await other.get("k"), "theirs")
        self.assertEqual(await self.store.scan(), ["k"])
        self.assertEqual(await other.scan(), ["k", "only-theirs"])
        await self.store.delete("k", "only-theirs")
        self.assertEqual(await other.get("k"), "theirs")
        self.assertTrue(await other.exists("only-theirs"))

    async def test_same_prefix_shares_data(self) -> None:
        other = await self.make_client()
        await self.store.set("k", "v")
        self.assertEqual(await other.get("k"), "v")

    # -- transactions ------------------------------------------------------------------

    async def test_transact_commits_queued_writes(self) -> None:
        await self.store.set("n", "1")
        await self.store.sadd("gone", "x")

        async def fn(txn: ITransaction) -> str:
            self.assertTrue(verifyObject(ITransaction, txn))
            n = await txn.get("n")
            txn.set("n", str(int(n) + 1))
            txn.set("tmp", "t", ex=100)
            txn.hset("h", {"f": "v"})
            txn.sadd("s", "a", "b")
            txn.zadd("z", {"m": 5})
            txn.incr("c")
            txn.incrby("c", 9)
            txn.delete("gone")
            txn.expire("n", 1000)
            return "result"

        self.assertEqual(await self.store.transact(["n"], fn), "result")
        self.assertEqual(await self.store.get("n"), "2")
        self.assertTrue(0 < await self.store.ttl("n") <= 1000)
        self.assertTrue(0 < await self.store.ttl("tmp") <= 100)
        self.assertEqual(await self.store.hgetall("h"), {"f": "v"})
        self.assertEqual(await self.store.smembers("s"), {"a", "b"})
        self.assertEqual(await self.store.zscore("z", "m"), 5.0)
        self.assertEqual(await self.store.get("c"), "10")
        self.assertFalse(await self.store.exists("gone"))

    async def test_transaction_reads(self) -> None:
        await self.store.set("a", "1")
        await self.store.hset("h", {"f": "v"})
        await self.store.sadd("s", "m")

        async def fn(txn: ITransaction) -> list[Any]:
            txn.set("a", "queued")  # reads see the committed state, not this
            txn.srem("s", "m")
            return [await txn.get("a"), await txn.mget("a", "zz"), await txn.exists("a"),
                    await txn.hget("h", "f"), await txn.hgetall("h"), await txn.smembers("s"),
                    await txn.sismember("s", "m"), await txn.scard("s")]

        self.assertEqual(await self.store.transact(["a", "s"], fn),
                         ["1", ["1", None], True, "v", {"f": "v"}, {"m"}, True, 1])
        self.assertEqual(await self.store.get("a"), "queued")
        self.assertEqual(await self.store.smembers("s"), set())

    async def test_transact_without_watched_keys(self) -> None:
        async def fn(txn: ITransaction) -> None:
            txn.set("a", "1")
            txn.sadd("idx", "a")

        await self.store.transact([], fn)
        self.assertEqual(await self.store.get("a"), "1")
        self.assertEqual(await self.store.smembers("idx"), {"a"})

    async def test_transact_exception_writes_nothing_and_releases(self) -> None:
        class Boom(Exception):
            pass

        raised = []

        async def fn(txn: ITransaction) -> None:
            await txn.get("k")
            txn.set("k", "written")
            txn.sadd("s", "m")
            raise Boom()

        # more failures than any pool has connections: a leak would hang
        for _ in range(50):
            raised.append(await self.assertFails(Boom, self.store.transact(["k"], fn)))
        self.assertEqual(len(set(map(id, raised))), 50)
        self.assertFalse(await self.store.exists("k"))
        self.assertFalse(await self.store.exists("s"))

        async def ok(txn: ITransaction) -> str:
            txn.set("k", "fine")
            return "ok"

        self.assertEqual(await self.store.transact(["k"], ok), "ok")
        self.assertEqual(await self.store.get("k"), "fine")

    async def test_failed_write_in_exec_releases(self) -> None:
        await self.store.set("text", "abc")

        async def fn(txn: ITransaction) -> None:
            txn.incr("text")  # refused when it runs

        for _ in range(10):
            await self.assertFails(DatastoreError, self.store.transact(["text"], fn))
        self.assertEqual(await self.store.get("text"), "abc")
        self.assertEqual(await self.store.transact(["x"], self._noop), None)

    async def _noop(self, txn: ITransaction) -> None:
        txn.set("x", "1")

    async def test_transaction_unusable_after_its_function(self) -> None:
        kept: list[ITransaction] = []

        async def fn(txn: ITransaction) -> None:
            kept.append(txn)

        await self.store.transact(["k"], fn)
        self.assertRaises(DatastoreError, kept[0].set, "k", "late")
        await self.assertFails(DatastoreError, kept[0].get("k"))
        self.assertFalse(await self.store.exists("k"))

    async def test_conflict_retries(self) -> None:
        other = await self.make_client()
        await self.store.set("k", "0")
        runs: list[str | None] = []

        async def fn(txn: ITransaction) -> str:
            seen = await txn.get("k")
            runs.append(seen)
            if len(runs) == 1:
                await other.set("k", "other")  # a concurrent writer
            txn.set("k", f"fn saw {seen}")
            txn.sadd("log", f"run {len(runs)}")
            return f"run {len(runs)}"

        self.assertEqual(await self.store.transact(["k"], fn), "run 2")
        self.assertEqual(runs, ["0", "other"])
        self.assertEqual(await self.store.get("k"), "fn saw other")
        self.assertEqual(await self.store.smembers("log"), {"run 2"})

    async def test_conflict_on_key_watched_later(self) -> None:
        other = await self.make_client()
        runs = []

        async def fn(txn: ITransaction) -> None:
            runs.append(1)
            await txn.watch("record")
            if len(runs) == 1:
                await other.set("record", "changed")
            txn.set("out", str(len(runs)))

        await self.store.transact([], fn)
        self.assertEqual(len(runs), 2)
        self.assertEqual(await self.store.get("out"), "2")

    async def test_gives_up_after_retries(self) -> None:
        other = await self.make_client()
        runs = []

        async def fn(txn: ITransaction) -> None:
            runs.append(1)
            await txn.get("k")
            await other.incr("k")  # conflicts every time
            txn.set("mine", "x")

        e = await self.assertFails(ConcurrencyError,
                                   self.store.transact(["k"], fn, retries=3))
        self.assertIn("3 retries", str(e))
        self.assertEqual(len(runs), 4)
        self.assertFalse(await self.store.exists("mine"))
        self.assertEqual(await self.store.get("k"), "4")

    async def test_concurrent_read_increment_write(self) -> None:
        clients = [self.store, await self.make_client(), await self.make_client()]
        runs = []

        async def increment(txn: ITransaction) -> None:
            runs.append(1)
            value = int(await txn.get("counter") or "0")
            await self.pause()  # type: ignore[attr-defined]
            txn.set("counter", str(value + 1))

        # many retries allowed: this test is about lost updates, not fairness
        pending = [run(clients[i % 3].transact(["counter"], increment, retries=1000))
                   for i in range(50)]
        await self.settle(pending)  # type: ignore[attr-defined]
        self.assertEqual(await self.store.get("counter"), "50")
        self.assertTrue(len(runs) >= 50)

    async def test_closed_client(self) -> None:
        other = await self.make_client()
        await other.close()
        await self.assertFails(DatastoreUnavailable, other.get("k"))
        await self.assertFails(DatastoreUnavailable, other.transact(["k"], self._noop))


class MemoryDatastoreContractTests(MemoryHarness, DatastoreContractMixin, unittest.TestCase):
    """The contract, in memory; plus what only a fake clock can show."""

    async def test_interleaved_writers_conflict(self) -> None:
        # deterministic here: every transaction reads before any writes
        runs = []

        async def increment(txn: ITransaction) -> None:
            runs.append(1)
            value = int(await txn.get("counter") or "0")
            await self.pause()
            txn.set("counter", str(value + 1))

        pending = [run(self.store.transact(["counter"], increment)) for _ in range(5)]
        await self.settle(pending)
        self.assertEqual(await self.store.get("counter"), "5")
        self.assertEqual(len(runs), 5 + 4 + 3 + 2 + 1)

    async def test_expiry_follows_the_clock(self) -> None:
        await self.store.set("k", "v", ex=10)
        await self.store.sadd("s", "m")
        await self.store.expire("s", 5)
        self.clock.advance(5)
        self.assertEqual(await self.store.smembers("s"), {"m"})
        self.assertEqual(await self.store.ttl("k"), 5)
        self.clock.advance(0.5)
        self.assertFalse(await self.store.exists("s"))
        self.clock.advance(4.5)
        self.assertEqual(await self.store.get("k"), "v")
        self.clock.advance(0.001)
        self.assertIsNone(await self.store.get("k"))
        self.assertEqual(await self.store.scan(), [])

    async def test_expiry_of_watched_key_conflicts(self) -> None:
        await self.store.set("k", "v", ex=1)
        runs = []

        async def fn(txn: ITransaction) -> None:
            runs.append(await txn.get("k"))
            if len(runs) == 1:
                self.clock.advance(2)
            txn.set("out", "x")

        await self.store.transact(["k"], fn)
        self.assertEqual(runs, ["v", None])


class RedisDatastoreContractTests(RedisHarness, DatastoreContractMixin, unittest.TestCase):
    """The contract, on a real Redis server; plus connection handling."""

    async def test_not_answering(self) -> None:
        from twisted.internet import reactor

        with socket.socket() as s:  # a port that was free a moment ago
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        store = RedisDatastore(RedisConfig(host="127.0.0.1", port=port), reactor)
        e = await self.assertFails(DatastoreUnavailable, store.connect())
        self.assertIn(f"127.0.0.1:{port}", str(e))
        self.assertEqual(e.status, 503)  # type: ignore[attr-defined]
        await store.close()

    async def test_not_connected_yet(self) -> None:
        from twisted.internet import reactor

        store = RedisDatastore(RedisConfig(port=REDIS_PORT), reactor)
        await self.assertFails(DatastoreUnavailable, store.get("k"))

    def test_pool_of_one_refused(self) -> None:
        from twisted.internet import reactor

        self.assertRaises(ValueError, RedisDatastore, RedisConfig(pool_size=1), reactor)

    async def test_many_transactions_on_a_small_pool(self) -> None:
        small = await self.make_client(pool_size=2)

        async def fn(txn: ITransaction) -> None:
            await small.get("plain")  # a plain command inside a transaction
            txn.incr("n")

        await defer.gatherResults([run(small.transact(["x"], fn)) for _ in range(20)])
        self.assertEqual(await small.get("n"), "20")
