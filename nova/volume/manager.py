"""
nova-volume: the storage worker (topics C{volume}, C{volume.<host>}).

It makes a volume's backing store (a sparse file, or an LVM logical volume)
and exports it (NBD, iSCSI or AoE), deletes both, and takes snapshots into
the object store and restores them into new volumes. The API and the
scheduler have already moved the records (creating, deleting, pending); the
volume host finishes the move or records why it could not. A failed create
leaves no export and no backing store behind.
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable

from twisted.logger import Logger

from nova.context import RequestContext
from nova.exception import NovaError
from nova.objectstore import errors as s3_errors
from nova.rpc.dispatcher import expose
from nova.service import Manager
from nova.volume import states
from nova.volume.point_in_time import create_copy_target
from nova.volume.snapshots import restore_snapshot, upload_snapshot

log = Logger()

#: the object store bucket snapshots go to (the admin project's, private)
SNAPSHOT_BUCKET = "nova-snapshots"


class SnapshotUnsupported(NovaError):
    """A crash-consistent copy of an attached volume needs the NBD export."""


class VolumeManager(Manager):
    """
    @param volumes: the volume records; C{snapshots} the snapshot records.
    @param backing: where volumes live (L{nova.volume.backing.IBackingStore}).
    @param exports: how they are served (L{nova.volume.exports.interface.IExportDriver}).
    @param store_client: C{async () -> ObjectStoreClient} for snapshots.
    @param copy_in_use: C{async (volume_id, target_path) -> None}: a
        point-in-time copy of an exported volume being written to (the NBD
        driver's); C{None} where the export driver cannot make one.
    @param scratch_dir: where point-in-time copies are made (then deleted).
    @param run_in_thread: runs blocking file work off the reactor thread.
    """

    binary = "nova-volume"

    def __init__(self, host: str, clock: Any, *, volumes: Any, snapshots: Any, backing: Any,
                 exports: Any, store_client: Callable[[], Awaitable[Any]],
                 copy_in_use: Callable[[str, str], Awaitable[None]] | None,
                 scratch_dir: str, run_in_thread: Callable[..., Awaitable[Any]]) -> None:
        super().__init__(host, clock)
        self._volumes = volumes
        self._snapshots = snapshots
        self._backing = backing
        self._exports = exports
        self._store_client = store_client
        self._copy_in_use = copy_in_use
        self._scratch = scratch_dir
        self._run_in_thread = run_in_thread

    @asynccontextmanager
    async def _store(self) -> AsyncIterator[Any]:
        """An object store client for one operation, closed after it."""
        client = await self._store_client()
        try:
            yield client
        finally:
            await client.close()

    async def init_host(self) -> None:
        """
        After a restart: every volume of this host exported again
        (idempotent), and what the previous run left unfinished finished: a
        delete is done again; a create is made again from scratch (what it
        had made is discarded first: a restore may have stopped halfway).
        A create or delete message still queued for this host then finds
        the volume settled and leaves it alone.
        """
        context = RequestContext.system()
        records = await self._volumes.on_host(self.host)
        await self._report_strays({v.volume_id for v in records})
        for volume in records:
            if volume.status == states.DELETING:
                log.info("{id}: a delete was interrupted: deleting it again", id=volume.volume_id)
                await self.delete_volume(context, volume.volume_id)
                continue
            if volume.status == states.CREATING:
                await self._create_again(context, volume.volume_id)
                continue
            if volume.status not in (states.AVAILABLE, states.IN_USE):
                continue
            path = await self._backing.path(volume.volume_id)
            if path is None:
                log.error("{id}: its backing store is gone", id=volume.volume_id)
                continue
            export = await self._exports.ensure(volume.volume_id, path)
            if dict(volume.export or {}) != export:
                await self._volumes.update(volume.volume_id, export=export)

    async def _report_strays(self, known: set[str]) -> None:
        """
        Name the backing stores and exports here that no volume record of
        this host knows (left by C{nova-manage volume delete} while this
        host was down, or by another cloud): they are left alone, never
        removed, since a wrong datastore would make every volume look so.
        """
        try:
            stores = set(await self._backing.list()) - known
            exports = set(await self._exports.exports()) - known
        except Exception:
            log.failure("{host}: listing the stores and exports here failed", host=self.host)
            return  # a report only: never in the way of the start
        for volume_id in sorted(stores | exports):
            log.warn("{host}: {id} has no record here ({what}): left alone; remove it by hand "
                     "if it is not wanted", host=self.host, id=volume_id,
                     what=" and ".join(w for w, found in (("backing store", stores),
                                                          ("export", exports))
                                       if volume_id in found))

    async def _create_again(self, context: RequestContext, volume_id: str) -> None:
        log.info("{id}: a create was interrupted: making it again", id=volume_id)
        try:
            await self._discard(volume_id)
        except Exception as e:
            log.failure("discarding what the interrupted create of {id} made", id=volume_id)
            await self._volumes.transition(
                volume_id, "create_failed",
                status_reason=f"create interrupted by a restart, not cleaned up: {e}")
            return
        await self.create_volume(context, volume_id)

    # -- volumes ---------------------------------------------------------------

    async def _mine(self, volume_id: str, status: str) -> Any:
        volume = await self._volumes.get(volume_id)
        if volume.host != self.host or volume.status != status:
            log.info("{id} is {status} on {host}: left alone", id=volume_id,
                     status=volume.status, host=volume.host)
            return None
        return volume

    @expose
    async def create_volume(self, context: RequestContext, volume_id: str) -> None:
        """Make the backing store (restoring the snapshot it comes from), export it."""
        volume = await self._mine(volume_id, states.CREATING)
        if volume is None:
            return
        try:
            path = await self._backing.create(volume_id, volume.size)
            if volume.snapshot_id is not None:
                await self._restore(volume, path)
            export = await self._exports.export(volume_id, path)
        except Exception as e:
            log.failure("creating {id} failed", id=volume_id)
            await self._discard(volume_id)
            await self._volumes.transition(volume_id, "create_failed",
                                           status_reason=f"create failed: {e}")
            return
        await self._volumes.transition(volume_id, "created", export=export)

    async def _restore(self, volume: Any, path: str) -> None:
        snapshot = await self._snapshots.get(volume.snapshot_id)
        async with self._store() as client:
            await restore_snapshot(client, snapshot.bucket, snapshot.object_key, path,
                                   snapshot.checksum, run_in_thread=self._run_in_thread,
                                   size=volume.size * 1024 ** 3)

    async def _discard(self, volume_id: str) -> None:
        """Remove the export and the backing store; whatever is already gone is fine."""
        try:
            await self._exports.unexport(volume_id)
        finally:
            await self._backing.delete(volume_id)

    @expose
    async def delete_volume(self, context: RequestContext, volume_id: str) -> None:
        """Withdraw the export, delete the backing store, forget the record."""
        if await self._mine(volume_id, states.DELETING) is None:
            return
        try:
            await self._discard(volume_id)
        except Exception as e:
            log.failure("deleting {id} failed", id=volume_id)
            await self._volumes.transition(volume_id, "delete_failed",
                                           status_reason=f"delete failed: {e}")
            return
        await self._volumes.delete(volume_id)

    # -- snapshots -------------------------------------------------------------

    @expose
    async def create_snapshot(self, context: RequestContext, snapshot_id: str) -> None:
        """
        Copy the volume as it is now (a point-in-time copy when a guest may
        be writing to it) and stream it into the object store.
        """
        snapshot = await self._snapshots.get(snapshot_id)
        if snapshot.status != states.PENDING:
            return
        copy: str | None = None
        try:
            volume = await self._volumes.get(snapshot.volume_id)
            source = await self._backing.path(volume.volume_id)
            if source is None:
                raise NovaError(f"the volume {volume.volume_id} has no backing store here")
            if volume.status == states.IN_USE:
                if self._copy_in_use is None:
                    raise SnapshotUnsupported(
                        f"the {self._exports.kind} export cannot make a crash-consistent "
                        "copy of an attached volume: detach it first")
                copy = os.path.join(self._scratch, f"{snapshot_id}.copy")
                await self._run_in_thread(os.makedirs, self._scratch, 0o700, True)
                await self._run_in_thread(create_copy_target, copy,
                                          await self._run_in_thread(os.path.getsize, source))
                await self._copy_in_use(volume.volume_id, copy)
                source = copy
            async with self._store() as client:
                try:
                    await client.create_bucket(SNAPSHOT_BUCKET)
                except s3_errors.BucketAlreadyOwnedByYou:
                    pass
                stored = await upload_snapshot(client, SNAPSHOT_BUCKET, snapshot_id, source,
                                               run_in_thread=self._run_in_thread)
        except Exception as e:
            log.failure("snapshot {id} failed", id=snapshot_id)
            await self._snapshots.transition(snapshot_id, "failed",
                                             status_reason=f"snapshot failed: {e}")
            return
        finally:
            if copy is not None:
                await self._run_in_thread(_remove, copy)
        await self._snapshots.transition(
            snapshot_id, "completed", bucket=SNAPSHOT_BUCKET, object_key=snapshot_id,
            checksum=stored.sha256, raw_size=stored.size, stored_size=stored.stored_bytes,
            progress="100%")

    @expose
    async def delete_snapshot(self, context: RequestContext, snapshot_id: str) -> None:
        """Remove the snapshot's object, then its record."""
        snapshot = await self._snapshots.get(snapshot_id)
        if snapshot.status != states.SNAPSHOT_DELETING:
            return
        try:
            if snapshot.bucket and snapshot.object_key:
                async with self._store() as client:
                    await client.delete_object(snapshot.bucket, snapshot.object_key)
        except Exception as e:
            log.failure("deleting snapshot {id} failed", id=snapshot_id)
            await self._snapshots.transition(snapshot_id, "delete_failed",
                                             status_reason=f"delete failed: {e}")
            return
        await self._snapshots.delete(snapshot_id)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
