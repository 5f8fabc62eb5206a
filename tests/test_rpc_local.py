"""
Unit tests of the in-process broker, on a L{task.Clock}: later-turn delivery,
timeouts, queues without consumers, round-robin, malformed messages.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import task
from twisted.trial import unittest

from nova.config import RpcConfig
from nova.context import RequestContext
from nova.exception import RemoteError, RPCTimeout
from nova.rpc.dispatcher import Dispatcher, expose
from nova.rpc.errors import MessageEncodingError, NotConnected, TransportStopped
from nova.rpc.local import LocalBroker, LocalTransport
from tests.test_rpc_contract import Recorder


class Odd:
    @expose
    def unencodable(self, context: RequestContext) -> Any:
        return {"set": {1, 2}}


class LocalBrokerTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.broker = LocalBroker(self.clock, RpcConfig(call_timeout=30.0))
        self.successResultOf(self.broker.start())
        self.manager = Recorder("server")
        self.consumer = self.successResultOf(
            self.broker.consume("compute", Dispatcher(self.manager)))

    def tearDown(self) -> None:
        self.successResultOf(self.broker.stop())
        self.manager.open_gates()

    def test_call_is_delivered_on_a_later_turn(self) -> None:
        d = self.broker.call("compute", "whoami", {})
        self.assertEqual(self.manager.seen, [])
        self.assertNoResult(d)
        self.clock.advance(0)
        self.assertEqual(self.manager.seen, ["server"])
        self.assertEqual(self.successResultOf(d), "server")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_cast_is_delivered_on_a_later_turn(self) -> None:
        self.assertIsNone(self.successResultOf(self.broker.cast("compute", "record",
                                                                {"value": 1})))
        self.assertEqual(self.manager.seen, [])
        self.clock.advance(0)
        self.assertEqual(self.manager.seen, [1])

    def test_default_timeout_from_config(self) -> None:
        d = self.broker.call("nobody", "echo", {"value": 1})
        self.clock.advance(29.9)
        self.assertNoResult(d)
        self.clock.advance(0.1)
        self.assertIn("nobody.echo", self.failureResultOf(d, RPCTimeout).value.message)

    def test_explicit_timeout_and_late_reply(self) -> None:
        d = self.broker.call("compute", "wait_gate", {"value": 1}, timeout=5)
        self.clock.advance(0)
        self.assertEqual(len(self.manager.gates), 1)
        self.clock.advance(5)
        self.failureResultOf(d, RPCTimeout)
        self.manager.open_gates(1)
        self.clock.advance(0)  # the late reply arrives and is dropped
        self.assertEqual(len(self.broker._default.pending), 0)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_remote_failure(self) -> None:
        d = self.broker.call("compute", "fail_nova", {"message": "gone"})
        self.clock.advance(0)
        error = self.failureResultOf(d, RemoteError).value
        self.assertEqual((error.remote_type, error.code), ("NotFound", "NotFound"))

    def test_arguments_are_json_round_tripped(self) -> None:
        d = self.broker.call("compute", "echo", {"value": (1, {2: "two"})})
        self.clock.advance(0)
        self.assertEqual(self.successResultOf(d), [1, {"2": "two"}])
        self.failureResultOf(self.broker.call("compute", "echo", {"value": object()}),
                             MessageEncodingError)

    def test_unencodable_result_is_a_failure(self) -> None:
        self.successResultOf(self.broker.consume("odd", Dispatcher(Odd())))
        d = self.broker.call("odd", "unencodable", {})
        self.clock.advance(0)
        self.assertEqual(self.failureResultOf(d, RemoteError).value.remote_type,
                         "MessageEncodingError")

    def test_unroutable_message_dropped(self) -> None:
        self.successResultOf(self.broker.cast("nobody", "record", {"value": 1}))
        self.assertEqual(self.broker.queued("nobody"), 0)
        self.clock.advance(0)
        self.assertEqual(self.manager.seen, [])

    def test_messages_wait_for_a_consumer(self) -> None:
        self.successResultOf(self.consumer.stop())
        for n in range(3):
            self.broker.cast("compute", "record", {"value": n})
        self.clock.advance(0)
        self.assertEqual((self.broker.queued("compute"), self.manager.seen), (3, []))
        later = Recorder("later")
        self.successResultOf(self.broker.consume("compute", Dispatcher(later)))
        self.assertEqual(later.seen, [])  # not inside consume()
        self.clock.advance(0)
        self.assertEqual(later.seen, [0, 1, 2])
        self.assertEqual(self.manager.seen, [])

    def test_round_robin(self) -> None:
        other = Recorder("other")
        self.successResultOf(self.broker.consume("compute", Dispatcher(other)))
        calls = [self.broker.call("compute", "whoami", {}) for _ in range(4)]
        self.clock.advance(0)
        self.assertEqual([self.successResultOf(d) for d in calls],
                         ["server", "other", "server", "other"])

    def test_delete_topic(self) -> None:
        self.successResultOf(self.consumer.stop())
        self.broker.cast("compute", "record", {"value": 1})
        self.broker.delete_topic("compute")
        self.assertEqual(self.broker.queued("compute"), 0)
        self.clock.advance(0)
        self.assertEqual(self.manager.seen, [])

    def test_malformed_request_with_reply_to_is_answered(self) -> None:
        transport = self.broker._default
        d = transport.pending.add("m.1", "compute.echo", 10)
        self.broker.publish("compute", json.dumps({
            "msg_id": "m.1", "reply_to": transport.reply_queue, "method": 42}).encode())
        self.clock.advance(0)
        self.assertEqual(self.failureResultOf(d, RemoteError).value.remote_type,
                         "MalformedMessage")

    def test_junk_dropped(self) -> None:
        self.broker.publish("compute", b"\x00junk")
        self.broker.publish("compute", b'{"method": "record", "args": {"value": "ok"}}')
        self.clock.advance(0)
        self.assertEqual(self.manager.seen, ["ok"])


class LocalTransportTests(unittest.TestCase):
    """Several endpoints ("processes") on one broker."""

    def setUp(self) -> None:
        self.clock = task.Clock()
        self.broker = LocalBroker(self.clock)

    def endpoint(self) -> LocalTransport:
        transport = self.broker.connect()
        self.successResultOf(transport.start())
        return transport

    def test_endpoints_talk(self) -> None:
        server, client = self.endpoint(), self.endpoint()
        self.successResultOf(server.consume("scheduler", Dispatcher(Recorder("s"))))
        d = client.call("scheduler", "whoami", {})
        self.clock.advance(0)
        self.assertEqual(self.successResultOf(d), "s")

    def test_stopped_endpoint_fails_its_calls_and_stops_consuming(self) -> None:
        server, client = self.endpoint(), self.endpoint()
        manager = Recorder("s")
        self.successResultOf(server.consume("scheduler", Dispatcher(manager)))
        pending = client.call("scheduler", "wait_gate", {"value": 1})
        self.clock.advance(0)
        self.successResultOf(client.stop())
        self.failureResultOf(pending, TransportStopped)
        manager.open_gates(1)
        self.clock.advance(0)  # the reply finds no reply queue: dropped
        self.successResultOf(server.stop())
        self.successResultOf(self.endpoint().cast("scheduler", "record", {"value": 1}))
        self.clock.advance(0)
        self.assertEqual((manager.seen, self.broker.queued("scheduler")), ([], 1))
        self.failureResultOf(client.call("scheduler", "whoami", {}), NotConnected)

    def test_when_connected_waits_for_start(self) -> None:
        transport = self.broker.connect()
        d = transport.when_connected()
        self.assertNoResult(d)
        transport.start()
        self.successResultOf(d)
        self.successResultOf(transport.when_connected())


class MakeTransportTests(unittest.TestCase):
    def test_kind_follows_config(self) -> None:
        from nova.rpc import make_transport
        from nova.rpc.amqp import AMQPTransport

        clock = task.Clock()
        self.assertIsInstance(make_transport(clock, RpcConfig()), LocalBroker)
        amqp = make_transport(clock, RpcConfig(transport="amqp", exchange="nova"))
        self.assertIsInstance(amqp, AMQPTransport)
        self.assertFalse(amqp.connected)
        self.assertEqual(clock.getDelayedCalls(), [])
