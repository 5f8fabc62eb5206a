"""
L{AoeExportDriver}: volumes exported over ATA over Ethernet by C{vblade},
one foreground process per export (2010 nova used vblade-persist).

A volume gets a (shelf, slot) pair, the AoE target C{e<shelf>.<slot>} that
the compute host sees as C{/dev/etherd/e<shelf>.<slot>}; the pair comes
from the C{allocate} callable (nova-volume's, from Redis) or, without one,
the lowest free slot on the configured shelf. The driver spawns
C{setsid [ip netns exec NS] vblade <shelf> <slot> <netif> <path>} through
the injected reactor (argv only), with stdin on C{/dev/null} and its output
in C{<state>/<volume-id>.log}: no pipe ties it to nova-volume, and its own
session keeps a signal to nova-volume's terminal from reaching it, so the
exports outlive a restart of nova-volume.

State: C{<state>/<volume-id>.json} (shelf, slot, interface, path), written
atomically before the process starts. A vblade is recognised as a volume's
by its exact command line (C{/proc/<pid>/cmdline}), so a restarted driver
finds the exports without pid files, and L{AoeExportDriver.ensure}
restarts a missing one on the same shelf and slot (the compute host's
device name does not change).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any, Awaitable, Callable

from twisted.internet import defer, protocol, task
from twisted.logger import Logger
from zope.interface import implementer

from nova.utils import validate
from nova.utils.files import write_atomically
from nova.utils.process import find_executable
from nova.volume import host_ids
from nova.volume.exports import procs
from nova.volume.exports.interface import ExportConflict, ExportError, IExportDriver

__all__ = ["AoeExportDriver", "vblade_argv", "MAX_SHELF", "MAX_SLOT"]

log = Logger()

#: 0xFFFF and 0xFF are the broadcast shelf and slot
MAX_SHELF = 0xFFFE
MAX_SLOT = 0xFE
_SEARCH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

Key = tuple[int, int, str, str]


def vblade_argv(program: str, shelf: int, slot: int, netif: str, path: str) -> list[str]:
    """@return: the vblade command of one export (it runs in the foreground)."""
    return [program, str(host_ids.bounded_int("AoE shelf", shelf, 0, MAX_SHELF)),
            str(host_ids.bounded_int("AoE slot", slot, 0, MAX_SLOT)),
            validate.interface_name(netif), host_ids.host_path(path)]


class _VbladeProtocol(protocol.ProcessProtocol):
    def __init__(self, volume_id: str) -> None:
        self.volume_id = volume_id
        self.ended: defer.Deferred[int | None] = defer.Deferred()
        self.stopping = False

    def processEnded(self, reason: Any) -> None:
        code = getattr(reason.value, "exitCode", None)
        if not self.stopping:
            log.warn("vblade of {volume} ended (status {code}); ensure() restarts it",
                     volume=self.volume_id, code=code)
        self.ended.callback(code)


@implementer(IExportDriver)
class AoeExportDriver:
    """
    AoE exports by vblade processes; see the module docstring.

    @param reactor: spawns the processes (C{IReactorProcess}) and times the
        waits.
    @param state_dir: where the state and log files live (absolute; created).
    @param netif: the interface vblade serves on, in C{netns}.
    @param run_in_thread: runs the (fsync'd) state file writes off the
        reactor thread.
    @param allocate: C{async () -> (shelf, slot)}; by default the lowest
        free slot on C{shelf}.
    @param release: C{async (shelf, slot) -> None}, called when an export
        is withdrawn; by default nothing.
    @param shelf: the shelf of the default allocation.
    @param netns: the volume host's namespace.
    @param vblade: the program.
    @param search_path: where C{setsid}, C{ip} and C{vblade} are looked up.
    @param timeout: seconds vblade has to start, and to stop.
    @param proc_dir: C{/proc}.
    """

    kind = "aoe"

    def __init__(self, reactor: Any, state_dir: str, *, netif: str,
                 run_in_thread: Callable[..., Awaitable[Any]],
                 allocate: Callable[[], Awaitable[tuple[int, int]]] | None = None,
                 release: Callable[[int, int], Awaitable[None]] | None = None,
                 shelf: int = 1, netns: str | None = None, vblade: str = "vblade",
                 search_path: str | None = None, timeout: float = 10.0,
                 proc_dir: str = "/proc") -> None:
        self.state_dir = host_ids.host_path(os.path.abspath(state_dir))
        self.netif = validate.interface_name(netif)
        self.netns = validate.netns_name(netns) if netns is not None else None
        self.shelf = host_ids.bounded_int("AoE shelf", shelf, 0, MAX_SHELF)
        self._reactor = reactor
        self._run_in_thread = run_in_thread
        self._allocate = allocate
        self._release = release
        self._vblade = vblade
        self._search = search_path or os.pathsep.join([os.environ.get("PATH", ""), _SEARCH])
        self._timeout = timeout
        self._proc_dir = proc_dir
        self._children: dict[str, tuple[Any, _VbladeProtocol]] = {}
        self._lock = defer.DeferredLock()

    # -- state -----------------------------------------------------------

    def _state_file(self, volume_id: str) -> str:
        return os.path.join(self.state_dir, host_ids.volume_id(volume_id) + ".json")

    def log_file(self, volume_id: str) -> str:
        """@return: where a volume's vblade writes its messages."""
        return os.path.join(self.state_dir, host_ids.volume_id(volume_id) + ".log")

    def _read_state(self, volume_id: str) -> dict[str, Any] | None:
        try:
            with open(self._state_file(volume_id), "rb") as f:
                state = json.loads(f.read())
            vblade_argv("vblade", state["shelf"], state["slot"], state["netif"], state["path"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warn("ignoring unreadable AoE state of {volume}: {e}", volume=volume_id, e=e)
            return None
        return state

    def _states(self) -> dict[str, dict[str, Any]]:
        try:
            names = os.listdir(self.state_dir)
        except FileNotFoundError:
            return {}
        found = {}
        for name in names:
            volume_id = name[:-len(".json")]
            if name.endswith(".json") and host_ids.VOLUME_ID.fullmatch(volume_id):
                state = self._read_state(volume_id)
                if state is not None:
                    found[volume_id] = state
        return found

    def _running(self) -> dict[Key, int]:
        """@return: (shelf, slot, netif, path) -> pid of every live vblade."""
        found = {}
        for pid in procs.find_processes(lambda a: procs.is_program(a, self._vblade)
                                        and len(a) == 5, self._proc_dir):
            argv = procs.cmdline(pid, self._proc_dir) or []
            if len(argv) == 5 and argv[1].isdigit() and argv[2].isdigit():
                found[(int(argv[1]), int(argv[2]), argv[3], argv[4])] = pid
        return found

    @staticmethod
    def _key(state: dict[str, Any]) -> Key:
        return (state["shelf"], state["slot"], state["netif"], state["path"])

    # -- IExportDriver ---------------------------------------------------

    @staticmethod
    def connection_info(shelf: int, slot: int) -> dict[str, Any]:
        """@return: the connection info of target C{e<shelf>.<slot>}."""
        return {"kind": "aoe", "shelf": shelf, "slot": slot,
                "device": f"/dev/etherd/e{shelf}.{slot}"}

    async def export(self, volume_id: str, path: str) -> dict[str, Any]:
        """See L{IExportDriver.export}."""
        host_ids.volume_id(volume_id)
        host_ids.host_path(path)
        await self._lock.acquire()
        try:
            return await self._export(volume_id, path)
        finally:
            self._lock.release()

    async def ensure(self, volume_id: str, path: str) -> dict[str, Any]:
        """See L{IExportDriver.ensure}: the same as L{export}, which reads first."""
        return await self.export(volume_id, path)

    async def _export(self, volume_id: str, path: str) -> dict[str, Any]:
        state = self._read_state(volume_id)
        running = self._running()
        fresh = state is None
        if state is not None and self._key(state) in running:
            if state["path"] != path:
                raise ExportConflict(f"{volume_id} is exported from {state['path']}, not {path}")
            return self.connection_info(state["shelf"], state["slot"])
        if state is None:
            shelf, slot = await self._next_slot(running)
        else:
            shelf, slot = state["shelf"], state["slot"]
        taken = {(k[0], k[1]) for k in running if k[2] == self.netif}
        if (shelf, slot) in taken:
            raise ExportError(f"e{shelf}.{slot} is already served on {self.netif}")
        state = {"volume_id": volume_id, "shelf": shelf, "slot": slot, "netif": self.netif,
                 "path": path}
        argv = vblade_argv(self._vblade, shelf, slot, self.netif, path)
        await self._run_in_thread(write_atomically, Path(self._state_file(volume_id)),
                                  json.dumps(state).encode(), 0o600)
        try:
            await self._spawn(volume_id, argv)
        except BaseException:
            if fresh:
                await self._forget(volume_id, shelf, slot)
            raise
        log.info("exported {volume} over AoE as e{shelf}.{slot} on {netif}",
                 volume=volume_id, shelf=shelf, slot=slot, netif=self.netif)
        return self.connection_info(shelf, slot)

    async def _next_slot(self, running: dict[Key, int]) -> tuple[int, int]:
        if self._allocate is not None:
            shelf, slot = await self._allocate()
            host_ids.bounded_int("AoE shelf", shelf, 0, MAX_SHELF)
            host_ids.bounded_int("AoE slot", slot, 0, MAX_SLOT)
            return shelf, slot
        used = {(s["shelf"], s["slot"]) for s in self._states().values()}
        used |= {(k[0], k[1]) for k in running if k[2] == self.netif}
        for slot in range(MAX_SLOT + 1):
            if (self.shelf, slot) not in used:
                return self.shelf, slot
        raise ExportError(f"no free AoE slot on shelf {self.shelf}")

    def _resolve(self, program: str) -> str:
        found = find_executable(program, self._search)
        if found is None:
            raise ExportError(f"command not found: {program!r} (install it)")
        return found

    async def _spawn(self, volume_id: str, argv: list[str]) -> None:
        full = [self._resolve(argv[0]), *argv[1:]]
        if self.netns is not None:
            full = [self._resolve("ip"), "netns", "exec", self.netns, *full]
        # setsid: its own session, so a ^C to nova-volume's terminal spares it.
        full = [self._resolve("setsid"), *full]
        log_path = self.log_file(volume_id)
        proto = _VbladeProtocol(volume_id)
        null_fd = os.open(os.devnull, os.O_RDONLY)
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            process = self._reactor.spawnProcess(proto, full[0], full, env={"PATH": _SEARCH},
                                                 childFDs={0: null_fd, 1: log_fd, 2: log_fd})
        except OSError as e:
            raise ExportError(f"cannot start vblade for {volume_id}: {e}") from None
        finally:
            os.close(null_fd)
            os.close(log_fd)
        self._children[volume_id] = (process, proto)

        def forget_child(result: Any) -> Any:
            if self._children.get(volume_id, (None, None))[1] is proto:
                del self._children[volume_id]
            return result
        proto.ended.addBoth(forget_child)
        await self._wait_ready(volume_id, process.pid, proto, argv)

    async def _wait_ready(self, volume_id: str, pid: int, proto: _VbladeProtocol,
                          argv: list[str]) -> None:
        # vblade prints "pid N: eS.N, X sectors ..." once its file and socket are open.
        marker = f"pid {pid}:".encode()
        waited, poll = 0.0, 0.01
        while True:
            if proto.ended.called:
                raise ExportError(f"vblade for {volume_id} exited: {self._log_tail(volume_id)}")
            shown = procs.cmdline(pid, self._proc_dir) or []
            if procs.is_program(shown, self._vblade) and shown[1:] == argv[1:] \
                    and marker in self._log_head(volume_id):
                return
            if waited >= self._timeout:
                await self._stop(volume_id, pid)
                raise ExportError(f"vblade for {volume_id} did not start:"
                                  f" {self._log_tail(volume_id)}")
            await task.deferLater(self._reactor, poll, lambda: None)
            waited += poll

    def _log_head(self, volume_id: str) -> bytes:
        try:
            with open(self.log_file(volume_id), "rb") as f:
                return f.read(4096)
        except OSError:
            return b""

    def _log_tail(self, volume_id: str) -> str:
        return self._log_head(volume_id).decode("utf-8", "replace").strip()[-500:] or "(no output)"

    async def _stop(self, volume_id: str, pid: int) -> None:
        child = self._children.get(volume_id)
        if child is not None and child[0].pid == pid:
            child[1].stopping = True
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            if await procs.wait_gone(pid, self._reactor, self._timeout,
                                     proc_dir=self._proc_dir):
                return
        raise ExportError(f"vblade {pid} of {volume_id} does not stop")

    async def _forget(self, volume_id: str, shelf: int, slot: int) -> None:
        for leftover in (self._state_file(volume_id), self.log_file(volume_id)):
            try:
                os.unlink(leftover)
            except FileNotFoundError:
                pass
        if self._release is not None:
            await self._release(shelf, slot)

    async def unexport(self, volume_id: str) -> None:
        """See L{IExportDriver.unexport}. (An AoE target cannot tell whether it
        is in use: the compute host detaches first.)"""
        host_ids.volume_id(volume_id)
        await self._lock.acquire()
        try:
            state = self._read_state(volume_id)
            if state is None:
                return
            pid = self._running().get(self._key(state))
            if pid is not None:
                await self._stop(volume_id, pid)
            await self._forget(volume_id, state["shelf"], state["slot"])
            log.info("withdrew the AoE export of {volume}", volume=volume_id)
        finally:
            self._lock.release()

    async def exports(self) -> list[str]:
        """See L{IExportDriver.exports}."""
        running = self._running()
        return sorted(v for v, s in self._states().items() if self._key(s) in running)

    async def shutdown(self) -> int:
        """
        Stop every vblade of this driver, keeping the state files (as a
        reboot would: L{ensure} restarts them on the same shelf and slot).
        For tests and operators.

        @return: how many were stopped.
        """
        await self._lock.acquire()
        try:
            running = self._running()
            stopped = 0
            for volume_id, state in self._states().items():
                pid = running.get(self._key(state))
                if pid is not None:
                    await self._stop(volume_id, pid)
                    stopped += 1
            return stopped
        finally:
            self._lock.release()
