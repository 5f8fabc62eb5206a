"""
Functional: volume snapshots (L{nova.volume.snapshots}) stored in and
restored from the running all-in-one's object store with nova's own S3
client, on the real reactor and its thread pool: a sparse volume with a
pattern goes up as a multipart upload and comes back byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from typing import Any, Callable

from twisted.internet import defer, threads

from nova.objectstore import errors
from nova.objectstore.client import ObjectStoreClient, ObjectStoreUnavailable
from nova.volume.snapshots import SnapshotCorrupt, restore_snapshot, upload_snapshot
from tests.support.s3 import MIB, REGION, S3Case


def write_volume(path: str, size: int) -> dict[int, bytes]:
    """
    A sparse volume: a pattern every 8 MiB (compressible), 12 MiB of noise
    (incompressible: the stream needs several parts), the rest holes.

    @return: what was written where.
    """
    pieces = {offset: b"".join(b"block at %012d, line %06d\n" % (offset, i)
                               for i in range(256 * 1024 // 32))
              for offset in range(0, size, 8 * MIB)}
    pieces[20 * MIB + 4096] = os.urandom(12 * MIB)
    pieces[size - 5] = b"last!"
    with open(path, "wb") as f:
        f.truncate(size)
        for offset, data in pieces.items():
            f.seek(offset)
            f.write(data)
    return pieces


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


class SnapshotStoreTests(S3Case):
    def setUp(self) -> None:
        super().setUp()
        from twisted.internet import reactor
        self.reactor = reactor
        self.client = ObjectStoreClient(reactor, self.alice.endpoint, self.alice.access,
                                        self.alice.secret, REGION, timeout=30)
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(self.client.close()))
        self.dir = self.mktemp()
        os.makedirs(self.dir)
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.name = self.bucket("snaps")

    async def run_in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(),
                                               fn, *args)

    def uploads_left(self) -> list[Any]:
        return self.s3.list_multipart_uploads(Bucket=self.name).get("Uploads", [])

    async def test_round_trip_64_mib_sparse(self) -> None:
        source = os.path.join(self.dir, "vol-1")
        size = 64 * MIB
        write_volume(source, size)
        stored = await upload_snapshot(self.client, self.name, "snap-1", source,
                                       run_in_thread=self.run_in_thread,
                                       chunk_size=5 * MIB)
        self.assertEqual((stored.size, stored.sha256), (size, sha256_file(source)))
        self.assertEqual(stored.parts, 3)  # 12 MiB of noise and a little: 5 + 5 + the rest
        head = await self.client.head_object(self.name, "snap-1")
        self.assertEqual((head.size, head.etag, head.content_type),
                         (stored.stored_bytes, stored.etag, "application/x-nova-snapshot"))
        self.assertEqual(head.metadata["nova-snapshot-size"], str(size))
        self.assertEqual(self.uploads_left(), [])
        # into a larger volume: the snapshot, then zeros
        target = os.path.join(self.dir, "vol-2")
        restored = await restore_snapshot(self.client, self.name, "snap-1", target,
                                          stored.sha256, run_in_thread=self.run_in_thread,
                                          size=size + 3 * MIB)
        self.assertEqual(restored, size)
        self.assertEqual(os.path.getsize(target), size + 3 * MIB)
        with open(source, "rb") as original, open(target, "rb") as copy:
            while chunk := original.read(MIB):
                self.assertEqual(copy.read(len(chunk)), chunk)
            self.assertEqual(copy.read(), bytes(3 * MIB))
        # sparse: only the 1 MiB blocks that hold data are allocated (20), not 67 MiB
        self.assertLessEqual(os.stat(target).st_blocks * 512, 23 * MIB)
        self.assertEqual(sorted(os.listdir(self.dir)), ["vol-1", "vol-2"])

    async def test_wrong_checksum_leaves_nothing(self) -> None:
        source = os.path.join(self.dir, "vol-1")
        with open(source, "wb") as f:
            f.truncate(3 * MIB)
            f.write(b"boot sector")
        stored = await upload_snapshot(self.client, self.name, "snap-1", source,
                                       run_in_thread=self.run_in_thread)
        target = os.path.join(self.dir, "vol-2")
        with self.assertRaises(SnapshotCorrupt):
            await restore_snapshot(self.client, self.name, "snap-1", target, "0" * 64,
                                   run_in_thread=self.run_in_thread)
        self.assertEqual(os.listdir(self.dir), ["vol-1"])
        # and the right one restores
        await restore_snapshot(self.client, self.name, "snap-1", target, stored.sha256,
                               run_in_thread=self.run_in_thread)
        self.assertEqual(sha256_file(target), stored.sha256)

    async def test_failed_upload_aborted(self) -> None:
        """A part that fails mid-way: no object, no upload left in the store."""
        source = os.path.join(self.dir, "vol-1")
        with open(source, "wb") as f:
            f.write(os.urandom(12 * MIB))
        real = self.client.upload_part

        async def failing(bucket: str, key: str, upload_id: str, number: int,
                          data: bytes) -> str:
            if number == 2:
                raise ObjectStoreUnavailable("the network went away")
            return await real(bucket, key, upload_id, number, data)

        self.patch(self.client, "upload_part", failing)
        with self.assertRaises(ObjectStoreUnavailable):
            await upload_snapshot(self.client, self.name, "snap-1", source,
                                  run_in_thread=self.run_in_thread, chunk_size=5 * MIB)
        self.assertEqual(self.uploads_left(), [])
        with self.assertRaises(errors.NoSuchKey):
            await self.client.head_object(self.name, "snap-1")

    async def test_no_bucket(self) -> None:
        source = os.path.join(self.dir, "vol-1")
        with open(source, "wb") as f:
            f.truncate(MIB)
        with self.assertRaises(errors.NoSuchBucket):
            await upload_snapshot(self.client, self.name + "-missing", "snap-1", source,
                                  run_in_thread=self.run_in_thread)
