"""
Multipart uploads.

An upload exists while its C{uploads/<id>/upload.json} exists (the files are
the truth); its record is also in the datastore, indexed per bucket, with a
hash of its parts. A part is a file C{uploads/<id>/<number>} in the object
file format with a part header (number, MD5 entity tag, size, time), written
like an object: streamed to C{tmp/}, sealed, renamed into place, and then
recorded. Completing streams the named parts into one temporary file (a
kernel copy, in a worker thread) and commits it like any object.

The changes of one upload (a part, completion, abort) are ordered by a
lock in this process.
"""

from __future__ import annotations

import hashlib
import os
from typing import Callable

from twisted.internet.interfaces import IReactorTime

from nova.datastore import keys
from nova.datastore.interfaces import IDatastore, ITransaction
from nova.objectstore import errors
from nova.objectstore.interfaces import NewObject, ObjectInfo, Part, Upload
from nova.objectstore.store.buckets import Buckets
from nova.objectstore.store.concurrency import KeyedLocks, RunInThread
from nova.objectstore.store.layout import Layout, place, remove, remove_tree
from nova.objectstore.store.names import (check_acl, check_key, check_part_number,
                                          is_upload_id, new_upload_id, normalise_etag)
from nova.objectstore.store.objectfile import CorruptObjectFile, object_header, part_header
from nova.objectstore.store.objects import Objects
from nova.objectstore.store.reader import open_file
from nova.objectstore.store.records import (BadRecord, bucket_from_json, part_from_header,
                                            part_from_json, part_to_json, upload_from_json,
                                            upload_to_json)
from nova.objectstore.store.writer import FileWriter
from nova.utils.files import write_atomically

#: S3's smallest part, but for the last one
MIN_PART_SIZE = 5 * 1024 * 1024


class Uploads:
    """The multipart operations of the store."""

    def __init__(self, datastore: IDatastore, layout: Layout, buckets: Buckets,
                 objects: Objects, clock: IReactorTime, run_in_thread: RunInThread,
                 locks: KeyedLocks, new_writer: Callable[[str], FileWriter],
                 min_part_size: int = MIN_PART_SIZE) -> None:
        """
        @param objects: commits the assembled object.
        @param new_writer: makes writers (for copied parts and assembly).
        @param min_part_size: the smallest size of a part but the last.
        """
        self._ds = datastore
        self._layout = layout
        self._buckets = buckets
        self._objects = objects
        self._clock = clock
        self._run = run_in_thread
        self._locks = locks
        self._new_writer = new_writer
        self._min_part_size = min_part_size

    # -- uploads -------------------------------------------------------------------

    async def create(self, bucket: str, key: str, new: NewObject) -> Upload:
        """See L{IObjectStore.create_upload}."""
        check_key(key)
        check_acl(new.acl)
        _, incarnation = await self._buckets.get_with_incarnation(bucket)
        upload = Upload(upload_id=new_upload_id(), bucket=bucket, key=key,
                        initiated=self._clock.seconds(), new_object=new)
        record = upload_to_json(upload)
        await self._run(write_atomically, self._layout.upload_record_path(upload.upload_id),
                        record.encode("utf-8"))
        bucket_key, upload_key = keys.s3_bucket(bucket), keys.s3_upload(upload.upload_id)

        async def register(txn: ITransaction) -> None:
            raw = await txn.get(bucket_key)
            if raw is None or bucket_from_json(raw)[1] != incarnation:
                raise errors.NoSuchBucket(f"bucket {bucket} was deleted meanwhile")
            txn.set(upload_key, record)
            txn.sadd(keys.s3_uploads_of_bucket(bucket), upload_key)

        try:
            await self._ds.transact([bucket_key], register)
        except BaseException:
            await self._run(remove_tree, self._layout.upload_dir(upload.upload_id))
            raise
        return upload

    async def get(self, upload_id: str) -> Upload:
        """See L{IObjectStore.get_upload}."""
        raw = await self._ds.get(keys.s3_upload(upload_id)) if is_upload_id(upload_id) else None
        if raw is None:
            raise errors.NoSuchUpload(f"no multipart upload {upload_id!r}")
        try:
            return upload_from_json(raw)
        except BadRecord as e:
            raise errors.S3Error(str(e)) from None

    async def _forget(self, upload: Upload) -> None:
        """Remove an upload: its record file first (the truth), then its records, then its parts."""
        await self._run(remove, self._layout.upload_record_path(upload.upload_id))
        upload_key = keys.s3_upload(upload.upload_id)

        async def drop(txn: ITransaction) -> None:
            txn.delete(upload_key, keys.s3_parts(upload.upload_id))
            txn.srem(keys.s3_uploads_of_bucket(upload.bucket), upload_key)

        await self._ds.transact([], drop)
        await self._run(remove_tree, self._layout.upload_dir(upload.upload_id))

    async def abort(self, upload_id: str) -> None:
        """See L{IObjectStore.abort_upload}."""
        async with self._locks.hold(("upload", upload_id)):
            await self._forget(await self.get(upload_id))

    async def list(self, bucket: str, prefix: str = "", key_after: str = "",
                   upload_id_after: str = "", max_uploads: int = 1000) -> list[Upload]:
        """See L{IObjectStore.list_uploads}."""
        await self._buckets.get(bucket)
        members = sorted(await self._ds.smembers(keys.s3_uploads_of_bucket(bucket)))
        uploads = []
        for raw in await self._ds.mget(*members) if members else []:
            if raw is None:
                continue  # completed or aborted between the two reads
            try:
                upload = upload_from_json(raw)
            except BadRecord:
                continue
            if upload.key.startswith(prefix):
                uploads.append(upload)
        uploads.sort(key=lambda u: (u.key, u.initiated, u.upload_id))
        if key_after:
            at_marker = [u for u in uploads if u.key == key_after]
            later = [u for u in uploads if u.key > key_after]
            if upload_id_after:
                ids = [u.upload_id for u in at_marker]
                if upload_id_after in ids:
                    at_marker = at_marker[ids.index(upload_id_after) + 1:]
                else:
                    at_marker = [u for u in at_marker if u.upload_id > upload_id_after]
                uploads = at_marker + later
            else:
                uploads = later
        return uploads[:max(max_uploads, 0)]

    # -- parts -----------------------------------------------------------------------

    async def commit_part(self, writer: FileWriter, upload_id: str, part_number: int) -> Part:
        """See L{IObjectStore.commit_part}."""
        try:
            check_part_number(part_number)
            writer.begin_commit()
        except BaseException:
            writer.abort()
            raise
        try:
            await self.get(upload_id)
        except BaseException:
            await self._run(writer.discard_sync)
            raise
        part = Part(part_number=part_number, etag=writer.md5_hex(), size=writer.size,
                    last_modified=self._clock.seconds())
        return await self._install_part(writer, upload_id, part)

    async def _install_part(self, writer: FileWriter, upload_id: str, part: Part) -> Part:
        header = part_header(upload_id, part.part_number, part.etag, part.size,
                             part.last_modified)
        try:
            await self._run(writer.seal_sync, header)
            async with self._locks.hold(("upload", upload_id)):
                await self.get(upload_id)  # completed or aborted meanwhile?
                await self._run(place, writer.path,
                                self._layout.part_path(upload_id, part.part_number), None)
                writer.committed()
                await self._ds.hset(keys.s3_parts(upload_id),
                                    {str(part.part_number): part_to_json(part)})
        except BaseException:
            if writer.state != "done":
                await self._run(writer.discard_sync)
            raise
        return part

    async def copy_part(self, upload_id: str, part_number: int, src_bucket: str, src_key: str,
                        first: int | None = None, last: int | None = None) -> Part:
        """See L{IObjectStore.copy_part}."""
        check_part_number(part_number)
        await self.get(upload_id)
        source = await self._objects.open(src_bucket, src_key)
        try:
            size = source.info.size
            start = 0 if first is None else first
            end = size - 1 if last is None else last
            if first is not None and not 0 <= start <= end < size:
                raise errors.InvalidRange(
                    f"the range {first}-{last} is not within the source's {size} bytes")
            writer = self._new_writer(src_bucket)
            try:
                await self._run(writer.copy_from, source.fileno(), source.data_offset + start,
                                end - start + 1)
                writer.begin_commit()
            except BaseException:
                await self._run(writer.discard_sync)
                raise
        finally:
            source.close()
        part = Part(part_number=part_number, etag=writer.md5_hex(), size=writer.size,
                    last_modified=self._clock.seconds())
        return await self._install_part(writer, upload_id, part)

    async def list_parts(self, upload_id: str, after: int = 0,
                         max_parts: int = 1000) -> list[Part]:
        """See L{IObjectStore.list_parts}."""
        await self.get(upload_id)
        parts = []
        for number, raw in (await self._ds.hgetall(keys.s3_parts(upload_id))).items():
            try:
                parts.append(part_from_json(number, raw))
            except BadRecord:
                continue
        parts.sort(key=lambda p: p.part_number)
        return [p for p in parts if p.part_number > after][:max(max_parts, 0)]

    # -- completion ------------------------------------------------------------------

    async def complete(self, upload_id: str, parts: list[tuple[int, str]]) -> ObjectInfo:
        """See L{IObjectStore.complete_upload}."""
        await self.get(upload_id)
        if not parts:
            raise errors.MalformedXML("a completed upload names at least one part")
        numbers = [number for number, _ in parts]
        for number in numbers:
            if not isinstance(number, int) or isinstance(number, bool):
                raise errors.InvalidPart(f"part number {number!r} is not a number")
        if any(b <= a for a, b in zip(numbers, numbers[1:])):
            raise errors.InvalidPartOrder("the parts must be listed in ascending order")
        async with self._locks.hold(("upload", upload_id)):
            upload = await self.get(upload_id)  # aborted while this waited?
            _, incarnation = await self._buckets.get_with_incarnation(upload.bucket)
            writer = self._new_writer(upload.bucket)
            try:
                etag = await self._run(self._assemble_sync, upload_id, parts, writer)
                writer.begin_commit()
            except BaseException:
                await self._run(writer.discard_sync)
                raise
            info = self._objects.describe(upload.bucket, upload.key, upload.new_object,
                                          writer.size, etag)
            await self._objects.install(writer, object_header(info), info, incarnation)
            await self._forget(upload)
        return info

    def _assemble_sync(self, upload_id: str, parts: list[tuple[int, str]],
                       writer: FileWriter) -> str:
        """
        Check the named parts against their files and append them to
        C{writer}. Blocking: runs in a worker thread.

        @return: the entity tag of the whole: the MD5 of the parts' binary
            MD5s, C{-<number of parts>}.
        """
        opened: list[tuple[int, int, Part]] = []  # fd, data offset, part
        try:
            for number, etag in parts:
                try:
                    found = open_file(self._layout.part_path(upload_id, number)) \
                        if 1 <= number <= 10000 else None
                except CorruptObjectFile:
                    found = None
                if found is None:
                    raise errors.InvalidPart(f"part {number} was not uploaded")
                fd, header, data_offset = found
                try:
                    part = part_from_header(header)
                except BadRecord:
                    os.close(fd)
                    raise errors.InvalidPart(f"part {number} is unreadable") from None
                opened.append((fd, data_offset, part))
                if normalise_etag(etag) != part.etag:
                    raise errors.InvalidPart(f"part {number} has entity tag {part.etag}, "
                                             f"not {normalise_etag(etag)}")
            for _, _, part in opened[:-1]:
                if part.size < self._min_part_size:
                    raise errors.EntityTooSmall(
                        f"part {part.part_number} is {part.size} bytes; every part but the "
                        f"last must be at least {self._min_part_size}")
            digests = b"".join(bytes.fromhex(part.etag) for _, _, part in opened)
            for fd, data_offset, part in opened:
                writer.splice_from(fd, data_offset, part.size)
            return f"{hashlib.md5(digests).hexdigest()}-{len(opened)}"
        finally:
            for fd, _, _ in opened:
                os.close(fd)


