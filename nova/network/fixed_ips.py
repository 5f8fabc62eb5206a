"""
L{FixedIpRepository}: the private addresses of instances, allocated from
their network's pool and given back when the DHCP lease is over, as 2010
nova's network manager and C{nova-dhcpbridge} did.

Life of an address:

 1. L{FixedIpRepository.allocate_fixed_ip}: SPOP from the network's pool (the
    atomic step: no two callers, in any process, get one address), then the
    record and its index entries in one transaction;
 2. dnsmasq leases it: C{nova-dhcpbridge add|old} calls L{lease_fixed_ip};
 3. the instance goes away: L{deallocate_fixed_ip} marks it unallocated; it
    returns to the pool at once when no lease runs, else when dnsmasq
    reports the lease's end (C{del}: L{release_fixed_ip}), or at the latest
    when L{reclaim_expired} finds the lease time over.
"""

from __future__ import annotations

import builtins

import attr
from twisted.internet.interfaces import IReactorTime

from nova.datastore import keys
from nova.datastore.errors import DatastoreError
from nova.datastore.interfaces import IDatastore, ITransaction
from nova.network.errors import (
    FixedIpMacMismatch, FixedIpNotFound, NetworkNotFound, NoMoreFixedIps)
from nova.network.records import FixedIp, Network


class FixedIpRepository:
    """The fixed IPs in use in every network."""

    def __init__(self, store: IDatastore, clock: IReactorTime,
                 lease_time: float = 120.0) -> None:
        """
        @param store: where records and pools live.
        @param clock: stamps records and dates lease ends.
        @param lease_time: seconds a DHCP lease lasts (C{NetworkConfig.dhcp_lease_time}):
            an address deallocated while leased is reclaimed after that long
            even if dnsmasq never reports the lease's end.
        """
        self._store = store
        self._clock = clock
        self._lease_time = float(lease_time)

    # -- allocation -------------------------------------------------------------

    async def allocate_fixed_ip(self, network_id: int, instance_id: str, mac: str) -> FixedIp:
        """
        Give an instance a free address of a network.

        @param mac: the MAC of the instance's interface (the DHCP host entry).
        @return: the new record.
        @raise NoMoreFixedIps: the network's pool is empty.
        @raise NetworkNotFound: no such network.
        @raise ValueError: a malformed instance id or MAC.
        """
        now = self._clock.seconds()
        # validate before taking an address, so bad input takes nothing
        template = FixedIp(address="0.0.0.0", network_id=network_id, instance_id=instance_id,
                           mac=mac, allocated_at=now, updated_at=now)
        pool = keys.fixed_ip_pool(network_id)
        address = await self._store.spop(pool)
        if address is None:
            if not await self._store.exists(keys.network(network_id)):
                raise NetworkNotFound(f"The network '{network_id}' does not exist")
            raise NoMoreFixedIps(f"No fixed IP address is free in network {network_id}")
        record = attr.evolve(template, address=address)
        key = keys.fixed_ip(address)

        async def write(txn: ITransaction) -> FixedIp:
            if await txn.exists(key):
                raise _InUse(address)
            txn.set(key, record.to_json())
            txn.sadd(keys.fixed_ips_of_network(network_id), key)
            txn.sadd(keys.fixed_ips_of_instance(instance_id), key)
            return record

        try:
            return await self._store.transact([key], write)
        except _InUse:
            # the pool held an address in use: it stays out of the pool
            raise DatastoreError(f"fixed IP {address} was in the pool of network "
                                 f"{network_id} while in use; retry") from None
        except BaseException:
            # nothing was written: the address goes back (a crash right here
            # would leave it out of the pool; see docs/network.md, repair_pool)
            await self._store.sadd(pool, address)
            raise

    async def lease_fixed_ip(self, address: str, mac: str) -> FixedIp:
        """
        dnsmasq leased (or renewed) an address: C{nova-dhcpbridge add|old}.

        @return: the record as stored.
        @raise FixedIpNotFound: the address is not in use.
        @raise FixedIpMacMismatch: it was given to another MAC.
        """
        key = keys.fixed_ip(address)

        async def lease(txn: ITransaction) -> FixedIp:
            record = self._check_mac(await self._load(txn, address), mac)
            new = attr.evolve(record, leased=True, updated_at=self._clock.seconds())
            txn.set(key, new.to_json())
            return new

        return await self._store.transact([key], lease)

    async def release_fixed_ip(self, address: str, mac: str) -> FixedIp | None:
        """
        A DHCP lease ended: C{nova-dhcpbridge del}. An address still
        allocated stays with its instance (unleased); a deallocated one goes
        back into the pool.

        @return: the record as stored, or C{None} when the address went back
            into the pool.
        @raise FixedIpNotFound: the address is not in use.
        @raise FixedIpMacMismatch: it was given to another MAC.
        """
        key = keys.fixed_ip(address)

        async def release(txn: ITransaction) -> FixedIp | None:
            record = self._check_mac(await self._load(txn, address), mac)
            if not record.allocated:
                self._free(txn, record)
                return None
            new = attr.evolve(record, leased=False, updated_at=self._clock.seconds())
            txn.set(key, new.to_json())
            return new

        return await self._store.transact([key], release)

    async def deallocate_fixed_ip(self, address: str) -> FixedIp | None:
        """
        The instance no longer holds the address. Without a lease it goes
        back into the pool now; with one, when the lease ends (L{release_fixed_ip}
        or L{reclaim_expired}), so that no other guest gets an address a
        running lease still names.

        @return: the record as stored, or C{None} when it went back at once.
        @raise FixedIpNotFound: the address is not in use.
        """
        key = keys.fixed_ip(address)

        async def deallocate(txn: ITransaction) -> FixedIp | None:
            record = await self._load(txn, address)
            if not record.leased:
                self._free(txn, record)
                return None
            now = self._clock.seconds()
            new = attr.evolve(record, allocated=False, updated_at=now)
            txn.set(key, new.to_json())
            txn.zadd(keys.fixed_ips_releasing(), {key: now + self._lease_time})
            return new

        return await self._store.transact([key], deallocate)

    async def reclaim_expired(self) -> builtins.list[str]:
        """
        Return to their pools the deallocated addresses whose lease is over by
        now although dnsmasq never said so (a network host that was down).
        The network service runs this periodically.

        @return: the addresses that went back.
        """
        due = await self._store.zrangebyscore(keys.fixed_ips_releasing(), "-inf",
                                              self._clock.seconds())
        freed = []
        for key in due:
            async def reclaim(txn: ITransaction, key: str = key) -> str | None:
                raw = await txn.get(key)
                if raw is None:
                    txn.zrem(keys.fixed_ips_releasing(), key)
                    return None
                record = FixedIp.from_json(raw)
                if record.allocated:  # allocated again since: not ours to free
                    txn.zrem(keys.fixed_ips_releasing(), key)
                    return None
                self._free(txn, record)
                return record.address

            address = await self._store.transact([key], reclaim)
            if address is not None:
                freed.append(address)
        return freed

    async def repair_pool(self, network: Network) -> builtins.list[str]:
        """
        Put back into a network's pool the addresses that are neither in it
        nor in use: what a process that died between its SPOP and its write
        left out (an admin tool). An allocation in flight may lose its
        address to this; it then fails rather than hand it out twice.

        @return: the addresses put back.
        """
        pool = keys.fixed_ip_pool(network.network_id)
        index = keys.fixed_ips_of_network(network.network_id)

        async def repair(txn: ITransaction) -> builtins.list[str]:
            free = await txn.smembers(pool)
            used = {keys.unpart(m.split(":", 1)[1]) for m in await txn.smembers(index)}
            lost = [a for a in network.allocatable() if a not in free and a not in used]
            if lost:
                txn.sadd(pool, *lost)
            return lost

        return await self._store.transact([pool, index], repair)

    def _free(self, txn: ITransaction, record: FixedIp) -> None:
        key = keys.fixed_ip(record.address)
        txn.delete(key)
        txn.srem(keys.fixed_ips_of_network(record.network_id), key)
        txn.srem(keys.fixed_ips_of_instance(record.instance_id), key)
        txn.zrem(keys.fixed_ips_releasing(), key)
        txn.sadd(keys.fixed_ip_pool(record.network_id), record.address)

    @staticmethod
    async def _load(txn: ITransaction, address: str) -> FixedIp:
        raw = await txn.get(keys.fixed_ip(address))
        if raw is None:
            raise FixedIpNotFound(f"The fixed IP '{address}' is not in use")
        return FixedIp.from_json(raw)

    @staticmethod
    def _check_mac(record: FixedIp, mac: str) -> FixedIp:
        if record.mac != mac:
            raise FixedIpMacMismatch(
                f"The fixed IP '{record.address}' belongs to {record.mac}, not {mac}")
        return record

    # -- reads ----------------------------------------------------------------

    async def get(self, address: str) -> FixedIp:
        """@raise FixedIpNotFound: the address is not in use."""
        raw = await self._store.get(keys.fixed_ip(address))
        if raw is None:
            raise FixedIpNotFound(f"The fixed IP '{address}' is not in use")
        return FixedIp.from_json(raw)

    async def list_for_network(self, network_id: int) -> builtins.list[FixedIp]:
        """@return: a network's fixed IPs in use, in address order."""
        return await self._load_index(keys.fixed_ips_of_network(network_id))

    async def list_for_instance(self, instance_id: str) -> builtins.list[FixedIp]:
        """@return: an instance's fixed IPs (also those waiting for their lease's end)."""
        return await self._load_index(keys.fixed_ips_of_instance(instance_id))

    async def _load_index(self, index: str) -> builtins.list[FixedIp]:
        members = builtins.list(await self._store.smembers(index))
        if not members:
            return []
        found = [FixedIp.from_json(v) for v in await self._store.mget(*members)
                 if v is not None]
        return sorted(found, key=lambda f: tuple(int(p) for p in f.address.split(".")))


class _InUse(Exception):
    """An address SPOPped from a pool already has a record (never leaves this module)."""
