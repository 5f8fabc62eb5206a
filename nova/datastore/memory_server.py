"""
The keyspace behind L{nova.datastore.memory.MemoryDatastore}: an in-process
stand-in for one Redis server.

Several L{MemoryDatastore} clients (with the same or different prefixes) can
share one L{MemoryServer}, as several processes share one Redis. Every key has
a version that changes whenever the key is written, deleted or expires: that
is what WATCH compares.
"""

from __future__ import annotations

import builtins

import bisect
import random
import re
from typing import Any, Callable, Iterable

from twisted.internet.interfaces import IReactorTime

from nova.datastore._common import parse_bound, parse_lex_bound
from nova.datastore.errors import DatastoreError

_WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"

#: a ZADD or ZREM of at most this many members updates a sorted set's
#: byte-ordered view in place; a bigger one drops it (rebuilt on the next read)
_LEX_PATCH_LIMIT = 64

#: the type of the value each kind of key holds
_KINDS: dict[str, Callable[[], Any]] = {"string": str, "hash": dict, "set": set, "zset": dict}


class MemoryServer:
    """
    A Redis-like keyspace in a dict, with expiry against an injected clock.

    Methods take full (prefixed) keys and run synchronously: each is atomic,
    as a Redis command is.
    """

    def __init__(self, clock: IReactorTime, rng: random.Random | None = None) -> None:
        """
        @param clock: the time source for expiry (a L{twisted.internet.task.Clock}
            in tests, the reactor otherwise).
        @param rng: chooses the member SPOP removes.
        """
        self.clock = clock
        self._rng = rng or random.Random()
        self._data: dict[str, tuple[str, Any]] = {}
        self._expires: dict[str, float] = {}
        self._versions: dict[str, int] = {}
        self._tick = 0
        # per sorted set: (the key's version it was built at, its members as
        # UTF-8 bytes, sorted), so ZRANGEBYLEX is a bisection, not a sort
        self._lex: dict[str, tuple[int, list[bytes]]] = {}

    # -- bookkeeping -------------------------------------------------------

    def _touch(self, key: str) -> None:
        # versions only grow, and survive deletion, so that "deleted and
        # created again" still differs from what a watcher saw
        self._tick += 1
        self._versions[key] = self._tick

    def _alive(self, key: str) -> bool:
        when = self._expires.get(key)
        if when is not None and self.clock.seconds() > when:
            # Redis counts an expired key as modified for WATCH
            del self._data[key]
            del self._expires[key]
            self._touch(key)
        return key in self._data

    def _lookup(self, key: str, kind: str) -> Any:
        """@return: the value of C{key} when it exists and holds C{kind}, else C{None}."""
        if not self._alive(key):
            return None
        held, value = self._data[key]
        if held != kind:
            raise DatastoreError(_WRONGTYPE)
        return value

    def _create(self, key: str, kind: str) -> Any:
        value = self._lookup(key, kind)
        if value is None:
            value = _KINDS[kind]()
            self._data[key] = (kind, value)
        return value

    def _drop_if_empty(self, key: str) -> None:
        kind_value = self._data.get(key)
        if kind_value is not None and not kind_value[1]:
            self._remove(key)

    def _remove(self, key: str) -> None:
        del self._data[key]
        self._expires.pop(key, None)
        self._lex.pop(key, None)

    def version(self, key: str) -> int:
        """@return: a number that changes whenever C{key} changes."""
        self._alive(key)
        return self._versions.get(key, 0)

    def execute(self, name: str, args: tuple[Any, ...]) -> Any:
        """Run one queued write (see L{nova.datastore._common.WriteQueue})."""
        return getattr(self, name)(*args)

    # -- keys and strings --------------------------------------------------

    def get(self, key: str) -> str | None:
        """GET."""
        value: str | None = self._lookup(key, "string")
        return value

    def set(self, key: str, value: str, ex: int | None = None, nx: bool = False) -> bool:
        """SET [EX] [NX]."""
        if nx and self._alive(key):
            return False
        self._data[key] = ("string", value)
        self._expires.pop(key, None)
        if ex is not None:
            self._expires[key] = self.clock.seconds() + ex
        self._touch(key)
        return True

    def delete(self, *keys: str) -> int:
        """DEL."""
        removed = 0
        for key in keys:
            if self._alive(key):
                self._remove(key)
                self._touch(key)
                removed += 1
        return removed

    def exists(self, key: str) -> bool:
        """EXISTS."""
        return self._alive(key)

    def incrby(self, key: str, amount: int) -> int:
        """INCRBY."""
        current = self._lookup(key, "string")
        try:
            number = int(current) if current is not None else 0
        except ValueError:
            raise DatastoreError("value is not an integer or out of range") from None
        if current is not None and str(number) != current:
            raise DatastoreError("value is not an integer or out of range")
        number += amount
        if not -2**63 <= number < 2**63:
            raise DatastoreError("increment or decrement would overflow")
        self._data[key] = ("string", str(number))  # keeps any expiry, as Redis does
        self._touch(key)
        return number

    def expire(self, key: str, seconds: int) -> bool:
        """EXPIRE: zero or less deletes the key."""
        if not self._alive(key):
            return False
        if seconds <= 0:
            self._remove(key)
        else:
            self._expires[key] = self.clock.seconds() + seconds
        self._touch(key)
        return True

    def ttl(self, key: str) -> int:
        """TTL, rounded as Redis rounds it."""
        if not self._alive(key):
            return -2
        when = self._expires.get(key)
        if when is None:
            return -1
        return int((when - self.clock.seconds()) + 0.5)

    def mget(self, keys: Iterable[str]) -> list[str | None]:
        """MGET: a key of another type reads as missing, as in Redis."""
        values: list[str | None] = []
        for key in keys:
            found = self._data.get(key) if self._alive(key) else None
            values.append(found[1] if found is not None and found[0] == "string" else None)
        return values

    def keys(self, regex: re.Pattern[str]) -> list[str]:
        """@return: the live keys matching C{regex} (SCAN MATCH)."""
        return [k for k in list(self._data) if regex.fullmatch(k) and self._alive(k)]

    # -- hashes ------------------------------------------------------------

    def hget(self, key: str, field: str) -> str | None:
        """HGET."""
        value = self._lookup(key, "hash")
        return None if value is None else value.get(field)

    def hset(self, key: str, items: tuple[tuple[str, str], ...]) -> int:
        """HSET key field value [field value ...]."""
        value = self._create(key, "hash")
        new = sum(1 for field, _ in items if field not in value)
        value.update(items)
        self._touch(key)
        return new

    def hgetall(self, key: str) -> dict[str, str]:
        """HGETALL."""
        return dict(self._lookup(key, "hash") or {})

    def hmget(self, key: str, fields: Iterable[str]) -> list[str | None]:
        """HMGET."""
        value = self._lookup(key, "hash") or {}
        return [value.get(field) for field in fields]

    def hdel(self, key: str, *fields: str) -> int:
        """HDEL."""
        value = self._lookup(key, "hash")
        if value is None:
            return 0
        removed = sum(1 for field in fields if value.pop(field, None) is not None)
        if removed:
            self._drop_if_empty(key)
            self._touch(key)
        return removed

    # -- sets --------------------------------------------------------------

    def sadd(self, key: str, *members: str) -> int:
        """SADD."""
        value = self._create(key, "set")
        before = len(value)
        value.update(members)
        added = len(value) - before
        if added:
            self._touch(key)
        self._drop_if_empty(key)  # a SADD of nothing new must not leave an empty set
        return added

    def srem(self, key: str, *members: str) -> int:
        """SREM."""
        value = self._lookup(key, "set")
        if value is None:
            return 0
        before = len(value)
        value.difference_update(members)
        removed = before - len(value)
        if removed:
            self._drop_if_empty(key)
            self._touch(key)
        return removed

    def smembers(self, key: str) -> builtins.set[str]:
        """SMEMBERS."""
        return set(self._lookup(key, "set") or ())

    def sismember(self, key: str, member: str) -> bool:
        """SISMEMBER."""
        return member in (self._lookup(key, "set") or ())

    def scard(self, key: str) -> int:
        """SCARD."""
        return len(self._lookup(key, "set") or ())

    def spop(self, key: str) -> str | None:
        """SPOP: removes a member chosen at random."""
        value = self._lookup(key, "set")
        if not value:
            return None
        member: str = self._rng.choice(sorted(value))
        value.discard(member)
        self._drop_if_empty(key)
        self._touch(key)
        return member

    # -- sorted sets -------------------------------------------------------

    def _lex_view(self, key: str) -> tuple[int, list[bytes]] | None:
        """@return: the cached byte-ordered members of C{key}, if still current."""
        cached = self._lex.get(key)
        if cached is not None and cached[0] == self._versions.get(key, 0):
            return cached
        return None

    def zadd(self, key: str, items: tuple[tuple[str, float], ...]) -> int:
        """ZADD key score member [score member ...]."""
        value = self._create(key, "zset")
        fresh = [member for member in dict(items) if member not in value]
        view = self._lex_view(key)
        value.update(items)
        self._touch(key)
        if view is not None and len(fresh) <= _LEX_PATCH_LIMIT:
            for member in fresh:
                bisect.insort(view[1], member.encode("utf-8"))
            self._lex[key] = (self._versions[key], view[1])
        return len(fresh)

    def zrem(self, key: str, *members: str) -> int:
        """ZREM."""
        value = self._lookup(key, "zset")
        if value is None:
            return 0
        view = self._lex_view(key)
        gone = [member for member in set(members) if value.pop(member, None) is not None]
        if gone:
            self._touch(key)
            if view is not None and len(gone) <= _LEX_PATCH_LIMIT:
                for member in gone:
                    raw = member.encode("utf-8")
                    del view[1][bisect.bisect_left(view[1], raw)]
                self._lex[key] = (self._versions[key], view[1])
            self._drop_if_empty(key)
        return len(gone)

    def zscore(self, key: str, member: str) -> float | None:
        """ZSCORE."""
        value = self._lookup(key, "zset")
        return None if value is None else value.get(member)

    def zcard(self, key: str) -> int:
        """ZCARD."""
        return len(self._lookup(key, "zset") or ())

    def zrangebyscore(self, key: str, min: float | str, max: float | str,
                      offset: int | None, count: int | None) -> list[tuple[str, float]]:
        """ZRANGEBYSCORE ... WITHSCORES [LIMIT offset count]."""
        lo, lo_open = parse_bound(min)
        hi, hi_open = parse_bound(max)
        value = self._lookup(key, "zset") or {}
        ordered = sorted(value.items(), key=lambda item: (item[1], item[0].encode("utf-8")))
        hits = [(m, s) for m, s in ordered
                if (s > lo if lo_open else s >= lo) and (s < hi if hi_open else s <= hi)]
        if count is not None:
            start = offset or 0
            # a negative count means "all the rest", as in Redis
            hits = hits[start:] if count < 0 else hits[start:start + count]
        return hits

    def zrangebylex(self, key: str, min: str | bytes, max: str | bytes,
                    offset: int | None, count: int | None) -> list[str]:
        """ZRANGEBYLEX [LIMIT offset count], members in UTF-8 byte order."""
        lo_inf, lo, lo_open = parse_lex_bound(min)
        hi_inf, hi, hi_open = parse_lex_bound(max)
        value = self._lookup(key, "zset")
        if not value:
            return []
        view = self._lex_view(key)
        if view is None:
            view = (self._versions.get(key, 0), sorted(m.encode("utf-8") for m in value))
            self._lex[key] = view
        ordered = view[1]
        if lo_inf:
            start = 0 if lo_inf < 0 else len(ordered)
        else:
            start = (bisect.bisect_right if lo_open else bisect.bisect_left)(ordered, lo)
        if hi_inf:
            end = len(ordered) if hi_inf > 0 else 0
        else:
            end = (bisect.bisect_left if hi_open else bisect.bisect_right)(ordered, hi)
        if count is not None:
            start += offset or 0
            # a negative count means "all the rest", as in Redis
            if count >= 0:
                end = builtins.min(end, start + count)
        return [m.decode("utf-8") for m in ordered[start:end]]
