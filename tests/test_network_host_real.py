"""
NetworkHost against the real kernel, dnsmasq and iptables, inside network
namespaces this test creates (and removes, with all they hold).

A host namespace gets a project network (bridge, VXLAN, gateway, dnsmasq,
NAT); a client namespace, joined to the bridge by a veth pair, takes an
address by DHCP with busybox udhcpc. Then everything is removed and the
test checks that nothing nova-prefixed is left.

The flat scenario adds the instance filter (a TCP connection from the host
namespace to the client is refused until a rule allows its port), the
metadata redirect (the client's 169.254.169.254:80 reaches a listener on
the redirected port in the host namespace) and the lease event delivered
to a L{DhcpEventServer} over its unix socket.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import uuid

from twisted.internet import defer, task, threads
from twisted.trial import unittest

from nova.network import linux_net as ln
from nova.network.dhcp_events import DhcpEventServer
from nova.network.host import InstanceFilter, NetworkHost, NetworkInUse, SecurityRule
from nova.utils.process import ProcessRunner, find_executable

_SEARCH = os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin", "/sbin"])
_NEEDED = ("ip", "dnsmasq", "iptables-restore", "iptables-save", "ebtables-restore",
           "ebtables-save", "busybox", "kill", "sysctl")


class RecordingRunner:
    """Runs commands with the real runner and remembers their argv."""

    def __init__(self, runner: ProcessRunner) -> None:
        self.runner = runner
        self.commands: list[tuple[str, ...]] = []

    async def run(self, argv, **kw):
        self.commands.append(tuple(argv))
        return await self.runner.run(argv, **kw)


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    absent = [p for p in _NEEDED if find_executable(p, _SEARCH) is None]
    if absent:
        return f"not installed: {', '.join(absent)} (run tools/install-debian-packages)"
    return None


class RealNetworkHostTests(unittest.TestCase):
    """One network, built, used by a DHCP client, and removed."""

    skip = _missing()

    def setUp(self) -> None:
        from twisted.internet import reactor
        self.reactor = reactor
        self.runner = ProcessRunner(reactor, search_path=_SEARCH)
        tag = uuid.uuid4().hex[:8]
        self.host_ns = f"nvt-{tag}-h"
        self.client_ns = f"nvt-{tag}-c"
        self.state = os.path.abspath(self.mktemp())
        os.makedirs(self.state)
        return defer.Deferred.fromCoroutine(self._namespaces())

    async def _namespaces(self) -> None:
        for ns in (self.host_ns, self.client_ns):
            await self.runner.run(["ip", "netns", "add", ns])
            self.addCleanup(lambda ns=ns: defer.Deferred.fromCoroutine(self._drop(ns)))
            await self.runner.run(["ip", "link", "set", "lo", "up"], netns=ns)

    async def _drop(self, ns: str) -> None:
        # Kill whatever still runs in it (a dnsmasq left by a failure), then delete it.
        pids = await self.runner.run(["ip", "netns", "pids", ns], check=False)
        for pid in pids.stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        await self.runner.run(["ip", "netns", "delete", ns], check=False)

    async def _wait_for(self, predicate, what: str) -> None:
        # Polls a condition with a deadline: dnsmasq runs the lease script
        # asynchronously after it answered the client.
        for _ in range(200):
            if predicate():
                return
            await task.deferLater(self.reactor, 0.05, lambda: None)
        self.fail(f"timed out waiting for {what}")

    async def _listening(self, port: int, netns: str) -> bool:
        shown = await self.runner.run(["busybox", "netstat", "-ltn"], netns=netns)
        return f":{port} ".encode() in shown.stdout

    async def _wait_listening(self, port: int, netns: str) -> None:
        for _ in range(200):
            if await self._listening(port, netns):
                return
            await task.deferLater(self.reactor, 0.05, lambda: None)
        self.fail(f"nothing listens on {port} in {netns}")

    def _serve_once(self, port: int, netns: str, answer: str) -> defer.Deferred:
        # busybox nc: accept one connection, write the answer, exit.
        return defer.Deferred.fromCoroutine(self.runner.run(
            ["busybox", "nc", "-l", "-p", str(port), "-e", "/bin/echo", answer],
            netns=netns, timeout=30, check=False))

    async def _connect(self, address: str, port: int, netns: str, wait: int = 10) -> bytes:
        # -w: how long nc waits for the connection and for the answer; a
        # served connection ends sooner, as soon as the server's echo exits
        done = await self.runner.run(["busybox", "nc", "-w", str(wait), address, str(port)],
                                     netns=netns, timeout=30, check=False)
        return done.stdout

    async def _dhcp(self, host: NetworkHost, network: ln.NetworkSpec, ip: str) -> None:
        got = await self.runner.run(
            ["busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "10", "-T", "1",
             "-s", "/bin/true"], netns=self.client_ns, timeout=30, check=False)
        if f"lease of {ip} obtained".encode() not in got.stdout + got.stderr:
            log_file = host.files(network)["log"]
            log = open(log_file).read() if os.path.exists(log_file) else "(no dnsmasq log)"
            self.fail(f"no DHCP lease: {(got.stdout + got.stderr).decode()}\ndnsmasq: {log}")

    async def _nova_leftovers(self) -> list[str]:
        links = await self.runner.run(["ip", "-j", "link", "show"], netns=self.host_ns)
        names = [link["ifname"] for link in json.loads(links.stdout)
                 if link["ifname"].startswith("nova")]
        for table in ("nat", "filter"):
            saved = await self.runner.run(["iptables-save", "-t", table], netns=self.host_ns)
            names += [line for line in saved.stdout.decode().splitlines() if "nova" in line]
        saved = await self.runner.run(["ebtables-save", "-t", "filter"], netns=self.host_ns)
        names += [line for line in saved.stdout.decode().splitlines() if "nova" in line]
        pids = await self.runner.run(["ip", "netns", "pids", self.host_ns])
        names += [f"pid {p}" for p in pids.stdout.decode().split()]
        return names

    def test_network_dhcp_and_cleanup(self) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(self._scenario())

    async def _scenario(self) -> None:
        host = NetworkHost(self.runner, self.host_ns, self.state, clock=self.reactor,
                           run_in_thread=threads.deferToThread,
                           public_interface="nvtpub")
        network = ln.NetworkSpec(vlan=123, cidr="10.77.3.0/24")
        mac = "02:00:0a:4d:03:09"
        run_h = lambda argv, **kw: self.runner.run(argv, netns=self.host_ns, **kw)  # noqa: E731
        # A "public" link for the floating IP: a veth whose peer stays in the host ns.
        await run_h(["ip", "link", "add", "nvtpub", "type", "veth", "peer", "name", "nvtpub2"])

        await host.ensure_network(network)
        await host.ensure_network(network)  # idempotent
        self.assertEqual(host.segment_kind, "vxlan")  # this kernel has no 8021q
        await host.update_dhcp_hosts(network, [ln.DhcpHost(mac, "guest-one", "10.77.3.9")])

        # The "guest": a veth with one end on the bridge, the other in the client ns.
        await run_h(["ip", "link", "add", "nvtguest", "type", "veth", "peer", "name", "eth0",
                     "netns", self.client_ns])
        await run_h(["ip", "link", "set", "nvtguest", "master", network.bridge, "up"])
        await self.runner.run(["ip", "link", "set", "eth0", "address", mac, "up"],
                              netns=self.client_ns)
        await self._dhcp(host, network, "10.77.3.9")
        await self._wait_for(lambda: os.path.exists(host.events_file)
                             and b'"add"' in open(host.events_file, "rb").read(),
                             "the lease script's add event")
        with open(host.events_file) as f:
            event = json.loads(f.readline())
        self.assertEqual((event["action"], event["mac"], event["ip"]),
                         ("add", mac, "10.77.3.9"))

        await host.ensure_floating_ip("10.77.200.5", "10.77.3.9")
        saved = await run_h(["iptables-save", "-t", "nat"])
        self.assertIn(b"-A nova-fdnat-10.77.200.5 -d 10.77.200.5/32 -j DNAT"
                      b" --to-destination 10.77.3.9", saved.stdout)
        self.assertIn(b"-A nova-snat-novabr123 -s 10.77.3.0/24 -o nvtpub -j MASQUERADE",
                      saved.stdout)

        # A restarted nova (a new NetworkHost) rebuilds without touching the guest.
        again = NetworkHost(self.runner, self.host_ns, self.state, clock=self.reactor,
                            run_in_thread=threads.deferToThread,
                            public_interface="nvtpub")
        self.assertEqual(await again.rebuild([]), ["novabr123"])  # kept: a guest uses it
        with self.assertRaises(NetworkInUse):
            await again.remove_network(network)

        await run_h(["ip", "link", "delete", "nvtguest"])
        await again.remove_floating_ip("10.77.200.5")
        await again.remove_network(network)
        await again.remove_network(network)  # idempotent
        await run_h(["ip", "link", "delete", "nvtpub"])
        self.assertEqual(await self._nova_leftovers(), [])
        self.assertFalse(os.path.exists(host.files(123)["dir"]))


    def test_flat_network_filter_metadata_and_lease_socket(self) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(self._flat_scenario())

    async def _flat_scenario(self) -> None:
        sock_dir = tempfile.mkdtemp(prefix="nvt-", dir="/tmp")  # short: unix socket paths
        self.addCleanup(shutil.rmtree, sock_dir, True)
        socket_path = os.path.join(sock_dir, "dhcp.sock")
        leased: defer.Deferred[dict] = defer.Deferred()

        async def handler(event: dict) -> None:
            if event["action"] == "add" and not leased.called:
                leased.callback(event)

        port = await DhcpEventServer.listen(self.reactor, socket_path, handler)
        self.addCleanup(port.stopListening)
        recorder = RecordingRunner(self.runner)
        host = NetworkHost(recorder, self.host_ns, self.state, clock=self.reactor,
                           run_in_thread=threads.deferToThread, dhcp_event_socket=socket_path)
        network = ln.NetworkSpec(cidr="10.77.4.0/24", bridge="novaflat")
        ip, gateway, mac, guest = "10.77.4.9", "10.77.4.1", "02:00:0a:4d:04:09", "i-0000004d"
        run_h = lambda argv, **kw: self.runner.run(argv, netns=self.host_ns, **kw)  # noqa: E731

        await host.ensure_network(network)
        recorder.commands.clear()
        await host.ensure_bridge(network)  # what a compute host in this namespace does
        self.assertEqual(recorder.commands, [("ip", "-j", "link", "show")])
        for key in ("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables"):
            shown = await run_h(["sysctl", "-n", key])
            self.assertEqual(shown.stdout.strip(), b"1", key)
        self.assertIsNone(host.segment_kind)  # flat: no segment
        await host.ensure_metadata_redirect(18775)
        # The guest's filter exists before it boots: only DHCP and replies pass.
        closed = InstanceFilter(ip, (), gateway, network.cidr)
        await host.apply_instance_filters({guest: closed})
        await host.update_dhcp_hosts(network, [ln.DhcpHost(mac, guest, ip)])

        await run_h(["ip", "link", "add", "nvtguest", "type", "veth", "peer", "name", "eth0",
                     "netns", self.client_ns])
        await run_h(["ip", "link", "set", "nvtguest", "master", "novaflat", "up"])
        run_c = lambda argv, **kw: self.runner.run(argv, netns=self.client_ns, **kw)  # noqa
        await run_c(["ip", "link", "set", "eth0", "address", mac, "up"])
        await self._dhcp(host, network, ip)
        event = await leased  # over the socket, not the file
        self.assertEqual((event["mac"], event["ip"], event["hostname"]), (mac, ip, guest))
        self.assertFalse(os.path.exists(host.events_file)
                         and b'"add"' in open(host.events_file, "rb").read())
        # udhcpc ran without a script: configure what it was given.
        await run_c(["ip", "addr", "add", f"{ip}/24", "dev", "eth0"])
        await run_c(["ip", "route", "add", "default", "via", gateway])

        # From the host namespace (locally generated: the OUTPUT path) to the guest.
        served = self._serve_once(2222, self.client_ns, "guest-port-open")
        await self._wait_listening(2222, self.client_ns)
        self.assertEqual(await self._connect(ip, 2222, self.host_ns, wait=1), b"")  # filtered
        await host.apply_instance_filters({guest: InstanceFilter(
            ip, (SecurityRule("tcp", 2222, 2222, "0.0.0.0/0"),), gateway, network.cidr)})
        self.assertEqual(await self._connect(ip, 2222, self.host_ns), b"guest-port-open\n")
        await served

        # The guest's metadata request reaches the proxy port in the host namespace.
        proxy = self._serve_once(18775, self.host_ns, "metadata-here")
        await self._wait_listening(18775, self.host_ns)
        self.assertEqual(await self._connect("169.254.169.254", 80, self.client_ns),
                         b"metadata-here\n")
        await proxy

        # Below IP: with its tap and MAC known, the guest's frames are
        # checked. Its own ARP is answered; ARP claiming another address
        # teaches the host nothing; frames with another MAC go nowhere.
        await host.apply_instance_filters({guest: InstanceFilter(
            ip, (), gateway, network.cidr, tap="nvtguest", mac=mac)})
        # answered: up to 5 requests over 5 s, done at the first reply (-f);
        # unanswered: one request, its reply awaited for 2 s
        answered = ["busybox", "arping", "-f", "-c", "5", "-w", "5", "-I", "eth0"]
        arping = ["busybox", "arping", "-c", "1", "-w", "2", "-I", "eth0"]
        own = await run_c([*answered, "-s", ip, gateway], check=False)
        self.assertEqual(own.exit_code, 0, own.stdout + own.stderr)
        stolen = "10.77.4.50"
        await run_c(["ip", "addr", "add", f"{stolen}/32", "dev", "eth0"])  # arping binds to it
        claimed = await run_c([*arping, "-s", stolen, gateway], check=False)
        self.assertEqual(claimed.exit_code, 1, claimed.stdout + claimed.stderr)  # no answer
        neighbours = await run_h(["ip", "neigh", "show", "dev", "novaflat"])
        self.assertNotIn(stolen.encode(), neighbours.stdout)
        await run_c(["ip", "link", "set", "eth0", "address", "02:00:0a:4d:04:99"])
        posing = await run_c([*arping, "-s", ip, gateway], check=False)
        self.assertEqual(posing.exit_code, 1, posing.stdout + posing.stderr)
        await run_c(["ip", "link", "set", "eth0", "address", mac])
        # without the frames' check (no MAC given), the same claim is learnt:
        # the check above is what stopped it
        await host.apply_instance_filters({guest: InstanceFilter(
            ip, (), gateway, network.cidr, tap="nvtguest")})
        claimed = await run_c([*answered, "-s", stolen, gateway], check=False)
        self.assertEqual(claimed.exit_code, 0, claimed.stdout + claimed.stderr)
        neighbours = await run_h(["ip", "neigh", "show", "dev", "novaflat"])
        self.assertIn(stolen.encode(), neighbours.stdout)

        await run_h(["ip", "link", "delete", "nvtguest"])
        await host.apply_instance_filters({}, exclusive=True)
        await host.remove_metadata_redirect()
        await host.remove_network(network)
        self.assertEqual(await self._nova_leftovers(), [])
        self.assertFalse(os.path.exists(host.files(network)["dir"]))
