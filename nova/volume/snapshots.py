"""
Volume snapshots in the object store, as EBS keeps them in S3: a volume
(or a point-in-time copy of one, L{nova.volume.point_in_time}) is encoded
(L{nova.volume.snapshot_format}: zero blocks as one byte, the rest zlib
compressed, a SHA-256 of the raw bytes) and sent as an S3 multipart upload;
restoring streams it back with ranged GETs into a sparse file, checked
against the SHA-256 the snapshot record keeps.

Memory stays bounded whatever the volume's size: an upload holds the part on
the wire and the next one being encoded, a restore the range being decoded
and the next one being fetched. The blocking work (reads, zlib, hashing,
writes) runs in a worker thread, never on the reactor.

Nothing half-written stays: a failed upload is aborted (S3 shows an object
only once its upload is completed), a failed restore leaves no file behind
(it writes a temporary file beside the target and renames it into place
only once the checksum matched). docs/snapshots.md has the whole story.
"""

from __future__ import annotations

import os
import stat
import tempfile
from typing import Any, Awaitable, Callable

import attr
from twisted.internet import defer
from twisted.logger import Logger

from nova.volume.snapshot_format import (DEFAULT_BLOCK_SIZE, MIB, VERSION, SnapshotCorrupt,
                                         SnapshotDecoder, SnapshotEncoder, SnapshotError,
                                         SnapshotHeader, max_encoded_size)

log = Logger()

ThreadRunner = Callable[..., Awaitable[Any]]
#: S3's smallest part (all but the last) and its largest part count
MIN_PART_SIZE = 5 * MIB
MAX_PARTS = 10000
DEFAULT_CHUNK_SIZE = 8 * MIB
CONTENT_TYPE = "application/x-nova-snapshot"


class TargetTooSmall(SnapshotError):
    """The volume to restore into is smaller than the snapshot."""

    code = "InvalidParameterValue"
    status = 400


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class SnapshotStored:
    """
    What an upload stored.

    @ivar size: the raw volume size, bytes.
    @ivar sha256: the hex SHA-256 of the raw volume bytes (keep it in the
        snapshot record: a restore checks against it).
    @ivar stored_bytes: the object's size (the encoded stream).
    @ivar parts: how many parts the multipart upload had.
    @ivar etag: the stored object's ETag (no quotes).
    """

    size: int
    sha256: str
    stored_bytes: int
    parts: int
    etag: str


def part_size_for(raw_size: int, chunk_size: int = DEFAULT_CHUNK_SIZE,
                  block_size: int = DEFAULT_BLOCK_SIZE) -> int:
    """
    @return: the part size to upload a volume of C{raw_size} bytes with:
        C{chunk_size}, or more (whole MiBs) when the longest stream the
        volume could encode to would otherwise need over 10,000 parts.
    @raise ValueError: C{chunk_size} is under S3's 5 MiB part minimum.
    """
    if chunk_size < MIN_PART_SIZE:
        raise ValueError(f"parts of {chunk_size} bytes: S3 wants at least {MIN_PART_SIZE}")
    needed = -(-max_encoded_size(raw_size, block_size) // MAX_PARTS)
    if needed <= chunk_size:
        return chunk_size
    return -(-needed // MIB) * MIB


def _open_source(path: str, chunk_size: int, block_size: int) -> SnapshotEncoder:
    """Blocking: open a volume (a file or a block device) for encoding."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.lseek(fd, 0, os.SEEK_END)  # st_size is 0 for a block device
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        return SnapshotEncoder(fd, size, part_size_for(size, chunk_size, block_size),
                               block_size)
    except BaseException:
        os.close(fd)
        raise


def _close_source(encoder: SnapshotEncoder) -> None:
    os.close(encoder.fd)


async def _settle(d: defer.Deferred[Any] | None) -> None:
    """Wait for C{d} and drop its outcome (a read still running in a thread)."""
    if d is not None:
        try:
            await d
        except Exception:  # the failure that matters is being raised already
            pass


async def upload_snapshot(client: Any, bucket: str, key: str, source_path: str, *,
                          run_in_thread: ThreadRunner, chunk_size: int = DEFAULT_CHUNK_SIZE,
                          block_size: int = DEFAULT_BLOCK_SIZE) -> SnapshotStored:
    """
    Store a volume as object C{bucket/key} (a multipart upload), encoded as
    L{nova.volume.snapshot_format} says. The next part is encoded in a
    thread while the current one is sent: at most two parts are in memory.

    @param client: an L{nova.objectstore.client.ObjectStoreClient}.
    @param source_path: a raw volume that nothing writes to meanwhile (a
        point-in-time copy of an in-use volume, or a volume no daemon serves).
    @param run_in_thread: runs a blocking function off the reactor thread.
    @param chunk_size: the part size (at least 5 MiB; grown for volumes that
        would need more than 10,000 parts).
    @param block_size: the encoding's block size.
    @return: what was stored.
    @raise SnapshotError: the volume shrank while it was read.
    @raise nova.objectstore.errors.S3Error: the store refused or failed
        (C{NoSuchBucket}, C{ObjectStoreUnavailable}...). After any failure
        the upload has been aborted: no object, no parts stay.
    """
    part_size_for(0, chunk_size, block_size)  # check the sizes before anything is opened
    encoder: SnapshotEncoder = await run_in_thread(_open_source, source_path, chunk_size,
                                                   block_size)
    try:
        upload_id = await client.create_multipart_upload(
            bucket, key, content_type=CONTENT_TYPE,
            metadata={"nova-snapshot-format": str(VERSION),
                      "nova-snapshot-size": str(encoder.size)})
        encoding: defer.Deferred[bytes | None] | None = None
        try:
            etags: list[tuple[int, str]] = []
            stored = 0
            part = await run_in_thread(encoder.next_part)
            while part is not None:
                encoding = defer.ensureDeferred(run_in_thread(encoder.next_part))
                etags.append((len(etags) + 1, await client.upload_part(
                    bucket, key, upload_id, len(etags) + 1, part)))
                stored += len(part)
                part = await encoding
                encoding = None
            etag = await client.complete_multipart_upload(bucket, key, upload_id, etags)
        except Exception:
            # the thread may still be reading the file: let it end before it is closed
            await _settle(encoding)
            try:
                await client.abort_multipart_upload(bucket, key, upload_id)
            except Exception as e:  # the original failure is the one to report
                log.warn("could not abort the snapshot upload {bucket}/{key} ({upload_id}): "
                         "{error}", bucket=bucket, key=key, upload_id=upload_id, error=e)
            raise
    finally:
        await run_in_thread(_close_source, encoder)
    assert encoder.sha256 is not None
    log.info("snapshot {bucket}/{key}: {size} bytes stored as {stored} in {parts} parts "
             "({zeros} zero, {packed} compressed, {raw} raw blocks)", bucket=bucket, key=key,
             size=encoder.size, stored=stored, parts=len(etags), zeros=encoder.zero_blocks,
             packed=encoder.compressed_blocks, raw=encoder.raw_blocks)
    return SnapshotStored(size=encoder.size, sha256=encoder.sha256, stored_bytes=stored,
                          parts=len(etags), etag=etag)


class _Restorer:
    """
    Blocking: writes a decoded snapshot to a sparse temporary file beside the
    target, renamed into place once its checksum matched.
    """

    def __init__(self, target: str, size: int | None) -> None:
        self.target, self.size = target, size
        self.fd: int | None = None
        self.temp: str | None = None
        self.decoder = SnapshotDecoder(self._open, self._write)

    def _open(self, header: SnapshotHeader) -> None:
        size = header.raw_size if self.size is None else self.size
        if size < header.raw_size:
            raise TargetTooSmall(f"the snapshot is {header.raw_size} bytes: more than "
                                 f"the {size} bytes of the volume to restore into")
        mode = 0o600
        try:
            found = os.stat(self.target)
            if not stat.S_ISREG(found.st_mode):
                raise SnapshotError(f"{self.target} is not a regular file")
            mode = stat.S_IMODE(found.st_mode)
        except FileNotFoundError:
            pass
        folder, name = os.path.split(self.target)
        self.fd, self.temp = tempfile.mkstemp(dir=folder or ".", prefix=f".{name}.",
                                              suffix=".restore")
        os.fchmod(self.fd, mode)
        os.ftruncate(self.fd, size)  # all holes: the zero blocks need no write

    def _write(self, offset: int, data: bytes) -> None:
        assert self.fd is not None
        view = memoryview(data)
        while view:
            written = os.pwrite(self.fd, view, offset)
            view, offset = view[written:], offset + written

    def feed(self, data: bytes) -> None:
        self.decoder.feed(data)

    def finish(self, expected_sha256: str) -> int:
        found = self.decoder.finish()
        if found != expected_sha256.lower():
            raise SnapshotCorrupt(f"the snapshot's SHA-256 is {found}, "
                                  f"not the recorded {expected_sha256}")
        assert self.fd is not None and self.temp is not None and self.decoder.header
        os.fsync(self.fd)
        os.close(self.fd)
        self.fd = None
        os.replace(self.temp, self.target)
        self.temp = None
        folder = os.open(os.path.dirname(self.target) or ".", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)  # the rename is durable before the volume is called available
        finally:
            os.close(folder)
        return self.decoder.header.raw_size

    def discard(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.temp is not None:
            try:
                os.unlink(self.temp)
            except FileNotFoundError:
                pass
            self.temp = None


async def restore_snapshot(client: Any, bucket: str, key: str, target_path: str,
                           expected_sha256: str, *, run_in_thread: ThreadRunner,
                           size: int | None = None,
                           chunk_size: int = DEFAULT_CHUNK_SIZE) -> int:
    """
    Restore the snapshot C{bucket/key} into a new sparse file at
    C{target_path} (replacing a regular file there once complete). Ranged
    GETs of C{chunk_size} bytes, all pinned to one ETag, are decoded in a
    thread while the next one is fetched.

    @param client: an L{nova.objectstore.client.ObjectStoreClient}.
    @param expected_sha256: the hex SHA-256 of the raw volume, as
        L{upload_snapshot} returned it.
    @param size: the new volume's size in bytes: at least the snapshot's
        (the rest reads as zeros); default the snapshot's own.
    @return: the snapshot's raw size.
    @raise SnapshotCorrupt: the object does not decode, or its checksum is
        not C{expected_sha256}.
    @raise TargetTooSmall: C{size} is smaller than the snapshot.
    @raise nova.objectstore.errors.S3Error: the store failed (C{NoSuchKey},
        C{PreconditionFailed} when the object was replaced meanwhile,
        C{ObjectStoreUnavailable}...).
    On any failure nothing was written at C{target_path} and no temporary
    file is left.
    """
    head = await client.head_object(bucket, key)
    restorer = _Restorer(str(target_path), size)
    fetch: defer.Deferred[bytes] | None = None

    def get(first: int) -> defer.Deferred[bytes]:
        return defer.ensureDeferred(client.get_object_range(
            bucket, key, first, chunk_size, expected_etag=head.etag))

    try:
        first = 0
        fetch = get(0)
        while fetch is not None:
            data = await fetch
            want = min(chunk_size, head.size - first)
            if len(data) != want:
                raise SnapshotCorrupt(f"{bucket}/{key}: {len(data)} bytes at {first}, "
                                      f"not {want}")
            first += want
            fetch = get(first) if first < head.size else None
            await run_in_thread(restorer.feed, data)
            del data
        return int(await run_in_thread(restorer.finish, expected_sha256))
    except Exception:
        if fetch is not None:
            fetch.addErrback(lambda _: None)
            fetch.cancel()
        await run_in_thread(restorer.discard)
        raise


__all__ = ["CONTENT_TYPE", "DEFAULT_CHUNK_SIZE", "SnapshotCorrupt", "SnapshotError",
           "SnapshotStored", "TargetTooSmall", "part_size_for", "restore_snapshot",
           "upload_snapshot"]
