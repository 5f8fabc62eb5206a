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

from nova.auth.credentials import access_key_for
from nova.auth.ldapdriver import LdapDriver
from nova.auth.manager import AuthManager
from nova.auth.sharing import OpenDirectory, open_directory
from nova.compute.repository import InstanceRepository
from nova.config import NovaConfig
from nova.crypto import CertificateAuthority
from nova.datastore.redis import RedisDatastore
from nova.datastore.repositories import KeyPairRepository, ServiceRepository
from nova.image.repository import ImageRepository
from nova.network.fixed_ips import FixedIpRepository
from nova.network.floating_ips import FloatingIpRepository
from nova.network.networks import NetworkRepository
from nova.network.security_groups import SecurityGroupRepository
from nova.network.wiring import make_plumbing
from nova.objectstore.client import ObjectStoreClient
from nova.volume.repository import SnapshotRepository, VolumeRepository
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
        self._plumbing: dict[str, Any] = {}

    async def run_in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking C{fn(*args)} in the reactor's thread pool."""
        return await threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(),
                                               fn, *args)

    async def open(self) -> None:
        """Connect to Redis, the directory and the bus; load the CA."""
        try:
            await self.open_datastore()
            if self._rpc is None:
                self._rpc = make_transport(self.reactor, self.config.rpc)
                await self._rpc.start()
                self._opened.append(self._rpc.stop)
            await self._open_auth()
        except BaseException:
            await self.close()
            raise

    async def open_datastore(self) -> None:
        """Connect to Redis only (admin scripts that change records)."""
        if self._datastore is None:
            store = RedisDatastore(self.config.redis, self.reactor)
            await store.connect()
            self._datastore = store
            self._opened.append(store.close)

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

    @cached_property
    def instances(self) -> InstanceRepository:
        return InstanceRepository(self._datastore, self.reactor)

    @cached_property
    def images(self) -> ImageRepository:
        return ImageRepository(self._datastore, self.reactor)

    @cached_property
    def networks(self) -> NetworkRepository:
        return NetworkRepository(self._datastore, self.reactor)

    @cached_property
    def fixed_ips(self) -> FixedIpRepository:
        return FixedIpRepository(self._datastore, self.reactor,
                                 lease_time=self.config.network.dhcp_lease_time)

    @cached_property
    def floating_ips(self) -> FloatingIpRepository:
        return FloatingIpRepository(self._datastore, self.reactor)

    @cached_property
    def security_groups(self) -> SecurityGroupRepository:
        return SecurityGroupRepository(self._datastore, self.reactor)

    @cached_property
    def volumes(self) -> VolumeRepository:
        # the instances' quota repository: one usage hash per project
        return VolumeRepository(self._datastore, self.reactor, self.instances.quotas)

    @cached_property
    def snapshots(self) -> SnapshotRepository:
        return SnapshotRepository(self._datastore, self.reactor)

    def network_plumbing(self, netns: str) -> Any:
        """
        @param netns: the host's namespace (empty: the root namespace).
        @return: the one L{nova.network.host.NetworkHost} of that host in this
            process (nova-network and nova-compute of an all-in-one share it:
            one lock orders their changes), or an in-memory one when
            C{[network] driver = fake}.
        """
        if netns not in self._plumbing:
            self._plumbing[netns] = make_plumbing(self, netns)
        return self._plumbing[netns]

    async def service_objectstore_client(self) -> ObjectStoreClient:
        """
        @return: an S3 client signed as the cloud's admin user in the admin
            project: nova's own services (image registration, the compute
            node's image cache) read and write every bucket with it. The
            caller closes it.
        @raise nova.auth.errors.UserNotFound: the admin user does not exist
            (the all-in-one creates it on first start; C{nova-manage} elsewhere).
        """
        user = await self.auth.get_user(self.config.admin_user)
        project = await self.auth.get_project(self.config.admin_project)
        return ObjectStoreClient(self.reactor, self.s3_url, access_key_for(user, project),
                                 user.secret, self.config.region,
                                 run_in_thread=self.run_in_thread)

    @property
    def ec2_url(self) -> str:
        """@return: the EC2 endpoint clients are told about."""
        return f"http://{self.config.api.public_host}:{self.config.api.ec2_port}/services/Cloud"

    @property
    def s3_url(self) -> str:
        """@return: the object store endpoint clients are told about."""
        return f"http://{self.config.api.public_host}:{self.config.objectstore.port}"
