"""
The network records kept in the datastore: L{Network} (one project's VLAN
network, or the flat network), L{FixedIp} (a private address in use by an
instance) and L{FloatingIp} (an elastic IP). Frozen attrs classes stored as
JSON through L{nova.datastore.records.Record}; every address is checked with
the C{ipaddress} module.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import attr

from nova.datastore.records import Record, _number, _str
from nova.network import addresses
from nova.network.linux_net import bridge_name  # one naming rule for records and hosts

#: Linux interface names are at most 15 characters (IFNAMSIZ - 1)
MAX_INTERFACE_NAME = 15

_INTERFACE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,15}\Z")
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")


def _ipv4(_inst: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, str) or str(addresses.parse_address(value)) != value:
        raise ValueError(f"{attribute.name} must be an IPv4 address in dotted form, "
                         f"not {value!r}")


def _opt_ipv4(inst: Any, attribute: Any, value: Any) -> None:
    if value is not None:
        _ipv4(inst, attribute, value)


def _opt_str() -> Any:
    return attr.validators.optional(_str())


def _interface(_inst: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, str) or not _INTERFACE_NAME.match(value):
        raise ValueError(f"{attribute.name} must be an interface name of 1 to "
                         f"{MAX_INTERFACE_NAME} letters, digits, '.', '-' or '_', "
                         f"not {value!r}")


def _mac(_inst: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, str) or not _MAC.match(value):
        raise ValueError(f"{attribute.name} must be a MAC address "
                         f"(six lowercase hex pairs), not {value!r}")


def _opt_vlan(_inst: Any, attribute: Any, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) \
            or not addresses.VLAN_MIN <= value <= addresses.VLAN_MAX:
        raise ValueError(f"{attribute.name} must be a VLAN id "
                         f"{addresses.VLAN_MIN}..{addresses.VLAN_MAX}, not {value!r}")


def _positive(_inst: Any, attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be a positive integer, not {value!r}")


def _bool() -> Any:
    return attr.validators.instance_of(bool)


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class Network(Record):
    """
    One network: a project's VLAN network (VlanManager) or the shared flat
    network (FlatManager, C{vlan} C{None}).

    @ivar network_id: a positive integer, in creation order.
    @ivar cidr: the network, e.g. C{10.0.2.0/24}.
    @ivar gateway: C{.1}, the bridge's address on the network host.
    @ivar vpn_address: C{.2}, reserved for the project's cloudpipe VPN.
    @ivar dhcp_start: C{.3}, the first address handed to guests.
    @ivar vlan: the 802.1Q id (or VXLAN VNI); C{None} for a flat network.
    @ivar bridge: the bridge the guests' taps join (C{novabr<vlan>}).
    @ivar project_id: the project it belongs to; C{None} while free (and
        always for a flat network).
    @ivar host: the network host that serves it (bridge, dnsmasq, NAT),
        chosen when it is first needed; C{None} until then.
    @ivar created_at: seconds since the epoch.
    """

    network_id: int = attr.ib(validator=_positive)
    cidr: str = attr.ib(validator=_str())
    netmask: str = attr.ib(validator=_ipv4)
    gateway: str = attr.ib(validator=_ipv4)
    broadcast: str = attr.ib(validator=_ipv4)
    vpn_address: str = attr.ib(validator=_ipv4)
    dhcp_start: str = attr.ib(validator=_ipv4)
    vlan: int | None = attr.ib(default=None, validator=_opt_vlan)
    bridge: str = attr.ib(validator=_interface)
    project_id: str | None = attr.ib(default=None, validator=_opt_str())
    host: str | None = attr.ib(default=None, validator=_opt_str())
    created_at: float = attr.ib(converter=_number)

    def __attrs_post_init__(self) -> None:
        net = addresses.parse_network(self.cidr, "network cidr")
        expected = {
            "cidr": str(net), "netmask": str(net.netmask),
            "broadcast": str(net.broadcast_address),
            "gateway": addresses.host_address(net, addresses.GATEWAY_OFFSET),
            "vpn_address": addresses.host_address(net, addresses.VPN_OFFSET),
            "dhcp_start": addresses.host_address(net, addresses.DHCP_START_OFFSET),
        }
        for name, value in expected.items():
            if getattr(self, name) != value:
                raise ValueError(f"{name} of network {self.cidr} must be {value}, "
                                 f"not {getattr(self, name)}")
        if net.num_addresses < addresses.MIN_NETWORK_SIZE:
            raise ValueError(f"network {self.cidr} is smaller than "
                             f"{addresses.MIN_NETWORK_SIZE} addresses")

    @classmethod
    def plan(cls, network_id: int, cidr: str, vlan: int | None, bridge: str | None,
             created_at: float) -> "Network":
        """
        @param bridge: the bridge; C{None} for the VLAN default (L{bridge_name}).
        @return: a free network on C{cidr}, its addresses derived from it.
        @raise ValueError: an inconsistent combination.
        """
        net = addresses.parse_network(cidr, "network cidr")
        if bridge is None:
            if vlan is None:
                raise ValueError("a flat network needs a bridge name")
            bridge = bridge_name(vlan)
        return cls(network_id=network_id, cidr=str(net), netmask=str(net.netmask),
                   gateway=addresses.host_address(net, addresses.GATEWAY_OFFSET),
                   broadcast=str(net.broadcast_address),
                   vpn_address=addresses.host_address(net, addresses.VPN_OFFSET),
                   dhcp_start=addresses.host_address(net, addresses.DHCP_START_OFFSET),
                   vlan=vlan, bridge=bridge, created_at=created_at)

    @property
    def ip_network(self) -> ipaddress.IPv4Network:
        """@return: C{cidr} as an C{ipaddress} network."""
        return ipaddress.IPv4Network(self.cidr)

    def allocatable(self) -> list[str]:
        """@return: the addresses this network hands to guests (its initial pool)."""
        return addresses.allocatable(self.ip_network)


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class FixedIp(Record):
    """
    A private address in use: stored from allocation until the address is
    back in its network's pool.

    @ivar allocated: the instance holds it (C{False} once deallocated, while
        the DHCP lease still runs).
    @ivar leased: dnsmasq reported a lease for it (nova-dhcpbridge C{add}/C{old}),
        and not yet its end (C{del}).
    @ivar mac: the MAC of the instance's interface, which the DHCP host file
        binds to the address.
    @ivar updated_at: seconds since the epoch of the last change.
    """

    address: str = attr.ib(validator=_ipv4)
    network_id: int = attr.ib(validator=_positive)
    instance_id: str = attr.ib(validator=_str())
    mac: str = attr.ib(validator=_mac)
    allocated: bool = attr.ib(default=True, validator=_bool())
    leased: bool = attr.ib(default=False, validator=_bool())
    allocated_at: float = attr.ib(converter=_number)
    updated_at: float = attr.ib(converter=_number)


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class FloatingIp(Record):
    """
    An elastic IP: created by an admin, allocated to a project, associated
    with one instance's fixed address (DNAT/SNAT on the network host).

    @ivar project_id: the project that allocated it; C{None} while free.
    @ivar instance_id: the instance it is associated with, or C{None}.
    @ivar fixed_address: that instance's fixed address, or C{None}.
    @ivar host: the network host it lives on; C{None} for any.
    @ivar updated_at: seconds since the epoch of the last change.
    """

    address: str = attr.ib(validator=_ipv4)
    project_id: str | None = attr.ib(default=None, validator=_opt_str())
    instance_id: str | None = attr.ib(default=None, validator=_opt_str())
    fixed_address: str | None = attr.ib(default=None, validator=_opt_ipv4)
    host: str | None = attr.ib(default=None, validator=_opt_str())
    created_at: float = attr.ib(converter=_number)
    updated_at: float = attr.ib(converter=_number)

    def __attrs_post_init__(self) -> None:
        if (self.instance_id is None) != (self.fixed_address is None):
            raise ValueError("instance_id and fixed_address are set together")
        if self.instance_id is not None and self.project_id is None:
            raise ValueError("only an allocated floating IP can be associated")


__all__ = ["Network", "FixedIp", "FloatingIp", "bridge_name", "MAX_INTERFACE_NAME"]
