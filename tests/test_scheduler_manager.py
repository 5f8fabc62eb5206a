"""L{SchedulerManager}: choosing a host from heartbeats and claims, and handing work on."""

from __future__ import annotations

import os
import random
from typing import Any

from twisted.trial import unittest

from nova.compute import states
from nova.context import RequestContext
from nova.exception import NotAuthorized
from nova.scheduler.hosts import parse_placement
from nova.scheduler.manager import SchedulerManager
from tests.support.compute import ComputeWorld
from tests.test_compute_records import a_launch

CTX = RequestContext.system()


class RecordingCompute:
    """A L{ComputeAPI} that records the spawns it is asked to cast."""

    def __init__(self) -> None:
        self.spawns: list[tuple[str, str]] = []

    async def run_instance(self, context: Any, host: str, instance_id: str) -> None:
        self.spawns.append((host, instance_id))


class SchedulerTests(unittest.TestCase):

    def setUp(self) -> None:
        self.world = ComputeWorld(self.mktemp())
        os.makedirs(self.world.dir)
        self.compute = RecordingCompute()

    def scheduler(self, policy: str = "simple") -> SchedulerManager:
        return SchedulerManager("sched", self.world.clock, instances=self.world.instances,
                                services=self.world.services, compute=self.compute,
                                policy=policy, down_time=60, rng=random.Random(7))

    async def pending(self, n: int = 1, instance_type: str = "m1.tiny") -> list[str]:
        reservation, instances = a_launch(n, instance_type=instance_type,
                                          created_at=self.world.clock.seconds())
        await self.world.instances.create_reservation(reservation, instances)
        return [i.instance_id for i in instances]

    async def test_places_and_casts(self) -> None:
        await self.world.heartbeat("h1", zone="east")
        [iid] = await self.pending()
        host = await self.scheduler().run_instance(CTX, iid)
        self.assertEqual(host, "h1")
        self.assertEqual(self.compute.spawns, [("h1", iid)])
        instance = await self.world.instances.get(iid)
        self.assertEqual((instance.host, instance.availability_zone), ("h1", "east"))

    async def test_claims_spread_a_burst(self) -> None:
        """Four launches between two heartbeats land two and two on equal hosts."""
        await self.world.heartbeat("h1")
        await self.world.heartbeat("h2")
        scheduler = self.scheduler()
        for iid in await self.pending(4):
            await scheduler.run_instance(CTX, iid)
        hosts = sorted(h for h, _ in self.compute.spawns)
        self.assertEqual(hosts, ["h1", "h1", "h2", "h2"])

    async def test_claims_end_with_a_newer_heartbeat(self) -> None:
        await self.world.heartbeat("h1")
        await self.world.heartbeat("h2", used_vcpus=1)
        scheduler = self.scheduler()
        [first, second] = await self.pending(2)
        await scheduler.run_instance(CTX, first)  # h1 (less used), claimed
        self.world.clock.advance(1)
        # h1 now reports its instance itself; h2 freed its CPU meanwhile
        await self.world.heartbeat("h1", used_vcpus=1)
        await self.world.heartbeat("h2", used_vcpus=0)
        await scheduler.run_instance(CTX, second)
        self.assertEqual([h for h, _ in self.compute.spawns], ["h1", "h2"])

    async def test_stale_host_gets_nothing(self) -> None:
        await self.world.heartbeat("old")
        self.world.clock.advance(120)
        await self.world.heartbeat("fresh", used_vcpus=7)
        [iid] = await self.pending()
        self.assertEqual(await self.scheduler().run_instance(CTX, iid), "fresh")

    async def test_no_room_terminates_with_reason(self) -> None:
        await self.world.heartbeat("small", vcpus=1, memory_mb=256)
        [iid] = await self.pending()
        self.assertIsNone(await self.scheduler("chance").run_instance(CTX, iid))
        instance = await self.world.instances.get(iid)
        self.assertEqual((instance.state, instance.state_reason),
                         (states.TERMINATED, states.INSUFFICIENT_CAPACITY))
        self.assertEqual(self.compute.spawns, [])
        self.assertEqual((await self.world.instances.quotas.get_usage("proj"))["instances"], 0)

    async def test_forced_host_and_zone(self) -> None:
        await self.world.heartbeat("h1", zone="east")
        await self.world.heartbeat("h2", zone="west", used_vcpus=5)
        [a, b] = await self.pending(2)
        scheduler = self.scheduler()
        self.assertEqual(await scheduler.run_instance(CTX, a, zone="west"), "h2")
        self.assertEqual(await scheduler.run_instance(CTX, b, forced_host="h2"), "h2")

    async def test_only_pending_unplaced_instances(self) -> None:
        await self.world.heartbeat("h1")
        [iid] = await self.pending()
        await self.world.instances.transition(iid, "terminate")
        self.assertIsNone(await self.scheduler().run_instance(CTX, iid))
        self.assertEqual(self.compute.spawns, [])

    def test_unknown_policy(self) -> None:
        self.assertRaises(ValueError, self.scheduler, "roulette")

    def test_placement_host_is_for_admins(self) -> None:
        self.assertEqual(parse_placement("nova:h1", True), ("nova", "h1"))
        self.assertRaises(NotAuthorized, parse_placement, "nova:h1", False)


class OvercommitTests(unittest.TestCase):

    async def test_allocation_ratios(self) -> None:
        """A 2-CPU host takes 10 one-vCPU instances with a CPU ratio of 16, not 3."""
        world = ComputeWorld(self.mktemp())
        os.makedirs(world.dir)
        await world.heartbeat("h1", vcpus=2, memory_mb=8192)
        compute = RecordingCompute()
        scheduler = SchedulerManager("sched", world.clock, instances=world.instances,
                                     services=world.services, compute=compute,
                                     cpu_ratio=16.0, ram_ratio=1.0)
        reservation, instances = a_launch(10, created_at=world.clock.seconds())
        await world.instances.create_reservation(reservation, instances)
        for instance in instances:
            await scheduler.run_instance(CTX, instance.instance_id)
        self.assertEqual(len(compute.spawns), 10)
        # the host now reports them; with ratio 1 a 2-CPU host is full
        await world.heartbeat("h1", vcpus=2, memory_mb=8192, used_vcpus=10, used_mb=5120)
        strict = SchedulerManager("sched", world.clock, instances=world.instances,
                                  services=world.services, compute=compute)
        reservation, instances = a_launch(1, project_id="another",
                                          created_at=world.clock.seconds())
        await world.instances.create_reservation(reservation, instances)
        self.assertIsNone(await strict.run_instance(CTX, instances[0].instance_id))
        self.assertEqual(len(compute.spawns), 10)


class RecordingVolumeAPI:
    """A L{VolumeAPI} that records the creations it is asked to cast."""

    def __init__(self) -> None:
        self.created: list[tuple[str, str]] = []

    async def create_volume_on(self, context: Any, host: str, volume_id: str) -> None:
        self.created.append((host, volume_id))


class VolumeSchedulingTests(unittest.TestCase):
    """A new volume goes to the live volume host of its zone holding the fewest GiB."""

    def setUp(self) -> None:
        from nova.volume.repository import VolumeRepository
        self.world = ComputeWorld(self.mktemp())
        self.volumes = VolumeRepository(self.world.store, self.world.clock,
                                        self.world.instances.quotas)
        self.api = RecordingVolumeAPI()
        self.scheduler = SchedulerManager(
            "sched", self.world.clock, instances=self.world.instances,
            services=self.world.services, compute=RecordingCompute(), down_time=60,
            volumes=self.volumes, volume_api=self.api)

    async def volume_host(self, host: str, zone: str = "nova") -> None:
        from nova.datastore.records import Service
        now = self.world.clock.seconds()
        await self.world.services.heartbeat(Service(
            host=host, binary="nova-volume", topic="volume", zone=zone, updated_at=now,
            report_count=1, capacity={}, started_at=now - 10))

    async def new_volume(self, size: int) -> str:
        from nova.volume.records import Volume, new_volume_id
        now = self.world.clock.seconds()
        volume = Volume(volume_id=new_volume_id(), project_id="proj", user_id="alice",
                        size=size, availability_zone="nova", created_at=now, updated_at=now)
        await self.volumes.create(volume)
        return volume.volume_id

    async def test_fewest_gigabytes_wins(self) -> None:
        await self.volume_host("v1")
        await self.volume_host("v2")
        await self.volume_host("elsewhere", zone="east")
        big = await self.new_volume(50)
        self.assertEqual(await self.scheduler.create_volume(CTX, big), "v1")
        small = await self.new_volume(1)
        self.assertEqual(await self.scheduler.create_volume(CTX, small), "v2")
        self.assertEqual(self.api.created, [("v1", big), ("v2", small)])
        self.assertEqual((await self.volumes.get(small)).host, "v2")
        # already placed: nothing happens
        self.assertIsNone(await self.scheduler.create_volume(CTX, small))

    async def test_no_volume_host_is_an_error(self) -> None:
        volume_id = await self.new_volume(1)
        self.assertIsNone(await self.scheduler.create_volume(CTX, volume_id))
        volume = await self.volumes.get(volume_id)
        self.assertEqual((volume.status, volume.status_reason),
                         ("error", "no volume host is available"))
        self.assertEqual(self.api.created, [])
