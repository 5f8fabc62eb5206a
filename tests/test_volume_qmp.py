"""
The QMP client: greeting and negotiation, replies matched by id (events in
between), errors as typed exceptions, lost connections and timeouts; all on
a memory reactor and a string transport.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import defer
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial import unittest

from nova.volume.qmp import (QmpClient, QmpCommandError, QmpConnectionLost, QmpProtocol,
                             QmpTimeout, connect_qmp)

GREETING = b'{"QMP": {"version": {"qemu": {"major": 7}}, "capabilities": ["oob"]}}\r\n'


def sent(transport: StringTransport) -> list[dict[str, Any]]:
    lines = transport.value().splitlines()
    transport.clear()
    return [json.loads(line) for line in lines]


class ProtocolTests(unittest.TestCase):
    """The wire side, through a QmpClient."""

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.proto = QmpProtocol()
        self.transport = StringTransport()
        self.proto.makeConnection(self.transport)
        self.client = QmpClient(self.proto, self.clock, timeout=5)

    def _reply(self, obj: dict[str, Any]) -> None:
        self.proto.dataReceived(json.dumps(obj).encode() + b"\r\n")

    def test_replies_matched_by_id_events_kept(self) -> None:
        first = defer.Deferred.fromCoroutine(self.client.execute("query-block-exports"))
        second = defer.Deferred.fromCoroutine(
            self.client.execute("blockdev-del", {"node-name": "n"}))
        self.assertEqual(sent(self.transport), [
            {"execute": "query-block-exports", "id": 1},
            {"execute": "blockdev-del", "arguments": {"node-name": "n"}, "id": 2}])
        self._reply({"event": "BLOCK_EXPORT_DELETED", "data": {"id": "x"}})
        self._reply({"return": {}, "id": 2})
        self._reply({"return": [{"id": "e"}], "id": 1})
        self.assertEqual(self.successResultOf(first), [{"id": "e"}])
        self.assertEqual(self.successResultOf(second), {})
        self.assertEqual([e["event"] for e in self.client.events], ["BLOCK_EXPORT_DELETED"])

    def test_error_reply(self) -> None:
        waiting = defer.Deferred.fromCoroutine(self.client.execute("block-export-del"))
        self._reply({"error": {"class": "GenericError", "desc": "export 'x' still in use"},
                     "id": 1})
        error = self.failureResultOf(waiting, QmpCommandError).value
        self.assertEqual((error.command, error.error_class, error.desc),
                         ("block-export-del", "GenericError", "export 'x' still in use"))

    def test_split_lines_and_noise(self) -> None:
        waiting = defer.Deferred.fromCoroutine(self.client.execute("quit"))
        self.proto.dataReceived(b"not json\r\n\r\n[1]\r\n{\"ret")
        self.proto.dataReceived(b"urn\": {}, \"id\": 1}\r\n")
        self.assertEqual(self.successResultOf(waiting), {})

    def test_connection_lost_fails_pending_and_later(self) -> None:
        waiting = defer.Deferred.fromCoroutine(self.client.execute("query-block-exports"))
        self.proto.connectionLost(Failure(ConnectionDone("gone")))
        self.failureResultOf(waiting, QmpConnectionLost)
        later = defer.Deferred.fromCoroutine(self.client.execute("quit"))
        self.failureResultOf(later, QmpConnectionLost)

    def test_timeout_closes(self) -> None:
        waiting = defer.Deferred.fromCoroutine(self.client.execute("query-block-exports"))
        self.clock.advance(5)
        self.failureResultOf(waiting, QmpTimeout)
        self.assertTrue(self.transport.disconnecting)


class ConnectTests(unittest.TestCase):
    """connect_qmp on a memory reactor."""

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.connecting = defer.Deferred.fromCoroutine(
            connect_qmp(self.reactor, "/run/x/qmp.sock", timeout=3))
        [(path, factory, _timeout, _check)] = self.reactor.unixClients
        self.assertEqual(path, "/run/x/qmp.sock")
        self.wire = factory.buildProtocol(None)
        self.transport = StringTransport()
        self.wire.makeConnection(self.transport)

    def test_greeting_then_capabilities(self) -> None:
        self.assertNoResult(self.connecting)
        self.wire.dataReceived(GREETING)
        self.assertEqual(sent(self.transport), [{"execute": "qmp_capabilities", "id": 1}])
        self.wire.dataReceived(b'{"return": {}, "id": 1}\r\n')
        client = self.successResultOf(self.connecting)
        self.assertIsInstance(client, QmpClient)

    def test_no_greeting(self) -> None:
        self.reactor.advance(3)
        self.failureResultOf(self.connecting, QmpTimeout)

    def test_refused(self) -> None:
        reactor = MemoryReactorClock()
        connecting = defer.Deferred.fromCoroutine(connect_qmp(reactor, "/nowhere.sock"))
        from twisted.internet.error import ConnectionRefusedError
        [(_path, factory, _timeout, _check)] = reactor.unixClients
        factory.clientConnectionFailed(None, ConnectionRefusedError("nobody"))
        self.failureResultOf(connecting, QmpConnectionLost)
        # Leave the test's own pending connection alone.
        self.wire.dataReceived(GREETING)
        self.wire.dataReceived(b'{"return": {}, "id": 1}\r\n')
        self.successResultOf(self.connecting)
