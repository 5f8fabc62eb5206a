"""
Validated identifiers for host commands.

Every name or address that ends up in an argv list (C{ip link add NAME},
C{ip netns exec NS}, C{iptables -s CIDR}, a dnsmasq hosts line) passes through
one of these functions first. They accept only the exact shapes the kernel
and the tools accept, return the canonical spelling, and raise
L{InvalidIdentifier} otherwise, so that a value can never smuggle an option
(a leading C{-}) or a second token into a command.
"""

from __future__ import annotations

import ipaddress
import re

from nova.exception import InvalidParameterValue

__all__ = [
    "InvalidIdentifier",
    "interface_name",
    "netns_name",
    "ipv4_address",
    "ipv4_network",
    "ipv4_interface",
    "mac_address",
    "vlan_id",
    "port_number",
    "hostname",
]


class InvalidIdentifier(InvalidParameterValue, ValueError):
    """
    A name or address is not acceptable for a host command.

    It is both a L{nova.exception.InvalidParameterValue} (so the API
    boundaries render it as a client error) and a L{ValueError} (so plain
    Python callers can catch it the usual way).
    """


# The first character must be alphanumeric: a leading "-" would be read as an
# option by ip(8) and friends, and "." / ".." are reserved directory names.
_IFNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}")
_NETNS = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_MAC = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}")


def _require_str(kind: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidIdentifier(f"{kind} must be a string, not {type(value).__name__}")
    return value


def interface_name(name: str) -> str:
    """
    Check a network interface name (bridge, tap, veth, vxlan).

    @param name: at most 15 characters (the kernel's IFNAMSIZ - 1) of
        C{[A-Za-z0-9_.-]}, starting with a letter or digit.
    @return: C{name} unchanged.
    @raise InvalidIdentifier: when the name is not acceptable.
    """
    _require_str("interface name", name)
    if _IFNAME.fullmatch(name) is None:
        raise InvalidIdentifier(
            f"invalid interface name {name!r}: 1-15 characters of [A-Za-z0-9_.-],"
            " starting with a letter or digit")
    return name


def netns_name(name: str) -> str:
    """
    Check a network namespace name.

    @param name: 1-64 characters of C{[A-Za-z0-9_.-]}, starting with a letter
        or digit (the name becomes a file under C{/run/netns}).
    @return: C{name} unchanged.
    @raise InvalidIdentifier: when the name is not acceptable.
    """
    _require_str("network namespace name", name)
    if _NETNS.fullmatch(name) is None:
        raise InvalidIdentifier(
            f"invalid network namespace name {name!r}: 1-64 characters of"
            " [A-Za-z0-9_.-], starting with a letter or digit")
    return name


def ipv4_address(value: str) -> str:
    """
    Check a dotted-quad IPv4 address.

    @param value: such as C{"10.0.0.5"}.
    @return: the canonical spelling.
    @raise InvalidIdentifier: for anything else (IPv6, prefixes, leading
        zeros, surrounding blanks).
    """
    _require_str("IPv4 address", value)
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError as e:
        raise InvalidIdentifier(f"invalid IPv4 address {value!r}: {e}") from None


def ipv4_network(value: str, *, strict: bool = True) -> str:
    """
    Check an IPv4 network in CIDR notation.

    @param value: such as C{"10.0.0.0/24"}; a bare address means C{/32}.
    @param strict: when true, host bits must be zero (C{"10.0.0.1/24"} is
        refused); when false they are masked off.
    @return: the canonical spelling, always with a prefix length.
    @raise InvalidIdentifier: when the value is not an IPv4 network.
    """
    _require_str("IPv4 network", value)
    try:
        return str(ipaddress.IPv4Network(value, strict=strict))
    except ValueError as e:
        raise InvalidIdentifier(f"invalid IPv4 network {value!r}: {e}") from None


def ipv4_interface(value: str) -> str:
    """
    Check an IPv4 address with its prefix length, as C{ip addr add} takes it.

    @param value: such as C{"10.0.0.1/24"}.
    @return: the canonical spelling.
    @raise InvalidIdentifier: when the value is not an address with a prefix.
    """
    _require_str("IPv4 interface address", value)
    if "/" not in value:
        raise InvalidIdentifier(f"invalid IPv4 interface address {value!r}: missing /prefix")
    try:
        return str(ipaddress.IPv4Interface(value))
    except ValueError as e:
        raise InvalidIdentifier(f"invalid IPv4 interface address {value!r}: {e}") from None


def mac_address(value: str) -> str:
    """
    Check an Ethernet MAC address.

    @param value: six colon-separated pairs of hex digits, in any case.
    @return: the lower-case spelling.
    @raise InvalidIdentifier: for anything else.
    """
    _require_str("MAC address", value)
    if _MAC.fullmatch(value) is None:
        raise InvalidIdentifier(
            f"invalid MAC address {value!r}: expected six colon-separated hex pairs")
    return value.lower()


def vlan_id(value: int) -> int:
    """
    Check an 802.1Q VLAN id.

    @param value: an integer from 1 to 4094 (0 and 4095 are reserved).
    @return: C{value} unchanged.
    @raise InvalidIdentifier: otherwise (including for booleans and strings).
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidIdentifier(f"VLAN id must be an integer, not {type(value).__name__}")
    if not 1 <= value <= 4094:
        raise InvalidIdentifier(f"invalid VLAN id {value}: must be 1-4094")
    return value


_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*")


def port_number(value: int) -> int:
    """
    Check a TCP or UDP port number.

    @param value: an integer from 1 to 65535.
    @return: C{value} unchanged.
    @raise InvalidIdentifier: otherwise (including for booleans and strings).
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidIdentifier(f"port must be an integer, not {type(value).__name__}")
    if not 1 <= value <= 65535:
        raise InvalidIdentifier(f"invalid port {value}: must be 1-65535")
    return value


def hostname(value: str) -> str:
    """
    Check a host name (RFC 1123 labels joined by dots), as dnsmasq hands it
    to a guest.

    @param value: such as C{"i-0000000a"} or C{"web.novalocal"}; at most
        253 characters.
    @return: C{value} unchanged.
    @raise InvalidIdentifier: for anything else (a comma, a blank, a
        leading C{-} ...).
    """
    _require_str("host name", value)
    if len(value) > 253 or _HOSTNAME.fullmatch(value) is None:
        raise InvalidIdentifier(
            f"invalid host name {value!r}: dot-separated labels of [A-Za-z0-9-],"
            " each starting and ending with a letter or digit")
    return value
