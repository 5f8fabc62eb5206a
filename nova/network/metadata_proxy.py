"""
The metadata proxy of a network host, Neutron's way.

Guests ask C{http://169.254.169.254/}; the network host redirects that
(iptables nat REDIRECT) to C{[network] metadata_proxy_port} inside its own
namespace, where this proxy listens. It forwards each GET or HEAD over a
unix socket to nova-api (unix sockets are path-based and cross network
namespaces), naming the guest in C{X-Forwarded-For}; nova-api trusts that
header on the socket only (L{nova.api.metadata.service}).

The proxy runs in the nova-network process, which stays in the root
namespace. Its listening socket is made inside the host's namespace without
any child process: a dedicated short-lived thread enters the namespace
(C{setns}), creates, binds and listens, and goes back; the reactor then
adopts the socket (L{listen_tcp_in_netns}, from L{nova.network.netns_socket}).
A socket keeps the namespace it was made in for its whole life, whichever
thread later uses it.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from twisted.internet import defer, protocol
from twisted.internet.endpoints import UNIXClientEndpoint
from twisted.internet.interfaces import IListeningPort, IStreamClientEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import resource, server
from twisted.web.client import Agent, HTTPConnectionPool, ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IAgentEndpointFactory
from zope.interface import implementer

from nova.api.http import bounded_request_factory
from nova.exception import NovaError
from nova.network.netns_socket import NetnsError, listen_tcp_in_netns
from nova.utils.listening import PortService

log = Logger()

#: seconds nova-api has to answer one proxied request
DEFAULT_TIMEOUT = 5.0
#: bytes of one upstream answer (user-data is at most 16 KiB)
MAX_RESPONSE = 1024 * 1024


@implementer(IAgentEndpointFactory)
class _Upstream:
    """Every URI goes to the one upstream endpoint (nova-api's socket)."""

    def __init__(self, endpoint: IStreamClientEndpoint) -> None:
        self._endpoint = endpoint

    def endpointForURI(self, uri: Any) -> IStreamClientEndpoint:  # noqa: N802 (interface)
        return self._endpoint


class UpstreamTooLarge(NovaError):
    """nova-api's answer is larger than a proxy passes on."""


class _BoundedBody(protocol.Protocol):
    """Collects a response body of at most C{limit} bytes."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._chunks: list[bytes] = []
        self._size = 0
        self.done: defer.Deferred[bytes] = defer.Deferred(lambda _: self._abort())

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.stopProducing()  # closes the connection

    def too_large(self) -> None:
        """Give up: the body is (or was announced as) over the limit."""
        if self.done.called:
            return
        self._chunks.clear()
        self.done.errback(UpstreamTooLarge(f"upstream answer over {self._limit} bytes"))
        self._abort()

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 (Twisted API)
        if self.done.called:
            return
        self._size += len(data)
        if self._size > self._limit:
            self.too_large()
            return
        self._chunks.append(data)

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:  # noqa: N802
        if self.done.called:
            return
        if reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(b"".join(self._chunks))
        else:
            self.done.errback(reason)


def _quiet_pool(reactor: Any) -> HTTPConnectionPool:
    """A pool whose client factories do not log starting and stopping per request."""
    pool = HTTPConnectionPool(reactor, persistent=False)
    pool._factory.noisy = False
    return pool


class MetadataProxy(resource.Resource):
    """
    Forwards GET and HEAD to nova-api's metadata socket with
    C{X-Forwarded-For} set to the TCP peer (whatever the guest sent in that
    header is dropped: no other header is forwarded). Answers 502 when
    nova-api cannot be reached or answers badly, 504 when it is too slow.
    """

    isLeaf = True

    def __init__(self, reactor: Any, upstream: IStreamClientEndpoint, *, clock: Any = None,
                 timeout: float = DEFAULT_TIMEOUT, max_response: int = MAX_RESPONSE) -> None:
        """
        @param reactor: for the HTTP client.
        @param upstream: connects to nova-api (a C{UNIXClientEndpoint}).
        @param clock: the L{IReactorTime} of the timeout; C{reactor} by default.
        @param timeout: seconds for the whole upstream exchange.
        @param max_response: bytes of an upstream body passed on.
        """
        super().__init__()
        self._agent = Agent.usingEndpointFactory(
            reactor, _Upstream(upstream), pool=_quiet_pool(reactor))
        self._clock = clock if clock is not None else reactor
        self._timeout = timeout
        self._max_response = max_response

    def render(self, request: server.Request) -> Any:
        if request.method not in (b"GET", b"HEAD"):
            request.setHeader(b"allow", b"GET, HEAD")
            return _plain(request, 405, b"Method Not Allowed")
        host = getattr(request.getClientAddress(), "host", None)
        path = request.uri
        if not isinstance(host, str) or not path.startswith(b"/"):
            return _plain(request, 400, b"Bad Request")
        d = defer.Deferred.fromCoroutine(self._forward(path, host))
        timed_out: list[bool] = []
        gone: list[bool] = []

        def expire() -> None:
            # not Deferred.addTimeout: a cancelled Agent request fails with
            # ResponseNeverReceived, which it would not see as a timeout
            timed_out.append(True)
            d.cancel()

        timer = self._clock.callLater(self._timeout, expire)
        d.addBoth(lambda r: (timer.cancel() if timer.active() else None, r)[1])

        def lost(_: Any) -> None:
            gone.append(True)
            d.cancel()

        request.notifyFinish().addErrback(lost)

        def answer(result: tuple[int, bytes, bytes | None]) -> None:
            if gone:
                return
            status, body, content_type = result
            if content_type is not None:
                request.setHeader(b"content-type", content_type)
            request.setResponseCode(status)
            request.setHeader(b"content-length", b"%d" % len(body))
            request.write(body)  # HEAD: twisted.web sends the headers only
            request.finish()

        def failed(failure: Failure) -> None:
            if gone:
                return
            if timed_out:
                log.warn("metadata upstream timed out for {peer}", peer=host)
                status, text = 504, b"Gateway Timeout"
            else:
                log.warn("metadata upstream failed for {peer}: {error}", peer=host,
                         error=failure.getErrorMessage())
                status, text = 502, b"Bad Gateway"
            request.setResponseCode(status)
            request.setHeader(b"content-type", b"text/plain")
            request.setHeader(b"content-length", b"%d" % len(text))
            request.write(text)
            request.finish()

        d.addCallbacks(answer, failed)
        return server.NOT_DONE_YET

    async def _forward(self, path: bytes, peer: str) -> tuple[int, bytes, bytes | None]:
        # GET upstream for HEAD too: the body is small, and the length we
        # then send is exactly what a GET would get
        headers = Headers({b"x-forwarded-for": [peer.encode("ascii")]})
        response = await self._agent.request(b"GET", b"http://169.254.169.254" + path, headers)
        reader = _BoundedBody(self._max_response)
        response.deliverBody(reader)
        if response.length is not UNKNOWN_LENGTH and response.length > self._max_response:
            reader.too_large()  # not before deliverBody: it resumes the transport
        body = await reader.done
        content_type = (response.headers.getRawHeaders(b"content-type") or [None])[0]
        return response.code, body, content_type


def _plain(request: server.Request, status: int, text: bytes) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"text/plain")
    return text


def proxy_site(reactor: Any, socket_path: str, *, timeout: float = DEFAULT_TIMEOUT) -> server.Site:
    """@return: a quiet site proxying to nova-api's metadata socket at C{socket_path}."""
    upstream = UNIXClientEndpoint(reactor, socket_path, timeout=max(1, int(timeout)))
    site = server.Site(MetadataProxy(reactor, upstream, timeout=timeout), reactor=reactor)
    site.requestFactory = bounded_request_factory(16 * 1024)
    site.noisy = False
    return site


class MetadataProxyService(PortService):
    """The proxy of one network host: listening inside its namespace while running."""

    def __init__(self, reactor: Any, netns: str | None, port: int, factory: Any,
                 run_in_thread: Callable[..., Awaitable[Any]], interface: str = "0.0.0.0") -> None:
        super().__init__()
        self.where = f"{interface}:{port}" + (f" in {netns}" if netns else "")
        self.name = f"metadata proxy ({self.where})"
        self._listen_args = (reactor, netns, port, factory, run_in_thread, interface)

    async def _listen(self) -> IListeningPort:
        return await listen_tcp_in_netns(*self._listen_args)


def metadata_proxy_service(reactor: Any, netns: str | None, port: int, socket_path: str,
                           run_in_thread: Callable[..., Awaitable[Any]], *,
                           interface: str = "0.0.0.0",
                           timeout: float = DEFAULT_TIMEOUT) -> MetadataProxyService:
    """
    @param netns: the network host's namespace (C{None}: the root namespace).
    @param port: C{[network] metadata_proxy_port}.
    @param socket_path: nova-api's metadata socket
        (L{nova.api.metadata.service.metadata_socket_path}).
    @return: a service that listens on start and stops listening on stop.
    """
    return MetadataProxyService(reactor, netns, port, proxy_site(reactor, socket_path,
                                                                 timeout=timeout),
                                run_in_thread, interface)


__all__ = ["listen_tcp_in_netns", "MetadataProxy", "MetadataProxyService", "NetnsError",
           "UpstreamTooLarge", "metadata_proxy_service", "proxy_site", "DEFAULT_TIMEOUT",
           "MAX_RESPONSE"]
