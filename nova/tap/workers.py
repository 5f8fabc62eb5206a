"""
The worker components: nova-scheduler and nova-compute, each built from the
process's L{NovaServer} (the all-in-one runs both).
"""

from __future__ import annotations

import random

from twisted.application.service import IService
from twisted.logger import Logger

from nova.compute.disks import DiskMaker
from nova.compute.imagecache import ImageCache
from nova.compute.manager import ComputeManager
from nova.compute.networking import ComputeNetworking
from nova.compute.aoe import AoeInitiator
from nova.compute.volumes import ComputeVolumes
from nova.compute.rpcapi import TOPIC as COMPUTE_TOPIC, ComputeAPI
from nova.config import ConfigError
from nova.network.rpcapi import NetworkAPI
from nova.network.security_rules import RuleResolver
from nova.scheduler.manager import SchedulerManager
from nova.scheduler.rpcapi import TOPIC as SCHEDULER_TOPIC
from nova.volume.rpcapi import VolumeAPI
from nova.server import NovaServer
from nova.tap.components import ClosingService, service
from nova.utils.process.runner import ProcessRunner
from nova.virt.fake import FakeDriver
from nova.virt.libvirt.driver import LibvirtDriver
from nova.virt.libvirt.host import HostLibvirtd
from nova.virt.records import HostCapacity

log = Logger()


async def scheduler_components(server: NovaServer) -> list[IService]:
    """@return: nova-scheduler: its manager on the C{scheduler} topic."""
    config = server.config
    manager = SchedulerManager(config.host, server.reactor, instances=server.instances,
                               services=server.services, compute=ComputeAPI(server.rpc),
                               policy=config.scheduler.driver,
                               down_time=config.service.service_down_time,
                               rng=random.Random(),
                               cpu_ratio=config.scheduler.cpu_allocation_ratio,
                               ram_ratio=config.scheduler.ram_allocation_ratio,
                               volumes=server.volumes, volume_api=VolumeAPI(server.rpc))
    return [service(server, manager, SCHEDULER_TOPIC)]


class _Hypervisor:
    """The compute host's driver and, when nova runs it, the host's own libvirtd."""

    def __init__(self, server: NovaServer) -> None:
        self._server = server
        self.driver: object = None
        self.daemon: object = None

    async def open(self) -> None:
        config = self._server.config
        compute = config.compute
        reactor = self._server.reactor
        instances = config.instances_dir.absolute()
        await self._server.run_in_thread(instances.mkdir, 0o755, True, True)
        if compute.driver == "fake":
            # no guest really runs: a host this large never limits a
            # control-plane test or benchmark (thousands of m1.tiny)
            self.driver = FakeDriver(reactor, HostCapacity(vcpus=1024, memory_mb=4 * 1024 ** 2,
                                                           disk_gb=100_000))
            return
        if compute.driver != "libvirt":
            raise ConfigError(f"[compute] driver = {compute.driver!r}: expected libvirt or fake")
        uri = compute.libvirt_uri
        if compute.host_netns:
            daemon = HostLibvirtd(reactor, ProcessRunner(reactor), compute.host_netns,
                                  str((config.state_dir / "hosts" / compute.host_netns).absolute()),
                                  cache_dir=compute.libvirt_cache_dir or None)
            self.daemon = daemon
            await daemon.start()
            uri = daemon.uri
        self.driver = LibvirtDriver(reactor, uri, str(instances),
                                    domain_type=compute.domain_type or None)

    async def close(self) -> None:
        driver, self.driver = self.driver, None
        if driver is not None:
            await driver.close()  # type: ignore[attr-defined]
        daemon, self.daemon = self.daemon, None
        if daemon is not None:
            keep = not self._server.config.compute.stop_guests_on_exit
            await daemon.stop(keep_guests=keep)  # type: ignore[attr-defined]


async def compute_components(server: NovaServer) -> list[IService]:
    """
    @return: nova-compute: the host's hypervisor opened (its libvirtd started
        when the host is a namespace), the guests adopted, the manager on the
        C{compute} topics.
    """
    config = server.config
    hypervisor = _Hypervisor(server)
    cache = ImageCache(config.instances_dir.absolute() / "_base",
                       server.service_objectstore_client, server.run_in_thread)

    async def close() -> None:
        await cache.close()
        await hypervisor.close()

    try:
        await hypervisor.open()
        runner = ProcessRunner(server.reactor)
        networking = ComputeNetworking(
            NetworkAPI(server.rpc), server.network_plumbing(config.compute.host_netns),
            RuleResolver(server.security_groups, server.instances), server.networks,
            server.fixed_ips, allow_project_traffic=config.network.allow_project_net_traffic)
        manager = ComputeManager(config.host, server.reactor, driver=hypervisor.driver,
                                 instances=server.instances, images=server.images,
                                 image_cache=cache, disks=DiskMaker(runner),
                                 instances_dir=config.instances_dir.absolute(),
                                 run_in_thread=server.run_in_thread,
                                 kernel_cmdline=config.compute.kernel_cmdline,
                                 networking=networking,
                                 volumes=ComputeVolumes(
                                     server.volumes, hypervisor.driver,
                                     aoe=AoeInitiator(server.reactor, server.run_in_thread)))
        await manager.init_host()
    except BaseException:
        await close()
        raise
    return [ClosingService(close), service(server, manager, COMPUTE_TOPIC)]
