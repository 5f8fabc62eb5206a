"""
The dnsmasq daemons of a network host: started daemonized with a pid file,
found again after a restart of nova, told to reread their hosts file
(SIGHUP), stopped.

A daemon is "ours and alive" when its pid file names a process whose
command line is dnsmasq with that very C{--pid-file=}: a recycled pid, or a
dnsmasq somebody else runs, is never signalled. Signals go through the
process runner (C{kill}), so the unit tests see them as commands.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from twisted.logger import Logger

from nova.exception import ProcessError
from nova.utils.polling import poll_until
from nova.utils.process import IProcessRunner

log = Logger()

__all__ = ["DnsmasqControl", "DnsmasqFailed"]


class DnsmasqFailed(ProcessError):
    """A network's dnsmasq did not start, or did not stop."""


class DnsmasqControl:
    """
    Starts, finds, signals and stops dnsmasq daemons by pid file.

    @param runner: runs C{dnsmasq} and C{kill}.
    @param netns: the namespace the daemons serve, or C{None}.
    @param clock: for the pauses while waiting for a daemon to end.
    @param proc_dir: where process information lives (C{/proc}; tests
        point it at a directory they fill).
    @param poll_interval: seconds between two checks while waiting.
    @param stop_timeout: seconds a daemon has to end after SIGTERM.
    """

    def __init__(self, runner: IProcessRunner, netns: str | None, clock: Any, *,
                 proc_dir: str = "/proc", poll_interval: float = 0.05,
                 stop_timeout: float = 5.0) -> None:
        self._runner = runner
        self._netns = netns
        self._clock = clock
        self._proc_dir = proc_dir
        self._poll_interval = poll_interval
        self._stop_timeout = stop_timeout

    def _cmdline(self, pid: int) -> list[str] | None:
        try:
            with open(os.path.join(self._proc_dir, str(pid), "cmdline"), "rb") as f:
                raw = f.read()
        except OSError:
            return None
        return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]

    def running(self, pid_file: str) -> tuple[int, list[str]] | None:
        """
        Find the daemon that owns C{pid_file}.

        @param pid_file: the C{--pid-file} it was started with.
        @return: its pid and command line, or C{None} when it is not running.
        """
        try:
            with open(pid_file, "rb") as f:
                pid = int(f.read().strip() or b"0")
        except (OSError, ValueError):
            return None
        if pid <= 0:
            return None
        cmdline = self._cmdline(pid)
        if not cmdline or os.path.basename(cmdline[0]) != "dnsmasq" \
                or f"--pid-file={pid_file}" not in cmdline:
            return None
        return pid, cmdline

    async def start(self, argv: Sequence[str], env: dict[str, str], pid_file: str) -> int:
        """
        Start a daemon (it forks; the command returns once it serves).

        @param argv: the L{nova.network.linux_net.dnsmasq_argv} command.
        @param env: its environment (the lease script inherits it).
        @param pid_file: its pid file, as in C{argv}.
        @return: its pid.
        @raise DnsmasqFailed: when it exits with an error or writes no pid.
        @raise nova.utils.process.CommandFailed: when the command fails.
        """
        await self._runner.run(list(argv), env=env, netns=self._netns)
        found = self.running(pid_file)
        if found is None:
            raise DnsmasqFailed(f"dnsmasq started but no live process owns {pid_file}")
        log.info("dnsmasq {pid} started ({pid_file})", pid=found[0], pid_file=pid_file)
        return found[0]

    async def reload(self, pid_file: str) -> bool:
        """
        Make a running daemon reread its hosts file (SIGHUP).

        @return: whether a daemon was running (and was signalled).
        """
        found = self.running(pid_file)
        if found is None:
            return False
        await self._runner.run(["kill", "-HUP", str(found[0])])
        return True

    async def stop(self, pid_file: str) -> bool:
        """
        Stop the daemon (SIGTERM), wait until it is gone, remove the pid file.

        @return: whether a daemon was running.
        @raise DnsmasqFailed: when it outlives C{stop_timeout}.
        """
        found = self.running(pid_file)
        if found is not None:
            pid = found[0]
            await self._runner.run(["kill", "-TERM", str(pid)], check=False)
            # a zombie has an empty command line
            if not await poll_until(self._clock, lambda: not self._cmdline(pid),
                                    timeout=self._stop_timeout, interval=self._poll_interval):
                raise DnsmasqFailed(f"dnsmasq {pid} survives SIGTERM")
        try:
            os.unlink(pid_file)
        except FileNotFoundError:
            pass
        return found is not None
