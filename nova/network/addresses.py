"""
Address arithmetic of the network controller, pure functions over the
C{ipaddress} module: cutting a range into project networks, the addresses a
network hands out, and the ranges of elastic IPs an admin creates.

The layout of one network, as in 2010 nova's VlanManager: the network address,
the gateway at C{.1} (the bridge's address on the network host), the cloudpipe
VPN at C{.2}, DHCP from C{.3} up to the address below the broadcast address.
"""

from __future__ import annotations

import ipaddress
from typing import Iterator

from nova.network.errors import InvalidNetworkRange

#: the smallest network: C{/29}, 8 addresses, 4 of them for guests (a C{/30}
#: would have none left once network, gateway, VPN and broadcast are taken)
MIN_NETWORK_SIZE = 8

#: the largest range one C{nova-manage floating create} accepts
MAX_FLOATING_RANGE = 65536

#: the VLAN ids 802.1Q allows (0 and 4095 are reserved)
VLAN_MIN, VLAN_MAX = 1, 4094

#: offsets in a network of the gateway, the VPN and the first DHCP address
GATEWAY_OFFSET, VPN_OFFSET, DHCP_START_OFFSET = 1, 2, 3


def parse_network(text: str, what: str = "range") -> ipaddress.IPv4Network:
    """
    @param text: an IPv4 CIDR (C{10.0.0.0/8}); host bits must be zero.
    @return: the network.
    @raise InvalidNetworkRange: not an IPv4 CIDR, or host bits set.
    """
    if not isinstance(text, str):
        raise InvalidNetworkRange(f"Invalid {what} {text!r}: expected an IPv4 CIDR")
    try:
        return ipaddress.IPv4Network(text.strip(), strict=True)
    except ValueError as e:
        raise InvalidNetworkRange(f"Invalid {what} '{text}': {e}") from None


def parse_address(text: str) -> ipaddress.IPv4Address:
    """
    @return: C{text} as an IPv4 address.
    @raise InvalidNetworkRange: it is not one.
    """
    try:
        return ipaddress.IPv4Address(text.strip() if isinstance(text, str) else text)
    except ValueError:
        raise InvalidNetworkRange(f"Invalid IPv4 address '{text}'") from None


def plan_subnets(cidr: str, num_networks: int, network_size: int) -> list[ipaddress.IPv4Network]:
    """
    Cut the first C{num_networks * network_size} addresses of C{cidr} into
    networks of C{network_size} addresses.

    @raise InvalidNetworkRange: a count or size out of range, a size that is
        not a power of two, or C{cidr} too small for them all.
    """
    whole = parse_network(cidr)
    for name, value in (("num_networks", num_networks), ("network_size", network_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidNetworkRange(f"Invalid {name} {value!r}: expected a positive integer")
    if network_size & (network_size - 1):
        raise InvalidNetworkRange(
            f"Invalid network_size {network_size}: it must be a power of two "
            f"(8, 16, ... 256 ...)")
    if network_size < MIN_NETWORK_SIZE:
        raise InvalidNetworkRange(
            f"Invalid network_size {network_size}: at least {MIN_NETWORK_SIZE} addresses "
            f"(network, gateway, VPN and broadcast leave nothing for guests below that)")
    if network_size > whole.num_addresses:
        raise InvalidNetworkRange(
            f"Invalid network_size {network_size}: larger than the range {whole} "
            f"({whole.num_addresses} addresses)")
    if num_networks * network_size > whole.num_addresses:
        fits = whole.num_addresses // network_size
        raise InvalidNetworkRange(
            f"The range {whole} holds {fits} network(s) of {network_size} addresses, "
            f"not {num_networks}")
    new_prefix = 32 - (network_size.bit_length() - 1)
    subnets = whole.subnets(new_prefix=new_prefix)
    return [next(subnets) for _ in range(num_networks)]


def check_vlans(vlan_start: int, count: int) -> range:
    """
    @return: the VLAN ids C{vlan_start} .. C{vlan_start + count - 1}.
    @raise InvalidNetworkRange: some of them are not valid 802.1Q ids.
    """
    if isinstance(vlan_start, bool) or not isinstance(vlan_start, int):
        raise InvalidNetworkRange(f"Invalid vlan_start {vlan_start!r}: expected an integer")
    last = vlan_start + count - 1
    if vlan_start < VLAN_MIN or last > VLAN_MAX:
        raise InvalidNetworkRange(
            f"VLAN ids {vlan_start}..{last} are out of range: 802.1Q allows "
            f"{VLAN_MIN}..{VLAN_MAX}")
    return range(vlan_start, last + 1)


def host_address(net: ipaddress.IPv4Network, offset: int) -> str:
    """@return: the address C{offset} above the network address, as text."""
    return str(net.network_address + offset)


def allocatable(net: ipaddress.IPv4Network) -> list[str]:
    """
    @return: the addresses of C{net} that go to guests: from the DHCP start
        (C{.3}) up to the address below the broadcast address.
    """
    first = int(net.network_address) + DHCP_START_OFFSET
    last = int(net.broadcast_address) - 1
    return [str(ipaddress.IPv4Address(a)) for a in range(first, last + 1)]


def parse_floating_range(text: str) -> list[str]:
    """
    The elastic IPs an admin creates: a CIDR (every usable host address:
    without network and broadcast address, except in a C{/31} or C{/32}), or
    an inclusive range C{first-last}.

    @return: the addresses, in order.
    @raise InvalidNetworkRange: malformed, reversed, or more than
        L{MAX_FLOATING_RANGE} addresses.
    """
    if not isinstance(text, str):
        raise InvalidNetworkRange(f"Invalid address range {text!r}")
    if "-" in text:
        first_text, _, last_text = text.partition("-")
        first, last = parse_address(first_text), parse_address(last_text)
        if last < first:
            raise InvalidNetworkRange(f"Invalid address range '{text}': {last} is below {first}")
        count = int(last) - int(first) + 1
        addresses: Iterator[ipaddress.IPv4Address] = (
            ipaddress.IPv4Address(a) for a in range(int(first), int(last) + 1))
    else:
        net = parse_network(text, "floating range")
        count = net.num_addresses if net.prefixlen >= 31 else net.num_addresses - 2
        addresses = iter(net) if net.prefixlen >= 31 else net.hosts()
    if count > MAX_FLOATING_RANGE:
        raise InvalidNetworkRange(
            f"The range '{text}' has {count} addresses; at most {MAX_FLOATING_RANGE} at once")
    return [str(a) for a in addresses]
