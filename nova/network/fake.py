"""
An in-memory network host: what L{nova.network.host.NetworkHost} would have
made on a host, kept in dicts. For unit tests and for clouds whose compute
driver is C{fake} (control-plane tests and benchmarks), where no guest
exists to plug in. The contract tests (tests/test_network_plumbing_contract.py)
hold it and the real host to the same observable behaviour.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from nova.network.linux_net import DhcpHost, NetworkSpec


class FakeNetworkHost:
    """
    @ivar networks: bridge name to the spec of a network served here
        (gateway, dnsmasq).
    @ivar bridges: bridge name to the spec of every bridge here.
    @ivar dhcp_hosts: bridge name to its static DHCP entries.
    @ivar floating: elastic IP to the fixed IP it is NATed to.
    @ivar filters: instance id to its L{InstanceFilter}.
    @ivar metadata_redirect: the port 169.254.169.254:80 goes to, once set.
    @ivar applied: how many filter transactions ran (one per call).
    """

    def __init__(self) -> None:
        self.networks: dict[str, NetworkSpec] = {}
        self.bridges: dict[str, NetworkSpec] = {}
        self.dhcp_hosts: dict[str, tuple[DhcpHost, ...]] = {}
        self.floating: dict[str, str] = {}
        self.filters: dict[str, Any] = {}
        self.metadata_redirect: Any = None
        self.applied = 0

    async def ensure_network(self, network: NetworkSpec) -> None:
        self.bridges[network.bridge] = network
        self.networks[network.bridge] = network

    async def ensure_bridge(self, network: NetworkSpec) -> None:
        self.bridges.setdefault(network.bridge, network)

    async def update_dhcp_hosts(self, network: NetworkSpec,
                                entries: Iterable[DhcpHost]) -> bool:
        new = tuple(sorted(entries, key=lambda e: e.ip))
        changed = self.dhcp_hosts.get(network.bridge) != new
        self.dhcp_hosts[network.bridge] = new
        return changed

    async def rebuild(self, networks: Iterable[NetworkSpec]) -> list[Any]:
        for network in networks:
            await self.ensure_network(network)
        return []

    async def ensure_metadata_redirect(self, port: int, *,
                                       dnat_to: tuple[str, int] | None = None) -> None:
        self.metadata_redirect = dnat_to if dnat_to is not None else port

    async def ensure_floating_ip(self, floating_ip: str, fixed_ip: str) -> None:
        self.floating[floating_ip] = fixed_ip

    async def remove_floating_ip(self, floating_ip: str) -> None:
        self.floating.pop(floating_ip, None)

    async def apply_instance_filters(self, filters: Mapping[str, Any], *,
                                     remove: Iterable[str] = (),
                                     exclusive: bool = False) -> None:
        if exclusive:
            self.filters = {}
        for instance_id in remove:
            self.filters.pop(instance_id, None)
        self.filters.update(filters)
        self.applied += 1
