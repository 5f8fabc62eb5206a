"""
L{NetworkHost}: applies project networks, DHCP entries, floating IPs and
instance filters to one network host (a network namespace, or the root one).

Everything it makes carries the C{nova} prefix (links C{novabr*},
C{novavx*}, C{novavl*}; iptables chains C{nova-*}; files under its state
directory), every operation is idempotent, and every operation first reads
what the host has (C{ip -j link show}, C{iptables-save}, dnsmasq pid files),
so that a restarted nova fills in what is missing and never disturbs a
running guest. The commands come from L{nova.network.linux_net} and
L{nova.network.linux_net_iptables}; the runner executes them without a shell.

The project segment between hosts is an 802.1Q interface where the kernel
has 8021q and a trunk interface is configured, else a VXLAN interface (VNI
= VLAN id); see L{SegmentConfig} and C{docs/network-host.md}.
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Sequence

import attr
from twisted.internet import defer
from twisted.logger import Logger

from nova.exception import ClientError
from nova.network import linux_net as ln
from nova.network import linux_net_iptables as ipt
from nova.network.host_dnsmasq import DnsmasqControl
from nova.utils import validate
from nova.utils.files import write_atomically
from nova.utils.process import CommandFailed, IProcessRunner
from nova.utils.validate import InvalidIdentifier

log = Logger()

__all__ = ["NetworkHost", "SegmentConfig", "NetworkInUse", "DEFAULT_DHCP_SCRIPT",
           "EVENTS_ENV"]

#: The lease script shipped in C{bin/}.
DEFAULT_DHCP_SCRIPT = str(Path(__file__).resolve().parents[2] / "bin" / "nova-dhcpbridge")
#: The environment variable naming the lease script's JSON-lines event file.
EVENTS_ENV = "NOVA_DHCPBRIDGE_EVENTS"
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class NetworkInUse(ClientError):
    """A network's bridge still has guests plugged in."""

    code = "InvalidNetwork.InUse"


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class SegmentConfig:
    """
    How a project network's segment reaches other hosts.

    @ivar kind: C{auto} (802.1Q when C{vlan_parent} is set and the kernel
        can, else VXLAN), C{vlan} or C{vxlan}.
    @ivar vlan_parent: the trunk interface 802.1Q interfaces are made on.
    @ivar vxlan_local: this host's tunnel address.
    @ivar vxlan_remotes: peer hosts' tunnel addresses (unicast flooding).
    @ivar vxlan_group: a multicast group instead of C{vxlan_remotes}.
    @ivar vxlan_dev: the underlay interface (needed with a group).
    @ivar vxlan_port: the UDP port.
    """

    kind: str = "auto"
    vlan_parent: str | None = None
    vxlan_local: str | None = None
    vxlan_remotes: tuple[str, ...] = attr.ib(default=(), converter=tuple)
    vxlan_group: str | None = None
    vxlan_dev: str | None = None
    vxlan_port: int = ln.VXLAN_PORT

    def __attrs_post_init__(self) -> None:
        if self.kind not in ("auto", "vlan", "vxlan"):
            raise InvalidIdentifier(f"segment kind {self.kind!r}: auto, vlan or vxlan")
        if self.kind == "vlan" and self.vlan_parent is None:
            raise InvalidIdentifier("802.1Q segments need vlan_parent")
        if self.vxlan_remotes and self.vxlan_group:
            raise InvalidIdentifier("VXLAN peers are remotes or a group, not both")
        # Build a probe command: it validates every field at once.
        ln.vxlan_add(1, local=self.vxlan_local, group=self.vxlan_group, dev=self.vxlan_dev,
                     remote=self.vxlan_remotes[0] if self.vxlan_remotes else None,
                     port=self.vxlan_port)
        for remote in self.vxlan_remotes:
            validate.ipv4_address(remote)
        if self.vlan_parent is not None:
            validate.interface_name(self.vlan_parent)


class NetworkHost:
    """
    One network host's bridges, segments, dnsmasq daemons and NAT.

    Operations are serialised (one at a time) and idempotent.
    """

    def __init__(self, runner: IProcessRunner, netns: str | None, state_dir: str, *,
                 clock: Any, segment: SegmentConfig = SegmentConfig(),
                 lease_time: int = 120, public_interface: str | None = None,
                 routing_source_ip: str | None = None,
                 dhcp_script: str = DEFAULT_DHCP_SCRIPT, proc_dir: str = "/proc",
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
        @param segment: how segments are made.
        @param lease_time: DHCP lease seconds.
        @param public_interface: where floating IPs are added and through
            which outbound NAT applies (C{None}: NAT whatever the outgoing
            interface; floating IPs then cannot be ensured).
        @param routing_source_ip: SNAT outbound traffic to this address
            instead of MASQUERADE.
        @param dhcp_script: the lease script dnsmasq runs.
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
        self._segment = segment
        self._lease_time = lease_time
        self._public = validate.interface_name(public_interface) if public_interface else None
        self._source_ip = (validate.ipv4_address(routing_source_ip)
                           if routing_source_ip else None)
        self._dhcp_script = dhcp_script
        self._proc_dir = proc_dir
        self._dnsmasq_program = dnsmasq
        self._dnsmasq_user = dnsmasq_user
        self.dnsmasq = DnsmasqControl(runner, self.netns, clock, proc_dir=proc_dir)
        self._run_in_thread = run_in_thread
        self._lock = defer.DeferredLock()
        self._kind: str | None = None if segment.kind == "auto" else segment.kind

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

    def files(self, vlan: int) -> dict[str, str]:
        """@return: the network's C{hosts}, C{pid} and C{log} file paths."""
        base = os.path.join(self.state_dir, ln.bridge_name(vlan))
        return {"hosts": os.path.join(base, "hosts"), "pid": os.path.join(base, "dnsmasq.pid"),
                "log": os.path.join(base, "dnsmasq.log"), "dir": base}

    @property
    def segment_kind(self) -> str | None:
        """C{vlan} or C{vxlan} once decided (C{None} before the first network)."""
        return self._kind

    async def _apply_table(self, table: str, write: dict[str, list[list[str]]],
                           delete: Iterable[str] = ()) -> None:
        saved = await self._run(ipt.iptables_save(table))
        current = ipt.parse_save(saved.stdout.decode("utf-8", "replace")).get(table)
        text = ipt.restore_input(table, current, write=write, delete=delete)
        if text.strip() == f"*{table}\nCOMMIT":
            return  # nothing of nova's here, nothing to do
        await self._run(ipt.iptables_restore(), input=text.encode("ascii"))

    # -- segments ----------------------------------------------------------

    async def _ensure_segment(self, vlan: int, bridge: str,
                              links: dict[str, dict[str, Any]]) -> str:
        seg = self._segment
        if self._kind is None:
            self._kind = "vxlan"
            if seg.vlan_parent is not None:
                name = ln.vlan_interface_name(vlan)
                if os.path.exists(os.path.join(self._proc_dir, "net", "vlan", "config")) \
                        or name in links:
                    self._kind = "vlan"
                else:  # no 8021q loaded: try once, it may load on demand
                    tried = await self._run(ln.vlan_add(vlan, seg.vlan_parent), check=False)
                    if tried.exit_code == 0:
                        self._kind = "vlan"
                        links[name] = {"ifname": name}
            log.info("network host {ns}: project segments are {kind}",
                     ns=self.netns or "(root)", kind=self._kind)
        if self._kind == "vlan":
            name = ln.vlan_interface_name(vlan)
            if name not in links:
                await self._run(ln.vlan_add(vlan, seg.vlan_parent))  # type: ignore[arg-type]
        else:
            name = ln.vxlan_name(vlan)
            if name not in links:
                remotes = list(seg.vxlan_remotes)
                await self._run(ln.vxlan_add(vlan, local=seg.vxlan_local,
                                             remote=remotes[0] if remotes else None,
                                             group=seg.vxlan_group, dev=seg.vxlan_dev,
                                             port=seg.vxlan_port))
                for remote in remotes[1:]:
                    await self._run(ln.vxlan_fdb_append(vlan, remote))
        if links.get(name, {}).get("master") != bridge:
            await self._run(ln.link_set_master(name, bridge))
        await self._run(ln.link_up(name))
        return name

    # -- networks ----------------------------------------------------------

    async def ensure_network(self, network: ln.NetworkSpec) -> None:
        """
        Make the network's bridge, segment interface, gateway address,
        dnsmasq and outbound NAT exist (what exists is left as it is).

        @param network: the network.
        @raise nova.utils.process.CommandFailed: when a command fails.
        """
        await self._locked(self._ensure_network, network)

    async def _ensure_network(self, network: ln.NetworkSpec) -> None:
        links = await self.links()
        bridge = network.bridge
        if bridge not in links:
            await self._run(ln.bridge_add(network.vlan))
        await self._ensure_segment(network.vlan, bridge, links)
        await self._run(ln.link_up(bridge))
        await self._run(ln.address_replace(network.gateway_interface, bridge))
        files = self.files(network.vlan)
        if not os.path.exists(files["hosts"]):
            await self._run_in_thread(write_atomically, Path(files["hosts"]), b"")
        await self._ensure_dnsmasq(network)
        await self._apply_table("nat", {ipt.snat_chain(network.vlan): ipt.network_snat_rules(
            network.cidr, source_ip=self._source_ip, out_interface=self._public)})

    def _dnsmasq_argv(self, network: ln.NetworkSpec) -> list[str]:
        files = self.files(network.vlan)
        return ln.dnsmasq_argv(network, hosts_file=files["hosts"], pid_file=files["pid"],
                               dhcp_script=self._dhcp_script, lease_time=self._lease_time,
                               log_file=files["log"], dnsmasq=self._dnsmasq_program,
                               user=self._dnsmasq_user)

    async def _ensure_dnsmasq(self, network: ln.NetworkSpec) -> None:
        argv = self._dnsmasq_argv(network)
        pid_file = self.files(network.vlan)["pid"]
        found = self.dnsmasq.running(pid_file)
        if found is not None:
            if found[1][1:] == argv[1:]:
                return
            log.info("dnsmasq of {br} runs with other options: restarting it",
                     br=network.bridge)
            await self.dnsmasq.stop(pid_file)
        env = {"PATH": _PATH, EVENTS_ENV: self.events_file}
        await self.dnsmasq.start(argv, env, pid_file)

    async def remove_network(self, network: ln.NetworkSpec | int, *,
                             force: bool = False) -> None:
        """
        Stop the network's dnsmasq, remove its NAT chain, segment interface,
        bridge and files. Absent parts are skipped.

        @param network: the network, or its VLAN id.
        @param force: remove the bridge even with guests plugged in.
        @raise NetworkInUse: when guests are plugged in and not C{force}.
        """
        vlan = network.vlan if isinstance(network, ln.NetworkSpec) else validate.vlan_id(network)
        await self._locked(self._remove_network, vlan, force)

    def _guests(self, vlan: int, links: dict[str, dict[str, Any]]) -> list[str]:
        bridge = ln.bridge_name(vlan)
        ours = {ln.vxlan_name(vlan), ln.vlan_interface_name(vlan)}
        return sorted(name for name, link in links.items()
                      if link.get("master") == bridge and name not in ours)

    async def _remove_network(self, vlan: int, force: bool) -> None:
        links = await self.links()
        guests = self._guests(vlan, links)
        if guests and not force:
            raise NetworkInUse(f"bridge {ln.bridge_name(vlan)} still has {', '.join(guests)}")
        files = self.files(vlan)
        await self.dnsmasq.stop(files["pid"])
        await self._apply_table("nat", {}, [ipt.snat_chain(vlan)])
        for name in (ln.vxlan_name(vlan), ln.vlan_interface_name(vlan), ln.bridge_name(vlan)):
            if name in links:
                await self._run(ln.link_delete(name))
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
        path = Path(self.files(network.vlan)["hosts"])
        try:
            changed = path.read_bytes() != content
        except FileNotFoundError:
            changed = True
        if changed:
            await self._run_in_thread(write_atomically, path, content)
        if self.dnsmasq.running(str(path.parent / "dnsmasq.pid")) is None:
            await self._ensure_dnsmasq(network)
        elif changed:
            await self.dnsmasq.reload(str(path.parent / "dnsmasq.pid"))
        return changed

    async def rebuild(self, networks: Iterable[ln.NetworkSpec]) -> list[int]:
        """
        After a restart: ensure every network, and remove nova's networks
        that are no longer wanted unless guests still use their bridge.

        @param networks: every network this host serves.
        @return: the VLAN ids of unwanted networks kept because guests use them.
        """
        wanted = {n.vlan: n for n in networks}
        for network in wanted.values():
            await self.ensure_network(network)
        return await self._locked(self._remove_stale, set(wanted))

    async def _remove_stale(self, wanted: set[int]) -> list[int]:
        links = await self.links()
        stale = {v for v in (ln.vlan_from_name(name) for name in links) if v is not None}
        saved = await self._run(ipt.iptables_save("nat"))
        table = ipt.parse_save(saved.stdout.decode("utf-8", "replace")).get("nat")
        for chain in (table.chains if table else ()):
            if chain.startswith("nova-snat-") and chain[10:].isdigit():
                stale.add(int(chain[10:]))
        if os.path.isdir(self.state_dir):
            stale |= {v for v in map(ln.vlan_from_name, os.listdir(self.state_dir))
                      if v is not None}
        kept = []
        for vlan in sorted(stale - wanted):
            if self._guests(vlan, links):
                log.warn("bridge {br} is not wanted but guests use it: kept",
                         br=ln.bridge_name(vlan))
                kept.append(vlan)
                continue
            await self._remove_network(vlan, False)
        return kept

    # -- floating IPs and filters -----------------------------------------

    async def ensure_floating_ip(self, floating_ip: str, fixed_ip: str) -> None:
        """
        Put C{floating_ip} on the public interface and NAT it to C{fixed_ip}.

        @raise InvalidIdentifier: when the host has no public interface.
        """
        dnat, snat = ipt.floating_chains(floating_ip)
        if self._public is None:
            raise InvalidIdentifier("this network host has no public_interface")
        await self._locked(self._ensure_floating, floating_ip, fixed_ip, dnat, snat)

    async def _ensure_floating(self, floating_ip: str, fixed_ip: str, dnat: str,
                               snat: str) -> None:
        await self._run(ln.address_replace(f"{floating_ip}/32", self._public))  # type: ignore
        await self._apply_table("nat", {dnat: ipt.floating_dnat_rules(floating_ip, fixed_ip),
                                        snat: ipt.floating_snat_rules(floating_ip, fixed_ip)})

    async def remove_floating_ip(self, floating_ip: str) -> None:
        """Remove the floating IP's NAT chains and address (absent ones are skipped)."""
        chains = ipt.floating_chains(floating_ip)
        await self._locked(self._remove_floating, floating_ip, chains)

    async def _remove_floating(self, floating_ip: str, chains: tuple[str, str]) -> None:
        await self._apply_table("nat", {}, chains)
        if self._public is not None:
            result = await self._run(ln.address_delete(f"{floating_ip}/32", self._public),
                                     check=False)
            if result.exit_code != 0 and b"Cannot assign" not in result.stderr:
                raise CommandFailed(result)

    async def ensure_instance_filter(self, instance_id: str, fixed_ip: str,
                                     rules: Iterable[ipt.SecurityRule], *,
                                     dhcp_server: str | None = None) -> None:
        """(Re)write the instance's filter chain C{nova-inst-<id>}."""
        chain = ipt.instance_chain(instance_id)
        body = ipt.instance_filter_rules(fixed_ip, rules, dhcp_server=dhcp_server)
        await self._locked(self._apply_table, "filter", {chain: body})

    async def remove_instance_filter(self, instance_id: str) -> None:
        """Remove the instance's filter chain (absent: nothing to do)."""
        chain = ipt.instance_chain(instance_id)
        await self._locked(self._apply_table, "filter", {}, [chain])
