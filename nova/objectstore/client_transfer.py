"""
How L{nova.objectstore.client} moves bodies: the protocols that receive
response bodies (into memory up to a limit, into a file, or nowhere), the
wrapper that watches an upload's progress, the watchdog that gives up on a
silent exchange, the blocking file helpers it runs in a thread, and the
errors of the client's own making.
"""

from __future__ import annotations

import hashlib
import os
from base64 import b64encode
from typing import Any, Callable

from twisted.internet import defer, protocol
from twisted.python.failure import Failure
from twisted.web import client as web_client
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer

from nova.objectstore import errors


class RemoteS3Error(errors.S3Error):
    """The object store answered with an S3 error this module has no class for."""


class ObjectStoreUnavailable(errors.S3Error):
    """The object store could not be reached, or stopped answering."""

    code = "ServiceUnavailable"
    status = 503


class DownloadCorrupted(errors.S3Error):
    """A downloaded body does not match the object's ETag or length."""

    code = "BadDigest"
    status = 502


class Collector(protocol.Protocol):
    """Gathers a response body, refusing more than C{limit} bytes."""

    def __init__(self, limit: int, done: defer.Deferred[bytes]) -> None:
        self.limit, self.done, self.parts, self.size = limit, done, [], 0

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 (Twisted's name)
        self.size += len(data)
        if self.size > self.limit:
            if not self.done.called:
                self.done.errback(errors.EntityTooLarge(
                    f"the object is larger than {self.limit} bytes"))
            self.transport.stopProducing()
            return
        self.parts.append(data)

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:  # noqa: N802
        if self.done.called:
            return
        if reason.check(web_client.ResponseDone):
            self.done.callback(b"".join(self.parts))
        else:
            self.done.errback(ObjectStoreUnavailable(f"the body was cut short: {reason.value}"))


class Discard(protocol.Protocol):
    """Drops the connection instead of reading a body nobody wants."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock

    def connectionMade(self) -> None:  # noqa: N802 (Twisted's name)
        # not at once: deliverBody resumes the transport right after this
        self.clock.callLater(0, self.transport.stopProducing)


class FileSink(protocol.Protocol):
    """
    Writes a response body to an open file as it arrives, hashing it; gives
    up when nothing arrives for C{idle} seconds.

    The writes go to the page cache on the reactor thread, as the store's own
    writers do; the fsync happens in a thread once the body is complete.
    """

    def __init__(self, fileobj: Any, done: defer.Deferred[str], clock: Any,
                 idle: float) -> None:
        self.file, self.done, self.md5, self.size = fileobj, done, hashlib.md5(), 0
        self.idle = idle
        self.watchdog = Watchdog(clock, idle, self._stalled)

    def _stalled(self) -> None:
        self.done.errback(ObjectStoreUnavailable(f"no data for {self.idle} s"))
        self.transport.stopProducing()

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        if self.done.called:
            return
        self.watchdog.touch()
        self.file.write(data)
        self.md5.update(data)
        self.size += len(data)

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:  # noqa: N802
        self.watchdog.stop()
        if self.done.called:
            return
        if reason.check(web_client.ResponseDone):
            self.done.callback(self.md5.hexdigest())
        else:
            self.done.errback(ObjectStoreUnavailable(f"the body was cut short: {reason.value}"))


def hash_file(path: str) -> tuple[int, str, str, str]:
    """Blocking. @return: size, hex MD5, base64 MD5 and hex SHA-256 of a file."""
    md5, sha256, size = hashlib.md5(), hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            md5.update(chunk)
            sha256.update(chunk)
            size += len(chunk)
    return size, md5.hexdigest(), b64encode(md5.digest()).decode(), sha256.hexdigest()


def fsync_and_rename(fileobj: Any, temp: str, target: str) -> None:
    """Blocking: make a complete download durable and give it its name."""
    fileobj.flush()
    os.fsync(fileobj.fileno())
    fileobj.close()
    os.replace(temp, target)


class Watchdog:
    """
    Calls C{expire} once C{idle} seconds pass without a L{touch}: a timeout
    that long transfers keep pushing back as long as bytes move.
    """

    def __init__(self, clock: Any, idle: float, expire: Callable[[], None]) -> None:
        self._clock, self._idle, self._expire = clock, idle, expire
        self._touched = False
        self.expired = False
        self._call = clock.callLater(idle, self._check)

    def touch(self) -> None:
        """Something moved: start counting again (cheap: checked once per period)."""
        self._touched = True

    def _check(self) -> None:
        if self._touched:
            self._touched = False
            self._call = self._clock.callLater(self._idle, self._check)
        else:
            self._call = None
            self.expired = True
            self._expire()

    def stop(self) -> None:
        """The exchange is over."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None


class _TouchingConsumer:
    def __init__(self, consumer: Any, touch: Callable[[], None]) -> None:
        self._consumer, self._touch = consumer, touch

    def write(self, data: bytes) -> None:
        self._touch()
        self._consumer.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._consumer, name)


@implementer(IBodyProducer)
class WatchedBody:
    """A request body producer that touches a L{Watchdog} for every piece it writes."""

    def __init__(self, body: Any, touch: Callable[[], None]) -> None:
        self._body, self._touch = body, touch
        self.length = body.length

    def startProducing(self, consumer: Any) -> defer.Deferred[None]:  # noqa: N802
        return self._body.startProducing(_TouchingConsumer(consumer, self._touch))

    def pauseProducing(self) -> None:  # noqa: N802
        self._body.pauseProducing()

    def resumeProducing(self) -> None:  # noqa: N802
        self._body.resumeProducing()

    def stopProducing(self) -> None:  # noqa: N802
        self._body.stopProducing()
