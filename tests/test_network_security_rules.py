"""
L{RuleResolver}: security groups to the L{SecurityRule}s of an instance's
iptables chain, over the in-memory datastore with the real group and
instance repositories.
"""

from __future__ import annotations

from twisted.internet import task
from twisted.trial import unittest

from nova.compute import states
from nova.compute.records import Instance
from nova.compute.repository import InstanceRepository
from nova.datastore.memory import MemoryDatastore, MemoryServer
from nova.network.linux_net_iptables import SecurityRule, instance_filter_rules
from nova.network.security_group_records import IngressRule
from nova.network.security_groups import SecurityGroupRepository
from nova.network.security_rules import RuleResolver, to_security_rule
from tests.test_compute_records import a_launch


def rule(protocol: str, low: int, high: int, cidr: str | None = None,
         source: tuple[str, str] | None = None) -> IngressRule:
    project, name = source if source else (None, None)
    return IngressRule(protocol=protocol, from_port=low, to_port=high, cidr=cidr,
                       source_project=project, source_name=name)


class RuleResolverTests(unittest.TestCase):

    def setUp(self) -> None:
        self.clock = task.Clock()
        self.clock.advance(1000)
        store = MemoryDatastore(self.clock, "t:", MemoryServer(self.clock))
        self.groups = SecurityGroupRepository(store, self.clock)
        self.instances = InstanceRepository(store, self.clock)
        self.resolver = RuleResolver(self.groups, self.instances)

    async def launch(self, project: str, groups: list[str], ip: str | None,
                     state: str = states.RUNNING) -> Instance:
        reservation, [instance] = a_launch(1, project_id=project, security_groups=groups)
        await self.instances.create_reservation(reservation, [instance])
        await self.groups.bind_instance(project, groups, instance.instance_id)
        return await self.instances.update(instance.instance_id, private_ip=ip, state=state)

    async def test_cidr_rules_as_they_are(self) -> None:
        await self.groups.create("p", "u", "web", "w")
        await self.groups.authorize("p", "web", [
            rule("tcp", 80, 80, "0.0.0.0/0"), rule("icmp", 8, -1, "10.0.0.0/8"),
            rule("udp", 53, 53, "192.168.1.0/24")])
        await self.groups.ensure_default("p", "u")
        await self.groups.authorize("p", "default", [rule("tcp", 80, 80, "0.0.0.0/0"),
                                                     rule("tcp", 22, 22, "10.1.0.0/16")])
        got = await self.resolver.rules_for("p", ["web", "default", "web"])
        # duplicates once, ordered by protocol, ports, source
        self.assertEqual(got, [SecurityRule("icmp", 8, -1, "10.0.0.0/8"),
                               SecurityRule("tcp", 22, 22, "10.1.0.0/16"),
                               SecurityRule("tcp", 80, 80, "0.0.0.0/0"),
                               SecurityRule("udp", 53, 53, "192.168.1.0/24")])
        self.assertEqual(await self.resolver.rules_for("p", ["default", "web"]), got)
        # what the compute host builds from them
        lines = instance_filter_rules("10.0.0.9", got)
        self.assertIn(["-s", "0.0.0.0/0", "-p", "tcp", "--dport", "80:80", "-j", "ACCEPT"],
                      lines)

    async def test_source_groups_expand_to_live_members(self) -> None:
        await self.groups.create("p", "u", "app", "a")
        await self.groups.create("q", "v", "db", "d")
        await self.groups.authorize("q", "db", [rule("tcp", 5432, 5432, source=("p", "app")),
                                                rule("icmp", -1, -1, source=("q", "db"))])
        a = await self.launch("p", ["app"], "10.0.0.5")
        await self.launch("p", ["app"], "10.0.0.3")
        await self.launch("p", ["app"], None, states.PENDING)       # no address yet
        await self.launch("p", ["app"], "10.0.0.7", states.TERMINATED)
        me = await self.launch("q", ["db"], "10.9.0.2")
        got = await self.resolver.rules_for("q", ["db"])
        self.assertEqual(got, [SecurityRule("icmp", -1, -1, "10.9.0.2/32"),
                               SecurityRule("tcp", 5432, 5432, "10.0.0.3/32"),
                               SecurityRule("tcp", 5432, 5432, "10.0.0.5/32")])
        # a member whose record is gone (purged before it was unbound) is skipped
        await self.instances.delete(a.instance_id)
        got = await self.resolver.rules_for("q", ["db"])
        self.assertNotIn(SecurityRule("tcp", 5432, 5432, "10.0.0.5/32"), got)
        self.assertIn(SecurityRule("tcp", 5432, 5432, "10.0.0.3/32"), got)
        # an unbound member no longer counts
        await self.groups.unbind_instance("q", ["db"], me.instance_id)
        self.assertNotIn(SecurityRule("icmp", -1, -1, "10.9.0.2/32"),
                         await self.resolver.rules_for("q", ["db"]))

    async def test_missing_groups_give_nothing(self) -> None:
        await self.groups.create("p", "u", "web", "w")
        await self.groups.authorize("p", "web", [rule("tcp", 443, 443, "0.0.0.0/0")])
        self.assertEqual(await self.resolver.rules_for("p", ["gone", "web"]),
                         [SecurityRule("tcp", 443, 443, "0.0.0.0/0")])
        self.assertEqual(await self.resolver.rules_for("p", ["gone"]), [])
        self.assertEqual(await self.resolver.rules_for("p", []), [])

    def test_port_zero(self) -> None:
        # EC2 accepts 0-65535; a packet never has port 0 and SecurityRule refuses it
        self.assertEqual(to_security_rule(rule("tcp", 0, 65535, "0.0.0.0/0"), "0.0.0.0/0"),
                         SecurityRule("tcp", 1, 65535, "0.0.0.0/0"))
        self.assertIsNone(to_security_rule(rule("udp", 0, 0, "0.0.0.0/0"), "0.0.0.0/0"))
        self.assertEqual(to_security_rule(rule("icmp", 0, -1, "0.0.0.0/0"), "1.2.3.4/32"),
                         SecurityRule("icmp", 0, -1, "1.2.3.4/32"))
