"""
Unit tests of NetworkHost's iptables side against FakeProcessRunner: the
metadata redirect and instance filters (the exact iptables-restore input).
"""

from __future__ import annotations

from twisted.trial import unittest

from nova.network import linux_net_iptables as ipt
from nova.network.host import InstanceFilter, SecurityRule
from nova.utils.validate import InvalidIdentifier
from tests.test_network_host import NET, HostFixture

SSH = SecurityRule("tcp", 22, 22, "0.0.0.0/0")
SAVED_FILTER = (
    b"*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
    b":nova-INPUT - [0:0]\n:nova-FORWARD - [0:0]\n:nova-OUTPUT - [0:0]\n"
    b":nova-i-00000001 - [0:0]\n"
    b":nova-i-00000002 - [0:0]\n:nova-i-00000003 - [0:0]\n"
    b"-A INPUT -j nova-INPUT\n-A FORWARD -j nova-FORWARD\n-A OUTPUT -j nova-OUTPUT\n"
    b"-A nova-INPUT -j nova-i-00000001\n-A nova-FORWARD -j nova-i-00000001\n"
    b"-A nova-OUTPUT -j nova-i-00000001\n"
    b"COMMIT\n")


class MetadataRedirectTests(HostFixture, unittest.TestCase):
    def restores(self) -> list[str]:
        return [c.input.decode() for c in self.runner.calls_matching(["iptables-restore"])]

    def test_redirect(self):
        async def go() -> None:
            await self.host.ensure_metadata_redirect(8775)
            self.assertEqual(self.runner.commands(), [
                ("iptables-save", "-t", "nat"), ("iptables-restore", "--noflush")])
            self.assertEqual(self.restores()[0].splitlines(), [
                "*nat", ":nova-PREROUTING - [0:0]", ":nova-OUTPUT - [0:0]",
                ":nova-POSTROUTING - [0:0]", ":nova-metadata - [0:0]",
                "-I PREROUTING 1 -j nova-PREROUTING", "-I OUTPUT 1 -j nova-OUTPUT",
                "-I POSTROUTING 1 -j nova-POSTROUTING",
                "-A nova-metadata -d 169.254.169.254/32 -p tcp --dport 80 -j REDIRECT"
                " --to-ports 8775",
                "-A nova-PREROUTING -j nova-metadata", "COMMIT"])
        return self._go(go())

    def test_dnat_and_remove(self):
        async def go() -> None:
            await self.host.ensure_metadata_redirect(0, dnat_to=("192.0.2.10", 8773))
            self.assertIn("-A nova-metadata -d 169.254.169.254/32 -p tcp --dport 80 -j DNAT"
                          " --to-destination 192.0.2.10:8773\n", self.restores()[0])
            self.runner.add_result(["iptables-save", "-t", "nat"], stdout=(
                b"*nat\n:PREROUTING ACCEPT [0:0]\n:nova-PREROUTING - [0:0]\n"
                b":nova-OUTPUT - [0:0]\n:nova-POSTROUTING - [0:0]\n:nova-metadata - [0:0]\n"
                b":nova-snat-novabr100 - [0:0]\n-A PREROUTING -j nova-PREROUTING\n"
                b"-A nova-PREROUTING -j nova-metadata\nCOMMIT\n"))
            await self.host.remove_metadata_redirect()
            self.assertEqual(self.restores()[1].splitlines(), [
                "*nat", ":nova-PREROUTING - [0:0]", ":nova-OUTPUT - [0:0]",
                ":nova-POSTROUTING - [0:0]", ":nova-metadata - [0:0]",
                "-I OUTPUT 1 -j nova-OUTPUT", "-I POSTROUTING 1 -j nova-POSTROUTING",
                "-A nova-POSTROUTING -j nova-snat-novabr100", "-X nova-metadata", "COMMIT"])
        return self._go(go())

    def test_rebuild_includes_it_and_keeps_it(self):
        async def go() -> None:
            self.runner.add_result(["iptables-save", "-t", "nat"], stdout=(
                b"*nat\n:nova-PREROUTING - [0:0]\n:nova-metadata - [0:0]\nCOMMIT\n"))
            await self.host.rebuild([NET], metadata_port=8775)
            restores = self.restores()
            self.assertEqual(len(restores), 2)  # the network's NAT, the redirect
            self.assertIn("--to-ports 8775", restores[1])
            self.assertNotIn("-X nova-metadata", "".join(restores))
        return self._go(go())

    def test_bad_port_refused(self):
        async def go() -> None:
            for bad in (dict(port=0), dict(port=80, dnat_to=("127.0.0.1", 8775))):
                with self.assertRaises(InvalidIdentifier):
                    await self.host.ensure_metadata_redirect(**bad)
            self.assertEqual(self.runner.calls, [])
        return self._go(go())


class InstanceFilterTests(HostFixture, unittest.TestCase):
    def restores(self) -> list[str]:
        return [c.input.decode() for c in self.runner.calls_matching(["iptables-restore"])]

    def test_many_instances_one_transaction(self):
        async def go() -> None:
            filters = {f"i-{n:08x}": InstanceFilter(f"10.0.5.{n + 3}", (SSH,), "10.0.5.1",
                                                    "10.0.5.0/24")
                       for n in range(1, 21)}
            await self.host.apply_instance_filters(filters)
            self.assertEqual(self.runner.commands(), [
                ("iptables-save", "-t", "filter"), ("iptables-restore", "--noflush")])
            lines = self.restores()[0].splitlines()
            self.assertEqual(lines[:4], ["*filter", ":nova-INPUT - [0:0]",
                                         ":nova-FORWARD - [0:0]", ":nova-OUTPUT - [0:0]"])
            self.assertEqual(len([x for x in lines if x.startswith("-A nova-INPUT -j ")]), 20)
            self.assertEqual(len([x for x in lines if x.startswith("-A nova-FORWARD -j ")]), 20)
            self.assertEqual(len([x for x in lines if x.startswith("-A nova-OUTPUT -j ")]), 20)
            self.assertEqual([x for x in lines if x.startswith("-A nova-i-00000001 ")], [
                "-A nova-i-00000001 ! -d 10.0.5.4/32 -j RETURN",
                "-A nova-i-00000001 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
                "-A nova-i-00000001 -s 10.0.5.1/32 -p udp --sport 67 --dport 68"
                " -j ACCEPT",
                "-A nova-i-00000001 -s 0.0.0.0/0 -p tcp --dport 22:22 -j ACCEPT",
                "-A nova-i-00000001 -s 10.0.5.1/32 -j DROP",
                "-A nova-i-00000001 -s 10.0.5.0/24 -j ACCEPT",
                "-A nova-i-00000001 -j DROP"])
            self.assertEqual(lines[-1], "COMMIT")
        return self._go(go())

    def test_remove_and_exclusive(self):
        async def go() -> None:
            self.runner.add_result(["iptables-save", "-t", "filter"], stdout=SAVED_FILTER)
            await self.host.apply_instance_filters(
                {"i-00000004": InstanceFilter("10.0.5.9")}, remove=["i-00000002", "i-0000000f"])
            self.assertEqual(self.restores()[0].splitlines(), [
                "*filter", ":nova-INPUT - [0:0]", ":nova-FORWARD - [0:0]",
                ":nova-OUTPUT - [0:0]", ":nova-i-00000002 - [0:0]", ":nova-i-00000004 - [0:0]",
                "-A nova-i-00000004 ! -d 10.0.5.9/32 -j RETURN",
                "-A nova-i-00000004 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
                "-A nova-i-00000004 -j DROP",
                "-A nova-INPUT -j nova-i-00000001", "-A nova-FORWARD -j nova-i-00000001",
                "-A nova-OUTPUT -j nova-i-00000001",
                "-A nova-INPUT -j nova-i-00000003", "-A nova-FORWARD -j nova-i-00000003",
                "-A nova-OUTPUT -j nova-i-00000003",
                "-A nova-INPUT -j nova-i-00000004", "-A nova-FORWARD -j nova-i-00000004",
                "-A nova-OUTPUT -j nova-i-00000004",
                "-X nova-i-00000002", "COMMIT"])
            await self.host.apply_instance_filters(
                {"i-00000001": InstanceFilter("10.0.5.4")}, exclusive=True)
            lines = self.restores()[1].splitlines()
            self.assertEqual([x for x in lines if x.startswith("-X")],
                             ["-X nova-i-00000002", "-X nova-i-00000003"])
            self.assertEqual([x for x in lines if x.startswith("-A nova-FORWARD")],
                             ["-A nova-FORWARD -j nova-i-00000001"])
            self.assertEqual(await self.host.instance_filters(),
                             ["i-00000001", "i-00000002", "i-00000003"])  # the canned save
        return self._go(go())

    def test_exclusive_with_nothing_removes_hooks(self):
        async def go() -> None:
            self.runner.add_result(["iptables-save", "-t", "filter"], stdout=SAVED_FILTER)
            await self.host.apply_instance_filters({}, exclusive=True)
            lines = self.restores()[0].splitlines()
            self.assertIn("-D INPUT -j nova-INPUT", lines)
            self.assertIn("-D FORWARD -j nova-FORWARD", lines)
            self.assertIn("-D OUTPUT -j nova-OUTPUT", lines)
            self.assertEqual(lines[-4:], ["-X nova-INPUT", "-X nova-FORWARD", "-X nova-OUTPUT",
                                          "COMMIT"])
        return self._go(go())

    def test_nothing_to_do_runs_no_restore(self):
        async def go() -> None:
            await self.host.apply_instance_filters({}, remove=["i-00000001"])
            self.assertEqual(self.runner.commands(), [("iptables-save", "-t", "filter")])
        return self._go(go())

    def test_single_chain_methods(self):
        async def go() -> None:
            await self.host.ensure_instance_filter("i-0000000a", "10.0.5.4", [SSH],
                                                   dhcp_server="10.0.5.1")
            self.assertIn("-A nova-OUTPUT -j nova-i-0000000a", self.restores()[0])
            self.runner.add_result(["iptables-save", "-t", "filter"], stdout=(
                b"*filter\n:nova-FORWARD - [0:0]\n:nova-OUTPUT - [0:0]\n"
                b":nova-i-0000000a - [0:0]\n-A FORWARD -j nova-FORWARD\n"
                b"-A OUTPUT -j nova-OUTPUT\nCOMMIT\n"))
            await self.host.remove_instance_filter("i-0000000a")
            self.assertIn("-X nova-i-0000000a", self.restores()[1])
        return self._go(go())

    def test_bad_input_changes_nothing(self):
        async def go() -> None:
            for filters, remove in (({"i-1 -j": InstanceFilter("10.0.5.4")}, ()),
                                    ({"i-00000001": ("10.0.5.4",)}, ()),
                                    ({}, ["bogus"])):
                with self.assertRaises(InvalidIdentifier):
                    await self.host.apply_instance_filters(filters, remove=remove)
            self.assertEqual(self.runner.calls, [])
            self.assertEqual(ipt.instance_chain("i-00000001"), "nova-i-00000001")
        return self._go(go())
