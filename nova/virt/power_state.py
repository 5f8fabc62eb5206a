"""
Power states of a guest, numbered as in 2010 nova (and as libvirt's
C{virDomainState}, so libvirt's values pass through unchanged).
"""

from __future__ import annotations

NOSTATE = 0
RUNNING = 1
BLOCKED = 2
PAUSED = 3
SHUTDOWN = 4
SHUTOFF = 5
CRASHED = 6
SUSPENDED = 7

_NAMES = {
    NOSTATE: "pending",
    RUNNING: "running",
    BLOCKED: "blocked",
    PAUSED: "paused",
    SHUTDOWN: "shutdown",
    SHUTOFF: "shutoff",
    CRASHED: "crashed",
    SUSPENDED: "suspended",
}


def name(state: int) -> str:
    """
    @param state: one of the constants of this module.
    @return: its lower-case name (C{"unknown"} for anything else).
    """
    return _NAMES.get(state, "unknown")


def is_active(state: int) -> bool:
    """
    @param state: one of the constants of this module.
    @return: whether a guest in this state occupies a running hypervisor
        process (running, blocked, paused, or shutting down).
    """
    return state in (RUNNING, BLOCKED, PAUSED, SHUTDOWN)
