"""A service that listens on a TCP port and says when it does."""

from __future__ import annotations

import abc

from typing import Any

from twisted.application.service import Service
from twisted.internet import defer, endpoints, error
from twisted.internet.interfaces import IListeningPort

from nova.exception import NovaError


class ListeningService(Service):
    """
    Listen on C{interface:port} with C{factory} while running.

    @ivar port: the listening port once L{whenReady} has fired.
    """

    def __init__(self, reactor: Any, interface: str, port: int, factory: Any, name: str) -> None:
        self.name = name
        self._endpoint = endpoints.TCP4ServerEndpoint(reactor, port, interface=interface)
        self._where = f"{interface}:{port}"
        self._factory = factory
        self._listening: defer.Deferred[IListeningPort] | None = None
        self.port: IListeningPort | None = None

    def startService(self) -> None:
        super().startService()
        self._listening = self._endpoint.listen(self._factory)
        self._listening.addCallback(self._listened)

    def _listened(self, port: IListeningPort) -> IListeningPort:
        self.port = port
        return port

    async def whenReady(self) -> None:
        """
        Return once listening.

        @raise NovaError: the port cannot be had (in use, no permission).
        """
        assert self._listening is not None
        d: defer.Deferred[Any] = defer.Deferred()
        self._listening.addBoth(lambda r: (d.callback(r), r)[1])
        try:
            await d
        except error.CannotListenError as e:
            raise NovaError(f"{self.name} cannot listen on {self._where}: "
                            f"{e.socketError}") from None

    def stopService(self) -> defer.Deferred[None] | None:
        super().stopService()
        if self.port is not None:
            port, self.port = self.port, None
            return defer.maybeDeferred(port.stopListening)
        return None


class PortService(Service, abc.ABC):
    """
    A service that listens while running, made however a subclass makes
    its port (L{_listen}): a unix socket, a TCP port inside a network
    namespace ... It keeps a failure to listen for L{whenReady}, which the
    process awaits before it says it is up, and stops listening on stop.

    @ivar port: the listening port once L{whenReady} has returned.
    """

    #: where it listens, for error messages
    where = "?"

    def __init__(self) -> None:
        self._listening: defer.Deferred[Any] | None = None
        self._failure: Any = None
        self.port: IListeningPort | None = None

    @abc.abstractmethod
    async def _listen(self) -> IListeningPort:
        """@return: the port, listening. Subclasses make it."""

    def startService(self) -> None:
        super().startService()
        self._failure = None
        self._listening = defer.Deferred.fromCoroutine(self._listen())
        self._listening.addCallbacks(self._listened, self._keep_failure)

    def _listened(self, port: IListeningPort) -> None:
        self.port = port

    def _keep_failure(self, failure: Any) -> None:
        self._failure = failure  # whenReady reports it

    async def _settled(self) -> None:
        assert self._listening is not None, "not started"
        done: defer.Deferred[None] = defer.Deferred()
        self._listening.addBoth(lambda result: (done.callback(None), result)[1])
        await done

    async def whenReady(self) -> None:  # noqa: N802 (the process awaits every child's)
        """
        Return once listening.

        @raise NovaError: the port cannot be had (in use, no permission, no
            such namespace ...).
        """
        await self._settled()
        if self._failure is not None:
            error = self._failure.value
            if isinstance(error, NovaError):
                raise error
            raise NovaError(f"{self.name} cannot listen on {self.where}: "
                            f"{getattr(error, 'socketError', error)}")

    def stopService(self) -> defer.Deferred[None]:
        super().stopService()
        return defer.Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        if self._listening is not None:
            await self._settled()
        if self.port is not None:
            port, self.port = self.port, None
            await defer.maybeDeferred(port.stopListening)
