"""
One attempt of a Redis optimistic transaction: WATCH, reads, MULTI, queued
writes, EXEC, on a connection taken out of the txredisapi pool.

txredisapi's own C{watch}/C{multi}/C{unwatch}/C{discard} are not used: its
C{unwatch} and C{discard} put the connection back into the pool I{before}
sending UNWATCH or DISCARD, so a transaction waiting for a connection can get
it, send its WATCH, and have it cleared by our UNWATCH, which would lose an
update silently. Here the connection is checked out and put back explicitly,
after the command that resets its state has been written, and WATCH, MULTI
and EXEC are sent as plain commands.
"""

from __future__ import annotations

import builtins

from typing import Any

import txredisapi
from twisted.internet import defer
from twisted.python.failure import Failure
from zope.interface import implementer

from nova.datastore._common import WriteQueue, check_str
from nova.datastore.errors import DatastoreError, DatastoreUnavailable
from nova.datastore.interfaces import ITransaction
from nova.datastore.redis_commands import argv_for, execute, pairs_to_dict, prefix_args


def _translate(f: Failure, where: str) -> Exception:
    if f.check(txredisapi.ConnectionError):
        return DatastoreUnavailable(f"{where}: {f.value}")
    return DatastoreError(f"{where}: {f.value}")


@implementer(ITransaction)
class RedisTransaction(WriteQueue):
    """
    The L{ITransaction} of one attempt; L{begin}, then the caller's function,
    then L{commit}, and L{release} on every path.
    """

    def __init__(self, factory: txredisapi.RedisFactory, prefix: str, where: str) -> None:
        """
        @param factory: the pool to take a connection from.
        @param prefix: added to every key.
        @param where: names the server in error messages.
        """
        super().__init__()
        self._factory = factory
        self._prefix = prefix
        self._where = where
        self._conn: Any = None
        #: "idle", "watching", "multi" (MULTI sent) or "done" (EXEC answered)
        self._state = "idle"

    async def begin(self) -> None:
        """
        Take a connection out of the pool for this attempt.

        @raise DatastoreUnavailable: the pool is closed or has no live connection.
        """
        try:
            self._conn = await self._factory.getConnection(peek=False)
        except txredisapi.ConnectionError as e:
            raise DatastoreUnavailable(f"{self._where}: {e}") from e

    def _k(self, key: str) -> str:
        self._check_open()
        return self._prefix + check_str("key", key)

    async def _read(self, *argv: str) -> Any:
        self._check_open()
        return await execute(self._conn, argv, self._where)

    async def watch(self, *keys: str) -> None:
        """See L{ITransaction.watch}."""
        full = [self._k(k) for k in keys]
        if full:
            self._state = "watching"
            await self._read("WATCH", *full)

    async def get(self, key: str) -> str | None:
        """See L{ITransaction.get}."""
        return await self._read("GET", self._k(key))  # type: ignore[no-any-return]

    async def mget(self, *keys: str) -> list[str | None]:
        """See L{ITransaction.mget}."""
        if not keys:
            return []
        return list(await self._read("MGET", *[self._k(k) for k in keys]))

    async def exists(self, key: str) -> bool:
        """See L{ITransaction.exists}."""
        return bool(await self._read("EXISTS", self._k(key)))

    async def hget(self, key: str, field: str) -> str | None:
        """See L{ITransaction.hget}."""
        return await self._read("HGET", self._k(key),  # type: ignore[no-any-return]
                                check_str("field", field))

    async def hgetall(self, key: str) -> dict[str, str]:
        """See L{ITransaction.hgetall}."""
        return pairs_to_dict(await self._read("HGETALL", self._k(key)))

    async def smembers(self, key: str) -> builtins.set[str]:
        """See L{ITransaction.smembers}."""
        return set(await self._read("SMEMBERS", self._k(key)))

    async def sismember(self, key: str, member: str) -> bool:
        """See L{ITransaction.sismember}."""
        return bool(await self._read("SISMEMBER", self._k(key), check_str("member", member)))

    async def scard(self, key: str) -> int:
        """See L{ITransaction.scard}."""
        return int(await self._read("SCARD", self._k(key)))

    async def commit(self) -> bool:
        """
        MULTI, the queued writes, EXEC, written in one go.

        @return: C{True} when EXEC ran the writes, C{False} when a watched key
            had changed (nothing written).
        @raise DatastoreError: Redis refused a queued write (nothing written)
            or one failed while running (the others were applied, as Redis does).
        @raise DatastoreUnavailable: the connection failed.
        """
        self.finished = True
        argvs = [argv_for(name, prefix_args(self._prefix, name, args))
                 for name, args in self.queued]
        conn = self._conn
        sent: list[defer.Deferred[Any]] = []
        try:
            self._state = "multi"
            for argv in [["MULTI"], *argvs, ["EXEC"]]:
                sent.append(conn.execute_command(*argv))
        except txredisapi.RedisError as e:
            # not connected: the replies of what was sent will never come
            for d in sent:
                d.addErrback(lambda _: None)
            raise _translate(Failure(e), self._where) from e
        results = await defer.DeferredList(sent, consumeErrors=True)
        ok, reply = results[-1]
        if not ok:
            # EXECABORT names no cause; the refused command's own reply does
            failures = [r for good, r in results[1:-1] if not good] or [reply]
            raise _translate(failures[0], self._where)
        self._state = "done"
        if reply is None:
            return False
        errors = [r for r in reply if isinstance(r, Exception)]
        if errors:
            raise DatastoreError(f"{self._where}: EXEC: {errors[0]}")
        return True

    async def release(self) -> None:
        """
        Reset the connection (UNWATCH or DISCARD as needed) and put it back
        into the pool. Never raises: a failure here only concerns a
        connection the pool will replace.
        """
        self.finished = True
        conn, self._conn = self._conn, None
        if conn is None:
            return
        reset: defer.Deferred[Any] | None = None
        try:
            if self._state == "multi":
                reset = conn.execute_command("DISCARD")
            elif self._state == "watching":
                reset = conn.execute_command("UNWATCH")
        except txredisapi.RedisError:
            pass  # not connected: nothing to reset
        finally:
            # after the reset was written, so whoever takes the connection
            # next sends its commands after it
            if conn.connected:
                self._factory.connectionQueue.put(conn)
        if reset is not None:
            # DISCARD after a refused EXEC fails ("without MULTI"): harmless
            await reset.addErrback(lambda _: None)
