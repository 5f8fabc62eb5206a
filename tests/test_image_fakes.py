"""
In-memory stand-ins for the image registrar's unit tests: an object store
with per-project buckets (L{FakeObjectStore}) and clients of it signed as a
project or as the admin (the methods of L{nova.objectstore.client.ObjectStoreClient}
the registrar uses), sample image bytes, and a registrar built on them.

The fake store checks what the real one checks that matters here: who may
read (the bucket's project, admins, or anyone for a public bucket), ETag
pinning (C{If-Match}), ranges.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any, Callable

from twisted.internet import task
from twisted.trial import unittest

from nova.context import RequestContext
from nova.datastore.memory import MemoryDatastore
from nova.image.registrar import ImageRegistrar
from nova.image.repository import ImageRepository
from nova.objectstore import errors
from nova.objectstore.client import BucketListing, ObjectHead, ObjectSummary
from nova.utils.process import FakeProcessRunner, RecordedCall, Reply

ADMIN = "admin"
MIB = 1024 * 1024


def raw_disk(size: int = 64 * 1024, random: bool = False) -> bytes:
    """
    @param random: fill the partition with random bytes (incompressible).
    @return: a small disk with an MBR and one Linux partition entry.
    """
    mbr = bytearray(512)
    mbr[446:462] = bytes([0x00, 0, 2, 0, 0x83, 0, 0, 0]) + struct.pack("<II", 1, size // 512 - 1)
    mbr[510:512] = b"\x55\xaa"
    return bytes(mbr) + (os.urandom(size - 512) if random else b"\0" * (size - 512))


def qcow2_header(backing: bool = False, data_file: bool = False, version: int = 3) -> bytes:
    """@return: the first bytes of a qcow2 image (enough for the header checks)."""
    head = bytearray(512)
    head[0:4] = b"QFI\xfb"
    struct.pack_into(">IQI", head, 4, version, 512 if backing else 0, 8 if backing else 0)
    struct.pack_into(">I", head, 20, 16)
    struct.pack_into(">Q", head, 24, 1 * MIB)
    if version == 3:
        struct.pack_into(">Q", head, 72, 4 if data_file else 0)
    return bytes(head)


def kernel_bytes() -> bytes:
    """@return: something with a bzImage header."""
    data = bytearray(8192)
    data[510:512] = b"\x55\xaa"
    data[0x202:0x206] = b"HdrS"
    return bytes(data)


def qemu_info(fmt: str, size: int, **extra: Any) -> bytes:
    return json.dumps({"format": fmt, "virtual-size": size, "filename": "x",
                       "actual-size": size, **extra}).encode()


class FakeObjectStore:
    """Buckets of projects, in memory."""

    def __init__(self) -> None:
        self.buckets: dict[str, dict[str, Any]] = {}
        self.objects: dict[tuple[str, str], bytes] = {}
        self.fail_put: BaseException | None = None
        self.on_put: Callable[[str, str], Any] | None = None

    def add(self, project: str, bucket: str, key: str, data: bytes,
            public: bool = False) -> str:
        """Store an object in C{project}'s bucket; @return: its location."""
        self.buckets.setdefault(bucket, {"owner": project, "public": public})
        self.objects[(bucket, key)] = data
        return f"{bucket}/{key}"

    def keys(self, bucket: str) -> list[str]:
        return sorted(k for b, k in self.objects if b == bucket)

    def client(self, project: str, admin: bool = False) -> "FakeClient":
        return FakeClient(self, project, admin)


def _etag(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class FakeClient:
    """The registrar's side of L{nova.objectstore.client.ObjectStoreClient}."""

    def __init__(self, store: FakeObjectStore, project: str, admin: bool) -> None:
        self.store = store
        self.project = project
        self.admin = admin
        self.closed = False

    def _readable(self, bucket: str, key: str) -> bytes:
        meta = self.store.buckets.get(bucket)
        if meta is None:
            raise errors.NoSuchBucket(bucket)
        if not (self.admin or meta["public"] or meta["owner"] == self.project):
            raise errors.AccessDenied(f"{bucket}/{key}")
        if (bucket, key) not in self.store.objects:
            raise errors.NoSuchKey(f"{bucket}/{key}")
        return self.store.objects[(bucket, key)]

    async def close(self) -> None:
        self.closed = True

    async def head_object(self, bucket: str, key: str) -> ObjectHead:
        try:
            data = self._readable(bucket, key)
        except errors.NoSuchBucket:
            raise errors.NoSuchKey(f"{bucket}/{key}") from None  # HEAD cannot tell
        return ObjectHead(key=key, size=len(data), etag=_etag(data), last_modified=None,
                          content_type="binary/octet-stream")

    def _pinned(self, bucket: str, key: str, etag: str | None) -> bytes:
        data = self._readable(bucket, key)
        if etag is not None and etag != _etag(data):
            raise errors.PreconditionFailed(f"{bucket}/{key}")
        return data

    async def get_object_range(self, bucket: str, key: str, first: int, length: int,
                               expected_etag: str | None = None) -> bytes:
        return self._pinned(bucket, key, expected_etag)[first:first + length]

    async def get_object_bytes(self, bucket: str, key: str, max_size: int) -> bytes:
        data = self._readable(bucket, key)
        if len(data) > max_size:
            raise errors.EntityTooLarge(f"{bucket}/{key}")
        return data

    async def get_object_to_file(self, bucket: str, key: str, path: str,
                                 expected_etag: str | None = None) -> ObjectHead:
        data = self._pinned(bucket, key, expected_etag)
        Path(path).write_bytes(data)
        return await self.head_object(bucket, key)

    async def create_bucket(self, bucket: str, acl: str | None = None) -> None:
        meta = self.store.buckets.get(bucket)
        if meta is not None:
            if meta["owner"] == self.project:
                raise errors.BucketAlreadyOwnedByYou(bucket)
            raise errors.BucketAlreadyExists(bucket)
        self.store.buckets[bucket] = {"owner": self.project, "public": False}

    async def put_object_from_file(self, bucket: str, key: str, path: str,
                                   content_type: str = "binary/octet-stream",
                                   metadata: dict[str, str] | None = None) -> str:
        if bucket not in self.store.buckets:
            raise errors.NoSuchBucket(bucket)
        if self.store.on_put is not None:
            await self.store.on_put(bucket, key)
        data = Path(path).read_bytes()
        self.store.objects[(bucket, key)] = data
        if self.store.fail_put is not None:
            # the upload went (partly) through, then failed
            raise self.store.fail_put
        return _etag(data)

    async def delete_object(self, bucket: str, key: str) -> None:
        if bucket not in self.store.buckets:
            raise errors.NoSuchBucket(bucket)
        self.store.objects.pop((bucket, key), None)

    async def list_objects(self, bucket: str, prefix: str = "", delimiter: str = "",
                           page_size: int = 1000) -> BucketListing:
        if bucket not in self.store.buckets:
            raise errors.NoSuchBucket(bucket)
        return BucketListing(objects=tuple(
            ObjectSummary(key=k, size=len(self.store.objects[(bucket, k)]), etag="",
                          last_modified="") for k in self.store.keys(bucket)
            if k.startswith(prefix)), common_prefixes=())


async def in_line(fn: Callable[..., Any], *args: Any) -> Any:
    """A C{run_in_thread} that runs the function at once (unit tests)."""
    return fn(*args)


def context(project: str = "proj", user: str = "alice", admin: bool = False) -> RequestContext:
    return RequestContext(user_id=user, project_id=project, is_admin=admin,
                          roles=("projectmanager",))


class RegistrarHarness(unittest.TestCase):
    """A registrar on a memory datastore, the fake store and a fake qemu-img."""

    ca: Any = None

    def setUp(self) -> None:
        self.clock = task.Clock()
        self.clock.advance(1_700_000_000)
        self.datastore = MemoryDatastore(self.clock, "nova-test:")
        self.repo = ImageRepository(self.datastore, self.clock)
        self.s3 = FakeObjectStore()
        self.runner = FakeProcessRunner()
        self.runner.add_handler(["qemu-img", "info"], self._qemu_info)
        self.work = Path(self.mktemp())
        self.clients: list[FakeClient] = []
        self.registrar = self.make_registrar()

    def make_registrar(self, **kwargs: Any) -> ImageRegistrar:
        async def service() -> FakeClient:
            return self._track(self.s3.client(ADMIN, admin=True))

        async def user(user_id: str, project_id: str) -> FakeClient:
            return self._track(self.s3.client(project_id))

        registrar = ImageRegistrar(self.repo, service, user, self.ca, in_line, self.runner,
                                   self.work, self.clock, **kwargs)
        self.addCleanup(lambda: defer_close(registrar))
        return registrar

    def _track(self, client: FakeClient) -> FakeClient:
        self.clients.append(client)
        return client

    @staticmethod
    def _qemu_info(call: RecordedCall) -> Reply:
        fmt = call.argv[call.argv.index("-f") + 1]
        size = os.path.getsize(call.argv[-1])
        if fmt == "qcow2":
            return Reply(stdout=qemu_info("qcow2", 1 * MIB, **{
                "format-specific": {"type": "qcow2", "data": {"compat": "1.1",
                                                              "corrupt": False}}}))
        return Reply(stdout=qemu_info(fmt, size))

    def leftovers(self) -> list[str]:
        """@return: files left in the work directory."""
        if not self.work.exists():
            return []
        return sorted(str(p.relative_to(self.work)) for p in self.work.rglob("*"))

    def assert_clean(self) -> None:
        self.assertEqual(self.leftovers(), [])
        self.assertTrue(all(c.closed for c in self.clients), "a client was not closed")


def defer_close(registrar: ImageRegistrar) -> Any:
    from twisted.internet import defer
    return defer.Deferred.fromCoroutine(registrar.close())
