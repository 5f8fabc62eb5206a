"""
nova-volume's manager over the in-memory datastore, real sparse files, the
in-memory export driver and an in-memory object store: create (also from a
snapshot), delete, snapshots, failures that leave nothing, and the rebuild
of exports after a restart.
"""

from __future__ import annotations

import os
from typing import Any

import attr
from twisted.trial import unittest

from nova.context import RequestContext
from nova.datastore import keys
from nova.objectstore import errors
from nova.volume import states
from nova.volume.backing import SparseFileBacking
from nova.volume.exports.fake import FakeExportDriver
from nova.volume.manager import SNAPSHOT_BUCKET, SnapshotUnsupported, VolumeManager
from nova.volume.records import Snapshot, Volume, new_snapshot_id, new_volume_id
from nova.volume.snapshot_repository import SnapshotRepository
from tests.support.compute import ComputeWorld, run_now
from tests.test_volume_snapshots import FakeStore

CTX = RequestContext.system()
GIB = 1024 ** 3


class BucketStore(FakeStore):
    """The in-memory store with the bucket, delete and close calls nova-volume makes."""

    def __init__(self) -> None:
        super().__init__()
        self.buckets: set[str] = set()
        self.closed = 0

    async def create_bucket(self, bucket: str, acl: str | None = None) -> None:
        if bucket in self.buckets:
            raise errors.BucketAlreadyOwnedByYou()
        self.buckets.add(bucket)

    async def delete_object(self, bucket: str, key: str) -> None:
        self.objects.pop((bucket, key), None)

    async def close(self) -> None:
        self.closed += 1


class RefusingExports(FakeExportDriver):
    async def export(self, volume_id: str, path: str) -> dict[str, Any]:
        raise OSError("the export daemon is gone")


class VolumeManagerTests(unittest.TestCase):

    def setUp(self) -> None:
        self.world = ComputeWorld(self.mktemp())
        self.base = os.path.abspath(self.mktemp())
        os.makedirs(self.base)
        self.snapshots = SnapshotRepository(self.world.store, self.world.clock)
        self.backing = SparseFileBacking(run_now, os.path.join(self.base, "files"))
        self.exports = FakeExportDriver("nbd", os.path.join(self.base, "exports"))
        self.store = BucketStore()
        self.manager = self.make_manager(self.exports)

    def make_manager(self, exports: Any) -> VolumeManager:
        async def client() -> BucketStore:
            return self.store
        return VolumeManager("vol1", self.world.clock, volumes=self.world.volumes,
                             snapshots=self.snapshots, backing=self.backing, exports=exports,
                             store_client=client, copy_in_use=None,
                             scratch_dir=os.path.join(self.base, "scratch"),
                             run_in_thread=run_now)

    async def creating(self, size: int = 1, snapshot_id: str | None = None) -> str:
        now = self.world.clock.seconds()
        volume = Volume(volume_id=new_volume_id(), project_id="proj", user_id="alice",
                        size=size, availability_zone="nova", snapshot_id=snapshot_id,
                        created_at=now, updated_at=now)
        await self.world.volumes.create(volume)
        await self.world.volumes.update(volume.volume_id, host="vol1")
        return volume.volume_id

    async def available(self) -> tuple[str, str]:
        volume_id = await self.creating()
        await self.manager.create_volume(CTX, volume_id)
        path = await self.backing.path(volume_id)
        assert path is not None
        return volume_id, path

    async def test_create_makes_and_exports(self) -> None:
        volume_id, path = await self.available()
        volume = await self.world.volumes.get(volume_id)
        self.assertEqual(volume.status, "available")
        self.assertEqual(dict(volume.export), self.exports.exported[volume_id][1])
        self.assertEqual(os.path.getsize(path), GIB)
        self.assertLess(os.stat(path).st_blocks * 512, 1024 * 1024)  # sparse

    async def test_failed_create_leaves_nothing(self) -> None:
        manager = self.make_manager(RefusingExports("nbd", os.path.join(self.base, "x")))
        volume_id = await self.creating()
        await manager.create_volume(CTX, volume_id)
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        volume = await self.world.volumes.get(volume_id)
        self.assertEqual(volume.status, "error")
        self.assertIn("the export daemon is gone", volume.status_reason)
        self.assertIsNone(await self.backing.path(volume_id))

    async def test_delete_removes_everything(self) -> None:
        volume_id, path = await self.available()
        await self.world.volumes.transition(volume_id, "delete")
        await self.manager.delete_volume(CTX, volume_id)
        self.assertFalse(os.path.exists(path))
        self.assertNotIn(volume_id, self.exports.exported)
        self.assertEqual(await self.world.volumes.list(), [])

    async def snapshot_of(self, volume_id: str) -> str:
        now = self.world.clock.seconds()
        snapshot = Snapshot(snapshot_id=new_snapshot_id(), volume_id=volume_id,
                            project_id="proj", user_id="alice", volume_size=1,
                            created_at=now, updated_at=now)
        await self.snapshots.create(snapshot)
        await self.manager.create_snapshot(CTX, snapshot.snapshot_id)
        return snapshot.snapshot_id

    async def test_snapshot_and_restore(self) -> None:
        volume_id, path = await self.available()
        with open(path, "r+b") as f:
            f.seek(300 * 1024 * 1024)
            f.write(b"nova volume pattern" * 1000)
        snapshot_id = await self.snapshot_of(volume_id)
        snapshot = await self.snapshots.get(snapshot_id)
        self.assertEqual((snapshot.status, snapshot.progress, snapshot.raw_size),
                         ("completed", "100%", GIB))
        self.assertIn((SNAPSHOT_BUCKET, snapshot_id), self.store.objects)
        restored = await self.creating(size=2, snapshot_id=snapshot_id)
        await self.manager.create_volume(CTX, restored)
        self.assertEqual((await self.world.volumes.get(restored)).status, "available")
        new_path = await self.backing.path(restored)
        self.assertEqual(os.path.getsize(new_path), 2 * GIB)
        with open(new_path, "rb") as f:
            f.seek(300 * 1024 * 1024)
            self.assertEqual(f.read(19 * 1000), b"nova volume pattern" * 1000)
        self.assertEqual(self.store.closed, 2)  # every client it opened

    async def test_attached_volume_needs_a_point_in_time_copy(self) -> None:
        """Without a copy that is point-in-time, an attached volume's snapshot fails."""
        volume_id, _ = await self.available()
        record = await self.world.volumes.get(volume_id)
        # attached (the compute side is not part of this test): the record as it is then
        attached = attr.evolve(record, status=states.IN_USE, attach_status=states.ATTACHED,
                               instance_id="i-0123456789abcdef0", device="/dev/vdb")
        await self.world.store.set(keys.volume(volume_id), attached.to_json())
        snapshot_id = await self.snapshot_of(volume_id)
        snapshot = await self.snapshots.get(snapshot_id)
        self.assertEqual(len(self.flushLoggedErrors(SnapshotUnsupported)), 1)
        self.assertEqual(snapshot.status, "error")
        self.assertIn("crash-consistent", snapshot.status_reason)

    async def test_delete_snapshot(self) -> None:
        volume_id, _ = await self.available()
        snapshot_id = await self.snapshot_of(volume_id)
        await self.snapshots.transition(snapshot_id, "delete")
        await self.manager.delete_snapshot(CTX, snapshot_id)
        self.assertNotIn((SNAPSHOT_BUCKET, snapshot_id), self.store.objects)
        self.assertEqual(await self.snapshots.list(), [])

    async def test_restart_makes_an_interrupted_create_again(self) -> None:
        """What the interrupted create left (a half-restored file) goes; then it is made."""
        volume_id = await self.creating()
        path = await self.backing.create(volume_id, 1)
        with open(path, "r+b") as f:
            f.write(b"half of a restore")
        fresh = FakeExportDriver("nbd", os.path.join(self.base, "exports"))
        await self.make_manager(fresh).init_host()
        volume = await self.world.volumes.get(volume_id)
        self.assertEqual(volume.status, "available")
        self.assertEqual(dict(volume.export), fresh.exported[volume_id][1])
        with open(path, "rb") as f:
            self.assertEqual(f.read(17), b"\0" * 17)
        await self.manager.create_volume(CTX, volume_id)  # the queued message: no-op
        self.assertEqual((await self.world.volumes.get(volume_id)).status, "available")

    async def test_restart_finishes_an_interrupted_delete(self) -> None:
        volume_id, path = await self.available()
        await self.world.volumes.transition(volume_id, "delete")
        fresh = FakeExportDriver("nbd", os.path.join(self.base, "exports"))
        await self.make_manager(fresh).init_host()
        self.assertFalse(os.path.exists(path))
        self.assertEqual(await self.world.volumes.list(), [])

    async def test_restart_names_strays_and_leaves_them(self) -> None:
        """Storage no record knows is reported at start, never removed."""
        stray = new_volume_id()
        path = await self.backing.create(stray, 1)
        logged: list[dict] = []
        from twisted.logger import globalLogPublisher
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        await self.manager.init_host()
        self.assertTrue(os.path.exists(path))
        warnings = [e for e in logged if e.get("id") == stray]
        self.assertEqual([e["what"] for e in warnings], ["backing store"])

    async def test_restart_exports_again(self) -> None:
        volume_id, path = await self.available()
        fresh = FakeExportDriver("nbd", os.path.join(self.base, "exports"))
        await self.make_manager(fresh).init_host()
        self.assertEqual(fresh.exported[volume_id][0], path)
