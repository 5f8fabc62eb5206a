"""
twisted.web plumbing shared by nova's HTTP APIs: a request class that refuses
to buffer a body larger than the API accepts, and running a coroutine handler
for a request.
"""

from __future__ import annotations

import io
from typing import Any, Awaitable, Callable

from twisted.internet import defer
from twisted.logger import Logger
from twisted.web import server

log = Logger()


class BoundedRequest(server.Request):
    """
    A request that keeps at most C{max_body} bytes of its body in memory.

    A larger body (announced by Content-Length, or found while reading a
    chunked body) is drained and dropped, and C{body_too_large} is set so the
    handler answers with its protocol's error instead of running the action.
    """

    max_body = 1024 * 1024
    body_too_large = False
    _received = 0

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > self.max_body:
            self.body_too_large = True
            self.content = io.BytesIO()
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        self._received += len(data)
        if self._received > self.max_body:
            if not self.body_too_large:
                self.body_too_large = True
                self.content = io.BytesIO()
            return
        super().handleContentChunk(data)


def bounded_request_factory(max_body: int) -> Callable[..., BoundedRequest]:
    """@return: a C{requestFactory} for L{server.Site} limited to C{max_body} bytes."""

    class _Request(BoundedRequest):
        pass

    _Request.max_body = max_body
    return _Request


def header_dict(request: server.Request) -> dict[str, str]:
    """@return: the request's headers, lower-case names, repeated values joined by commas."""
    headers: dict[str, str] = {}
    for name, values in request.requestHeaders.getAllRawHeaders():
        key = name.decode("latin-1").lower()
        headers[key] = ",".join(v.decode("latin-1") for v in values)
    return headers


def respond(request: server.Request,
            produce: Callable[[], Awaitable[tuple[int, bytes, str]]]) -> int:
    """
    Run C{produce} for C{request} and write its result when it is ready.

    @param produce: returns C{(status, body, content_type)}.
    @return: L{server.NOT_DONE_YET}, for a C{render_*} method to return.
    """
    finished = []
    request.notifyFinish().addErrback(lambda _: finished.append(True))

    def write(result: tuple[int, bytes, str]) -> None:
        if finished:
            return  # the client went away; nothing to answer
        status, body, content_type = result
        request.setResponseCode(status)
        request.setHeader(b"content-type", content_type.encode("ascii"))
        request.setHeader(b"content-length", str(len(body)).encode("ascii"))
        request.write(body)
        request.finish()

    def failed(failure: Any) -> None:
        log.failure("request handler failed", failure)
        if not finished:
            request.setResponseCode(500)
            request.finish()

    defer.Deferred.fromCoroutine(produce()).addCallbacks(write, failed)
    return server.NOT_DONE_YET


__all__ = ["BoundedRequest", "bounded_request_factory", "header_dict", "respond"]
