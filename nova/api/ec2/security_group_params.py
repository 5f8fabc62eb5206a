"""
Reading the rules of AuthorizeSecurityGroupIngress and
RevokeSecurityGroupIngress, in both forms clients send:

 - the flat form of EC2-Classic (IpProtocol, FromPort, ToPort, CidrIp,
   SourceSecurityGroupName, SourceSecurityGroupOwnerId): euca2ools, and
   boto 2 when it grants a whole group;
 - C{IpPermissions.N.*} (IpProtocol, FromPort, ToPort, IpRanges.M.CidrIp,
   Groups.M.GroupName|GroupId|UserId): boto 2's other calls, boto3, awscli.

The result is a list of L{PermissionSpec}: protocol, ports, and the sources
as the request named them. Source groups named by id are resolved by the
controller, which can read the datastore.
"""

from __future__ import annotations

import re

import attr

from nova.api.ec2.params import Params
from nova.exception import InvalidParameterValue, MissingParameter
from nova.network.security_group_records import (
    MAX_ICMP, MAX_PORT, MIN_ICMP, MIN_PORT, PROTOCOL_NUMBERS, PROTOCOLS, parse_cidr)

_FLAT = ("IpProtocol", "FromPort", "ToPort", "CidrIp", "SourceSecurityGroupName",
         "SourceSecurityGroupOwnerId")
_SUB = re.compile(r"(IpRanges|Groups)\.(\d+)\.(\w+)\Z")
_UNSUPPORTED = {
    "Ipv6Ranges": "IPv6 ranges are not supported by this cloud",
    "PrefixListIds": "prefix lists are not supported by this cloud",
}
_GROUP_FIELDS = ("GroupName", "GroupId", "UserId")
_NO_SOURCE = ("Missing source specification: include source security group or CIDR "
              "information")


@attr.s(frozen=True, auto_attribs=True)
class SourceRef:
    """
    A source group as a request names it.

    @ivar name: its name (in C{owner}'s project, or the target's).
    @ivar group_id: its id (then C{name} and C{owner} only confirm it).
    @ivar owner: its owner: a project id, or C{user:project} (2010 nova).
    """

    name: str | None = None
    group_id: str | None = None
    owner: str | None = None


@attr.s(frozen=True, auto_attribs=True)
class PermissionSpec:
    """One permission of a request: a protocol and ports, from CIDRs and groups."""

    protocol: str
    from_port: int
    to_port: int
    cidrs: tuple[str, ...] = ()
    groups: tuple[SourceRef, ...] = ()


def parse_protocol(value: str) -> str:
    """
    @param value: C{tcp}, C{udp}, C{icmp} (any case) or their numbers 6, 17, 1.
    @return: the protocol's name.
    @raise InvalidParameterValue: anything else; C{-1}/C{all} (every
        protocol) included, which this cloud's host rules cannot express.
    """
    name = value.strip().lower()
    name = PROTOCOL_NUMBERS.get(name, name)
    if name in ("-1", "all"):
        raise InvalidParameterValue(
            f"Value ({value}) for parameter IpProtocol is invalid. All protocols (-1) is "
            "not supported by this cloud: name tcp, udp or icmp.")
    if name not in PROTOCOLS:
        raise InvalidParameterValue(
            f"Value ({value}) for parameter IpProtocol is invalid. Unknown protocol: "
            "tcp, udp or icmp.")
    return name


def _int(name: str, value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise InvalidParameterValue(
            f"Value ({value}) for parameter {name} is invalid. Expected an integer.") from None


def parse_ports(protocol: str, from_text: str | None, to_text: str | None,
                where: str = "") -> tuple[int, int]:
    """
    @param where: the parameter prefix, for messages (C{IpPermissions.1.}).
    @return: C{(from_port, to_port)}; for icmp (type, code), -1 when absent.
    @raise MissingParameter: a tcp/udp port is absent.
    @raise InvalidParameterValue: not an integer, out of range, or reversed.
    """
    if protocol == "icmp":
        low, high = MIN_ICMP, MAX_ICMP
        first = -1 if from_text in (None, "") else _int(f"{where}FromPort", from_text)
        last = -1 if to_text in (None, "") else _int(f"{where}ToPort", to_text)
    else:
        low, high = MIN_PORT, MAX_PORT
        for name, text in (("FromPort", from_text), ("ToPort", to_text)):
            if text in (None, ""):
                raise MissingParameter(
                    f"The request must contain the parameter {where}{name} for {protocol}")
        assert from_text is not None and to_text is not None
        first = _int(f"{where}FromPort", from_text)
        last = _int(f"{where}ToPort", to_text)
    for value in (first, last):
        if not low <= value <= high:
            what = "ICMP type or code" if protocol == "icmp" else "port"
            raise InvalidParameterValue(
                f"Invalid {what} {value} for {protocol}: it must be {low} to {high}")
    if protocol == "icmp":
        if first == -1 and last != -1:
            raise InvalidParameterValue(
                "Invalid ICMP code: for any ICMP type (-1) the code must be -1 too")
    elif first > last:
        raise InvalidParameterValue(f"Invalid port range {first}-{last}: FromPort is above "
                                    "ToPort")
    return first, last


def _flat(params: Params) -> list[PermissionSpec]:
    protocol_text = params.get("IpProtocol")
    source_name = params.get("SourceSecurityGroupName") or None
    owner = params.get("SourceSecurityGroupOwnerId") or None
    cidr = params.get("CidrIp") or None
    if owner is not None and source_name is None:
        raise MissingParameter(
            "The request must contain the parameter SourceSecurityGroupName")
    source = SourceRef(name=source_name, owner=owner) if source_name else None
    if protocol_text is None and params.get("FromPort") is None \
            and params.get("ToPort") is None and source is not None and cidr is None:
        # EC2-Classic: a group without protocol and ports is granted everything
        # its instances send (boto 2's deprecated call; euca-authorize -o)
        return [PermissionSpec("tcp", MIN_PORT, MAX_PORT, groups=(source,)),
                PermissionSpec("udp", MIN_PORT, MAX_PORT, groups=(source,)),
                PermissionSpec("icmp", -1, -1, groups=(source,))]
    if not protocol_text:
        raise MissingParameter("The request must contain the parameter IpProtocol")
    protocol = parse_protocol(protocol_text)
    first, last = parse_ports(protocol, params.get("FromPort"), params.get("ToPort"))
    if cidr is None and source is None:
        raise MissingParameter(_NO_SOURCE)
    return [PermissionSpec(protocol, first, last,
                           cidrs=(parse_cidr(cidr),) if cidr else (),
                           groups=(source,) if source else ())]


def _indexed(entry: dict[str, str], prefix: str) -> PermissionSpec:
    ranges: dict[int, dict[str, str]] = {}
    groups: dict[int, dict[str, str]] = {}
    for key, value in entry.items():
        if key in ("IpProtocol", "FromPort", "ToPort"):
            continue
        head = key.split(".", 1)[0]
        if head in _UNSUPPORTED:
            raise InvalidParameterValue(f"{prefix}{key}: {_UNSUPPORTED[head]}")
        match = _SUB.match(key)
        if match is None:
            raise InvalidParameterValue(f"The parameter {prefix}{key} is not recognized")
        kind, index, field = match.group(1), int(match.group(2)), match.group(3)
        if field == "Description":
            continue  # accepted, not kept (rule descriptions came after 2010)
        if (kind == "IpRanges" and field != "CidrIp") or \
                (kind == "Groups" and field not in _GROUP_FIELDS):
            raise InvalidParameterValue(f"The parameter {prefix}{key} is not recognized")
        (ranges if kind == "IpRanges" else groups).setdefault(index, {})[field] = value
    protocol_text = entry.get("IpProtocol")
    if not protocol_text:
        raise MissingParameter(f"The request must contain the parameter {prefix}IpProtocol")
    protocol = parse_protocol(protocol_text)
    first, last = parse_ports(protocol, entry.get("FromPort"), entry.get("ToPort"), prefix)
    cidrs = []
    for index in sorted(ranges):
        cidr = ranges[index].get("CidrIp")
        if not cidr:
            raise MissingParameter(
                f"The request must contain the parameter {prefix}IpRanges.{index}.CidrIp")
        cidrs.append(parse_cidr(cidr))
    refs = []
    for index in sorted(groups):
        fields = groups[index]
        if not fields.get("GroupName") and not fields.get("GroupId"):
            raise MissingParameter(f"The request must contain the parameter "
                                   f"{prefix}Groups.{index}.GroupName or GroupId")
        refs.append(SourceRef(name=fields.get("GroupName") or None,
                              group_id=fields.get("GroupId") or None,
                              owner=fields.get("UserId") or None))
    if not cidrs and not refs:
        raise MissingParameter(_NO_SOURCE)
    return PermissionSpec(protocol, first, last, tuple(cidrs), tuple(refs))


def parse_permissions(params: Params) -> list[PermissionSpec]:
    """
    @return: the permissions a request names, flat form first.
    @raise MissingParameter: no permission, or one without protocol, ports
        (tcp, udp) or source.
    @raise InvalidParameterValue: a malformed protocol, port, CIDR, or a
        parameter this cloud does not support.
    """
    specs: list[PermissionSpec] = []
    if any(params.get(name) is not None for name in _FLAT):
        specs.extend(_flat(params))
    indexed = params.get_indexed("IpPermissions")
    for index in sorted(indexed):
        specs.append(_indexed(indexed[index], f"IpPermissions.{index}."))
    if not specs:
        raise MissingParameter("The request must contain the parameter IpPermissions")
    return specs


__all__ = ["PermissionSpec", "SourceRef", "parse_permissions", "parse_protocol",
           "parse_ports"]
