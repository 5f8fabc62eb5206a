"""
L{FilesystemObjectStore}: buckets and objects, as one contract suite run with
the in-memory datastore (and an inline thread runner: no reactor) and with
Redis at 127.0.0.1:6379 (real worker threads). The harness classes here
serve the other C{test_objectstore_store_*} modules too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Awaitable

from twisted.internet import defer
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from nova.datastore import keys
from nova.datastore.interfaces import IDatastore
from nova.objectstore import errors
from nova.objectstore.interfaces import (CANNED_ACLS, IObjectStore, IReadHandle, IWriter,
                                         NewObject, ObjectInfo, Owner)
from nova.objectstore.store import FilesystemObjectStore, inline_runner, thread_runner
from nova.objectstore.store.writer import WriterStateError
from tests.test_datastore_contract import MemoryHarness, RedisHarness

OWNER = Owner(project_id="proj-a", display_name="proj-a")
OTHER = Owner(project_id="proj-b", display_name="proj-b")
START = 1_700_000_000.0


def files_under(root: Path) -> list[Path]:
    """@return: every file below C{root}."""
    return [Path(d) / f for d, _, names in os.walk(root) for f in names]


class StoreHarness:
    """
    A store on a temporary directory. Subclasses give C{self.store_ds}
    (the datastore) and C{self.runner}; L{make_store} makes more stores on
    the same directory and datastore (a restart).
    """

    store: FilesystemObjectStore
    datastore: IDatastore
    min_part_size = 5 * 1024 * 1024
    max_object_size = 64 * 1024 * 1024

    def runner(self) -> Any:
        raise NotImplementedError

    async def start_store(self) -> None:
        self.root = Path(self.mktemp())  # type: ignore[attr-defined]
        self.store = await self.make_store()

    async def make_store(self, datastore: IDatastore | None = None,
                         open: bool = True) -> FilesystemObjectStore:
        """@return: a store on C{self.root}, opened, closed at the end of the test."""
        store = FilesystemObjectStore(self.root, datastore or self.datastore, self.clock,
                                      self.runner(), self.max_object_size,
                                      min_part_size=self.min_part_size)
        if open:
            await store.open()
        self.addCleanup(store.close)  # type: ignore[attr-defined]
        return store

    async def put(self, bucket: str, key: str, body: bytes = b"body",
                  chunks: int = 3, store: FilesystemObjectStore | None = None,
                  **new: Any) -> ObjectInfo:
        """Stream C{body} in a few writes and commit it as C{bucket/key}."""
        store = store or self.store
        writer = store.new_writer(bucket)
        step = max(1, -(-len(body) // chunks))
        for i in range(0, len(body), step):
            writer.write(body[i:i + step])
        new.setdefault("owner", OWNER)
        return await store.commit_object(writer, bucket, key, NewObject(**new))

    async def read_all(self, bucket: str, key: str,
                       store: FilesystemObjectStore | None = None) -> bytes:
        handle = await (store or self.store).open_object(bucket, key)
        try:
            return handle.read(0, handle.info.size + 10)
        finally:
            handle.close()

    async def assertFails(self, exc: type[BaseException], coro: Awaitable[Any]) -> Any:
        try:
            await coro
        except exc as e:
            return e
        raise AssertionError(f"{exc.__name__} not raised")

    def tmp_files(self) -> list[Path]:
        return files_under(self.root / "tmp")

    async def leftovers(self, store: FilesystemObjectStore | None = None) -> list[Path]:
        """@return: the files in C{tmp/} but the spares the store keeps ready for writers."""
        store = store or self.store
        await store._spares.settled()
        spares = {Path(path) for path, _ in store._spares._ready}
        return [p for p in self.tmp_files() if p not in spares]


class MemoryStoreHarness(MemoryHarness, StoreHarness):
    """The in-memory datastore, blocking work run inline: no reactor."""

    async def setUp(self) -> None:  # type: ignore[override]
        MemoryHarness.setUp(self)
        self.clock.advance(START)
        self.datastore = self.store
        await self.start_store()

    def runner(self) -> Any:
        return inline_runner


class RedisStoreHarness(RedisHarness, StoreHarness):
    """Redis at 127.0.0.1 (a prefix of its own), blocking work in the reactor's threads."""

    async def setUp(self) -> None:  # type: ignore[override]
        await RedisHarness.setUp(self)
        self.clock.advance(START)
        self.datastore = self.store
        await self.start_store()

    def runner(self) -> Any:
        from twisted.internet import reactor

        return thread_runner(reactor)


class ObjectContractMixin:
    """Buckets and objects: what every datastore gives."""

    store: FilesystemObjectStore
    assertEqual: Any
    assertTrue: Any
    assertFalse: Any
    assertIn: Any
    assertIsNone: Any

    async def test_provides_interfaces(self) -> None:
        self.assertTrue(verifyObject(IObjectStore, self.store))
        await self.store.create_bucket("bkt", OWNER)
        writer = self.store.new_writer("bkt")
        self.assertTrue(verifyObject(IWriter, writer))
        await self.store.commit_object(writer, "bkt", "k", NewObject(owner=OWNER))
        handle = await self.store.open_object("bkt", "k")
        self.assertTrue(verifyObject(IReadHandle, handle))
        handle.close()

    # -- buckets -----------------------------------------------------------------

    async def test_create_get_list_buckets(self) -> None:
        made = await self.store.create_bucket("bkt-1", OWNER, acl="public-read")
        self.assertEqual((made.name, made.owner, made.acl, made.created_at),
                         ("bkt-1", OWNER, "public-read", START))
        await self.store.create_bucket("bkt-0", OWNER)
        await self.store.create_bucket("other.bkt", OTHER)
        self.assertEqual(await self.store.get_bucket("bkt-1"), made)
        self.assertEqual([b.name for b in await self.store.list_buckets("proj-a")],
                         ["bkt-0", "bkt-1"])
        self.assertEqual([b.name for b in await self.store.list_buckets()],
                         ["bkt-0", "bkt-1", "other.bkt"])
        self.assertEqual(await self.store.list_buckets("nobody"), [])
        self.assertTrue((self.root / "buckets" / "bkt-1.json").exists())

    async def test_bucket_taken(self) -> None:
        await self.store.create_bucket("bkt", OWNER)
        await self.assertFails(errors.BucketAlreadyOwnedByYou,
                               self.store.create_bucket("bkt", OWNER))
        await self.assertFails(errors.BucketAlreadyExists, self.store.create_bucket("bkt", OTHER))
        self.assertEqual((await self.store.get_bucket("bkt")).owner, OWNER)

    async def test_concurrent_creates_one_wins(self) -> None:
        owners = [Owner(project_id=f"p{i}", display_name=f"p{i}") for i in range(6)]
        results = await defer.DeferredList(
            [defer.Deferred.fromCoroutine(self.store.create_bucket("race", o)) for o in owners],
            consumeErrors=True)
        won = [r for ok, r in results if ok]
        lost = [r for ok, r in results if not ok]
        self.assertEqual(len(won), 1)
        self.assertTrue(all(f.check(errors.BucketAlreadyExists) for f in lost))
        self.assertEqual((await self.store.get_bucket("race")).owner, won[0].owner)

    async def test_bad_bucket_names(self) -> None:
        await self.assertFails(errors.InvalidBucketName, self.store.create_bucket("A-B", OWNER))
        await self.assertFails(errors.NoSuchBucket, self.store.get_bucket("A-B"))
        await self.assertFails(errors.NoSuchBucket, self.store.get_bucket("absent"))
        await self.assertFails(errors.InvalidArgument,
                               self.store.create_bucket("bkt", OWNER, acl="everyone"))

    async def test_delete_bucket(self) -> None:
        await self.store.create_bucket("bkt", OWNER)
        await self.put("bkt", "k")
        upload = await self.store.create_upload("bkt", "big", NewObject(owner=OWNER))
        await self.assertFails(errors.BucketNotEmpty, self.store.delete_bucket("bkt"))
        await self.store.delete_object("bkt", "k")
        await self.assertFails(errors.BucketNotEmpty, self.store.delete_bucket("bkt"))
        await self.store.abort_upload(upload.upload_id)
        await self.store.delete_bucket("bkt")
        await self.assertFails(errors.NoSuchBucket, self.store.get_bucket("bkt"))
        await self.assertFails(errors.NoSuchBucket, self.store.delete_bucket("bkt"))
        self.assertEqual(await self.store.list_buckets(), [])
        self.assertEqual(files_under(self.root / "buckets"), [])
        self.assertEqual(files_under(self.root / "uploads"), [])
        self.assertEqual(await self.datastore.scan("s3:*"), [])
        # the name is free again, for anyone
        self.assertEqual((await self.store.create_bucket("bkt", OTHER)).owner, OTHER)
        self.assertEqual((await self.store.list_objects("bkt")).contents, ())

    async def test_bucket_acl(self) -> None:
        await self.store.create_bucket("bkt", OWNER)
        for acl in CANNED_ACLS:
            self.assertEqual((await self.store.set_bucket_acl("bkt", acl)).acl, acl)
            self.assertEqual((await self.store.get_bucket("bkt")).acl, acl)
        await self.assertFails(errors.InvalidArgument, self.store.set_bucket_acl("bkt", "open"))
        await self.assertFails(errors.NoSuchBucket, self.store.set_bucket_acl("nope", "private"))

    # -- objects -----------------------------------------------------------------------

    async def test_commit_head_open(self) -> None:
        await self.store.create_bucket("bkt", OWNER)
        self.clock.advance(5)
        info = await self.put("bkt", "dir/file.txt", b"hello world", content_type="text/plain",
                              headers={"cache-control": "no-cache"},
                              metadata={"colour": "blue"}, acl="public-read")
        self.assertEqual((info.bucket, info.key, info.size, info.last_modified),
                         ("bkt", "dir/file.txt", 11, START + 5))
        self.assertEqual(info.etag, "5eb63bbbe01eeed093cb22bb8f5acdc3")
        self.assertEqual(await self.store.head_object("bkt", "dir/file.txt"), info)
        handle = await self.store.open_object("bkt", "dir/file.txt")
        try:
            self.assertEqual(handle.info, info)
            self.assertEqual(handle.read(6, 100), b"world")
            self.assertEqual(handle.read(11, 5), b"")
            os.lseek(handle.fileno(), handle.data_offset, os.SEEK_SET)
            self.assertEqual(os.read(handle.fileno(), 100), b"hello world")
        finally:
            handle.close()
            handle.close()
        self.assertEqual(await self.leftovers(), [])

    async def test_missing(self) -> None:
        await self.store.create_bucket("bkt", OWNER)
        await self.assertFails(errors.NoSuchKey, self.store.head_object("bkt", "nope"))
        await self.assertFails(errors.NoSuchKey, self.store.open_object("bkt", "nope"))
        await self.assertFails(errors.NoSuchBucket, self.store.head_object("nope", "k"))
        await self.assertFails(errors.NoSuchBucket, self.store.open_object("nope", "k"))
        await self.assertFails(errors.NoSuchKey, self.store.head_object("bkt", "x" * 2000))
        writer = self.store.new_writer("nope")
        writer.write(b"x")
        await self.assertFails(errors.NoSuchBucket, self.store.commit_object(
            writer, "nope", "k", NewObject(owner=OWNER)))
        self.assertEqual(await self.leftovers(), [])

    async def test_empty_body(self) -> None:
        await self.store.create_bucket("bkt", OWNER)
        info = await self.put("bkt", "empty", b"")
        self.assertEqual((info.size, info.etag), (0, "d41d8cd98f00b204e9800998ecf8427e"))
        self.assertEqual(await self.read_all("bkt", "empty"), b"")

    async def test_overwrite_keeps_open_readers_on_their_version(self) -> None:
        await self.store.create_bucket("bkt", OWNER)
        old = await self.put("bkt", "k", b"old body " * 1000, metadata={"v": "1"})
        handle = await self.store.open_object("bkt", "k")
        try:
            new = await self.put("bkt", "k", b"NEW", metadata={"v": "2"})
            # the open handle: the old metadata and the whole old body
            self.assertEqual(handle.info, old)
            self.assertEqual(handle.read(0, old.size), b"old body " * 1000)
            # a new reader: the new version, never a mix
            self.assertEqual(await self.read_all("bkt", "k"), b"NEW")
            self.assertEqual(await self.store.head_object("bkt", "k"), new)
        finally:
            handle.close()
        listed = (await self.store.list_objects("bkt")).contents
        self.assertEqual([(i.key, i.etag, i.size) for i in listed], [("k", new.etag, 3)])

    async def test_delete_object(self) -> None:
        await self.store.create_bucket("bkt", OWNER)
        await self.put("bkt", "k")
        handle = await self.store.open_object("bkt", "k")
        self.assertTrue(await self.store.delete_object("bkt", "k"))
        self.assertFalse(await self.store.delete_object("bkt", "k"))  # idempotent
        self.assertFalse(await self.store.delete_object("bkt", "x" * 2000))
        self.assertEqual(handle.read(0, 10), b"body")  # still open on the unlinked file
        handle.close()
        await self.assertFails(errors.NoSuchKey, self.store.head_object("bkt", "k"))
        self.assertEqual((await self.store.list_objects("bkt")).contents, ())
        await self.assertFails(errors.NoSuchBucket, self.store.delete_object("nope", "k"))
        self.assertEqual(files_under(self.root / "objects"), [])

    async def test_abort_leaves_nothing(self) -> None:
        await self.store.create_bucket("bkt", OWNER)
        writer = self.store.new_writer("bkt")
        writer.write(b"x" * 100000)
        writer.abort()
        writer.abort()
        await self.assertFails(WriterStateError, self.store.commit_object(
            writer, "bkt", "k", NewObject(owner=OWNER)))
        await self.store.close()  # waits for the removal in a worker thread
        self.assertEqual(self.tmp_files(), [])
        self.assertEqual(files_under(self.root / "objects"), [])

    async def test_entity_too_large(self) -> None:
        await self.store.create_bucket("bkt", OWNER)
        writer = self.store.new_writer("bkt")
        writer.write(b"x" * (self.store.max_object_size - 1))
        writer.write(b"x")
        try:
            writer.write(b"x")
        except errors.EntityTooLarge:
            pass
        else:
            raise AssertionError("EntityTooLarge not raised")
        await self.store.close()
        self.assertEqual(self.tmp_files(), [])

    async def test_digests(self) -> None:
        import hashlib

        await self.store.create_bucket("bkt", OWNER)
        writer = self.store.new_writer("bkt")
        for chunk in (b"abc", b"", b"def" * 5000):
            writer.write(chunk)
        whole = b"abc" + b"def" * 5000
        self.assertEqual(writer.size, len(whole))
        self.assertEqual(writer.md5_hex(), hashlib.md5(whole).hexdigest())
        self.assertEqual(writer.md5_bytes(), hashlib.md5(whole).digest())
        self.assertEqual(writer.sha256_hex(), hashlib.sha256(whole).hexdigest())
        writer.abort()

    async def test_writer_without_sha256(self) -> None:
        import hashlib

        await self.store.create_bucket("bkt", OWNER)
        writer = self.store.new_writer("bkt", sha256=False)
        writer.write(b"abc")
        self.assertEqual(writer.md5_hex(), hashlib.md5(b"abc").hexdigest())
        self.assertRaises(WriterStateError, writer.sha256_hex)  # type: ignore[attr-defined]
        info = await self.store.commit_object(writer, "bkt", "k", NewObject(owner=OWNER))
        self.assertEqual(await self.store.head_object("bkt", "k"), info)

    async def test_close_twice_and_unopened(self) -> None:
        first = defer.Deferred.fromCoroutine(self.store.close())
        second = defer.Deferred.fromCoroutine(self.store.close())
        await defer.gatherResults([first, second])
        self.assertTrue((self.root / "clean-shutdown").exists())
        unopened = await self.make_store(open=False)  # type: ignore[attr-defined]
        await unopened.close()
        await self.assertFails(errors.ServiceUnavailable, unopened.create_bucket("b", OWNER))

    async def test_commit_into_deleted_bucket_leaves_nothing(self) -> None:
        await self.store.create_bucket("bkt", OWNER)
        writer = self.store.new_writer("bkt")
        writer.write(b"late")
        await self.store.delete_bucket("bkt")
        await self.store.create_bucket("bkt", OTHER)  # another bucket of the same name
        # the writer was for the bucket of the same name: it is a new bucket,
        # but the commit checks at its own start, so it lands in the new one
        info = await self.store.commit_object(writer, "bkt", "k", NewObject(owner=OWNER))
        self.assertEqual(info.size, 4)
        await self.store.delete_object("bkt", "k")
        await self.store.delete_bucket("bkt")
        writer = self.store.new_writer("bkt")
        writer.write(b"late")
        await self.assertFails(errors.NoSuchBucket, self.store.commit_object(
            writer, "bkt", "k", NewObject(owner=OWNER)))
        self.assertEqual(files_under(self.root / "objects"), [])

    async def test_hostile_keys(self) -> None:
        await self.store.create_bucket("bkt", OWNER)
        hostile = ["../../etc/passwd", "/etc/passwd", "..", ".", "a\x00b", "\x00",
                   "a/../../../b", "x" * 1024, "\u00e9" * 512, "\U0001f600" * 256,
                   "tmp/../buckets/bkt.json", "\\..\\windows", "\n\r\t", "\ufeffbom"]
        for i, key in enumerate(hostile):
            await self.put("bkt", key, f"body {i}".encode())
        for i, key in enumerate(hostile):
            self.assertEqual(await self.read_all("bkt", key), f"body {i}".encode())
            self.assertEqual((await self.store.head_object("bkt", key)).key, key)
        listed = await self.store.list_objects("bkt")
        self.assertEqual([i.key for i in listed.contents],
                         sorted(hostile, key=lambda k: k.encode("utf-8")))
        # every file is a hash-named object file under objects/, nothing else
        objects = files_under(self.root / "objects")
        self.assertEqual(len(objects), len(hostile))
        for path in objects:
            self.assertEqual(len(path.name), 64)
            self.assertEqual(path.parent.parent.parent, self.root / "objects")
        self.assertEqual(files_under(self.root / "buckets"), [self.root / "buckets" / "bkt.json"])
        self.assertFalse(Path("/etc/passwd.tmp").exists())

    async def test_key_rules(self) -> None:
        await self.store.create_bucket("bkt", OWNER)
        for key in ["x" * 1025, "\u00e9" * 513, "\U0001f600" * 257]:
            await self.assertFails(errors.KeyTooLongError, self.put("bkt", key))
        for key in ["", "\ud800 lone surrogate"]:
            await self.assertFails(errors.InvalidArgument, self.put("bkt", key))
        await self.store.close()  # waits for the writers' removal in a worker thread
        self.assertEqual(self.tmp_files(), [])
        self.assertEqual(files_under(self.root / "objects"), [])

    async def test_copy(self) -> None:
        await self.store.create_bucket("src", OWNER)
        await self.store.create_bucket("dst", OTHER)
        body = bytes(range(256)) * 5000
        source = await self.put("src", "k", body, metadata={"a": "1"})
        copied = await self.store.copy_object("src", "k", "dst", "copy",
                                              NewObject(owner=OTHER, metadata={"b": "2"}))
        self.assertEqual((copied.bucket, copied.key, copied.size, copied.etag),
                         ("dst", "copy", len(body), source.etag))
        self.assertEqual((copied.metadata, copied.owner), ({"b": "2"}, OTHER))
        self.assertEqual(await self.read_all("dst", "copy"), body)
        self.assertEqual(await self.read_all("src", "k"), body)
        await self.assertFails(errors.NoSuchKey, self.store.copy_object(
            "src", "nope", "dst", "x", NewObject(owner=OWNER)))
        await self.assertFails(errors.NoSuchBucket, self.store.copy_object(
            "src", "k", "nope", "x", NewObject(owner=OWNER)))
        await self.assertFails(errors.KeyTooLongError, self.store.copy_object(
            "src", "k", "dst", "x" * 1025, NewObject(owner=OWNER)))
        self.assertEqual(await self.leftovers(), [])

    async def test_copy_onto_itself_replaces_metadata(self) -> None:
        await self.store.create_bucket("bkt", OWNER)
        first = await self.put("bkt", "k", b"same body", content_type="text/plain",
                               metadata={"v": "1"})
        handle = await self.store.open_object("bkt", "k")
        self.clock.advance(10)
        again = await self.store.copy_object(
            "bkt", "k", "bkt", "k", NewObject(owner=OWNER, content_type="text/html",
                                              metadata={"v": "2"}))
        self.assertEqual((again.etag, again.content_type, again.metadata, again.last_modified),
                         (first.etag, "text/html", {"v": "2"}, START + 10))
        self.assertEqual(await self.store.head_object("bkt", "k"), again)
        self.assertEqual(await self.read_all("bkt", "k"), b"same body")
        self.assertEqual(handle.info.metadata, {"v": "1"})
        handle.close()

    async def test_object_acl(self) -> None:
        await self.store.create_bucket("bkt", OWNER)
        before = await self.put("bkt", "k", b"x" * 10000)
        self.clock.advance(60)
        after = await self.store.set_object_acl("bkt", "k", "public-read")
        self.assertEqual(after.acl, "public-read")
        self.assertEqual((after.etag, after.last_modified, after.size),
                         (before.etag, before.last_modified, before.size))
        self.assertEqual((await self.store.head_object("bkt", "k")).acl, "public-read")
        self.assertEqual(await self.read_all("bkt", "k"), b"x" * 10000)
        await self.assertFails(errors.InvalidArgument,
                               self.store.set_object_acl("bkt", "k", "world"))
        await self.assertFails(errors.NoSuchKey,
                               self.store.set_object_acl("bkt", "nope", "private"))
        await self.assertFails(errors.InvalidArgument, self.put("bkt", "j", acl="world"))

    async def test_large_metadata_header(self) -> None:
        # user metadata too big for the first page: the body moves behind it
        await self.store.create_bucket("bkt", OWNER)
        metadata = {f"m{i}": "v" * 100 for i in range(100)}
        info = await self.put("bkt", "k", b"the body", metadata=metadata)
        self.assertEqual((await self.store.head_object("bkt", "k")).metadata, metadata)
        handle = await self.store.open_object("bkt", "k")
        self.assertTrue(handle.data_offset > 4096)
        self.assertEqual(handle.read(0, 100), b"the body")
        self.assertEqual(handle.info, info)
        handle.close()
        self.assertEqual(await self.leftovers(), [])

    async def test_concurrent_commits_of_one_key_keep_index_in_step(self) -> None:
        await self.store.create_bucket("bkt", OWNER)
        bodies = [f"version {i} ".encode() * (i + 1) * 100 for i in range(8)]
        await defer.gatherResults(
            [defer.Deferred.fromCoroutine(self.put("bkt", "k", b)) for b in bodies])
        on_disk = await self.store.head_object("bkt", "k")
        listed = (await self.store.list_objects("bkt")).contents
        self.assertEqual([(i.etag, i.size) for i in listed], [(on_disk.etag, on_disk.size)])

    async def test_closed_store_refuses_changes(self) -> None:
        await self.store.create_bucket("bkt", OWNER)
        await self.put("bkt", "k")
        await self.store.close()
        await self.assertFails(errors.ServiceUnavailable, self.store.create_bucket("b2", OWNER))
        await self.assertFails(errors.ServiceUnavailable, self.store.delete_object("bkt", "k"))
        self.assertRaises(errors.ServiceUnavailable, self.store.new_writer, "bkt")  # type: ignore[attr-defined]
        # reads still answer
        self.assertEqual(await self.read_all("bkt", "k"), b"body")
        self.assertTrue((self.root / "clean-shutdown").exists())
        self.assertTrue(await self.datastore.get(keys.s3_clean_token()))


class MemoryObjectTests(MemoryStoreHarness, ObjectContractMixin, unittest.TestCase):
    """The object contract, in memory."""


class RedisObjectTests(RedisStoreHarness, ObjectContractMixin, unittest.TestCase):
    """The object contract on Redis, with worker threads."""


