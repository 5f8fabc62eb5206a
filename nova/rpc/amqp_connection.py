"""
One AMQP connection kept up: connecting, logging in, reconnecting with
backoff after a loss, and closing. The RPC transport (L{nova.rpc.amqp}) says
what to declare on every new connection; this module knows nothing of RPC.
"""

from __future__ import annotations

import random
from typing import Any, Awaitable, Callable

from twisted.internet import abstract, defer, protocol
from twisted.internet.endpoints import HostnameEndpoint, TCP4ClientEndpoint, TCP6ClientEndpoint
from twisted.internet.interfaces import IDelayedCall, IStreamClientEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure
from txamqp.client import Closed
from txamqp.message import Message
from txamqp.protocol import AMQChannel

from nova.config import RpcConfig
from nova.rpc.amqp_protocol import NovaAMQClient, load_spec
from nova.rpc.errors import BrokerUnavailable, TransportStopped

#: called with the channel of every new connection, to declare what is needed
Setup = Callable[[AMQChannel], Awaitable[None]]


class _OneClient(protocol.Factory):
    """Builds the one given protocol, quietly (no "Starting factory" per attempt)."""

    noisy = False

    def __init__(self, client: NovaAMQClient) -> None:
        self.client = client

    def buildProtocol(self, addr: Any) -> NovaAMQClient:
        return self.client


class AMQPConnector:
    """
    Keeps one connection, with one channel, to the broker.

    States: C{stopped}; C{starting} (the first attempt, whose failure is
    reported to L{start} and not retried); C{running} (connected, or
    reconnecting after a loss with exponential backoff).

    @ivar channel: the open channel, or C{None} while disconnected.
    """

    log = Logger()

    def __init__(self, reactor: Any, config: RpcConfig, *, setup: Setup,
                 on_deliver: Callable[[AMQChannel, Any], None],
                 on_lost: Callable[[], None], heartbeat: int, prefetch: int,
                 connect_timeout: float, retry_delay: float, max_retry_delay: float) -> None:
        """
        @param setup: declares exchanges, queues and consumers on a new channel.
        @param on_deliver: receives every C{basic.deliver} as C{(channel, message)}.
        @param on_lost: called when an established connection is lost.
        @param heartbeat: AMQP heartbeat, seconds (0: none).
        @param prefetch: C{basic.qos} prefetch count per consumer.
        @param connect_timeout: seconds one attempt may take, login and setup included.
        @param retry_delay: first delay before reconnecting; doubled after
            every failed attempt, up to C{max_retry_delay}.
        """
        self.reactor = reactor
        self.config = config
        self.channel: AMQChannel | None = None
        self._spec = load_spec()
        self._setup = setup
        self._on_deliver = on_deliver
        self._on_lost = on_lost
        self._heartbeat = heartbeat
        self._prefetch = prefetch
        self._connect_timeout = connect_timeout
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        self._delay = retry_delay
        self._state = "stopped"
        self._client: NovaAMQClient | None = None
        self._attempt: tuple[NovaAMQClient, defer.Deferred[Any]] | None = None
        self._retry: IDelayedCall | None = None
        self._start_waiters: list[defer.Deferred[None]] = []
        self._attempt_waiters: list[defer.Deferred[None]] = []
        self._stop_waiters: list[defer.Deferred[None]] | None = None
        self._on_connected: list[defer.Deferred[None]] = []
        self._on_disconnected: list[defer.Deferred[None]] = []

    @property
    def where(self) -> str:
        return f"{self.config.amqp_host}:{self.config.amqp_port}"

    @property
    def connected(self) -> bool:
        return self.channel is not None and not self.channel.closed

    @property
    def state(self) -> str:
        return "connected" if self.connected else self._state

    def start(self) -> defer.Deferred[None]:
        """Connect (see L{nova.rpc.interfaces.IRPCTransport.start})."""
        if self._state == "running":
            return self.when_connected()
        d: defer.Deferred[None] = defer.Deferred()
        self._start_waiters.append(d)
        if self._state == "stopped":
            self._state = "starting"
            defer.Deferred.fromCoroutine(self._connect()).addBoth(self._started)
        return d

    def _started(self, result: None | Failure) -> None:
        failed = isinstance(result, Failure)
        if self._state == "starting":
            self._state = "stopped" if failed else "running"
        waiters, self._start_waiters = self._start_waiters, []
        for d in waiters:
            d.errback(result) if failed else d.callback(None)
        if not failed:
            _fire(self._on_connected)

    def stop(self) -> defer.Deferred[None]:
        """Close the connection, or give up connecting; no reconnection follows."""
        d: defer.Deferred[None] = defer.Deferred()
        if self._stop_waiters is not None:
            self._stop_waiters.append(d)  # already stopping
            return d
        self._stop_waiters = [d]
        defer.Deferred.fromCoroutine(self._stop()).addBoth(self._stopped)
        return d

    def _stopped(self, result: object) -> None:
        if isinstance(result, Failure):
            self.log.failure("stopping the AMQP connection", result)
        waiters, self._stop_waiters = self._stop_waiters or [], None
        _fire(waiters)

    async def _stop(self) -> None:
        self._state = "stopped"
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        if self._attempt is not None:
            done: defer.Deferred[None] = defer.Deferred()
            self._attempt_waiters.append(done)
            client, connecting = self._attempt
            if client.transport is not None:
                client.transport.abortConnection()
            else:
                connecting.cancel()
            await done
        client, self._client, self.channel = self._client, None, None
        if client is not None:
            lost = client.disconnected.wait()
            try:
                await client.close(within=2)
            except Exception as e:  # the broker may be gone already
                self.log.debug("closing the AMQP connection: {error}", error=e)
                if client.transport is not None:
                    client.transport.abortConnection()
            await lost

    def when_connected(self) -> defer.Deferred[None]:
        """@return: a Deferred firing when connected (at once if connected now)."""
        if self.connected:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._on_connected.append(d)
        return d

    def when_disconnected(self) -> defer.Deferred[None]:
        """@return: a Deferred firing when the current connection is lost (at once if none)."""
        if not self.connected:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._on_disconnected.append(d)
        return d

    def _endpoint(self) -> IStreamClientEndpoint:
        host, port = self.config.amqp_host, self.config.amqp_port
        timeout = max(1, int(self._connect_timeout))
        if abstract.isIPAddress(host):
            return TCP4ClientEndpoint(self.reactor, host, port, timeout=timeout)
        if abstract.isIPv6Address(host):
            return TCP6ClientEndpoint(self.reactor, host, port, timeout=timeout)
        return HostnameEndpoint(self.reactor, host, port, timeout=timeout)

    async def _connect(self) -> None:
        """One attempt: connect, log in, open the channel, run the setup."""
        client = NovaAMQClient(self._spec, self.config.amqp_vhost, self._heartbeat, self.reactor,
                               self._on_deliver, self._channel_failed)
        connecting = self._endpoint().connect(_OneClient(client))
        self._attempt = (client, connecting)
        try:
            channel = await self._open(client, connecting)
        finally:
            self._attempt = None
            _fire(self._attempt_waiters)
        self._client, self.channel = client, channel
        self._delay = self._retry_delay
        client.disconnected.wait().addCallback(self._lost, client)
        self.log.info("connected to AMQP broker at {where}, exchange {exchange}",
                      where=self.where, exchange=self.config.exchange)

    async def _open(self, client: NovaAMQClient, connecting: defer.Deferred[Any]) -> AMQChannel:
        def too_slow() -> None:
            if client.transport is not None:
                client.transport.abortConnection()
            else:
                connecting.cancel()

        timer = self.reactor.callLater(self._connect_timeout, too_slow)
        try:
            await connecting
            await client.authenticate(self.config.amqp_user, self.config.amqp_password,
                                      mechanism="PLAIN")
            channel = await client.channel(1)
            await channel.channel_open()
            await channel.basic_qos(prefetch_count=self._prefetch)
            await self._setup(channel)
            if self._state == "stopped":
                raise TransportStopped("RPC transport stopped while connecting")
        except Exception as e:
            client.abandon()
            if client.transport is not None:
                # connectionMade happened, so connectionLost will: wait for it,
                # so that nothing of this attempt outlives it.
                client.transport.abortConnection()
                await client.disconnected.wait()
            if self._state == "stopped":
                raise TransportStopped("RPC transport stopped while connecting") from None
            why = describe(e)
            if client.phase == "login":
                user = self.config.amqp_user
                why = (f"login as {user!r} refused ({why})" if why.startswith("broker said")
                       else f"the broker closed the connection at login: wrong user {user!r}"
                            f" or password? ({why})")
            raise BrokerUnavailable(
                f"cannot connect to the AMQP broker at {self.where}: {why}") from None
        finally:
            if timer.active():
                timer.cancel()
        return channel

    def _lost(self, _: object, client: NovaAMQClient) -> None:
        if client is not self._client:
            return  # closed by stop()
        self._client = self.channel = None
        self._on_lost()
        _fire(self._on_disconnected)
        if self._state == "running":
            self.log.warn("lost the connection to the AMQP broker at {where}; reconnecting",
                          where=self.where)
            self._schedule_reconnect()

    def _channel_failed(self, channel: AMQChannel, reason: Failure) -> None:
        # One channel carries everything: when the broker closes it (a deleted
        # exchange, a precondition failure) start over on a new connection.
        self.log.error("AMQP broker closed the channel: {reason}", reason=describe(reason.value))
        client = self._client
        if client is not None and client.transport is not None:
            client.transport.abortConnection()

    def _schedule_reconnect(self) -> None:
        delay = self._delay * random.uniform(0.8, 1.2)
        self._delay = min(self._delay * 2, self._max_retry_delay)
        self._retry = self.reactor.callLater(delay, self._reconnect)

    def _reconnect(self) -> None:
        self._retry = None
        defer.Deferred.fromCoroutine(self._connect()).addCallbacks(
            self._reconnected, self._reconnect_failed)

    def _reconnected(self, _: None) -> None:
        _fire(self._on_connected)

    def _reconnect_failed(self, failure: Failure) -> None:
        if self._state == "running":
            self.log.warn("{error}; retrying in about {delay:.1f}s",
                          error=failure.value, delay=self._delay)
            self._schedule_reconnect()


def _fire(waiters: list[defer.Deferred[None]]) -> None:
    ready = list(waiters)
    del waiters[:]
    for d in ready:
        d.callback(None)


def describe(error: BaseException) -> str:
    """@return: a short text for an AMQP error, unwrapping txamqp's C{Closed(reason)}."""
    reason: Any = error
    if isinstance(error, Closed) and error.args:
        reason = error.args[0]
    if isinstance(reason, Failure):
        reason = reason.value
    if isinstance(reason, Message):
        # connection.close or channel.close from the broker
        try:
            return f"broker said {reason.reply_code} {reason.reply_text}"
        except AttributeError:
            return str(reason)
    text = str(reason) or type(reason).__name__
    return text if len(text) < 300 else text[:300] + "..."
