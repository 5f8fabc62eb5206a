"""
nova-network: the network controller (2010 nova's C{NetworkManager}).

It hands out fixed IPs on a project's network (VLAN manager: a network per
project, bound on first use; flat manager: one shared network), serves the
networks it is the network host of (bridge, segment, dnsmasq with static
entries, outbound NAT, the metadata redirect), follows the DHCP lease cycle
reported by C{bin/nova-dhcpbridge}, and applies elastic IPs' NAT.

The allocation itself is in Redis (L{nova.network.fixed_ips}) and can run on
any network node; the plumbing of a network runs on its network host only,
reached over C{network.<host>} when that is another node.
"""

from __future__ import annotations

from typing import Any, Sequence

import attr
from twisted.internet import defer
from twisted.logger import Logger

from nova.compute import states
from nova.compute.records import Instance
from nova.compute.repository import InvalidInstanceIDNotFound
from nova.context import RequestContext
from nova.exception import NovaError
from nova.network.fixed_ips import FixedIpRepository
from nova.network.floating_ips import FloatingIpRepository
from nova.network.linux_net import DhcpHost, NetworkSpec
from nova.network.networks import NetworkRepository
from nova.network.records import Network
from nova.network.rpcapi import NetworkAPI
from nova.service import Manager, PeriodicTask, expose

log = Logger()


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class NetworkInfo:
    """
    What a compute host needs to plug an instance in.

    @ivar address: the instance's fixed IP.
    @ivar mac: its NIC's MAC (the DHCP entry binds the two).
    @ivar bridge: the bridge the NIC joins; C{vlan} its segment (C{None}: flat).
    @ivar cidr: the network; C{gateway} its router and DHCP server.
    @ivar host: the network host.
    """

    address: str
    mac: str
    network_id: int
    cidr: str
    gateway: str
    bridge: str
    vlan: int | None
    host: str

    def to_dict(self) -> dict[str, Any]:
        return attr.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "NetworkInfo":
        return cls(**{f.name: data[f.name] for f in attr.fields(cls)})

    @classmethod
    def of(cls, network: Network, address: str, mac: str) -> "NetworkInfo":
        assert network.host is not None
        return cls(address=address, mac=mac, network_id=network.network_id, cidr=network.cidr,
                   gateway=network.gateway, bridge=network.bridge, vlan=network.vlan,
                   host=network.host)


class NetworkManager(Manager):
    """
    @param networks: the network records; C{fixed_ips}, C{floating_ips} theirs.
    @param instances: the instance records (their C{private_ip}, C{public_ip}).
    @param plumbing: this host's L{nova.network.host.NetworkHost} (or its fake).
    @param network_api: reaches other network hosts.
    @param kind: C{vlan} or C{flat} (L{nova.config.NetworkConfig.manager}).
    @param metadata_port: where 169.254.169.254:80 is redirected on this host.
    @param metadata_dnat_to: C{(address, port)} to DNAT it to instead (a
        network host in the root namespace whose nova-api is elsewhere).
    """

    binary = "nova-network"

    def __init__(self, host: str, clock: Any, *, networks: NetworkRepository,
                 fixed_ips: FixedIpRepository, floating_ips: FloatingIpRepository,
                 instances: Any, plumbing: Any, network_api: NetworkAPI, kind: str,
                 metadata_port: int,
                 metadata_dnat_to: tuple[str, int] | None = None) -> None:
        super().__init__(host, clock)
        if kind not in ("vlan", "flat"):
            raise ValueError(f"network manager {kind!r}: expected vlan or flat")
        self._networks = networks
        self._fixed = fixed_ips
        self._floating = floating_ips
        self._instances = instances
        self._plumbing = plumbing
        self._api = network_api
        self._kind = kind
        self._metadata_port = metadata_port
        self._metadata_dnat_to = metadata_dnat_to
        #: network id to the lock that orders its host updates
        self._locks: dict[int, defer.DeferredLock] = {}

    def periodic_tasks(self) -> Sequence[PeriodicTask]:
        return (self.reclaim_expired,)

    # -- start-up ---------------------------------------------------------------

    async def init_host(self) -> None:
        """
        Rebuild this host from Redis after a (re)start: every network it
        serves, their DHCP entries, the metadata redirect and the elastic
        IPs' NAT, without disturbing running guests.
        """
        served = [n for n in await self._networks.list() if n.host == self.host]
        kept = await self._plumbing.rebuild([NetworkSpec.from_network(n) for n in served])
        if kept:
            log.warn("{host}: networks no longer wanted kept, guests still use them: {kept}",
                     host=self.host, kept=kept)
        for network in served:
            await self._write_dhcp_hosts(network)
        await self._plumbing.ensure_metadata_redirect(self._metadata_port,
                                                      dnat_to=self._metadata_dnat_to)
        served_ids = {n.network_id for n in served}
        for floating in await self._floating.list_floating_ips():
            if floating.fixed_address is None:
                continue
            fixed = await self._fixed_or_none(floating.fixed_address)
            if fixed is not None and fixed.network_id in served_ids:
                await self._plumbing.ensure_floating_ip(floating.address,
                                                        floating.fixed_address)

    async def _fixed_or_none(self, address: str) -> Any:
        try:
            return await self._fixed.get(address)
        except NovaError:
            return None

    # -- a network on its host ----------------------------------------------------

    def _lock(self, network_id: int) -> defer.DeferredLock:
        return self._locks.setdefault(network_id, defer.DeferredLock())

    async def _write_dhcp_hosts(self, network: Network) -> None:
        entries = [DhcpHost(mac=f.mac, hostname=f.instance_id, ip=f.address)
                   for f in await self._fixed.list_for_network(network.network_id)
                   if f.allocated]
        await self._plumbing.update_dhcp_hosts(NetworkSpec.from_network(network), entries)

    async def _setup_here(self, network: Network) -> None:
        lock = self._lock(network.network_id)
        await lock.acquire()
        try:
            await self._plumbing.ensure_network(NetworkSpec.from_network(network))
            await self._write_dhcp_hosts(network)
        finally:
            lock.release()

    @expose
    async def setup_network(self, context: RequestContext, network_id: int) -> None:
        """Ensure a network this host serves and rewrite its DHCP entries."""
        network = await self._networks.get(int(network_id))
        if network.host != self.host:
            raise NovaError(f"network {network_id} is served by {network.host}, "
                            f"not {self.host}")
        await self._setup_here(network)

    async def _setup(self, context: RequestContext, network: Network) -> None:
        if network.host == self.host:
            await self._setup_here(network)
        else:
            assert network.host is not None
            await self._api.setup_network(context, network.host, network.network_id)

    # -- fixed IPs ------------------------------------------------------------------

    @expose
    async def allocate_for_instance(self, context: RequestContext,
                                    instance_id: str) -> dict[str, Any]:
        """
        The instance's fixed IP on its project's network: the network bound
        and given a host on first use, the address popped from its pool, the
        DHCP entry written on the network host, the instance record's
        C{private_ip} set. Called again for an instance that has its address
        (a restarted spawn), it returns that address.

        @return: L{NetworkInfo} as a dict.
        @raise nova.network.errors.NoMoreFixedIps: the network is full
            (nothing was taken).
        """
        instance: Instance = await self._instances.get(instance_id)
        network = await self._networks.network_for(self._kind, instance.project_id)
        if network.host is None:
            network = await self._networks.set_host(network.network_id, self.host)
        held = [f for f in await self._fixed.list_for_instance(instance_id) if f.allocated]
        if held:
            fixed = held[0]
        else:
            fixed = await self._fixed.allocate_fixed_ip(network.network_id, instance_id,
                                                        instance.mac_address)
        try:
            await self._setup(context, network)
            await self._instances.update(instance_id, private_ip=fixed.address)
        except BaseException:
            await self._fixed.deallocate_fixed_ip(fixed.address)
            raise
        return NetworkInfo.of(network, fixed.address, fixed.mac).to_dict()

    @expose
    async def deallocate_for_instance(self, context: RequestContext, instance_id: str) -> None:
        """
        An instance went away: end its elastic IP's association (NAT removed)
        and deallocate its fixed IPs; each returns to its pool once its DHCP
        lease is over (L{handle_dhcp_event}, L{reclaim_expired}).
        """
        floating = await self._floating.for_instance(instance_id)
        if floating is not None:
            was = await self._floating.disassociate(None, floating.address)
            await self._apply_floating(context, was.address, was.fixed_address, None)
        networks: set[int] = set()
        for fixed in await self._fixed.list_for_instance(instance_id):
            await self._fixed.deallocate_fixed_ip(fixed.address)
            networks.add(fixed.network_id)
        for network_id in networks:
            network = await self._networks.get(network_id)
            if network.host is not None:
                await self._setup(context, network)
        try:
            await self._instances.update(instance_id, private_ip=None, public_ip=None)
        except NovaError:
            pass  # the record is already gone (purged)

    async def handle_dhcp_event(self, event: dict[str, Any]) -> None:
        """
        One event of C{bin/nova-dhcpbridge}: C{add}/C{old} lease the address,
        C{del} ends the lease (the address goes back to its pool if its
        instance is gone).
        """
        action, mac, address = event.get("action"), event.get("mac"), event.get("ip")
        if not isinstance(mac, str) or not isinstance(address, str):
            log.warn("dhcp event without mac and ip: {event}", event=event)
            return
        try:
            if action in ("add", "old"):
                await self._fixed.lease_fixed_ip(address, mac)
            elif action == "del":
                await self._fixed.release_fixed_ip(address, mac)
            else:
                log.warn("unknown dhcp event {event}", event=event)
        except NovaError as e:
            # a lease of an address nova no longer knows (e.g. reclaimed
            # while nova-network was down): nothing to record
            log.info("dhcp {action} {ip} {mac}: {e}", action=action, ip=address, mac=mac, e=e)

    async def reclaim_expired(self) -> None:
        """Give back addresses whose lease must be over although dnsmasq never said so."""
        reclaimed = await self._fixed.reclaim_expired()
        if reclaimed:
            log.info("reclaimed {n} fixed IP(s) whose lease ended", n=len(reclaimed))

    # -- elastic IPs -----------------------------------------------------------------

    async def _network_host_of(self, fixed_address: str) -> str | None:
        fixed = await self._fixed_or_none(fixed_address)
        if fixed is None:
            return None
        return (await self._networks.get(fixed.network_id)).host

    async def _apply_floating(self, context: RequestContext, address: str,
                              old_fixed: str | None, new_fixed: str | None) -> None:
        """Move C{address}'s NAT from C{old_fixed}'s network host to C{new_fixed}'s."""
        if old_fixed is not None:
            host = await self._network_host_of(old_fixed)
            if host is not None:
                await self._apply_on(context, host, address, None)
        if new_fixed is not None:
            host = await self._network_host_of(new_fixed)
            if host is None:
                raise NovaError(f"the network of {new_fixed} has no network host")
            await self._apply_on(context, host, address, new_fixed)

    async def _apply_on(self, context: RequestContext, host: str, address: str,
                        fixed: str | None) -> None:
        if host == self.host:
            await self.apply_floating_ip(context, address, fixed)
        else:
            await self._api.apply_floating_ip(context, host, address, fixed)

    @expose
    async def apply_floating_ip(self, context: RequestContext, address: str,
                                fixed_address: str | None) -> None:
        """NAT C{address} to C{fixed_address} on this host, or remove its NAT (C{None})."""
        if fixed_address is None:
            await self._plumbing.remove_floating_ip(address)
        else:
            await self._plumbing.ensure_floating_ip(address, fixed_address)

    def _project(self, context: RequestContext) -> str | None:
        return None if context.is_admin else context.project_id

    @expose
    async def associate_floating_ip(self, context: RequestContext, address: str,
                                    instance_id: str) -> None:
        """
        AssociateAddress: in Redis, then on the network hosts; if the host
        part fails the association is undone (Redis and NAT agree).
        """
        instance: Instance = await self._instances.get(instance_id)
        project = self._project(context)
        if project is not None and instance.project_id != project:
            raise InvalidInstanceIDNotFound(f"The instance ID '{instance_id}' does not exist")
        if instance.state not in (states.RUNNING, states.PENDING, states.STOPPED,
                                  states.STOPPING) or instance.private_ip is None:
            raise states.IncorrectInstanceState(
                f"The instance '{instance_id}' has no fixed address to associate with")
        done = await self._floating.associate(project, address, instance_id,
                                              instance.private_ip)
        try:
            for previous in done.previous:
                await self._apply_floating(context, previous.address, previous.fixed_address,
                                           None)
                if previous.instance_id not in (None, instance_id):
                    await self._set_public_ip(previous.instance_id, None)
            await self._apply_floating(context, address, None, instance.private_ip)
        except BaseException:
            log.failure("associating {address} with {id} failed: undone", address=address,
                        id=instance_id)
            await self._floating.disassociate(None, address)
            await self._apply_floating(context, address, instance.private_ip, None)
            raise
        await self._set_public_ip(instance_id, address)

    async def _set_public_ip(self, instance_id: str, address: str | None) -> None:
        try:
            await self._instances.update(instance_id, public_ip=address)
        except NovaError:
            pass  # purged meanwhile

    @expose
    async def disassociate_floating_ip(self, context: RequestContext, address: str) -> None:
        """DisassociateAddress: in Redis, then the NAT removed."""
        was = await self._floating.disassociate(self._project(context), address)
        if was.fixed_address is not None:
            await self._apply_floating(context, address, was.fixed_address, None)
        if was.instance_id is not None:
            await self._set_public_ip(was.instance_id, None)

    @expose
    async def release_floating_ip(self, context: RequestContext, address: str) -> None:
        """ReleaseAddress: any association ended (NAT removed), the address back in the pool."""
        was = await self._floating.release_floating_ip(self._project(context), address)
        if was.fixed_address is not None:
            await self._apply_floating(context, address, was.fixed_address, None)
        if was.instance_id is not None:
            await self._set_public_ip(was.instance_id, None)
