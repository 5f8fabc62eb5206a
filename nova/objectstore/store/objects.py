"""
Objects: committing a written body (seal, rename into place, index), and
the reads, deletes, copies and ACL changes of one object.

The order of operations is what keeps a crash from showing a partial
object: a body is durable with its header before it is renamed into place
(L{nova.objectstore.store.installer}, which does that for many PUTs at
once), and the index is updated after the rename (a PUT) or after the
unlink (a DELETE). The renames and unlinks of one key are ordered by a lock
in this process, so the index entry of a key always describes the last
rename; an install holds its bucket in use until its index entry is
written, so a bucket delete never slips in between.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Callable

from twisted.internet.interfaces import IReactorTime

from nova.objectstore import errors
from nova.objectstore.interfaces import NewObject, ObjectInfo
from nova.objectstore.store.buckets import Buckets
from nova.objectstore.store.concurrency import KeyedLocks, RunInThread
from nova.objectstore.store.index import ObjectIndex
from nova.objectstore.store.durability import GroupSync
from nova.objectstore.store.installer import Installer, NotDurable
from nova.objectstore.store.layout import Layout, remove
from nova.objectstore.store.names import check_acl, check_key, is_key
from nova.objectstore.store.objectfile import object_header
from nova.objectstore.store.reader import ReadHandle, read_info
from nova.objectstore.store.writer import FileWriter


class Objects:
    """The object operations of the store (see L{nova.objectstore.interfaces.IObjectStore})."""

    def __init__(self, layout: Layout, buckets: Buckets, index: ObjectIndex,
                 clock: IReactorTime, run_in_thread: RunInThread, locks: KeyedLocks,
                 new_writer: Callable[[str], FileWriter],
                 on_index_failure: Callable[[], None]) -> None:
        """
        @param new_writer: makes a writer for a bucket (copies use it).
        @param on_index_failure: called when a file changed but the index
            could not follow (the datastore failed): the store then reconciles
            at its next start.
        """
        self._layout = layout
        self._buckets = buckets
        self._index = index
        self._clock = clock
        self._run = run_in_thread
        self._locks = locks
        self._new_writer = new_writer
        self._on_index_failure = on_index_failure
        self._durable = GroupSync(layout.root, run_in_thread)
        self._installer = Installer(layout.root, layout.objects, run_in_thread)

    # -- commits -----------------------------------------------------------------

    def describe(self, bucket: str, key: str, new: NewObject, size: int, etag: str,
                 last_modified: float | None = None) -> ObjectInfo:
        """@return: the L{ObjectInfo} of a new version of C{bucket/key}."""
        return ObjectInfo(bucket=bucket, key=key, size=size, etag=etag,
                          last_modified=self._clock.seconds() if last_modified is None
                          else last_modified,
                          content_type=new.content_type, headers=dict(new.headers),
                          metadata=dict(new.metadata), owner=new.owner, acl=new.acl)

    async def commit(self, writer: FileWriter, bucket: str, key: str,
                     new: NewObject) -> ObjectInfo:
        """See L{IObjectStore.commit_object}."""
        try:
            check_key(key)
            check_acl(new.acl)
            writer.begin_commit()
        except BaseException:
            writer.abort()
            raise
        try:
            _, incarnation = await self._buckets.get_with_incarnation(bucket)
        except BaseException:
            await self._run(writer.discard_sync)
            raise
        info = self.describe(bucket, key, new, writer.size, writer.md5_hex())
        return await self.install(writer, object_header(info, writer.sha256_or_none()), info,
                                  incarnation)

    async def install(self, writer: FileWriter, header: dict[str, Any], info: ObjectInfo,
                      incarnation: str, locked: bool = False) -> ObjectInfo:
        """
        Seal a writer (after L{FileWriter.begin_commit}) with C{header}, rename
        it into place as C{info}'s object and index it.

        The bucket is held in use from the check that it is still the
        creation the caller saw until the index entry is written, so a
        bucket delete comes before the check (which then refuses) or after
        the entry (and finds the bucket not empty): the index write itself
        needs no check in the datastore, and is one round trip.

        @param incarnation: the creation of the bucket the caller checked.
        @param locked: the caller holds the bucket in use and then the key's
            lock already (always in that order: a delete of the bucket waits
            for the holders, who must not wait for each other's keys).
        @raise NoSuchBucket: the bucket was deleted meanwhile (nothing is left).
        """
        if locked:
            await self._checked_place(writer, header, info, incarnation)
            return info
        async with self._buckets.in_use(info.bucket):
            async with self._locks.hold(("object", info.bucket, info.key)):
                await self._checked_place(writer, header, info, incarnation)
        return info

    async def _checked_place(self, writer: FileWriter, header: dict[str, Any],
                             info: ObjectInfo, incarnation: str) -> None:
        try:
            _, current = await self._buckets.get_with_incarnation(info.bucket)
            if current != incarnation:
                raise errors.NoSuchBucket(f"bucket {info.bucket} was deleted meanwhile")
        except BaseException:
            await self._run(writer.discard_sync)
            raise
        await self._place(writer, header, info)

    async def _place(self, writer: FileWriter, header: dict[str, Any],
                     info: ObjectInfo) -> None:
        path = self._layout.object_path(info.bucket, info.key)
        try:
            # the header into the page cache here; durability in a batch
            seal = None if writer.write_header(header) else partial(writer.seal_sync, header)
            await self._installer.install(writer.path, path, seal)
        except NotDurable:
            writer.committed()
            self._on_index_failure()  # in place, not indexed: the next start reconciles
            raise
        except BaseException as e:
            await self._run(writer.discard_sync)
            if not isinstance(e, OSError):
                self._on_index_failure()  # an unexpected failure: placed or not?
            raise
        writer.committed()
        try:
            await self._index.add(info)
        except BaseException:
            self._on_index_failure()
            raise

    # -- reads -----------------------------------------------------------------------

    def _path(self, bucket: str, key: str) -> Path | None:
        return self._layout.object_path(bucket, key) if is_key(key) else None

    async def _missing(self, bucket: str, key: str) -> Exception:
        await self._buckets.get(bucket)  # NoSuchBucket first
        return errors.NoSuchKey(f"no object {key!r} in bucket {bucket}")

    async def head(self, bucket: str, key: str) -> ObjectInfo:
        """See L{IObjectStore.head_object}."""
        path = self._path(bucket, key)
        info = read_info(path) if path is not None else None
        if info is None or info.bucket != bucket or info.key != key:
            raise await self._missing(bucket, key)
        return info

    async def open(self, bucket: str, key: str) -> ReadHandle:
        """See L{IObjectStore.open_object}."""
        path = self._path(bucket, key)
        handle = ReadHandle.open(path) if path is not None else None
        if handle is None:
            raise await self._missing(bucket, key)
        if handle.info.bucket != bucket or handle.info.key != key:
            handle.close()
            raise await self._missing(bucket, key)
        return handle

    # -- changes ---------------------------------------------------------------------

    async def delete(self, bucket: str, key: str) -> bool:
        """See L{IObjectStore.delete_object}."""
        await self._buckets.get(bucket)
        path = self._path(bucket, key)
        if path is None:
            return False
        async with self._locks.hold(("object", bucket, key)):
            existed: bool = await self._run(remove, path, False)
            if existed:
                await self._durable.sync()
            try:
                await self._index.remove(bucket, key)
            except BaseException:
                self._on_index_failure()
                raise
        return existed

    async def copy(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str,
                   new: NewObject) -> ObjectInfo:
        """See L{IObjectStore.copy_object}."""
        check_key(dst_key)
        check_acl(new.acl)
        source = await self.open(src_bucket, src_key)
        try:
            _, incarnation = await self._buckets.get_with_incarnation(dst_bucket)
            writer = self._new_writer(dst_bucket)
            try:
                await self._run(writer.copy_from, source.fileno(), source.data_offset,
                                source.info.size)
                writer.begin_commit()
            except BaseException:
                await self._run(writer.discard_sync)
                raise
        finally:
            source.close()
        info = self.describe(dst_bucket, dst_key, new, writer.size, writer.md5_hex())
        return await self.install(writer, object_header(info, writer.sha256_or_none()), info,
                                  incarnation)

    async def set_acl(self, bucket: str, key: str, acl: str) -> ObjectInfo:
        """
        See L{IObjectStore.set_object_acl}. The ACL is part of the object's
        header, so the object is rewritten (a kernel copy of the body, then a
        rename, as any commit): never a header changed in place.
        """
        check_acl(acl)
        _, incarnation = await self._buckets.get_with_incarnation(bucket)
        async with self._buckets.in_use(bucket), self._locks.hold(("object", bucket, key)):
            source = await self.open(bucket, key)
            try:
                old = source.info
                writer = self._new_writer(bucket)
                try:
                    await self._run(writer.splice_from, source.fileno(), source.data_offset,
                                    old.size)
                    writer.begin_commit()
                except BaseException:
                    await self._run(writer.discard_sync)
                    raise
            finally:
                source.close()
            info = ObjectInfo(bucket=old.bucket, key=old.key, size=old.size, etag=old.etag,
                              last_modified=old.last_modified, content_type=old.content_type,
                              headers=old.headers, metadata=old.metadata, owner=old.owner,
                              acl=acl)
            return await self.install(writer, object_header(info), info, incarnation,
                                      locked=True)
