"""
Tests of nova-network's DHCP lease events: the line protocol (on a
StringTransport), the fallback file's replay, and a real unix socket
between the lease script's client and L{DhcpEventServer}.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile

from twisted.internet import defer, error, threads
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from nova.exception import NovaError

from nova.cmd import dhcpbridge
from nova.network import dhcp_client
from nova.network.dhcp_events import (DhcpEventServer, DhcpEventService, check_event,
                                      replay_events_file)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVENT = {"action": "add", "mac": "02:00:00:00:00:0A", "ip": "10.0.5.10",
         "hostname": "i-0000000a", "interface": "novabr100"}


class Recorder:
    """A handler that records events and can be made to fail or wait."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.fail_on: str | None = None
        self.gate: defer.Deferred | None = None

    async def __call__(self, event: dict) -> None:
        if self.gate is not None:
            await self.gate
        if event["ip"] == self.fail_on:
            raise RuntimeError("redis is down")
        self.events.append(event)


class ProtocolTests(unittest.TestCase):
    def setUp(self) -> None:
        self.handler = Recorder()
        self.proto = DhcpEventServer(self.handler).buildProtocol(None)
        self.transport = StringTransport()
        self.proto.makeConnection(self.transport)

    def send(self, data: bytes) -> None:
        self.proto.dataReceived(data)

    def test_event_acked_after_handler(self) -> None:
        self.handler.gate = defer.Deferred()
        self.send(json.dumps(EVENT).encode() + b"\n")
        self.assertEqual(self.transport.value(), b"")  # not before the handler finished
        self.handler.gate.callback(None)
        self.assertEqual(self.transport.value(), b"ok\n")
        self.assertEqual(self.handler.events, [{**EVENT, "mac": "02:00:00:00:00:0a"}])

    def test_lines_handled_in_order(self) -> None:
        self.handler.gate = defer.Deferred()
        second = {**EVENT, "action": "del"}
        self.send(json.dumps(EVENT).encode() + b"\n" + json.dumps(second).encode() + b"\n")
        self.handler.gate.callback(None)
        self.assertEqual([e["action"] for e in self.handler.events], ["add", "del"])
        self.assertEqual(self.transport.value(), b"ok\nok\n")

    def test_errors_answered(self) -> None:
        self.handler.fail_on = "10.0.5.10"
        self.send(json.dumps(EVENT).encode() + b"\n")
        self.send(b"{not json\n")
        self.send(json.dumps({**EVENT, "action": "tftp"}).encode() + b"\n")
        self.send(json.dumps({**EVENT, "mac": "x"}).encode() + b"\n")
        answers = self.transport.value().decode().splitlines()
        self.assertEqual(len(answers), 4)
        self.assertEqual(answers[0], "error RuntimeError: redis is down")
        self.assertTrue(all(a.startswith("error invalid event") for a in answers[1:]), answers)
        self.assertEqual(self.handler.events, [])
        self.flushLoggedErrors(RuntimeError)

    def test_long_line_refused(self) -> None:
        self.send(b"x" * 5000)
        self.assertEqual(self.transport.value(), b"error line too long\n")
        self.assertTrue(self.transport.disconnecting)

    def test_check_event(self) -> None:
        self.assertEqual(check_event({"action": "old", "mac": "02:00:00:00:00:0B",
                                      "ip": "10.0.0.1"})["hostname"], None)
        for bad in ([], {"action": "add", "mac": "02:00:00:00:00:0b"},
                    {"action": "add", "mac": "02:00:00:00:00:0b", "ip": "10.0.0.1",
                     "hostname": 5}):
            self.assertRaises(ValueError, check_event, bad)


class ReplayTests(unittest.TestCase):
    def setUp(self) -> None:
        self.path = os.path.abspath(self.mktemp())
        self.env = {dhcpbridge.EVENTS_ENV: self.path}
        self.handler = Recorder()

    def record(self, ip: str, action: str = "add") -> None:
        dhcpbridge.record(self.path, action, "02:00:00:00:00:0a", ip, None, self.env, 1.0)

    def _go(self, coro) -> defer.Deferred:
        return defer.Deferred.fromCoroutine(coro)

    def test_replay_and_truncate(self) -> defer.Deferred:
        async def go() -> None:
            self.record("10.0.5.10")
            with open(self.path, "ab") as f:
                f.write(b'{"torn\n')
            self.record("10.0.5.10", "del")
            self.assertEqual(await replay_events_file(self.path, self.handler), 2)
            self.assertEqual([(e["action"], e["ip"]) for e in self.handler.events],
                             [("add", "10.0.5.10"), ("del", "10.0.5.10")])
            self.assertEqual(os.path.getsize(self.path), 0)
            self.record("10.0.5.11")  # the script appends to the emptied file
            self.assertEqual(await replay_events_file(self.path, self.handler), 1)
            self.assertEqual(await replay_events_file(self.path + ".none", self.handler), 0)
        return self._go(go())

    def test_failure_keeps_the_rest(self) -> defer.Deferred:
        async def go() -> None:
            for ip in ("10.0.5.10", "10.0.5.11", "10.0.5.12"):
                self.record(ip)
            self.handler.fail_on = "10.0.5.11"
            with self.assertRaises(RuntimeError):
                await replay_events_file(self.path, self.handler)
            with open(self.path) as f:
                self.assertEqual([json.loads(line)["ip"] for line in f],
                                 ["10.0.5.11", "10.0.5.12"])
            self.handler.fail_on = None
            self.assertEqual(await replay_events_file(self.path, self.handler), 2)
            self.assertEqual([e["ip"] for e in self.handler.events],
                             ["10.0.5.10", "10.0.5.11", "10.0.5.12"])
        return self._go(go())


class SocketTests(unittest.TestCase):
    """A real unix socket on trial's reactor; the client runs in a thread."""

    def setUp(self) -> None:
        from twisted.internet import reactor
        self.reactor = reactor
        # A short directory: unix socket paths have at most 107 bytes.
        self.dir = tempfile.mkdtemp(prefix="nvt-dhcp-", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.path = os.path.join(self.dir, "dhcp.sock")
        self.events = os.path.join(self.dir, "events.jsonl")
        self.handler = Recorder()

    async def listen(self):
        port = await DhcpEventServer.listen(self.reactor, self.path, self.handler)
        self.addCleanup(port.stopListening)
        return port

    def env(self) -> dict[str, str]:
        return {dhcp_client.SOCKET_ENV: self.path, dhcpbridge.EVENTS_ENV: self.events,
                "DNSMASQ_INTERFACE": "novabr100", "PATH": os.environ.get("PATH", "")}

    def _go(self, coro) -> defer.Deferred:
        return defer.Deferred.fromCoroutine(coro)

    def test_script_sends_over_socket(self) -> defer.Deferred:
        async def go() -> None:
            await self.listen()
            self.assertEqual(os.stat(self.path).st_mode & 0o777, 0o600)
            done = await threads.deferToThread(
                subprocess.run, [sys.executable, os.path.join(ROOT, "bin", "nova-dhcpbridge"),
                                 "add", "02:00:00:00:00:0A", "10.0.5.10", "i-0000000a"],
                env=self.env(), capture_output=True, timeout=30)
            self.assertEqual((done.returncode, done.stderr), (0, b""))
            self.assertEqual([(e["action"], e["mac"], e["ip"], e["hostname"], e["interface"])
                              for e in self.handler.events],
                             [("add", "02:00:00:00:00:0a", "10.0.5.10", "i-0000000a",
                               "novabr100")])
            self.assertFalse(os.path.exists(self.events))  # nothing fell back
        return self._go(go())

    def test_handler_error_falls_back_to_file(self) -> defer.Deferred:
        async def go() -> None:
            await self.listen()
            self.handler.fail_on = "10.0.5.10"
            err = io.StringIO()
            code = await threads.deferToThread(
                dhcp_client.main, ["old", "02:00:00:00:00:0a", "10.0.5.10"], self.env(),
                io.StringIO(), err, 5.0)
            self.assertEqual(code, 0)
            self.assertIn("redis is down", err.getvalue())
            with open(self.events) as f:
                self.assertEqual(json.loads(f.read())["action"], "old")
            self.flushLoggedErrors(RuntimeError)
        return self._go(go())

    def test_no_answer_in_time_falls_back(self) -> defer.Deferred:
        async def go() -> None:
            await self.listen()
            self.handler.gate = defer.Deferred()
            self.addCleanup(lambda: self.handler.gate.called or self.handler.gate.callback(None))
            with self.assertRaises(OSError):  # socket.timeout
                await threads.deferToThread(dhcp_client.send_event, self.path,
                                            {**EVENT}, 0.2)
        return self._go(go())

    def test_nobody_listening_falls_back(self) -> defer.Deferred:
        async def go() -> None:
            err = io.StringIO()
            code = await threads.deferToThread(
                dhcp_client.main, ["del", "02:00:00:00:00:0a", "10.0.5.10"], self.env(),
                io.StringIO(), err, 5.0)
            self.assertEqual(code, 0)
            self.assertIn("FileNotFoundError", err.getvalue())
            with open(self.events) as f:
                self.assertEqual(json.loads(f.read())["action"], "del")
        return self._go(go())

    def test_stale_socket_replaced_live_one_refused(self) -> defer.Deferred:
        async def go() -> None:
            stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            stale.bind(self.path)
            stale.close()  # the file stays, nobody listens: a crashed nova-network
            await self.listen()
            with self.assertRaises(error.CannotListenError):
                await DhcpEventServer.listen(self.reactor, self.path, self.handler)
            await threads.deferToThread(dhcp_client.send_event, self.path, {**EVENT}, 5.0)
            self.assertEqual(len(self.handler.events), 1)
        return self._go(go())

    def test_service(self) -> defer.Deferred:
        async def go() -> None:
            service = DhcpEventService(self.reactor, self.path, self.handler)
            service.startService()
            self.addCleanup(lambda: service.running and service.stopService())
            await service.whenReady()
            await threads.deferToThread(dhcp_client.send_event, self.path, {**EVENT}, 5.0)
            self.assertEqual(len(self.handler.events), 1)
            await service.stopService()
            self.assertFalse(os.path.exists(self.path))  # the socket file goes with it
            second = DhcpEventService(self.reactor, self.path, self.handler)
            blocker = await self.listen()
            second.startService()
            with self.assertRaises(NovaError) as caught:
                await second.whenReady()
            self.assertIn("another process listens on it", str(caught.exception))
            await second.stopService()  # nothing was listening: nothing to stop
            self.assertIsNone(second.port)
            await blocker.stopListening()
        return self._go(go())
