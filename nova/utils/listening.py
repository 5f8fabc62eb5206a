"""A service that listens on a TCP port and says when it does."""

from __future__ import annotations

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
