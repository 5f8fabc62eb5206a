"""
L{NbdExportDriver}: volumes exported over NBD by one long-lived
C{qemu-storage-daemon} per volume host, driven through its QMP socket.

State directory (all nova's, all named after nova):

    - C{qsd.pid}: the daemon's pid file (it is ours when its command line
      names our QMP socket);
    - C{qmp.sock}: its QMP monitor (one client at a time: the driver
      connects per operation, under its lock);
    - C{nbd.sock}: its NBD server (a unix socket; compute hosts on this
      machine reach it from any network namespace).

One volume is one raw block node C{nova-<volume-id>} (its protocol child
C{nova-<volume-id>-f}, a C{file} or C{host_device} node) and one writable
NBD export, id C{nova-<volume-id>}, name C{<volume-id>}. The daemon
outlives nova-volume: a restarted driver finds it by its pid file and
L{NbdExportDriver.ensure} adds what is missing (after a reboot it starts a
new daemon). An export that a client still uses cannot be withdrawn
(L{ExportInUse}): the compute host detaches first.
"""

from __future__ import annotations

import os
from typing import Any, Awaitable, Callable

from twisted.internet import defer, task
from twisted.logger import Logger
from zope.interface import implementer

from nova.utils import validate
from nova.utils.process import IProcessRunner
from nova.volume import host_ids
from nova.volume.exports import procs
from nova.volume.exports.interface import ExportConflict, ExportError, ExportInUse, IExportDriver
from nova.volume.point_in_time import (COMMANDS_BEFORE_WAIT, backup_job_done,
                                       point_in_time_commands)
from nova.volume.qmp import QmpClient, QmpCommandError, QmpConnectionLost, QmpError, connect_qmp

__all__ = ["NbdExportDriver", "daemon_argv", "NODE_PREFIX"]

log = Logger()

#: block nodes and export ids nova makes are C{nova-<volume-id>}
NODE_PREFIX = "nova-"
_QMP_CHARDEV = "nova-qmp"


def daemon_argv(program: str, qmp_socket: str, nbd_socket: str, pid_file: str) -> list[str]:
    """
    The command that starts the storage daemon (it forks once it serves).

    @param program: C{qemu-storage-daemon}.
    @param qmp_socket: its QMP monitor socket.
    @param nbd_socket: its NBD server socket.
    @param pid_file: its pid file.
    @return: the argv list (paths are checked: no comma can reach QEMU's
        option parser).
    """
    qmp = host_ids.unix_socket_path(qmp_socket)
    nbd = host_ids.unix_socket_path(nbd_socket)
    pid = host_ids.host_path(pid_file)
    return [program,
            "--chardev", f"socket,id={_QMP_CHARDEV},path={qmp},server=on,wait=off",
            "--monitor", f"chardev={_QMP_CHARDEV}",
            "--nbd-server", f"addr.type=unix,addr.path={nbd}",
            "--pidfile", pid,
            "--daemonize"]


def _node(volume_id: str) -> str:
    return NODE_PREFIX + volume_id


def blockdev_add_args(volume_id: str, path: str) -> dict[str, Any]:
    """@return: the C{blockdev-add} arguments of a volume's raw node."""
    protocol = "host_device" if path.startswith("/dev/") else "file"
    return {"driver": "raw", "node-name": _node(volume_id), "discard": "unmap",
            "file": {"driver": protocol, "filename": path,
                     "node-name": _node(volume_id) + "-f", "discard": "unmap"}}


def export_add_args(volume_id: str) -> dict[str, Any]:
    """@return: the C{block-export-add} arguments of a volume's NBD export."""
    return {"type": "nbd", "id": _node(volume_id), "node-name": _node(volume_id),
            "name": volume_id, "writable": True}


@implementer(IExportDriver)
class NbdExportDriver:
    """
    NBD exports from one C{qemu-storage-daemon}; see the module docstring.

    @param runner: starts the daemon.
    @param reactor: connects to the QMP socket (C{IReactorUNIX}) and times
        the waits (C{IReactorTime}).
    @param state_dir: the daemon's directory (absolute; short enough for
        the socket paths: 107 bytes).
    @param netns: the volume host's namespace, where the daemon runs.
    @param program: the daemon's program.
    @param timeout: seconds for the daemon's start and for each QMP command.
    @param connect: C{async (socket_path) -> QmpClient}; by default
        L{connect_qmp} on C{reactor} (tests pass a fake daemon).
    @param proc_dir: C{/proc} (tests use their own).
    """

    kind = "nbd"

    def __init__(self, runner: IProcessRunner, reactor: Any, state_dir: str, *,
                 netns: str | None = None, program: str = "qemu-storage-daemon",
                 timeout: float = 30.0,
                 connect: Callable[[str], Awaitable[QmpClient]] | None = None,
                 proc_dir: str = "/proc") -> None:
        self.state_dir = host_ids.host_path(os.path.abspath(state_dir))
        self.qmp_socket = host_ids.unix_socket_path(os.path.join(self.state_dir, "qmp.sock"))
        self.nbd_socket = host_ids.unix_socket_path(os.path.join(self.state_dir, "nbd.sock"))
        self.pid_file = os.path.join(self.state_dir, "qsd.pid")
        self.netns = validate.netns_name(netns) if netns is not None else None
        self._runner = runner
        self._reactor = reactor
        self._program = program
        self._timeout = timeout
        self._connect = connect or (lambda path: connect_qmp(reactor, path, timeout=timeout))
        self._proc_dir = proc_dir
        self._lock = defer.DeferredLock()

    # -- the daemon ------------------------------------------------------

    def daemon_pid(self) -> int | None:
        """@return: the pid of our running daemon, or C{None}."""
        return procs.daemon_pid(self.pid_file, self._program, self.qmp_socket, self._proc_dir)

    async def _start(self) -> None:
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        for stale in (self.qmp_socket, self.nbd_socket):
            # Left by a daemon that died: QEMU cannot bind over them.
            try:
                os.unlink(stale)
            except FileNotFoundError:
                pass
        argv = daemon_argv(self._program, self.qmp_socket, self.nbd_socket, self.pid_file)
        await self._runner.run(argv, netns=self.netns, timeout=self._timeout)
        pid = self.daemon_pid()
        if pid is None:
            raise ExportError(f"{self._program} started but no live process owns {self.pid_file}")
        log.info("storage daemon {pid} started in {dir}", pid=pid, dir=self.state_dir)

    async def _session(self, fn: Callable[..., Awaitable[Any]], *args: Any,
                       start: bool = True, idle: Any = None) -> Any:
        """Run C{fn(client, *args)} on a fresh QMP connection, under the lock."""
        await self._lock.acquire()
        try:
            if self.daemon_pid() is None:
                if not start:
                    return idle
                await self._start()
            client = await self._connect(self.qmp_socket)
            try:
                return await fn(client, *args)
            finally:
                client.close()
        except QmpError as e:
            raise ExportError(f"storage daemon in {self.state_dir}: {e}") from None
        finally:
            self._lock.release()

    # -- reading the daemon's state --------------------------------------

    @staticmethod
    async def _state(client: QmpClient) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
        """@return: our exports by id, and node name -> file name of every node."""
        exports = await client.execute("query-block-exports")
        nodes = await client.execute("query-named-block-nodes", {"flat": True})
        ours = {e["id"]: e for e in exports if str(e.get("id", "")).startswith(NODE_PREFIX)}
        return ours, {n["node-name"]: n.get("file") for n in nodes if "node-name" in n}

    # -- IExportDriver ---------------------------------------------------

    def connection_info(self, volume_id: str) -> dict[str, Any]:
        """@return: the connection info of a volume's export."""
        return {"kind": "nbd", "socket": self.nbd_socket,
                "export": host_ids.volume_id(volume_id)}

    async def export(self, volume_id: str, path: str) -> dict[str, Any]:
        """See L{IExportDriver.export}."""
        host_ids.volume_id(volume_id)
        host_ids.host_path(path)
        await self._session(self._export, volume_id, path)
        return self.connection_info(volume_id)

    async def ensure(self, volume_id: str, path: str) -> dict[str, Any]:
        """See L{IExportDriver.ensure}: the same as L{export}, which reads first."""
        return await self.export(volume_id, path)

    async def _export(self, client: QmpClient, volume_id: str, path: str) -> None:
        node = _node(volume_id)
        exports, files = await self._state(client)
        if node in exports:
            if exports[node].get("shutting-down"):
                raise ExportError(f"the export of {volume_id} is being withdrawn; retry")
            exported = files.get(exports[node].get("node-name", node))
            if exported != path:
                raise ExportConflict(f"{volume_id} is exported from {exported}, not {path}")
            return
        if node in files and files[node] != path:
            # A node left by an export that failed half-way, on another file.
            await client.execute("blockdev-del", {"node-name": node})
            del files[node]
        if node not in files:
            await client.execute("blockdev-add", blockdev_add_args(volume_id, path))
        try:
            await client.execute("block-export-add", export_add_args(volume_id))
        except QmpCommandError as e:
            # Leave nothing behind: the next attempt starts clean.
            try:
                await client.execute("blockdev-del", {"node-name": node})
            except QmpCommandError:
                pass
            raise ExportError(f"cannot export {volume_id}: {e.desc}") from None
        log.info("exported {volume} over NBD from {path}", volume=volume_id, path=path)

    async def unexport(self, volume_id: str) -> None:
        """See L{IExportDriver.unexport}."""
        host_ids.volume_id(volume_id)
        await self._session(self._unexport, volume_id, start=False)

    async def _unexport(self, client: QmpClient, volume_id: str) -> None:
        node = _node(volume_id)
        exports, files = await self._state(client)
        if node in exports:
            if not exports[node].get("shutting-down"):
                try:
                    await client.execute("block-export-del", {"id": node})
                except QmpCommandError as e:
                    if "in use" in e.desc:
                        raise ExportInUse(f"{volume_id} is still attached: {e.desc}") from None
                    raise
            await self._wait_export_gone(client, node)
        if node in files:
            try:
                await client.execute("blockdev-del", {"node-name": node})
            except QmpCommandError as e:
                raise ExportError(f"cannot release the block node of {volume_id}: {e.desc}"
                                  ) from None
        log.info("withdrew the NBD export of {volume}", volume=volume_id)

    async def _wait_export_gone(self, client: QmpClient, export_id: str) -> None:
        # block-export-del returns before the export is gone (BLOCK_EXPORT_DELETED
        # may follow); its node stays busy until then.
        waited, poll = 0.0, 0.02
        while True:
            exports = await client.execute("query-block-exports")
            if not any(e.get("id") == export_id for e in exports):
                return
            if waited >= self._timeout:
                raise ExportError(f"export {export_id} still shutting down after"
                                  f" {self._timeout:g} s")
            await task.deferLater(self._reactor, poll, lambda: None)
            waited += poll

    async def exports(self) -> list[str]:
        """See L{IExportDriver.exports}."""
        return await self._session(self._exports, start=False, idle=[])

    async def _exports(self, client: QmpClient) -> list[str]:
        exports, _files = await self._state(client)
        ids = [e[len(NODE_PREFIX):] for e, info in exports.items()
               if not info.get("shutting-down")]
        return sorted(i for i in ids if host_ids.VOLUME_ID.fullmatch(i))

    async def shutdown(self) -> bool:
        """
        Stop the daemon (QMP C{quit}): every export goes with it. For tests
        and operators; nova-volume never calls it (exports outlive it).

        @return: whether a daemon was running.
        @raise ExportError: it did not end in time.
        """
        await self._lock.acquire()
        try:
            pid = self.daemon_pid()
            if pid is None:
                return False
            try:
                client = await self._connect(self.qmp_socket)
                try:
                    await client.execute("quit")
                finally:
                    client.close()
            except QmpConnectionLost:
                pass  # it quit before the reply reached us
            if not await procs.wait_gone(pid, self._reactor, self._timeout,
                                         proc_dir=self._proc_dir):
                raise ExportError(f"storage daemon {pid} did not quit")
            for leftover in (self.nbd_socket, self.qmp_socket, self.pid_file):
                try:
                    os.unlink(leftover)
                except FileNotFoundError:
                    pass
            return True
        finally:
            self._lock.release()


async def point_in_time_copy(driver: NbdExportDriver, volume_id: str, target_path: str,
                             *, poll: float = 0.05) -> None:
    """
    Copy an exported volume, as it is at this moment, into C{target_path}
    (already made, of the volume's size: L{create_copy_target}) while the
    guest keeps writing: the daemon's backup job copies before it lets a
    write through (docs/snapshots.md, crash consistency).

    @raise nova.volume.point_in_time.PointInTimeFailed: the job failed.
    """
    job_id = "snap-" + host_ids.volume_id(volume_id)[4:]
    commands = point_in_time_commands(_node(volume_id), target_path, job_id)

    async def copy(client: QmpClient) -> None:
        for command in commands[:COMMANDS_BEFORE_WAIT]:
            await client.execute(command["execute"], command["arguments"])
        try:
            while not backup_job_done(await client.execute("query-jobs"), job_id):
                await task.deferLater(driver._reactor, poll, lambda: None)
        finally:
            for command in commands[COMMANDS_BEFORE_WAIT:]:
                try:
                    await client.execute(command["execute"], command["arguments"])
                except QmpError as e:
                    log.warn("cleaning up the copy job {job}: {e}", job=job_id, e=e)

    await driver._session(copy, start=False)
