"""
The txamqp protocol as nova uses it: the AMQP 0-9-1 spec shipped in this
package, and a client with a fast path for the frames RPC traffic is made of.

txamqp handles every frame through C{inlineCallbacks}, a lock and a queue,
and restarts its heartbeat timers on every frame; that costs more than the
rest of a call. L{NovaAMQClient} therefore parses incoming frames itself,
assembles C{basic.deliver} messages synchronously and hands them to
C{on_deliver}, and encodes C{basic.publish} and C{basic.ack} directly. Every
other frame (connection set-up, declarations, closes) goes through txamqp as
usual. Heartbeats are sent every interval and checked lazily.
"""

from __future__ import annotations

import importlib.resources
import struct
from typing import Any, Callable

import attr
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from txamqp import spec as txspec
from txamqp.client import TwistedDelegate
from txamqp.protocol import AMQChannel, AMQClient

#: the AMQP 0-9-1 spec (with RabbitMQ's extensions), shipped as package data
SPEC_RESOURCE = "amqp0-9-1.xml"

_FRAME_HEADER = struct.Struct("!BHI")
_FRAME_END = 0xCE
_METHOD, _HEADER, _BODY, _HEARTBEAT = 1, 2, 3, 8
_BASIC = 60
_DELIVER_ID = struct.pack("!HH", _BASIC, 60)
_PUBLISH_ID = struct.pack("!HHH", _BASIC, 40, 0)  # class, method, reserved-1
_ACK = struct.Struct("!HHQB")
# Content header of a publish: class, weight, body size, property flags
# (content-type and delivery-mode), then those two properties.
_CONTENT_HEADER = struct.Struct("!HHQH")
_PROPERTY_FLAGS = (1 << 15) | (1 << 12)
_PROPERTIES = bytes([16]) + b"application/json" + bytes([1])


def load_spec() -> Any:
    """
    @return: the txamqp spec object for AMQP 0-9-1, loaded from the XML file
        shipped in the C{nova.rpc} package (the txamqp sdist has none).
    """
    data = importlib.resources.files("nova.rpc").joinpath(SPEC_RESOURCE).read_bytes()
    return txspec.load_string(data, specfilename=SPEC_RESOURCE)


@attr.s(slots=True, auto_attribs=True)
class Delivery:
    """A message the broker delivered to one of our consumers."""

    consumer_tag: str
    delivery_tag: int
    redelivered: bool
    body: bytes = b""
    size: int = -1
    parts: list[bytes] = attr.Factory(list)
    received: int = 0


def _frame(kind: int, channel: int, payload: bytes) -> bytes:
    return _FRAME_HEADER.pack(kind, channel, len(payload)) + payload + b"\xce"


def _shortstr(value: str) -> bytes:
    data = value.encode("utf-8")
    if len(data) > 255:
        raise ValueError(f"AMQP short string too long: {value[:40]!r}...")
    return bytes([len(data)]) + data


def _table(fields: dict[str, Any]) -> bytes:
    """Encode an AMQP field table of strings, booleans and tables."""
    out = []
    for key, value in fields.items():
        out.append(_shortstr(key))
        if isinstance(value, bool):
            out.append(b"t" + bytes([value]))
        elif isinstance(value, dict):
            out.append(b"F" + _table(value))
        else:
            data = str(value).encode("utf-8")
            out.append(b"S" + struct.pack("!I", len(data)) + data)
    content = b"".join(out)
    return struct.pack("!I", len(content)) + content


#: announced at login; authentication_failure_close makes RabbitMQ say why it
#: refuses a login (at once) instead of closing the socket after a delay
CLIENT_PROPERTIES = {
    "product": "nova",
    "information": "nova RPC (txamqp)",
    "capabilities": {"authentication_failure_close": True},
}


class NovaDelegate(TwistedDelegate):
    """Logs in with client properties; notes how far the login got."""

    def connection_start(self, ch: AMQChannel, msg: Any) -> None:
        # txamqp's start-ok cannot encode nested tables or booleans: write it here.
        client = self.client
        client.phase = "login"
        response = client.response
        response = response.encode("utf-8") if isinstance(response, str) else response
        payload = (struct.pack("!HH", 10, 11) + _table(CLIENT_PROPERTIES)
                   + _shortstr(client.mechanism) + struct.pack("!I", len(response)) + response
                   + _shortstr(client.locale))
        client.transport.write(_frame(_METHOD, ch.id, payload))

    def connection_tune(self, ch: AMQChannel, msg: Any) -> None:
        self.client.phase = "open"
        super().connection_tune(ch, msg)

    def basic_deliver(self, ch: AMQChannel, msg: Any) -> None:
        body = msg.content.body
        self.client.on_deliver(ch, Delivery(
            msg.consumer_tag, msg.delivery_tag, bool(msg.redelivered),
            body.encode("utf-8") if isinstance(body, str) else body))


class NovaAMQClient(AMQClient):
    """
    An AMQP client connection for nova's RPC.

    @ivar on_deliver: called with C{(channel, Delivery)} for every C{basic.deliver}.
    @ivar on_channel_failed: called with C{(channel, failure)} when the broker
        closes a channel.
    @ivar phase: C{connecting}, C{login} (credentials sent) or C{open}
        (logged in): a broker that refuses a login just closes the socket
        (RabbitMQ, for clients not announcing C{authentication_failure_close}).
    """

    log = Logger()
    phase = "connecting"

    def __init__(self, spec: Any, vhost: str, heartbeat: int, clock: IReactorTime,
                 on_deliver: Callable[[AMQChannel, Delivery], None],
                 on_channel_failed: Callable[[AMQChannel, Failure], None]) -> None:
        self.on_deliver = on_deliver
        self.on_channel_failed = on_channel_failed
        self._buffer = b""
        self._assembling: dict[int, Delivery] = {}
        self._last_received = clock.seconds()
        super().__init__(NovaDelegate(), vhost, spec, heartbeat=heartbeat, clock=clock)

    def channel_failed(self, channel: AMQChannel, reason: Failure) -> None:
        self.on_channel_failed(channel, reason)

    def abandon(self) -> None:
        """
        Cancel the heartbeat check that txamqp schedules at construction: a
        protocol that never got connected never gets C{connectionLost} to do it.
        """
        check = getattr(self, "checkHB", None)
        if check is not None and check.active():
            check.cancel()

    # Heartbeats: one frame every interval, and a check that re-arms itself
    # from the time of the last frame received, instead of restarting timers
    # on every frame.

    def reschedule_send_heartbeat(self) -> None:
        if self.heartbeatInterval > 0 and not self.sendHB.running:
            self.sendHB.start(self.heartbeatInterval, now=False)

    def reschedule_check_heartbeat(self) -> None:
        self._last_received = self.clock.seconds()

    def check_heartbeat(self) -> None:
        limit = self.heartbeatInterval * self.MAX_UNSEEN_HEARTBEAT
        silent = self.clock.seconds() - self._last_received
        if silent < limit and not self.closed:
            self.checkHB = self.clock.callLater(limit - silent, self.check_heartbeat)
            return
        self.log.warn("no frame from the AMQP broker for {silent:.1f}s: dropping the connection",
                      silent=silent)
        super().check_heartbeat()

    # Incoming frames.

    def dataReceived(self, data: bytes) -> None:
        self._last_received = self.clock.seconds()
        buffer = self._buffer + data if self._buffer else data
        offset, available = 0, len(buffer)
        limit = max(self.MAX_LENGTH, 131072) + 8
        while available - offset >= 8:
            kind, channel, size = _FRAME_HEADER.unpack_from(buffer, offset)
            end = offset + 7 + size
            if size > limit or (end < available and buffer[end] != _FRAME_END):
                self.log.error("garbage from the AMQP broker: dropping the connection")
                self._buffer = b""
                self.transport.abortConnection()
                return
            if end >= available:
                break
            start, offset = offset, end + 1
            self._frame(kind, channel, buffer, start, end)
            if self.closed or self.transport is None or self.transport.disconnecting:
                break
        self._buffer = buffer[offset:]

    def _frame(self, kind: int, channel: int, buffer: bytes, start: int, end: int) -> None:
        """Handle the frame C{buffer[start:end + 1]}; C{end} is its frame-end octet."""
        if kind == _HEARTBEAT:
            return
        delivery = self._assembling.get(channel)
        payload_at = start + 7
        if delivery is not None:
            if kind == _HEADER and delivery.size < 0:
                delivery.size = struct.unpack_from("!Q", buffer, payload_at + 4)[0]
            elif kind == _BODY and delivery.size >= 0:
                delivery.parts.append(buffer[payload_at:end])
                delivery.received += end - payload_at
            else:
                self.log.error("unexpected AMQP frame inside a delivery: dropping the connection")
                self.transport.abortConnection()
                return
            if delivery.received >= delivery.size >= 0:
                del self._assembling[channel]
                delivery.body = b"".join(delivery.parts)
                delivery.parts = []
                self.on_deliver(self.channels[channel], delivery)
            return
        if kind == _METHOD and buffer[payload_at:payload_at + 4] == _DELIVER_ID \
                and channel in self.channels:
            at = payload_at + 4
            length = buffer[at]
            consumer_tag = buffer[at + 1:at + 1 + length].decode("utf-8")
            at += 1 + length
            delivery_tag = struct.unpack_from("!Q", buffer, at)[0]
            self._assembling[channel] = Delivery(consumer_tag, delivery_tag,
                                                 bool(buffer[at + 8] & 1))
            return
        self.frame_received(self._unpack_frame(buffer[start:end + 1]))

    # Outgoing frames.

    def publish(self, channel: int, exchange: str, routing_key: str, body: bytes) -> None:
        """Write a C{basic.publish} of a JSON C{body} (non-persistent) in one go."""
        frames = [
            _frame(_METHOD, channel,
                   _PUBLISH_ID + _shortstr(exchange) + _shortstr(routing_key) + b"\x00"),
            _frame(_HEADER, channel,
                   _CONTENT_HEADER.pack(_BASIC, 0, len(body), _PROPERTY_FLAGS) + _PROPERTIES),
        ]
        chunk = self.MAX_LENGTH - 8
        for at in range(0, len(body), chunk):
            frames.append(_frame(_BODY, channel, body[at:at + chunk]))
        self.transport.write(b"".join(frames))

    def ack(self, channel: int, delivery_tag: int) -> None:
        """Write a C{basic.ack} of one delivery."""
        self.transport.write(_frame(_METHOD, channel, _ACK.pack(_BASIC, 80, delivery_tag, 0)))
