"""
The in-process message bus.

L{LocalBroker} plays RabbitMQ for one process: a queue per topic (made by the
first consumer, kept when consumers stop, so messages wait for the next one),
round-robin among a topic's consumers, one reply queue per transport, and
messages published to a topic nobody ever consumed are dropped, as a topic
exchange drops unroutable messages. Every message is JSON-encoded when sent and
decoded when received (so arguments JSON cannot carry fail as on AMQP) and is
delivered on a later reactor turn (C{reactor.callLater(0, ...)}), never inside
the sender's call. Timeouts use C{reactor.callLater} too, so unit tests drive
everything with L{twisted.internet.task.Clock}.

A broker is itself an L{IRPCTransport} (its default endpoint), which is all a
single process such as the all-in-one needs. To model several processes on one
bus, each with its own reply queue, consumers and lifetime, take more
endpoints with L{LocalBroker.connect}: stopping one of them is that process
going away.
"""

from __future__ import annotations

import collections
import uuid
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from nova.config import RpcConfig
from nova.context import RequestContext
from nova.rpc.envelope import check_topic, request_body
from nova.rpc.errors import NotConnected, TransportStopped
from nova.rpc.interfaces import IConsumer, IDispatcher, IRPCTransport
from nova.rpc.pending import PendingCalls
from nova.rpc.serving import handle_request


class _Queue:
    """The messages of one topic and the consumers that share them."""

    def __init__(self) -> None:
        self.messages: collections.deque[bytes] = collections.deque()
        self.consumers: list[LocalConsumer] = []
        self.next = 0
        self.pump_scheduled = False


@implementer(IRPCTransport)
class LocalBroker:
    """
    An in-process message bus, and the default transport onto it.

    @ivar reactor: schedules deliveries and timeouts.
    """

    log = Logger()

    def __init__(self, reactor: IReactorTime, config: RpcConfig | None = None) -> None:
        """
        @param reactor: an L{IReactorTime} (the reactor, or a C{Clock} in tests).
        @param config: the C{[rpc]} settings (only C{call_timeout} is used).
        """
        self.reactor = reactor
        self.config = config or RpcConfig()
        self._queues: dict[str, _Queue] = {}
        self._reply_queues: dict[str, LocalTransport] = {}
        self._default = LocalTransport(self)

    def connect(self) -> "LocalTransport":
        """
        @return: a new, unstarted endpoint on this bus: another "process" with
            its own reply queue, consumers and lifetime.
        """
        return LocalTransport(self)

    # IRPCTransport, through the default endpoint.

    def start(self) -> defer.Deferred[None]:
        """See L{IRPCTransport.start}."""
        return self._default.start()

    def stop(self) -> defer.Deferred[None]:
        """See L{IRPCTransport.stop}."""
        return self._default.stop()

    def when_connected(self) -> defer.Deferred[None]:
        """See L{IRPCTransport.when_connected}."""
        return self._default.when_connected()

    def call(self, topic: str, method: str, args: dict[str, Any],
             context: RequestContext | None = None,
             timeout: float | None = None) -> defer.Deferred[Any]:
        """See L{IRPCTransport.call}."""
        return self._default.call(topic, method, args, context, timeout)

    def cast(self, topic: str, method: str, args: dict[str, Any],
             context: RequestContext | None = None) -> defer.Deferred[None]:
        """See L{IRPCTransport.cast}."""
        return self._default.cast(topic, method, args, context)

    def consume(self, topic: str, dispatcher: IDispatcher) -> defer.Deferred[IConsumer]:
        """See L{IRPCTransport.consume}."""
        return self._default.consume(topic, dispatcher)

    # The broker proper.

    def queued(self, topic: str) -> int:
        """@return: how many messages wait in C{topic}'s queue (0 if it has none)."""
        queue = self._queues.get(topic)
        return len(queue.messages) if queue else 0

    def delete_topic(self, topic: str) -> None:
        """Delete C{topic}'s queue and the messages in it (its consumers stop receiving)."""
        queue = self._queues.pop(topic, None)
        if queue is not None:
            for consumer in queue.consumers:
                consumer.active = False

    def publish(self, topic: str, body: bytes) -> None:
        """Route C{body} to C{topic}'s queue; drop it if the topic has no queue."""
        queue = self._queues.get(topic)
        if queue is None:
            self.log.debug("no queue for topic {topic}: message dropped", topic=topic)
            return
        queue.messages.append(body)
        self._schedule(topic, queue)

    def publish_reply(self, reply_to: str, body: bytes) -> None:
        """Deliver C{body} to the transport owning reply queue C{reply_to}, on a later turn."""
        self.reactor.callLater(0, self._deliver_reply, reply_to, body)

    def _deliver_reply(self, reply_to: str, body: bytes) -> None:
        transport = self._reply_queues.get(reply_to)
        if transport is None:
            self.log.debug("reply queue {queue} is gone: reply dropped", queue=reply_to)
            return
        transport.pending.reply_received(body)

    def bind(self, consumer: "LocalConsumer") -> None:
        """Add C{consumer} to its topic's queue, making the queue if needed."""
        queue = self._queues.setdefault(consumer.topic, _Queue())
        queue.consumers.append(consumer)
        self._schedule(consumer.topic, queue)

    def unbind(self, consumer: "LocalConsumer") -> None:
        """Take C{consumer} off its topic's queue; the queue and its messages stay."""
        queue = self._queues.get(consumer.topic)
        if queue is not None and consumer in queue.consumers:
            queue.consumers.remove(consumer)

    def add_reply_queue(self, name: str, transport: "LocalTransport") -> None:
        """Route replies addressed to C{name} to C{transport}."""
        self._reply_queues[name] = transport

    def remove_reply_queue(self, name: str) -> None:
        """Drop the reply queue C{name} (later replies to it are dropped)."""
        self._reply_queues.pop(name, None)

    def _schedule(self, topic: str, queue: _Queue) -> None:
        if queue.messages and queue.consumers and not queue.pump_scheduled:
            queue.pump_scheduled = True
            self.reactor.callLater(0, self._pump, topic, queue)

    def _pump(self, topic: str, queue: _Queue) -> None:
        queue.pump_scheduled = False
        if self._queues.get(topic) is not queue:
            return  # deleted meanwhile
        while queue.messages and queue.consumers:
            index = queue.next % len(queue.consumers)
            queue.next = index + 1
            queue.consumers[index].deliver(queue.messages.popleft())


@implementer(IConsumer)
class LocalConsumer:
    """A dispatcher registered on a topic of a L{LocalBroker}."""

    def __init__(self, transport: "LocalTransport", topic: str, dispatcher: IDispatcher) -> None:
        self.transport = transport
        self.topic = topic
        self.dispatcher = dispatcher
        self.active = True

    def deliver(self, body: bytes) -> None:
        """Handle one request from the queue."""
        handle_request(body, self.topic, self.dispatcher, self.transport.send_reply)

    def stop(self) -> defer.Deferred[None]:
        """See L{IConsumer.stop}."""
        if self.active:
            self.active = False
            self.transport.broker.unbind(self)
            self.transport.consumers.discard(self)
        return defer.succeed(None)


@implementer(IRPCTransport)
class LocalTransport:
    """
    One process's endpoint on a L{LocalBroker}; an L{IRPCTransport}.

    @ivar pending: the calls waiting for replies.
    """

    def __init__(self, broker: LocalBroker) -> None:
        self.broker = broker
        self.pending = PendingCalls(broker.reactor)
        self.consumers: set[LocalConsumer] = set()
        self.reply_queue = f"reply.{uuid.uuid4().hex}"
        self._started = False
        self._waiting: list[defer.Deferred[None]] = []

    def start(self) -> defer.Deferred[None]:
        """See L{IRPCTransport.start}."""
        if not self._started:
            self._started = True
            self.broker.add_reply_queue(self.reply_queue, self)
            waiting, self._waiting = self._waiting, []
            for d in waiting:
                d.callback(None)
        return defer.succeed(None)

    def stop(self) -> defer.Deferred[None]:
        """See L{IRPCTransport.stop}."""
        if self._started:
            self._started = False
            for consumer in list(self.consumers):
                consumer.stop()
            self.broker.remove_reply_queue(self.reply_queue)
            self.pending.fail_all(TransportStopped("RPC transport stopped while the call was pending"))
        return defer.succeed(None)

    def when_connected(self) -> defer.Deferred[None]:
        """See L{IRPCTransport.when_connected}."""
        if self._started:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._waiting.append(d)
        return d

    def _request(self, topic: str, method: str, args: dict[str, Any],
                 context: RequestContext | None, msg_id: str | None) -> bytes:
        if not self._started:
            raise NotConnected("RPC transport is not started")
        return request_body(topic, method, args, context, msg_id, self.reply_queue)

    def call(self, topic: str, method: str, args: dict[str, Any],
             context: RequestContext | None = None,
             timeout: float | None = None) -> defer.Deferred[Any]:
        """See L{IRPCTransport.call}."""
        msg_id = self.pending.new_id()
        try:
            body = self._request(topic, method, args, context, msg_id)
        except Exception as e:
            return defer.fail(e)
        d = self.pending.add(msg_id, f"{topic}.{method}",
                             self.broker.config.call_timeout if timeout is None else timeout)
        self.broker.publish(topic, body)
        return d

    def cast(self, topic: str, method: str, args: dict[str, Any],
             context: RequestContext | None = None) -> defer.Deferred[None]:
        """See L{IRPCTransport.cast}."""
        try:
            body = self._request(topic, method, args, context, None)
        except Exception as e:
            return defer.fail(e)
        self.broker.publish(topic, body)
        return defer.succeed(None)

    def consume(self, topic: str, dispatcher: IDispatcher) -> defer.Deferred[IConsumer]:
        """See L{IRPCTransport.consume}."""
        if not self._started:
            return defer.fail(NotConnected("RPC transport is not started"))
        try:
            check_topic(topic)
        except Exception as e:
            return defer.fail(e)
        consumer = LocalConsumer(self, topic, dispatcher)
        self.consumers.add(consumer)
        self.broker.bind(consumer)
        return defer.succeed(consumer)

    def send_reply(self, reply_to: str, body: bytes) -> None:
        """Publish a reply (dropped when this transport is stopped, as on a closed connection)."""
        if self._started:
            self.broker.publish_reply(reply_to, body)

