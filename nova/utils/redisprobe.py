"""Waiting for a Redis server to answer, without blocking the reactor."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, endpoints, protocol
from twisted.internet.task import deferLater

from nova.exception import NovaError


class _Ping(protocol.Protocol):
    def __init__(self) -> None:
        self.answered: defer.Deferred[bytes] = defer.Deferred()
        self._buffer = b""

    def connectionMade(self) -> None:
        self.transport.write(b"PING\r\n")

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        if b"\r\n" in self._buffer and not self.answered.called:
            self.answered.callback(self._buffer.split(b"\r\n", 1)[0])
            self.transport.loseConnection()

    def connectionLost(self, reason: Any = None) -> None:
        if not self.answered.called:
            self.answered.errback(reason)


async def redis_answers(reactor: Any, host: str, port: int) -> bool:
    """@return: whether a Redis server at C{host:port} answers PING (even with an error)."""
    endpoint = endpoints.TCP4ClientEndpoint(reactor, host, port, timeout=2)
    ping = _Ping()
    factory = protocol.Factory.forProtocol(lambda: ping)
    factory.noisy = False  # probed every 50 ms at start-up: keep the log readable
    try:
        await endpoint.connect(factory)
        reply = await ping.answered
    except Exception:
        return False
    return reply.startswith((b"+PONG", b"-"))


async def wait_for_redis(reactor: Any, host: str, port: int, timeout: float) -> None:
    """
    Return once Redis at C{host:port} answers.

    @raise NovaError: it did not within C{timeout} seconds.
    """
    deadline = reactor.seconds() + timeout
    while not await redis_answers(reactor, host, port):
        if reactor.seconds() > deadline:
            raise NovaError(f"redis-server at {host}:{port} did not answer within {timeout} s")
        await deferLater(reactor, 0.05, lambda: None)
