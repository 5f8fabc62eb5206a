"""
Unit tests of volume snapshots: the encoding (L{nova.volume.snapshot_format}),
upload and restore (L{nova.volume.snapshots}) against an in-memory object
store that records every call, and the QMP commands of a point-in-time copy
(L{nova.volume.point_in_time}). No network, no reactor: the fake store
answers at once and blocking work runs inline (or when a test says so).
"""

from __future__ import annotations

import hashlib
import os
import random
from typing import Any, Callable

from twisted.internet import defer
from twisted.trial import unittest

from nova.exception import NovaError
from nova.objectstore import errors
from nova.objectstore.client import ObjectHead, ObjectStoreUnavailable
from nova.volume import point_in_time as pit
from nova.volume.snapshot_format import (MAGIC, MIB, RAW, ZERO, ZLIB, SnapshotCorrupt,
                                         SnapshotDecoder, SnapshotEncoder, SnapshotError,
                                         max_encoded_size, max_record_size)
from nova.volume.snapshots import (MIN_PART_SIZE, SnapshotStored, TargetTooSmall,
                                   part_size_for, restore_snapshot, upload_snapshot)

KIB = 1024
BLOCK = 64 * KIB  # small blocks keep the format tests fast


async def inline(fn: Callable[..., Any], *args: Any) -> Any:
    """A run_in_thread that runs at once (the unit tests have no thread pool)."""
    return fn(*args)


def pattern(size: int, seed: int = 0) -> bytes:
    """@return: compressible bytes, different for every seed and offset."""
    line = b"".join(b"seed %04d line %06d of a volume\n" % (seed, i) for i in range(size // 32 + 1))
    return line[:size]


def noise(size: int, seed: int = 0) -> bytes:
    """@return: incompressible bytes (repeatable)."""
    return random.Random(seed).randbytes(size)


class Files:
    """Makes files in a test's temporary directory."""

    def __init__(self, test: unittest.TestCase) -> None:
        self.dir = test.mktemp()
        os.makedirs(self.dir)

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def write(self, name: str, size: int, pieces: dict[int, bytes] | None = None) -> str:
        """A sparse file of C{size} bytes with C{pieces} written at their offsets."""
        path = self.path(name)
        with open(path, "wb") as f:
            f.truncate(size)
            for offset, data in (pieces or {}).items():
                f.seek(offset)
                f.write(data)
        return path

    def read(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()


def encode(path: str, part_size: int = 256 * KIB,
           block_size: int = BLOCK) -> tuple[list[bytes], SnapshotEncoder]:
    fd = os.open(path, os.O_RDONLY)
    try:
        encoder = SnapshotEncoder(fd, os.fstat(fd).st_size, part_size, block_size)
        parts = []
        while (part := encoder.next_part()) is not None:
            parts.append(part)
        return parts, encoder
    finally:
        os.close(fd)


def decode(stream: bytes, piece: int = 100_000) -> tuple[bytes, str, SnapshotDecoder]:
    """@return: the raw bytes, the checksum and the decoder, fed C{piece} bytes at a time."""
    out = bytearray()

    def open_target(header: Any) -> None:
        out.extend(bytes(header.raw_size))

    def write(offset: int, data: bytes) -> None:
        out[offset:offset + len(data)] = data

    decoder = SnapshotDecoder(open_target, write)
    for at in range(0, len(stream), piece):
        decoder.feed(stream[at:at + piece])
    return bytes(out), decoder.finish(), decoder


class FormatTests(unittest.TestCase):
    """The encoding round-trips any content; its parts have the size asked for."""

    def setUp(self) -> None:
        self.files = Files(self)

    def round_trip(self, size: int, pieces: dict[int, bytes] | None = None,
                   part_size: int = 256 * KIB, block_size: int = BLOCK) -> SnapshotEncoder:
        path = self.files.write("vol", size, pieces)
        raw = self.files.read(path)
        parts, encoder = encode(path, part_size, block_size)
        # every part has the size asked for but the last; the buffer stayed bounded
        self.assertTrue(all(len(p) == part_size for p in parts[:-1]))
        self.assertTrue(0 < len(parts[-1]) <= part_size)
        self.assertLessEqual(encoder.high_water, part_size + max_record_size(block_size))
        stream = b"".join(parts)
        self.assertLessEqual(len(stream), max_encoded_size(size, block_size))
        self.assertTrue(stream.startswith(MAGIC))
        for piece in (len(stream) or 1, 1 + len(stream) // 3, 4099):
            got, digest, _ = decode(stream, piece)
            self.assertEqual(got, raw)
            self.assertEqual(digest, hashlib.sha256(raw).hexdigest())
        self.assertEqual(encoder.sha256, hashlib.sha256(raw).hexdigest())
        return encoder

    def test_random_data_stored_raw(self) -> None:
        size = 5 * BLOCK + 1234
        encoder = self.round_trip(size, {0: noise(size)})
        self.assertEqual((encoder.zero_blocks, encoder.compressed_blocks, encoder.raw_blocks),
                         (0, 0, 6))

    def test_all_zero_sparse(self) -> None:
        encoder = self.round_trip(64 * BLOCK)
        self.assertEqual(encoder.zero_blocks, 64)
        path = self.files.write("again", 64 * BLOCK)
        parts, _ = encode(path)
        self.assertEqual(len(b"".join(parts)), 24 + 64 + 1 + 40)  # header, 1 byte a block, trailer

    def test_written_zeros_detected(self) -> None:
        """Zeros that are allocated (not holes) are found by reading them."""
        encoder = self.round_trip(3 * BLOCK + 5, {0: bytes(3 * BLOCK + 5)})
        self.assertEqual(encoder.zero_blocks, 4)

    def test_mixed(self) -> None:
        pieces = {0: pattern(BLOCK), 3 * BLOCK: noise(BLOCK + 17, 1),
                  7 * BLOCK + 100: pattern(300, 2), 9 * BLOCK: bytes(BLOCK)}
        encoder = self.round_trip(12 * BLOCK + 999, pieces)
        self.assertEqual(encoder.compressed_blocks, 3)  # blocks 0, 4 (17 bytes of noise), 7
        self.assertEqual(encoder.raw_blocks, 1)  # block 3
        self.assertEqual(encoder.zero_blocks, 13 - 4)

    def test_sizes_around_the_block(self) -> None:
        for size in (0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK - 1):
            self.round_trip(size, {0: pattern(size, size)} if size else None)

    def test_default_block_size(self) -> None:
        self.round_trip(3 * MIB + 7, {MIB - 3: noise(2 * MIB, 3), 3 * MIB: pattern(7)},
                        part_size=MIB, block_size=MIB)

    def test_parts_cut_exactly(self) -> None:
        """A stream that ends on a part boundary has no empty last part."""
        path = self.files.write("vol", 4 * BLOCK, {0: noise(4 * BLOCK)})
        stream = b"".join(encode(path, part_size=10**9)[0])
        parts, _ = encode(path, part_size=len(stream) // 2 if len(stream) % 2 == 0
                          else len(stream))
        self.assertEqual(b"".join(parts), stream)
        self.assertEqual(len({len(p) for p in parts}), 1)

    def test_source_shrank(self) -> None:
        path = self.files.write("vol", 2 * BLOCK, {0: pattern(2 * BLOCK)})
        fd = os.open(path, os.O_RDONLY)
        self.addCleanup(os.close, fd)
        encoder = SnapshotEncoder(fd, 3 * BLOCK, 10 * BLOCK, BLOCK)
        self.assertRaises(SnapshotError, encoder.next_part)

    def test_bad_sizes(self) -> None:
        self.assertRaises(ValueError, SnapshotEncoder, 0, 10, 100, 1000)  # block under 4 KiB
        self.assertRaises(ValueError, SnapshotEncoder, 0, 10, 0, BLOCK)


class CorruptionTests(unittest.TestCase):
    """Whatever is wrong with a stream, decoding it fails with SnapshotCorrupt."""

    def setUp(self) -> None:
        files = Files(self)
        self.size = 6 * BLOCK + 10
        path = files.write("vol", self.size, {0: pattern(2 * BLOCK), 3 * BLOCK: noise(BLOCK),
                                               5 * BLOCK: pattern(BLOCK + 10, 5)})
        self.stream = b"".join(encode(path)[0])

    def assertCorrupt(self, stream: bytes) -> SnapshotCorrupt:  # noqa: N802
        with self.assertRaises(SnapshotCorrupt) as caught:
            decode(stream, 5000)
        self.assertIsInstance(caught.exception, NovaError)
        return caught.exception

    def test_every_flipped_byte_found(self) -> None:
        """One flipped bit anywhere (every 97th byte, and the last 41) is detected."""
        for at in list(range(0, len(self.stream), 97)) + list(range(len(self.stream) - 41,
                                                                     len(self.stream))):
            flipped = bytearray(self.stream)
            flipped[at] ^= 0x10
            self.assertCorrupt(bytes(flipped))

    def test_cut_short(self) -> None:
        for length in (0, 10, 24, len(self.stream) // 2, len(self.stream) - 1):
            self.assertCorrupt(self.stream[:length])

    def test_trailing_bytes(self) -> None:
        self.assertCorrupt(self.stream + b"\0")

    def test_unknown_version(self) -> None:
        error = self.assertCorrupt(self.stream[:8] + b"\0\2" + self.stream[10:])
        self.assertIn("version 2", str(error))

    def test_bomb_refused(self) -> None:
        """A record that inflates to more than a block is refused without inflating it all."""
        import struct
        import zlib
        bomb = zlib.compress(bytes(100 * BLOCK), 9)
        stream = (struct.pack(">8sHHIQ", MAGIC, 1, 0, BLOCK, BLOCK) + bytes([ZLIB])
                  + struct.pack(">I", len(bomb)) + bomb)
        self.assertCorrupt(stream)

    def test_extra_block(self) -> None:
        header = self.stream[:24]
        self.assertCorrupt(header + bytes([ZERO]) * 8)  # 7 blocks in a 6-block volume
        self.assertCorrupt(header + bytes([0x42]))
        self.assertCorrupt(header + bytes([RAW]) + b"\0\0\0\5" + b"short")


class FakeStore:
    """
    An in-memory object store with the client's multipart and read methods,
    recording every call; S3's rules for parts (5 MiB but the last) hold.

    @ivar fail: method name -> a function called with the call's arguments
        before it happens (raise to make it fail).
    """

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], tuple[bytes, str, dict[str, str]]] = {}
        self.uploads: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.fail: dict[str, Callable[..., None]] = {}
        self.ranges: list[tuple[int, int]] = []

    def _hook(self, name: str, *args: Any) -> None:
        self.calls.append((name, *args))
        if name in self.fail:
            self.fail[name](*args)

    async def create_multipart_upload(self, bucket: str, key: str,
                                      content_type: str = "binary/octet-stream",
                                      metadata: dict[str, str] | None = None) -> str:
        self._hook("create", bucket, key)
        upload_id = f"upload-{len(self.calls)}"
        self.uploads[upload_id] = {"key": (bucket, key), "parts": {}, "meta": metadata or {}}
        return upload_id

    async def upload_part(self, bucket: str, key: str, upload_id: str, number: int,
                          data: bytes) -> str:
        self._hook("part", number, len(data))
        self.uploads[upload_id]["parts"][number] = data
        return hashlib.md5(data).hexdigest()

    async def complete_multipart_upload(self, bucket: str, key: str, upload_id: str,
                                        parts: list[tuple[int, str]]) -> str:
        self._hook("complete", parts)
        upload = self.uploads.pop(upload_id)
        bodies = [upload["parts"][n] for n, _ in parts]
        assert [n for n, _ in parts] == sorted(upload["parts"])
        assert [e for _, e in parts] == [hashlib.md5(b).hexdigest() for b in bodies]
        if any(len(b) < MIN_PART_SIZE for b in bodies[:-1]):
            raise errors.EntityTooSmall()
        body = b"".join(bodies)
        etag = f"{hashlib.md5(body).hexdigest()}-{len(bodies)}"
        self.objects[upload["key"]] = (body, etag, upload["meta"])
        return etag

    async def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        self._hook("abort", upload_id)
        self.uploads.pop(upload_id, None)

    async def head_object(self, bucket: str, key: str) -> ObjectHead:
        if (bucket, key) not in self.objects:
            raise errors.NoSuchKey(key)
        body, etag, meta = self.objects[(bucket, key)]
        return ObjectHead(key=key, size=len(body), etag=etag, last_modified=None,
                          content_type="application/x-nova-snapshot", metadata=meta)

    async def get_object_range(self, bucket: str, key: str, first: int, length: int,
                               expected_etag: str | None = None) -> bytes:
        self._hook("range", first, length)
        body, etag, _ = self.objects[(bucket, key)]
        if expected_etag != etag:
            raise errors.PreconditionFailed()
        return body[first:first + length]

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


class UploadTests(unittest.TestCase):
    """Uploads: parts of the right sizes, bounded memory, aborted on any failure."""

    def setUp(self) -> None:
        self.files = Files(self)
        self.store = FakeStore()

    def upload(self, path: str, **kwargs: Any) -> defer.Deferred[SnapshotStored]:
        kwargs.setdefault("run_in_thread", inline)
        kwargs.setdefault("chunk_size", MIN_PART_SIZE)
        return defer.Deferred.fromCoroutine(upload_snapshot(self.store, "snaps", "snap-1", path,
                                                            **kwargs))

    def open_fds(self) -> int:
        return len(os.listdir("/proc/self/fd"))

    def test_parts(self) -> None:
        size = 23 * MIB + 5
        path = self.files.write("vol", size, {0: noise(size)})
        stored = self.successResultOf(self.upload(path))
        sizes = [c[2] for c in self.store.calls if c[0] == "part"]
        self.assertEqual(sizes[:-1], [MIN_PART_SIZE] * 4)
        self.assertTrue(0 < sizes[-1] <= MIN_PART_SIZE)
        body, etag, meta = self.store.objects[("snaps", "snap-1")]
        raw = self.files.read(path)
        self.assertEqual(stored, SnapshotStored(size=size, sha256=hashlib.sha256(raw).hexdigest(),
                                                stored_bytes=len(body), parts=5, etag=etag))
        self.assertEqual(meta, {"nova-snapshot-format": "1", "nova-snapshot-size": str(size)})
        self.assertEqual(decode(body)[0], raw)

    def test_sparse_volume_one_small_part(self) -> None:
        path = self.files.write("vol", 40 * MIB, {17 * MIB: pattern(3 * MIB)})
        stored = self.successResultOf(self.upload(path))
        self.assertEqual(stored.parts, 1)
        self.assertLess(stored.stored_bytes, MIB)
        self.assertEqual(self.store.names(), ["create", "part", "complete"])

    def test_at_most_two_parts_in_memory(self) -> None:
        """
        With threads and uploads that take their time: the next part is encoded
        while one is sent, never more; a part is let go once it is sent.
        """
        path = self.files.write("vol", 30 * MIB, {0: noise(30 * MIB, 7)})
        threads: list[tuple[defer.Deferred[Any], Any, tuple[Any, ...]]] = []
        sends: list[defer.Deferred[str]] = []
        held = [0, 0]  # parts encoded and not yet sent; the most ever

        def run_in_thread(fn: Any, *args: Any) -> defer.Deferred[Any]:
            d: defer.Deferred[Any] = defer.Deferred()
            threads.append((d, fn, args))
            return d

        real_part = self.store.upload_part

        async def upload_part(*args: Any) -> str:
            d: defer.Deferred[str] = defer.Deferred()
            sends.append(d)
            await d
            held[0] -= 1
            return await real_part(*args)

        self.store.upload_part = upload_part  # type: ignore[method-assign]
        d = self.upload(path, run_in_thread=run_in_thread)
        encoder = None
        while not d.called:
            if threads:
                done, fn, args = threads.pop(0)
                result = fn(*args)
                if getattr(fn, "__name__", "") == "next_part" and result is not None:
                    encoder = fn.__self__
                    held[0] += 1
                    held[1] = max(held)
                done.callback(result)
            else:
                self.assertEqual(len(sends), 1)  # one part on the wire at a time
                sends.pop(0).callback(None)
        self.assertEqual(self.successResultOf(d).parts, 7)  # 30 MiB and a little: 6 full parts
        self.assertEqual(held[1], 2)
        assert encoder is not None
        self.assertLessEqual(encoder.high_water, MIN_PART_SIZE + max_record_size(MIB))

    def test_part_fails(self) -> None:
        path = self.files.write("vol", 12 * MIB, {0: noise(12 * MIB)})
        before = self.open_fds()

        def fail(number: int, size: int) -> None:
            if number == 2:
                raise ObjectStoreUnavailable("gone")

        self.store.fail["part"] = fail
        self.failureResultOf(self.upload(path), ObjectStoreUnavailable)
        self.assertEqual(self.store.names(), ["create", "part", "part", "abort"])
        self.assertEqual((self.store.uploads, self.store.objects), ({}, {}))
        self.assertEqual(self.open_fds(), before)

    def test_source_fails_midway(self) -> None:
        path = self.files.write("vol", 20 * MIB, {0: noise(20 * MIB)})

        def shrink(number: int, size: int) -> None:
            if number == 1:
                os.truncate(path, 9 * MIB)

        self.store.fail["part"] = shrink
        self.failureResultOf(self.upload(path), SnapshotError)
        self.assertEqual(self.store.names()[-1], "abort")
        self.assertNotIn("complete", self.store.names())
        self.assertEqual((self.store.uploads, self.store.objects), ({}, {}))

    def test_complete_fails_abort_fails_too(self) -> None:
        """The failure reported is the first one; the abort's is only logged."""
        path = self.files.write("vol", MIB, {0: pattern(MIB)})

        def refuse(*args: Any) -> None:
            raise errors.InvalidPart()

        def unavailable(*args: Any) -> None:
            raise ObjectStoreUnavailable("down")

        self.store.fail.update(complete=refuse, abort=unavailable)
        self.failureResultOf(self.upload(path), errors.InvalidPart)
        self.assertEqual(self.store.names(), ["create", "part", "complete", "abort"])

    def test_create_fails(self) -> None:
        path = self.files.write("vol", MIB)
        before = self.open_fds()

        def missing(*args: Any) -> None:
            raise errors.NoSuchBucket()

        self.store.fail["create"] = missing
        self.failureResultOf(self.upload(path), errors.NoSuchBucket)
        self.assertEqual(self.store.names(), ["create"])
        self.assertEqual(self.open_fds(), before)

    def test_small_chunk_refused(self) -> None:
        path = self.files.write("vol", MIB)
        self.failureResultOf(self.upload(path, chunk_size=MIB), ValueError)
        self.assertEqual(self.store.calls, [])

    def test_part_size_grows_for_huge_volumes(self) -> None:
        self.assertEqual(part_size_for(10 * 1024 * MIB), 8 * MIB)
        big = part_size_for(200 * 1024 * MIB)  # 200 GiB: 8 MiB parts would be 25,600
        self.assertEqual(big % MIB, 0)
        self.assertLessEqual(-(-max_encoded_size(200 * 1024 * MIB) // big), 10000)


class RestoreTests(unittest.TestCase):
    """Restores: the volume back, sparse, checked; nothing left after a failure."""

    def setUp(self) -> None:
        self.files = Files(self)
        self.store = FakeStore()
        self.size = 9 * MIB + 3
        self.source = self.files.write("vol", self.size, {
            0: pattern(MIB), 4 * MIB + 7: noise(MIB + 100, 9), 9 * MIB: b"end"})
        self.raw = self.files.read(self.source)
        self.stored = self.successResultOf(defer.Deferred.fromCoroutine(upload_snapshot(
            self.store, "snaps", "snap-1", self.source, run_in_thread=inline)))
        self.target = self.files.path("restored")

    def restore(self, sha256: str | None = None, **kwargs: Any) -> defer.Deferred[int]:
        kwargs.setdefault("run_in_thread", inline)
        kwargs.setdefault("chunk_size", 300 * KIB)  # many ranges
        return defer.Deferred.fromCoroutine(restore_snapshot(
            self.store, "snaps", "snap-1", self.target, sha256 or self.stored.sha256, **kwargs))

    def leftovers(self) -> list[str]:
        return sorted(n for n in os.listdir(self.files.dir) if n != "vol")

    def test_round_trip(self) -> None:
        self.assertEqual(self.successResultOf(self.restore()), self.size)
        self.assertEqual(self.files.read(self.target), self.raw)
        self.assertEqual(self.leftovers(), ["restored"])
        ranges = [c for c in self.store.calls if c[0] == "range"]
        self.assertEqual(len(ranges), -(-self.stored.stored_bytes // (300 * KIB)))
        # sparse: the zero blocks were not written
        self.assertLess(os.stat(self.target).st_blocks * 512, 4 * MIB)

    def test_larger_volume(self) -> None:
        self.successResultOf(self.restore(size=self.size + 5 * MIB))
        restored = self.files.read(self.target)
        self.assertEqual(restored, self.raw + bytes(5 * MIB))

    def test_smaller_volume_refused(self) -> None:
        self.failureResultOf(self.restore(size=self.size - 1), TargetTooSmall)
        self.assertEqual(self.leftovers(), [])

    def test_flipped_byte(self) -> None:
        body, etag, meta = self.store.objects[("snaps", "snap-1")]
        for at in (30, len(body) // 2, len(body) - 5):
            flipped = bytearray(body)
            flipped[at] ^= 1
            self.store.objects[("snaps", "snap-1")] = (bytes(flipped), etag, meta)
            self.failureResultOf(self.restore(), SnapshotCorrupt)
            self.assertEqual(self.leftovers(), [])

    def test_other_checksum_keeps_older_file(self) -> None:
        with open(self.target, "wb") as f:
            f.write(b"an older volume")
        self.failureResultOf(self.restore("0" * 64), SnapshotCorrupt)
        self.assertEqual(self.files.read(self.target), b"an older volume")
        self.assertEqual(self.leftovers(), ["restored"])

    def test_short_range(self) -> None:
        real = self.store.get_object_range

        async def short(bucket: str, key: str, first: int, length: int, **kw: Any) -> bytes:
            return (await real(bucket, key, first, length, **kw))[:-1]

        self.store.get_object_range = short  # type: ignore[method-assign]
        self.failureResultOf(self.restore(), SnapshotCorrupt)
        self.assertEqual(self.leftovers(), [])

    def test_store_fails_midway(self) -> None:
        def fail(first: int, length: int) -> None:
            if first > 500 * KIB:
                raise ObjectStoreUnavailable("down")

        self.store.fail["range"] = fail
        self.failureResultOf(self.restore(), ObjectStoreUnavailable)
        self.assertEqual(self.leftovers(), [])

    def test_missing(self) -> None:
        d = defer.Deferred.fromCoroutine(restore_snapshot(
            self.store, "snaps", "nope", self.target, self.stored.sha256, run_in_thread=inline))
        self.failureResultOf(d, errors.NoSuchKey)
        self.assertEqual(self.leftovers(), [])

    def test_not_a_regular_file(self) -> None:
        os.mkdir(self.target)
        self.failureResultOf(self.restore(), SnapshotError)
        self.assertEqual(self.leftovers(), ["restored"])


class PointInTimeTests(unittest.TestCase):
    """The QMP commands of a point-in-time copy, and how a job's state reads."""

    def test_commands(self) -> None:
        commands = pit.point_in_time_commands("vol-0000000a", "/srv/nova/copy.raw", "snap-7")
        self.assertEqual([c["execute"] for c in commands],
                         ["blockdev-add", "blockdev-backup", "job-dismiss", "blockdev-del"])
        self.assertEqual(pit.COMMANDS_BEFORE_WAIT, 2)
        add, backup, dismiss, delete = (c["arguments"] for c in commands)
        self.assertEqual(add, {"driver": "file", "node-name": "snap-7-pit",
                               "filename": "/srv/nova/copy.raw", "discard": "unmap"})
        self.assertEqual(backup, {"job-id": "snap-7", "device": "vol-0000000a",
                                  "target": "snap-7-pit", "sync": "full",
                                  "auto-finalize": True, "auto-dismiss": False,
                                  "on-source-error": "report", "on-target-error": "report"})
        self.assertEqual(dismiss, {"id": "snap-7"})
        self.assertEqual(delete, {"node-name": "snap-7-pit"})
        self.assertEqual(pit.cancel_command("snap-7"),
                         {"execute": "job-cancel", "arguments": {"id": "snap-7"}})

    def test_names_checked(self) -> None:
        for node, path, job in [("1vol", "/a", "j"), ("vol 1", "/a", "j"), ("v", "rel", "j"),
                                ("v", "/a\0b", "j"), ("v", "/a", "j" * 28), ("v" * 32, "/a", "j"),
                                ("v", "/a", "job,x")]:
            self.assertRaises(ValueError, pit.point_in_time_commands, node, path, job)
        self.assertEqual(pit.copy_node_name("j" * 27), "j" * 27 + "-pit")

    def test_job_states(self) -> None:
        running = {"id": "snap-7", "type": "backup", "status": "running",
                   "current-progress": 5, "total-progress": 10}
        other = {"id": "other", "type": "backup", "status": "concluded",
                 "current-progress": 1, "total-progress": 1}
        self.assertFalse(pit.backup_job_done([other, running], "snap-7"))
        done = dict(running, status="concluded", **{"current-progress": 10})
        self.assertTrue(pit.backup_job_done([other, done], "snap-7"))
        failed = dict(done, error="Input/output error")
        with self.assertRaises(pit.PointInTimeFailed) as caught:
            pit.backup_job_done([failed], "snap-7")
        self.assertIn("Input/output error", str(caught.exception))
        self.assertRaises(pit.PointInTimeFailed, pit.backup_job_done,
                          [dict(running, status="concluded")], "snap-7")
        self.assertRaises(pit.PointInTimeFailed, pit.backup_job_done, [other], "snap-7")

    def test_copy_target(self) -> None:
        path = os.path.join(self.mktemp())
        pit.create_copy_target(path, 3 * MIB + 1)
        found = os.stat(path)
        self.assertEqual((found.st_size, found.st_mode & 0o777), (3 * MIB + 1, 0o600))
        self.assertLess(found.st_blocks, 64)  # sparse
        self.assertRaises(FileExistsError, pit.create_copy_target, path, 1)
