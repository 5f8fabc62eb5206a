"""
nova's iptables rules, as C{iptables-restore --noflush} input.

nova writes only chains of its own, all named C{nova-*}:

    - top chains, one per built-in chain nova hooks into (C{nova-PREROUTING},
      C{nova-OUTPUT}, C{nova-POSTROUTING} in C{nat}; C{nova-FORWARD} and
      C{nova-OUTPUT} in C{filter}), each reached by a single C{-j} rule in
      the built-in chain;
    - object chains, one per thing: C{nova-metadata} (169.254.169.254:80
      redirected to the metadata service), C{nova-snat-<bridge>} (a
      network's outbound NAT), C{nova-fdnat-<ip>} and C{nova-fsnat-<ip>} (a
      floating IP), C{nova-<ec2 instance id>} (C{nova-i-...}) (an instance's security-group
      filter, reached from C{FORWARD} for routed and bridged traffic and
      from C{OUTPUT} for traffic the host itself sends to the guest).

A change is one transaction: the top chains are re-declared (which flushes
them) and refilled with a jump to every object chain that is to exist, the
object chains being written are re-declared and filled, the ones being
removed are declared (flushed) and deleted. The list of existing object
chains comes from C{iptables-save} (L{parse_save}), so a restarted nova
picks up what it wrote before and never touches any other rule.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Callable, Iterable, Mapping, Sequence

import attr

from nova.network.linux_net import tap_name
from nova.utils import validate
from nova.utils.validate import InvalidIdentifier

__all__ = [
    "TOP_CHAINS",
    "METADATA_CHAIN",
    "METADATA_ADDRESS",
    "SecurityRule",
    "InstanceFilter",
    "SavedTable",
    "Dialect",
    "IPTABLES",
    "parse_save",
    "snat_chain",
    "floating_chains",
    "instance_chain",
    "network_snat_rules",
    "floating_dnat_rules",
    "floating_snat_rules",
    "instance_filter_rules",
    "metadata_redirect_rules",
    "restore_input",
    "iptables_save",
    "iptables_restore",
]

#: table -> built-in chain -> nova's top chain hooked into it.
TOP_CHAINS: dict[str, dict[str, str]] = {
    "nat": {"PREROUTING": "nova-PREROUTING", "OUTPUT": "nova-OUTPUT",
            "POSTROUTING": "nova-POSTROUTING"},
    "filter": {"INPUT": "nova-INPUT", "FORWARD": "nova-FORWARD", "OUTPUT": "nova-OUTPUT"},
}

#: The chain redirecting the metadata address (nat, from nova-PREROUTING).
METADATA_CHAIN = "nova-metadata"
#: EC2's metadata address.
METADATA_ADDRESS = "169.254.169.254"

#: table -> (object chain prefix, the top chains that jump to it), in the
#: order the jumps appear (floating SNAT before a network's MASQUERADE).
_JUMPS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "nat": [(METADATA_CHAIN, ("nova-PREROUTING",)),
            ("nova-fdnat-", ("nova-PREROUTING", "nova-OUTPUT")),
            ("nova-fsnat-", ("nova-POSTROUTING",)),
            ("nova-snat-", ("nova-POSTROUTING",))],
    # INPUT: what a guest sends to the host itself (the metadata proxy) passes
    # its chain's anti-spoofing check too
    "filter": [("nova-i-", ("nova-INPUT", "nova-FORWARD", "nova-OUTPUT"))],
}



@attr.s(frozen=True, auto_attribs=True)
class Dialect:
    """
    How one tool's C{-restore} input declares nova's chains and hooks them.

    @ivar tops: table -> built-in chain -> nova's top chain hooked into it.
    @ivar jumps: table -> (object chain prefix, the top chains jumping to it).
    @ivar declare: a chain declaration, with C{{}} for the name.
    @ivar tool: C{iptables} or C{ebtables}: its C{-save} and C{-restore}.
    """

    tops: Mapping[str, Mapping[str, str]]
    jumps: Mapping[str, Sequence[tuple[str, tuple[str, ...]]]]
    declare: str
    tool: str

    def save_argv(self, table: str) -> list[str]:
        """@return: the command printing one table."""
        if table not in self.tops:
            raise InvalidIdentifier(f"unknown table {table!r}")
        return [f"{self.tool}-save", "-t", table]

    def restore_argv(self) -> list[str]:
        """@return: the command applying L{restore_input} (from stdin), leaving other rules."""
        return [f"{self.tool}-restore", "--noflush"]


#: iptables (tables C{nat} and C{filter})
IPTABLES = Dialect(TOP_CHAINS, _JUMPS, ":{} - [0:0]", "iptables")

# Every token of a rule must look like an option, a name, an address or a
# number: no blank, quote, '#' or newline can reach iptables-restore's parser.
_TOKEN = re.compile(r"[A-Za-z0-9_.:/,!+-]{1,64}")
_CHAIN = re.compile(r"nova-[A-Za-z0-9_.-]{1,23}")

Rule = Sequence[str]


@attr.s(frozen=True, auto_attribs=True)
class SecurityRule:
    """
    One security-group ingress rule: C{protocol} from C{cidr} to ports
    C{from_port}-C{to_port} (for icmp: type C{from_port}, -1 for any).
    """

    protocol: str
    from_port: int
    to_port: int
    cidr: str = attr.ib(converter=validate.ipv4_network)

    def __attrs_post_init__(self) -> None:
        if self.protocol not in ("tcp", "udp", "icmp"):
            raise InvalidIdentifier(f"invalid protocol {self.protocol!r}: tcp, udp or icmp")
        if self.protocol == "icmp":
            for value in (self.from_port, self.to_port):
                if isinstance(value, bool) or not isinstance(value, int) or not -1 <= value <= 255:
                    raise InvalidIdentifier(f"invalid icmp type/code {value!r}")
        else:
            validate.port_number(self.from_port)
            validate.port_number(self.to_port)
            if self.from_port > self.to_port:
                raise InvalidIdentifier(f"port range {self.from_port}-{self.to_port} is reversed")


@attr.s(frozen=True, auto_attribs=True)
class SavedTable:
    """
    What C{iptables-save} shows of one table.

    @ivar chains: every chain name declared.
    @ivar rules: every C{-A ...} line, as written.
    """

    chains: frozenset[str]
    rules: tuple[str, ...]


def parse_save(text: str) -> dict[str, SavedTable]:
    """
    Read C{iptables-save} (or C{ebtables-save}) output.

    @param text: its output.
    @return: table name -> L{SavedTable}.
    """
    tables: dict[str, SavedTable] = {}
    table: str | None = None
    chains: set[str] = set()
    rules: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("*"):
            if table is not None:  # ebtables-save ends a table without COMMIT
                tables[table] = SavedTable(frozenset(chains), tuple(rules))
            table, chains, rules = line[1:], set(), []
        elif table is None:
            continue
        elif line.startswith(":"):
            chains.add(line[1:].split()[0])
        elif line.startswith("-A "):
            rules.append(line)
        elif line == "COMMIT":
            tables[table] = SavedTable(frozenset(chains), tuple(rules))
            table = None
    if table is not None:
        tables[table] = SavedTable(frozenset(chains), tuple(rules))
    return tables


def _chain(name: str) -> str:
    if _CHAIN.fullmatch(name) is None:
        raise InvalidIdentifier(f"invalid nova chain name {name!r}")
    return name


def snat_chain(bridge: str) -> str:
    """@return: C{nova-snat-<bridge>}, the outbound NAT chain of the network on C{bridge}."""
    return _chain(f"nova-snat-{validate.interface_name(bridge)}")


def floating_chains(floating_ip: str) -> tuple[str, str]:
    """@return: the floating IP's (DNAT chain, SNAT chain)."""
    ip = validate.ipv4_address(floating_ip)
    return _chain(f"nova-fdnat-{ip}"), _chain(f"nova-fsnat-{ip}")


def instance_chain(instance_id: str) -> str:
    """@return: C{nova-<ec2 instance id>} (C{nova-i-...}), the instance's filter chain."""
    tap_name(instance_id)  # the same validation: i- and 8 hex digits
    return _chain(f"nova-{instance_id}")


def network_snat_rules(cidr: str, *, source_ip: str | None = None,
                       out_interface: str | None = None) -> list[list[str]]:
    """
    Outbound NAT of a project network (2010: C{-s fixed_range -j SNAT}).

    Traffic inside the network, and traffic routed to another project
    network (out through a C{novabr*} bridge), is left alone: the other
    network's filters must see the real source, or a masqueraded packet
    would come from that network's own gateway and pass as project
    traffic. The rest is SNATed to C{source_ip}, or MASQUERADEd when none
    is given.

    @param cidr: the network.
    @param source_ip: the address to SNAT to.
    @param out_interface: only NAT traffic leaving through this interface.
    @return: the rules (without C{-A chain}).
    """
    net = validate.ipv4_network(cidr)
    out = ["-o", validate.interface_name(out_interface)] if out_interface else []
    target = (["-j", "SNAT", "--to-source", validate.ipv4_address(source_ip)]
              if source_ip is not None else ["-j", "MASQUERADE"])
    return [["-s", net, "-d", net, "-j", "ACCEPT"], ["-o", "novabr+", "-j", "ACCEPT"],
            ["-s", net, *out, *target]]


def floating_dnat_rules(floating_ip: str, fixed_ip: str) -> list[list[str]]:
    """@return: the rule sending traffic for C{floating_ip} to C{fixed_ip}."""
    return [["-d", f"{validate.ipv4_address(floating_ip)}/32", "-j", "DNAT",
             "--to-destination", validate.ipv4_address(fixed_ip)]]


def floating_snat_rules(floating_ip: str, fixed_ip: str) -> list[list[str]]:
    """@return: the rule making C{fixed_ip}'s outbound traffic come from C{floating_ip}."""
    return [["-s", f"{validate.ipv4_address(fixed_ip)}/32", "-j", "SNAT",
             "--to-source", validate.ipv4_address(floating_ip)]]


def anti_spoofing_rules(fixed_ip: str, tap: str) -> list[list[str]]:
    """
    What comes in from the instance's tap must carry its address (or be a
    DHCP request from no address yet): a guest cannot pose as another one,
    e.g. to read that one's metadata (which answers by source address).

    @param fixed_ip: the instance's address.
    @param tap: the host side of its NIC (L{nova.network.linux_net.tap_name}).
    @return: the rules (without C{-A chain}).
    """
    ip = f"{validate.ipv4_address(fixed_ip)}/32"
    port = ["-m", "physdev", "--physdev-in", validate.interface_name(tap)]
    return [[*port, "-s", "0.0.0.0/32", "-p", "udp", "--sport", "68", "--dport", "67",
             "-j", "RETURN"],
            ["!", "-s", ip, *port, "-j", "DROP"]]


def instance_filter_rules(fixed_ip: str, rules: Iterable[SecurityRule], *,
                          dhcp_server: str | None = None,
                          project_cidr: str | None = None,
                          tap: str | None = None) -> list[list[str]]:
    """
    An instance's ingress filter: replies, DHCP from its server, the
    security-group rules and (with C{project_cidr}) its project's network
    are accepted; everything else to it is dropped.

    The network host's own address (C{dhcp_server}, the gateway) is not a
    guest of the project: when it lies in C{project_cidr} it gets only what
    the rules allow, so that traffic the host sends (SSH from inside the
    host's namespace) is filtered like any other source.

    @param fixed_ip: the instance's address (other traffic returns at once).
    @param rules: its security groups' rules.
    @param dhcp_server: the network's dnsmasq address.
    @param project_cidr: accept anything from this network (2010's
        C{allow_project_net_traffic}).
    @param tap: the instance's tap: what it sends is checked first
        (L{anti_spoofing_rules}).
    @return: the rules (without C{-A chain}).
    """
    ip = f"{validate.ipv4_address(fixed_ip)}/32"
    out = [*(anti_spoofing_rules(fixed_ip, tap) if tap is not None else []),
           ["!", "-d", ip, "-j", "RETURN"],
           ["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"]]
    server = f"{validate.ipv4_address(dhcp_server)}/32" if dhcp_server is not None else None
    if server is not None:
        out.append(["-s", server, "-p", "udp", "--sport", "67", "--dport", "68",
                    "-j", "ACCEPT"])
    for rule in rules:
        if not isinstance(rule, SecurityRule):
            raise InvalidIdentifier(f"not a SecurityRule: {rule!r}")
        match = ["-s", rule.cidr, "-p", rule.protocol]
        if rule.protocol == "icmp":
            if rule.from_port != -1:
                kind = str(rule.from_port) + ("" if rule.to_port == -1 else f"/{rule.to_port}")
                match += ["--icmp-type", kind]
        else:
            match += ["--dport", f"{rule.from_port}:{rule.to_port}"]
        out.append([*match, "-j", "ACCEPT"])
    if project_cidr is not None:
        net = validate.ipv4_network(project_cidr)
        if server is not None and ipaddress.IPv4Address(server[:-3]) in \
                ipaddress.IPv4Network(net):
            out.append(["-s", server, "-j", "DROP"])
        out.append(["-s", net, "-j", "ACCEPT"])
    out.append(["-j", "DROP"])
    return out


def _rule_tuple(value: Iterable[SecurityRule]) -> tuple[SecurityRule, ...]:
    rules = tuple(value)
    for rule in rules:
        if not isinstance(rule, SecurityRule):
            raise InvalidIdentifier(f"not a SecurityRule: {rule!r}")
    return rules


def _optional(check: Callable[[str], str]) -> Callable[[str | None], str | None]:
    return lambda value: None if value is None else check(value)


@attr.s(frozen=True, auto_attribs=True)
class InstanceFilter:
    """
    What an instance's filter chain is made of (see L{instance_filter_rules}).

    @ivar fixed_ip: the instance's address.
    @ivar rules: its security groups' ingress rules.
    @ivar dhcp_server: its network's DHCP server (the gateway), whose
        replies are let through; C{None}: none.
    @ivar project_cidr: its project's network, all of whose guests may
        reach it (C{allow_project_net_traffic}); C{None}: only the rules.
    @ivar tap: the host side of its NIC, for the anti-spoofing check
        (C{None}: none).
    @ivar mac: its NIC's MAC: with C{tap}, its frames are checked below IP
        too (L{nova.network.linux_net_ebtables}); C{None}: not.
    """

    fixed_ip: str = attr.ib(converter=validate.ipv4_address)
    rules: tuple[SecurityRule, ...] = attr.ib(default=(), converter=_rule_tuple)
    dhcp_server: str | None = attr.ib(default=None,
                                      converter=_optional(validate.ipv4_address))
    project_cidr: str | None = attr.ib(default=None,
                                       converter=_optional(validate.ipv4_network))
    tap: str | None = attr.ib(default=None, converter=_optional(validate.interface_name))
    mac: str | None = attr.ib(default=None, converter=_optional(validate.mac_address))

    def chain_rules(self) -> list[list[str]]:
        """@return: the chain's rules (without C{-A chain})."""
        return instance_filter_rules(self.fixed_ip, self.rules, dhcp_server=self.dhcp_server,
                                     project_cidr=self.project_cidr, tap=self.tap)


def metadata_redirect_rules(port: int, *,
                            dnat_to: tuple[str, int] | None = None) -> list[list[str]]:
    """
    Guests' requests to C{169.254.169.254:80}, sent to the metadata service.

    @param port: with no C{dnat_to}, the local port they are redirected to
        (C{REDIRECT}: a metadata proxy listening in the host's namespace).
    @param dnat_to: C{(address, port)} to C{DNAT} them to instead (2010's
        way, to nova-api's metadata port); not a loopback address, which
        the kernel does not route to from another interface.
    @return: the rules (without C{-A chain}).
    @raise InvalidIdentifier: for a bad port or address.
    """
    match = ["-d", f"{METADATA_ADDRESS}/32", "-p", "tcp", "--dport", "80"]
    if dnat_to is None:
        return [[*match, "-j", "REDIRECT", "--to-ports", str(validate.port_number(port))]]
    address, dport = dnat_to
    address = validate.ipv4_address(address)
    if ipaddress.IPv4Address(address).is_loopback:
        raise InvalidIdentifier(f"cannot DNAT the metadata address to loopback {address}")
    return [[*match, "-j", "DNAT", "--to-destination",
             f"{address}:{validate.port_number(dport)}"]]


def _line(chain: str, rule: Rule) -> str:
    tokens = [str(t) for t in rule]
    for token in tokens:
        if _TOKEN.fullmatch(token) is None:
            raise InvalidIdentifier(f"unsafe iptables token {token!r}")
    return " ".join(["-A", chain, *tokens])


def restore_input(table: str, saved: SavedTable | None, *,
                  write: Mapping[str, Sequence[Rule]] = {},
                  delete: Iterable[str] = (), dialect: Dialect = IPTABLES) -> str:
    """
    The C{iptables-restore --noflush} input that writes and deletes object
    chains of one table and keeps the top chains and hooks consistent.

    When no object chain is left, the hooks and top chains go too.

    @param table: C{nat} or C{filter}.
    @param saved: what the table holds now (L{parse_save}); C{None}: empty.
    @param write: object chain -> its rules (without C{-A chain}).
    @param delete: object chains to remove (absent ones are ignored).
    @param dialect: the tool (L{IPTABLES}, or ebtables' in
        L{nova.network.linux_net_ebtables}).
    @return: the input text.
    @raise InvalidIdentifier: for an unknown table, a chain without a
        known prefix, or an unsafe token.
    """
    if table not in dialect.tops:
        raise InvalidIdentifier(f"unknown table {table!r}")
    tops = dialect.tops[table]
    jumps = dialect.jumps[table]
    current = saved.chains if saved is not None else frozenset()
    current_rules = saved.rules if saved is not None else ()

    def order(name: str) -> tuple[int, str]:
        for index, (prefix, _) in enumerate(jumps):
            if name.startswith(prefix):
                return index, name
        raise InvalidIdentifier(f"{name!r} is not a nova object chain of table {table}")

    writes = {_chain(name): rules for name, rules in write.items()}
    deletes = {_chain(name) for name in delete if name in current} - set(writes)
    existing = {name for name in current if name.startswith("nova-")
                and any(name.startswith(p) for p, _ in jumps)}
    wanted = sorted((existing | set(writes)) - deletes, key=order)
    for name in wanted:
        order(name)
    if not deletes and _unchanged(current_rules, tops, jumps, writes, wanted):
        # what would be written is there already, line for line (ebtables-save
        # prints rules as nova writes them; iptables-save normalises them, so
        # an iptables table is always rewritten)
        return f"*{table}\nCOMMIT\n"
    lines = [f"*{table}"]
    if wanted:
        lines += [dialect.declare.format(top) for top in tops.values()]
    lines += [dialect.declare.format(name) for name in sorted(set(writes) | deletes)]
    for builtin, top in tops.items():
        hook = f"-A {builtin} -j {top}"
        present = hook in current_rules
        if wanted and not present:
            lines.append(f"-I {builtin} 1 -j {top}")
        elif not wanted and present:
            lines.append(f"-D {builtin} -j {top}")
    for name in sorted(writes):
        lines += [_line(name, rule) for rule in writes[name]]
    for name in wanted:
        prefix_tops = next(t for p, t in jumps if name.startswith(p))
        lines += [_line(top, ["-j", name]) for top in prefix_tops]
    lines += [f"-X {name}" for name in sorted(deletes)]
    if not wanted:
        # Declared (flushed) so the delete works even if a stray rule is in it.
        for top in tops.values():
            if top in current:
                lines.insert(1, dialect.declare.format(top))
                lines.append(f"-X {top}")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def _unchanged(current_rules: Sequence[str], tops: Mapping[str, str],
               jumps: Sequence[tuple[str, tuple[str, ...]]],
               writes: Mapping[str, Sequence[Rule]], wanted: Sequence[str]) -> bool:
    """@return: whether C{current_rules} already hold the writes, the jumps and the hooks."""
    if not wanted:
        return False
    if any(f"-A {builtin} -j {top}" not in current_rules for builtin, top in tops.items()):
        return False
    for name, rules in writes.items():
        if [_line(name, rule) for rule in rules] != \
                [line for line in current_rules if line.startswith(f"-A {name} ")]:
            return False
    for top in tops.values():
        expected = [f"-A {top} -j {name}" for name in wanted
                    if top in next(t for p, t in jumps if name.startswith(p))]
        if expected != [line for line in current_rules if line.startswith(f"-A {top} ")]:
            return False
    return True


def iptables_save(table: str) -> list[str]:
    """@return: the command printing one table."""
    return IPTABLES.save_argv(table)


def iptables_restore() -> list[str]:
    """@return: the command applying L{restore_input} (from stdin), leaving other rules."""
    return IPTABLES.restore_argv()
