"""
L{VolumeRepository} and L{SnapshotRepository}, against the in-memory
datastore and against Redis at 127.0.0.1:6379: records and indexes, quota
counted in the create transaction (concurrent creates through several clients
never exceed it), state transitions, attachments and their races.
"""

from __future__ import annotations

from typing import Any

from twisted.trial import unittest

from nova.compute.quota import QuotaRepository
from nova.compute.records import Instance
from nova.compute.repository import InstanceRepository, InvalidInstanceIDNotFound
from nova.datastore import keys
from nova.datastore.interfaces import IDatastore
from nova.exception import InvalidParameterValue
from nova.volume import states
from nova.volume.records import (
    InvalidSnapshotNotFound, InvalidVolumeIDMalformed, InvalidVolumeNotFound, Volume)
from nova.volume.repository import (
    InvalidAttachmentNotFound, InvalidVolumeZoneMismatch, SnapshotRepository,
    VolumeLimitExceeded, VolumeRepository)
from tests.test_compute_records import a_launch
from tests.test_datastore_contract import MemoryHarness, RedisHarness, run
from tests.test_datastore_repositories import RepositoryMixin
from tests.test_volume_records import a_snapshot, a_volume


class VolumeHelpers(RepositoryMixin):

    def repos(self, store: IDatastore | None = None
              ) -> tuple[VolumeRepository, SnapshotRepository, QuotaRepository]:
        store = store if store is not None else self.store
        quotas = QuotaRepository(store)
        return (VolumeRepository(store, self.clock, quotas), SnapshotRepository(store, self.clock),
                quotas)

    async def available(self, volumes: VolumeRepository, **changes: Any) -> Volume:
        """@return: a new volume, scheduled to host C{vol1} and reported created."""
        volume = await volumes.create(a_volume(**changes))
        await volumes.update(volume.volume_id, host="vol1")
        _, after = await volumes.transition(volume.volume_id, "created",
                                            export={"driver": "fake"})
        return after

    async def instance(self, state: str = "running", **changes: Any) -> Instance:
        """@return: an instance stored in C{state} on compute host C{c1}."""
        repo = InstanceRepository(self.store, self.clock)
        [made] = (await repo.create_reservation(*a_launch(1, **changes))).instances
        if state == "pending":
            return made
        _, running = await repo.transition(made.instance_id, "spawned", host="c1")
        if state == "stopped":
            await repo.transition(made.instance_id, "stop")
            _, running = await repo.transition(made.instance_id, "powered_off")
        elif state == "terminated":
            await repo.transition(made.instance_id, "terminate")
            _, running = await repo.transition(made.instance_id, "destroyed")
        return running


class VolumeRepositoryMixin(VolumeHelpers):

    # -- create, read, quota ---------------------------------------------------------

    async def test_create_get_list(self) -> None:
        volumes, _, quotas = self.repos()
        first = await volumes.create(a_volume(size=3, created_at=10))
        second = await volumes.create(a_volume(size=4, created_at=5))
        other = await volumes.create(a_volume(project_id="other", created_at=7))
        self.assertEqual(await volumes.get(first.volume_id), first)
        self.assertEqual(await volumes.get(first.volume_id, "proj"), first)
        await self.assertFails(InvalidVolumeNotFound, volumes.get(first.volume_id, "other"))
        await self.assertFails(InvalidVolumeNotFound, volumes.get("vol-0123abcd"))
        await self.assertFails(InvalidVolumeIDMalformed, volumes.get("volume-1"))
        self.assertEqual(await volumes.list("proj"), [second, first])  # oldest first
        self.assertEqual(await volumes.list(), [second, other, first])
        self.assertEqual(await volumes.get_many([first.volume_id, second.volume_id,
                                                 first.volume_id]), [first, second])
        e = await self.assertFails(InvalidVolumeNotFound, volumes.get_many(
            [first.volume_id, "vol-0123abcd", other.volume_id], "proj"))
        self.assertIn(f"vol-0123abcd, {other.volume_id}", str(e))
        used = await quotas.get_usage("proj")
        self.assertEqual((used["volumes"], used["gigabytes"], used["instances"]), (2, 7, 0))

    async def test_quota_volumes_and_gigabytes(self) -> None:
        volumes, _, quotas = self.repos()
        await quotas.set_quota("proj", "volumes", 2)
        await quotas.set_quota("proj", "gigabytes", 15)
        await volumes.create(a_volume(size=10))
        e = await self.assertFails(VolumeLimitExceeded, volumes.create(a_volume(size=6)))
        self.assertEqual(e.code, "VolumeLimitExceeded")  # type: ignore[attr-defined]
        self.assertIn("15 GiB", str(e))
        last = await volumes.create(a_volume(size=5))
        e2 = await self.assertFails(VolumeLimitExceeded, volumes.create(a_volume(size=1)))
        self.assertIn("Maximum number of volumes", str(e2))
        self.assertEqual(len(await volumes.list("proj")), 2)
        # the refused ones wrote nothing: no record, no index member
        self.assertEqual(len(await self.store.scan("volume:*")), 2)
        # giving one back makes room
        await volumes.transition(last.volume_id, "create_failed", status_reason="no host")
        await volumes.transition(last.volume_id, "delete")
        self.assertTrue(await volumes.delete(last.volume_id))
        self.assertFalse(await volumes.delete(last.volume_id))
        used = await quotas.get_usage("proj")
        self.assertEqual((used["volumes"], used["gigabytes"]), (1, 10))
        await volumes.create(a_volume(size=5))

    async def test_quota_shared_with_instances(self) -> None:
        """One usage hash: a launch and a volume create do not overwrite each other."""
        volumes, _, quotas = self.repos()
        instances = InstanceRepository(self.store, self.clock, quotas)
        await volumes.create(a_volume(size=7))
        await instances.create_reservation(*a_launch(2))
        await volumes.create(a_volume(size=1))
        used = await quotas.get_usage("proj")
        self.assertEqual((used["volumes"], used["gigabytes"], used["instances"]), (2, 8, 2))

    async def test_concurrent_creates_never_exceed_the_quota(self) -> None:
        """
        30 creates of 100 GiB through three clients (three API processes),
        every transaction reading before any writes: exactly ten fit in the
        1000 GiB quota, and the usage says so.
        """
        clients = [self.repos(await self.make_client())[0]  # type: ignore[attr-defined]
                   for _ in range(3)]

        async def attempt(repo: VolumeRepository) -> Any:
            try:
                return await repo.create(a_volume(size=100))
            except VolumeLimitExceeded as e:
                return e

        results = await self.settle([run(attempt(clients[n % 3])) for n in range(30)])
        made = [r for r in results if isinstance(r, Volume)]
        self.assertEqual(len(made), 10)
        volumes, _, quotas = self.repos()
        self.assertEqual({v.volume_id for v in await volumes.list("proj")},
                         {v.volume_id for v in made})
        self.assertEqual((await quotas.get_usage("proj"))["gigabytes"], 1000)

    async def test_interleaved_creates_in_one_process(self) -> None:
        volumes, _, quotas = self.repos(self.interleaving())
        await quotas.set_quota("proj", "volumes", 3)
        results = await self.settle([run(self._try_create(volumes)) for _ in range(5)])
        self.assertEqual(len([r for r in results if isinstance(r, Volume)]), 3)
        self.assertEqual((await quotas.get_usage("proj"))["volumes"], 3)

    @staticmethod
    async def _try_create(volumes: VolumeRepository) -> Any:
        try:
            return await volumes.create(a_volume(size=1))
        except VolumeLimitExceeded as e:
            return e

    # -- state changes ------------------------------------------------------------------

    async def test_host_index_and_updates(self) -> None:
        volumes, _, _ = self.repos()
        volume = await volumes.create(a_volume())
        self.assertEqual(await volumes.on_host("vol1"), [])
        moved = await volumes.update(volume.volume_id, host="vol1")
        self.assertEqual(await volumes.on_host("vol1"), [moved])
        self.clock.advance(5)
        moved = await volumes.update(volume.volume_id, host="vol2", display_name="data")
        self.assertEqual(moved.updated_at, self.clock.seconds())
        self.assertEqual(await volumes.on_host("vol1"), [])
        self.assertEqual(await volumes.on_host("vol2"), [moved])
        for fixed in ({"size": 20}, {"project_id": "x"}, {"volume_id": "vol-0123abcd"},
                      {"status": "available"}, {"instance_id": "i-0123abcd"}):
            await self.assertFails(ValueError, volumes.update(volume.volume_id, **fixed))
        await self.assertFails(InvalidVolumeNotFound,
                               volumes.update("vol-0123abcd", host="x"))
        # a transition cannot be sneaked past its table
        await self.assertFails(ValueError, volumes.transition(volume.volume_id, "attach"))
        await self.assertFails(ValueError, volumes.transition(volume.volume_id, "fly"))

    async def test_create_and_delete_lifecycle(self) -> None:
        volumes, _, _ = self.repos()
        volume = await self.available(volumes)
        self.assertEqual((volume.status, volume.host, dict(volume.export or {})),
                         (states.AVAILABLE, "vol1", {"driver": "fake"}))
        before, after = await volumes.transition(volume.volume_id, "created")
        self.assertIs(before, after)  # reported twice: nothing changes
        await self.assertFails(states.IncorrectState,
                               volumes.delete(volume.volume_id))  # not deleting yet
        _, deleting = await volumes.transition(volume.volume_id, "delete")
        self.assertEqual(deleting.status, states.DELETING)
        _, failed = await volumes.transition(volume.volume_id, "delete_failed",
                                             status_reason="lvremove failed")
        self.assertEqual((failed.status, failed.status_reason), (states.ERROR, "lvremove failed"))
        _, deleting = await volumes.transition(volume.volume_id, "delete")
        self.assertIsNone(deleting.status_reason)  # leaving error forgets why
        self.assertTrue(await volumes.delete(volume.volume_id))
        self.assertEqual(await volumes.on_host("vol1"), [])
        self.assertEqual(await volumes.list(), [])
        creating = await volumes.create(a_volume())
        await self.assertFails(states.IncorrectState,
                               volumes.transition(creating.volume_id, "delete"))

    async def test_restore_only_what_is_unchanged(self) -> None:
        volumes, _, _ = self.repos()
        volume = await self.available(volumes)
        before, after = await volumes.transition(volume.volume_id, "delete")
        self.assertTrue(await volumes.restore(after, before))
        self.assertEqual((await volumes.get(volume.volume_id)).status, states.AVAILABLE)
        before, after = await volumes.transition(volume.volume_id, "delete")
        await volumes.transition(volume.volume_id, "delete_failed")
        self.assertFalse(await volumes.restore(after, before))  # someone moved it on
        self.assertEqual((await volumes.get(volume.volume_id)).status, states.ERROR)

    # -- attachments -------------------------------------------------------------------------

    async def test_attach_and_detach(self) -> None:
        volumes, _, _ = self.repos()
        instance = await self.instance()
        volume = await self.available(volumes)
        self.clock.advance(3)
        before, after = await volumes.attach(volume.volume_id, instance.instance_id,
                                             "/dev/sdf")
        self.assertEqual(before, volume)
        self.assertEqual((after.status, after.attach_status, after.instance_id, after.device,
                          after.guest_device, after.attach_time),
                         (states.IN_USE, states.ATTACHING, instance.instance_id, "/dev/sdf",
                          "vdf", self.clock.seconds()))
        self.assertEqual(await volumes.on_instance(instance.instance_id), [after])
        _, attached = await volumes.transition(volume.volume_id, "attached")
        await self.assertFails(states.VolumeInUse, volumes.transition(volume.volume_id,
                                                                     "delete"))
        await self.assertFails(InvalidAttachmentNotFound, volumes.transition(
            volume.volume_id, "detach", instance_id="i-0123456789abcdef0"))
        _, detaching = await volumes.transition(volume.volume_id, "detach",
                                                instance_id=instance.instance_id)
        self.assertEqual(detaching.attach_status, states.DETACHING)
        _, detached = await volumes.transition(volume.volume_id, "detached")
        self.assertEqual((detached.status, detached.attach_status, detached.instance_id,
                          detached.device, detached.attach_time),
                         (states.AVAILABLE, states.DETACHED, None, None, None))
        self.assertEqual(await volumes.on_instance(instance.instance_id), [])
        self.assertEqual(await self.store.smembers(
            keys.volumes_of_instance(instance.instance_id)), set())

    async def test_attach_refusals(self) -> None:
        volumes, _, _ = self.repos()
        running = await self.instance()
        volume = await self.available(volumes)
        other = await self.available(volumes)
        await volumes.attach(volume.volume_id, running.instance_id, "/dev/vdc")
        # the same volume again; another volume on a device in use (any spelling)
        await self.assertFails(states.VolumeInUse, volumes.attach(
            volume.volume_id, running.instance_id, "/dev/vdd"))
        e = await self.assertFails(InvalidParameterValue, volumes.attach(
            other.volume_id, running.instance_id, "/dev/xvdc"))
        self.assertIn("already in use", str(e))
        await self.assertFails(InvalidParameterValue, volumes.attach(
            other.volume_id, running.instance_id, "/dev/vda"))
        # instances that cannot take it
        for bad, error in [(await self.instance("pending"), states.IncorrectState),
                           (await self.instance("terminated"), states.IncorrectState),
                           (await self.instance(availability_zone="zone2"),
                            InvalidVolumeZoneMismatch),
                           (await self.instance(project_id="other"),
                            InvalidInstanceIDNotFound)]:
            await self.assertFails(error, volumes.attach(other.volume_id, bad.instance_id,
                                                         "/dev/vdb"))
        await self.assertFails(InvalidInstanceIDNotFound, volumes.attach(
            other.volume_id, "i-0123456789abcdef0", "/dev/vdb"))
        creating = await volumes.create(a_volume())
        e2 = await self.assertFails(states.IncorrectState, volumes.attach(
            creating.volume_id, running.instance_id, "/dev/vdb"))
        self.assertIn("is not 'available'", str(e2))
        # none of that changed anything
        self.assertEqual(await volumes.get(other.volume_id), other)
        # a stopped instance takes one
        stopped = await self.instance("stopped")
        _, after = await volumes.attach(other.volume_id, stopped.instance_id, "/dev/vdb")
        self.assertEqual(after.attach_status, states.ATTACHING)

    async def test_concurrent_attaches_to_one_device(self) -> None:
        """Two volumes race for one device of an instance: one gets it."""
        instance = await self.instance()
        racers = [await self.available(self.repos()[0]) for _ in range(2)]
        volumes, _, _ = self.repos(self.interleaving())

        async def attempt(volume: Volume) -> Any:
            try:
                return (await volumes.attach(volume.volume_id, instance.instance_id,
                                             "/dev/vdb"))[1]
            except InvalidParameterValue as e:
                return e

        results = await self.settle([run(attempt(v)) for v in racers])
        self.assertEqual(sorted(isinstance(r, Volume) for r in results), [False, True])
        self.assertEqual(len(await volumes.on_instance(instance.instance_id)), 1)

    # -- snapshots ---------------------------------------------------------------------------

    async def test_snapshots(self) -> None:
        volumes, snapshots, _ = self.repos()
        volume = await self.available(volumes, size=12)
        # the volume's size and host are taken from the volume
        snap = await snapshots.create(a_snapshot(volume, volume_size=1, description="x"))
        self.assertEqual((snap.volume_size, snap.host, snap.status), (12, "vol1", states.PENDING))
        self.assertEqual(await snapshots.get(snap.snapshot_id, "proj"), snap)
        await self.assertFails(InvalidSnapshotNotFound, snapshots.get(snap.snapshot_id, "other"))
        self.assertEqual(await snapshots.of_volume(volume.volume_id), [snap])
        self.assertEqual(await snapshots.list("proj"), [snap])
        self.assertEqual(await snapshots.list("other"), [])
        # no delete of the volume under a pending snapshot, nor of the snapshot
        e = await self.assertFails(states.IncorrectState,
                                   volumes.transition(volume.volume_id, "delete"))
        self.assertIn("snapshot in progress", str(e))
        await self.assertFails(states.IncorrectState,
                               snapshots.transition(snap.snapshot_id, "delete"))
        await snapshots.update(snap.snapshot_id, progress="40%")
        self.clock.advance(9)
        _, done = await snapshots.transition(
            snap.snapshot_id, "completed", bucket="snapshots", object_key=snap.snapshot_id,
            checksum="b" * 64, stored_size=4096)
        self.assertEqual((done.status, done.progress, done.completed_at, done.location),
                         (states.COMPLETED, "100%", self.clock.seconds(),
                          f"snapshots/{snap.snapshot_id}"))
        await self.assertFails(ValueError, snapshots.update(snap.snapshot_id, volume_size=3))
        await self.assertFails(ValueError, snapshots.update(snap.snapshot_id, status="error"))
        # the volume may go now, and the snapshot outlives it
        await volumes.transition(volume.volume_id, "delete")
        self.assertTrue(await volumes.delete(volume.volume_id))
        self.assertEqual((await snapshots.get(snap.snapshot_id)).status, states.COMPLETED)
        before, deleting = await snapshots.transition(snap.snapshot_id, "delete")
        self.assertTrue(await snapshots.restore(deleting, before))
        await snapshots.transition(snap.snapshot_id, "delete")
        self.assertTrue(await snapshots.delete(snap.snapshot_id))
        self.assertEqual(await snapshots.list(), [])
        self.assertEqual(await snapshots.of_volume(volume.volume_id), [])

    async def test_snapshot_needs_a_usable_volume(self) -> None:
        volumes, snapshots, _ = self.repos()
        creating = await volumes.create(a_volume())
        await self.assertFails(states.IncorrectState, snapshots.create(a_snapshot(creating)))
        await self.assertFails(InvalidVolumeNotFound,
                               snapshots.create(a_snapshot(creating, project_id="other")))
        instance = await self.instance()
        in_use = await self.available(volumes)
        await volumes.attach(in_use.volume_id, instance.instance_id, "/dev/vdb")
        snap = await snapshots.create(a_snapshot(in_use))  # EC2 snapshots in-use volumes
        self.assertEqual(snap.status, states.PENDING)
        self.assertEqual(await self.store.scan("snapshot:*"),
                         [keys.snapshot(snap.snapshot_id)])

    async def test_volume_from_snapshot(self) -> None:
        volumes, snapshots, _ = self.repos()
        source = await self.available(volumes, size=8)
        snap = await snapshots.create(a_snapshot(source))
        await self.assertFails(states.IncorrectState, volumes.create(
            a_volume(size=8, snapshot_id=snap.snapshot_id)))
        await snapshots.transition(snap.snapshot_id, "completed")
        await self.assertFails(InvalidParameterValue, volumes.create(
            a_volume(size=7, snapshot_id=snap.snapshot_id)))
        await self.assertFails(InvalidSnapshotNotFound, volumes.create(
            a_volume(size=8, snapshot_id=snap.snapshot_id, project_id="other")))
        await self.assertFails(InvalidSnapshotNotFound, volumes.create(
            a_volume(size=8, snapshot_id="snap-0123abcd")))
        made = await volumes.create(a_volume(size=9, snapshot_id=snap.snapshot_id))
        self.assertEqual(made.snapshot_id, snap.snapshot_id)


class AttachRaceTests(MemoryHarness, VolumeHelpers, unittest.TestCase):
    """Races whose order only the in-memory store (on a Clock) can fix."""

    async def test_attach_loses_to_a_terminate_that_commits_first(self) -> None:
        """
        A terminate that commits while an attach is deciding (after it read
        the instance as running): the attach runs again and is refused, so
        no volume is left attached to an instance that terminate will not
        detach.
        """
        instance = await self.instance()
        volume = await self.available(self.repos()[0])
        volumes, _, _ = self.repos(self.interleaving())
        attach = run(volumes.attach(volume.volume_id, instance.instance_id, "/dev/vdb"))
        self.assertFalse(attach.called)  # paused after its first read
        # the in-memory store answers at once: this commits before the attach resumes
        instances = InstanceRepository(self.store, self.clock)
        done = run(instances.transition(instance.instance_id, "terminate"))
        self.assertTrue(done.called)
        attach.addErrback(lambda f: f.trap(states.IncorrectState))
        self.assertEqual(await self.settle([attach]), [states.IncorrectState])
        self.assertEqual((await self.repos()[0].get(volume.volume_id)).status,
                         states.AVAILABLE)


class MemoryVolumeRepositoryTests(MemoryHarness, VolumeRepositoryMixin, unittest.TestCase):
    """In memory."""


class RedisVolumeRepositoryTests(RedisHarness, VolumeRepositoryMixin, unittest.TestCase):
    """Against Redis."""
