"""
Unit tests of nova's AMQP frame fast path (L{nova.rpc.amqp_protocol}),
cross-checked against txamqp's own spec-driven codec; no broker, no reactor.
"""

from __future__ import annotations

import struct
from typing import Any

from twisted.internet import task
from twisted.internet.testing import StringTransport
from twisted.trial import unittest
from txamqp.connection import Body, Frame, Header, Method
from txamqp.protocol import AMQChannel

from nova.rpc.amqp_protocol import CLIENT_PROPERTIES, Delivery, NovaAMQClient, load_spec


class FrameTests(unittest.TestCase):
    def setUp(self) -> None:
        self.spec = load_spec()
        self.clock = task.Clock()
        self.delivered: list[tuple[AMQChannel, Delivery]] = []
        self.failed: list[Any] = []
        self.client = NovaAMQClient(self.spec, "/", 0, self.clock,
                                    lambda ch, d: self.delivered.append((ch, d)),
                                    lambda ch, f: self.failed.append(f))
        self.transport = StringTransport()
        self.client.makeConnection(self.transport)
        self.transport.clear()  # the protocol header
        self.client.MAX_LENGTH = 4096
        self.channel = self.successResultOf(self.client.channel(1))

    def encode(self, frame: Frame) -> bytes:
        return self.client._pack_frame(frame)

    def decode_all(self, data: bytes) -> list[Frame]:
        frames = []
        while data:
            size = struct.unpack("!I", data[3:7])[0]
            frames.append(self.client._unpack_frame(data[:8 + size]))
            data = data[8 + size:]
        return frames

    def deliver_frames(self, tag: str, delivery_tag: int, redelivered: bool, body: bytes) -> bytes:
        basic = self.spec.classes.byname["basic"]
        deliver = basic.methods.byname["deliver"]
        frames = [Frame(1, Method(deliver, tag, delivery_tag, redelivered, "nova", "compute")),
                  Frame(1, Header(basic, 0, len(body), **{"content-type": "application/json"}))]
        for at in range(0, len(body), 1000):
            frames.append(Frame(1, Body(body[at:at + 1000])))
        return b"".join(self.encode(f) for f in frames)

    def test_delivery_assembled_from_any_split(self) -> None:
        body = ('{"x": "' + "é" * 1500 + '"}').encode()
        data = (self.deliver_frames("nova.abc", 7, True, body)
                + self.deliver_frames("nova.def", 8, False, b""))
        for size in (1, 3, 7, 100, len(data)):
            self.delivered.clear()
            for at in range(0, len(data), size):
                self.client.dataReceived(data[at:at + size])
            self.assertEqual([(ch.id, d.consumer_tag, d.delivery_tag, d.redelivered, d.body)
                              for ch, d in self.delivered],
                             [(1, "nova.abc", 7, True, body), (1, "nova.def", 8, False, b"")])
            self.assertEqual(self.client._buffer, b"")

    def test_publish_decodes_as_basic_publish(self) -> None:
        body = b'{"method": "m"}' * 600  # several body frames at MAX_LENGTH 4096
        self.client.publish(1, "nova", "compute.host1", body)
        frames = self.decode_all(self.transport.value())
        method, header, bodies = frames[0].payload, frames[1].payload, frames[2:]
        self.assertEqual((method.method.klass.name, method.method.name), ("basic", "publish"))
        self.assertEqual(method.args, (0, "nova", "compute.host1", False, False))
        self.assertEqual(header.size, len(body))
        self.assertEqual(header.properties, {"content-type": "application/json",
                                             "delivery-mode": 1})
        self.assertEqual(len(bodies), 3)
        self.assertTrue(all(len(f.payload.content) <= 4096 - 8 for f in bodies))
        self.assertEqual("".join(f.payload.content for f in bodies).encode(), body)

    def test_publish_refuses_long_names(self) -> None:
        self.assertRaises(ValueError, self.client.publish, 1, "x" * 256, "t", b"{}")

    def test_ack_decodes(self) -> None:
        self.client.ack(1, 2 ** 40)
        [frame] = self.decode_all(self.transport.value())
        self.assertEqual(frame.payload.method.name, "ack")
        self.assertEqual(frame.payload.args, (2 ** 40, False))

    def test_start_ok_carries_client_properties(self) -> None:
        self.client.response = "\0guest\0guest"
        self.client.mechanism = "PLAIN"
        self.client.locale = "en_US"
        connection = self.spec.classes.byname["connection"]
        start = connection.methods.byname["start"]
        channel0 = self.successResultOf(self.client.channel(0))
        self.client.dataReceived(self.encode(Frame(0, Method(
            start, 0, 9, {"product": "RabbitMQ"}, "PLAIN AMQPLAIN", "en_US"))))
        self.assertEqual(self.client.phase, "login")
        [frame] = self.decode_all(self.transport.value())
        self.assertEqual(frame.channel, channel0.id)
        self.assertEqual(frame.payload.method.name, "start-ok")
        properties, mechanism, response, locale = frame.payload.args
        self.assertEqual(properties, CLIENT_PROPERTIES)
        self.assertEqual((mechanism, response, locale), ("PLAIN", "\0guest\0guest", "en_US"))

    def test_garbage_drops_the_connection(self) -> None:
        self.client.dataReceived(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        self.assertTrue(self.transport.disconnecting or self.transport.disconnected)
        self.flushLoggedErrors()

    def test_heartbeat_frames_ignored(self) -> None:
        self.client.dataReceived(b"\x08\x00\x00\x00\x00\x00\x00\xce" * 3)
        self.assertEqual((self.delivered, self.client._buffer), ([], b""))


class HeartbeatTests(unittest.TestCase):
    def test_silence_drops_connection_and_traffic_keeps_it(self) -> None:
        clock = task.Clock()
        client = NovaAMQClient(load_spec(), "/", 2, clock, lambda *a: None, lambda *a: None)
        transport = StringTransport()
        client.makeConnection(transport)
        client.started.fire()
        for _ in range(10):  # traffic every 2 s: never silent for 6 s
            clock.advance(2)
            client.dataReceived(b"\x08\x00\x00\x00\x00\x00\x00\xce")
        self.assertFalse(transport.disconnecting)
        sent = transport.value()
        self.assertIn(b"\x08\x00\x00\x00\x00\x00\x00\xce", sent)  # we send ours too
        clock.advance(6)
        self.assertTrue(transport.disconnecting)
        client.connectionLost(None)
        self.assertEqual(clock.getDelayedCalls(), [])

