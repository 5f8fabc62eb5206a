"""
nova-dhcpbridge: the lease script dnsmasq runs (C{--dhcp-script}).

dnsmasq calls it as C{nova-dhcpbridge add|old|del MAC IP [HOSTNAME]} on
every lease change, and, because nova runs dnsmasq with C{--leasefile-ro},
as C{nova-dhcpbridge init} at start to learn the current leases. An event
goes to nova-network's socket (L{nova.network.dhcp_client}); when nova-network
does not answer, it becomes one JSON line appended to the file named by the
C{NOVA_DHCPBRIDGE_EVENTS} environment variable (replayed by nova-network at
start), and C{init} replays that file. It never makes dnsmasq fail: whatever happens it exits 0 and reports problems on stderr,
which dnsmasq logs.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from typing import Mapping, Sequence, TextIO

from nova.utils import validate

__all__ = ["EVENTS_ENV", "main", "make_event", "record", "current_leases"]

EVENTS_ENV = "NOVA_DHCPBRIDGE_EVENTS"
ACTIONS = ("add", "old", "del")


def make_event(action: str, mac: str, ip: str, hostname: str | None,
               environ: Mapping[str, str], now: float) -> dict[str, object]:
    """
    One lease event, as the event file and the socket carry it.

    @param action: C{add}, C{old} or C{del}.
    @param mac: the client's MAC.
    @param ip: the leased address.
    @param hostname: the name the client gave, if any.
    @param environ: dnsmasq's C{DNSMASQ_INTERFACE} and
        C{DNSMASQ_LEASE_EXPIRES} are taken from it.
    @param now: the event time (seconds since the epoch).
    @return: the event (C{time}, C{action}, C{mac}, C{ip}, C{hostname},
        C{interface}, and C{expires} when dnsmasq gave it).
    @raise ValueError: for a bad action, MAC or IP.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    event: dict[str, object] = {
        "time": now, "action": action, "mac": validate.mac_address(mac),
        "ip": validate.ipv4_address(ip), "hostname": hostname or None,
        "interface": environ.get("DNSMASQ_INTERFACE"),
    }
    expires = environ.get("DNSMASQ_LEASE_EXPIRES")
    if expires and expires.isdigit():
        event["expires"] = int(expires)
    return event


def record(path: str, action: str, mac: str, ip: str, hostname: str | None,
           environ: Mapping[str, str], now: float) -> dict[str, object]:
    """
    Append one lease event to the JSON-lines file.

    @param path: the event file.
    @param action: C{add}, C{old} or C{del}.
    @param mac: the client's MAC.
    @param ip: the leased address.
    @param hostname: the name the client gave, if any.
    @param environ: dnsmasq's C{DNSMASQ_*} variables are taken from it.
    @param now: the event time (seconds since the epoch).
    @return: the recorded event.
    @raise ValueError: for a bad action, MAC or IP.
    """
    event = make_event(action, mac, ip, hostname, environ, now)
    line = (json.dumps(event, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
    finally:
        os.close(fd)
    return event


def current_leases(path: str, now: float) -> list[dict[str, object]]:
    """
    Replay the event file: the leases still held (latest event per IP not
    C{del}, not expired).

    @param path: the event file (missing: no leases).
    @param now: the current time.
    @return: the latest event of each held lease.
    """
    leases: dict[str, dict[str, object]] = {}
    try:
        with open(path, "rb") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    for raw in lines:
        try:
            event = json.loads(raw)
            ip = str(event["ip"])
        except (ValueError, KeyError, TypeError):
            continue  # a torn or foreign line: skip it
        if event.get("action") == "del":
            leases.pop(ip, None)
        else:
            leases[ip] = event
    return [e for e in leases.values()
            if not isinstance(e.get("expires"), int) or e["expires"] > now]


def main(argv: Sequence[str], environ: Mapping[str, str] | None = None,
         stdout: TextIO | None = None, stderr: TextIO | None = None,
         now: float | None = None) -> int:
    """
    Run the lease script.

    @param argv: the arguments after the program name.
    @param environ: the environment (default: the process's).
    @param stdout: where C{init} prints leases.
    @param stderr: where problems are reported.
    @param now: the current time (tests).
    @return: always 0, so that dnsmasq carries on.
    """
    environ = os.environ if environ is None else environ
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    now = time.time() if now is None else now
    try:
        path = environ.get(EVENTS_ENV)
        if not path:
            raise ValueError(f"{EVENTS_ENV} is not set: nowhere to record the event")
        if list(argv[:1]) == ["init"]:
            # dnsmasq's lease database format: expiry mac ip hostname clientid
            for lease in current_leases(path, now):
                stdout.write(f"{lease.get('expires', 0)} {lease['mac']} {lease['ip']}"
                             f" {lease.get('hostname') or '*'} *\n")
            return 0
        if len(argv) < 3 or argv[0] not in ACTIONS:
            if argv and argv[0] in ("tftp", "arp", "arp-add", "arp-del", "relay-snoop"):
                return 0  # other dnsmasq events nova does not follow
            raise ValueError(f"usage: nova-dhcpbridge add|old|del MAC IP [HOSTNAME],"
                             f" got {list(argv)!r}")
        record(path, argv[0], argv[1], argv[2], argv[3] if len(argv) > 3 else None,
               environ, now)
    except Exception as e:  # noqa: BLE001 - the script must never fail dnsmasq
        stderr.write(f"nova-dhcpbridge: {type(e).__name__}: {e}\n")
    return 0
