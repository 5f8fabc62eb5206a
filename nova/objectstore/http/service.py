"""
The S3 service: from a received request to an operation handler's
L{Response}, or to the S3 error document of whatever went wrong.

L{S3Service} holds the collaborators (the store, the authenticator, the
clock, the configuration) and the table of operation handlers; the
twisted.web glue (L{nova.objectstore.http.resource}) asks it to
L{S3Service.respond} and writes what it answers.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import uuid
from typing import Any, Awaitable, Callable, Mapping

from twisted.logger import Logger

from nova.auth import signer
from nova.auth.signing.encoding import decode_wire
from nova.exception import AuthFailure, NovaError
from nova.objectstore.errors import (EntityTooLarge, InvalidArgument, InvalidRequest,
                                     MissingContentLength, S3Error)
from nova.objectstore.http import buckets, multipart, objects
from nova.objectstore.http.auth import Authenticator, Identity
from nova.objectstore.http.call import ReceivedBody, Response, S3Call, UploadPlan
from nova.objectstore.http.chunked import AwsChunkedDecoder
from nova.objectstore.http.digests import (BodyChecksums, check_buffered_body,
                                           requested_checksums)
from nova.objectstore.http.errors import fields_of, with_fields
from nova.objectstore.http.request import header_dict
from nova.objectstore.http.routing import (UPLOAD_ACTIONS, Route, parse_route,
                                           resolve_action)
from nova.objectstore.http.xmlrender import error_document

log = Logger()

Handler = Callable[[Any, S3Call], Awaitable[Response]]

#: the operation handlers, by operation name
HANDLERS: dict[str, Handler] = {**buckets.HANDLERS, **objects.HANDLERS, **multipart.HANDLERS}
#: what is checked of an upload before its body is read
ADMISSIONS = {"PutObject": objects.admit_put_object,
              "UploadPart": multipart.admit_upload_part}


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    if not value.strip().isdigit():
        raise InvalidArgument(f"The {name} header is not a number.")
    return int(value)


class S3Service:
    """
    Serves S3 over an L{nova.objectstore.interfaces.IObjectStore}.

    @ivar store: the object store.
    @ivar clock: C{IReactorTime}.
    @ivar config: the L{nova.config.ObjectStoreConfig}.
    @ivar run_in_thread: runs a blocking function off the reactor thread
        (C{await run_in_thread(fn, *args)}).
    @ivar max_xml_body: the largest body buffered for an XML operation.
    @ivar host_id: the C{x-amz-id-2} of this server.
    @ivar use_sendfile: send object bodies with C{os.sendfile} where possible.
    @ivar region: the cloud's region, what GetBucketLocation answers (empty:
        S3's default region).
    """

    def __init__(self, store: Any, auth: Any, clock: Any, config: Any,
                 run_in_thread: Callable[..., Awaitable[Any]], *,
                 max_xml_body: int = 2 * 1024 * 1024,
                 max_skew: float = signer.DEFAULT_MAX_SKEW,
                 use_sendfile: bool = True, region: str = "") -> None:
        self.store = store
        self.clock = clock
        self.config = config
        self.run_in_thread = run_in_thread
        self.max_xml_body = max_xml_body
        self.use_sendfile = use_sendfile
        self.region = region
        self.authenticator = Authenticator(auth, clock, max_skew)
        self.host_id = hashlib.sha256(uuid.uuid4().bytes).hexdigest()[:32]
        # request ids: a random prefix of this run and a counter (unique, and
        # no system call per request)
        self._id_prefix = os.urandom(4).hex().upper()
        self._id_counter = itertools.count()

    def new_request_id(self) -> str:
        """@return: a fresh request id (16 upper-case hex digits, as S3's)."""
        return f"{self._id_prefix}{next(self._id_counter) & 0xFFFFFFFF:08X}"

    def parse(self, method: bytes | str, uri: bytes | str,
              headers: Mapping[str, str]) -> tuple[str, str, Route]:
        """
        @return: the method (upper case), the request target as text, and its route.
        @raise S3Error: the target cannot be parsed.
        """
        verb = decode_wire(method).upper()
        target = decode_wire(uri)
        return verb, target, parse_route(target, headers.get("host", ""),
                                         self.config.virtual_host_suffix)

    def signed_view(self, method: str, uri: str, headers: Mapping[str, str],
                    body: bytes | None, route: Route) -> signer.SignedRequest:
        """
        @return: what the signature checks read of the request. For a SigV2
            presigned URL, C{x-amz-*} query parameters count as headers, as
            in S3 (boto 2 moves the signed metadata of a key there).
        """
        folded = dict(headers)
        if route.has("Signature") and route.has("AWSAccessKeyId"):
            for name, value in route.params:
                if name.lower().startswith("x-amz-"):
                    folded.setdefault(name.lower(), value)
        return signer.SignedRequest.from_parts(method, uri, folded, body, form_body=False,
                                               virtual_bucket=route.virtual_bucket)

    # -- uploads --------------------------------------------------------------

    def plan_upload(self, method: bytes, uri: bytes, headers: Mapping[str, str],
                    length: int | None) -> UploadPlan | None:
        """
        Decide from the headers alone whether the body is object data.

        @param length: the body length twisted.web found (C{None}: chunked).
        @return: the plan of a PutObject or UploadPart, else C{None}.
        @raise S3Error: the request is refused before its body is read
            (unparseable target, no length, too large).
        """
        if decode_wire(method).upper() != "PUT":
            return None
        verb, target, route = self.parse(method, uri, headers)
        action = resolve_action(verb, route, headers)
        if action not in UPLOAD_ACTIONS:
            return None
        if length == 0 and "content-length" not in headers:
            raise MissingContentLength("You must provide the Content-Length HTTP header.")
        aws_chunked = headers.get("x-amz-content-sha256", "").startswith("STREAMING-")
        decoded = _int_header(headers, "x-amz-decoded-content-length")
        if aws_chunked and decoded is None:
            raise MissingContentLength("You must provide the x-amz-decoded-content-length "
                                       "header with an aws-chunked body.")
        announced = decoded if aws_chunked else length
        limit = self.store.max_object_size
        if announced is not None and announced > limit:
            raise with_fields(EntityTooLarge(
                "Your proposed upload exceeds the maximum allowed object size."),
                ProposedSize=str(announced), MaxSizeAllowed=str(limit))
        return UploadPlan(action=action, method=verb, uri=target, route=route,
                          headers=dict(headers), length=length, aws_chunked=aws_chunked,
                          decoded_length=decoded)

    async def admit_upload(self, plan: UploadPlan) -> tuple[Identity | None, Any, Any, Any]:
        """
        Authenticate and authorise an upload before its body is read.

        @return: the caller, what the admission found (for the handler), the
            checksum calculator, and the chunk signature verifier (or C{None}).
        @raise NovaError: the request is refused.
        """
        view = self.signed_view(plan.method, plan.uri, plan.headers, None, plan.route)
        identity = await self.authenticator.authenticate(view)
        chunk_signer = None
        if plan.aws_chunked:
            marker = plan.headers.get("x-amz-content-sha256", "")
            if marker.startswith("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"):
                if identity is None or not identity.claimed.is_streaming:
                    raise InvalidRequest("A body with chunk signatures needs a Signature "
                                         "Version 4 Authorization header.")
                chunk_signer = identity.chunk_signer()
        checksums = BodyChecksums(requested_checksums(plan.headers))
        admitted = await ADMISSIONS[plan.action](self, plan, identity)
        return identity, admitted, checksums, chunk_signer

    # -- any request ----------------------------------------------------------

    async def respond(self, request: Any) -> Response:
        """
        Run the operation a request names.

        @param request: an L{nova.objectstore.http.request.S3Request} (or any
            twisted.web request: its body is then read from C{content}).
        @return: the response, or the error document of what went wrong.
        """
        request_id = getattr(request, "request_id", None) or self.new_request_id()
        resource = "/"
        method = "GET"
        route: Route | None = None
        received = None
        try:
            early = getattr(request, "early_error", None)
            upload = getattr(request, "upload", None)
            if upload is not None and early is None:
                # an upload's headers were read and its target parsed already
                plan = upload.plan
                headers, method, uri, route = plan.headers, plan.method, plan.uri, plan.route
                resource, action = route.resource, plan.action
            else:
                headers = header_dict(request.requestHeaders)
                try:
                    method, uri, route = self.parse(request.method, request.uri, headers)
                except NovaError:
                    if early is None:
                        raise
                else:
                    resource = route.resource
                if early is not None:
                    raise early
                action = resolve_action(method, route, headers)
            body = b""
            if upload is not None:
                received = await upload.wait()
                identity = upload.identity
            else:
                request.content.seek(0)
                body = request.content.read()
                identity = await self.authenticator.authenticate(
                    self.signed_view(method, uri, headers, body, route))
                if action in UPLOAD_ACTIONS:
                    received = await self._receive_buffered(method, uri, route, headers, body)
                    body = b""
                else:
                    check_buffered_body(headers, body)
            call = S3Call(request_id=request_id, method=method, action=action, route=route,
                          host=headers.get("host", ""), headers=headers, body=body,
                          identity=identity, received=received)
            return await HANDLERS[action](self, call)
        except NovaError as e:
            if received is not None:
                received.writer.abort()
            return self.error_response(e, resource, request_id, method, route)
        except Exception:
            if received is not None:
                received.writer.abort()
            log.failure("S3 request {request_id} failed", request_id=request_id)
            return self.error_response(S3Error("We encountered an internal error. "
                                               "Please try again."), resource, request_id,
                                       method)

    async def _receive_buffered(self, method: str, uri: str, route: Route,
                                headers: dict[str, str], body: bytes) -> Any:
        # A request that did not come through S3Request (the resource mounted
        # in another site): its body was buffered whole; feed it the same way.
        plan = self.plan_upload(method.encode("ascii"), uri.encode("utf-8", "surrogateescape"),
                                headers, len(body))
        assert plan is not None
        identity, admitted, checksums, chunk_signer = await self.admit_upload(plan)
        writer = self.store.new_writer(route.bucket)

        def sink(data: bytes) -> None:
            checksums.update(data)
            writer.write(data)

        try:
            trailers: dict[str, str] = {}
            if plan.aws_chunked:
                decoder = AwsChunkedDecoder(sink, chunk_signer, plan.decoded_length,
                                            self.store.max_object_size)
                decoder.feed(body)
                decoder.finish()
                trailers = decoder.trailers
            else:
                sink(body)
        except BaseException:
            writer.abort()
            raise
        return ReceivedBody(writer=writer, checksums=checksums, trailers=trailers,
                            admitted=admitted)

    def error_response(self, error: BaseException, resource: str, request_id: str,
                       method: str = "GET", route: Route | None = None) -> Response:
        """
        @param route: the request's route, when known (it names the bucket
            and key of C{NoSuchBucket} and C{NoSuchKey}).
        @return: the S3 error document of C{error}, with its status.
        """
        code = getattr(error, "code", "InternalError")
        status = getattr(error, "status", 500)
        if isinstance(error, AuthFailure) and code == "AuthFailure":
            code, status = "AccessDenied", 403
        message = getattr(error, "message", None) or str(error) or code
        if status >= 500:
            log.error("S3 {code} ({request_id}): {message}", code=code,
                      request_id=request_id, message=message)
        headers: list[tuple[str, str]] = list(getattr(error, "s3_headers", ()))
        if code == "MethodNotAllowed":
            headers.append(("Allow", "GET, HEAD, PUT, POST, DELETE"))
        if status == 304:
            return Response(status=304, headers=headers)
        fields = fields_of(error)
        if route is not None and code == "NoSuchBucket":
            fields.setdefault("BucketName", route.bucket)
        if route is not None and code == "NoSuchKey":
            fields.setdefault("Key", route.key)
        body = error_document(code, message, resource, request_id, self.host_id, fields)
        if method == "HEAD":
            return Response(status=status, headers=headers)
        return Response.xml(body, status=status, headers=headers)


__all__ = ["ADMISSIONS", "HANDLERS", "S3Service"]
