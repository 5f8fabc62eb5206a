"""
L{RuleResolver}: from the security groups an instance is in to the flat list
of L{SecurityRule}s its compute host writes into the instance's iptables
chain (L{nova.network.linux_net_iptables.instance_filter_rules}).

A CIDR rule is taken as it is. A rule naming a source group becomes one
C{/32} rule per instance of that group that has a fixed address and is not
terminated, so the result changes when such an instance comes or goes: the
caller refreshes the chains of the instances whose groups name it.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable, Protocol, Sequence

from nova.compute import states
from nova.exception import NotFound
from nova.network.linux_net_iptables import SecurityRule
from nova.network.security_group_records import IngressRule
from nova.network.security_groups import SecurityGroupRepository

#: states whose instances have no address that could send traffic
_GONE = frozenset({states.TERMINATED})


class InstanceSource(Protocol):
    """What the resolver needs of L{nova.compute.repository.InstanceRepository}."""

    async def get_many(self, instance_ids: Sequence[str]) -> list[Any]:
        """@return: the instance records (C{private_ip}, C{state}), in order."""

    async def get(self, instance_id: str) -> Any:
        """@return: one instance record."""


def _order(rule: SecurityRule) -> tuple[Any, ...]:
    net = ipaddress.IPv4Network(rule.cidr)
    return (rule.protocol, rule.from_port, rule.to_port, int(net.network_address),
            net.prefixlen)


def to_security_rule(rule: IngressRule, cidr: str) -> SecurityRule | None:
    """
    @param cidr: the source network (the rule's own, or a member's C{/32}).
    @return: the host-side rule, or C{None} when it matches no real traffic.

    EC2 lets a tcp/udp rule start at port 0, which no packet uses and which
    L{SecurityRule} refuses: the range starts at 1 instead, and a rule for
    port 0 alone is dropped.
    """
    from_port, to_port = rule.from_port, rule.to_port
    if rule.protocol != "icmp":
        if to_port == 0:
            return None
        from_port = max(from_port, 1)
    return SecurityRule(rule.protocol, from_port, to_port, cidr)


class RuleResolver:
    """
    @param groups: the security groups.
    @param instances: the instance records (C{get_many} and C{get}).
    """

    def __init__(self, groups: SecurityGroupRepository, instances: InstanceSource) -> None:
        self._groups = groups
        self._instances = instances

    async def rules_for(self, project_id: str,
                        group_names: Iterable[str]) -> list[SecurityRule]:
        """
        The rules of an instance in C{group_names} of C{project_id}.

        A group that no longer exists contributes nothing (the instance then
        accepts less, never more).

        @return: the rules, without duplicates, in a stable order (protocol,
            ports, source network).
        """
        names = list(dict.fromkeys(group_names))
        try:
            found = await self._groups.get_by_names(project_id, names)
        except NotFound:
            found = []
            for name in names:  # one is gone: take the others one by one
                try:
                    found.extend(await self._groups.get_by_names(project_id, [name]))
                except NotFound:
                    continue
        out: set[SecurityRule] = set()
        member_addresses: dict[tuple[str, str], list[str]] = {}
        for group in found:
            for rule in group.rules:
                if rule.cidr is not None:
                    cidrs = [rule.cidr]
                else:
                    assert rule.source is not None
                    if rule.source not in member_addresses:
                        member_addresses[rule.source] = await self._addresses(*rule.source)
                    cidrs = [f"{ip}/32" for ip in member_addresses[rule.source]]
                for cidr in cidrs:
                    made = to_security_rule(rule, cidr)
                    if made is not None:
                        out.add(made)
        return sorted(out, key=_order)

    async def _addresses(self, project_id: str, name: str) -> list[str]:
        """@return: the fixed addresses of a group's live members."""
        ids = sorted(await self._groups.members(project_id, name))
        if not ids:
            return []
        try:
            records = await self._instances.get_many(ids)
        except NotFound:
            # a member's record is gone (purged before it was unbound): read
            # them one by one and skip the missing
            records = []
            for instance_id in ids:
                try:
                    records.append(await self._instances.get(instance_id))
                except NotFound:
                    continue
        return [r.private_ip for r in records
                if r.private_ip and r.state not in _GONE]


__all__ = ["RuleResolver", "to_security_rule"]
