"""
An in-memory compute world for unit tests: datastore, repositories, a fake
object store client, the fake driver, the fake process runner, and a
L{ComputeManager} over them, all on a L{task.Clock}.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from twisted.internet import defer, task

from nova.compute.disks import DiskMaker
from nova.compute.imagecache import ImageCache
from nova.compute.manager import ComputeManager
from nova.compute.networking import ComputeNetworking
from nova.compute.volumes import ComputeVolumes
from nova.compute.repository import InstanceRepository
from nova.datastore.memory import MemoryDatastore
from nova.datastore.records import Service
from nova.datastore.repositories import KeyPairRepository, ServiceRepository
from nova.image import records as image_records
from nova.image.records import Image, new_image_id
from nova.image.repository import ImageRepository
from nova.network.fake import FakeNetworkHost
from nova.network.fixed_ips import FixedIpRepository
from nova.network.floating_ips import FloatingIpRepository
from nova.network.manager import NetworkManager
from nova.network.networks import NetworkRepository
from nova.network.security_groups import SecurityGroupRepository
from nova.network.security_rules import RuleResolver
from nova.utils.process.fake import FakeProcessRunner
from nova.volume.repository import VolumeRepository
from nova.virt.fake import FakeDriver

#: what the fake qemu-img says of every base image
VIRTUAL_SIZE = 1024 * 1024


async def run_now(fn: Any, *args: Any) -> Any:
    """A C{run_in_thread} that runs on the spot (unit tests only)."""
    return fn(*args)


class FakeStoreClient:
    """The part of L{ObjectStoreClient} the image cache uses, over a dict."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.downloads: list[str] = []
        self.closed = False

    async def get_object_to_file(self, bucket: str, key: str, path: str,
                                 expected_etag: str | None = None) -> None:
        self.downloads.append(f"{bucket}/{key}")
        with open(path, "wb") as f:
            f.write(self.objects[f"{bucket}/{key}"])

    async def close(self) -> None:
        self.closed = True


class DirectNetworkAPI:
    """L{NetworkAPI} straight into the world's network manager (no bus)."""

    def __init__(self, world: "ComputeWorld") -> None:
        self._world = world

    async def allocate_for_instance(self, context: Any, instance_id: str) -> dict[str, Any]:
        return await self._world.network_manager.allocate_for_instance(context, instance_id)

    async def deallocate_for_instance(self, context: Any, instance_id: str) -> None:
        await self._world.network_manager.deallocate_for_instance(context, instance_id)


class ComputeWorld:
    """
    Everything a compute manager needs, in memory, rooted in C{base_dir}.

    @ivar manager: the manager of host C{host1}.
    """

    def __init__(self, base_dir: str, host: str = "host1") -> None:
        self.clock = task.Clock()
        self.clock.advance(1_000_000)
        self.store = MemoryDatastore(self.clock)
        self.instances = InstanceRepository(self.store, self.clock)
        self.images = ImageRepository(self.store, self.clock)
        self.keypairs = KeyPairRepository(self.store)
        self.volumes = VolumeRepository(self.store, self.clock, self.instances.quotas)
        self.services = ServiceRepository(self.store, self.clock)
        self.client = FakeStoreClient()
        self.driver = FakeDriver(self.clock)
        self.runner = FakeProcessRunner()
        self.runner.add_result(["qemu-img", "info"],
                               stdout=b'{"virtual-size": %d}' % VIRTUAL_SIZE)
        self.dir = Path(base_dir).absolute()
        self.cache = ImageCache(self.dir / "_base", self._client, run_now)
        self.manager = ComputeManager(
            host, self.clock, driver=self.driver, instances=self.instances,
            images=self.images, image_cache=self.cache, disks=DiskMaker(self.runner),
            instances_dir=self.dir, run_in_thread=run_now,
            kernel_cmdline="console=ttyS0", networking=self._networking(host),
            volumes=ComputeVolumes(self.volumes, self.driver))

    def _networking(self, host: str) -> ComputeNetworking:
        """One VLAN network per project from 10.1.0.0/20, served in memory."""
        self.networks = NetworkRepository(self.store, self.clock)
        self.fixed_ips = FixedIpRepository(self.store, self.clock)
        self.floating_ips = FloatingIpRepository(self.store, self.clock)
        self.security_groups = SecurityGroupRepository(self.store, self.clock)
        self.network_host = FakeNetworkHost()
        made = defer.Deferred.fromCoroutine(
            self.networks.create_networks("10.1.0.0/20", 16, 256, 100))
        assert made.called, "the in-memory datastore answers at once"
        self.network_manager = NetworkManager(
            host, self.clock, networks=self.networks, fixed_ips=self.fixed_ips,
            floating_ips=self.floating_ips, instances=self.instances,
            plumbing=self.network_host, network_api=DirectNetworkAPI(self),
            kind="vlan", metadata_port=8775)
        return ComputeNetworking(DirectNetworkAPI(self), self.network_host,
                                 RuleResolver(self.security_groups, self.instances),
                                 self.networks, self.fixed_ips, allow_project_traffic=True)

    async def _client(self) -> FakeStoreClient:
        return self.client

    async def add_image(self, image_type: str = image_records.MACHINE,
                        data: bytes | None = None, disk_format: str | None = None,
                        owner: str = "proj", public: bool = True, **changes: Any) -> Image:
        """@return: an available image whose bytes the fake store holds."""
        data = data if data is not None else os.urandom(64)
        fmt = disk_format or {"machine": "raw", "kernel": "aki", "ramdisk": "ari"}[image_type]
        image_id = new_image_id(image_type)
        changes.setdefault("state", image_records.AVAILABLE)
        record = Image(image_id=image_id, image_location=f"uploads/{image_id}",
                       image_type=image_type,
                       owner_project_id=owner, is_public=public, disk_format=fmt,
                       size=len(data), checksum=hashlib.sha256(data).hexdigest(),
                       data_location=f"nova-images/{image_id}",
                       created_at=self.clock.seconds(), **changes)
        self.client.objects[f"nova-images/{image_id}"] = data
        return await self.images.register(record)

    async def heartbeat(self, host: str, vcpus: int = 8, memory_mb: int = 16384,
                        used_vcpus: int = 0, used_mb: int = 0, zone: str = "nova") -> Service:
        """Record a compute heartbeat for C{host}, now."""
        record = Service(host=host, binary="nova-compute", topic="compute", zone=zone,
                         updated_at=self.clock.seconds(), report_count=1,
                         capacity={"vcpus": vcpus, "memory_mb": memory_mb, "disk_gb": 100,
                                   "vcpus_used": used_vcpus, "memory_mb_used": used_mb},
                         started_at=self.clock.seconds() - 100)
        return await self.services.heartbeat(record)
