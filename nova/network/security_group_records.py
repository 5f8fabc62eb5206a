"""
Security groups as records: L{SecurityGroup} (a project's named set of
ingress rules) and L{IngressRule} (one rule: a protocol, a port or ICMP
range, and a source that is either a CIDR or another security group), the
errors of the security-group actions with their EC2 codes, and the checks
of names, descriptions and CIDRs that the repository and the API share.

A rule's source group is named as EC2-Classic names it: by its owner (here
the project, EC2's account) and its name. Its id is kept next to the name
for DescribeSecurityGroups; it is not part of the rule's identity, because a
group cannot be deleted while a rule names it, so the name stands for one
group as long as the rule exists.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from typing import Any, Iterable, Mapping

import attr

from nova.datastore.records import Record, _number, _str
from nova.exception import ClientError, Duplicate, InvalidParameterValue, NotFound

#: the group every project has, which instances join when no group is named
DEFAULT_GROUP = "default"
#: AWS: group names and descriptions are at most 255 characters
MAX_NAME = 255
PROTOCOLS = ("tcp", "udp", "icmp")
#: IpProtocol may be given by number too (IANA protocol numbers)
PROTOCOL_NUMBERS = {"6": "tcp", "17": "udp", "1": "icmp"}
#: the ports a tcp/udp rule may name (EC2 accepts 0, e.g. "0-65535")
MIN_PORT, MAX_PORT = 0, 65535
#: icmp type and code: -1 (any) or 0..255
MIN_ICMP, MAX_ICMP = -1, 255

_GROUP_ID = re.compile(r"sg-[0-9a-f]{8}\Z")


class InvalidGroupNotFound(NotFound):
    """The security group does not exist."""

    code = "InvalidGroup.NotFound"


class InvalidGroupDuplicate(Duplicate):
    """A security group of that name already exists in the project."""

    code = "InvalidGroup.Duplicate"


class InvalidGroupInUse(ClientError):
    """
    The group cannot be deleted: instances are in it, or another group's rule
    names it as its source (EC2-Classic answers C{InvalidGroup.InUse} for
    both; a VPC would answer C{DependencyViolation}).
    """

    code = "InvalidGroup.InUse"


class InvalidGroupReserved(ClientError):
    """The C{default} group cannot be deleted (EC2-Classic: InvalidGroup.Reserved)."""

    code = "InvalidGroup.Reserved"


class InvalidGroupIdMalformed(InvalidParameterValue):
    """A group id that is not C{sg-} and 8 hex digits."""

    code = "InvalidGroupId.Malformed"


class InvalidPermissionDuplicate(Duplicate):
    """The rule is already in the group."""

    code = "InvalidPermission.Duplicate"


class InvalidPermissionNotFound(NotFound):
    """The rule to revoke is not in the group."""

    code = "InvalidPermission.NotFound"


class InvalidSecurityGroupRule(InvalidParameterValue, ValueError):
    """
    A malformed rule, name or description. A C{ValueError} too, so that a
    stored record that fails these checks reads as corrupt.
    """


def new_group_id() -> str:
    """@return: a fresh security group id, C{sg-} and 8 hex digits (2010 EC2's form)."""
    return "sg-" + secrets.token_hex(4)


def check_group_id(group_id: str) -> str:
    """
    @return: C{group_id}, when it has the shape of one.
    @raise InvalidGroupIdMalformed: it does not.
    """
    if not isinstance(group_id, str) or not _GROUP_ID.match(group_id):
        raise InvalidGroupIdMalformed(f"Invalid id: \"{group_id}\" (expecting \"sg-...\")")
    return group_id


def _check_text(what: str, value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_NAME \
            or not all(32 <= ord(c) < 127 for c in value):
        raise InvalidSecurityGroupRule(
            f"Value ({value!r}) for parameter {what} is invalid. It must be 1 to "
            f"{MAX_NAME} printable ASCII characters.")
    return value


def check_group_name(name: str) -> str:
    """
    @return: C{name}, when it is a valid group name: 1 to 255 printable ASCII
        characters, not starting with C{sg-} (AWS keeps that prefix for ids,
        so a name can never be mistaken for one).
    @raise InvalidSecurityGroupRule: otherwise (InvalidParameterValue).
    """
    _check_text("GroupName", name)
    if name.startswith("sg-"):
        raise InvalidSecurityGroupRule(
            f"Value ({name}) for parameter GroupName is invalid. Group names may not "
            "start with 'sg-'.")
    return name


def check_description(description: str) -> str:
    """@return: C{description}, 1 to 255 printable ASCII characters."""
    return _check_text("GroupDescription", description)


def parse_cidr(text: str) -> str:
    """
    Read a rule's CIDR as EC2 does: an IPv4 address, C{/}, a prefix length.
    Host bits are masked off (C{10.0.0.5/24} is C{10.0.0.0/24}), as EC2 stores
    it; the rule is then shown, compared and revoked in that form.

    @return: the canonical network.
    @raise InvalidSecurityGroupRule: not an IPv4 CIDR (a bare address too).
    """
    if not isinstance(text, str) or text.count("/") != 1:
        raise InvalidSecurityGroupRule(
            f"Value ({text}) for parameter cidrIp is invalid. This is not a valid CIDR "
            "block (expected address/prefix, e.g. 10.0.0.0/24).")
    try:
        return str(ipaddress.IPv4Network(text, strict=False))
    except ValueError:
        raise InvalidSecurityGroupRule(
            f"Value ({text}) for parameter cidrIp is invalid. This is not a valid CIDR "
            "block.") from None


def parse_owner(owner: str) -> str:
    """
    @param owner: a source group's owner: a project id (EC2's account id), or
        2010 nova's C{user:project}.
    @return: the project id.
    @raise InvalidSecurityGroupRule: empty.
    """
    project = owner.rsplit(":", 1)[-1] if isinstance(owner, str) else ""
    if not project:
        raise InvalidSecurityGroupRule(
            f"Value ({owner!r}) for parameter SourceSecurityGroupOwnerId is invalid.")
    return project


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSecurityGroupRule(f"A port must be an integer, not {value!r}")
    return value


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class IngressRule:
    """
    One ingress rule of a security group.

    @ivar protocol: C{tcp}, C{udp} or C{icmp}.
    @ivar from_port: the first port (tcp, udp: 0..65535), or the ICMP type
        (-1: any).
    @ivar to_port: the last port, or the ICMP code (-1: any; must be -1
        when the type is).
    @ivar cidr: the source network, canonical (host bits zero); or C{None}.
    @ivar source_project: the owner project of the source group; or C{None}.
    @ivar source_name: the name of the source group; or C{None}.
    @ivar source_group_id: the source group's id, filled in by the repository
        when the rule is stored; not part of the rule's identity.
    """

    protocol: str = attr.ib(validator=_str())
    from_port: int = attr.ib(converter=_port)
    to_port: int = attr.ib(converter=_port)
    cidr: str | None = attr.ib(default=None)
    source_project: str | None = attr.ib(default=None)
    source_name: str | None = attr.ib(default=None)
    source_group_id: str | None = attr.ib(default=None, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise InvalidSecurityGroupRule(
                f"Invalid IP protocol {self.protocol!r}: tcp, udp or icmp")
        if self.protocol == "icmp":
            for value in (self.from_port, self.to_port):
                if not MIN_ICMP <= value <= MAX_ICMP:
                    raise InvalidSecurityGroupRule(
                        f"Invalid ICMP type or code {value}: -1 (any) or 0 to 255")
            if self.from_port == -1 and self.to_port != -1:
                raise InvalidSecurityGroupRule(
                    "An ICMP rule for any type (-1) must allow any code (-1)")
        else:
            for value in (self.from_port, self.to_port):
                if not MIN_PORT <= value <= MAX_PORT:
                    raise InvalidSecurityGroupRule(
                        f"Invalid port {value}: {MIN_PORT} to {MAX_PORT}")
            if self.from_port > self.to_port:
                raise InvalidSecurityGroupRule(
                    f"Invalid port range {self.from_port}-{self.to_port}: "
                    "the first port is above the last")
        has_source = self.source_project is not None or self.source_name is not None
        if (self.cidr is None) == (not has_source):
            raise InvalidSecurityGroupRule("A rule has either a CIDR or a source group")
        if self.cidr is not None and parse_cidr(self.cidr) != self.cidr:
            raise InvalidSecurityGroupRule(f"The CIDR {self.cidr!r} is not canonical")
        if has_source:
            if not self.source_project or not isinstance(self.source_project, str):
                raise InvalidSecurityGroupRule("A source group needs its owner project")
            _check_text("SourceSecurityGroupName", self.source_name)
        if self.source_group_id is not None:
            check_group_id(self.source_group_id)

    @property
    def source(self) -> tuple[str, str] | None:
        """@return: C{(project, name)} of the source group, or C{None} for a CIDR rule."""
        if self.source_project is None or self.source_name is None:
            return None
        return (self.source_project, self.source_name)

    def sort_key(self) -> tuple[Any, ...]:
        """@return: a key giving rules a stable order (protocol, ports, source)."""
        return (self.protocol, self.from_port, self.to_port,
                _cidr_order(self.cidr) if self.cidr else (1, 0, 0),
                self.source_project or "", self.source_name or "")


def _cidr_order(cidr: str) -> tuple[int, int, int]:
    net = ipaddress.IPv4Network(cidr)
    return (0, int(net.network_address), net.prefixlen)


def _rules(value: Any) -> tuple[IngressRule, ...]:
    # JSON brings rules back as a list of objects
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"rules must be a list, not {type(value).__name__}")
    out = []
    for item in value:
        if isinstance(item, IngressRule):
            out.append(item)
        elif isinstance(item, Mapping):
            out.append(IngressRule(**item))
        else:
            raise TypeError(f"a rule must be an object, not {item!r}")
    return tuple(out)


def _group_name(_inst: Any, _attribute: Any, value: Any) -> None:
    # "default" is written by the repository itself; other names as users give them
    _check_text("GroupName", value)


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class SecurityGroup(Record):
    """
    A project's security group: a name, and the ingress rules its instances
    accept (nothing else reaches them).

    @ivar group_id: C{sg-} and 8 hex digits, unique in the cloud.
    @ivar project_id: the owner (EC2's C{ownerId}).
    @ivar user_id: the user who created it (C{None}: created by nova itself,
        e.g. a launch into a project's C{default} group before it existed).
    @ivar rules: in the order they were authorized.
    @ivar created_at: seconds since the epoch.
    """

    group_id: str = attr.ib(validator=[_str(), lambda _i, _a, v: check_group_id(v)])
    project_id: str = attr.ib(validator=_str())
    name: str = attr.ib(validator=_group_name)
    description: str = attr.ib(validator=_str())
    user_id: str | None = attr.ib(default=None,
                                  validator=attr.validators.optional(_str()))
    rules: tuple[IngressRule, ...] = attr.ib(factory=tuple, converter=_rules)
    created_at: float = attr.ib(converter=_number)

    def sources(self) -> set[tuple[str, str]]:
        """@return: the C{(project, name)} of every group its rules name as source."""
        return {r.source for r in self.rules if r.source is not None}


def dedupe(rules: Iterable[IngressRule]) -> list[IngressRule]:
    """
    @return: C{rules} in order, when no rule appears twice.
    @raise InvalidSecurityGroupRule: one does: EC2 answers InvalidParameterValue,
        "The same permission must not appear multiple times".
    """
    seen: list[IngressRule] = []
    for rule in rules:
        if rule in seen:
            raise InvalidSecurityGroupRule(
                "The same permission must not appear multiple times "
                f"({describe_rule(rule)})")
        seen.append(rule)
    return seen


def describe_rule(rule: IngressRule) -> str:
    """@return: a rule in words, for error messages."""
    source = rule.cidr if rule.cidr is not None else f"{rule.source_project}/{rule.source_name}"
    return f"{rule.protocol} {rule.from_port}-{rule.to_port} from {source}"


__all__ = [
    "DEFAULT_GROUP", "SecurityGroup", "IngressRule", "new_group_id", "check_group_id",
    "check_group_name", "check_description", "parse_cidr", "parse_owner", "dedupe",
    "describe_rule", "InvalidGroupNotFound", "InvalidGroupDuplicate", "InvalidGroupInUse",
    "InvalidGroupReserved", "InvalidGroupIdMalformed", "InvalidPermissionDuplicate",
    "InvalidPermissionNotFound", "InvalidSecurityGroupRule", "PROTOCOLS", "PROTOCOL_NUMBERS",
]
