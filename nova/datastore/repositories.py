"""
Repositories: the only code that reads and writes records, over an
L{IDatastore}. Each write that touches a record and its index sets is one
transaction, so nothing is half-written and concurrent writers cannot lose
each other's updates.

To add a repository for a new kind of record: key functions in
L{nova.datastore.keys}, a record in L{nova.datastore.records}, then a class
here built on L{_load} / L{_load_many}, writing record and indexes in one
C{transact}.
"""

from __future__ import annotations

import builtins
from typing import Type, TypeVar

import attr
from twisted.internet.interfaces import IReactorTime

from nova.datastore import keys
from nova.datastore.errors import KeyPairDuplicate, KeyPairNotFound, ServiceNotFound
from nova.datastore.interfaces import IDatastore, ITransaction
from nova.datastore.records import KeyPair, Record, Service

R = TypeVar("R", bound=Record)


async def _load_many(store: IDatastore, cls: Type[R], index: str) -> builtins.list[R]:
    """@return: the records an index set names (members whose record is gone are skipped)."""
    members = sorted(await store.smembers(index))
    if not members:
        return []
    values = await store.mget(*members)
    return [cls.from_json(v) for v in values if v is not None]


def _load(cls: Type[R], value: str | None) -> R | None:
    return None if value is None else cls.from_json(value)


class KeyPairRepository:
    """The key pairs of every project."""

    def __init__(self, store: IDatastore) -> None:
        """@param store: where key pairs live."""
        self._store = store

    async def create(self, record: KeyPair) -> KeyPair:
        """
        Store a new key pair; of two concurrent creates of one name, exactly
        one succeeds.

        @return: C{record}.
        @raise KeyPairDuplicate: the project already has a key pair of that name.
        """
        key = keys.keypair(record.project_id, record.name)

        async def create(txn: ITransaction) -> KeyPair:
            if await txn.exists(key):
                raise KeyPairDuplicate(
                    f"The key pair '{record.name}' already exists.")
            txn.set(key, record.to_json())
            txn.sadd(keys.keypairs_of_project(record.project_id), key)
            return record

        return await self._store.transact([key], create)

    async def get(self, project_id: str, name: str) -> KeyPair:
        """
        @raise KeyPairNotFound: no such key pair in the project.
        """
        found = _load(KeyPair, await self._store.get(keys.keypair(project_id, name)))
        if found is None:
            raise KeyPairNotFound(f"The key pair '{name}' does not exist")
        return found

    async def list(self, project_id: str) -> builtins.list[KeyPair]:
        """@return: the project's key pairs, sorted by name."""
        found = await _load_many(self._store, KeyPair, keys.keypairs_of_project(project_id))
        return sorted(found, key=lambda k: k.name)

    async def delete(self, project_id: str, name: str) -> bool:
        """
        Delete a key pair; deleting one that does not exist is not an error
        (as in EC2 DeleteKeyPair).

        @return: whether it existed.
        """
        key = keys.keypair(project_id, name)

        async def delete(txn: ITransaction) -> bool:
            existed = await txn.exists(key)
            txn.delete(key)
            # also drops a member left behind by anything that went wrong before
            txn.srem(keys.keypairs_of_project(project_id), key)
            return existed

        return await self._store.transact([key], delete)


class ServiceRepository:
    """The services of every host, as their heartbeats report them."""

    def __init__(self, store: IDatastore, clock: IReactorTime) -> None:
        """
        @param store: where service records live.
        @param clock: stamps heartbeats and decides liveness.
        """
        self._store = store
        self._clock = clock

    async def heartbeat(self, record: Service) -> Service:
        """
        Report a service alive: create its record or update it, with
        C{updated_at} now and C{report_count} one more than stored. The
        stored C{disabled} flag wins over C{record}'s (an admin set it).

        @param record: what the service reports (host, binary, topic, zone,
            capacity, started_at).
        @return: the record as stored.
        """
        key = keys.service(record.host, record.binary)

        async def beat(txn: ITransaction) -> Service:
            stored = _load(Service, await txn.get(key))
            new = attr.evolve(
                record,
                updated_at=self._clock.seconds(),
                report_count=(stored.report_count if stored else 0) + 1,
                disabled=stored.disabled if stored else record.disabled)
            txn.set(key, new.to_json())
            txn.sadd(keys.services(), key)
            return new

        return await self._store.transact([key], beat)

    async def get(self, host: str, binary: str) -> Service:
        """
        @raise ServiceNotFound: that service never reported.
        """
        found = _load(Service, await self._store.get(keys.service(host, binary)))
        if found is None:
            raise ServiceNotFound(f"No service {binary} on host {host}")
        return found

    async def list(self) -> builtins.list[Service]:
        """@return: every service, sorted by host then binary."""
        found = await _load_many(self._store, Service, keys.services())
        return sorted(found, key=lambda s: (s.host, s.binary))

    def is_up(self, record: Service, down_time: float) -> bool:
        """
        @param down_time: seconds without a heartbeat after which a service is
            down (C{ServiceConfig.service_down_time}).
        @return: whether C{record}'s last heartbeat is recent enough.
        """
        return self._clock.seconds() - record.updated_at <= down_time

    async def set_disabled(self, host: str, binary: str, disabled: bool) -> Service:
        """
        Enable or disable a service (nova-manage, admin API).

        @return: the record as stored.
        @raise ServiceNotFound: that service never reported.
        """
        key = keys.service(host, binary)

        async def flip(txn: ITransaction) -> Service:
            stored = _load(Service, await txn.get(key))
            if stored is None:
                raise ServiceNotFound(f"No service {binary} on host {host}")
            new = attr.evolve(stored, disabled=bool(disabled))
            txn.set(key, new.to_json())
            return new

        return await self._store.transact([key], flip)

    async def delete(self, host: str, binary: str) -> bool:
        """
        Forget a service (a host taken out of the cloud).

        @return: whether it existed.
        """
        key = keys.service(host, binary)

        async def forget(txn: ITransaction) -> bool:
            existed = await txn.exists(key)
            txn.delete(key)
            txn.srem(keys.services(), key)
            return existed

        return await self._store.transact([key], forget)
