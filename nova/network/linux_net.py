"""
Linux network plumbing of a network host, as data: argv lists and file contents.

Every function here is pure: it validates its inputs (L{nova.utils.validate})
and returns the command (or the text of a file) that the network host
(L{nova.network.host.NetworkHost}) hands to the process runner. Nothing is
ever passed through a shell, and a value that is not exactly an interface
name, an address, a MAC or a number is refused, so user input cannot add an
option or a second command.

Names (all carry the C{nova} prefix so that nova only ever removes what it
made, and all fit the kernel's 15 characters):

    - C{novabr<vlan>}: the bridge of a project VLAN network (a flat
      network's bridge is configured: C{novaflat} by default);
    - C{novavx<vlan>}: its VXLAN interface (VNI = the VLAN id);
    - C{novavl<vlan>}: its 802.1Q VLAN interface, where the kernel has 8021q;
    - C{novat<last 10 hex of the id>}: a tap made for an instance (libvirt usually makes its own).

The iptables side lives in L{nova.network.linux_net_iptables}.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Iterable, Mapping

import attr

from nova.utils import validate
from nova.utils.validate import InvalidIdentifier

__all__ = [
    "BRIDGE_PREFIX",
    "VXLAN_PREFIX",
    "VLAN_PREFIX",
    "TAP_PREFIX",
    "VXLAN_PORT",
    "NetworkSpec",
    "DhcpHost",
    "bridge_name",
    "vxlan_name",
    "vlan_interface_name",
    "tap_name",
    "vlan_from_name",
    "link_list",
    "address_list",
    "sysctl_write",
    "bridge_add",
    "link_up",
    "link_delete",
    "link_set_master",
    "vxlan_add",
    "vxlan_fdb_append",
    "vlan_add",
    "address_replace",
    "address_delete",
    "tap_add",
    "dnsmasq_argv",
    "dhcp_hosts_content",
]

BRIDGE_PREFIX = "novabr"
VXLAN_PREFIX = "novavx"
VLAN_PREFIX = "novavl"
TAP_PREFIX = "novat"

#: The IANA VXLAN port (the kernel's own default is the pre-standard 8472).
VXLAN_PORT = 4789

_EC2_INSTANCE_ID = re.compile(r"i-([0-9a-f]{8}|[0-9a-f]{17})")
_NOVA_LINK = re.compile(r"nova(?:br|vx|vl)([1-9][0-9]{0,3})")


def _optional_vlan(value: int | None) -> int | None:
    return None if value is None else validate.vlan_id(value)


def _optional_bridge(value: str | None) -> str:
    return "" if value is None or value == "" else validate.interface_name(value)


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class NetworkSpec:
    """
    What a host needs to know about one network: a project's VLAN network
    (C{vlan} set, bridge C{novabr<vlan>} by default) or the flat network
    (C{vlan} C{None}, an explicit C{bridge}).

    Everything a host keeps for a network (its state directory, its NAT
    chain) is named after its bridge.

    @ivar bridge: the bridge guests' NICs join; C{novabr<vlan>} when not given.
    @ivar vlan: the VLAN id (also the VXLAN VNI), 1-4094; C{None} for a
        flat network, which has no segment interface of nova's.
    @ivar cidr: the network, such as C{"10.0.5.0/24"}.
    @ivar gateway: the bridge's address; the first host address by default.
    @ivar dhcp_start: the first address dnsmasq may give (2010 nova: C{.3},
        after the gateway and the VPN); the third host address by default.
    """

    cidr: str = attr.ib(converter=validate.ipv4_network)
    vlan: int | None = attr.ib(default=None, converter=_optional_vlan)
    bridge: str = attr.ib(default="", converter=_optional_bridge)
    gateway: str = attr.ib(default="")
    dhcp_start: str = attr.ib(default="")

    def __attrs_post_init__(self) -> None:
        if not self.bridge:
            if self.vlan is None:
                raise InvalidIdentifier("a network without a VLAN id needs a bridge")
            object.__setattr__(self, "bridge", bridge_name(self.vlan))
        net = ipaddress.IPv4Network(self.cidr)
        if net.num_addresses < 8:
            raise InvalidIdentifier(f"network {self.cidr} is too small (at least /29)")
        # Frozen: set the derived defaults through object.__setattr__.
        gateway = validate.ipv4_address(self.gateway or str(net.network_address + 1))
        start = validate.ipv4_address(self.dhcp_start or str(net.network_address + 3))
        for what, value in (("gateway", gateway), ("dhcp_start", start)):
            address = ipaddress.IPv4Address(value)
            if address not in net or address in (net.network_address, net.broadcast_address):
                raise InvalidIdentifier(f"{what} {value} is not a host address of {self.cidr}")
        object.__setattr__(self, "gateway", gateway)
        object.__setattr__(self, "dhcp_start", start)

    @classmethod
    def from_network(cls, network: Any) -> "NetworkSpec":
        """
        The spec of a network record.

        @param network: a L{nova.network.records.Network} (its C{cidr},
            C{vlan}, C{bridge}, C{gateway} and C{dhcp_start} are read).
        @return: the spec.
        @raise InvalidIdentifier: for a value a host command cannot take.
        """
        return cls(cidr=network.cidr, vlan=network.vlan, bridge=network.bridge,
                   gateway=network.gateway, dhcp_start=network.dhcp_start)

    @property
    def segment_names(self) -> tuple[str, ...]:
        """The segment interfaces nova may have made for it (none when flat)."""
        if self.vlan is None:
            return ()
        return vxlan_name(self.vlan), vlan_interface_name(self.vlan)

    @property
    def gateway_interface(self) -> str:
        """The gateway with the prefix length, as C{ip addr} takes it."""
        return f"{self.gateway}/{ipaddress.IPv4Network(self.cidr).prefixlen}"

    @property
    def netmask(self) -> str:
        """The dotted netmask."""
        return str(ipaddress.IPv4Network(self.cidr).netmask)


@attr.s(frozen=True, auto_attribs=True)
class DhcpHost:
    """
    One static DHCP entry: dnsmasq gives C{ip} (and C{hostname}) to C{mac}.
    """

    mac: str = attr.ib(converter=validate.mac_address)
    hostname: str = attr.ib(converter=validate.hostname)
    ip: str = attr.ib(converter=validate.ipv4_address)


def bridge_name(vlan: int) -> str:
    """@return: C{novabr<vlan>} for a valid VLAN id."""
    return validate.interface_name(f"{BRIDGE_PREFIX}{validate.vlan_id(vlan)}")


def vxlan_name(vlan: int) -> str:
    """@return: C{novavx<vlan>} for a valid VLAN id."""
    return validate.interface_name(f"{VXLAN_PREFIX}{validate.vlan_id(vlan)}")


def vlan_interface_name(vlan: int) -> str:
    """@return: C{novavl<vlan>} for a valid VLAN id."""
    return validate.interface_name(f"{VLAN_PREFIX}{validate.vlan_id(vlan)}")


def tap_name(instance_id: str) -> str:
    """
    The tap nova makes for an instance when libvirt does not.

    @param instance_id: an EC2 instance id, C{i-} and 8 or 17 hex digits.
    @return: C{novat} and the id's last (up to) 10 hex digits (at most 15
        characters, Linux's limit).
    @raise InvalidIdentifier: for any other id.
    """
    match = _EC2_INSTANCE_ID.fullmatch(instance_id) if isinstance(instance_id, str) else None
    if match is None:
        raise InvalidIdentifier(f"invalid instance id {instance_id!r}: expected i-<8 or 17 hex>")
    return validate.interface_name(TAP_PREFIX + match.group(1)[-10:])


def vlan_from_name(name: str) -> int | None:
    """
    Recognise a link nova made for a network.

    @param name: an interface name.
    @return: the VLAN id of a C{novabr}/C{novavx}/C{novavl} name, else C{None}.
    """
    match = _NOVA_LINK.fullmatch(name)
    if match is None or not 1 <= int(match.group(1)) <= 4094:
        return None
    return int(match.group(1))


def link_list() -> list[str]:
    """@return: the command listing every link as JSON (name, flags, master)."""
    return ["ip", "-j", "link", "show"]


def address_list(dev: str) -> list[str]:
    """@return: the command listing one link's addresses as JSON."""
    return ["ip", "-j", "addr", "show", "dev", validate.interface_name(dev)]


_SYSCTL_KEY = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_-]+)+")


def sysctl_write(settings: Mapping[str, int]) -> list[str]:
    """
    The command setting kernel parameters (in the namespace it runs in,
    for the per-namespace C{net.*} ones).

    @param settings: such as C{{"net.ipv4.ip_forward": 1}}.
    @return: C{sysctl -w key=value ...}, in the given order.
    @raise InvalidIdentifier: for a key that is not a dotted sysctl name,
        a value that is not a non-negative integer, or no setting at all.
    """
    argv = ["sysctl", "-w"]
    for key, value in settings.items():
        if not isinstance(key, str) or _SYSCTL_KEY.fullmatch(key) is None:
            raise InvalidIdentifier(f"invalid sysctl name {key!r}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidIdentifier(f"invalid sysctl value {value!r} for {key}")
        argv.append(f"{key}={value}")
    if len(argv) == 2:
        raise InvalidIdentifier("no sysctl setting given")
    return argv


def bridge_add(bridge: str) -> list[str]:
    """@return: the command creating a bridge."""
    return ["ip", "link", "add", validate.interface_name(bridge), "type", "bridge"]


def link_up(name: str) -> list[str]:
    """@return: the command setting a link up."""
    return ["ip", "link", "set", "dev", validate.interface_name(name), "up"]


def link_delete(name: str) -> list[str]:
    """@return: the command deleting a link."""
    return ["ip", "link", "delete", "dev", validate.interface_name(name)]


def link_set_master(name: str, bridge: str) -> list[str]:
    """@return: the command enslaving a link to a bridge."""
    return ["ip", "link", "set", "dev", validate.interface_name(name),
            "master", validate.interface_name(bridge)]


def vxlan_add(vlan: int, *, local: str | None = None, remote: str | None = None,
              group: str | None = None, dev: str | None = None,
              port: int = VXLAN_PORT) -> list[str]:
    """
    The command creating the network's VXLAN interface (VNI = VLAN id).

    Peers are either one unicast C{remote} (more are added with
    L{vxlan_fdb_append}), or a multicast C{group} on C{dev}, or none yet.

    @param vlan: the VLAN id, used as the VNI.
    @param local: this host's tunnel source address.
    @param remote: the first peer's address.
    @param group: a multicast group (needs C{dev}).
    @param dev: the underlay interface.
    @param port: the UDP port.
    @raise InvalidIdentifier: for a bad value or both C{remote} and C{group}.
    """
    argv = ["ip", "link", "add", vxlan_name(vlan), "type", "vxlan",
            "id", str(validate.vlan_id(vlan)), "dstport", str(validate.port_number(port))]
    if remote is not None and group is not None:
        raise InvalidIdentifier("a VXLAN interface has a remote or a group, not both")
    if local is not None:
        argv += ["local", validate.ipv4_address(local)]
    if remote is not None:
        argv += ["remote", validate.ipv4_address(remote)]
    if group is not None:
        if not ipaddress.IPv4Address(validate.ipv4_address(group)).is_multicast:
            raise InvalidIdentifier(f"VXLAN group {group!r} is not a multicast address")
        if dev is None:
            raise InvalidIdentifier("a multicast VXLAN group needs an underlay dev")
        argv += ["group", validate.ipv4_address(group)]
    if dev is not None:
        argv += ["dev", validate.interface_name(dev)]
    return argv


def vxlan_fdb_append(vlan: int, remote: str) -> list[str]:
    """@return: the command flooding the VXLAN's unknown traffic to one more peer."""
    return ["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", vxlan_name(vlan),
            "dst", validate.ipv4_address(remote)]


def vlan_add(vlan: int, parent: str) -> list[str]:
    """@return: the command creating the 802.1Q interface C{novavl<vlan>} on C{parent}."""
    return ["ip", "link", "add", "link", validate.interface_name(parent),
            "name", vlan_interface_name(vlan), "type", "vlan", "id", str(validate.vlan_id(vlan))]


def address_replace(address: str, dev: str) -> list[str]:
    """@return: the (idempotent) command giving C{dev} the address C{a.b.c.d/len}."""
    return ["ip", "addr", "replace", validate.ipv4_interface(address),
            "dev", validate.interface_name(dev)]


def address_delete(address: str, dev: str) -> list[str]:
    """@return: the command removing the address C{a.b.c.d/len} from C{dev}."""
    return ["ip", "addr", "del", validate.ipv4_interface(address),
            "dev", validate.interface_name(dev)]


def tap_add(name: str) -> list[str]:
    """@return: the command creating a tap (for a guest that libvirt does not plug)."""
    if not validate.interface_name(name).startswith(TAP_PREFIX):
        raise InvalidIdentifier(f"tap {name!r} does not carry the {TAP_PREFIX} prefix")
    return ["ip", "tuntap", "add", "dev", name, "mode", "tap"]


def _absolute_path(kind: str, path: str) -> str:
    # Paths become "--option=path" arguments: no NUL, newline or comma (dnsmasq
    # splits some options on commas), and absolute so the daemon's cwd is moot.
    if not isinstance(path, str) or not path.startswith("/") or any(
            c in path for c in "\0\n\r,"):
        raise InvalidIdentifier(f"invalid {kind} path {path!r}: must be absolute, without"
                                " commas or control characters")
    return path


def dnsmasq_argv(network: NetworkSpec, *, hosts_file: str, pid_file: str,
                 dhcp_script: str, lease_time: int = 120,
                 log_file: str | None = None, dnsmasq: str = "dnsmasq",
                 dns_port: int | None = None, user: str | None = None) -> list[str]:
    """
    The dnsmasq that serves one network's DHCP, with 2010 nova's flags.

    2010 flags: C{--strict-order --bind-interfaces --conf-file=
    --pid-file --listen-address <gateway> --except-interface lo
    --dhcp-range <start>,static,<lease> --dhcp-hostsfile --dhcp-script
    --leasefile-ro}. Added for a modern dnsmasq: C{--interface} (with
    C{--bind-interfaces} it binds only the bridge), the netmask in the range,
    C{--port=0} (no DNS: a forwarder would send queries out of the host's
    namespace; pass C{dns_port} to serve the hosts' names without
    forwarding), C{--dhcp-no-override} and C{--log-facility}.

    @param network: the network.
    @param hosts_file: the static entries (L{dhcp_hosts_content}).
    @param pid_file: where the daemon writes its pid.
    @param dhcp_script: the lease script path (dnsmasq runs it without a shell).
    @param lease_time: seconds (at least 120, dnsmasq's minimum).
    @param log_file: a log file, else syslog.
    @param dnsmasq: the program.
    @param dns_port: serve DNS (local names only) on this port.
    @param user: the account dnsmasq runs as after start (C{--user});
        dnsmasq's default (C{nobody}) when C{None}. It rereads the hosts
        file as that user on SIGHUP, so the file must be readable by it.
    @return: the argv.
    @raise InvalidIdentifier: for a bad path, lease time or port.
    """
    if isinstance(lease_time, bool) or not isinstance(lease_time, int) or lease_time < 120:
        raise InvalidIdentifier(f"invalid DHCP lease time {lease_time!r}: at least 120 s")
    script = dhcp_script
    argv = [_absolute_path("dnsmasq", dnsmasq) if "/" in dnsmasq else dnsmasq,
            "--strict-order", "--bind-interfaces", "--conf-file=",
            f"--pid-file={_absolute_path('pid file', pid_file)}",
            f"--listen-address={network.gateway}",
            f"--interface={network.bridge}",
            "--except-interface=lo",
            f"--dhcp-range={network.dhcp_start},static,{network.netmask},{lease_time}s",
            f"--dhcp-hostsfile={_absolute_path('hosts file', hosts_file)}",
            f"--dhcp-script={_absolute_path('DHCP script', script)}",
            "--leasefile-ro", "--dhcp-no-override"]
    if dns_port is None:
        argv.append("--port=0")
    else:
        argv += [f"--port={validate.port_number(dns_port)}", "--no-resolv", "--no-hosts"]
    if user is not None:
        if re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", user) is None:
            raise InvalidIdentifier(f"invalid user name {user!r}")
        argv.append(f"--user={user}")
    if log_file is not None:
        argv.append(f"--log-facility={_absolute_path('log file', log_file)}")
    return argv


def dhcp_hosts_content(entries: Iterable[DhcpHost]) -> bytes:
    """
    The C{--dhcp-hostsfile} text: one C{mac,hostname,ip} line per entry.

    @param entries: the entries (validated when built).
    @return: the file's bytes, sorted by IP so that rewrites are stable.
    @raise InvalidIdentifier: for an entry that is not a L{DhcpHost}, or
        two entries with the same MAC or the same IP.
    """
    hosts = list(entries)
    for entry in hosts:
        if not isinstance(entry, DhcpHost):
            raise InvalidIdentifier(f"not a DhcpHost: {entry!r}")
    for field in ("mac", "ip"):
        seen: set[str] = set()
        for entry in hosts:
            value = getattr(entry, field)
            if value in seen:
                raise InvalidIdentifier(f"two DHCP entries with {field} {value}")
            seen.add(value)
    hosts.sort(key=lambda h: ipaddress.IPv4Address(h.ip))
    return "".join(f"{h.mac},{h.hostname},{h.ip}\n" for h in hosts).encode("ascii")
