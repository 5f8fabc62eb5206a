"""
L{NetworkRepository}: the networks (C{nova-manage network create}), which
project has which (VlanManager: one per project, bound on first use), the flat
network (FlatManager), and the network host each one is served by.

Layout (L{nova.datastore.keys}, "networks" section): one JSON record per
network, the index set of networks, the set of free network ids, a key per
project naming its network, and per network the pool set of its free fixed
addresses (L{nova.network.fixed_ips} allocates from it).
"""

from __future__ import annotations

import builtins
from typing import Sequence

import attr
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from nova.datastore import keys
from nova.datastore.interfaces import IDatastore, ITransaction
from nova.network import addresses
from nova.network.errors import InvalidNetworkRange, NetworkNotFound, NoMoreNetworks
from nova.network.records import Network

#: managers (C{NetworkConfig.manager})
VLAN, FLAT = "vlan", "flat"


def _decode_all(values: Sequence[str | None]) -> builtins.list[Network]:
    return [Network.from_json(v) for v in values if v is not None]


class NetworkRepository:
    """Every network of the cloud."""

    def __init__(self, store: IDatastore, clock: IReactorTime) -> None:
        """
        @param store: where networks live.
        @param clock: stamps new records.
        """
        self._store = store
        self._clock = clock
        # binds of this process run one at a time: they all WATCH the free set,
        # and a burst of first uses would otherwise retry itself to exhaustion
        # (other processes still meet at the WATCH, which keeps it correct)
        self._bind_lock = defer.DeferredLock()

    # -- nova-manage network create -------------------------------------------

    async def create_networks(self, cidr: str, num_networks: int, network_size: int,
                              vlan_start: int | None, bridge: str | None = None
                              ) -> builtins.list[Network]:
        """
        Cut the start of C{cidr} into C{num_networks} networks of
        C{network_size} addresses, with VLAN ids from C{vlan_start}, and fill
        each one's pool of fixed addresses: all in one transaction.

        @param vlan_start: the first VLAN id; C{None} for flat networks.
        @param bridge: the bridge of flat networks (required then); VLAN
            networks get C{novabr<vlan>}.
        @return: the new networks, in id order.
        @raise InvalidNetworkRange: a bad range or size, VLAN ids out of range,
            or an overlap (addresses, VLAN id or bridge) with an existing network.
        """
        subnets = addresses.plan_subnets(cidr, num_networks, network_size)
        if vlan_start is None:
            if not bridge:
                raise InvalidNetworkRange("Flat networks need a bridge name")
            vlans: Sequence[int | None] = [None] * num_networks
        else:
            vlans = addresses.check_vlans(vlan_start, num_networks)
        block_start = int(subnets[0].network_address)
        block_end = int(subnets[-1].broadcast_address)
        now = self._clock.seconds()

        async def create(txn: ITransaction) -> builtins.list[Network]:
            existing = await self._all(txn)
            for net in existing:
                ip = net.ip_network
                if int(ip.network_address) <= block_end and block_start <= int(ip.broadcast_address):
                    raise InvalidNetworkRange(
                        f"The range {subnets[0].network_address}-{subnets[-1].broadcast_address} "
                        f"overlaps network {net.network_id} ({net.cidr})")
                if net.vlan is not None and net.vlan in vlans:
                    raise InvalidNetworkRange(
                        f"VLAN {net.vlan} is already used by network {net.network_id} "
                        f"({net.cidr})")
            last_id = int(await txn.get(keys.network_counter()) or "0")
            made = []
            try:
                for i, (subnet, vlan) in enumerate(zip(subnets, vlans)):
                    made.append(Network.plan(last_id + 1 + i, str(subnet), vlan, bridge, now))
            except ValueError as e:
                raise InvalidNetworkRange(str(e)) from None
            txn.set(keys.network_counter(), str(last_id + len(made)))
            for net in made:
                key = keys.network(net.network_id)
                txn.set(key, net.to_json())
                txn.sadd(keys.networks(), key)
                if net.vlan is not None:
                    txn.sadd(keys.networks_free(), str(net.network_id))
                txn.sadd(keys.fixed_ip_pool(net.network_id), *net.allocatable())
            return made

        return await self._store.transact([keys.networks(), keys.network_counter()], create)

    async def _all(self, txn: ITransaction) -> builtins.list[Network]:
        members = builtins.list(await txn.smembers(keys.networks()))
        found = _decode_all(await txn.mget(*members)) if members else []
        return sorted(found, key=lambda n: n.network_id)

    # -- reads ----------------------------------------------------------------

    async def get(self, network_id: int) -> Network:
        """@raise NetworkNotFound: no such network."""
        raw = await self._store.get(keys.network(network_id))
        if raw is None:
            raise NetworkNotFound(f"The network '{network_id}' does not exist")
        return Network.from_json(raw)

    async def list(self) -> builtins.list[Network]:
        """@return: every network, in id order."""
        members = sorted(await self._store.smembers(keys.networks()))
        if not members:
            return []
        found = _decode_all(await self._store.mget(*members))
        return sorted(found, key=lambda n: n.network_id)

    async def free_addresses(self, network_id: int) -> int:
        """@return: how many fixed addresses of a network are in its pool."""
        return await self._store.scard(keys.fixed_ip_pool(network_id))

    # -- which network serves a project -----------------------------------------

    async def network_for(self, manager: str, project_id: str) -> Network:
        """
        @param manager: L{VLAN} or L{FLAT} (C{NetworkConfig.manager}).
        @return: L{network_for_project} or L{flat_network}.
        """
        if manager == VLAN:
            return await self.network_for_project(project_id)
        if manager == FLAT:
            return await self.flat_network()
        raise ValueError(f"unknown network manager {manager!r}")

    async def network_for_project(self, project_id: str) -> Network:
        """
        VlanManager: the project's network; on first use, the free network
        with the lowest id becomes the project's, atomically. Two concurrent
        first uses of one project get the same network; two projects never
        get one network.

        @raise NoMoreNetworks: no network is free.
        """
        if not isinstance(project_id, str) or not project_id:
            raise ValueError(f"invalid project id {project_id!r}")
        bound_key = keys.network_of_project(project_id)
        bound = await self._store.get(bound_key)
        if bound is not None:
            return await self.get(int(bound))

        async def bind(txn: ITransaction) -> Network:
            bound = await txn.get(bound_key)
            if bound is not None:
                raw = await txn.get(keys.network(int(bound)))
                if raw is None:
                    raise NetworkNotFound(f"The network '{bound}' of project "
                                          f"'{project_id}' does not exist")
                return Network.from_json(raw)
            for candidate in sorted(int(i) for i in await txn.smembers(keys.networks_free())):
                key = keys.network(candidate)
                await txn.watch(key)
                raw = await txn.get(key)
                net = None if raw is None else Network.from_json(raw)
                if net is None or net.project_id is not None:
                    # not free after all (a half-done admin change): tidy the set
                    txn.srem(keys.networks_free(), str(candidate))
                    continue
                mine = attr.evolve(net, project_id=project_id)
                txn.set(key, mine.to_json())
                txn.srem(keys.networks_free(), str(candidate))
                txn.set(bound_key, str(candidate))
                return mine
            raise NoMoreNetworks(
                f"No network is free for project '{project_id}': create more with "
                f"'nova-manage network create'")

        await self._bind_lock.acquire()
        try:
            return await self._store.transact([bound_key, keys.networks_free()], bind)
        finally:
            self._bind_lock.release()

    async def flat_network(self) -> Network:
        """
        FlatManager: the one network every project shares (the flat network
        with the lowest id).

        @raise NetworkNotFound: there is no flat network.
        """
        for net in await self.list():
            if net.vlan is None:
                return net
        raise NetworkNotFound("There is no flat network: create one with "
                              "'nova-manage network create' (manager flat)")

    async def set_host(self, network_id: int, host: str) -> Network:
        """
        Choose the network host of a network: the first caller wins (2010
        nova's C{set_network_host}); later callers get the stored choice.

        @return: the record, with its host.
        @raise NetworkNotFound: no such network.
        """
        key = keys.network(network_id)

        async def claim(txn: ITransaction) -> Network:
            raw = await txn.get(key)
            if raw is None:
                raise NetworkNotFound(f"The network '{network_id}' does not exist")
            net = Network.from_json(raw)
            if net.host is not None:
                return net
            net = attr.evolve(net, host=host)
            txn.set(key, net.to_json())
            return net

        return await self._store.transact([key], claim)
