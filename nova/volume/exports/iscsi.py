"""
L{IscsiExportDriver}: volumes exported as iSCSI targets of the Linux SCSI
target framework (C{tgtd}, driven with C{tgtadm}).

One volume is one target C{iqn.2010-10.org.openstack:<volume-id>} (2010
nova's names) with LUN 1 backed by the volume's device or file, open to
every initiator (C{ALL}) or to a configured address list. Target ids are
allocated under the driver's lock as the lowest id C{tgtadm --op show}
does not list. tgtd is started when it does not answer (daemonized, pid
file in the state directory, inside the volume host's namespace, its
portal on the configured address); it outlives nova-volume, which reads
the targets back from it after a restart. A target with logged-in
initiators is not removed (L{ExportInUse}).
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from twisted.internet import defer, task
from twisted.logger import Logger
from zope.interface import implementer

from nova.utils import validate
from nova.utils.process import CommandFailed, IProcessRunner
from nova.volume import host_ids
from nova.volume.exports import procs, tgt
from nova.volume.exports.interface import ExportConflict, ExportError, ExportInUse, IExportDriver

__all__ = ["IscsiExportDriver", "LUN"]

log = Logger()

#: the LUN a volume is (LUN 0 is tgt's controller)
LUN = 1


@implementer(IExportDriver)
class IscsiExportDriver:
    """
    iSCSI exports through tgt; see the module docstring.

    @param runner: runs C{tgtd} and C{tgtadm}.
    @param clock: for the waits while tgtd starts and stops.
    @param state_dir: where tgtd's pid file lives (absolute; created).
    @param portal_address: the IPv4 address tgtd listens on and compute
        hosts connect to (it must exist in C{netns} when tgtd starts).
    @param portal_port: its TCP port.
    @param control_port: tgtd's management socket number; distinct per
        volume host on one machine.
    @param netns: the volume host's namespace.
    @param initiators: the initiator addresses (IPv4 addresses or
        networks) allowed to log in; C{None}: all.
    @param timeout: seconds for each command and for tgtd's start and stop.
    @param proc_dir: C{/proc} (tests use their own).
    @param run_dir: where tgtd puts its management sockets.
    """

    kind = "iscsi"

    def __init__(self, runner: IProcessRunner, clock: Any, state_dir: str, *,
                 portal_address: str, portal_port: int = 3260, control_port: int = 0,
                 netns: str | None = None, initiators: Sequence[str] | None = None,
                 tgtd: str = "tgtd", tgtadm: str = "tgtadm", timeout: float = 30.0,
                 proc_dir: str = "/proc", run_dir: str = "/var/run/tgtd") -> None:
        self.state_dir = host_ids.host_path(os.path.abspath(state_dir))
        self.pid_file = os.path.join(self.state_dir, "tgtd.pid")
        self.portal_address = validate.ipv4_address(portal_address)
        self.portal_port = validate.port_number(portal_port)
        self.control_port = host_ids.bounded_int("tgtd control port", control_port, 0,
                                                 tgt.MAX_CONTROL_PORT)
        self.netns = validate.netns_name(netns) if netns is not None else None
        # Check the addresses now: a bad one would fail every export later.
        self.initiators = ["ALL"] if initiators is None else [
            tgt.bind_initiator("tgtadm", 0, 1, a)[-1] for a in initiators]
        if not self.initiators:
            raise host_ids.InvalidIdentifier("an empty initiator list would admit nobody")
        self._runner = runner
        self._clock = clock
        self._tgtd = tgtd
        self._tgtadm = tgtadm
        self._timeout = timeout
        self._proc_dir = proc_dir
        self._run_dir = run_dir
        self._lock = defer.DeferredLock()

    # -- tgtd ------------------------------------------------------------

    async def _run(self, argv: list[str], **kw: Any) -> Any:
        return await self._runner.run(argv, netns=self.netns, timeout=self._timeout, **kw)

    async def _show(self) -> list[tgt.TgtTarget] | None:
        """@return: the targets, or C{None} when tgtd does not answer."""
        result = await self._run(tgt.show_targets(self._tgtadm, self.control_port), check=False)
        if result.exit_code != 0:
            return None
        return tgt.parse_show(result.stdout.decode("utf-8", "replace"))

    def daemon_pid(self) -> int | None:
        """@return: the pid of the tgtd this driver started, if it runs."""
        return procs.daemon_pid(self.pid_file, self._tgtd, self.pid_file, self._proc_dir)

    async def _targets(self) -> list[tgt.TgtTarget]:
        """The targets of a running tgtd (started first when it does not answer)."""
        shown = await self._show()
        if shown is not None:
            return shown
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        await self._run(tgt.tgtd_argv(self._tgtd, self.control_port, self.pid_file,
                                      self.portal_address, self.portal_port))
        waited, poll = 0.0, 0.02
        while True:
            shown = await self._show()
            if shown is not None:
                log.info("tgtd started (control port {port})", port=self.control_port)
                return shown
            # A tgtd that died at start wrote no pid file: no need to wait it out.
            if waited >= self._timeout or (waited >= 1.0 and self.daemon_pid() is None):
                raise ExportError(f"tgtd (control port {self.control_port}) does not answer")
            await task.deferLater(self._clock, poll, lambda: None)
            waited += poll

    # -- IExportDriver ---------------------------------------------------

    def connection_info(self, volume_id: str) -> dict[str, Any]:
        """@return: the connection info of a volume's target."""
        return {"kind": "iscsi", "portal": f"{self.portal_address}:{self.portal_port}",
                "iqn": tgt.iqn(volume_id), "lun": LUN}

    async def export(self, volume_id: str, path: str) -> dict[str, Any]:
        """See L{IExportDriver.export}."""
        name = tgt.iqn(volume_id)
        host_ids.host_path(path)
        await self._lock.acquire()
        try:
            targets = await self._targets()
            found = next((t for t in targets if t.iqn == name), None)
            try:
                if found is None:
                    await self._create(targets, name, path)
                else:
                    await self._complete(found, path)
            except CommandFailed as e:
                raise ExportError(f"cannot export {volume_id} over iSCSI: {e}") from None
        finally:
            self._lock.release()
        return self.connection_info(volume_id)

    async def ensure(self, volume_id: str, path: str) -> dict[str, Any]:
        """See L{IExportDriver.ensure}: the same as L{export}, which reads first."""
        return await self.export(volume_id, path)

    async def _create(self, targets: list[tgt.TgtTarget], name: str, path: str) -> None:
        tid = tgt.lowest_free_tid(targets)
        await self._run(tgt.target_new(self._tgtadm, self.control_port, tid, name))
        try:
            await self._run(tgt.lun_new(self._tgtadm, self.control_port, tid, LUN, path))
            for address in self.initiators:
                await self._run(tgt.bind_initiator(self._tgtadm, self.control_port, tid,
                                                   address))
        except CommandFailed:
            # No half-made target: the next attempt starts clean.
            await self._run(tgt.target_delete(self._tgtadm, self.control_port, tid,
                                              force=True), check=False)
            raise
        log.info("exported {name} (tid {tid}) from {path}", name=name, tid=tid, path=path)

    async def _complete(self, found: tgt.TgtTarget, path: str) -> None:
        exported = found.luns.get(LUN)
        if LUN in found.luns and exported != path:
            raise ExportConflict(f"{found.iqn} is exported from {exported}, not {path}")
        if LUN not in found.luns:
            await self._run(tgt.lun_new(self._tgtadm, self.control_port, found.tid, LUN, path))
        for address in self.initiators:
            if address not in found.acl:
                await self._run(tgt.bind_initiator(self._tgtadm, self.control_port, found.tid,
                                                   address))

    async def unexport(self, volume_id: str) -> None:
        """See L{IExportDriver.unexport}."""
        name = tgt.iqn(volume_id)
        await self._lock.acquire()
        try:
            targets = await self._show()
            found = next((t for t in targets or [] if t.iqn == name), None)
            if found is None:
                return
            if found.sessions:
                raise ExportInUse(f"{name} has {found.sessions} initiator(s) logged in")
            try:
                await self._run(tgt.target_delete(self._tgtadm, self.control_port, found.tid))
            except CommandFailed as e:
                if b"active" in e.stderr:
                    raise ExportInUse(f"{name} is in use: {e}") from None
                raise ExportError(f"cannot remove {name}: {e}") from None
            log.info("removed target {name} (tid {tid})", name=name, tid=found.tid)
        finally:
            self._lock.release()

    async def exports(self) -> list[str]:
        """See L{IExportDriver.exports}."""
        targets = await self._show()
        ids = (tgt.volume_of_iqn(t.iqn) for t in targets or [])
        return sorted(i for i in ids if i is not None)

    async def shutdown(self) -> bool:
        """
        Remove nova's targets (even in use) and stop the tgtd this driver
        started. For tests and operators; a tgtd nova did not start is left
        alone.

        @return: whether a tgtd of ours was running.
        @raise ExportError: it did not stop in time.
        """
        await self._lock.acquire()
        try:
            pid = self.daemon_pid()
            if pid is None:
                return False
            for target in await self._show() or []:
                if tgt.volume_of_iqn(target.iqn) is not None:
                    await self._run(tgt.target_delete(self._tgtadm, self.control_port,
                                                      target.tid, force=True), check=False)
            await self._run(tgt.system_delete(self._tgtadm, self.control_port), check=False)
            if not await procs.wait_gone(pid, self._clock, self._timeout,
                                         proc_dir=self._proc_dir):
                raise ExportError(f"tgtd {pid} did not stop")
            for leftover in (self.pid_file,
                             os.path.join(self._run_dir, f"socket.{self.control_port}"),
                             os.path.join(self._run_dir, f"socket.{self.control_port}.lock")):
                try:
                    os.unlink(leftover)
                except FileNotFoundError:
                    pass
            return True
        finally:
            self._lock.release()
