"""
L{FloatingIpRepository}: elastic IPs. An admin creates and deletes them
(C{nova-manage floating create|delete|list}); projects allocate, associate,
disassociate and release them (EC2 AllocateAddress, AssociateAddress,
DisassociateAddress, ReleaseAddress).

Layout (L{nova.datastore.keys}): one JSON record per address, the index set of
every address, the pool set of free addresses (AllocateAddress SPOPs from it:
no two callers get one address), a set per project, and a key per instance
naming its associated address. The network host turns associations into
DNAT/SNAT rules: the methods that change one return what was there before.
"""

from __future__ import annotations

import builtins
from typing import Sequence

import attr
from twisted.internet.interfaces import IReactorTime

from nova.compute.quota import DEFAULT_QUOTAS
from nova.datastore import keys
from nova.datastore.interfaces import IDatastore, ITransaction
from nova.network import addresses
from nova.network.errors import (
    AddressDuplicate, AddressInUse, AddressLimitExceeded, AddressNotOwned,
    InvalidAddressNotFound)
from nova.network.records import FloatingIp

#: elastic IPs a project may hold unless its quota hash says otherwise (2010 nova)
DEFAULT_FLOATING_IP_QUOTA = DEFAULT_QUOTAS["floating_ips"]

#: the field of a project's quota hash (L{keys.quota}) that overrides the default
QUOTA_NAME = "floating_ips"


@attr.s(frozen=True, auto_attribs=True)
class Association:
    """
    What L{FloatingIpRepository.associate} did.

    @ivar floating_ip: the address as stored now, associated.
    @ivar previous: the records, as they were, of associations this one ended
        (this address on another instance, or another address on this
        instance): their NAT rules must go.
    """

    floating_ip: FloatingIp
    previous: tuple[FloatingIp, ...] = ()


def _address_order(record: FloatingIp) -> tuple[int, ...]:
    return tuple(int(p) for p in record.address.split("."))


class FloatingIpRepository:
    """The elastic IPs of the cloud."""

    def __init__(self, store: IDatastore, clock: IReactorTime,
                 default_quota: int = DEFAULT_FLOATING_IP_QUOTA) -> None:
        """
        @param store: where records and the pool live.
        @param clock: stamps records.
        @param default_quota: how many a project may hold without an override.
        """
        self._store = store
        self._clock = clock
        self._default_quota = default_quota

    # -- admin: nova-manage floating ---------------------------------------------

    async def create_floating_ips(self, range_text: str, host: str | None = None
                                  ) -> builtins.list[FloatingIp]:
        """
        Create the elastic IPs of a CIDR (its usable host addresses) or of a
        range C{first-last}, all or none.

        @param host: the network host they live on, C{None} for any.
        @return: the new records, in address order.
        @raise nova.network.errors.InvalidNetworkRange: a malformed range.
        @raise AddressDuplicate: some of them exist already (nothing is created).
        """
        wanted = addresses.parse_floating_range(range_text)
        now = self._clock.seconds()
        made = [FloatingIp(address=a, host=host, created_at=now, updated_at=now)
                for a in wanted]
        wanted_keys = {keys.floating_ip(a): a for a in wanted}

        async def create(txn: ITransaction) -> builtins.list[FloatingIp]:
            # records and index members are written together: the index says
            # which exist, and watching it catches a concurrent create or delete
            clash = sorted(wanted_keys[k] for k in await txn.smembers(keys.floating_ips())
                           if k in wanted_keys)
            if clash:
                more = f" and {len(clash) - 1} more" if len(clash) > 1 else ""
                raise AddressDuplicate(f"The floating IP {clash[0]}{more} already exist(s)")
            for record in made:
                txn.set(keys.floating_ip(record.address), record.to_json())
            txn.sadd(keys.floating_ips(), *wanted_keys)
            txn.sadd(keys.floating_ip_pool(), *wanted)
            return made

        return await self._store.transact([keys.floating_ips()], create)

    async def delete_floating_ips(self, range_text: str) -> int:
        """
        Delete the existing elastic IPs of a CIDR or range, all or none.

        @return: how many were deleted.
        @raise InvalidAddressNotFound: none of them exists.
        @raise AddressInUse: one is allocated to a project (nothing is deleted).
        """
        wanted = set(addresses.parse_floating_range(range_text))

        async def delete(txn: ITransaction) -> int:
            found = [k for k in await txn.smembers(keys.floating_ips())
                     if keys.unpart(k.split(":", 1)[1]) in wanted]
            if not found:
                raise InvalidAddressNotFound(f"No floating IP of '{range_text}' exists")
            # an allocation changes the record only: watch them
            await txn.watch(*found)
            for raw in await txn.mget(*found):
                record = None if raw is None else FloatingIp.from_json(raw)
                if record is not None and record.project_id is not None:
                    raise AddressInUse(
                        f"The floating IP {record.address} is allocated to project "
                        f"'{record.project_id}': release it first")
            txn.delete(*found)
            txn.srem(keys.floating_ips(), *found)
            txn.srem(keys.floating_ip_pool(), *(keys.unpart(k.split(":", 1)[1]) for k in found))
            return len(found)

        return await self._store.transact([keys.floating_ips()], delete)

    async def list_floating_ips(self, project_id: str | None = None
                                ) -> builtins.list[FloatingIp]:
        """@return: every elastic IP (a project's only, when given), in address order."""
        index = keys.floating_ips() if project_id is None \
            else keys.floating_ips_of_project(project_id)
        members = builtins.list(await self._store.smembers(index))
        if not members:
            return []
        found = [FloatingIp.from_json(v) for v in await self._store.mget(*members)
                 if v is not None]
        return sorted(found, key=_address_order)

    async def get(self, address: str) -> FloatingIp:
        """@raise InvalidAddressNotFound: no such elastic IP."""
        raw = await self._store.get(keys.floating_ip(address))
        if raw is None:
            raise InvalidAddressNotFound(f"Address '{address}' not found.")
        return FloatingIp.from_json(raw)

    async def for_instance(self, instance_id: str) -> FloatingIp | None:
        """@return: the elastic IP associated with an instance, or C{None}."""
        address = await self._store.get(keys.floating_ip_of_instance(instance_id))
        return None if address is None else await self.get(address)

    # -- projects: AllocateAddress, ReleaseAddress ---------------------------------

    async def quota(self, project_id: str) -> int:
        """@return: how many elastic IPs a project may hold."""
        return self._limit(await self._store.hget(keys.quota(project_id), QUOTA_NAME))

    def _limit(self, override: str | None) -> int:
        return self._default_quota if override is None else int(override)

    @staticmethod
    def _check_quota(project_id: str, held: int, limit: int) -> None:
        if held >= limit:
            raise AddressLimitExceeded(
                f"The project '{project_id}' holds {held} elastic IP(s); its quota is {limit}")

    async def allocate_floating_ip(self, project_id: str) -> FloatingIp:
        """
        Give a project a free elastic IP (AllocateAddress).

        @return: the record as stored.
        @raise AddressLimitExceeded: none is free, or the project holds its quota.
        """
        if not isinstance(project_id, str) or not project_id:
            raise ValueError(f"invalid project id {project_id!r}")
        project_set = keys.floating_ips_of_project(project_id)
        quota_key = keys.quota(project_id)
        # a cheap early answer; the transaction below checks again, atomically
        self._check_quota(project_id, await self._store.scard(project_set),
                          await self.quota(project_id))
        while True:
            address = await self._store.spop(keys.floating_ip_pool())
            if address is None:
                raise AddressLimitExceeded("No more elastic IP addresses are available")
            key = keys.floating_ip(address)

            async def take(txn: ITransaction, key: str = key) -> FloatingIp | None:
                raw = await txn.get(key)
                record = None if raw is None else FloatingIp.from_json(raw)
                if record is None or record.project_id is not None:
                    return None  # deleted meanwhile (or the pool was stale): not ours
                self._check_quota(project_id, await txn.scard(project_set),
                                  self._limit(await txn.hget(quota_key, QUOTA_NAME)))
                new = attr.evolve(record, project_id=project_id,
                                  updated_at=self._clock.seconds())
                txn.set(key, new.to_json())
                txn.sadd(project_set, key)
                return new

            try:
                taken = await self._store.transact([key, project_set, quota_key], take)
            except BaseException:
                await self._store.sadd(keys.floating_ip_pool(), address)
                raise
            if taken is not None:
                return taken

    async def release_floating_ip(self, project_id: str | None, address: str) -> FloatingIp:
        """
        Give an elastic IP back to the pool (ReleaseAddress); an association
        ends with it.

        @param project_id: the caller's project; C{None} for an admin, who may
            release any.
        @return: the record as it was (its association's NAT rules must go).
        @raise InvalidAddressNotFound: no such elastic IP.
        @raise AddressNotOwned: it is not the project's.
        """
        key = keys.floating_ip(address)

        async def release(txn: ITransaction) -> FloatingIp:
            old = await self._owned(txn, project_id, address)
            if old.project_id is None:
                return old  # already free (an admin releasing twice)
            await self._end_association(txn, old)
            new = attr.evolve(old, project_id=None, instance_id=None, fixed_address=None,
                              updated_at=self._clock.seconds())
            txn.set(key, new.to_json())
            txn.srem(keys.floating_ips_of_project(old.project_id), key)
            txn.sadd(keys.floating_ip_pool(), address)
            return old

        return await self._store.transact([key], release)

    # -- AssociateAddress, DisassociateAddress -------------------------------------

    async def associate(self, project_id: str | None, address: str, instance_id: str,
                        fixed_address: str) -> Association:
        """
        Point an elastic IP at an instance's fixed address. As in EC2, an
        address associated elsewhere moves, and an instance keeps one elastic
        IP (its previous one is disassociated).

        @param project_id: the caller's project (C{None}: an admin).
        @raise InvalidAddressNotFound: no such elastic IP.
        @raise AddressNotOwned: it is not the project's, or is not allocated.
        """
        addresses.parse_address(fixed_address)
        key = keys.floating_ip(address)
        instance_key = keys.floating_ip_of_instance(instance_id)

        async def associate(txn: ITransaction) -> Association:
            old = await self._owned(txn, project_id, address)
            if old.project_id is None:
                raise AddressNotOwned(f"The address '{address}' is not allocated")
            if old.instance_id == instance_id and old.fixed_address == fixed_address:
                return Association(old)
            previous: list[FloatingIp] = []
            if old.instance_id is not None:
                previous.append(old)
                await self._end_association(txn, old)
            other_address = await txn.get(instance_key)
            if other_address is not None and other_address != address:
                other_key = keys.floating_ip(other_address)
                await txn.watch(other_key)
                raw = await txn.get(other_key)
                if raw is not None:
                    other = FloatingIp.from_json(raw)
                    previous.append(other)
                    txn.set(other_key, attr.evolve(
                        other, instance_id=None, fixed_address=None,
                        updated_at=self._clock.seconds()).to_json())
            new = attr.evolve(old, instance_id=instance_id, fixed_address=fixed_address,
                              updated_at=self._clock.seconds())
            txn.set(key, new.to_json())
            txn.set(instance_key, address)
            return Association(new, tuple(previous))

        return await self._store.transact([key, instance_key], associate)

    async def disassociate(self, project_id: str | None, address: str) -> FloatingIp:
        """
        End an elastic IP's association (DisassociateAddress); one that is not
        associated is left as it is.

        @return: the record as it was (its NAT rules must go).
        @raise InvalidAddressNotFound: no such elastic IP.
        @raise AddressNotOwned: it is not the project's.
        """
        key = keys.floating_ip(address)

        async def disassociate(txn: ITransaction) -> FloatingIp:
            old = await self._owned(txn, project_id, address)
            if old.instance_id is None:
                return old
            await self._end_association(txn, old)
            txn.set(key, attr.evolve(old, instance_id=None, fixed_address=None,
                                     updated_at=self._clock.seconds()).to_json())
            return old

        return await self._store.transact([key], disassociate)

    @staticmethod
    async def _owned(txn: ITransaction, project_id: str | None, address: str) -> FloatingIp:
        raw = await txn.get(keys.floating_ip(address))
        if raw is None:
            raise InvalidAddressNotFound(f"Address '{address}' not found.")
        record = FloatingIp.from_json(raw)
        if project_id is not None and record.project_id != project_id:
            raise AddressNotOwned(f"The address '{address}' does not belong to you.")
        return record

    @staticmethod
    async def _end_association(txn: ITransaction, record: FloatingIp) -> None:
        """Queue the removal of the instance's pointer to C{record}, if it still is one."""
        if record.instance_id is None:
            return
        instance_key = keys.floating_ip_of_instance(record.instance_id)
        await txn.watch(instance_key)
        if await txn.get(instance_key) == record.address:
            txn.delete(instance_key)


__all__: Sequence[str] = ["FloatingIpRepository", "Association", "DEFAULT_FLOATING_IP_QUOTA"]
