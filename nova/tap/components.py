"""
The components a nova process can run, each built from the process's
L{NovaServer}: what C{nova-api}, C{nova-allinone} (and later the others)
put together.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Sequence

from twisted.application.service import IService, Service
from twisted.internet import defer
from twisted.logger import Logger
from twisted.web import server as web

from nova.api.ec2.admin import AdminController
from nova.api.ec2.cloud import CloudController
from nova.api.ec2.handler import Ec2Handler
from nova.api.ec2.resource import build_root
from nova.api.http import bounded_request_factory
from nova.api.metadata.service import metadata_services
from nova.auth.credentials import Endpoints
from nova.image.registrar import ImageRegistrar
from nova.image.wiring import RegistrarService, image_registrar
from nova.objectstore.http.site import build_site
from nova.objectstore.store import FilesystemObjectStore
from nova.server import NovaServer
from nova.compute.repository import InstanceRepository
from nova.service import Manager, NovaService, PeriodicTask
from nova.utils.listening import ListeningService

log = Logger()


class ApiManager(Manager):
    """
    The API server's face on the bus (topic C{cloud}, as in 2010 nova); its
    periodic task forgets instances terminated more than an hour ago.
    """

    binary = "nova-api"

    def __init__(self, host: str, clock: Any, instances: InstanceRepository) -> None:
        super().__init__(host, clock)
        self._instances = instances

    def periodic_tasks(self) -> Sequence[PeriodicTask]:
        return (self.purge_terminated,)

    async def purge_terminated(self) -> None:
        """Remove the records of instances terminated more than an hour ago."""
        removed = await self._instances.purge_terminated()
        if removed:
            log.info("forgot {n} instance(s) terminated over an hour ago", n=removed)


def endpoints_of(server: NovaServer) -> Endpoints:
    """@return: the URLs credentials made by this process name."""
    return Endpoints(ec2_url=server.ec2_url, s3_url=server.s3_url, region=server.config.region)


def admin_controller(server: NovaServer) -> AdminController:
    """@return: the admin API's controller (also used for first-start credentials)."""
    return AdminController(server.auth, server.ca, server.services, endpoints_of(server),
                           server.run_in_thread, server.config.service.service_down_time)


def api_site(server: NovaServer, registrar: ImageRegistrar) -> web.Site:
    """@return: the EC2 API's web site: C{/services/Cloud}, C{/services/Admin}, C{/}."""
    config = server.config
    cloud = CloudController(server, registrar)
    cloud_handler = Ec2Handler(server.auth, cloud.actions(), server.reactor,
                               config.api.max_clock_skew)
    admin_handler = Ec2Handler(server.auth, admin_controller(server).actions(), server.reactor,
                               config.api.max_clock_skew, known_actions=frozenset())
    site = web.Site(build_root(cloud_handler, admin_handler))
    site.requestFactory = bounded_request_factory(config.api.max_body)
    site.noisy = False
    return site


def service(server: NovaServer, manager: Manager, topic: str | None) -> NovaService:
    """@return: C{manager} as a service: on the bus, with heartbeats and periodic tasks."""
    config = server.config
    return NovaService(manager=manager, topic=topic, zone=config.zone, rpc=server.rpc,
                       services=server.services, clock=server.reactor,
                       report_interval=config.service.report_interval,
                       periodic_interval=config.service.periodic_interval)


async def api_components(server: NovaServer) -> list[IService]:
    """
    @return: nova-api: the image registrar (it works in this process), the
        EC2 and admin API listener, its service record and the metadata
        service (TCP for guests that reach it directly, the unix socket for
        the network hosts' proxies).
    """
    config = server.config
    registrar = image_registrar(server)
    listener = ListeningService(server.reactor, config.api.listen, config.api.ec2_port,
                                api_site(server, registrar), name="nova-api (EC2)")
    return [RegistrarService(registrar),
            service(server, ApiManager(config.host, server.reactor, server.instances), "cloud"),
            listener, *metadata_services(server)]




class ObjectStoreManager(Manager):
    """The object store's face on the bus (topic C{objectstore})."""

    binary = "nova-objectstore"


class ClosingService(Service):
    """
    Runs C{close} when the process stops: listed before the services that use
    what it closes, it stops after them.
    """

    def __init__(self, close: Callable[[], Awaitable[Any]]) -> None:
        self._close = close

    def stopService(self) -> defer.Deferred[None]:
        super().stopService()
        return defer.Deferred.fromCoroutine(self._closing())

    async def _closing(self) -> None:
        await self._close()


async def objectstore_components(server: NovaServer) -> list[IService]:
    """@return: nova-objectstore: the store (opened, recovered) and its S3 listener."""
    config = server.config
    store = FilesystemObjectStore(config.objectstore_dir, server.datastore, server.reactor,
                                  server.run_in_thread, config.objectstore.max_object_size)
    await store.open()
    site = build_site(store, server.auth, server.reactor, config.objectstore,
                      server.run_in_thread, region=config.region,
                      max_skew=config.api.max_clock_skew)
    listener = ListeningService(server.reactor, config.objectstore.listen,
                                config.objectstore.port, site, name="nova-objectstore (S3)")
    return [ClosingService(store.close),
            service(server, ObjectStoreManager(config.host, server.reactor), "objectstore"),
            listener]
