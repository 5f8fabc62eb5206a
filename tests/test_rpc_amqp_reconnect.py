"""
The AMQP transport survives losing its connection: a TCP proxy on loopback
sits between the transports and RabbitMQ, and dropping every proxied
connection stands for a broker restart.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, protocol
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.trial import unittest

from nova.rpc.amqp import AMQPTransport
from nova.rpc.dispatcher import Dispatcher
from nova.rpc.errors import BrokerUnavailable, ConnectionLost, NotConnected
from tests.test_rpc_contract import RABBIT_HINT, Recorder, amqp_config, amqp_port, unique


class _Upstream(protocol.Protocol):
    def __init__(self, downstream: "_Downstream") -> None:
        self.downstream = downstream

    def dataReceived(self, data: bytes) -> None:
        if not self.downstream.proxy.frozen:
            self.downstream.transport.write(data)

    def connectionLost(self, reason: Any) -> None:
        self.downstream.transport.loseConnection()


class _Downstream(protocol.Protocol):
    """A client's connection to the proxy, forwarded to the broker."""

    def __init__(self, proxy: "TCPProxy") -> None:
        self.proxy = proxy
        self.upstream: _Upstream | None = None
        self.lost: defer.Deferred[None] = defer.Deferred()

    def connectionMade(self) -> None:
        if self.proxy.refusing:
            self.proxy.refused()
            self.transport.abortConnection()
            return
        self.proxy.connections.add(self)
        self.transport.pauseProducing()  # until the broker side is connected
        endpoint = TCP4ClientEndpoint(self.proxy.reactor, "127.0.0.1", self.proxy.target_port)
        connectProtocol(endpoint, _Upstream(self)).addCallbacks(self._connected, self._failed)

    def _connected(self, upstream: _Upstream) -> None:
        self.upstream = upstream
        if self.transport.connected:
            self.transport.resumeProducing()
        else:
            upstream.transport.loseConnection()

    def _failed(self, failure: Any) -> None:
        self.transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        assert self.upstream is not None
        if not self.proxy.frozen:
            self.upstream.transport.write(data)

    def connectionLost(self, reason: Any) -> None:
        self.proxy.connections.discard(self)
        if self.upstream is not None:
            self.upstream.transport.loseConnection()
        self.lost.callback(None)

    def abort(self) -> None:
        self.transport.abortConnection()
        if self.upstream is not None:
            self.upstream.transport.abortConnection()


class TCPProxy(protocol.Factory):
    """
    Forwards 127.0.0.1:<port> to the broker; can drop every connection at
    once, and can refuse connections for a while (a broker that is down).
    """

    def __init__(self, reactor: Any, target_port: int) -> None:
        self.reactor = reactor
        self.target_port = target_port
        self.connections: set[_Downstream] = set()
        self.port: Any = None
        self.number = 0
        self.refusing = False
        #: connections stay open but carry nothing (a network partition)
        self.frozen = False
        self.refusals = 0
        self._refusal_waiters: list[tuple[int, defer.Deferred[None]]] = []

    def refused(self) -> None:
        self.refusals += 1
        for count, d in list(self._refusal_waiters):
            if self.refusals >= count:
                self._refusal_waiters.remove((count, d))
                d.callback(None)

    def when_refused(self, count: int) -> defer.Deferred[None]:
        """@return: a Deferred firing once C{count} connections were refused."""
        d: defer.Deferred[None] = defer.Deferred()
        self._refusal_waiters.append((count, d))
        return d

    def buildProtocol(self, addr: Any) -> _Downstream:
        return _Downstream(self)

    def listen(self) -> None:
        self.port = self.reactor.listenTCP(self.number, self, interface="127.0.0.1")
        self.number = self.port.getHost().port

    async def stop_listening(self) -> None:
        if self.port is not None:
            port, self.port = self.port, None
            await port.stopListening()

    async def drop_all(self) -> None:
        """Abort every proxied connection, as a broker restart does."""
        connections = list(self.connections)
        for connection in connections:
            connection.abort()
        await defer.gatherResults([c.lost for c in connections])

    async def close(self) -> None:
        await self.stop_listening()
        await self.drop_all()


class ReconnectTests(unittest.TestCase):
    async def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        self.exchange = unique("nova-test")
        self.topics: list[str] = []
        admin = AMQPTransport(reactor, amqp_config(self.exchange))
        try:
            await admin.start()
        except BrokerUnavailable as e:
            self.fail(RABBIT_HINT.format(port=amqp_port(), error=e))
        self.addCleanup(admin.stop)
        self.addCleanup(self._delete, admin)
        self.proxy = TCPProxy(reactor, amqp_port())
        self.proxy.listen()
        self.addCleanup(self.proxy.close)

    async def _delete(self, admin: AMQPTransport) -> None:
        for topic in self.topics:
            await admin.delete_topic(topic)
        await admin.delete_exchange()

    async def transport(self, heartbeat: int = 10) -> AMQPTransport:
        """@return: a started transport whose connection goes through the proxy."""
        transport = AMQPTransport(self.reactor, amqp_config(self.exchange, port=self.proxy.number),
                                  retry_delay=0.05, max_retry_delay=0.5, heartbeat=heartbeat)
        self.addCleanup(transport.stop)
        await transport.start()
        return transport

    async def serve(self) -> tuple[str, AMQPTransport, Recorder]:
        topic = unique("topic")
        self.topics.append(topic)
        server = await self.transport()
        manager = Recorder()
        self.addCleanup(manager.open_gates)
        await server.consume(topic, Dispatcher(manager))
        return topic, server, manager

    async def test_reconnects_and_consumes_again(self) -> None:
        topic, server, manager = await self.serve()
        client = await self.transport()
        self.assertEqual(await client.call(topic, "echo", {"value": 1}), 1)
        lost = [server.when_disconnected(), client.when_disconnected()]
        await self.proxy.drop_all()
        await defer.gatherResults(lost)
        await defer.gatherResults([server.when_connected(), client.when_connected()])
        self.assertTrue(server.connected and client.connected)
        # The consumer was declared again on the new connection, and so was
        # the client's reply queue.
        self.assertEqual(await client.call(topic, "echo", {"value": 2}), 2)
        await client.cast(topic, "record", {"value": "again"})
        await manager.when_seen(1)
        self.assertEqual(manager.seen, ["again"])

    async def test_pending_call_fails_when_connection_drops(self) -> None:
        topic, server, manager = await self.serve()
        client = await self.transport()
        pending = client.call(topic, "wait_gate", {"value": 1}, timeout=60)
        await manager.when_gated()
        await self.proxy.drop_all()
        with self.assertRaises(ConnectionLost):
            await pending
        await client.when_connected()
        self.assertEqual(await client.call(topic, "echo", {"value": 3}), 3)

    async def test_disconnected_transport_refuses_then_recovers(self) -> None:
        topic, server, manager = await self.serve()
        client = await self.transport()
        self.proxy.refusing = True  # the "broker" stays down for now
        lost = client.when_disconnected()
        await self.proxy.drop_all()
        await lost
        # Both transports keep trying (with backoff): 2 attempts each at least.
        await self.proxy.when_refused(4)
        self.assertFalse(client.connected)
        with self.assertRaises(NotConnected):
            await client.call(topic, "echo", {"value": 1})
        with self.assertRaises(NotConnected):
            await client.cast(topic, "record", {"value": 1})
        with self.assertRaises(NotConnected):
            await client.consume(unique("topic"), Dispatcher(Recorder()))
        self.proxy.refusing = False  # the "broker" is back
        await defer.gatherResults([server.when_connected(), client.when_connected()])
        self.assertEqual(await client.call(topic, "echo", {"value": 4}), 4)

    async def test_pending_request_is_delivered_again(self) -> None:
        topic, server, manager = await self.serve()
        client = await self.transport()
        client.call(topic, "wait_gate", {"value": 1}).addErrback(lambda f: None)
        await manager.when_gated()
        await self.proxy.drop_all()
        # Not acknowledged when the connection dropped: the broker hands the
        # request to the (reconnected) consumer again.
        while len(manager.gates) < 2:
            await manager.when_gated_again()
        self.assertEqual(len(manager.gates), 2)

    async def test_stop_while_reconnecting(self) -> None:
        client = await self.transport()
        self.proxy.refusing = True
        lost = client.when_disconnected()
        await self.proxy.drop_all()
        await lost
        await self.proxy.when_refused(1)
        await client.stop()
        self.assertFalse(client.connected)
        self.proxy.refusing = False
        with self.assertRaises(NotConnected):
            await client.call("anything", "echo", {"value": 1})

    async def test_silent_connection_detected_by_heartbeat(self) -> None:
        topic, server, manager = await self.serve()
        client = await self.transport(heartbeat=1)
        lost = client.when_disconnected()
        self.proxy.frozen = True  # the broker neither answers nor closes
        await lost
        self.proxy.frozen = False
        await client.when_connected()
        self.assertEqual(await client.call(topic, "echo", {"value": 5}), 5)
