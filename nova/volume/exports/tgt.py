"""
The Linux SCSI target framework (tgt) as data: C{tgtd} and C{tgtadm} argv
lists, and a parser of C{tgtadm --op show --mode target}.

Every function checks its inputs (target ids, LUNs, paths, the control
port, initiator addresses) so that no value can become an option. The
control port picks tgtd's management socket (C{/var/run/tgtd/socket.<port>},
a path, shared by every network namespace): each volume host on a machine
gets its own.
"""

from __future__ import annotations

import re
from typing import Sequence

import attr

from nova.utils import validate
from nova.volume import host_ids

__all__ = ["IQN_PREFIX", "TgtTarget", "iqn", "volume_of_iqn", "tgtd_argv", "show_targets",
           "target_new", "target_delete", "lun_new", "bind_initiator", "system_delete",
           "parse_show", "lowest_free_tid", "MAX_TID", "MAX_CONTROL_PORT"]

#: 2010 nova's target names: C{iqn.2010-10.org.openstack:<volume-id>}
IQN_PREFIX = "iqn.2010-10.org.openstack:"
#: tgt accepts target ids up to this (a 32-bit signed int; we stay well below)
MAX_TID = 65535
#: tgtd refuses larger control port numbers
MAX_CONTROL_PORT = 32767


@attr.s(frozen=True, auto_attribs=True)
class TgtTarget:
    """
    One target as C{tgtadm --op show} describes it.

    @ivar tid: its target id.
    @ivar iqn: its name.
    @ivar luns: LUN -> backing store path (C{None} for the controller, LUN 0).
    @ivar acl: the initiator addresses allowed (C{"ALL"} for everyone).
    @ivar sessions: how many I_T nexuses (logged-in initiators) it has.
    """

    tid: int
    iqn: str
    luns: dict[int, str | None] = attr.ib(factory=dict)
    acl: tuple[str, ...] = ()
    sessions: int = 0


def iqn(volume_id: str) -> str:
    """@return: the target name of a volume."""
    return IQN_PREFIX + host_ids.volume_id(volume_id)


def volume_of_iqn(name: str) -> str | None:
    """@return: the volume id a target name of nova's carries, else C{None}."""
    if not name.startswith(IQN_PREFIX):
        return None
    rest = name[len(IQN_PREFIX):]
    return rest if host_ids.VOLUME_ID.fullmatch(rest) else None


def _port(control_port: int) -> str:
    return str(host_ids.bounded_int("tgtd control port", control_port, 0, MAX_CONTROL_PORT))


def _tid(tid: int) -> str:
    return str(host_ids.bounded_int("target id", tid, 1, MAX_TID))


def _base(program: str, control_port: int) -> list[str]:
    return [program, "-C", _port(control_port), "--lld", "iscsi"]


def tgtd_argv(program: str, control_port: int, pid_file: str, portal: str,
              portal_port: int = 3260) -> list[str]:
    """
    The command that starts tgtd (it daemonizes once its sockets are open).

    @param portal: the IPv4 address its iSCSI portal listens on.
    """
    address = validate.ipv4_address(portal)
    port = validate.port_number(portal_port)
    return [program, "-C", _port(control_port), "--pid-file", host_ids.host_path(pid_file),
            "--iscsi", f"portal={address}:{port}"]


def show_targets(program: str, control_port: int) -> list[str]:
    """@return: C{tgtadm --op show --mode target}."""
    return _base(program, control_port) + ["--mode", "target", "--op", "show"]


def target_new(program: str, control_port: int, tid: int, name: str) -> list[str]:
    """@return: the command that creates target C{tid} named C{name}."""
    if volume_of_iqn(name) is None:
        raise host_ids.InvalidIdentifier(f"not a target name of nova's: {name!r}")
    return _base(program, control_port) + ["--mode", "target", "--op", "new",
                                           "--tid", _tid(tid), "--targetname", name]


def target_delete(program: str, control_port: int, tid: int, force: bool = False) -> list[str]:
    """@return: the command that deletes target C{tid} (C{--force}: even with sessions)."""
    return (_base(program, control_port) + ["--mode", "target", "--op", "delete"]
            + (["--force"] if force else []) + ["--tid", _tid(tid)])


def lun_new(program: str, control_port: int, tid: int, lun: int, path: str) -> list[str]:
    """@return: the command that adds logical unit C{lun} backed by C{path}."""
    return _base(program, control_port) + [
        "--mode", "logicalunit", "--op", "new", "--tid", _tid(tid),
        "--lun", str(host_ids.bounded_int("LUN", lun, 1, 255)),
        "--backing-store", host_ids.host_path(path)]


def bind_initiator(program: str, control_port: int, tid: int, address: str) -> list[str]:
    """
    @param address: C{"ALL"}, an IPv4 address or an IPv4 network.
    @return: the command that lets initiators from C{address} log in to C{tid}.
    """
    allowed = address if address == "ALL" else validate.ipv4_network(address, strict=False)
    if allowed.endswith("/32"):
        allowed = allowed[:-3]
    return _base(program, control_port) + ["--mode", "target", "--op", "bind",
                                           "--tid", _tid(tid), "--initiator-address", allowed]


def system_delete(program: str, control_port: int) -> list[str]:
    """@return: the command that stops tgtd (once it has no targets)."""
    return [program, "-C", _port(control_port), "--mode", "system", "--op", "delete"]


_TARGET = re.compile(r"Target (\d+): (\S+)\s*")
_SECTIONS = {"System information:": "system", "I_T nexus information:": "nexus",
             "LUN information:": "lun", "Account information:": "account",
             "ACL information:": "acl"}


def parse_show(text: str) -> list[TgtTarget]:
    """
    Parse C{tgtadm --op show --mode target}.

    @param text: its output.
    @return: the targets, in the order shown.
    """
    targets: list[TgtTarget] = []
    current: dict | None = None
    section = ""
    lun: int | None = None

    def finish() -> None:
        if current is not None:
            targets.append(TgtTarget(current["tid"], current["iqn"], current["luns"],
                                     tuple(current["acl"]), current["sessions"]))

    for line in text.splitlines():
        match = _TARGET.fullmatch(line)
        if match is not None:
            finish()
            current = {"tid": int(match.group(1)), "iqn": match.group(2), "luns": {},
                       "acl": [], "sessions": 0}
            section, lun = "", None
            continue
        stripped = line.strip()
        if current is None or not stripped:
            continue
        if stripped in _SECTIONS:
            section = _SECTIONS[stripped]
            continue
        if section == "nexus" and stripped.startswith("I_T nexus:"):
            current["sessions"] += 1
        elif section == "lun":
            if stripped.startswith("LUN:"):
                lun = int(stripped.split(":", 1)[1])
                current["luns"][lun] = None
            elif stripped.startswith("Backing store path:") and lun is not None:
                path = stripped.split(":", 1)[1].strip()
                current["luns"][lun] = None if path in ("", "None") else path
        elif section == "acl":
            current["acl"].append(stripped)
    finish()
    return targets


def lowest_free_tid(targets: Sequence[TgtTarget]) -> int:
    """@return: the smallest target id (from 1) that no target uses."""
    used = {t.tid for t in targets}
    tid = 1
    while tid in used:
        tid += 1
    if tid > MAX_TID:
        raise host_ids.InvalidIdentifier("no free target id")
    return tid
