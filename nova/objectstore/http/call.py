"""
What an S3 operation handler receives (L{S3Call}) and returns (L{Response}),
and the upload that streamed in before it ran (L{UploadPlan},
L{ReceivedBody}).
"""

from __future__ import annotations

from typing import Any

import attr

from nova.objectstore.http.auth import Identity
from nova.objectstore.http.routing import Route


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class UploadPlan:
    """
    A request whose body is object data, as understood from its headers alone.

    @ivar action: C{PutObject} or C{UploadPart}.
    @ivar length: the body's C{Content-Length} (C{None}: chunked transfer).
    @ivar aws_chunked: the body is C{aws-chunked} (a streaming signature).
    @ivar decoded_length: C{x-amz-decoded-content-length} of an aws-chunked body.
    """

    action: str
    method: str
    uri: str
    route: Route
    headers: dict[str, str]
    length: int | None
    aws_chunked: bool
    decoded_length: int | None

    @property
    def data_length(self) -> int | None:
        """@return: how many bytes of object data are announced, if known."""
        return self.decoded_length if self.aws_chunked else self.length


@attr.s(auto_attribs=True, kw_only=True)
class ReceivedBody:
    """
    An upload body received into the store, not yet committed.

    @ivar writer: the store's L{nova.objectstore.interfaces.IWriter}.
    @ivar checksums: the flexible checksums computed on the way.
    @ivar trailers: the aws-chunked trailing headers.
    @ivar admitted: what the admission step found (the bucket, the multipart
        upload...), for the handler.
    """

    writer: Any
    checksums: Any
    trailers: dict[str, str] = attr.Factory(dict)
    admitted: Any = None


@attr.s(auto_attribs=True, kw_only=True)
class S3Call:
    """
    One S3 request, authenticated, ready for its operation handler.

    @ivar request_id: the id in C{x-amz-request-id} and error documents.
    @ivar action: the operation name (see L{nova.objectstore.http.routing}).
    @ivar headers: lower-case names; repeated headers joined with commas.
    @ivar body: the buffered body (empty for uploads, which stream).
    @ivar identity: the caller, or C{None} when anonymous.
    @ivar received: the streamed upload body, for PutObject and UploadPart.
    """

    request_id: str
    method: str
    action: str
    route: Route
    host: str
    headers: dict[str, str]
    body: bytes
    identity: Identity | None
    received: ReceivedBody | None = None


@attr.s(auto_attribs=True, kw_only=True)
class ObjectStream:
    """A body to stream from an open object: C{length} bytes from C{first}."""

    handle: Any
    first: int
    length: int


@attr.s(auto_attribs=True, kw_only=True)
class Response:
    """
    An operation's answer.

    @ivar headers: C{(name, value)} pairs to send.
    @ivar body: a small body (XML); see L{stream} for object data.
    @ivar content_type: of C{body}; C{None} sends none.
    @ivar stream: object data to stream instead of C{body}.
    """

    status: int = 200
    headers: list[tuple[str, str]] = attr.Factory(list)
    body: bytes = b""
    content_type: str | None = None
    stream: ObjectStream | None = None

    @classmethod
    def xml(cls, body: bytes, status: int = 200,
            headers: list[tuple[str, str]] | None = None) -> Response:
        """@return: a response carrying an XML document."""
        return cls(status=status, body=body, content_type="application/xml",
                   headers=list(headers or ()))


__all__ = ["ObjectStream", "ReceivedBody", "Response", "S3Call", "UploadPlan"]
