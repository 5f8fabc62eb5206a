"""
L{FilesystemObjectStore}'s objects: commit, head, open, delete, copy, ACLs,
hostile keys, atomic overwrite, aborted and oversized writers, closing; one
contract suite run with the in-memory datastore (inline thread runner, no
reactor) and with Redis at 127.0.0.1:6379 (real worker threads).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from nova.datastore import keys
from nova.objectstore import errors
from nova.objectstore.interfaces import IObjectStore, IReadHandle, IWriter, NewObject
from nova.objectstore.store import FilesystemObjectStore
from nova.objectstore.store.writer import WriterStateError
from tests.test_objectstore_store_harness import (OTHER, OWNER, START, MemoryStoreHarness,
                                                  RedisStoreHarness, files_under)


class ObjectContractMixin:
    """Objects: what every datastore gives."""

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
            self.assertEqual(path.parent.parent, self.root / "objects")
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


