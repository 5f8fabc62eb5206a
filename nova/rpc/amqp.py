"""
The RPC transport over AMQP 0-9-1 (RabbitMQ), with txamqp.

Layout on the broker:

  - one topic exchange, C{config.exchange} (not durable, as in 2010 nova);
  - per consumed topic, a queue named after the topic, bound with the topic as
    routing key (exact match: topics contain no wildcards). The queue outlives
    its consumers, so messages wait while a service restarts; several
    consumers of one queue share its messages round-robin;
  - per transport (per process), one exclusive, auto-delete reply queue
    C{reply.<uuid>}; replies go through the default exchange to it.

Delivery is at least once: a request is acknowledged after its handler has
finished, so at most C{prefetch} requests per consumer run at once, and a
request whose handler was running when the connection dropped (or when the
transport stopped) is delivered again to a consumer of its topic.

C{cast} fires once the message is written to the connection (no publisher
confirms): a broker that dies at that moment can lose it.

Connection loss: the transport reconnects by itself, with exponential backoff
(C{reactor.callLater}), re-declaring the exchange, the reply queue and every
consumer (L{nova.rpc.amqp_connection}). Calls pending on the lost connection
fail at once with L{ConnectionLost} (their reply queue died with it). While
disconnected, C{call}, C{cast} and C{consume} fail at once with
L{NotConnected}: nothing is queued in the process, so a caller never waits on a
broker that may not come back. L{AMQPTransport.when_connected} and
L{AMQPTransport.when_disconnected} tell when the state changes.

The first connection is different: if C{start()} cannot connect, its Deferred
fails with L{BrokerUnavailable} and nothing is retried (service start-up
reports it).
"""

from __future__ import annotations

import uuid
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from txamqp.protocol import AMQChannel
from zope.interface import implementer

from nova.config import RpcConfig
from nova.context import RequestContext
from nova.rpc.amqp_connection import AMQPConnector, describe
from nova.rpc.amqp_protocol import Delivery
from nova.rpc.envelope import check_topic, request_body
from nova.rpc.errors import (
    BrokerUnavailable,
    ConnectionLost,
    MalformedMessage,
    NotConnected,
    TransportStopped,
)
from nova.rpc.interfaces import IConsumer, IDispatcher, IRPCTransport
from nova.rpc.pending import PendingCalls
from nova.rpc.serving import handle_request


@implementer(IConsumer)
class AMQPConsumer:
    """A dispatcher consuming one topic's queue through an L{AMQPTransport}."""

    def __init__(self, transport: "AMQPTransport", topic: str, dispatcher: IDispatcher) -> None:
        self.transport = transport
        self.topic = topic
        self.dispatcher = dispatcher
        self.tag = f"nova.{uuid.uuid4().hex}"
        self.active = True

    def stop(self) -> defer.Deferred[None]:
        """See L{IConsumer.stop}."""
        return defer.Deferred.fromCoroutine(self.transport._stop_consumer(self))


@implementer(IRPCTransport)
class AMQPTransport:
    """
    An L{IRPCTransport} on an AMQP 0-9-1 broker.

    @ivar pending: the calls waiting for replies.
    @ivar reply_queue: the name of this transport's reply queue.
    """

    log = Logger()

    def __init__(self, reactor: Any, config: RpcConfig, *, heartbeat: int = 10,
                 prefetch: int = 64, connect_timeout: float = 10.0,
                 retry_delay: float = 0.2, max_retry_delay: float = 15.0) -> None:
        """
        @param reactor: provides C{IReactorTCP} and C{IReactorTime}.
        @param config: the C{[rpc]} settings (broker address, credentials,
            vhost, exchange, call timeout).
        @param heartbeat: AMQP heartbeat in seconds (0: none); a connection
            silent for three heartbeats is dropped and reconnected.
        @param prefetch: requests in flight per consumer (C{basic.qos}).
        @param connect_timeout: seconds one connection attempt may take.
        @param retry_delay: first delay before reconnecting, doubled on every
            failed attempt up to C{max_retry_delay}.
        @raise nova.rpc.errors.InvalidTopic: the exchange name is not valid.
        """
        check_topic(config.exchange)
        self.reactor = reactor
        self.config = config
        self.pending = PendingCalls(reactor)
        self.reply_queue = f"reply.{uuid.uuid4().hex}"
        self._reply_tag = f"nova.reply.{uuid.uuid4().hex}"
        self._consumers: dict[str, AMQPConsumer] = {}
        #: consumer tags cancelled on a channel after an unexpected delivery
        self._cancelled: set[tuple[int, str]] = set()
        self._connector = AMQPConnector(
            reactor, config, setup=self._setup, on_deliver=self._on_deliver,
            on_lost=self._on_lost, heartbeat=heartbeat, prefetch=prefetch,
            connect_timeout=connect_timeout, retry_delay=retry_delay,
            max_retry_delay=max_retry_delay)

    @property
    def connected(self) -> bool:
        """Whether the transport has a usable connection now."""
        return self._connector.connected

    def __repr__(self) -> str:
        return (f"<AMQPTransport {self._connector.where} exchange={self.config.exchange!r}"
                f" {self._connector.state}>")

    # Lifecycle.

    def start(self) -> defer.Deferred[None]:
        """See L{IRPCTransport.start}."""
        return self._connector.start()

    def stop(self) -> defer.Deferred[None]:
        """See L{IRPCTransport.stop}."""
        for consumer in self._consumers.values():
            consumer.active = False
        self._consumers.clear()
        self.pending.fail_all(TransportStopped("RPC transport stopped while the call was pending"))
        return self._connector.stop()

    def when_connected(self) -> defer.Deferred[None]:
        """See L{IRPCTransport.when_connected}."""
        return self._connector.when_connected()

    def when_disconnected(self) -> defer.Deferred[None]:
        """
        @return: a Deferred firing with C{None} when the current connection is
            lost (at once if there is none).
        """
        return self._connector.when_disconnected()

    async def _setup(self, channel: AMQChannel) -> None:
        """Declare everything on a new connection's channel."""
        await channel.exchange_declare(exchange=self.config.exchange, type="topic")
        await channel.queue_declare(queue=self.reply_queue, exclusive=True, auto_delete=True)
        await channel.basic_consume(queue=self.reply_queue, consumer_tag=self._reply_tag,
                                    no_ack=True)
        for consumer in list(self._consumers.values()):
            await self._declare(channel, consumer)

    async def _declare(self, channel: AMQChannel, consumer: AMQPConsumer) -> None:
        await channel.queue_declare(queue=consumer.topic)
        await channel.queue_bind(queue=consumer.topic, exchange=self.config.exchange,
                                 routing_key=consumer.topic)
        await channel.basic_consume(queue=consumer.topic, consumer_tag=consumer.tag)

    def _on_lost(self) -> None:
        self.pending.fail_all(ConnectionLost(
            "connection to the AMQP broker lost while the call was pending"))

    def _channel(self) -> AMQChannel:
        channel = self._connector.channel
        if channel is None or channel.closed:
            raise NotConnected("not connected to the AMQP broker")
        return channel

    # Sending.

    def _publish(self, exchange: str, routing_key: str, body: bytes) -> None:
        channel = self._channel()
        channel.client.publish(channel.id, exchange, routing_key, body)

    def _request(self, topic: str, method: str, args: dict[str, Any],
                 context: RequestContext | None, msg_id: str | None) -> bytes:
        return request_body(topic, method, args, context, msg_id, self.reply_queue)

    def call(self, topic: str, method: str, args: dict[str, Any],
             context: RequestContext | None = None,
             timeout: float | None = None) -> defer.Deferred[Any]:
        """See L{IRPCTransport.call}."""
        msg_id = self.pending.new_id()
        try:
            body = self._request(topic, method, args, context, msg_id)
            self._channel()
        except Exception as e:
            return defer.fail(e)
        d = self.pending.add(msg_id, f"{topic}.{method}",
                             self.config.call_timeout if timeout is None else timeout)
        try:
            self._publish(self.config.exchange, topic, body)
        except Exception as e:
            self.pending.fail(msg_id, e)
        return d

    def cast(self, topic: str, method: str, args: dict[str, Any],
             context: RequestContext | None = None) -> defer.Deferred[None]:
        """See L{IRPCTransport.cast}."""
        try:
            body = self._request(topic, method, args, context, None)
            self._publish(self.config.exchange, topic, body)
        except Exception as e:
            return defer.fail(e)
        return defer.succeed(None)

    def _send_reply(self, reply_to: str, body: bytes) -> None:
        try:
            self._publish("", reply_to, body)
        except ValueError as e:  # a reply_to no queue can be named
            raise MalformedMessage(f"cannot reply to {reply_to[:40]!r}: {e}") from None

    # Receiving.

    def consume(self, topic: str, dispatcher: IDispatcher) -> defer.Deferred[IConsumer]:
        """See L{IRPCTransport.consume}."""
        return defer.Deferred.fromCoroutine(self._consume(topic, dispatcher))

    async def _consume(self, topic: str, dispatcher: IDispatcher) -> IConsumer:
        check_topic(topic)
        channel = self._channel()
        consumer = AMQPConsumer(self, topic, dispatcher)
        # Registered before basic.consume so that no delivery finds it missing
        # and so that a reconnection meanwhile declares it too; withdrawn if
        # the declaration fails (a stray broker-side consumer is cancelled on
        # its first delivery, see _on_deliver).
        self._consumers[consumer.tag] = consumer
        try:
            await self._declare(channel, consumer)
        except Exception as e:
            self._consumers.pop(consumer.tag, None)
            if channel.closed:
                raise ConnectionLost(f"connection lost while consuming {topic}") from None
            raise BrokerUnavailable(f"cannot consume {topic}: {describe(e)}") from None
        return consumer

    async def _stop_consumer(self, consumer: AMQPConsumer) -> None:
        if not consumer.active:
            return
        consumer.active = False
        self._consumers.pop(consumer.tag, None)
        channel = self._connector.channel
        if channel is not None and not channel.closed:
            # deliveries racing the cancel are requeued by _on_deliver, without
            # a second basic.cancel
            self._cancelled.add((id(channel), consumer.tag))
            try:
                await channel.basic_cancel(consumer_tag=consumer.tag)
            except Exception as e:  # connection gone: nothing left to cancel
                self.log.debug("basic.cancel {tag}: {error}", tag=consumer.tag, error=e)

    def _on_deliver(self, channel: AMQChannel, msg: Delivery) -> None:
        tag = msg.consumer_tag
        if tag == self._reply_tag:
            self.pending.reply_received(msg.body)
            return
        consumer = self._consumers.get(tag)
        if consumer is None or not consumer.active:
            # Its consumer was stopped (or its consume() failed while the
            # connection changed): give the message back for another consumer,
            # and make sure the broker stops sending to that tag.
            channel.basic_reject(delivery_tag=msg.delivery_tag, requeue=True).addErrback(_ignore)
            if (id(channel), tag) not in self._cancelled:
                self._cancelled.add((id(channel), tag))
                channel.basic_cancel(consumer_tag=tag).addErrback(_ignore)
            return
        handle_request(msg.body, consumer.topic, consumer.dispatcher, self._send_reply).addBoth(
            self._ack, channel, msg.delivery_tag)

    def _ack(self, result: object, channel: AMQChannel, delivery_tag: int) -> None:
        if isinstance(result, Failure):  # a bug: handle_request never fails
            self.log.failure("handling an RPC request", result)
        # A delivery tag is only valid on the channel that delivered it.
        if channel is self._connector.channel and not channel.closed:
            channel.client.ack(channel.id, delivery_tag)

    # Administration (tests, nova-manage).

    async def delete_topic(self, topic: str) -> None:
        """Delete C{topic}'s queue and the messages in it."""
        await self._channel().queue_delete(queue=check_topic(topic))

    async def delete_exchange(self) -> None:
        """Delete the configured exchange (its bindings go with it)."""
        await self._channel().exchange_delete(exchange=self.config.exchange)


def _ignore(failure: Failure) -> None:
    """Errback for acks, rejects and cancels on a channel that may be closing."""
