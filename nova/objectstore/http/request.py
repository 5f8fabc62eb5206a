"""
The object store's twisted.web request: object bodies stream into the store
as they arrive, and only after the caller has been authenticated and
authorised.

twisted.web reads a whole request body before a resource sees the request.
L{S3Request} decides, as soon as the headers are in (L{S3Request.gotLength}),
whether the body is object data (PutObject, UploadPart). If it is, it stops
reading from the connection, authenticates and authorises the request
(L{UploadReceiver}), and only then reads on, handing each piece to the
store's writer (through the aws-chunked decoder when the body is signed
chunk by chunk). A request refused before its body was read is answered at
once and its connection closed (the client cannot fill the disk); a client
that goes away mid-body leaves nothing (the writer is aborted). Any other
body (XML documents) is buffered up to a small limit.
"""

from __future__ import annotations

import io
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.http_headers import Headers

from nova.exception import NovaError
from nova.objectstore.errors import EntityTooLarge, S3Error, ServiceUnavailable
from nova.objectstore.http.call import ReceivedBody, UploadPlan
from nova.objectstore.http.chunked import AwsChunkedDecoder
from nova.objectstore.http.errors import MaxMessageLengthExceeded

log = Logger()

#: body bytes kept while the caller is being authenticated (the connection is
#: paused then, so this is at most what arrived with the headers)
PREADMIT_LIMIT = 1024 * 1024


class ClientGone(S3Error):
    """The client closed the connection before its body was complete."""

    code = "IncompleteBody"
    status = 400


def header_dict(raw_headers: Any) -> dict[str, str]:
    """
    @param raw_headers: a L{twisted.web.http_headers.Headers}.
    @return: lower-case names to values; repeated headers joined with commas.
    """
    headers: dict[str, str] = {}
    for name, values in raw_headers.getAllRawHeaders():
        key = name.decode("latin-1").lower()
        headers[key] = ",".join(v.decode("utf-8", "surrogateescape").strip() for v in values)
    return headers


class S3ResponseHeaders(Headers):
    """
    Response headers that go out with S3's own spelling of C{x-amz-*} names.

    twisted.web writes every header name Capitalised-Like-This. Header names
    are case-insensitive, but clients build user metadata from the names of
    the C{x-amz-meta-*} headers as received (boto3 and awscli hand back
    C{{"colour": ...}} from S3's C{x-amz-meta-colour}), so those are sent in
    lower case, as S3 sends them.
    """

    __slots__ = ()

    def getAllRawHeaders(self) -> Any:  # noqa: N802 (Twisted's name)
        for name, values in super().getAllRawHeaders():
            yield (name.lower() if name[:6].lower() == b"x-amz-" else name), values


class UploadReceiver:
    """
    The body of one PutObject or UploadPart: admitted first, then streamed
    into a writer of the store.

    States: C{admitting} (the connection is paused, early bytes are held),
    C{streaming}, C{received} (the handler takes the writer), C{failed}.
    """

    def __init__(self, request: S3Request, plan: UploadPlan) -> None:
        self._request = request
        self._service = request.service
        self.plan = plan
        self.identity: Any = None
        self.state = "admitting"
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._ended = False
        self._writer: Any = None
        self._decoder: AwsChunkedDecoder | None = None
        self._checksums: Any = None
        self._admitted: Any = None
        self._received = 0
        self._outcome: ReceivedBody | Failure | None = None
        self._waiters: list[defer.Deferred[ReceivedBody]] = []

    def start(self) -> None:
        """
        Admit the request; the connection is paused while that waits (for
        the datastore or the directory). Admission from what is at hand
        (the caller's credentials and the bucket known already) ends here
        and now, and then the connection is not paused at all.
        """
        defer.Deferred.fromCoroutine(self._admit()).addErrback(self._failed)
        if self.state == "admitting":
            self._request.pause_reading()

    async def _admit(self) -> None:
        identity, admitted, checksums, signer = await self._service.admit_upload(self.plan)
        if self.state != "admitting":
            return  # the client went away meanwhile
        self.identity, self._admitted, self._checksums = identity, admitted, checksums
        self._writer = self._service.store.new_writer(self.plan.route.bucket)
        if self.plan.aws_chunked:
            self._decoder = AwsChunkedDecoder(self._sink, signer, self.plan.decoded_length,
                                              self._service.store.max_object_size)
        self.state = "streaming"
        pending, self._pending = self._pending, []
        for data in pending:
            self._feed(data)
        if self.state != "streaming":
            return
        if self._ended:
            self._complete()
        else:
            self._request.send_continue()
            self._request.resume_reading()

    def _sink(self, data: bytes) -> None:
        self._received += len(data)
        if self._received > self._service.store.max_object_size:
            raise EntityTooLarge("Your proposed upload exceeds the maximum allowed object size.")
        self._checksums.update(data)
        self._writer.write(data)

    def _feed(self, data: bytes) -> None:
        try:
            if self._decoder is not None:
                self._decoder.feed(data)
            else:
                self._sink(data)
        except Exception as e:  # noqa: BLE001 (any failure ends the upload the same way)
            self._fail(e)

    def data_received(self, data: bytes) -> None:
        """A piece of the body arrived."""
        if self.state == "admitting":
            self._pending.append(data)
            self._pending_size += len(data)
            if self._pending_size > PREADMIT_LIMIT:
                self._fail(ServiceUnavailable("Please reduce your request rate."))
        elif self.state == "streaming":
            self._feed(data)

    def body_ended(self) -> None:
        """The whole body has arrived (twisted.web is about to render)."""
        self._ended = True
        if self.state == "streaming":
            self._complete()

    def _complete(self) -> None:
        trailers: dict[str, str] = {}
        if self._decoder is not None:
            try:
                self._decoder.finish()
            except Exception as e:  # noqa: BLE001
                self._fail(e)
                return
            trailers = self._decoder.trailers
        self.state = "received"
        self._resolve(ReceivedBody(writer=self._writer, checksums=self._checksums,
                                   trailers=trailers, admitted=self._admitted))

    def _failed(self, failure: Failure) -> None:
        if not failure.check(NovaError):
            log.failure("admitting an upload failed", failure)
        self._fail(failure.value)

    def _fail(self, error: BaseException) -> None:
        if self.state in ("failed", "received"):
            return
        self.state = "failed"
        self._pending = []
        if self._writer is not None:
            self._writer.abort()
        self._resolve(Failure(error))
        self._request.reject_early(error)

    def connection_lost(self) -> None:
        """The client went away: whatever was written is discarded."""
        if self.state in ("admitting", "streaming"):
            self.state = "failed"
            if self._writer is not None:
                self._writer.abort()
            self._resolve(Failure(ClientGone("The client closed the connection.")))

    def _resolve(self, outcome: ReceivedBody | Failure) -> None:
        self._outcome = outcome
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if isinstance(outcome, ReceivedBody):
                waiter.callback(outcome)
            else:
                waiter.errback(outcome)

    async def wait(self) -> ReceivedBody:
        """
        @return: the received body, once all of it is in the store's writer.
        @raise S3Error: (and the authentication errors) why it was refused.
        """
        outcome = self._outcome
        if outcome is None:
            waiter: defer.Deferred[ReceivedBody] = defer.Deferred()
            self._waiters.append(waiter)
            return await waiter
        if isinstance(outcome, Failure):
            outcome.raiseException()
        assert isinstance(outcome, ReceivedBody)
        return outcome


class S3Request(server.Request):
    """
    A twisted.web request that streams object uploads (see the module
    docstring) and buffers other bodies up to C{service.max_xml_body}.

    @ivar service: the L{nova.objectstore.http.service.S3Service}.
    @ivar request_id: this request's id (C{x-amz-request-id}).
    @ivar upload: the L{UploadReceiver} of an object body, else C{None}.
    @ivar early_error: why the request was refused before its body was read.
    @ivar body_complete: the whole body has arrived.
    """

    def __init__(self, channel: Any, *args: Any, service: Any, **kwargs: Any) -> None:
        kwargs["parsePOSTFormSubmission"] = False
        super().__init__(channel, *args, **kwargs)
        self.service = service
        self.request_id = service.new_request_id()
        self.upload: UploadReceiver | None = None
        self.early_error: BaseException | None = None
        self.body_complete = False
        self.defaultContentType = None
        self.responseHeaders = S3ResponseHeaders()
        self._buffered = 0
        self._expects_continue = False

    # -- twisted.web's hooks ------------------------------------------------

    def gotLength(self, length: int | None) -> None:  # noqa: N802 (Twisted's name)
        """The headers are in: decide how the body is received."""
        self.content = io.BytesIO()
        channel = self.channel
        headers = header_dict(self.requestHeaders)
        try:
            plan = self.service.plan_upload(channel._command, channel._path, headers, length)
        except NovaError as e:
            self._hold_continue()
            self.reject_early(e)
            return
        except Exception:
            log.failure("planning the body of an S3 request failed")
            self._hold_continue()
            self.reject_early(S3Error("We encountered an internal error. Please try again."))
            return
        if plan is not None:
            self._hold_continue()
            self.upload = UploadReceiver(self, plan)
            self.upload.start()
        elif length is not None and length > self.service.max_xml_body:
            self._hold_continue()
            self.reject_early(MaxMessageLengthExceeded("Your request was too big."))

    def handleContentChunk(self, data: bytes) -> None:  # noqa: N802
        """A piece of the body: to the upload, or into the small buffer."""
        if self.upload is not None:
            self.upload.data_received(data)
            return
        if self.early_error is not None:
            return
        self._buffered += len(data)
        if self._buffered > self.service.max_xml_body:
            self.content = io.BytesIO()
            self.reject_early(MaxMessageLengthExceeded("Your request was too big."))
            return
        self.content.write(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:  # noqa: N802
        """The whole body is in: let the upload know, then render."""
        self.body_complete = True
        if self.upload is not None:
            self.upload.body_ended()
        super().requestReceived(command, path, version)

    def connectionLost(self, reason: Failure) -> None:  # noqa: N802
        """The client is gone: abandon the upload."""
        if self.upload is not None:
            self.upload.connection_lost()
        super().connectionLost(reason)

    # -- flow control ----------------------------------------------------------

    def pause_reading(self) -> None:
        """Stop reading from the connection (TCP back-pressure on the client)."""
        transport = getattr(self.channel, "transport", None)
        if transport is not None and hasattr(transport, "pauseProducing"):
            transport.pauseProducing()

    def resume_reading(self) -> None:
        """Read from the connection again."""
        transport = getattr(self.channel, "transport", None)
        if transport is not None and hasattr(transport, "resumeProducing"):
            transport.resumeProducing()

    def _hold_continue(self) -> None:
        # twisted.web answers "Expect: 100-continue" right after gotLength;
        # an upload must first be admitted, so the header is taken away here
        # and the 100 sent by send_continue once the body is welcome.
        values = self.requestHeaders.getRawHeaders(b"expect")
        if values and values[0].strip().lower() == b"100-continue":
            self.requestHeaders.removeHeader(b"expect")
            self._expects_continue = True

    def send_continue(self) -> None:
        """Send C{100 Continue} when the client waits for it before its body."""
        if not self._expects_continue or self.body_complete or self.channel is None:
            return
        self._expects_continue = False
        if getattr(self.channel, "_version", b"") == b"HTTP/1.1":
            self.channel.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def reject_early(self, error: BaseException) -> None:
        """
        Refuse the request without reading the rest of its body: stop reading,
        and on the next reactor turn end the body here so that the error is
        rendered, with the connection closed after it.
        """
        if self.early_error is not None:
            return
        self.early_error = error
        self.pause_reading()
        # Not now: this may run inside twisted.web's body decoder, which must
        # not see the request end under its feet.
        self.service.clock.callLater(0, self._answer_early)

    def _answer_early(self) -> None:
        if self.body_complete or self._disconnected or self.channel is None:
            return
        self.channel.persistent = False
        linger_on_close(self.channel, self.service.clock)
        self.channel.allContentReceived()


#: how long a refused client may go on sending before its connection is cut
LINGER_SECONDS = 10.0


def linger_on_close(channel: Any, clock: Any, seconds: float = LINGER_SECONDS) -> None:
    """
    Make the coming close of C{channel} (after an early answer) a lingering one.

    A client that does not wait for C{100 Continue} is still sending its body
    when it is refused. Closing at once would make the kernel reset the
    connection over the unread bytes, and the client would see the reset
    rather than the error document. So: send the answer, then half-close
    (FIN), read and drop whatever still comes (nothing reaches the store),
    and cut the connection once the client closes or after C{seconds}.
    """
    transport = channel.transport
    if not hasattr(transport, "loseWriteConnection"):
        return
    lost = channel.connectionLost

    def lingering_close() -> None:
        channel.dataReceived = lambda data: None
        # no producer left to resume: the transport then sends its FIN
        transport.unregisterProducer()
        transport.loseWriteConnection()
        transport.resumeProducing()
        deadline = clock.callLater(seconds, transport.abortConnection)

        def connection_lost(reason: Any) -> None:
            if deadline.active():
                deadline.cancel()
            lost(reason)

        channel.connectionLost = connection_lost

    channel.loseConnection = lingering_close


def request_factory(service: Any) -> Any:
    """@return: a C{requestFactory} for a L{server.Site} serving C{service}."""

    def make(channel: Any, *args: Any, **kwargs: Any) -> S3Request:
        return S3Request(channel, *args, service=service, **kwargs)

    return make


__all__ = ["ClientGone", "LINGER_SECONDS", "PREADMIT_LIMIT", "S3Request", "S3ResponseHeaders",
           "UploadReceiver", "header_dict", "linger_on_close", "request_factory"]
