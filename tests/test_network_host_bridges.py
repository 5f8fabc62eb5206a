"""
Unit tests of NetworkHost's flat networks and compute-side bridges against
FakeProcessRunner: the exact commands it runs.
"""

from __future__ import annotations

import os

from twisted.trial import unittest

from nova.network import linux_net as ln
from nova.network.host import SOCKET_ENV, NetworkInUse
from nova.utils.validate import InvalidIdentifier
from tests.test_network_host import NET, NS, SYSCTLS, HostFixture, _links

FLAT = ln.NetworkSpec(cidr="10.1.0.0/24", bridge="novaflat")
NAT = [("iptables-save", "-t", "nat"), ("iptables-restore", "--noflush")]


class FlatNetworkTests(HostFixture, unittest.TestCase):
    def test_flat_network_has_no_segment(self):
        async def go() -> None:
            await self.host.ensure_network(FLAT)
            files = self.host.files(FLAT)
            self.assertEqual(files["dir"], os.path.join(self.state, "novaflat"))
            self.assertEqual(self.runner.commands(), [
                ("ip", "-j", "link", "show"), SYSCTLS,
                ("ip", "link", "add", "novaflat", "type", "bridge"),
                ("ip", "link", "set", "dev", "novaflat", "up"),
                ("ip", "addr", "replace", "10.1.0.1/24", "dev", "novaflat"),
                tuple(ln.dnsmasq_argv(FLAT, hosts_file=files["hosts"], pid_file=files["pid"],
                                      dhcp_script="/b/dhcpbridge", log_file=files["log"],
                                      user="root")),
                *NAT])
            self.assertIn(b"-A nova-snat-novaflat -s 10.1.0.0/24 -o eth9 -j MASQUERADE",
                          self.runner.calls[-1].input)
            self.assertIsNone(self.host.segment_kind)
        return self._go(go())

    def test_flat_interface_enslaved_never_deleted(self):
        async def go() -> None:
            host = self.make_host(flat_interface="eth1")
            self.runner.add_result(["ip", "-j", "link", "show"], stdout=_links(
                ("eth1", None), ("lo", None)), times=1)
            await host.ensure_network(FLAT)
            self.assertEqual(self.runner.commands()[2:5], [
                ("ip", "link", "add", "novaflat", "type", "bridge"),
                ("ip", "link", "set", "dev", "eth1", "master", "novaflat"),
                ("ip", "link", "set", "dev", "eth1", "up")])
            self.runner.calls.clear()
            self.runner.add_result(["ip", "-j", "link", "show"], stdout=_links(
                ("novaflat", None), ("eth1", "novaflat"), up=True))
            await host.remove_network(FLAT)  # eth1 is no guest
            self.assertEqual([c for c in self.runner.commands() if c[:3] == ("ip", "link",
                                                                              "delete")],
                             [("ip", "link", "delete", "dev", "novaflat")])
        return self._go(go())

    def test_foreign_bridge_kept_on_remove(self):
        async def go() -> None:
            foreign = ln.NetworkSpec(cidr="10.1.0.0/24", bridge="br100")
            self.runner.add_result(["ip", "-j", "link", "show"], stdout=_links(
                ("br100", None), up=True))
            await self.host.remove_network(foreign)
            self.assertEqual(self.runner.commands(), [
                ("ip", "-j", "link", "show"), ("iptables-save", "-t", "nat"),
                ("ip", "addr", "del", "10.1.0.1/24", "dev", "br100")])
        return self._go(go())

    def test_rebuild_removes_stale_flat_keeps_wanted(self):
        async def go() -> None:
            for bridge in ("novaflat", "novaold"):
                os.makedirs(os.path.join(self.state, bridge))
                open(os.path.join(self.state, bridge, "hosts"), "w").close()
            os.makedirs(os.path.join(self.state, "not-a-network"))
            self.runner.add_result(["ip", "-j", "link", "show"], stdout=_links(
                ("novaflat", None), ("novaold", None), ("vnet1", "novaold"),
                ("novabr9", None), up=True))
            self.runner.add_result(["iptables-save", "-t", "nat"], stdout=(
                b"*nat\n:nova-POSTROUTING - [0:0]\n:nova-snat-novaflat - [0:0]\n"
                b":nova-snat-novagone - [0:0]\n:nova-snat-novabr9 - [0:0]\nCOMMIT\n"))
            kept = await self.host.rebuild([FLAT])
            self.assertEqual(kept, ["novaold"])  # a guest uses it
            deleted = [c[-1] for c in self.runner.commands() if c[:3] == ("ip", "link", "delete")]
            self.assertEqual(deleted, ["novabr9"])  # novagone has no link any more
            restores = [c.input for c in self.runner.calls_matching(["iptables-restore"])]
            self.assertIn(b"-X nova-snat-novagone", restores[-1])
            self.assertIn(b"-X nova-snat-novabr9", restores[-2])
            self.assertTrue(os.path.isdir(os.path.join(self.state, "novaflat")))
            self.assertTrue(os.path.isdir(os.path.join(self.state, "not-a-network")))
        return self._go(go())

    def test_event_socket_in_dnsmasq_environment(self):
        async def go() -> None:
            host = self.make_host(dhcp_event_socket="/run/nova/dhcp.sock")
            await host.ensure_network(FLAT)
            env = self.runner.calls_matching(["dnsmasq"])[0].env
            self.assertEqual(env[SOCKET_ENV], "/run/nova/dhcp.sock")
        return self._go(go())

    def test_bad_options_refused(self):
        for bad in (dict(dhcp_event_socket="relative.sock"),
                    dict(dhcp_event_socket="/" + "x" * 107),
                    dict(dhcp_event_socket="/a\nb"), dict(flat_interface="eth1 up")):
            self.assertRaises(InvalidIdentifier, self.make_host, **bad)


class ComputeBridgeTests(HostFixture, unittest.TestCase):
    def test_ensure_bridge_fresh(self):
        async def go() -> None:
            await self.host.ensure_bridge(NET)
            self.assertEqual(self.runner.commands(), [
                ("ip", "-j", "link", "show"),
                ("sysctl", "-w", "net.bridge.bridge-nf-call-iptables=1"),
                ("ip", "link", "add", "novabr100", "type", "bridge"),
                ("ip", "link", "add", "novavx100", "type", "vxlan", "id", "100",
                 "dstport", "4789"),
                ("ip", "link", "set", "dev", "novavx100", "master", "novabr100"),
                ("ip", "link", "set", "dev", "novavx100", "up"),
                ("ip", "link", "set", "dev", "novabr100", "up")])
            self.assertEqual({c.netns for c in self.runner.calls}, {NS})
        return self._go(go())

    def test_ensure_bridge_after_ensure_network_is_a_no_op(self):
        async def go() -> None:
            await self.host.ensure_network(NET)
            self.runner.calls.clear()
            self.runner.add_result(["ip", "-j", "link", "show"], stdout=_links(
                ("novabr100", None), ("novavx100", "novabr100"), up=True))
            await self.host.ensure_bridge(NET)
            await self.host.ensure_bridge(ln.NetworkSpec(cidr="10.0.5.0/24", vlan=100))
            self.assertEqual(self.runner.commands(), [("ip", "-j", "link", "show")] * 2)
        return self._go(go())

    def test_without_br_netfilter(self):
        async def go() -> None:
            os.unlink(os.path.join(self.proc, "sys", "net", "bridge",
                                   "bridge-nf-call-iptables"))
            await self.host.ensure_bridge(FLAT)
            await self.host.ensure_network(FLAT)
            self.assertEqual(self.runner.calls_matching(["sysctl"])[0].argv,
                             ("sysctl", "-w", "net.ipv4.ip_forward=1"))
            self.assertEqual(len(self.runner.calls_matching(["sysctl"])), 1)
        return self._go(go())

    def test_remove_bridge_if_unused(self):
        async def go() -> None:
            self.runner.add_result(["ip", "-j", "link", "show"], stdout=_links(
                ("novabr100", None), ("novavx100", "novabr100"), ("vnet0", "novabr100")),
                times=1)
            self.assertFalse(await self.host.remove_bridge_if_unused(NET))  # a guest
            self.runner.add_result(["ip", "-j", "link", "show"], stdout=_links(
                ("novabr100", None), ("novavx100", "novabr100")))
            self.runner.add_result(["ip", "-j", "addr", "show"], times=1, stdout=(
                b'[{"ifname": "novabr100", "addr_info": [{"family": "inet",'
                b' "local": "10.0.5.1", "prefixlen": 24}]}]'))
            self.assertFalse(await self.host.remove_bridge_if_unused(NET))  # a network host's
            self.runner.add_result(["ip", "-j", "addr", "show"], stdout=(
                b'[{"ifname": "novabr100", "addr_info": [{"family": "inet6",'
                b' "local": "fe80::1", "prefixlen": 64}]}]'))
            self.runner.calls.clear()
            self.assertTrue(await self.host.remove_bridge_if_unused(NET))
            self.assertEqual(self.runner.commands(), [
                ("ip", "-j", "link", "show"), ("ip", "-j", "addr", "show", "dev", "novabr100"),
                ("ip", "link", "delete", "dev", "novavx100"),
                ("ip", "link", "delete", "dev", "novabr100")])
            self.runner.add_result(["ip", "-j", "link", "show"], stdout=_links(("eth0", None)))
            self.assertFalse(await self.host.remove_bridge_if_unused(NET))  # gone already
        return self._go(go())

    def test_network_in_use_names_guests(self):
        async def go() -> None:
            self.runner.add_result(["ip", "-j", "link", "show"], stdout=_links(
                ("novaflat", None), ("tap1", "novaflat"), ("tap2", "novaflat")))
            with self.assertRaises(NetworkInUse) as caught:
                await self.host.remove_network("novaflat")
            self.assertIn("tap1, tap2", str(caught.exception))
        return self._go(go())

    def test_sysctl_missing_or_failing_is_logged_not_fatal(self):
        async def go() -> None:
            self.runner.add_missing("sysctl", times=1)
            await self.host.ensure_bridge(NET)
            host = self.make_host()
            self.runner.add_result(["sysctl"], exit_code=255, stderr=b"permission denied")
            await host.ensure_network(FLAT)
            self.assertEqual(len(self.runner.calls_matching(["sysctl"])), 2)
            self.assertEqual(len(self.runner.calls_matching(["iptables-restore"])), 1)
        return self._go(go())
