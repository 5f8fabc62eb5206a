"""Unit tests of NetworkHost against FakeProcessRunner: the exact commands it runs."""

from __future__ import annotations

import json
import os

from twisted.internet import defer, task
from twisted.trial import unittest

from nova.network import linux_net as ln
from nova.network.host import (EVENTS_ENV, SOCKET_ENV, NetworkHost, NetworkInUse,
                               SegmentConfig)
from nova.utils.process import FakeProcessRunner, Reply
from nova.utils.validate import InvalidIdentifier
from tests.support.compute import run_now

NS = "nvhost"
NET = ln.NetworkSpec(vlan=100, cidr="10.0.5.0/24")
SYSCTLS = ("sysctl", "-w", "net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-iptables=1")


def _links(*entries: tuple[str, str | None], up: bool = False) -> bytes:
    flags = {"flags": ["BROADCAST", "UP"]} if up else {}
    return json.dumps([{"ifname": n, **({"master": m} if m else {}), **flags}
                       for n, m in entries]).encode()


def _bridge_nf(proc: str) -> None:
    # The per-namespace switch exists where br_netfilter is loaded.
    os.makedirs(os.path.join(proc, "sys", "net", "bridge"))
    open(os.path.join(proc, "sys", "net", "bridge", "bridge-nf-call-iptables"), "w").close()


class HostFixture:
    """A NetworkHost on a FakeProcessRunner, with a fake dnsmasq and /proc."""

    def setUp(self) -> None:
        self.runner = FakeProcessRunner()
        self.state = os.path.abspath(self.mktemp())
        self.proc = os.path.abspath(self.mktemp())
        os.makedirs(self.proc)
        _bridge_nf(self.proc)
        self.clock = task.Clock()
        self.host = self.make_host()
        self.files = self.host.files(100)
        self.runner.add_handler(["dnsmasq"], self._fake_dnsmasq)
        self.runner.add_handler(["kill", "-TERM"], self._fake_kill)

    def make_host(self, **kw) -> NetworkHost:
        """@return: a NetworkHost on the fakes, C{kw} overriding the defaults."""
        options = dict(clock=self.clock, run_in_thread=run_now, public_interface="eth9",
                       dhcp_script="/b/dhcpbridge", proc_dir=self.proc)
        return NetworkHost(self.runner, NS, self.state, **{**options, **kw})

    def _fake_dnsmasq(self, call):
        # Plays the daemon: writes its pid file and a /proc entry.
        pid = "4242"
        pid_file = next(a for a in call.argv if a.startswith("--pid-file="))[11:]
        with open(pid_file, "w") as f:
            f.write(pid + "\n")
        os.makedirs(os.path.join(self.proc, pid), exist_ok=True)
        with open(os.path.join(self.proc, pid, "cmdline"), "wb") as f:
            f.write(b"\0".join(a.encode() for a in call.argv) + b"\0")
        return Reply()

    def _fake_kill(self, call):
        os.unlink(os.path.join(self.proc, call.argv[2], "cmdline"))
        return Reply()

    def _go(self, coro) -> defer.Deferred:
        return defer.Deferred.fromCoroutine(coro)


class NetworkHostTests(HostFixture, unittest.TestCase):
    def dnsmasq_argv(self) -> tuple[str, ...]:
        return tuple(ln.dnsmasq_argv(NET, hosts_file=self.files["hosts"],
                                     pid_file=self.files["pid"], dhcp_script="/b/dhcpbridge",
                                     log_file=self.files["log"], user="root"))

    async def _ensure_fresh(self) -> None:
        await self.host.ensure_network(NET)
        restore = self.runner.calls_matching(["iptables-restore"])
        self.assertEqual(self.runner.commands(), [
            ("ip", "-j", "link", "show"),
            SYSCTLS,
            ("ip", "link", "add", "novabr100", "type", "bridge"),
            ("ip", "link", "add", "novavx100", "type", "vxlan", "id", "100", "dstport", "4789"),
            ("ip", "link", "set", "dev", "novavx100", "master", "novabr100"),
            ("ip", "link", "set", "dev", "novavx100", "up"),
            ("ip", "link", "set", "dev", "novabr100", "up"),
            ("ip", "addr", "replace", "10.0.5.1/24", "dev", "novabr100"),
            self.dnsmasq_argv(),
            ("iptables-save", "-t", "nat"),
            ("iptables-restore", "--noflush")])
        self.assertEqual({c.netns for c in self.runner.calls}, {NS})
        self.assertIn(b"-A nova-snat-novabr100 -s 10.0.5.0/24 -o eth9 -j MASQUERADE",
                      restore[0].input)
        env = self.runner.calls_matching(["dnsmasq"])[0].env
        self.assertEqual(env[EVENTS_ENV], os.path.join(self.state, "dhcp-events.jsonl"))
        self.assertNotIn(SOCKET_ENV, env)
        self.assertEqual(self.host.segment_kind, "vxlan")
        with open(self.files["hosts"], "rb") as f:
            self.assertEqual(f.read(), b"")

    def test_ensure_fresh(self) -> defer.Deferred:
        return self._go(self._ensure_fresh())

    def test_ensure_again_fills_nothing(self) -> defer.Deferred:
        async def go() -> None:
            await self._ensure_fresh()
            self.runner.calls.clear()
            self.runner.add_result(["ip", "-j", "link", "show"], stdout=_links(
                ("novabr100", None), ("novavx100", "novabr100")), times=1)
            await self.host.ensure_network(NET)
            self.assertEqual(self.runner.commands(), [
                ("ip", "-j", "link", "show"),
                ("ip", "link", "set", "dev", "novavx100", "up"),
                ("ip", "link", "set", "dev", "novabr100", "up"),
                ("ip", "addr", "replace", "10.0.5.1/24", "dev", "novabr100"),
                ("iptables-save", "-t", "nat"), ("iptables-restore", "--noflush")])
            # Links that are up are left alone.
            self.runner.calls.clear()
            self.runner.add_result(["ip", "-j", "link", "show"], stdout=_links(
                ("novabr100", None), ("novavx100", "novabr100"), up=True))
            await self.host.ensure_network(NET)
            self.assertEqual(self.runner.commands(), [
                ("ip", "-j", "link", "show"),
                ("ip", "addr", "replace", "10.0.5.1/24", "dev", "novabr100"),
                ("iptables-save", "-t", "nat"), ("iptables-restore", "--noflush")])
        return self._go(go())

    def test_dhcp_hosts_hup(self) -> defer.Deferred:
        async def go() -> None:
            await self._ensure_fresh()
            self.runner.calls.clear()
            entry = ln.DhcpHost("02:00:00:00:00:0a", "i-0000000a", "10.0.5.10")
            self.assertTrue(await self.host.update_dhcp_hosts(NET, [entry]))
            self.assertFalse(await self.host.update_dhcp_hosts(NET, [entry]))
            self.assertEqual(self.runner.commands(), [("kill", "-HUP", "4242")])
            with open(self.files["hosts"], "rb") as f:
                self.assertEqual(f.read(), b"02:00:00:00:00:0a,i-0000000a,10.0.5.10\n")
        return self._go(go())

    def test_dhcp_hosts_outside_network_refused(self) -> defer.Deferred:
        async def go() -> None:
            for ip in ("10.0.6.10", "10.0.5.1", "10.0.5.255"):
                with self.assertRaises(InvalidIdentifier):
                    await self.host.update_dhcp_hosts(
                        NET, [ln.DhcpHost("02:00:00:00:00:0a", "a", ip)])
            self.assertEqual(self.runner.calls, [])
        return self._go(go())

    def test_remove_refuses_with_guest_then_removes(self) -> defer.Deferred:
        async def go() -> None:
            await self._ensure_fresh()
            self.runner.calls.clear()
            self.runner.add_result(["ip", "-j", "link", "show"], stdout=_links(
                ("novabr100", None), ("novavx100", "novabr100"), ("vnet0", "novabr100")),
                times=1)
            with self.assertRaises(NetworkInUse):
                await self.host.remove_network(NET)
            self.runner.add_result(["ip", "-j", "link", "show"], stdout=_links(
                ("novabr100", None), ("novavx100", "novabr100")))
            self.runner.add_result(["iptables-save"], stdout=(
                b"*nat\n:POSTROUTING ACCEPT [0:0]\n:nova-POSTROUTING - [0:0]\n"
                b":nova-snat-novabr100 - [0:0]\n-A POSTROUTING -j nova-POSTROUTING\nCOMMIT\n"))
            await self.host.remove_network(100)
            self.assertEqual(self.runner.commands()[1:], [
                ("ip", "-j", "link", "show"), ("kill", "-TERM", "4242"),
                ("iptables-save", "-t", "nat"), ("iptables-restore", "--noflush"),
                ("ip", "link", "delete", "dev", "novavx100"),
                ("ip", "link", "delete", "dev", "novabr100")])
            self.assertFalse(os.path.exists(self.files["dir"]))
        return self._go(go())

    def test_rebuild_removes_stale_keeps_used(self) -> defer.Deferred:
        async def go() -> None:
            self.runner.add_result(["ip", "-j", "link", "show"], stdout=_links(
                ("novabr7", None), ("novavx7", "novabr7"), ("novabr8", None),
                ("vnet3", "novabr8"), ("eth0", None)))
            kept = await self.host.rebuild([])
            self.assertEqual(kept, ["novabr8"])
            deleted = [c[-1] for c in self.runner.commands() if c[:3] == ("ip", "link", "delete")]
            self.assertEqual(deleted, ["novavx7", "novabr7"])
        return self._go(go())

    def test_floating_ip(self) -> defer.Deferred:
        async def go() -> None:
            await self.host.ensure_floating_ip("192.0.2.9", "10.0.5.4")
            self.assertEqual(self.runner.commands()[0],
                             ("ip", "addr", "replace", "192.0.2.9/32", "dev", "eth9"))
            self.assertIn(b"-A nova-fdnat-192.0.2.9 -d 192.0.2.9/32 -j DNAT --to-destination"
                          b" 10.0.5.4", self.runner.calls[-1].input)
            self.runner.calls.clear()
            self.runner.add_result(["ip", "addr", "del"], exit_code=2,
                                   stderr=b"RTNETLINK answers: Cannot assign requested address")
            await self.host.remove_floating_ip("192.0.2.9")
            self.assertEqual(self.runner.commands(), [
                ("iptables-save", "-t", "nat"),
                ("ip", "addr", "del", "192.0.2.9/32", "dev", "eth9")])
            with self.assertRaises(InvalidIdentifier):
                await self.host.ensure_floating_ip("192.0.2.9; x", "10.0.5.4")
        return self._go(go())

    def test_vlan_when_kernel_has_8021q(self) -> defer.Deferred:
        async def go() -> None:
            os.makedirs(os.path.join(self.proc, "net", "vlan"))
            open(os.path.join(self.proc, "net", "vlan", "config"), "w").close()
            host = NetworkHost(self.runner, NS, self.state, clock=self.clock, run_in_thread=run_now,
                               segment=SegmentConfig(vlan_parent="eth1"), proc_dir=self.proc,
                               dhcp_script="/b/d")
            await host.ensure_network(NET)
            self.assertEqual(host.segment_kind, "vlan")
            self.assertIn(("ip", "link", "add", "link", "eth1", "name", "novavl100", "type",
                           "vlan", "id", "100"), self.runner.commands())
        return self._go(go())

    def test_vlan_tried_then_vxlan(self) -> defer.Deferred:
        async def go() -> None:
            self.runner.add_result(["ip", "link", "add", "link"], exit_code=2,
                                   stderr=b"Error: Unknown device type.")
            host = NetworkHost(self.runner, NS, self.state, clock=self.clock, run_in_thread=run_now,
                               segment=SegmentConfig(vlan_parent="eth1",
                                                     vxlan_remotes=["192.0.2.2", "192.0.2.3"]),
                               proc_dir=self.proc, dhcp_script="/b/d")
            await host.ensure_network(NET)
            self.assertEqual(host.segment_kind, "vxlan")
            cmds = self.runner.commands()
            self.assertIn(("ip", "link", "add", "novavx100", "type", "vxlan", "id", "100",
                           "dstport", "4789", "remote", "192.0.2.2"), cmds)
            self.assertIn(("bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "novavx100",
                           "dst", "192.0.2.3"), cmds)
        return self._go(go())

    def test_bad_config_refused(self) -> None:
        for bad in (dict(kind="gre"), dict(kind="vlan"), dict(vlan_parent="eth1 x"),
                    dict(vxlan_remotes=["10.0.0.1", "x"]), dict(vxlan_group="239.1.1.1")):
            self.assertRaises(InvalidIdentifier, SegmentConfig, **bad)
        self.assertRaises(InvalidIdentifier, NetworkHost, self.runner, "bad ns", self.state,
                          clock=self.clock, run_in_thread=run_now)
