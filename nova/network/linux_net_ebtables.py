"""
nova's ebtables rules: what a guest may put on its bridge.

The iptables filter (L{nova.network.linux_net_iptables.instance_filter_rules})
checks the source address of the IPv4 packets a guest sends. Below IP, a
guest could still claim another's address in ARP (and so receive what is
sent to it) or send frames with another MAC. Each instance therefore gets
an ebtables chain C{nova-<instance id>} in the C{filter} table of its host's
namespace, reached from C{nova-INPUT} (frames to the host itself) and
C{nova-FORWARD} (frames to the rest of the bridge), that lets a frame from
its tap through only when:

    - its source MAC is the instance's;
    - it is ARP whose sender is the instance's MAC and address (or
      C{0.0.0.0}, an address probe), or IPv4;

everything else from the tap (another MAC, another address in ARP, IPv6,
802.1Q-tagged frames, other ethertypes) is dropped. Frames to the guest are
not touched: the chain returns at once for frames from other ports.

Changes go through C{ebtables-restore --noflush} (one nf_tables transaction)
with the same bookkeeping as iptables' (L{linux_net_iptables.restore_input}).
"""

from __future__ import annotations

from nova.network import linux_net_iptables as ipt
from nova.utils import validate

__all__ = ["EBTABLES", "l2_filter_rules"]

#: ebtables' table C{filter}: nova's chains and hooks
EBTABLES = ipt.Dialect(
    tops={"filter": {"INPUT": "nova-INPUT", "FORWARD": "nova-FORWARD"}},
    jumps={"filter": [("nova-i-", ("nova-INPUT", "nova-FORWARD"))]},
    declare=":{} RETURN", tool="ebtables")


def l2_filter_rules(tap: str, mac: str, fixed_ip: str) -> list[list[str]]:
    """
    An instance's ebtables chain (see the module docstring).

    @param tap: its tap (frames from other ports return at once).
    @param mac: its NIC's MAC.
    @param fixed_ip: its address.
    @return: the rules (without C{-A chain}).
    """
    tap = validate.interface_name(tap)
    mac = validate.mac_address(mac)
    ip = validate.ipv4_address(fixed_ip)
    return [["-i", "!", tap, "-j", "RETURN"],
            ["-s", "!", mac, "-j", "DROP"],
            ["-p", "ARP", "--arp-mac-src", "!", mac, "-j", "DROP"],
            ["-p", "ARP", "--arp-ip-src", "0.0.0.0", "-j", "RETURN"],
            ["-p", "ARP", "--arp-ip-src", "!", ip, "-j", "DROP"],
            ["-p", "ARP", "-j", "RETURN"],
            ["-p", "IPv4", "-j", "RETURN"],
            ["-j", "DROP"]]
