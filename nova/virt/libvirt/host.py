"""
A compute host that is a network namespace with its own libvirtd.

L{HostLibvirtd} creates the namespace, writes the daemon's private config
(L{nova.virt.libvirt.hostconf}), and runs C{libvirtd} in the foreground as
a child of this process::

    ip netns exec NS python -I mountexec.py --bind PRIVATE SYSTEM ... -- \\
        libvirtd -f STATE/etc/libvirtd.conf -p STATE/run/libvirtd.pid

so that its guests' taps live in the namespace, and C{/etc/libvirt},
C{/run/libvirt}, C{/var/lib/libvirt}, C{/var/cache/libvirt} and
C{/var/log/libvirt} are private directories under the host's state
directory (bind mounts in the daemon's own mount namespace: a root
libvirtd has no option to move them). Several hosts therefore run side by
side, and also next to a system libvirtd, as long as their state
directories differ. The driver reaches the daemon from the root namespace
through L{HostLibvirtd.uri}.

Limits: the qemu driver insists on the C{libvirt-qemu} account existing even
when qemu.conf says root, so L{HostLibvirtd.start} creates that system
user and group when missing (what the Debian package scripts would have
done). The first start with an empty capability cache probes qemu for
8-12 s; pass a shared C{cache_dir} to pay that once per machine.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from twisted.internet import task, threads
from twisted.logger import Logger

from nova.exception import ProcessError
from nova.utils.childprocess import ChildProcessService
from nova.utils.process import CommandFailed, IProcessRunner, find_executable
from nova.utils.validate import netns_name
from nova.virt.errors import HypervisorUnavailable
from nova.virt.libvirt import hostconf, mountexec

log = Logger()

QEMU_ACCOUNT = "libvirt-qemu"


class LibvirtdFailed(HypervisorUnavailable):
    """A host's libvirtd could not be started or did not answer."""


class HostLibvirtd:
    """
    One host: a network namespace and the libvirtd that runs inside it.

    @ivar name: the namespace name.
    @ivar layout: where the daemon's files live.
    """

    def __init__(self, reactor: Any, runner: IProcessRunner, name: str, state_dir: str,
                 *, cache_dir: str | None = None, libvirtd: str = "libvirtd",
                 python: str = sys.executable, start_timeout: float = 60.0,
                 poll_interval: float = 0.1, stop_timeout: float = 10.0) -> None:
        """
        @param reactor: spawns the daemon, runs timers and the file-writing thread.
        @param runner: runs the host commands (C{ip}, C{virsh}, account set-up).
        @param name: the network namespace (created if missing).
        @param state_dir: the host's private directory (created).
        @param cache_dir: a qemu capability cache shared between hosts;
            private under C{state_dir} when C{None}.
        @param libvirtd: the daemon program.
        @param python: the interpreter that runs L{mountexec}.
        @param start_timeout: seconds for the daemon to answer (its first
            capability probe takes 8-12 s).
        @param poll_interval: seconds between two readiness checks.
        @param stop_timeout: seconds between SIGTERM and SIGKILL at stop.
        @raise ValueError: for a bad namespace name or an unusable state_dir.
        """
        self.name = netns_name(name)
        self.layout = hostconf.HostLayout.under(state_dir, cache_dir)
        self._reactor = reactor
        self._runner = runner
        self._libvirtd = libvirtd
        self._python = python
        self._start_timeout = start_timeout
        self._poll_interval = poll_interval
        self._stop_timeout = stop_timeout
        self._child: ChildProcessService | None = None
        self._last_answer = ""

    @property
    def uri(self) -> str:
        """The libvirt URI (C{qemu+unix:///system?socket=...}) of this daemon."""
        return self.layout.uri

    def argv(self) -> list[str]:
        """@return: the command that runs the daemon (without the netns prefix)."""
        binds: list[str] = []
        for source, target in self.layout.binds():
            binds += ["--bind", source, target]
        return [self._python, "-I", os.path.abspath(mountexec.__file__), *binds, "--",
                self._libvirtd, "-f", self.layout.libvirtd_conf,
                "-p", self.layout.pid_file]

    async def start(self) -> None:
        """
        Create the namespace and the files, start libvirtd, and return once
        it answers on its socket.

        @raise LibvirtdFailed: when the daemon exits or does not answer in time
            (the daemon is stopped; the namespace is left for L{stop}).
        @raise nova.utils.process.CommandFailed: when a set-up command fails.
        """
        if self._child is not None:
            raise LibvirtdFailed(f"libvirtd of host {self.name} is already started")
        self._libvirtd = self._which(self._libvirtd)
        # Readiness is "the socket answers": a daemon already serving this
        # state directory would answer for the new one, which then dies on
        # the pid file lock unnoticed.
        if await self._answers():
            raise LibvirtdFailed(f"a libvirtd already serves {self.layout.state_dir}"
                                 f" (socket {self.layout.socket})")
        await self._ensure_qemu_account()
        await self.ensure_netns()
        await threads.deferToThreadPool(self._reactor, self._reactor.getThreadPool(),
                                        hostconf.write_files, self.layout)
        argv = [self._which("ip"), "netns", "exec", self.name, *self.argv()]
        self._child = ChildProcessService(self._reactor, f"libvirtd of host {self.name}",
                                          argv, self._wait_ready,
                                          stop_timeout=self._stop_timeout)
        started = self._reactor.seconds()
        try:
            await self._child.start()
        except ProcessError as e:
            self._child = None
            raise LibvirtdFailed(str(e)) from None
        log.info("libvirtd of host {name} answers on {uri} after {secs:.1f} s",
                 name=self.name, uri=self.uri, secs=self._reactor.seconds() - started)

    def _which(self, program: str) -> str:
        # spawnProcess needs a path; look where root's tools live too.
        search = os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin", "/sbin"])
        path = find_executable(program, search)
        if path is None:
            raise LibvirtdFailed(f"{program} is not installed (not found in {search})")
        return path

    async def _ensure_qemu_account(self) -> None:
        # libvirt's qemu driver looks the account up before reading qemu.conf.
        checks = (("group", ["groupadd", "--system", QEMU_ACCOUNT]),
                  ("passwd", ["useradd", "--system", "--no-create-home",
                              "--gid", QEMU_ACCOUNT, "--home-dir", "/var/lib/libvirt",
                              "--shell", "/usr/sbin/nologin", QEMU_ACCOUNT]))
        for database, create in checks:
            found = await self._runner.run(["getent", database, QEMU_ACCOUNT], check=False)
            if found.exit_code == 0:
                continue
            log.info("creating the {db} entry {name} that libvirt's qemu driver needs",
                     db=database, name=QEMU_ACCOUNT)
            made = await self._runner.run(create, check=False)
            if made.exit_code != 0:
                # Another host may have created it meanwhile.
                again = await self._runner.run(["getent", database, QEMU_ACCOUNT],
                                               check=False)
                if again.exit_code != 0:
                    raise CommandFailed(made)

    async def netns_exists(self) -> bool:
        """@return: whether the namespace exists."""
        result = await self._runner.run(["ip", "netns", "list"])
        names = {line.split()[0] for line in result.stdout.decode().splitlines()
                 if line.strip()}
        return self.name in names

    async def ensure_netns(self) -> None:
        """Create the namespace unless it exists, and bring its loopback up."""
        if not await self.netns_exists():
            result = await self._runner.run(["ip", "netns", "add", self.name], check=False)
            if result.exit_code != 0 and b"File exists" not in result.stderr:
                raise CommandFailed(result)
        await self._runner.run(["ip", "link", "set", "lo", "up"], netns=self.name)

    async def _wait_ready(self) -> None:
        deadline = self._reactor.seconds() + self._start_timeout
        last = ""
        while True:
            if await self._answers():
                return
            last = self._last_answer
            if self._reactor.seconds() >= deadline:
                raise LibvirtdFailed(f"libvirtd of host {self.name} did not answer on"
                                     f" {self.layout.socket} within {self._start_timeout:g} s"
                                     + (f": {last}" if last else ""))
            await task.deferLater(self._reactor, self._poll_interval, lambda: None)

    async def _answers(self) -> bool:
        self._last_answer = ""
        if not os.path.exists(self.layout.socket):
            return False
        result = await self._runner.run(["virsh", "-q", "-c", self.uri, "version"],
                                        timeout=self._start_timeout, check=False)
        self._last_answer = result.stderr.decode("utf-8", "replace").strip()
        return result.exit_code == 0

    async def guest_pids(self) -> list[int]:
        """@return: the pids of every process inside the namespace."""
        if not await self.netns_exists():
            return []
        result = await self._runner.run(["ip", "netns", "pids", self.name])
        return [int(p) for p in result.stdout.split()]

    async def stop(self, keep_guests: bool = False) -> None:
        """
        Stop libvirtd; unless C{keep_guests}, also kill every process left in
        the namespace (the qemu processes libvirtd leaves running on
        purpose) and delete the namespace. Idempotent.

        @param keep_guests: leave the guests and the namespace, so that a
            new daemon on the same state directory adopts them.
        """
        child, self._child = self._child, None
        if child is not None:
            await child.stop()
        if keep_guests:
            return
        deadline = self._reactor.seconds() + self._stop_timeout
        while True:
            pids = await self.guest_pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass  # ended meanwhile
            if self._reactor.seconds() >= deadline:
                raise LibvirtdFailed(f"processes {pids} in netns {self.name} survive SIGKILL")
            await task.deferLater(self._reactor, self._poll_interval, lambda: None)
        if await self.netns_exists():
            await self._runner.run(["ip", "netns", "delete", self.name])
