"""
What only the AMQP transport does: the shipped spec, start-up failures,
malformed messages on the wire, and recovery from a channel the broker closed.
Runs against RabbitMQ at 127.0.0.1 (C{NOVA_TEST_AMQP_PORT} overrides 5672).
"""

from __future__ import annotations

import json
from typing import Any

import attr
from twisted.internet import defer, protocol
from twisted.trial import unittest

from nova.exception import RemoteError
from nova.rpc.amqp import AMQPTransport
from nova.rpc.amqp_protocol import load_spec
from nova.rpc.dispatcher import Dispatcher
from nova.rpc.errors import BrokerUnavailable, TransportStopped
from tests.test_rpc_contract import (
    RABBIT_HINT,
    Recorder,
    amqp_config,
    amqp_port,
    require_rabbit,
    unique,
)


class SpecTests(unittest.TestCase):
    def test_spec_is_shipped(self) -> None:
        spec = load_spec()
        self.assertEqual((spec.major, spec.minor), (0, 9))
        basic = spec.classes.byname["basic"]
        for method in ("publish", "consume", "deliver", "ack", "reject", "qos", "cancel"):
            self.assertIn(method, basic.methods.byname)
        self.assertIn("reply-to", basic.fields.byname)


class _Accepted(protocol.Protocol):
    def __init__(self, server: "FakeServer") -> None:
        self.server = server
        self.lost: defer.Deferred[None] = defer.Deferred()

    def connectionMade(self) -> None:
        self.server.accepted.append(self)
        if self.server.mode == "close":
            self.transport.loseConnection()
        elif self.server.mode == "garbage":
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            self.transport.loseConnection()

    def connectionLost(self, reason: Any) -> None:
        self.lost.callback(None)


class FakeServer(protocol.Factory):
    """Not a broker: keeps silent, closes at once, or answers garbage."""

    noisy = False

    def __init__(self, reactor: Any, mode: str) -> None:
        self.mode = mode
        self.accepted: list[_Accepted] = []
        self.port = reactor.listenTCP(0, self, interface="127.0.0.1")

    def buildProtocol(self, addr: Any) -> _Accepted:
        return _Accepted(self)

    async def close(self) -> None:
        await self.port.stopListening()
        for accepted in self.accepted:
            accepted.transport.abortConnection()
        await defer.gatherResults([a.lost for a in self.accepted])


class StartFailureTests(unittest.TestCase):
    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor

    async def fake_server(self, mode: str) -> int:
        server = FakeServer(self.reactor, mode)
        self.addCleanup(server.close)
        return server.port.getHost().port

    async def assertStartFails(self, transport: AMQPTransport, *fragments: str) -> None:
        self.addCleanup(transport.stop)
        with self.assertRaises(BrokerUnavailable) as caught:
            await transport.start()
        for fragment in fragments:
            self.assertIn(fragment, str(caught.exception))
        self.assertEqual(caught.exception.code, "Unavailable")
        self.assertFalse(transport.connected)

    async def test_nothing_listening(self) -> None:
        port = self.reactor.listenTCP(0, protocol.Factory(), interface="127.0.0.1")
        number = port.getHost().port
        await port.stopListening()
        transport = AMQPTransport(self.reactor, amqp_config("nova-x", port=number))
        await self.assertStartFails(transport, f"127.0.0.1:{number}")

    async def test_server_closes_at_once(self) -> None:
        number = await self.fake_server("close")
        await self.assertStartFails(AMQPTransport(self.reactor, amqp_config("nova-x", port=number)),
                                    f"127.0.0.1:{number}")

    async def test_server_speaks_garbage(self) -> None:
        number = await self.fake_server("garbage")
        await self.assertStartFails(AMQPTransport(self.reactor, amqp_config("nova-x", port=number)),
                                    f"127.0.0.1:{number}")

    async def test_silent_server_times_out(self) -> None:
        number = await self.fake_server("silent")
        transport = AMQPTransport(self.reactor, amqp_config("nova-x", port=number),
                                  connect_timeout=0.3)
        await self.assertStartFails(transport, f"127.0.0.1:{number}")

    async def test_wrong_password(self) -> None:
        await require_rabbit(self, self.reactor)
        config = attr.evolve(amqp_config(unique("nova-test")), amqp_password="wrong")
        await self.assertStartFails(AMQPTransport(self.reactor, config), "login as 'guest' refused",
                                    "ACCESS_REFUSED")

    async def test_stop_while_starting(self) -> None:
        number = await self.fake_server("silent")
        transport = AMQPTransport(self.reactor, amqp_config("nova-x", port=number))
        starting = transport.start()
        await transport.stop()
        with self.assertRaises(TransportStopped):
            await starting
        # and it can be started again, here against the real broker
        transport.config = amqp_config(unique("nova-test"))
        transport._connector.config = transport.config
        self.addCleanup(transport.stop)
        try:
            await transport.start()
        except BrokerUnavailable as e:
            self.fail(RABBIT_HINT.format(port=amqp_port(), error=e))
        await transport.delete_exchange()


class WireTests(unittest.TestCase):
    """Against RabbitMQ: what arrives on the wire that nova did not send well."""

    async def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        self.config = amqp_config(unique("nova-test"))
        self.topic = unique("topic")
        self.transport = AMQPTransport(reactor, self.config, retry_delay=0.05)
        try:
            await self.transport.start()
        except BrokerUnavailable as e:
            self.fail(RABBIT_HINT.format(port=amqp_port(), error=e))
        self.addCleanup(self.transport.stop)
        self.addCleanup(self._delete)
        self.manager = Recorder()
        await self.transport.consume(self.topic, Dispatcher(self.manager))

    async def _delete(self) -> None:
        await self.transport.when_connected()
        await self.transport.delete_topic(self.topic)
        await self.transport.delete_exchange()

    async def test_malformed_request_with_reply_to_is_answered(self) -> None:
        msg_id = self.transport.pending.new_id()
        pending = self.transport.pending.add(msg_id, "raw", 10)
        body = json.dumps({"msg_id": msg_id, "reply_to": self.transport.reply_queue,
                           "method": "echo", "args": ["not", "a", "dict"]}).encode()
        self.transport._publish(self.config.exchange, self.topic, body)
        with self.assertRaises(RemoteError) as caught:
            await pending
        self.assertEqual(caught.exception.remote_type, "MalformedMessage")

    async def test_junk_is_dropped(self) -> None:
        for junk in (b"\xff\xfe", b"[1, 2]", b"{}", b'{"method": 3}'):
            self.transport._publish(self.config.exchange, self.topic, junk)
        # The consumer survives the junk before it.
        result = await self.transport.call(self.topic, "echo", {"value": "still here"})
        self.assertEqual(result, "still here")

    async def test_channel_closed_by_broker_reconnects(self) -> None:
        lost = self.transport.when_disconnected()
        # Delete the exchange under the transport: its next publish makes the
        # broker close the channel (404), and the transport starts over.
        await self.transport.delete_exchange()
        await self.transport.cast(self.topic, "record", {"value": 1})
        await lost
        await self.transport.when_connected()
        # The exchange and the binding were declared again.
        self.assertEqual(await self.transport.call(self.topic, "echo", {"value": 2}), 2)
