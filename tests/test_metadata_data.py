"""
L{MetadataSource}: from a caller's address to its instance's metadata,
against the in-memory datastore (no reactor).
"""

from __future__ import annotations

import base64
from typing import Any

from twisted.internet import defer, task
from twisted.trial import unittest

from nova.api.metadata.data import (
    DEFAULT_ROOT_DEVICE, InstanceMetadata, MetadataSource, block_devices, canonical_address)
from nova.compute.records import Instance
from nova.compute.repository import InstanceRepository
from nova.datastore.memory import MemoryDatastore
from nova.datastore.repositories import KeyPairRepository
from nova.image.repository import ImageRepository
from nova.network.fixed_ips import FixedIpRepository
from nova.network.networks import NetworkRepository
from tests.test_compute_records import a_launch
from tests.test_datastore_records import a_key_pair
from tests.test_image_records import an_image

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMetadataTestKey alice@example"
MAC = "02:16:3e:00:00:01"


class MetadataWorld:
    """Repositories over one in-memory store, and a way to launch instances into it."""

    def __init__(self, clock: Any = None) -> None:
        self.clock = clock if clock is not None else task.Clock()
        self.store = MemoryDatastore(self.clock)
        self.instances = InstanceRepository(self.store, self.clock)
        self.fixed_ips = FixedIpRepository(self.store, self.clock)
        self.keypairs = KeyPairRepository(self.store)
        self.images = ImageRepository(self.store, self.clock)
        self.networks = NetworkRepository(self.store, self.clock)
        self._network_id: int | None = None

    def source(self, with_images: bool = True) -> MetadataSource:
        """@return: the source under test."""
        return MetadataSource(self.instances, self.fixed_ips, self.keypairs,
                              self.images if with_images else None)

    async def launch(self, key: str | None = KEY, **changes: Any) -> Instance:
        """
        @param key: the public key of the instance's key pair (C{None}: no key pair stored).
        @return: a running instance with a fixed IP of 10.0.0.0/28.
        """
        if self._network_id is None:
            net, = await self.networks.create_networks("10.0.0.0/28", 1, 16, 100)
            self._network_id = net.network_id
        changes.setdefault("state", "running")
        reservation, (instance,) = a_launch(1, **changes)
        await self.instances.create_reservation(reservation, [instance])
        fixed = await self.fixed_ips.allocate_fixed_ip(self._network_id, instance.instance_id,
                                                       instance.mac_address)
        if key is not None and instance.key_name:
            try:
                await self.keypairs.create(a_key_pair(project_id=instance.project_id,
                                                      name=instance.key_name,
                                                      public_key=key + "\n"))
            except Exception:
                pass  # several instances share the key pair
        return await self.instances.update(instance.instance_id, private_ip=fixed.address)


def run(coro: Any) -> defer.Deferred[Any]:
    return defer.Deferred.fromCoroutine(coro)


class MetadataSourceTests(unittest.TestCase):

    def setUp(self) -> None:
        self.world = MetadataWorld()

    async def test_everything_about_an_instance(self) -> None:
        image = an_image(image_location="mybucket/tiny.manifest.xml")
        await self.world.images.register(image)
        user_data = b"#!/bin/sh\necho hello\n"
        instance = await self.world.launch(
            image_id=image.image_id, kernel_id="aki-00000002", ramdisk_id="ari-00000003",
            security_groups=["default", "web"], availability_zone="zone-a",
            user_data=base64.b64encode(user_data).decode(), launch_index=0)
        md = await self.world.source().for_address(instance.private_ip)
        self.assertEqual(md, InstanceMetadata(
            instance_id=instance.instance_id, reservation_id=instance.reservation_id,
            image_id=image.image_id, kernel_id="aki-00000002", ramdisk_id="ari-00000003",
            instance_type="m1.tiny", launch_index=0, availability_zone="zone-a",
            hostname=instance.instance_id, local_ipv4=instance.private_ip, public_ipv4=None,
            security_groups=("default", "web"), public_keys=(("mykey", KEY),),
            block_devices=(("ami", "sda1"), ("root", "/dev/sda1")),
            manifest_path="mybucket/tiny.manifest.xml", user_data=user_data))

    async def test_attached_volumes_are_listed(self) -> None:
        """Attached volumes appear as ebs1, ebs2 ... in device order; attaching ones not yet."""
        from nova.volume.records import Volume, new_volume_id
        from nova.volume.repository import VolumeRepository
        volumes = VolumeRepository(self.world.store, self.world.clock, self.world.instances.quotas)
        instance = await self.world.launch(availability_zone="nova")
        ids = []
        for device in ("/dev/vdc", "/dev/sdb", "/dev/vdd"):
            now = self.world.clock.seconds()
            volume = Volume(volume_id=new_volume_id(), project_id=instance.project_id,
                            user_id="alice", size=1, availability_zone="nova",
                            created_at=now, updated_at=now)
            await volumes.create(volume)
            await volumes.update(volume.volume_id, host="vol1")
            await volumes.transition(volume.volume_id, "created")
            await volumes.attach(volume.volume_id, instance.instance_id, device)
            ids.append(volume.volume_id)
        for volume_id in ids[:2]:
            await volumes.transition(volume_id, "attached", instance_id=instance.instance_id)
        source = MetadataSource(self.world.instances, self.world.fixed_ips,
                                self.world.keypairs, self.world.images, volumes)
        md = await source.for_address(instance.private_ip)
        self.assertEqual(md.block_devices[2:], (("ebs1", "sdb"), ("ebs2", "vdc")))

    async def test_minimal_instance(self) -> None:
        instance = await self.world.launch(key_name=None)
        md = await self.world.source(with_images=False).for_address(instance.private_ip)
        assert md is not None
        self.assertEqual((md.kernel_id, md.ramdisk_id, md.public_keys, md.user_data,
                          md.manifest_path), (None, None, (), None, "(unknown)"))
        self.assertEqual(dict(md.block_devices)["root"], DEFAULT_ROOT_DEVICE)

    async def test_public_ip(self) -> None:
        instance = await self.world.launch()
        await self.world.instances.update(instance.instance_id, public_ip="192.0.2.10")
        md = await self.world.source().for_address(instance.private_ip)
        assert md is not None
        self.assertEqual(md.public_ipv4, "192.0.2.10")

    async def test_each_address_gets_its_own_instance(self) -> None:
        one = await self.world.launch()
        two = await self.world.launch()
        source = self.world.source()
        for instance in (one, two):
            md = await source.for_address(instance.private_ip)
            assert md is not None
            self.assertEqual((md.instance_id, md.local_ipv4),
                             (instance.instance_id, instance.private_ip))

    async def test_unknown_addresses(self) -> None:
        instance = await self.world.launch()
        free = "10.0.0.4" if instance.private_ip == "10.0.0.3" else "10.0.0.3"
        source = self.world.source()
        for address in (free, "10.0.1.3", "127.0.0.1", "not an address", "", "::1",
                        "10.0.0.3/32"):
            self.assertIsNone(await source.for_address(address), address)

    async def test_ipv4_mapped_address(self) -> None:
        instance = await self.world.launch()
        md = await self.world.source().for_address("::ffff:" + instance.private_ip)
        assert md is not None
        self.assertEqual(md.instance_id, instance.instance_id)

    async def test_terminated_instance_gets_nothing(self) -> None:
        instance = await self.world.launch()
        await self.world.instances.update(instance.instance_id, state="terminated")
        self.assertIsNone(await self.world.source().for_address(instance.private_ip))

    async def test_deallocated_address_gets_nothing(self) -> None:
        instance = await self.world.launch()
        await self.world.fixed_ips.lease_fixed_ip(instance.private_ip, instance.mac_address)
        await self.world.fixed_ips.deallocate_fixed_ip(instance.private_ip)  # lease still runs
        self.assertIsNone(await self.world.source().for_address(instance.private_ip))

    async def test_records_that_disagree_give_nothing(self) -> None:
        instance = await self.world.launch()
        await self.world.instances.update(instance.instance_id, private_ip="10.0.1.9")
        self.assertIsNone(await self.world.source().for_address(instance.private_ip))

    async def test_deleted_key_pair_and_image(self) -> None:
        image = an_image()
        await self.world.images.register(image)
        instance = await self.world.launch(image_id=image.image_id)
        await self.world.keypairs.delete(instance.project_id, "mykey")
        await self.world.images.deregister(image.image_id)
        md = await self.world.source().for_address(instance.private_ip)
        assert md is not None
        self.assertEqual((md.public_keys, md.manifest_path), ((), "(unknown)"))

    async def test_key_pairs_are_per_project(self) -> None:
        instance = await self.world.launch(key=None)
        await self.world.keypairs.create(a_key_pair(project_id="other", name="mykey"))
        md = await self.world.source().for_address(instance.private_ip)
        assert md is not None
        self.assertEqual(md.public_keys, ())


class HelperTests(unittest.TestCase):

    def test_block_devices(self) -> None:
        self.assertEqual(block_devices("/dev/sda1"), (("ami", "sda1"), ("root", "/dev/sda1")))
        self.assertEqual(block_devices("vda"), (("ami", "vda"), ("root", "/dev/vda")))

    def test_canonical_address(self) -> None:
        self.assertEqual(canonical_address(" 10.0.0.3 "), "10.0.0.3")
        self.assertEqual(canonical_address("::ffff:10.0.0.3"), "10.0.0.3")
        self.assertIsNone(canonical_address("fe80::1"))
        self.assertIsNone(canonical_address("10.0.0.300"))
