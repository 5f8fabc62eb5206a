"""
The compute host's side of networking: an instance's NIC plugged into its
project network's bridge, and its security groups enforced as a filter
chain on this host (2010 nova's IptablesFirewallDriver), from the first
packet the guest could receive.
"""

from __future__ import annotations

from typing import Any, Iterable

from twisted.logger import Logger

from nova.compute import states
from nova.compute.records import Instance
from nova.context import RequestContext
from nova.exception import NovaError
from nova.network.fixed_ips import FixedIpRepository
from nova.network.host import InstanceFilter
from nova.network.linux_net import NetworkSpec, tap_name
from nova.network.manager import NetworkInfo
from nova.network.networks import NetworkRepository

log = Logger()


class ComputeNetworking:
    """
    @param network_api: L{nova.network.rpcapi.NetworkAPI} (allocation).
    @param plumbing: this compute host's L{nova.network.host.NetworkHost}
        (or its fake): bridges and filter chains.
    @param rules: L{nova.network.security_rules.RuleResolver}.
    @param networks: network records; C{fixed_ips} the addresses in use.
    @param allow_project_traffic: guests of one network reach each other.
    """

    def __init__(self, network_api: Any, plumbing: Any, rules: Any,
                 networks: NetworkRepository, fixed_ips: FixedIpRepository, *,
                 allow_project_traffic: bool) -> None:
        self._api = network_api
        self._plumbing = plumbing
        self._rules = rules
        self._networks = networks
        self._fixed = fixed_ips
        self._allow_project = allow_project_traffic

    async def plug(self, context: RequestContext, instance: Instance) -> NetworkInfo:
        """
        Allocate the instance's address, make its network's bridge on this
        host and write its filter chain (default deny plus its groups'
        rules) before the guest exists.

        @return: the MAC and bridge for the guest's NIC, with its address
            (its tap must be named L{tap_name}: the filter checks the
            source address of what comes in from it).
        """
        info = NetworkInfo.from_dict(
            await self._api.allocate_for_instance(context, instance.instance_id))
        network = await self._networks.get(info.network_id)
        await self._plumbing.ensure_bridge(NetworkSpec.from_network(network))
        await self._plumbing.apply_instance_filters(
            {instance.instance_id: await self._filter(instance, info.address, network)})
        return info

    async def unplug(self, context: RequestContext, instance_id: str) -> None:
        """Remove the instance's filter chain and give its addresses back."""
        await self._plumbing.apply_instance_filters({}, remove=[instance_id])
        await self._api.deallocate_for_instance(context, instance_id)

    async def _filter(self, instance: Instance, address: str, network: Any) -> InstanceFilter:
        rules = await self._rules.rules_for(instance.project_id, instance.security_groups)
        return InstanceFilter(fixed_ip=address, rules=tuple(rules),
                              dhcp_server=network.gateway,
                              project_cidr=network.cidr if self._allow_project else None,
                              tap=tap_name(instance.instance_id), mac=instance.mac_address)

    async def refresh(self, instances: Iterable[Instance], *, exclusive: bool = False) -> int:
        """
        Rewrite the filter chains of C{instances} (a security group changed,
        or this host restarted) in one host transaction.

        @param exclusive: also remove every other instance chain on this host.
        @return: how many chains were written.
        """
        filters: dict[str, InstanceFilter] = {}
        networks: dict[int, Any] = {}
        for instance in instances:
            if instance.private_ip is None or instance.state in (states.TERMINATED,
                                                                 states.SHUTTING_DOWN):
                continue
            try:
                fixed = await self._fixed.get(instance.private_ip)
            except NovaError:
                log.warn("{id}: its address {ip} is not allocated", id=instance.instance_id,
                         ip=instance.private_ip)
                continue
            if fixed.network_id not in networks:
                networks[fixed.network_id] = await self._networks.get(fixed.network_id)
            filters[instance.instance_id] = await self._filter(
                instance, instance.private_ip, networks[fixed.network_id])
        await self._plumbing.apply_instance_filters(filters, exclusive=exclusive)
        return len(filters)
