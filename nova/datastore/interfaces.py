"""
The datastore seam: the subset of Redis that nova uses.

Style: every data method of L{IDatastore} and every read of L{ITransaction}
is a coroutine function (C{async def}); callers C{await} them, and wrap them
in C{Deferred.fromCoroutine} where Twisted wants a Deferred. L{IDatastore.close}
is the exception: it returns a L{Deferred}, because its caller is usually a
C{stopService}. The writes of an L{ITransaction} are plain methods: they only
queue a command, which runs at EXEC time.

Conventions shared by every implementation:

 - keys, values, hash fields and set members are C{str} (sent as UTF-8);
   anything else is a C{TypeError}. Values come back as C{str}, never
   converted to numbers; integer replies (counts, C{incr}) are C{int}.
 - a key prefix (C{RedisConfig.prefix}) is added by the implementation and
   never seen by callers, so several clouds or test runs share one server.
 - as in Redis, an empty hash, set or sorted set does not exist, and a write
   to a key of another type raises L{nova.datastore.errors.DatastoreError}.
 - connection failures raise L{nova.datastore.errors.DatastoreUnavailable}.
"""

from __future__ import annotations

from zope.interface import Attribute, Interface


class ITransaction(Interface):
    """
    What the function given to L{IDatastore.transact} works with.

    Reads see the committed state (not the writes queued so far). Writes are
    queued and run together, atomically, at EXEC; they return nothing. A
    transaction may only be used while its function runs.
    """

    async def watch(*keys):
        """
        Watch more keys, e.g. records named by an index read in this transaction.

        @param keys: keys whose change by anyone else makes the transaction retry.
        """

    async def get(key):
        """@return: the string value of C{key}, or C{None}."""

    async def mget(*keys):
        """@return: a list with the value (or C{None}) of each key."""

    async def exists(key):
        """@return: whether C{key} exists."""

    async def hget(key, field):
        """@return: one field of a hash, or C{None}."""

    async def hgetall(key):
        """@return: a hash as a C{dict} (empty when missing)."""

    async def smembers(key):
        """@return: the members of a set, as a C{set} (empty when missing)."""

    async def sismember(key, member):
        """@return: whether C{member} is in the set C{key}."""

    async def scard(key):
        """@return: the number of members of a set."""

    def set(key, value, ex=None):
        """Queue SET C{key} C{value}, with an expiry of C{ex} seconds if given."""

    def delete(*keys):
        """Queue DEL of C{keys}."""

    def incr(key):
        """Queue INCR."""

    def incrby(key, amount):
        """Queue INCRBY."""

    def expire(key, seconds):
        """Queue EXPIRE."""

    def hset(key, mapping):
        """Queue HSET of every field of C{mapping}."""

    def hdel(key, *fields):
        """Queue HDEL."""

    def sadd(key, *members):
        """Queue SADD."""

    def srem(key, *members):
        """Queue SREM."""

    def zadd(key, mapping):
        """Queue ZADD of C{mapping} (member to score)."""

    def zrem(key, *members):
        """Queue ZREM."""


class IDatastore(Interface):
    """
    An asynchronous key-value store shaped like the part of Redis nova needs.
    """

    prefix = Attribute("The key prefix this client adds to every key (str).")

    async def get(key):
        """@return: the string value of C{key}, or C{None} when it does not exist."""

    async def set(key, value, ex=None, nx=False):
        """
        Set a string value; a previous expiry is cleared.

        @param ex: seconds until the key expires (a positive int), or C{None}.
        @param nx: only set the key if it does not exist yet.
        @return: C{True} when the value was written (C{False} only with C{nx}).
        """

    async def delete(*keys):
        """@return: how many of C{keys} existed and were removed."""

    async def exists(key):
        """@return: whether C{key} exists."""

    async def incr(key):
        """@return: the value after adding one (a missing key counts as 0)."""

    async def incrby(key, amount):
        """
        @return: the value after adding C{amount}.
        @raise nova.datastore.errors.DatastoreError: the value is not an integer.
        """

    async def expire(key, seconds):
        """
        Make C{key} expire after C{seconds}; zero or less deletes it.

        @return: whether the key existed.
        """

    async def ttl(key):
        """@return: whole seconds left before C{key} expires; -1 without expiry, -2 when missing."""

    async def mget(*keys):
        """@return: a list with the value (or C{None}) of each key."""

    async def hget(key, field):
        """@return: one field of a hash, or C{None}."""

    async def hset(key, mapping):
        """@return: how many fields of C{mapping} were new."""

    async def hgetall(key):
        """@return: the hash as a C{dict} (empty when missing)."""

    async def hdel(key, *fields):
        """@return: how many fields were removed."""

    async def sadd(key, *members):
        """@return: how many members were new."""

    async def srem(key, *members):
        """@return: how many members were removed."""

    async def smembers(key):
        """@return: the members as a C{set}."""

    async def sismember(key, member):
        """@return: whether C{member} is in the set."""

    async def scard(key):
        """@return: the number of members."""

    async def spop(key):
        """
        Remove and return one member, chosen by the server: the atomic
        allocation primitive (free IP addresses, ...).

        @return: the member, or C{None} when the set is empty.
        """

    async def zadd(key, mapping):
        """
        Add members with scores (C{mapping}: member to float score); existing
        members get the new score.

        @return: how many members were new.
        """

    async def zrem(key, *members):
        """@return: how many members were removed."""

    async def zscore(key, member):
        """@return: the score of C{member} as a float, or C{None}."""

    async def zcard(key):
        """@return: the number of members of a sorted set."""

    async def zrangebyscore(key, min="-inf", max="+inf", offset=None, count=None):
        """
        Members with C{min <= score <= max}, lowest score first (ties in
        byte order of the member).

        @param min: a number, C{"-inf"}, or C{"(x"} for an exclusive bound.
        @param max: likewise.
        @param offset: how many matches to skip (needs C{count}).
        @param count: at most this many members.
        @return: a C{list} of members.
        """

    async def zrangebyscore_withscores(key, min="-inf", max="+inf", offset=None, count=None):
        """@return: like L{zrangebyscore}, as C{(member, score)} tuples."""

    async def zrangebylex(key, min="-", max="+", offset=None, count=None):
        """
        Members between two bounds in byte order of their UTF-8 encoding (the
        order Redis gives when every member has the same score, which is how
        a lexicographic index is kept: C{zadd(key, {member: 0})}).

        @param min: C{"-"} (no lower bound), C{"[x"} (from C{x}, inclusive) or
            C{"(x"} (after C{x}). A C{bytes} bound is allowed too, so that a
            bound can hold bytes no UTF-8 string has: C{b"(" + p + b"\\xff"}
            is just past every member that starts with C{p}.
        @param max: C{"+"} (no upper bound), C{"[x"} or C{"(x"}; str or bytes.
        @param offset: how many matches to skip (needs C{count}).
        @param count: at most this many members.
        @return: a C{list} of members, in byte order.
        @raise ValueError: a malformed bound.
        """

    async def hmget(key, *fields):
        """@return: a list with the value (or C{None}) of each field of a hash."""

    async def scan(pattern="*"):
        """
        The keys under this client's prefix that match a Redis glob pattern.

        Walks the whole keyspace: for admin tools and clean-up, not request paths
        (use index sets there).

        @return: a sorted C{list} of keys, without the prefix.
        """

    async def transact(watch_keys, fn, retries=20):
        """
        Run C{fn} as an optimistic transaction.

        WATCH C{watch_keys}, then C{await fn(txn)} with an L{ITransaction} that
        reads current values and queues writes, then MULTI/EXEC the queued
        writes. When a watched key changed in between, EXEC writes nothing and
        the whole of C{fn} runs again after a short pause. C{fn} must not call
        C{transact} itself.

        @param watch_keys: the keys C{fn} decides on (a list of str; may be empty).
        @param fn: an async function of one L{ITransaction}.
        @param retries: how many times C{fn} may run again after a conflict.
        @return: what the run of C{fn} that committed returned.
        @raise nova.exception.ConcurrencyError: still conflicting after C{retries}
            retries.
        @raise Exception: whatever C{fn} raised, unchanged; nothing is written.
        """

    def close():  # type: ignore[misc]
        """
        Close every connection; later commands raise DatastoreUnavailable.

        @return: a Deferred that fires when the connections are closed.
        """
