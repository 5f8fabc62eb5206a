"""
The object graph of a nova process, built once from one configuration.

Like synapse's C{HomeServer}: every dependency (datastore, message bus,
directory, auth manager, CA, repositories) is made here and handed to the
objects that need it through their constructors. Nothing else reads the
configuration or keeps globals.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Callable, TypeVar

from twisted.internet import threads

from nova.auth.ldapdriver import LdapDriver
from nova.auth.manager import AuthManager
from nova.auth.sharing import OpenDirectory, open_directory
from nova.config import NovaConfig
from nova.crypto import CertificateAuthority
from nova.datastore.redis import RedisDatastore
from nova.datastore.repositories import KeyPairRepository, ServiceRepository
from nova.rpc import make_transport

T = TypeVar("T")


class NovaServer:
    """
    The dependencies of one nova process.

    L{open} connects what must be connected (Redis, the directory, the bus);
    L{close} undoes it. Tests pass ready-made C{datastore} and C{rpc} to use
    in-memory implementations.

    @ivar reactor: the reactor everything runs on.
    @ivar config: the configuration.
    """

    def __init__(self, reactor: Any, config: NovaConfig, *, datastore: Any = None,
                 rpc: Any = None, serve_directory: bool = False) -> None:
        self.reactor = reactor
        self.config = config
        self._datastore = datastore
        self._rpc = rpc
        self._serve_directory = serve_directory
        self._directory: OpenDirectory | None = None
        self._auth: AuthManager | None = None
        self._ca: CertificateAuthority | None = None
        self._opened: list[Callable[[], Any]] = []

    async def run_in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking C{fn(*args)} in the reactor's thread pool."""
        return await threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(),
                                               fn, *args)

    async def open(self) -> None:
        """Connect to Redis, the directory and the bus; load the CA."""
        try:
            if self._datastore is None:
                store = RedisDatastore(self.config.redis, self.reactor)
                await store.connect()
                self._datastore = store
                self._opened.append(store.close)
            if self._rpc is None:
                self._rpc = make_transport(self.reactor, self.config.rpc)
                await self._rpc.start()
                self._opened.append(self._rpc.stop)
            await self._open_auth()
        except BaseException:
            await self.close()
            raise

    async def open_auth(self) -> None:
        """Open only the directory and the CA: what the admin scripts need."""
        try:
            await self._open_auth()
        except BaseException:
            await self.close()
            raise

    async def _open_auth(self) -> None:
        self._directory = await open_directory(self.reactor, self.config,
                                               serve=self._serve_directory)
        self._opened.append(self._directory.close)
        self._auth = AuthManager(LdapDriver(self._directory.base), self.reactor)
        self._ca = await self.run_in_thread(CertificateAuthority, self.config.ca_dir)

    async def close(self) -> None:
        """Disconnect everything L{open} connected, last first."""
        while self._opened:
            result = self._opened.pop()()
            if hasattr(result, "__await__"):
                await result

    @property
    def datastore(self) -> Any:
        """@return: the L{nova.datastore.interfaces.IDatastore}."""
        return self._datastore

    @property
    def rpc(self) -> Any:
        """@return: the L{nova.rpc.interfaces.IRPCTransport}."""
        return self._rpc

    @property
    def auth(self) -> AuthManager:
        """@return: the user manager."""
        assert self._auth is not None, "NovaServer.open() first"
        return self._auth

    @property
    def ca(self) -> CertificateAuthority:
        """@return: the cloud's certificate authority."""
        assert self._ca is not None, "NovaServer.open() first"
        return self._ca

    @cached_property
    def keypairs(self) -> KeyPairRepository:
        return KeyPairRepository(self._datastore)

    @cached_property
    def services(self) -> ServiceRepository:
        return ServiceRepository(self._datastore, self.reactor)

    @property
    def ec2_url(self) -> str:
        """@return: the EC2 endpoint clients are told about."""
        return f"http://{self.config.api.public_host}:{self.config.api.ec2_port}/services/Cloud"

    @property
    def s3_url(self) -> str:
        """@return: the object store endpoint clients are told about."""
        return f"http://{self.config.api.public_host}:{self.config.objectstore.port}"
