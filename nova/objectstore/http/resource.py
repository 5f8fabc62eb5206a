"""
The twisted.web resource of the object store: every request, whatever its
path and method, goes to the L{nova.objectstore.http.service.S3Service};
its L{Response} is written back here (object bodies through a producer).
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.web import resource, server

from nova.objectstore.http.call import Response
from nova.objectstore.http.producers import stream_object

log = Logger()

#: statuses that carry no body and no Content-Length
_NO_BODY = (204, 304)


class S3Resource(resource.Resource):
    """The whole S3 namespace, as one leaf resource."""

    isLeaf = True

    def __init__(self, service: Any) -> None:
        super().__init__()
        self._service = service

    def render(self, request: server.Request) -> int:
        """Answer any method (S3 decides what is allowed, with its own errors)."""
        defer.Deferred.fromCoroutine(self._respond(request)).addErrback(
            lambda failure: log.failure("writing an S3 response failed", failure))
        return server.NOT_DONE_YET

    async def _respond(self, request: server.Request) -> None:
        response = await self._service.respond(request)
        write_response(request, response, getattr(request, "request_id", ""),
                       self._service)


def write_response(request: server.Request, response: Response, request_id: str,
                   service: Any) -> None:
    """
    Send C{response}: status, headers (with C{x-amz-request-id}), then its
    body or its object stream.
    """
    stream = response.stream
    if getattr(request, "_disconnected", False):
        if stream is not None:
            stream.handle.close()
        return
    request.setResponseCode(response.status)
    headers = request.responseHeaders
    for name, value in response.headers:
        headers.addRawHeader(name.encode("latin-1"), value.encode("utf-8", "surrogateescape"))
    if response.content_type is not None:
        headers.setRawHeaders(b"content-type", [response.content_type.encode("ascii")])
    if request_id:
        headers.setRawHeaders(b"x-amz-request-id", [request_id.encode("ascii")])
    headers.setRawHeaders(b"x-amz-id-2", [service.host_id.encode("ascii")])
    channel = getattr(request, "channel", None)
    if channel is not None and not getattr(channel, "persistent", True):
        headers.setRawHeaders(b"connection", [b"close"])
    if stream is not None and request.method != b"HEAD":
        stream_object(request, stream.handle, stream.first, stream.length,
                      service.run_in_thread, service.use_sendfile)
        return
    if stream is not None:
        stream.handle.close()
    if response.status not in _NO_BODY and not headers.hasHeader(b"content-length"):
        headers.setRawHeaders(b"content-length", [str(len(response.body)).encode("ascii")])
    if response.body and request.method != b"HEAD":
        request.write(response.body)
    request.finish()


__all__ = ["S3Resource", "write_response"]
