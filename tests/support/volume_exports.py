"""
Helpers of the volume export tests: skip reasons, network namespaces that
are removed with all their processes, and backing files with a known
pattern.
"""

from __future__ import annotations

import os
import signal
import tempfile
import uuid
from typing import Any

from twisted.internet import defer

from nova.utils.process import ProcessRunner, find_executable

SEARCH = os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin", "/sbin"])
SECTOR = 512


def missing(*programs: str, root: bool = True) -> str | None:
    """@return: why a real test cannot run here, or C{None}."""
    if root and os.geteuid() != 0:
        return "needs root (network namespaces, raw sockets, daemons)"
    absent = [p for p in programs if find_executable(p, SEARCH) is None]
    if absent:
        return f"not installed: {', '.join(absent)} (run tools/install-debian-packages)"
    return None


def real_runner() -> ProcessRunner:
    """@return: a L{ProcessRunner} on the global reactor (real tests only)."""
    from twisted.internet import reactor
    return ProcessRunner(reactor, search_path=SEARCH)


def short_tempdir(test: Any) -> str:
    """
    A fresh directory under /tmp (unix socket paths must stay under 107
    bytes, which trial's own temporary directories do not), removed in
    cleanup.
    """
    import shutil
    path = tempfile.mkdtemp(prefix="nvt-")
    test.addCleanup(shutil.rmtree, path, True)
    return path


def unique_tag() -> str:
    """@return: 8 hex digits for the names of one test."""
    return uuid.uuid4().hex[:8]


async def make_netns(test: Any, runner: ProcessRunner, name: str) -> str:
    """Create namespace C{name} (lo up); cleanup kills what runs in it and deletes it."""
    await runner.run(["ip", "netns", "add", name])
    test.addCleanup(lambda: defer.Deferred.fromCoroutine(drop_netns(runner, name)))
    await runner.run(["ip", "link", "set", "lo", "up"], netns=name)
    return name


async def drop_netns(runner: ProcessRunner, name: str) -> None:
    """Kill every process in namespace C{name} and delete it (idempotent)."""
    pids = await runner.run(["ip", "netns", "pids", name], check=False)
    for pid in pids.stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    await runner.run(["ip", "netns", "delete", name], check=False)


def forget_tgtd_sockets(test: Any, control_port: int, run_dir: str = "/var/run/tgtd") -> None:
    """
    Remove tgtd's management socket files of C{control_port} in cleanup (a
    tgtd killed with its namespace leaves them). Call it before
    L{make_netns}: cleanups run last-in first-out.
    """
    def remove() -> None:
        for name in (f"socket.{control_port}", f"socket.{control_port}.lock"):
            try:
                os.unlink(os.path.join(run_dir, name))
            except FileNotFoundError:
                pass
    test.addCleanup(remove)


def pattern(sector: int) -> bytes:
    """@return: the 512 bytes L{write_pattern} puts in sector C{sector}."""
    line = f"nova sector {sector:08d} ".encode()
    return (line * (SECTOR // len(line) + 1))[:SECTOR]


def write_pattern(path: str, sectors: list[int]) -> None:
    """Write L{pattern} into the given sectors of an existing (sparse) file."""
    with open(path, "r+b") as f:
        for sector in sectors:
            f.seek(sector * SECTOR)
            f.write(pattern(sector))
        f.flush()
        os.fsync(f.fileno())


def read_sectors(path: str, first: int, count: int) -> bytes:
    """@return: C{count} sectors of a file from sector C{first}."""
    with open(path, "rb") as f:
        f.seek(first * SECTOR)
        return f.read(count * SECTOR)


def coroutine_test(fn: Any) -> Any:
    """Run an C{async def} test method as trial's Deferred-returning test."""
    def wrapper(self: Any) -> defer.Deferred[Any]:
        return defer.Deferred.fromCoroutine(fn(self))
    wrapper.__name__ = fn.__name__
    return wrapper
