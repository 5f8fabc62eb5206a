"""
Pieces shared by the Redis and in-memory datastores: argument checks, glob
patterns, score bounds and the queue of transactional writes.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Mapping

from nova.datastore.errors import DatastoreError

#: characters with a meaning in a Redis glob pattern
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


def check_str(what: str, value: object) -> str:
    """
    @return: C{value}, when it is a C{str}.
    @raise TypeError: it is not; the datastore stores strings only, so a
        number would come back as a different type.
    """
    if not isinstance(value, str):
        raise TypeError(f"datastore {what} must be str, not {type(value).__name__}")
    return value


def check_strs(what: str, values: Iterable[object]) -> list[str]:
    """@return: C{values} as a list, each checked by L{check_str}."""
    return [check_str(what, v) for v in values]


def check_key_list(keys: Iterable[object]) -> list[str]:
    """
    @return: C{keys} (a list of keys to watch) as a list of str.
    @raise TypeError: one str rather than a list, or a key that is not a str.
    """
    if isinstance(keys, (str, bytes)):
        raise TypeError("watch_keys must be a list of keys, not one key")
    return check_strs("key", keys)


def check_int(what: str, value: object) -> int:
    """
    @return: C{value}, an int.
    @raise TypeError: it is not an int.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {value!r}")
    return value


def check_ex(ex: object) -> int:
    """
    @return: C{ex}, a positive number of seconds for SET ... EX.
    @raise TypeError: not an int.
    @raise ValueError: zero or negative (Redis refuses it too).
    """
    seconds = check_int("ex", ex)
    if seconds <= 0:
        raise ValueError(f"ex must be a positive number of seconds, not {seconds}")
    return seconds


def check_score(score: object) -> float:
    """
    @return: C{score} as a float.
    @raise TypeError: not a number.
    @raise ValueError: NaN.
    """
    if isinstance(score, bool) or not isinstance(score, (int, float)):
        raise TypeError(f"sorted-set score must be a number, not {score!r}")
    value = float(score)
    if math.isnan(value):
        raise ValueError("sorted-set score must not be NaN")
    return value


def format_score(score: float) -> str:
    """@return: a score as Redis reads it, without losing precision."""
    if math.isinf(score):
        return "+inf" if score > 0 else "-inf"
    return repr(float(score))


def format_bound(bound: float | int | str) -> str:
    """
    @return: a ZRANGEBYSCORE bound as Redis reads it.
    @raise ValueError: a malformed bound.
    """
    parse_bound(bound)  # validate, so both implementations reject the same input
    if isinstance(bound, str):
        return bound
    return format_score(check_score(bound))


def parse_bound(bound: float | int | str) -> tuple[float, bool]:
    """
    @param bound: a number, C{"-inf"}, C{"+inf"}, or C{"(x"} (exclusive).
    @return: C{(value, exclusive)}.
    @raise ValueError: a malformed bound.
    """
    if not isinstance(bound, str):
        return check_score(bound), False
    exclusive = bound.startswith("(")
    text = bound[1:] if exclusive else bound
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"not a sorted-set score bound: {bound!r}") from None
    if math.isnan(value):
        raise ValueError(f"not a sorted-set score bound: {bound!r}")
    return value, exclusive


def parse_lex_bound(bound: str | bytes) -> tuple[int, bytes, bool]:
    """
    Read a ZRANGEBYLEX bound.

    @param bound: C{"-"}, C{"+"}, C{"[x"} or C{"(x"}, as str or bytes.
    @return: C{(infinity, value, exclusive)}: C{infinity} is -1 for C{"-"}
        (below every member), +1 for C{"+"} (above every member), 0 for a
        value bound, whose bytes are C{value}.
    @raise ValueError: a malformed bound.
    @raise TypeError: neither str nor bytes.
    """
    if isinstance(bound, str):
        raw = bound.encode("utf-8")
    elif isinstance(bound, bytes):
        raw = bound
    else:
        raise TypeError(f"lex bound must be str or bytes, not {type(bound).__name__}")
    if raw == b"-":
        return -1, b"", False
    if raw == b"+":
        return 1, b"", False
    if raw[:1] not in (b"[", b"("):
        raise ValueError(f"not a lex bound (it must be '-', '+', or start with '[' or '('): "
                         f"{bound!r}")
    return 0, raw[1:], raw[:1] == b"("


def format_lex_bound(bound: str | bytes) -> bytes:
    """
    @return: C{bound} as Redis reads it (bytes, so that it may hold any byte).
    @raise ValueError: a malformed bound.
    """
    parse_lex_bound(bound)  # validate, as the in-memory store does
    return bound.encode("utf-8") if isinstance(bound, str) else bound


def check_limit(offset: int | None, count: int | None) -> None:
    """@raise ValueError: C{offset} without C{count}."""
    if offset is not None and count is None:
        raise ValueError("zrangebyscore: offset needs count")


def escape_glob(text: str) -> str:
    """@return: C{text} as a glob pattern that matches only itself."""
    return _GLOB_SPECIAL.sub(r"\\\1", text)


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """
    Compile a Redis glob pattern (C{*}, C{?}, C{[abc]}, C{[^a-z]}, C{\\x}).

    @return: a regular expression matching whole keys.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            j = i + 1
            negate = j < n and pattern[j] == "^"
            if negate:
                j += 1
            parts: list[str] = []
            while j < n and pattern[j] != "]":
                if pattern[j] == "\\" and j + 1 < n:
                    j += 1
                    parts.append(re.escape(pattern[j]))
                elif j + 2 < n and pattern[j + 1] == "-" and pattern[j + 2] != "]":
                    lo, hi = sorted((pattern[j], pattern[j + 2]))
                    parts.append(f"{re.escape(lo)}-{re.escape(hi)}")
                    j += 2
                else:
                    parts.append(re.escape(pattern[j]))
                j += 1
            out.append(("[^" if negate else "[") + "".join(parts) + "]" if parts
                       else ("." if negate else "(?!)"))
            i = j  # at the closing bracket (or the end)
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def raise_first(errors: list[DatastoreError]) -> None:
    """@raise DatastoreError: the first of C{errors}, if any."""
    if errors:
        raise errors[0]


class WriteQueue:
    """
    The writes a transaction queues: plain methods that record a command
    (name, arguments) to run at EXEC. Arguments are checked here, so a bad one
    fails inside the caller's function (and nothing is written).

    @ivar queued: the commands, as C{(name, args)} with unprefixed keys.
    """

    def __init__(self) -> None:
        self.queued: list[tuple[str, tuple[Any, ...]]] = []
        self.finished = False

    def _check_open(self) -> None:
        if self.finished:
            raise DatastoreError("this transaction has finished; use it only inside its function")

    def _queue(self, name: str, *args: Any) -> None:
        self._check_open()
        self.queued.append((name, args))

    def set(self, key: str, value: str, ex: int | None = None) -> None:
        """Queue SET (with EX when C{ex} is given)."""
        if ex is not None:
            check_ex(ex)
        self._queue("set", check_str("key", key), check_str("value", value), ex)

    def delete(self, *keys: str) -> None:
        """Queue DEL."""
        if keys:
            self._queue("delete", *check_strs("key", keys))

    def incr(self, key: str) -> None:
        """Queue INCR."""
        self._queue("incrby", check_str("key", key), 1)

    def incrby(self, key: str, amount: int) -> None:
        """Queue INCRBY."""
        self._queue("incrby", check_str("key", key), check_int("amount", amount))

    def expire(self, key: str, seconds: int) -> None:
        """Queue EXPIRE."""
        self._queue("expire", check_str("key", key), check_int("seconds", seconds))

    def hset(self, key: str, mapping: Mapping[str, str]) -> None:
        """Queue HSET."""
        items = tuple((check_str("field", f), check_str("value", v)) for f, v in mapping.items())
        if items:
            self._queue("hset", check_str("key", key), items)

    def hdel(self, key: str, *fields: str) -> None:
        """Queue HDEL."""
        if fields:
            self._queue("hdel", check_str("key", key), *check_strs("field", fields))

    def sadd(self, key: str, *members: str) -> None:
        """Queue SADD."""
        if members:
            self._queue("sadd", check_str("key", key), *check_strs("member", members))

    def srem(self, key: str, *members: str) -> None:
        """Queue SREM."""
        if members:
            self._queue("srem", check_str("key", key), *check_strs("member", members))

    def zadd(self, key: str, mapping: Mapping[str, float]) -> None:
        """Queue ZADD."""
        items = tuple((check_str("member", m), check_score(s)) for m, s in mapping.items())
        if items:
            self._queue("zadd", check_str("key", key), items)

    def zrem(self, key: str, *members: str) -> None:
        """Queue ZREM."""
        if members:
            self._queue("zrem", check_str("key", key), *check_strs("member", members))
