"""
L{NbdExportDriver}: its commands and QMP arguments, its logic against an
in-memory storage daemon, and the real thing: a qemu-storage-daemon that
serves a file with a known pattern, read and written back over NBD with
qemu-io, refusing to withdraw an export a client still holds, and found
again by a new driver object.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import defer, protocol, task
from twisted.trial import unittest

from nova.utils.process import FakeProcessRunner, RecordedCall, Reply, find_executable
from nova.utils.validate import InvalidIdentifier
from nova.volume.exports import ExportConflict, ExportError, ExportInUse
from nova.volume.exports.nbd import (NbdExportDriver, blockdev_add_args, daemon_argv,
                                     export_add_args)
from nova.volume.qmp import QmpCommandError
from tests.support import volume_exports as support
from tests.support.volume_exports import coroutine_test

VOL = "vol-0123456789abcdef0"


class ArgumentTests(unittest.TestCase):
    """The daemon's argv and the QMP arguments."""

    def test_daemon_argv(self) -> None:
        self.assertEqual(
            daemon_argv("qemu-storage-daemon", "/s/qmp.sock", "/s/nbd.sock", "/s/qsd.pid"),
            ["qemu-storage-daemon",
             "--chardev", "socket,id=nova-qmp,path=/s/qmp.sock,server=on,wait=off",
             "--monitor", "chardev=nova-qmp",
             "--nbd-server", "addr.type=unix,addr.path=/s/nbd.sock",
             "--pidfile", "/s/qsd.pid", "--daemonize"])

    def test_daemon_argv_refuses_option_injection(self) -> None:
        for bad in ("/s/q.sock,server=off", "relative.sock", "/s/" + "x" * 120):
            with self.assertRaises(InvalidIdentifier):
                daemon_argv("qemu-storage-daemon", bad, "/s/nbd.sock", "/s/qsd.pid")

    def test_blockdev_and_export(self) -> None:
        self.assertEqual(blockdev_add_args(VOL, "/v/x.img"), {
            "driver": "raw", "node-name": f"nova-{VOL}", "discard": "unmap",
            "file": {"driver": "file", "filename": "/v/x.img", "node-name": f"nova-{VOL}-f",
                     "discard": "unmap"}})
        self.assertEqual(blockdev_add_args(VOL, "/dev/nova-volumes/" + VOL)["file"]["driver"],
                         "host_device")
        self.assertEqual(export_add_args(VOL), {"type": "nbd", "id": f"nova-{VOL}",
                                                "node-name": f"nova-{VOL}", "name": VOL,
                                                "writable": True})

    def test_long_state_dir_refused(self) -> None:
        with self.assertRaises(InvalidIdentifier):
            NbdExportDriver(FakeProcessRunner(), task.Clock(), "/" + "d" * 100)


class FakeDaemon:
    """The QMP side of a storage daemon, in memory (one client object)."""

    def __init__(self) -> None:
        self.nodes: dict[str, str] = {}
        self.exports: dict[str, str] = {}
        self.in_use: set[str] = set()
        self.fail_export = False
        self.commands: list[str] = []

    async def execute(self, command: str, args: dict[str, Any] | None = None) -> Any:
        self.commands.append(command)
        args = args or {}
        if command == "query-block-exports":
            return [{"id": i, "node-name": n, "type": "nbd", "shutting-down": False}
                    for i, n in self.exports.items()]
        if command == "query-named-block-nodes":
            return [{"node-name": n, "file": f} for n, f in self.nodes.items()]
        if command == "blockdev-add":
            self.nodes[args["node-name"]] = args["file"]["filename"]
        elif command == "blockdev-del":
            self.nodes.pop(args["node-name"])
        elif command == "block-export-add":
            if self.fail_export:
                raise QmpCommandError(command, "GenericError", "no space")
            self.exports[args["id"]] = args["node-name"]
        elif command == "block-export-del":
            if args["id"] in self.in_use:
                raise QmpCommandError(command, "GenericError",
                                      f"export '{args['id']}' still in use")
            del self.exports[args["id"]]
        return {}

    def close(self) -> None:
        pass


class DriverLogicTests(unittest.TestCase):
    """The driver against L{FakeDaemon}; the daemon 'starts' through a fake runner."""

    def setUp(self) -> None:
        self.dir = support.short_tempdir(self)  # socket paths stay short
        self.proc = os.path.join(self.dir, "proc")
        os.makedirs(os.path.join(self.proc, "4242"))
        self.daemon = FakeDaemon()
        self.runner = FakeProcessRunner()
        self.runner.add_handler(["qemu-storage-daemon"], self._start)

        async def connect(path: str) -> FakeDaemon:
            return self.daemon
        self.driver = NbdExportDriver(self.runner, task.Clock(), os.path.join(self.dir, "nbd"),
                                      connect=connect, proc_dir=self.proc)

    def _start(self, call: RecordedCall) -> Reply:
        os.makedirs(self.driver.state_dir, exist_ok=True)
        with open(os.path.join(self.proc, "4242", "cmdline"), "wb") as f:
            f.write(b"\0".join(a.encode() for a in call.argv) + b"\0")
        with open(self.driver.pid_file, "w") as f:
            f.write("4242\n")
        return Reply()

    @coroutine_test
    async def test_starts_daemon_once(self) -> None:
        self.assertEqual(await self.driver.exports(), [])
        self.assertEqual(self.runner.commands(), [])  # reading starts nothing
        await self.driver.export(VOL, "/v/a.img")
        await self.driver.export(VOL, "/v/a.img")
        self.assertEqual(len(self.runner.calls_matching(["qemu-storage-daemon"])), 1)
        self.assertEqual(self.daemon.commands.count("blockdev-add"), 1)
        self.assertEqual(await self.driver.exports(), [VOL])

    @coroutine_test
    async def test_conflict_and_in_use(self) -> None:
        await self.driver.export(VOL, "/v/a.img")
        with self.assertRaises(ExportConflict):
            await self.driver.export(VOL, "/v/b.img")
        self.daemon.in_use.add(f"nova-{VOL}")
        with self.assertRaises(ExportInUse):
            await self.driver.unexport(VOL)
        self.daemon.in_use.clear()
        await self.driver.unexport(VOL)
        self.assertEqual((self.daemon.nodes, self.daemon.exports), ({}, {}))

    @coroutine_test
    async def test_failed_export_leaves_nothing(self) -> None:
        self.daemon.fail_export = True
        with self.assertRaises(ExportError):
            await self.driver.export(VOL, "/v/a.img")
        self.assertEqual(self.daemon.nodes, {})

    @coroutine_test
    async def test_leftover_node_on_other_file_replaced(self) -> None:
        self.daemon.nodes[f"nova-{VOL}"] = "/v/old.img"
        self._start(RecordedCall(argv=("qemu-storage-daemon", self.driver.qmp_socket)))
        await self.driver.export(VOL, "/v/a.img")
        self.assertEqual(self.daemon.nodes, {f"nova-{VOL}": "/v/a.img"})

    @coroutine_test
    async def test_other_exports_ignored(self) -> None:
        self._start(RecordedCall(argv=("qemu-storage-daemon", self.driver.qmp_socket)))
        self.daemon.exports["someone-else"] = "node0"
        self.assertEqual(await self.driver.exports(), [])


class _Holder(protocol.ProcessProtocol):
    """A qemu-io that keeps its NBD connection open until its stdin closes."""

    def __init__(self) -> None:
        self.output = b""
        self.read_done: defer.Deferred[None] = defer.Deferred()
        self.ended: defer.Deferred[None] = defer.Deferred()

    def connectionMade(self) -> None:
        self.transport.write(b"read 0 512\n")

    def outReceived(self, data: bytes) -> None:
        self.output += data
        if b"read 512/512 bytes" in self.output and not self.read_done.called:
            self.read_done.callback(None)

    def processEnded(self, reason: Any) -> None:
        if not self.read_done.called:
            self.read_done.errback(RuntimeError(f"qemu-io ended: {self.output!r}"))
        self.ended.callback(None)


class RealNbdTests(unittest.TestCase):
    """A real qemu-storage-daemon."""

    skip = support.missing("qemu-storage-daemon", "qemu-io")

    def setUp(self) -> None:
        from twisted.internet import reactor
        self.reactor = reactor
        self.runner = support.real_runner()
        self.dir = support.short_tempdir(self)
        self.driver = NbdExportDriver(self.runner, reactor, os.path.join(self.dir, "nbd"))
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(self.driver.shutdown()))
        self.path = os.path.join(self.dir, VOL + ".img")
        with open(self.path, "wb") as f:
            f.truncate(4 * 1024 * 1024)
        support.write_pattern(self.path, [0, 1, 7, 8191])

    def _uri(self, info: dict[str, Any]) -> str:
        return f"nbd+unix:///{info['export']}?socket={info['socket']}"

    async def _qemu_io(self, info: dict[str, Any], command: str) -> bytes:
        done = await self.runner.run(["qemu-io", "-f", "raw", "-c", command, self._uri(info)])
        return done.stdout

    @coroutine_test
    async def test_data_over_nbd(self) -> None:
        info = await self.driver.export(VOL, self.path)
        self.assertEqual(info, {"kind": "nbd", "socket": os.path.join(self.dir, "nbd", "nbd.sock"),
                                "export": VOL})
        copy = os.path.join(self.dir, "copy.img")
        await self.runner.run(["qemu-img", "convert", "-f", "raw", "-O", "raw",
                               self._uri(info), copy])
        with open(copy, "rb") as a, open(self.path, "rb") as b:
            self.assertEqual(a.read(), b.read())
        self.assertEqual(support.read_sectors(copy, 7, 1), support.pattern(7))
        # Writable: a write through NBD lands in the backing file.
        await self._qemu_io(info, "write -P 0xab 1024 512")
        self.assertEqual(support.read_sectors(self.path, 2, 1), b"\xab" * 512)

    @coroutine_test
    async def test_in_use_then_detached(self) -> None:
        info = await self.driver.export(VOL, self.path)
        holder = _Holder()
        qemu_io = find_executable("qemu-io", support.SEARCH)
        process = self.reactor.spawnProcess(holder, qemu_io,
                                            [qemu_io, "-f", "raw", self._uri(info)],
                                            env=dict(os.environ))

        def stop_holder() -> defer.Deferred[None]:
            if not holder.ended.called:
                process.signalProcess("KILL")
            return holder.ended
        self.addCleanup(stop_holder)
        await holder.read_done
        with self.assertRaises(ExportInUse):
            await self.driver.unexport(VOL)
        self.assertEqual(await self.driver.exports(), [VOL])
        process.closeStdin()  # qemu-io exits at end of input: the client detaches
        await holder.ended
        await self.driver.unexport(VOL)
        self.assertEqual(await self.driver.exports(), [])

    @coroutine_test
    async def test_restart_keeps_daemon_and_exports(self) -> None:
        await self.driver.export(VOL, self.path)
        pid = self.driver.daemon_pid()
        restarted = NbdExportDriver(self.runner, self.reactor, os.path.join(self.dir, "nbd"))
        self.assertEqual(restarted.daemon_pid(), pid)
        self.assertEqual(await restarted.exports(), [VOL])
        info = await restarted.ensure(VOL, self.path)
        self.assertEqual(restarted.daemon_pid(), pid)
        # -P: qemu-io checks the bytes it read (sector 1's pattern starts "nova").
        out = await self._qemu_io(info, "read -P 0x6e 512 1")
        self.assertIn(b"read 1/1 bytes at offset 512", out)
        self.assertNotIn(b"verification failed", out)

    @coroutine_test
    async def test_missing_file_is_an_export_error(self) -> None:
        with self.assertRaises(ExportError):
            await self.driver.export(VOL, os.path.join(self.dir, "absent.img"))
        self.assertEqual(await self.driver.exports(), [])
