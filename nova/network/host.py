"""
L{NetworkHost}: applies networks, DHCP entries, floating IPs, the metadata
redirect and instance filters to one host (a network namespace, or the
root one).

A network host (nova-network) gets whole networks: bridge, segment,
gateway address, dnsmasq, outbound NAT (L{NetworkHost.ensure_network}). A
compute host gets only the bridge and segment its guests plug into
(L{NetworkHost.ensure_bridge}) and the guests' filter chains
(L{NetworkHost.apply_instance_filters}). One host can be both.

Everything it makes carries the C{nova} prefix (links C{novabr*},
C{novavx*}, C{novavl*}, a flat network's configured bridge; iptables chains
C{nova-*}; files under its state directory), every operation is idempotent,
and every operation first reads what the host has (C{ip -j link show},
C{iptables-save}, dnsmasq pid files), so that a restarted nova fills in
what is missing and never disturbs a running guest. The commands come from
L{nova.network.linux_net} and L{nova.network.linux_net_iptables}; the
runner executes them without a shell.

A VLAN network's segment between hosts is an 802.1Q interface where the
kernel has 8021q and a trunk interface is configured, else a VXLAN
interface (VNI = VLAN id); see L{nova.network.host_segments}. A flat
network has no segment of nova's: the configured C{flat_interface}, if
any, is enslaved to its bridge (and never deleted). See
C{docs/network-host.md}.
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Sequence

from twisted.internet import defer
from twisted.logger import Logger

from nova.exception import ClientError
from nova.network import linux_net as ln
from nova.network import linux_net_iptables as ipt
from nova.network.dhcp_client import SOCKET_ENV, check_socket_path
from nova.network.host_dnsmasq import DnsmasqControl
from nova.network.host_firewall import FirewallMixin
from nova.network.host_segments import SegmentConfig, Segments
from nova.network.linux_net_iptables import InstanceFilter, SecurityRule
from nova.utils import validate
from nova.utils.files import write_atomically
from nova.utils.process import CommandNotFound, IProcessRunner
from nova.utils.validate import InvalidIdentifier

log = Logger()

__all__ = ["NetworkHost", "SegmentConfig", "NetworkInUse", "InstanceFilter", "SecurityRule",
           "DEFAULT_DHCP_SCRIPT", "EVENTS_ENV", "SOCKET_ENV"]

#: The lease script shipped in C{bin/}.
DEFAULT_DHCP_SCRIPT = str(Path(__file__).resolve().parents[2] / "bin" / "nova-dhcpbridge")
#: The environment variable naming the lease script's JSON-lines event file.
EVENTS_ENV = "NOVA_DHCPBRIDGE_EVENTS"
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_BRIDGE_NF = "net.bridge.bridge-nf-call-iptables"
_FORWARD = "net.ipv4.ip_forward"


class NetworkInUse(ClientError):
    """A network's bridge still has guests plugged in."""

    code = "InvalidNetwork.InUse"


def _vlan_of_bridge(bridge: str) -> int | None:
    # Only novabr<vlan> names a VLAN network; any other bridge is flat.
    return ln.vlan_from_name(bridge) if bridge.startswith(ln.BRIDGE_PREFIX) else None


class NetworkHost(FirewallMixin):
    """
    One host's bridges, segments, dnsmasq daemons, NAT and filters.

    Operations are serialised (one at a time) and idempotent.
    """

    def __init__(self, runner: IProcessRunner, netns: str | None, state_dir: str, *,
                 clock: Any, segment: SegmentConfig = SegmentConfig(),
                 lease_time: int = 120, public_interface: str | None = None,
                 routing_source_ip: str | None = None, flat_interface: str | None = None,
                 dhcp_script: str = DEFAULT_DHCP_SCRIPT,
                 dhcp_event_socket: str | None = None, proc_dir: str = "/proc",
                 dnsmasq: str = "dnsmasq", dnsmasq_user: str | None = "root",
                 run_in_thread: Callable[..., Awaitable[Any]]) -> None:
        """
        @param runner: runs the host commands.
        @param netns: the host's network namespace (must exist), or C{None}
            for the root namespace.
        @param state_dir: where hosts files, pid files, logs and the DHCP
            event file live (created); must be readable by dnsmasq's user.
        @param clock: an L{IReactorTime}, for waiting on a stopping dnsmasq.
        @param run_in_thread: runs the (fsync'd) file writes off the reactor thread.
        @param segment: how VLAN networks' segments are made.
        @param lease_time: DHCP lease seconds.
        @param public_interface: where floating IPs are added and through
            which outbound NAT applies (C{None}: NAT whatever the outgoing
            interface; floating IPs then cannot be ensured).
        @param routing_source_ip: SNAT outbound traffic to this address
            instead of MASQUERADE.
        @param flat_interface: an interface enslaved to flat networks'
            bridges (nova never deletes it); C{None}: none.
        @param dhcp_script: the lease script dnsmasq runs.
        @param dhcp_event_socket: the unix socket the lease script sends its
            events to first (C{NOVA_DHCPBRIDGE_SOCKET} in dnsmasq's
            environment); C{None}: events go to L{events_file} only.
        @param proc_dir: C{/proc} (tests use a directory of their own).
        @param dnsmasq: the dnsmasq program.
        @param dnsmasq_user: the account dnsmasq runs as. C{root} by default
            because it rereads the hosts file on SIGHUP and nova's state
            directory is private; C{None} (dnsmasq's C{nobody}) where every
            directory above C{state_dir} is world-searchable.
        """
        self.netns = validate.netns_name(netns) if netns is not None else None
        self.state_dir = os.path.abspath(state_dir)
        self.events_file = os.path.join(self.state_dir, "dhcp-events.jsonl")
        self._runner = runner
        self._lease_time = lease_time
        self._public = validate.interface_name(public_interface) if public_interface else None
        self._source_ip = (validate.ipv4_address(routing_source_ip)
                           if routing_source_ip else None)
        self._flat = validate.interface_name(flat_interface) if flat_interface else None
        self._dhcp_script = dhcp_script
        self._socket = check_socket_path(dhcp_event_socket) if dhcp_event_socket else None
        self._proc_dir = proc_dir
        self._dnsmasq_program = dnsmasq
        self._dnsmasq_user = dnsmasq_user
        self.dnsmasq = DnsmasqControl(runner, self.netns, clock, proc_dir=proc_dir)
        self._run_in_thread = run_in_thread
        self._lock = defer.DeferredLock()
        self._segments = Segments(segment, self._run, proc_dir, self.netns or "(root)")
        self._sysctls_set: set[str] = set()

    # -- helpers ---------------------------------------------------------

    async def _run(self, argv: Sequence[str], **kw: Any) -> Any:
        return await self._runner.run(list(argv), netns=self.netns, **kw)

    async def _locked(self, fn: Any, *args: Any) -> Any:
        await self._lock.acquire()
        try:
            return await fn(*args)
        finally:
            self._lock.release()

    async def links(self) -> dict[str, dict[str, Any]]:
        """@return: interface name -> its C{ip -j link show} record."""
        result = await self._run(ln.link_list())
        return {link["ifname"]: link for link in json.loads(result.stdout or b"[]")}

    def files(self, network: ln.NetworkSpec | str | int) -> dict[str, str]:
        """
        @param network: a network, its bridge name, or a VLAN id.
        @return: the network's C{hosts}, C{pid} and C{log} file paths and its C{dir}.
        """
        bridge = self._bridge_of(network)[0]
        base = os.path.join(self.state_dir, bridge)
        return {"hosts": os.path.join(base, "hosts"), "pid": os.path.join(base, "dnsmasq.pid"),
                "log": os.path.join(base, "dnsmasq.log"), "dir": base}

    @staticmethod
    def _bridge_of(network: ln.NetworkSpec | str | int) -> tuple[str, int | None]:
        if isinstance(network, ln.NetworkSpec):
            return network.bridge, network.vlan
        if isinstance(network, str):
            return validate.interface_name(network), _vlan_of_bridge(network)
        return ln.bridge_name(network), network

    @property
    def segment_kind(self) -> str | None:
        """C{vlan} or C{vxlan} once decided (C{None} before the first VLAN network)."""
        return self._segments.kind

    async def _ensure_sysctls(self, *, forwarding: bool) -> None:
        # Per namespace: bridged guest-to-guest traffic passes iptables only
        # with bridge-nf-call-iptables (br_netfilter loaded), and a network
        # host routes between networks and to the public side.
        wanted: dict[str, int] = {}
        if forwarding and _FORWARD not in self._sysctls_set:
            wanted[_FORWARD] = 1
        if _BRIDGE_NF not in self._sysctls_set:
            if os.path.exists(os.path.join(self._proc_dir, "sys", *_BRIDGE_NF.split("."))):
                wanted[_BRIDGE_NF] = 1
            else:
                log.warn("br_netfilter is not loaded: traffic between guests on one bridge"
                         " is not filtered")
                self._sysctls_set.add(_BRIDGE_NF)
        if not wanted:
            return
        self._sysctls_set |= set(wanted)
        try:
            result = await self._run(ln.sysctl_write(wanted), check=False)
        except CommandNotFound as e:
            log.error("cannot set {settings} on {ns}: {e}", settings=wanted,
                      ns=self.netns or "(root)", e=e)
            return
        if result.exit_code != 0:
            log.error("cannot set {settings} on {ns}: {err}", settings=wanted,
                      ns=self.netns or "(root)", err=result.stderr.decode(errors="replace"))

    # -- segments and bridges ---------------------------------------------

    async def _link_up(self, name: str, links: dict[str, dict[str, Any]]) -> None:
        if "UP" not in links.get(name, {}).get("flags", ()):
            await self._run(ln.link_up(name))

    async def _enslave(self, name: str, bridge: str, links: dict[str, dict[str, Any]]) -> None:
        if links.get(name, {}).get("master") != bridge:
            await self._run(ln.link_set_master(name, bridge))
        await self._link_up(name, links)

    async def _ensure_bridge(self, network: ln.NetworkSpec,
                             links: dict[str, dict[str, Any]]) -> None:
        bridge = network.bridge
        if bridge not in links:
            await self._run(ln.bridge_add(bridge))
        if network.vlan is not None:
            await self._enslave(await self._segments.ensure(network.vlan, links), bridge, links)
        elif self._flat is not None:
            await self._enslave(self._flat, bridge, links)
        await self._link_up(bridge, links)

    async def ensure_bridge(self, network: ln.NetworkSpec) -> None:
        """
        What a compute host needs to plug guests into the network: its
        segment interface and its bridge, up, without address, dnsmasq or
        NAT. Nothing is run but the link listing when they exist (made
        here before, or by L{ensure_network} in the same namespace).

        @param network: the network.
        @raise nova.utils.process.CommandFailed: when a command fails.
        """
        await self._locked(self._ensure_bridge_only, network)

    async def _ensure_bridge_only(self, network: ln.NetworkSpec) -> None:
        links = await self.links()
        await self._ensure_sysctls(forwarding=False)
        await self._ensure_bridge(network, links)

    async def remove_bridge_if_unused(self, network: ln.NetworkSpec) -> bool:
        """
        Remove the network's bridge and segment interface from a compute
        host once no guest is plugged in. A bridge with an address is a
        network host's (L{ensure_network}) and stays; so does a bridge
        without the C{nova} prefix, and the C{flat_interface}.

        @param network: the network.
        @return: whether the bridge was removed.
        """
        return await self._locked(self._remove_bridge_if_unused, network)

    async def _remove_bridge_if_unused(self, network: ln.NetworkSpec) -> bool:
        links = await self.links()
        bridge = network.bridge
        if bridge not in links or self._guests(bridge, network.vlan, links) \
                or not bridge.startswith("nova"):
            return False
        shown = await self._run(ln.address_list(bridge))
        for link in json.loads(shown.stdout or b"[]"):
            if any(a.get("family") == "inet" for a in link.get("addr_info", ())):
                return False
        for name in network.segment_names:
            if name in links:
                await self._run(ln.link_delete(name))
        await self._run(ln.link_delete(bridge))
        return True

    # -- networks ----------------------------------------------------------

    async def ensure_network(self, network: ln.NetworkSpec) -> None:
        """
        Make the network's bridge, segment interface, gateway address,
        dnsmasq and outbound NAT exist (what exists is left as it is), with
        IP forwarding on.

        @param network: the network.
        @raise nova.utils.process.CommandFailed: when a command fails.
        """
        await self._locked(self._ensure_network, network)

    async def _ensure_network(self, network: ln.NetworkSpec) -> None:
        links = await self.links()
        await self._ensure_sysctls(forwarding=True)
        await self._ensure_bridge(network, links)
        await self._run(ln.address_replace(network.gateway_interface, network.bridge))
        files = self.files(network)
        if not os.path.exists(files["hosts"]):
            await self._run_in_thread(write_atomically, Path(files["hosts"]), b"")
        await self._ensure_dnsmasq(network)
        await self._apply_table("nat", {ipt.snat_chain(network.bridge): ipt.network_snat_rules(
            network.cidr, source_ip=self._source_ip, out_interface=self._public)})

    def _dnsmasq_argv(self, network: ln.NetworkSpec) -> list[str]:
        files = self.files(network)
        return ln.dnsmasq_argv(network, hosts_file=files["hosts"], pid_file=files["pid"],
                               dhcp_script=self._dhcp_script, lease_time=self._lease_time,
                               log_file=files["log"], dnsmasq=self._dnsmasq_program,
                               user=self._dnsmasq_user)

    async def _ensure_dnsmasq(self, network: ln.NetworkSpec) -> None:
        argv = self._dnsmasq_argv(network)
        pid_file = self.files(network)["pid"]
        found = self.dnsmasq.running(pid_file)
        if found is not None:
            if found[1][1:] == argv[1:]:
                return
            log.info("dnsmasq of {br} runs with other options: restarting it",
                     br=network.bridge)
            await self.dnsmasq.stop(pid_file)
        env = {"PATH": _PATH, EVENTS_ENV: self.events_file}
        if self._socket is not None:
            env[SOCKET_ENV] = self._socket
        await self.dnsmasq.start(argv, env, pid_file)

    async def remove_network(self, network: ln.NetworkSpec | str | int, *,
                             force: bool = False) -> None:
        """
        Stop the network's dnsmasq, remove its NAT chain, segment interface,
        bridge (when it carries the C{nova} prefix; another bridge only
        loses the gateway address) and files. Absent parts are skipped.

        @param network: the network, its bridge name, or its VLAN id.
        @param force: remove the bridge even with guests plugged in.
        @raise NetworkInUse: when guests are plugged in and not C{force}.
        """
        bridge, vlan = self._bridge_of(network)
        gateway = network.gateway_interface if isinstance(network, ln.NetworkSpec) else None
        await self._locked(self._remove_network, bridge, vlan, force, gateway)

    def _guests(self, bridge: str, vlan: int | None,
                links: dict[str, dict[str, Any]]) -> list[str]:
        ours = {ln.vxlan_name(vlan), ln.vlan_interface_name(vlan)} if vlan is not None else set()
        if self._flat is not None:
            ours.add(self._flat)
        return sorted(name for name, link in links.items()
                      if link.get("master") == bridge and name not in ours)

    async def _remove_network(self, bridge: str, vlan: int | None, force: bool,
                              gateway: str | None = None) -> None:
        links = await self.links()
        guests = self._guests(bridge, vlan, links)
        if guests and not force:
            raise NetworkInUse(f"bridge {bridge} still has {', '.join(guests)}")
        files = self.files(bridge)
        await self.dnsmasq.stop(files["pid"])
        await self._apply_table("nat", {}, [ipt.snat_chain(bridge)])
        segments = [ln.vxlan_name(vlan), ln.vlan_interface_name(vlan)] if vlan else []
        for name in segments:
            if name in links:
                await self._run(ln.link_delete(name))
        if bridge in links and bridge.startswith("nova"):
            await self._run(ln.link_delete(bridge))
        elif bridge in links and gateway is not None:
            await self._run(ln.address_delete(gateway, bridge), check=False)
        for key in ("hosts", "log"):
            try:
                os.unlink(files[key])
            except FileNotFoundError:
                pass
        try:
            os.rmdir(files["dir"])
        except OSError:
            pass  # missing, or something not ours in it

    async def update_dhcp_hosts(self, network: ln.NetworkSpec,
                                entries: Iterable[ln.DhcpHost]) -> bool:
        """
        Write the network's static DHCP entries and make dnsmasq reread them.

        @param network: the network (already ensured).
        @param entries: every entry the network is to have.
        @return: whether the file changed.
        @raise InvalidIdentifier: for an entry outside the network, or on
            its gateway, network or broadcast address.
        """
        content = ln.dhcp_hosts_content(entries)
        net = ipaddress.IPv4Network(network.cidr)
        for line in content.decode().splitlines():
            ip = ipaddress.IPv4Address(line.rsplit(",", 1)[1])
            if ip not in net or str(ip) == network.gateway or ip in (
                    net.network_address, net.broadcast_address):
                raise InvalidIdentifier(f"DHCP address {ip} is not a guest address of"
                                        f" {network.cidr}")
        return await self._locked(self._update_dhcp_hosts, network, content)

    async def _update_dhcp_hosts(self, network: ln.NetworkSpec, content: bytes) -> bool:
        files = self.files(network)
        path = Path(files["hosts"])
        try:
            changed = path.read_bytes() != content
        except FileNotFoundError:
            changed = True
        if changed:
            await self._run_in_thread(write_atomically, path, content)
        if self.dnsmasq.running(files["pid"]) is None:
            await self._ensure_dnsmasq(network)
        elif changed:
            await self.dnsmasq.reload(files["pid"])
        return changed

    async def rebuild(self, networks: Iterable[ln.NetworkSpec], *,
                      metadata_port: int | None = None,
                      metadata_dnat_to: tuple[str, int] | None = None) -> list[str]:
        """
        After a restart: ensure every network (and the metadata redirect
        when a port is given), and remove nova's networks that are no
        longer wanted unless guests still use their bridge. The metadata
        redirect and instance filters are never removed here.

        @param networks: every network this host serves.
        @param metadata_port: as for L{ensure_metadata_redirect}.
        @param metadata_dnat_to: as for L{ensure_metadata_redirect}.
        @return: the bridges of unwanted networks kept because guests use them.
        """
        wanted = {n.bridge: n for n in networks}
        for network in wanted.values():
            await self.ensure_network(network)
        if metadata_port is not None:
            await self.ensure_metadata_redirect(metadata_port, dnat_to=metadata_dnat_to)
        return await self._locked(self._remove_stale, set(wanted))

    async def _remove_stale(self, wanted: set[str]) -> list[str]:
        links = await self.links()
        found: dict[str, int | None] = {}
        for name in links:
            vlan = ln.vlan_from_name(name)
            if vlan is not None:
                found[ln.bridge_name(vlan)] = vlan
        table = await self._saved("nat")
        for chain in (table.chains if table else ()):
            if chain.startswith("nova-snat-"):
                self._found(found, chain[len("nova-snat-"):])
        if os.path.isdir(self.state_dir):
            for entry in os.listdir(self.state_dir):
                path = os.path.join(self.state_dir, entry)
                if os.path.isdir(path) and any(os.path.exists(os.path.join(path, f))
                                               for f in ("hosts", "dnsmasq.pid")):
                    self._found(found, entry)
        kept = []
        for bridge in sorted(set(found) - wanted):
            if self._guests(bridge, found[bridge], links):
                log.warn("bridge {br} is not wanted but guests use it: kept", br=bridge)
                kept.append(bridge)
                continue
            await self._remove_network(bridge, found[bridge], False)
        return kept

    @staticmethod
    def _found(found: dict[str, int | None], name: str) -> None:
        try:
            found.setdefault(validate.interface_name(name), _vlan_of_bridge(name))
        except InvalidIdentifier:
            pass  # not a name nova gives
