"""
Streaming an object's body to the client, never all of it in memory.

L{ReadProducer} reads the open object in pieces off the reactor thread (one
piece read ahead) and writes them as the connection takes them (a push
producer: the transport pauses it when its buffer is full).

L{SendfileProducer} hands the copying to the kernel (C{os.sendfile}, from
the object's file to the socket) when the connection is a plain TCP socket:
it waits until the transport has written out everything it holds (the
response headers), then sends the body with C{sendfile} calls made off the
reactor thread on a duplicate of the socket's descriptor (so the descriptor
cannot be closed and reused under a running call), and waits again for the
socket to be writable whenever the kernel's buffer is full.
"""

from __future__ import annotations

import errno
import os
from typing import Any, Awaitable, Callable

from twisted.internet import defer, interfaces, tcp
from twisted.logger import Logger
from zope.interface import implementer

log = Logger()

#: bytes read from the object per piece
READ_CHUNK = 512 * 1024
#: most bytes one off-thread sendfile step sends before returning to the reactor
SENDFILE_STEP = 8 * 1024 * 1024
#: smaller bodies are read and written (one thread hop) rather than sent with sendfile
SENDFILE_MIN = 256 * 1024
#: socket errors that only mean the client went away
_GONE = (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.ESHUTDOWN, errno.EBADF)


def sendfile_some(out_fd: int, in_fd: int, offset: int, count: int) -> tuple[int, bool]:
    """
    Send up to C{count} bytes of C{in_fd} from C{offset} to the non-blocking
    socket C{out_fd}.

    @return: the bytes sent, and whether the socket's buffer is full.
    @raise EOFError: the file ends before C{count} bytes.
    @raise OSError: the socket or the file failed.
    """
    sent = 0
    while sent < count:
        try:
            n = os.sendfile(out_fd, in_fd, offset + sent, count - sent)
        except BlockingIOError:
            return sent, True
        except InterruptedError:
            continue
        if n == 0:
            raise EOFError("the object's file is shorter than its size")
        sent += n
    return sent, False


@implementer(interfaces.IPushProducer)
class ReadProducer:
    """
    Streams C{length} bytes of an open object from C{first}, with reads made
    by C{run_in_thread}; closes the object and finishes the request at the end.
    """

    def __init__(self, request: Any, handle: Any, first: int, length: int,
                 run_in_thread: Callable[..., Awaitable[Any]]) -> None:
        self._request = request
        self._handle = handle
        self._position = first
        self._end = first + length
        self._run_in_thread = run_in_thread
        self._paused = False
        self._stopped = False
        self._wake: defer.Deferred[None] | None = None

    def start(self) -> defer.Deferred[None]:
        """Register with the request and start streaming."""
        self._request.registerProducer(self, True)
        self._request.notifyFinish().addErrback(lambda _: self.stopProducing())
        return defer.Deferred.fromCoroutine(self._stream())

    # IPushProducer

    def pauseProducing(self) -> None:  # noqa: N802 (Twisted's name)
        self._paused = True

    def resumeProducing(self) -> None:  # noqa: N802
        self._paused = False
        self._fire_wake()

    def stopProducing(self) -> None:  # noqa: N802
        self._stopped = True
        self._fire_wake()

    def _fire_wake(self) -> None:
        wake, self._wake = self._wake, None
        if wake is not None:
            wake.callback(None)

    async def _until_resumed(self) -> None:
        while self._paused and not self._stopped:
            self._wake = defer.Deferred()
            await self._wake

    def _read(self, count: int) -> defer.Deferred[bytes]:
        return defer.ensureDeferred(self._run_in_thread(self._handle.read, self._position,
                                                        count))

    async def _body(self) -> None:
        ahead = self._read(min(READ_CHUNK, self._end - self._position)) \
            if self._position < self._end else None
        while ahead is not None and not self._stopped:
            data = await ahead
            ahead = None
            if not data:
                raise EOFError("the object's file is shorter than its size")
            self._position += len(data)
            if self._position < self._end:
                ahead = self._read(min(READ_CHUNK, self._end - self._position))
            self._request.write(data)
            await self._until_resumed()
        if ahead is not None:
            ahead.addErrback(lambda _: None)  # stopped: nobody wants that piece

    async def _stream(self) -> None:
        try:
            await self._body()
            self._done()
        except OSError as e:
            if e.errno not in _GONE and not self._gone():
                log.failure("streaming an object failed")
            self._abort()
        except Exception:
            log.failure("streaming an object failed")
            self._abort()
        finally:
            self._handle.close()

    def _gone(self) -> bool:
        return self._stopped or getattr(self._request, "_disconnected", False) or \
            getattr(self._request, "channel", None) is None

    def _unregister(self) -> None:
        if self._request.producer is not None and not self._gone():
            self._request.unregisterProducer()

    def _done(self) -> None:
        self._unregister()
        if not self._gone():
            self._request.finish()

    def _abort(self) -> None:
        # Part of the body may be out already: the only honest signal left
        # is to drop the connection.
        self._unregister()
        transport = getattr(getattr(self._request, "channel", None), "transport", None)
        if transport is not None:
            transport.abortConnection()


class SendfileProducer(ReadProducer):
    """Streams with C{os.sendfile} (see the module docstring)."""

    def __init__(self, request: Any, handle: Any, first: int, length: int,
                 run_in_thread: Callable[..., Awaitable[Any]]) -> None:
        super().__init__(request, handle, first, length, run_in_thread)
        self._transport = request.channel.transport

    async def _drained(self) -> None:
        # The transport resumes its paused producer (the HTTP channel, which
        # resumes ours) once it has written all it holds and the socket can
        # take more: mark it paused and make it wait for writability.
        self._request.channel.pauseProducing()
        self._paused = True
        self._transport.producerPaused = True
        self._transport.startWriting()
        await self._until_resumed()

    async def _body(self) -> None:
        self._request.write(b"")  # the headers, into the transport's buffer
        out_fd = os.dup(self._transport.getHandle().fileno())
        in_fd = self._handle.fileno()
        offset = self._handle.data_offset
        try:
            await self._drained()
            while self._position < self._end and not self._stopped:
                count = min(SENDFILE_STEP, self._end - self._position)
                try:
                    sent, full = await self._run_in_thread(
                        sendfile_some, out_fd, in_fd, offset + self._position, count)
                except OSError as e:
                    if e.errno in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP) and \
                            self._request.sentLength == 0:
                        os.close(out_fd)
                        out_fd = -1
                        await super()._body()  # this file cannot be sent: read it
                        return
                    raise
                self._position += sent
                self._request.sentLength += sent
                if full and not self._stopped:
                    await self._drained()
        finally:
            if out_fd != -1:
                os.close(out_fd)


def can_sendfile(request: Any, handle: Any, length: int) -> bool:
    """
    @return: whether C{request}'s body can go out with C{os.sendfile}: a
        plain TCP connection (not TLS), an object file with a descriptor,
        and a body large enough to be worth it.
    """
    transport = getattr(getattr(request, "channel", None), "transport", None)
    return (length >= SENDFILE_MIN and hasattr(os, "sendfile")
            and isinstance(transport, tcp.Connection)
            and not interfaces.ISSLTransport.providedBy(transport)
            and callable(getattr(handle, "fileno", None)))


def stream_object(request: Any, handle: Any, first: int, length: int,
                  run_in_thread: Callable[..., Awaitable[Any]],
                  use_sendfile: bool = True) -> defer.Deferred[None]:
    """
    Stream C{length} bytes of C{handle} from C{first} as the response body
    (the headers are set already), then finish the request and close the handle.

    @return: fires when done (or given up).
    """
    if use_sendfile and can_sendfile(request, handle, length):
        producer: ReadProducer = SendfileProducer(request, handle, first, length,
                                                  run_in_thread)
    else:
        producer = ReadProducer(request, handle, first, length, run_in_thread)
    return producer.start()


__all__ = ["READ_CHUNK", "ReadProducer", "SENDFILE_MIN", "SENDFILE_STEP", "SendfileProducer",
           "can_sendfile", "sendfile_some", "stream_object"]
