"""
Redis command lines and replies, shared by L{nova.datastore.redis.RedisDatastore}
and its transactions: the argv of each write (plain or queued in MULTI), the
error translation, and reply decoding.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import txredisapi

from nova.datastore._common import check_str, format_score
from nova.datastore.errors import DatastoreError, DatastoreUnavailable


def _flat(items: tuple[tuple[str, str], ...]) -> list[str]:
    return [x for pair in items for x in pair]


#: the argv of each write a L{nova.datastore._common.WriteQueue} can queue;
#: arguments as queued, keys already prefixed
_ARGV: dict[str, Callable[..., list[str]]] = {
    "set": lambda key, value, ex=None, nx=False: (
        ["SET", key, value] + (["EX", str(ex)] if ex is not None else []) + (["NX"] if nx else [])),
    "delete": lambda *keys: ["DEL", *keys],
    "incrby": lambda key, amount: ["INCRBY", key, str(amount)],
    "expire": lambda key, seconds: ["EXPIRE", key, str(seconds)],
    "hset": lambda key, items: ["HSET", key, *_flat(items)],
    "hdel": lambda key, *fields: ["HDEL", key, *fields],
    "sadd": lambda key, *members: ["SADD", key, *members],
    "srem": lambda key, *members: ["SREM", key, *members],
    "zadd": lambda key, items: ["ZADD", key, *[x for m, s in items for x in (format_score(s), m)]],
    "zrem": lambda key, *members: ["ZREM", key, *members],
}


def argv_for(name: str, args: tuple[Any, ...]) -> list[str]:
    """@return: the command line of the write C{name} with (prefixed) C{args}."""
    return _ARGV[name](*args)


def prefix_args(prefix: str, name: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """
    @return: C{args} of the write C{name} with C{prefix} added to its keys.
    @raise TypeError: a key that is not a str.
    """
    if name == "delete":
        return tuple(prefix + check_str("key", k) for k in args)
    return (prefix + check_str("key", args[0]),) + tuple(args[1:])


async def execute(target: Any, argv: Sequence[str | bytes], where: str) -> Any:
    """
    Run one command on a txredisapi connection or pool.

    @param target: a txredisapi connection handler (pool) or protocol.
    @param where: names the server in error messages.
    @return: the reply.
    @raise DatastoreUnavailable: the connection is lost, not there, or timed out.
    @raise DatastoreError: Redis answered with an error.
    """
    try:
        return await target.execute_command(*argv)
    except txredisapi.ConnectionError as e:
        raise DatastoreUnavailable(f"{where}: {e}") from e
    except txredisapi.RedisError as e:
        raise DatastoreError(f"{where}: {argv[0]!s}: {e}") from e


def pairs_to_dict(reply: list[str]) -> dict[str, str]:
    """@return: a flat C{[k1, v1, k2, v2 ...]} reply as a dict."""
    return dict(zip(reply[::2], reply[1::2]))


def parse_scores(reply: list[str]) -> list[tuple[str, float]]:
    """@return: a flat WITHSCORES reply as C{(member, score)} tuples."""
    return [(member, float(score)) for member, score in zip(reply[::2], reply[1::2])]
