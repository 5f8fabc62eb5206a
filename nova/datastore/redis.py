"""
The L{IDatastore} over a real Redis server, through txredisapi.

One pool of C{RedisConfig.pool_size} connections serves everything: plain
commands borrow any idle connection for one command; a transaction takes one
connection out of the pool for its WATCH ... EXEC (WATCH state belongs to a
connection) and gives it back on every path. At most C{pool_size - 1}
transactions hold a connection at once, so plain commands issued by a
transaction's function always find one.

txredisapi is used with C{convertNumbers=False} and C{charset="utf-8"}: values
come back exactly as stored, as C{str}.
"""

from __future__ import annotations

import builtins

import random
from typing import Any, Awaitable, Callable, Iterable, Mapping, TypeVar

import txredisapi
from twisted.internet import defer, error
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from zope.interface import implementer

from nova.config import RedisConfig
from nova.datastore._common import (check_ex, check_int, check_key_list, check_limit,
                                    check_score, check_str, check_strs, escape_glob,
                                    format_bound, format_lex_bound)
from nova.datastore.errors import DatastoreUnavailable
from nova.datastore.interfaces import IDatastore, ITransaction
from nova.datastore.redis_commands import (argv_for, execute, pairs_to_dict, parse_scores,
                                           prefix_args)
from nova.datastore.redis_txn import RedisTransaction
from nova.exception import ConcurrencyError

T = TypeVar("T")


class _Probe(Protocol):
    """A connection that is closed as soon as it is made: is the port answering?"""

    def __init__(self) -> None:
        self.lost: defer.Deferred[None] = defer.Deferred()

    def connectionLost(self, reason: Failure = error.ConnectionDone()) -> None:  # type: ignore[assignment]
        self.lost.callback(None)


@implementer(IDatastore)
class RedisDatastore:
    """
    An L{IDatastore} on a Redis server. Call L{connect} before anything else.

    @ivar prefix: added to every key.
    """

    def __init__(self, config: RedisConfig, reactor: IReactorTime, *,
                 connect_timeout: float = 5.0, reply_timeout: float | None = 30.0,
                 backoff: float = 0.002, max_backoff: float = 0.05,
                 rng: random.Random | None = None) -> None:
        """
        @param config: where the server is, the key prefix and the pool size
            (at least 2).
        @param reactor: connects, times out and paces retries.
        @param connect_timeout: seconds L{connect} waits for the pool.
        @param reply_timeout: seconds a command waits for its reply before its
            connection is dropped and the command fails; C{None}: forever.
        @param backoff: first pause, in seconds, before a transaction retries;
            it doubles with each conflict, up to C{max_backoff}, with jitter.
        @param max_backoff: the longest pause between two attempts.
        @param rng: draws the jitter.
        @raise ValueError: C{pool_size} below 2.
        """
        if config.pool_size < 2:
            raise ValueError("redis pool_size must be at least 2: transactions hold "
                             "connections, plain commands need one left over")
        self._config = config
        self.prefix = config.prefix
        self._reactor = reactor
        self._connect_timeout = connect_timeout
        self._reply_timeout = reply_timeout
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._rng = rng or random.Random()
        self._factory: txredisapi.RedisFactory | None = None
        self._handler: Any = None
        self._closed = False
        self._txn_slots = defer.DeferredSemaphore(config.pool_size - 1)

    @property
    def _where(self) -> str:
        return f"Redis at {self._config.host}:{self._config.port}"

    async def connect(self) -> None:
        """
        Open the pool.

        @raise DatastoreUnavailable: the server is not answering, or the pool
            is not up within C{connect_timeout}.
        """
        if self._closed:
            raise DatastoreUnavailable("the datastore client is closed")
        if self._factory is not None:
            return
        endpoint = HostnameEndpoint(self._reactor, self._config.host, self._config.port,
                                    timeout=self._connect_timeout)
        # A quick probe first: a refused connection is reported at once, where
        # the pool would quietly keep retrying until connect_timeout.
        try:
            probe = await endpoint.connect(Factory.forProtocol(_Probe))
        except (error.ConnectError, error.DNSLookupError) as e:
            raise DatastoreUnavailable(f"{self._where} is not answering: {e}") from None
        probe.transport.loseConnection()
        await probe.lost

        factory = txredisapi.RedisFactory(
            f"{self._config.host}:{self._config.port}", self._config.db or None,
            self._config.pool_size, isLazy=False, handler=txredisapi.ConnectionHandler,
            charset="utf-8", replyTimeout=self._reply_timeout, convertNumbers=False)
        factory.reconnect = True
        # Don't let the pool's Deferred be cancelled by our timeout: the
        # factory fires it later and would fail on a cancelled one.
        ready: defer.Deferred[Any] = defer.Deferred()
        factory.deferred.addBoth(lambda r: None if ready.called else ready.callback(r))
        factory.startConnecting(endpoint)
        ready.addTimeout(self._connect_timeout, self._reactor)  # type: ignore[arg-type]
        try:
            handler = await ready
        except (defer.TimeoutError, ValueError) as e:
            await factory.disconnect()
            why = "no answer in time" if isinstance(e, defer.TimeoutError) else str(e)
            raise DatastoreUnavailable(f"{self._where}: cannot open the pool: {why}") from None
        if self._closed:  # closed while connecting
            await factory.disconnect()
            raise DatastoreUnavailable("the datastore client is closed")
        self._factory, self._handler = factory, handler

    def close(self) -> defer.Deferred[None]:
        """See L{IDatastore.close}."""
        self._closed = True
        factory, self._factory, self._handler = self._factory, None, None
        if factory is None:
            return defer.succeed(None)
        d: defer.Deferred[None] = factory.disconnect()
        return d.addCallback(lambda _: None)

    # -- plumbing ------------------------------------------------------------

    def _k(self, key: str) -> str:
        self._pool()  # fail early when closed
        return self.prefix + check_str("key", key)

    def _pool(self) -> Any:
        if self._handler is None:
            raise DatastoreUnavailable(
                "the datastore client is closed" if self._closed
                else f"{self._where}: not connected (call connect() first)")
        if self._factory is not None and self._factory.size == 0:
            # every connection is lost and txredisapi is reconnecting: fail
            # now rather than wait, unbounded, for the server to come back
            raise DatastoreUnavailable(f"{self._where}: connection lost, reconnecting")
        return self._handler

    async def _call(self, *argv: str | bytes) -> Any:
        return await execute(self._pool(), argv, self._where)

    async def _write(self, name: str, *args: Any) -> Any:
        self._pool()
        return await self._call(*argv_for(name, prefix_args(self.prefix, name, args)))

    # -- commands ------------------------------------------------------------

    async def get(self, key: str) -> str | None:
        """See L{IDatastore.get}."""
        return await self._call("GET", self._k(key))  # type: ignore[no-any-return]

    async def set(self, key: str, value: str, ex: int | None = None, nx: bool = False) -> bool:
        """See L{IDatastore.set}."""
        if ex is not None:
            check_ex(ex)
        reply = await self._write("set", key, check_str("value", value), ex, bool(nx))
        return reply is not None

    async def delete(self, *keys: str) -> int:
        """See L{IDatastore.delete}."""
        if not keys:
            return 0
        return await self._write("delete", *check_strs("key", keys))  # type: ignore[no-any-return]

    async def exists(self, key: str) -> bool:
        """See L{IDatastore.exists}."""
        return bool(await self._call("EXISTS", self._k(key)))

    async def incr(self, key: str) -> int:
        """See L{IDatastore.incr}."""
        return await self.incrby(key, 1)

    async def incrby(self, key: str, amount: int) -> int:
        """See L{IDatastore.incrby}."""
        return await self._write("incrby", check_str("key", key),  # type: ignore[no-any-return]
                                 check_int("amount", amount))

    async def expire(self, key: str, seconds: int) -> bool:
        """See L{IDatastore.expire}."""
        return bool(await self._write("expire", check_str("key", key),
                                      check_int("seconds", seconds)))

    async def ttl(self, key: str) -> int:
        """See L{IDatastore.ttl}."""
        return int(await self._call("TTL", self._k(key)))

    async def mget(self, *keys: str) -> list[str | None]:
        """See L{IDatastore.mget}."""
        if not keys:
            return []
        return list(await self._call("MGET", *[self._k(k) for k in keys]))

    async def hget(self, key: str, field: str) -> str | None:
        """See L{IDatastore.hget}."""
        return await self._call("HGET", self._k(key),  # type: ignore[no-any-return]
                                check_str("field", field))

    async def hset(self, key: str, mapping: Mapping[str, str]) -> int:
        """See L{IDatastore.hset}."""
        items = tuple((check_str("field", f), check_str("value", v)) for f, v in mapping.items())
        if not items:
            self._k(key)
            return 0
        return await self._write("hset", key, items)  # type: ignore[no-any-return]

    async def hgetall(self, key: str) -> dict[str, str]:
        """See L{IDatastore.hgetall}."""
        return pairs_to_dict(await self._call("HGETALL", self._k(key)))

    async def hmget(self, key: str, *fields: str) -> list[str | None]:
        """See L{IDatastore.hmget}."""
        if not fields:
            self._k(key)
            return []
        return list(await self._call("HMGET", self._k(key), *check_strs("field", fields)))

    async def hdel(self, key: str, *fields: str) -> int:
        """See L{IDatastore.hdel}."""
        if not fields:
            self._k(key)
            return 0
        return await self._write("hdel", key,  # type: ignore[no-any-return]
                                 *check_strs("field", fields))

    async def sadd(self, key: str, *members: str) -> int:
        """See L{IDatastore.sadd}."""
        if not members:
            self._k(key)
            return 0
        return await self._write("sadd", key,  # type: ignore[no-any-return]
                                 *check_strs("member", members))

    async def srem(self, key: str, *members: str) -> int:
        """See L{IDatastore.srem}."""
        if not members:
            self._k(key)
            return 0
        return await self._write("srem", key,  # type: ignore[no-any-return]
                                 *check_strs("member", members))

    async def smembers(self, key: str) -> builtins.set[str]:
        """See L{IDatastore.smembers}."""
        return set(await self._call("SMEMBERS", self._k(key)))

    async def sismember(self, key: str, member: str) -> bool:
        """See L{IDatastore.sismember}."""
        return bool(await self._call("SISMEMBER", self._k(key), check_str("member", member)))

    async def scard(self, key: str) -> int:
        """See L{IDatastore.scard}."""
        return int(await self._call("SCARD", self._k(key)))

    async def spop(self, key: str) -> str | None:
        """See L{IDatastore.spop}."""
        return await self._call("SPOP", self._k(key))  # type: ignore[no-any-return]

    async def zadd(self, key: str, mapping: Mapping[str, float]) -> int:
        """See L{IDatastore.zadd}."""
        items = tuple((check_str("member", m), check_score(s)) for m, s in mapping.items())
        if not items:
            self._k(key)
            return 0
        return await self._write("zadd", key, items)  # type: ignore[no-any-return]

    async def zrem(self, key: str, *members: str) -> int:
        """See L{IDatastore.zrem}."""
        if not members:
            self._k(key)
            return 0
        return await self._write("zrem", key,  # type: ignore[no-any-return]
                                 *check_strs("member", members))

    async def zscore(self, key: str, member: str) -> float | None:
        """See L{IDatastore.zscore}."""
        reply = await self._call("ZSCORE", self._k(key), check_str("member", member))
        return None if reply is None else float(reply)

    async def zcard(self, key: str) -> int:
        """See L{IDatastore.zcard}."""
        return int(await self._call("ZCARD", self._k(key)))

    def _zrange_argv(self, key: str, min: float | str, max: float | str,
                     offset: int | None, count: int | None) -> list[str]:
        check_limit(offset, count)
        argv = ["ZRANGEBYSCORE", self._k(key), format_bound(min), format_bound(max),
                "WITHSCORES"]
        if count is not None:
            argv += ["LIMIT", str(check_int("offset", offset or 0)), str(check_int("count", count))]
        return argv

    async def zrangebyscore(self, key: str, min: float | str = "-inf", max: float | str = "+inf",
                            offset: int | None = None, count: int | None = None) -> list[str]:
        """See L{IDatastore.zrangebyscore}."""
        hits = await self.zrangebyscore_withscores(key, min, max, offset, count)
        return [member for member, _ in hits]

    async def zrangebyscore_withscores(
            self, key: str, min: float | str = "-inf", max: float | str = "+inf",
            offset: int | None = None, count: int | None = None) -> list[tuple[str, float]]:
        """See L{IDatastore.zrangebyscore_withscores}."""
        return parse_scores(await self._call(*self._zrange_argv(key, min, max, offset, count)))

    async def zrangebylex(self, key: str, min: str | bytes = "-", max: str | bytes = "+",
                          offset: int | None = None, count: int | None = None) -> list[str]:
        """See L{IDatastore.zrangebylex}."""
        check_limit(offset, count)
        argv: list[Any] = ["ZRANGEBYLEX", self._k(key), format_lex_bound(min),
                           format_lex_bound(max)]
        if count is not None:
            argv += ["LIMIT", str(check_int("offset", offset or 0)), str(check_int("count", count))]
        return list(await self._call(*argv))

    async def scan(self, pattern: str = "*") -> list[str]:
        """See L{IDatastore.scan}."""
        match = escape_glob(self.prefix) + check_str("pattern", pattern)
        found: builtins.set[str] = builtins.set()
        cursor = "0"
        while True:
            cursor, keys = await self._call("SCAN", cursor, "MATCH", match, "COUNT", "500")
            found.update(keys)  # SCAN may return a key twice
            if cursor == "0":
                break
        return sorted(k[len(self.prefix):] for k in found)

    # -- transactions ----------------------------------------------------------

    async def transact(self, watch_keys: Iterable[str],
                       fn: Callable[[ITransaction], Awaitable[T]], retries: int = 20) -> T:
        """See L{IDatastore.transact}."""
        keys = check_key_list(watch_keys)
        for attempt in range(retries + 1):
            self._pool()
            await self._txn_slots.acquire()
            txn = RedisTransaction(self._factory, self.prefix, self._where)
            try:
                self._pool()  # closed while this waited for a slot?
                await txn.begin()
                await txn.watch(*keys)
                result = await fn(txn)
                committed = await txn.commit()
            finally:
                # on every path: fn raised, a command failed, EXEC ran or not
                await txn.release()
                self._txn_slots.release()
            if committed:
                return result
            if attempt < retries:
                pause = self._rng.uniform(0, min(self._max_backoff, self._backoff * 2 ** attempt))
                await deferLater(self._reactor, pause)  # type: ignore[arg-type]
        raise ConcurrencyError(
            f"transaction on {keys!r} still conflicted after {retries} retries")


__all__ = ["RedisDatastore"]
