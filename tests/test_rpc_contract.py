"""
The RPC transport contract, run against every L{IRPCTransport}: the in-process
L{LocalBroker} and L{AMQPTransport} on a real RabbitMQ at 127.0.0.1
(C{NOVA_TEST_AMQP_PORT} overrides 5672). Each AMQP test uses its own exchange
and topics, and deletes them.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from twisted.internet import defer
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from nova.config import RpcConfig
from nova.context import RequestContext
from nova.exception import NotFound, RemoteError, RPCTimeout
from nova.rpc.amqp import AMQPTransport
from nova.rpc.dispatcher import Dispatcher, expose
from nova.rpc.errors import (
    BrokerUnavailable,
    InvalidTopic,
    MessageEncodingError,
    NotConnected,
    TransportStopped,
)
from nova.rpc.interfaces import IConsumer, IRPCTransport
from nova.rpc.local import LocalBroker


def amqp_port() -> int:
    """@return: the RabbitMQ port the tests use."""
    return int(os.environ.get("NOVA_TEST_AMQP_PORT", "5672"))


def amqp_config(exchange: str, port: int | None = None, call_timeout: float = 10.0) -> RpcConfig:
    """@return: the config of a test transport on C{exchange}."""
    return RpcConfig(transport="amqp", amqp_host="127.0.0.1",
                     amqp_port=amqp_port() if port is None else port,
                     exchange=exchange, call_timeout=call_timeout)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


RABBIT_HINT = ("RabbitMQ is not answering at 127.0.0.1:{port}; start it (make test does, or "
               "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 ERL_EPMD_ADDRESS=127.0.0.1 "
               "rabbitmq-server -detached && rabbitmqctl -q await_startup): {error}")


async def require_rabbit(test: unittest.TestCase, reactor: Any) -> None:
    """Fail C{test} with instructions if RabbitMQ is not answering."""
    probe = AMQPTransport(reactor, amqp_config(unique("nova-test")))
    try:
        await probe.start()
    except BrokerUnavailable as e:
        test.fail(RABBIT_HINT.format(port=amqp_port(), error=e))
    await probe.delete_exchange()
    await probe.stop()


class Recorder:
    """A manager whose exposed methods record what reaches them."""

    def __init__(self, name: str = "recorder") -> None:
        self.name = name
        self.seen: list[Any] = []
        self.gates: list[defer.Deferred[Any]] = []
        self._seen_waiters: list[tuple[int, defer.Deferred[None]]] = []
        self._gate_waiters: list[defer.Deferred[None]] = []

    def when_seen(self, count: int) -> defer.Deferred[None]:
        """@return: a Deferred firing once C{count} values were recorded."""
        d: defer.Deferred[None] = defer.Deferred()
        self._seen_waiters.append((count, d))
        self._notify()
        return d

    def when_gated(self) -> defer.Deferred[None]:
        """@return: a Deferred firing when a call waits at a gate."""
        d: defer.Deferred[None] = defer.Deferred()
        if self.gates:
            d.callback(None)
        else:
            self._gate_waiters.append(d)
        return d

    def when_gated_again(self) -> defer.Deferred[None]:
        """@return: a Deferred firing when the next call reaches a gate."""
        d: defer.Deferred[None] = defer.Deferred()
        self._gate_waiters.append(d)
        return d

    def open_gates(self, value: Any = 0) -> None:
        gates, self.gates = self.gates, []
        for gate in gates:
            gate.callback(value)

    def _notify(self) -> None:
        for count, d in list(self._seen_waiters):
            if len(self.seen) >= count:
                self._seen_waiters.remove((count, d))
                d.callback(None)

    @expose
    def echo(self, context: RequestContext, value: Any) -> Any:
        return value

    @expose
    def whoami(self, context: RequestContext) -> str:
        self.seen.append(self.name)
        self._notify()
        return self.name

    @expose
    def record(self, context: RequestContext, value: Any) -> None:
        self.seen.append(value)
        self._notify()

    @expose
    async def wait_gate(self, context: RequestContext, value: int) -> int:
        gate: defer.Deferred[int] = defer.Deferred()
        self.gates.append(gate)
        waiters, self._gate_waiters = self._gate_waiters, []
        for d in waiters:
            d.callback(None)
        return value + await gate

    @expose
    def show_context(self, context: RequestContext) -> dict[str, Any]:
        return context.to_dict()

    @expose
    def fail_nova(self, context: RequestContext, message: str) -> None:
        raise NotFound(message)

    @expose
    def fail_bug(self, context: RequestContext) -> None:
        raise ValueError("boom")

    def helper(self, context: RequestContext) -> str:
        """Public, but not exposed."""
        return "should not be callable"


class RPCContractTests:
    """
    The behaviour every transport shares. Subclasses define
    C{async make_transport(started=True)}, returning a transport on the shared
    test bus whose clean-up is already registered.
    """

    async def make_transport(self, started: bool = True) -> Any:
        raise NotImplementedError

    def new_topic(self) -> str:
        topic = unique("topic")
        self.topics.append(topic)
        return topic

    def host_topic(self, topic: str, host: str) -> str:
        name = f"{topic}.{host}"
        self.topics.append(name)
        return name

    async def serve(self, topic: str, manager: Recorder | None = None,
                    transport: Any = None) -> tuple[Any, Recorder, Any]:
        manager = manager or Recorder()
        transport = transport or await self.make_transport()
        consumer = await transport.consume(topic, Dispatcher(manager))
        self.addCleanup(manager.open_gates)
        return transport, manager, consumer

    async def test_provides_interface(self) -> None:
        transport = await self.make_transport()
        self.assertTrue(verifyObject(IRPCTransport, transport))
        consumer = await transport.consume(self.new_topic(), Dispatcher(Recorder()))
        self.assertTrue(verifyObject(IConsumer, consumer))

    async def test_call_returns_result(self) -> None:
        topic = self.new_topic()
        await self.serve(topic)
        client = await self.make_transport()
        value = {"instance": "i-1", "ips": ["10.0.0.2"], "n": 3, "ok": True, "none": None}
        self.assertEqual(await client.call(topic, "echo", {"value": value}), value)

    async def test_large_message(self) -> None:
        # Larger than an AMQP frame (128 KiB on RabbitMQ): several body frames.
        topic = self.new_topic()
        await self.serve(topic)
        client = await self.make_transport()
        value = {"data": "é☁x" * 120000, "list": list(range(20000))}
        self.assertEqual(await client.call(topic, "echo", {"value": value}), value)

    async def test_arguments_travel_as_json(self) -> None:
        topic = self.new_topic()
        await self.serve(topic)
        client = await self.make_transport()
        result = await client.call(topic, "echo", {"value": {"t": (1, 2), 3: "x"}})
        self.assertEqual(result, {"t": [1, 2], "3": "x"})

    async def test_non_json_arguments_refused(self) -> None:
        topic = self.new_topic()
        await self.serve(topic)
        client = await self.make_transport()
        with self.assertRaises(MessageEncodingError):
            await client.call(topic, "echo", {"value": object()})
        with self.assertRaises(MessageEncodingError):
            await client.cast(topic, "echo", {"value": {1, 2}})

    async def test_call_async_method(self) -> None:
        topic = self.new_topic()
        _, manager, _ = await self.serve(topic)
        client = await self.make_transport()
        result = client.call(topic, "wait_gate", {"value": 40})
        await manager.when_gated()
        self.assertNoResult(result)
        manager.open_gates(2)
        self.assertEqual(await result, 42)

    async def test_cast_delivered(self) -> None:
        topic = self.new_topic()
        _, manager, _ = await self.serve(topic)
        client = await self.make_transport()
        self.assertIsNone(await client.cast(topic, "record", {"value": "hello"}))
        await manager.when_seen(1)
        self.assertEqual(manager.seen, ["hello"])

    async def test_remote_nova_error(self) -> None:
        topic = self.new_topic()
        await self.serve(topic)
        client = await self.make_transport()
        with self.assertRaises(RemoteError) as caught:
            await client.call(topic, "fail_nova", {"message": "no instance i-9"})
        error = caught.exception
        self.assertEqual((error.remote_type, error.message, error.code, error.status),
                         ("NotFound", "no instance i-9", "NotFound", 400))

    async def test_remote_unexpected_error(self) -> None:
        topic = self.new_topic()
        await self.serve(topic)
        client = await self.make_transport()
        with self.assertRaises(RemoteError) as caught:
            await client.call(topic, "fail_bug", {})
        error = caught.exception
        self.assertEqual((error.remote_type, error.message, error.code, error.status),
                         ("ValueError", "boom", "InternalError", 500))
        # logged with its traceback on the server side
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    async def test_unknown_method_refused(self) -> None:
        topic = self.new_topic()
        await self.serve(topic)
        client = await self.make_transport()
        for name in ("no_such_method", "helper", "__init__", "_notify", "seen"):
            with self.assertRaises(RemoteError) as caught:
                await client.call(topic, name, {})
            self.assertEqual((caught.exception.remote_type, caught.exception.code),
                             ("UnknownMethod", "InvalidAction"), name)

    async def test_wrong_arguments_refused(self) -> None:
        topic = self.new_topic()
        await self.serve(topic)
        client = await self.make_transport()
        for args in ({}, {"valu": 1}, {"value": 1, "extra": 2}):
            with self.assertRaises(RemoteError) as caught:
                await client.call(topic, "echo", args)
            self.assertEqual(caught.exception.remote_type, "InvalidArguments")
            self.assertEqual(caught.exception.code, "InvalidParameterValue")

    async def test_topic_and_host_topic(self) -> None:
        topic = self.new_topic()
        for host in ("host1", "host2"):
            transport = await self.make_transport()
            manager = Recorder(host)
            await self.serve(topic, manager, transport)
            await self.serve(self.host_topic(topic, host), manager, transport)
        client = await self.make_transport()
        for _ in range(3):
            self.assertEqual(await client.call(f"{topic}.host1", "whoami", {}), "host1")
            self.assertEqual(await client.call(f"{topic}.host2", "whoami", {}), "host2")
        self.assertIn(await client.call(topic, "whoami", {}), ("host1", "host2"))

    async def test_consumers_share_a_topic(self) -> None:
        topic = self.new_topic()
        _, first, _ = await self.serve(topic, Recorder("a"))
        _, second, _ = await self.serve(topic, Recorder("b"))
        client = await self.make_transport()
        names = await defer.gatherResults(
            [client.call(topic, "whoami", {}) for _ in range(20)])
        self.assertEqual(len(first.seen) + len(second.seen), 20)
        self.assertEqual(sorted(set(names)), ["a", "b"])
        self.assertGreater(len(first.seen), 0)
        self.assertGreater(len(second.seen), 0)

    async def test_timeout_when_nobody_consumes(self) -> None:
        client = await self.make_transport()
        with self.assertRaises(RPCTimeout) as caught:
            await client.call(self.new_topic(), "echo", {"value": 1}, timeout=0.5)
        self.assertEqual(caught.exception.code, "RequestTimeout")

    async def test_late_reply_dropped(self) -> None:
        topic = self.new_topic()
        _, manager, _ = await self.serve(topic)
        client = await self.make_transport()
        calling = client.call(topic, "wait_gate", {"value": 1}, timeout=0.3)
        # the request is at the gate (however long it took to get there), so
        # opening the gate below surely makes a reply that comes too late
        await manager.when_gated()
        with self.assertRaises(RPCTimeout):
            await calling
        manager.open_gates(1)
        # The late reply travels before this one on the same path: once this
        # call is answered, the late one has been received and dropped.
        self.assertEqual(await client.call(topic, "echo", {"value": "after"}), "after")

    async def test_context_round_trips(self) -> None:
        topic = self.new_topic()
        await self.serve(topic)
        client = await self.make_transport()
        context = RequestContext(user_id="alice", project_id="proj", is_admin=False,
                                 roles=("sysadmin", "netadmin"))
        self.assertEqual(await client.call(topic, "show_context", {}, context), context.to_dict())

    async def test_no_context_is_anonymous(self) -> None:
        topic = self.new_topic()
        await self.serve(topic)
        client = await self.make_transport()
        seen = await client.call(topic, "show_context", {})
        self.assertEqual((seen["user_id"], seen["project_id"], seen["is_admin"], seen["roles"]),
                         (None, None, False, []))

    async def test_consumer_stop_stops_delivery(self) -> None:
        topic = self.new_topic()
        transport, stopped, consumer = await self.serve(topic, Recorder("stopped"))
        await consumer.stop()
        await consumer.stop()  # again: nothing
        _, live, _ = await self.serve(topic, Recorder("live"), transport)
        client = await self.make_transport()
        for n in range(5):
            await client.cast(topic, "record", {"value": n})
        await live.when_seen(5)
        self.assertEqual(live.seen, [0, 1, 2, 3, 4])
        self.assertEqual(stopped.seen, [])

    async def test_stop_fails_pending_calls(self) -> None:
        topic = self.new_topic()
        _, manager, _ = await self.serve(topic)
        client = await self.make_transport()
        result = client.call(topic, "wait_gate", {"value": 1})
        await manager.when_gated()
        await client.stop()
        with self.assertRaises(TransportStopped):
            await result

    async def test_not_started(self) -> None:
        client = await self.make_transport(started=False)
        with self.assertRaises(NotConnected):
            await client.call(self.new_topic(), "echo", {"value": 1})
        with self.assertRaises(NotConnected):
            await client.cast(self.new_topic(), "echo", {"value": 1})
        with self.assertRaises(NotConnected):
            await client.consume(self.new_topic(), Dispatcher(Recorder()))

    async def test_start_is_idempotent(self) -> None:
        client = await self.make_transport(started=False)
        await defer.gatherResults([client.start(), client.start()])
        await client.start()
        await client.when_connected()
        topic = self.new_topic()
        await self.serve(topic)
        self.assertEqual(await client.call(topic, "echo", {"value": 1}), 1)

    async def test_invalid_topic(self) -> None:
        client = await self.make_transport()
        for topic in ("", "a*b", "compute.#", "amq.gen", "has space", "x" * 300):
            with self.assertRaises(InvalidTopic):
                await client.call(topic, "echo", {"value": 1})
            with self.assertRaises(InvalidTopic):
                await client.consume(topic, Dispatcher(Recorder()))


class LocalContractTests(RPCContractTests, unittest.TestCase):
    """The contract on the in-process broker, driven by the real reactor."""

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.topics: list[str] = []
        self.broker = LocalBroker(reactor)

    async def make_transport(self, started: bool = True) -> Any:
        transport = self.broker.connect()
        self.addCleanup(transport.stop)
        if started:
            await transport.start()
        return transport


class AMQPContractTests(RPCContractTests, unittest.TestCase):
    """The contract on RabbitMQ."""

    async def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        self.topics = []
        self.config = amqp_config(unique("nova-test"))
        # One transport to delete the test's queues and exchange at the end;
        # its clean-up runs after those of the transports made later.
        admin = AMQPTransport(reactor, self.config)
        try:
            await admin.start()
        except BrokerUnavailable as e:
            self.fail(RABBIT_HINT.format(port=self.config.amqp_port, error=e))
        self.addCleanup(admin.stop)
        self.addCleanup(self._delete, admin)

    async def _delete(self, admin: AMQPTransport) -> None:
        for topic in self.topics:
            await admin.delete_topic(topic)
        await admin.delete_exchange()

    async def make_transport(self, started: bool = True) -> Any:
        transport = AMQPTransport(self.reactor, self.config)
        self.addCleanup(transport.stop)
        if started:
            await transport.start()
        return transport
