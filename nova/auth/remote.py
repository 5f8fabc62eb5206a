"""
A remote LDAP directory over ldaptor's client, that reconnects by itself.

ldaptor's C{LDAPEntry} objects send every operation through their C{client}.
Here that client is a L{ReconnectingClient}: it (re)connects and binds on
demand, so a restarted slapd costs the requests in flight (they fail with
L{DirectoryUnavailable}) and nothing after. Every request has a deadline; a
server that does not answer in time has its connection dropped, which fails
the requests waiting on it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ldaptor.protocols.ldap import ldaperrors
from ldaptor.protocols.ldap.distinguishedname import DistinguishedName
from ldaptor.protocols.ldap.ldapclient import LDAPClient
from ldaptor.protocols.ldap.ldapsyntax import DNNotPresentError, LDAPEntry
from twisted.internet import defer, error as neterror, protocol
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from nova.auth.errors import DirectoryError, DirectoryUnavailable
from nova.config import ConfigError

log = Logger()


class _Client(LDAPClient):
    """ldaptor's client, telling when its connection is gone."""

    def __init__(self) -> None:
        super().__init__()
        self.lost: defer.Deferred[None] = defer.Deferred()

    def connectionLost(self, reason: Any = protocol.connectionDone) -> None:  # noqa: N802
        super().connectionLost(reason)
        self.lost.callback(None)


class ReconnectingClient:
    """
    Stands in for an ldaptor C{LDAPClient} under C{LDAPEntry} objects:
    connects (and binds) when a request needs a connection and there is none.

    @param reactor: provides C{IReactorTCP} and C{IReactorTime}.
    @param timeout: seconds to connect, and seconds any one request may take.
    """

    def __init__(self, reactor: Any, host: str, port: int, bind_dn: str, bind_password: str,
                 timeout: float = 10.0) -> None:
        self._reactor = reactor
        self._host, self._port = host, port
        self._bind_dn, self._bind_password = bind_dn, bind_password
        self._timeout = timeout
        self._client: _Client | None = None
        self._waiters: list[defer.Deferred[_Client]] | None = None
        self._closed = False

    @property
    def where(self) -> str:
        """@return: C{host:port}, for messages."""
        return f"{self._host}:{self._port}"

    async def connection(self) -> _Client:
        """
        @return: a connected, bound client.
        @raise DirectoryUnavailable: the server cannot be reached, or refused the bind.
        """
        if self._closed:
            raise DirectoryUnavailable("The LDAP connection is closed")
        if self._client is not None and self._client.connected:
            return self._client
        if self._waiters is not None:  # a connection attempt is under way: share it
            waiter: defer.Deferred[_Client] = defer.Deferred()
            self._waiters.append(waiter)
            return await waiter
        self._waiters = []
        try:
            client = await self._connect()
        except BaseException:
            waiters, self._waiters = self._waiters, None
            failure = Failure()
            for w in waiters:
                w.errback(failure)
            raise
        waiters, self._waiters = self._waiters, None
        self._client = client
        for w in waiters:
            w.callback(client)
        return client

    async def _connect(self) -> _Client:
        endpoint = HostnameEndpoint(self._reactor, self._host, self._port,
                                    timeout=self._timeout)
        try:
            client = await connectProtocol(endpoint, _Client())
        except (neterror.ConnectError, OSError) as e:
            raise DirectoryUnavailable(
                f"Cannot reach the LDAP server at {self.where}: {e}") from e
        if self._bind_dn:
            try:
                await self._guarded(client, client.bind(self._bind_dn, self._bind_password))
            except ldaperrors.LDAPException as e:
                client.transport.loseConnection()
                await client.lost
                raise DirectoryUnavailable(
                    f"The LDAP server at {self.where} refused the bind as "
                    f"{self._bind_dn}: {e}") from e
            except (neterror.ConnectionLost, neterror.ConnectionDone) as e:
                raise DirectoryUnavailable(
                    f"The LDAP server at {self.where} dropped the connection") from e
        log.info("connected to LDAP server {where}", where=self.where)
        return client

    def _deadline(self, client: _Client) -> Any:
        def expire() -> None:
            log.warn("LDAP server {where} did not answer in {timeout}s; dropping the"
                     " connection", where=self.where, timeout=self._timeout)
            if client.transport is not None:
                client.transport.abortConnection()

        return self._reactor.callLater(self._timeout, expire)

    def _guarded(self, client: _Client, d: defer.Deferred) -> defer.Deferred:
        call = self._deadline(client)

        def done(result: Any) -> Any:
            if call.active():
                call.cancel()
            return result

        return d.addBoth(done)

    # -- what LDAPEntry calls ----------------------------------------------

    def send(self, op: Any, controls: Any = None) -> defer.Deferred:
        """As C{LDAPClient.send}, after (re)connecting."""

        async def go() -> Any:
            client = await self.connection()
            return await self._guarded(client, client.send(op, controls))

        return defer.Deferred.fromCoroutine(go())

    def send_multiResponse_ex(self, op: Any, controls: Any = None,  # noqa: N802
                              handler: Any = None, *args: Any, **kwargs: Any) -> defer.Deferred:
        """As C{LDAPClient.send_multiResponse_ex}, after (re)connecting."""
        outer: defer.Deferred = defer.Deferred()

        async def go() -> None:
            client = await self.connection()
            call = self._deadline(client)

            def handle(*a: Any, **kw: Any) -> bool:
                finished = handler(*a, **kw)
                if finished and call.active():
                    call.cancel()
                return finished

            def stop_clock(result: Any) -> Any:
                if call.active():
                    call.cancel()
                return result

            d = client.send_multiResponse_ex(
                op, controls, handle if handler is not None else None, *args, **kwargs)
            # with a handler, d only ever fails (the connection was lost) and the
            # handler sees the answers; without one it fires with the last answer
            d.addBoth(stop_clock).chainDeferred(outer)

        defer.Deferred.fromCoroutine(go()).addErrback(outer.errback)
        return outer

    async def close(self) -> None:
        """Unbind and disconnect; later requests fail."""
        self._closed = True
        client, self._client = self._client, None
        if client is not None and client.connected:
            client.unbind()
            await client.lost


class RemoteDirectory:
    """
    A connected remote directory.

    @ivar base: the base entry, an C{IConnectedLDAPEntry} (ldaptor's
        C{LDAPEntry}): hand it to L{nova.auth.ldapdriver.LdapDriver}.
    """

    def __init__(self, client: ReconnectingClient, base: LDAPEntry) -> None:
        self.client = client
        self.base = base

    async def close(self) -> None:
        """Disconnect."""
        await self.client.close()


def parse_url(url: str) -> tuple[str, int]:
    """
    @return: host and port of an C{ldap://host[:port]} URL (port 389 by default).
    @raise ConfigError: another scheme, or no host.
    """
    parts = urlsplit(url)
    if parts.scheme != "ldap" or not parts.hostname:
        raise ConfigError(f"Unsupported LDAP URL {url!r}: use ldap://host[:port]")
    try:
        port = parts.port or 389
    except ValueError:
        raise ConfigError(f"Invalid port in LDAP URL {url!r}") from None
    return parts.hostname, port


async def connect_remote(reactor: Any, url: str, bind_dn: str, bind_password: str,
                         base_dn: str, timeout: float = 10.0) -> RemoteDirectory:
    """
    Connect to an LDAP server, bind, and check that the base entry exists.

    @param url: C{ldap://host[:port]}.
    @param bind_dn: the DN to bind as; empty for an anonymous connection.
    @param timeout: seconds for connecting and for each request.
    @return: the L{RemoteDirectory}; its connection is remade when lost.
    @raise DirectoryUnavailable: the server cannot be reached or refused the bind.
    @raise DirectoryError: the base entry does not exist.
    @raise ConfigError: a malformed URL.
    """
    host, port = parse_url(url)
    client = ReconnectingClient(reactor, host, port, bind_dn, bind_password, timeout)
    base = LDAPEntry(client=client, dn=DistinguishedName(base_dn))
    try:
        await base.fetch("objectClass")
    except (ldaperrors.LDAPNoSuchObject, DNNotPresentError) as e:
        await client.close()
        raise DirectoryError(f"The base entry {base_dn} does not exist on {url}") from e
    except DirectoryUnavailable:
        await client.close()
        raise
    except (ldaperrors.LDAPException, neterror.ConnectionLost, neterror.ConnectionDone) as e:
        await client.close()
        raise DirectoryUnavailable(f"The LDAP server at {url} failed: {e}") from e
    return RemoteDirectory(client, base)
