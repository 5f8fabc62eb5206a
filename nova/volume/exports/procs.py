"""
Finding the export daemons nova started (qemu-storage-daemon, tgtd, vblade)
again: by pid file, or by their exact command line, checked in
C{/proc/<pid>/cmdline} so that a recycled pid or somebody else's daemon is
never taken for ours (nor signalled).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from nova.utils.polling import poll_until

__all__ = ["cmdline", "read_pid", "daemon_pid", "find_processes", "wait_gone", "is_program"]


def cmdline(pid: int, proc_dir: str = "/proc") -> list[str] | None:
    """
    @return: the command line of process C{pid}; C{None} when there is no
        such process, an empty list for a zombie.
    """
    try:
        with open(os.path.join(proc_dir, str(pid), "cmdline"), "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def read_pid(pid_file: str) -> int | None:
    """@return: the positive pid in C{pid_file}, or C{None} (no file, no number)."""
    try:
        with open(pid_file, "rb") as f:
            pid = int(f.read().strip() or b"0")
    except (OSError, ValueError):
        return None
    return pid if pid > 0 else None


def is_program(argv: Sequence[str], program: str) -> bool:
    """@return: whether C{argv} runs C{program} (compared by base name)."""
    return bool(argv) and os.path.basename(argv[0]) == os.path.basename(program)


def daemon_pid(pid_file: str, program: str, marker: str, proc_dir: str = "/proc") -> int | None:
    """
    The live daemon that owns a pid file.

    @param pid_file: the pid file it was started with.
    @param program: its program (base name compared).
    @param marker: an argument its command line must contain (its pid
        file, its socket path...), which makes it ours.
    @return: its pid, or C{None}.
    """
    pid = read_pid(pid_file)
    if pid is None:
        return None
    argv = cmdline(pid, proc_dir)
    if not argv or not is_program(argv, program) or not any(marker in a for a in argv):
        return None
    return pid


def find_processes(match: Callable[[list[str]], bool], proc_dir: str = "/proc") -> list[int]:
    """
    @param match: tells from a command line whether the process is wanted.
    @return: the pids of the live processes whose command line matches.
    """
    found = []
    try:
        entries = os.listdir(proc_dir)
    except OSError:
        return []
    for entry in entries:
        if entry.isdigit():
            argv = cmdline(int(entry), proc_dir)
            if argv and match(argv):
                found.append(int(entry))
    return sorted(found)


async def wait_gone(pid: int, clock: Any, timeout: float, *, proc_dir: str = "/proc",
                    poll: float = 0.02) -> bool:
    """
    Wait until process C{pid} has ended (a zombie counts as ended).

    @return: whether it ended within C{timeout} seconds.
    """
    return await poll_until(clock, lambda: not cmdline(pid, proc_dir), timeout=timeout,
                            interval=poll)
