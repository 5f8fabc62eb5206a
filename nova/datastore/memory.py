"""
An in-process L{IDatastore} with the semantics of the Redis one, for unit tests
and single-process tools.

Commands complete synchronously (a coroutine that never suspends), so a test
driving it with a L{twisted.internet.task.Clock} needs no reactor. WATCH is
modelled with per-key versions: a transaction whose function awaits something
while another client changes a watched key conflicts and runs again, as with
Redis. The retry does not pause (there is no network to back off from), so a
test stays deterministic.
"""

from __future__ import annotations

import builtins

from typing import Any, Awaitable, Callable, Iterable, Mapping, TypeVar

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from nova.config import RedisConfig
from nova.datastore._common import (WriteQueue, check_ex, check_int, check_key_list, check_limit, check_score,
                                    check_str, check_strs, escape_glob, glob_to_regex,
                                    parse_bound, parse_lex_bound, raise_first)
from nova.datastore.errors import DatastoreError, DatastoreUnavailable
from nova.datastore.interfaces import IDatastore, ITransaction
from nova.datastore.memory_server import MemoryServer
from nova.exception import ConcurrencyError

T = TypeVar("T")

__all__ = ["MemoryDatastore", "MemoryServer"]


@implementer(ITransaction)
class MemoryTransaction(WriteQueue):
    """The L{ITransaction} of a L{MemoryDatastore}."""

    def __init__(self, store: "MemoryDatastore") -> None:
        super().__init__()
        self._store = store
        self.watched: dict[str, int] = {}

    def _k(self, key: str) -> str:
        self._check_open()
        return self._store._k(key)

    async def watch(self, *keys: str) -> None:
        """Remember the version of each key, unless already watched."""
        server = self._store._server
        for key in check_strs("key", keys):
            full = self._k(key)
            self.watched.setdefault(full, server.version(full))

    async def get(self, key: str) -> str | None:
        """GET."""
        return self._store._server.get(self._k(key))

    async def mget(self, *keys: str) -> list[str | None]:
        """MGET."""
        return self._store._server.mget([self._k(k) for k in keys])

    async def exists(self, key: str) -> bool:
        """EXISTS."""
        return self._store._server.exists(self._k(key))

    async def hget(self, key: str, field: str) -> str | None:
        """HGET."""
        return self._store._server.hget(self._k(key), field)

    async def hgetall(self, key: str) -> dict[str, str]:
        """HGETALL."""
        return self._store._server.hgetall(self._k(key))

    async def smembers(self, key: str) -> builtins.set[str]:
        """SMEMBERS."""
        return self._store._server.smembers(self._k(key))

    async def sismember(self, key: str, member: str) -> bool:
        """SISMEMBER."""
        return self._store._server.sismember(self._k(key), member)

    async def scard(self, key: str) -> int:
        """SCARD."""
        return self._store._server.scard(self._k(key))

    def commit(self) -> bool:
        """
        EXEC: apply the queued writes unless a watched key changed.

        @return: whether the writes were applied.
        @raise DatastoreError: a queued write failed (the others were applied,
            as Redis does).
        """
        self.finished = True
        server = self._store._server
        if any(server.version(k) != v for k, v in self.watched.items()):
            return False
        errors: list[DatastoreError] = []
        for name, args in self.queued:
            try:
                server.execute(name, _prefix_args(self._store.prefix, name, args))
            except DatastoreError as e:
                errors.append(e)
        raise_first(errors)
        return True


def _prefix_args(prefix: str, name: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    if name == "delete":
        return tuple(prefix + k for k in args)
    return (prefix + args[0],) + args[1:]


@implementer(IDatastore)
class MemoryDatastore:
    """
    An L{IDatastore} over a L{MemoryServer}.

    @ivar prefix: added to every key.
    """

    def __init__(self, clock: IReactorTime, prefix: str = "nova:",
                 server: MemoryServer | None = None) -> None:
        """
        @param clock: the time source for expiry; ignored when C{server} is given.
        @param prefix: added to every key.
        @param server: the keyspace to share with other clients; a new one by default.
        """
        self.prefix = check_str("prefix", prefix)
        self._server = server if server is not None else MemoryServer(clock)
        self._closed = False

    @classmethod
    def from_config(cls, config: RedisConfig, clock: IReactorTime) -> "MemoryDatastore":
        """@return: a store with the prefix of C{config} on a new keyspace."""
        return cls(clock, prefix=config.prefix)

    @property
    def server(self) -> MemoryServer:
        """@return: the keyspace, to build more clients on it."""
        return self._server

    def client(self, prefix: str | None = None) -> "MemoryDatastore":
        """@return: another client of the same keyspace (this prefix by default)."""
        return MemoryDatastore(self._server.clock, self.prefix if prefix is None else prefix,
                               self._server)

    def _k(self, key: str) -> str:
        if self._closed:
            raise DatastoreUnavailable("the datastore client is closed")
        return self.prefix + check_str("key", key)

    async def get(self, key: str) -> str | None:
        """See L{IDatastore.get}."""
        return self._server.get(self._k(key))

    async def set(self, key: str, value: str, ex: int | None = None, nx: bool = False) -> bool:
        """See L{IDatastore.set}."""
        if ex is not None:
            check_ex(ex)
        return self._server.set(self._k(key), check_str("value", value), ex, bool(nx))

    async def delete(self, *keys: str) -> int:
        """See L{IDatastore.delete}."""
        return self._server.delete(*[self._k(k) for k in keys])

    async def exists(self, key: str) -> bool:
        """See L{IDatastore.exists}."""
        return self._server.exists(self._k(key))

    async def incr(self, key: str) -> int:
        """See L{IDatastore.incr}."""
        return self._server.incrby(self._k(key), 1)

    async def incrby(self, key: str, amount: int) -> int:
        """See L{IDatastore.incrby}."""
        return self._server.incrby(self._k(key), check_int("amount", amount))

    async def expire(self, key: str, seconds: int) -> bool:
        """See L{IDatastore.expire}."""
        return self._server.expire(self._k(key), check_int("seconds", seconds))

    async def ttl(self, key: str) -> int:
        """See L{IDatastore.ttl}."""
        return self._server.ttl(self._k(key))

    async def mget(self, *keys: str) -> list[str | None]:
        """See L{IDatastore.mget}."""
        return self._server.mget([self._k(k) for k in keys])

    async def hget(self, key: str, field: str) -> str | None:
        """See L{IDatastore.hget}."""
        return self._server.hget(self._k(key), check_str("field", field))

    async def hset(self, key: str, mapping: Mapping[str, str]) -> int:
        """See L{IDatastore.hset}."""
        full = self._k(key)
        items = tuple((check_str("field", f), check_str("value", v)) for f, v in mapping.items())
        return self._server.hset(full, items) if items else 0

    async def hgetall(self, key: str) -> dict[str, str]:
        """See L{IDatastore.hgetall}."""
        return self._server.hgetall(self._k(key))

    async def hmget(self, key: str, *fields: str) -> list[str | None]:
        """See L{IDatastore.hmget}."""
        return self._server.hmget(self._k(key), check_strs("field", fields))

    async def hdel(self, key: str, *fields: str) -> int:
        """See L{IDatastore.hdel}."""
        return self._server.hdel(self._k(key), *check_strs("field", fields))

    async def sadd(self, key: str, *members: str) -> int:
        """See L{IDatastore.sadd}."""
        full = self._k(key)
        return self._server.sadd(full, *check_strs("member", members)) if members else 0

    async def srem(self, key: str, *members: str) -> int:
        """See L{IDatastore.srem}."""
        return self._server.srem(self._k(key), *check_strs("member", members))

    async def smembers(self, key: str) -> builtins.set[str]:
        """See L{IDatastore.smembers}."""
        return self._server.smembers(self._k(key))

    async def sismember(self, key: str, member: str) -> bool:
        """See L{IDatastore.sismember}."""
        return self._server.sismember(self._k(key), check_str("member", member))

    async def scard(self, key: str) -> int:
        """See L{IDatastore.scard}."""
        return self._server.scard(self._k(key))

    async def spop(self, key: str) -> str | None:
        """See L{IDatastore.spop}."""
        return self._server.spop(self._k(key))

    async def zadd(self, key: str, mapping: Mapping[str, float]) -> int:
        """See L{IDatastore.zadd}."""
        full = self._k(key)
        items = tuple((check_str("member", m), check_score(s)) for m, s in mapping.items())
        return self._server.zadd(full, items) if items else 0

    async def zrem(self, key: str, *members: str) -> int:
        """See L{IDatastore.zrem}."""
        return self._server.zrem(self._k(key), *check_strs("member", members))

    async def zscore(self, key: str, member: str) -> float | None:
        """See L{IDatastore.zscore}."""
        return self._server.zscore(self._k(key), check_str("member", member))

    async def zcard(self, key: str) -> int:
        """See L{IDatastore.zcard}."""
        return self._server.zcard(self._k(key))

    async def zrangebyscore(self, key: str, min: float | str = "-inf", max: float | str = "+inf",
                            offset: int | None = None, count: int | None = None) -> list[str]:
        """See L{IDatastore.zrangebyscore}."""
        hits = await self.zrangebyscore_withscores(key, min, max, offset, count)
        return [member for member, _ in hits]

    async def zrangebyscore_withscores(
            self, key: str, min: float | str = "-inf", max: float | str = "+inf",
            offset: int | None = None, count: int | None = None) -> list[tuple[str, float]]:
        """See L{IDatastore.zrangebyscore_withscores}."""
        parse_bound(min)
        parse_bound(max)
        check_limit(offset, count)
        return self._server.zrangebyscore(self._k(key), min, max, offset, count)

    async def zrangebylex(self, key: str, min: str | bytes = "-", max: str | bytes = "+",
                          offset: int | None = None, count: int | None = None) -> list[str]:
        """See L{IDatastore.zrangebylex}."""
        parse_lex_bound(min)
        parse_lex_bound(max)
        check_limit(offset, count)
        if count is not None:
            check_int("count", count)
            check_int("offset", offset or 0)
        return self._server.zrangebylex(self._k(key), min, max, offset, count)

    async def scan(self, pattern: str = "*") -> list[str]:
        """See L{IDatastore.scan}."""
        regex = glob_to_regex(escape_glob(self._k("")) + check_str("pattern", pattern))
        return sorted(k[len(self.prefix):] for k in self._server.keys(regex))

    async def transact(self, watch_keys: Iterable[str],
                       fn: Callable[[ITransaction], Awaitable[T]], retries: int = 20) -> T:
        """See L{IDatastore.transact}."""
        keys = check_key_list(watch_keys)
        for _attempt in range(retries + 1):
            self._k("")  # closed?
            txn = MemoryTransaction(self)
            await txn.watch(*keys)
            try:
                result = await fn(txn)
            finally:
                # after fn, the transaction only commits; a raising fn writes
                # nothing because nothing was applied yet
                txn.finished = True
            if txn.commit():
                return result
        raise ConcurrencyError(
            f"transaction on {keys!r} still conflicted after {retries} retries")

    def close(self) -> defer.Deferred[None]:
        """See L{IDatastore.close}."""
        self._closed = True
        return defer.succeed(None)
