"""
The network controller's RPC face (2010 nova's C{network} topic): typed
methods for its callers, the compute nodes and the API.

Work any network node can do goes to C{network}; work that touches one
network host's plumbing (a network's bridge and dnsmasq, an elastic IP's
NAT) goes to C{network.<host>}, the node that serves that network.
"""

from __future__ import annotations

from typing import Any

from nova.context import RequestContext

TOPIC = "network"


def host_topic(host: str) -> str:
    """@return: the queue of one network host."""
    return f"{TOPIC}.{host}"


class NetworkAPI:
    """
    Client of L{nova.network.manager.NetworkManager}.

    @param rpc: the process's L{nova.rpc.interfaces.IRPCTransport}.
    """

    def __init__(self, rpc: Any) -> None:
        self._rpc = rpc

    async def allocate_for_instance(self, context: RequestContext,
                                    instance_id: str) -> dict[str, Any]:
        """
        Give an instance its fixed IP on its project's network, with that
        network set up on its network host and the DHCP entry written.

        @return: L{nova.network.manager.NetworkInfo} as a dict.
        """
        return await self._rpc.call(TOPIC, "allocate_for_instance",
                                    {"instance_id": instance_id}, context)

    async def deallocate_for_instance(self, context: RequestContext, instance_id: str) -> None:
        """Give back an instance's fixed IP (after its lease) and end its elastic IP's NAT."""
        await self._rpc.call(TOPIC, "deallocate_for_instance",
                             {"instance_id": instance_id}, context)

    async def associate_floating_ip(self, context: RequestContext, address: str,
                                    instance_id: str) -> None:
        """Associate an elastic IP of the caller's project; NAT applied before it returns."""
        await self._rpc.call(TOPIC, "associate_floating_ip",
                             {"address": address, "instance_id": instance_id}, context)

    async def disassociate_floating_ip(self, context: RequestContext, address: str) -> None:
        """End an elastic IP's association, NAT removed before it returns."""
        await self._rpc.call(TOPIC, "disassociate_floating_ip", {"address": address}, context)

    async def release_floating_ip(self, context: RequestContext, address: str) -> None:
        """Give an elastic IP back to the pool (ending any association)."""
        await self._rpc.call(TOPIC, "release_floating_ip", {"address": address}, context)

    # -- to one network host ---------------------------------------------------

    async def setup_network(self, context: RequestContext, host: str,
                            network_id: int) -> None:
        """Make C{host} ensure the network's plumbing and rewrite its DHCP entries."""
        await self._rpc.call(host_topic(host), "setup_network",
                             {"network_id": network_id}, context)

    async def apply_floating_ip(self, context: RequestContext, host: str, address: str,
                                fixed_address: str | None) -> None:
        """Make C{host} NAT C{address} to C{fixed_address} (C{None}: remove its NAT)."""
        await self._rpc.call(host_topic(host), "apply_floating_ip",
                             {"address": address, "fixed_address": fixed_address}, context)
