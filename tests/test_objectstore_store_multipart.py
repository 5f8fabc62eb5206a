"""
Multipart uploads of L{FilesystemObjectStore}: parts, copies of ranges,
listing, completion rules (order, missing or wrong parts, small parts), the
C{md5-of-md5s-N} entity tag, abort; on the in-memory datastore and Redis.
"""

from __future__ import annotations

import hashlib
from typing import Any

from twisted.trial import unittest

from nova.objectstore import errors
from nova.objectstore.interfaces import NewObject, Part
from tests.test_objectstore_store_harness import (OTHER, OWNER, START, MemoryStoreHarness,
                                                  RedisStoreHarness, files_under)


def multipart_etag(bodies: list[bytes]) -> str:
    """The entity tag S3 gives a multipart object, computed from the bodies."""
    digests = b"".join(hashlib.md5(b).digest() for b in bodies)
    return f"{hashlib.md5(digests).hexdigest()}-{len(bodies)}"


class MultipartContractMixin:
    """Multipart uploads: what every datastore gives (parts of 1 KiB and up)."""

    store: Any
    assertEqual: Any
    assertTrue: Any
    assertFalse: Any

    async def begin(self, key: str = "big", bucket: str = "bkt", **new: Any) -> str:
        try:
            await self.store.create_bucket(bucket, OWNER)
        except errors.BucketAlreadyOwnedByYou:
            pass
        new.setdefault("owner", OWNER)
        upload = await self.store.create_upload(bucket, key, NewObject(**new))
        return upload.upload_id  # type: ignore[no-any-return]

    async def part(self, upload_id: str, number: int, body: bytes) -> Part:
        writer = self.store.new_writer("bkt")
        writer.write(body)
        return await self.store.commit_part(writer, upload_id, number)  # type: ignore[no-any-return]

    async def test_upload_and_complete(self) -> None:
        upload_id = await self.begin(content_type="video/mp4", metadata={"m": "1"},
                                     acl="public-read")
        self.assertEqual(len(upload_id), 32)
        bodies = [b"A" * 1024, b"B" * 2000, b"C" * 10]
        for number, body in zip([1, 2, 3], bodies):
            part = await self.part(upload_id, number, body)
            self.assertEqual((part.part_number, part.etag, part.size),
                             (number, hashlib.md5(body).hexdigest(), len(body)))
        listed = await self.store.list_parts(upload_id)
        self.assertEqual([p.part_number for p in listed], [1, 2, 3])
        self.assertEqual([p.part_number for p in await self.store.list_parts(upload_id, 1, 1)],
                         [2])
        self.clock.advance(3)
        info = await self.store.complete_upload(
            upload_id, [(1, f'"{hashlib.md5(bodies[0]).hexdigest()}"'),
                        (2, hashlib.md5(bodies[1]).hexdigest().upper()),
                        (3, hashlib.md5(bodies[2]).hexdigest())])
        self.assertEqual(info.etag, multipart_etag(bodies))
        self.assertEqual((info.size, info.content_type, info.metadata, info.acl,
                          info.last_modified),
                         (3034, "video/mp4", {"m": "1"}, "public-read", START + 3))
        self.assertEqual(await self.read_all("bkt", "big"), b"".join(bodies))  # type: ignore[attr-defined]
        self.assertEqual(await self.store.head_object("bkt", "big"), info)
        listed_objects = (await self.store.list_objects("bkt")).contents
        self.assertEqual([(i.key, i.etag) for i in listed_objects], [("big", info.etag)])
        # the upload is gone, with its files and records
        await self.assertFails(errors.NoSuchUpload, self.store.get_upload(upload_id))  # type: ignore[attr-defined]
        await self.assertFails(errors.NoSuchUpload, self.store.list_parts(upload_id))  # type: ignore[attr-defined]
        self.assertEqual(files_under(self.root / "uploads"), [])  # type: ignore[attr-defined]
        self.assertEqual(await self.store.list_uploads("bkt"), [])
        await self.store.delete_object("bkt", "big")
        await self.store.delete_bucket("bkt")

    async def test_part_replaced(self) -> None:
        upload_id = await self.begin()
        await self.part(upload_id, 1, b"first" * 300)
        second = await self.part(upload_id, 1, b"second" * 300)
        self.assertEqual(await self.store.list_parts(upload_id), [second])
        info = await self.store.complete_upload(upload_id, [(1, second.etag)])
        self.assertEqual(info.etag, multipart_etag([b"second" * 300]))

    async def test_part_numbers(self) -> None:
        upload_id = await self.begin()
        for bad in [0, 10001, -1]:
            await self.assertFails(errors.InvalidArgument,  # type: ignore[attr-defined]
                                   self.part(upload_id, bad, b"x"))
        await self.part(upload_id, 10000, b"last")
        self.assertEqual([p.part_number for p in await self.store.list_parts(upload_id)],
                         [10000])
        await self.store.close()
        self.assertEqual(self.tmp_files(), [])  # type: ignore[attr-defined]

    async def test_complete_rules(self) -> None:
        upload_id = await self.begin()
        big, small = b"x" * 1024, b"y" * 1023
        p1 = await self.part(upload_id, 1, big)
        p2 = await self.part(upload_id, 2, small)
        p3 = await self.part(upload_id, 3, big)
        fails = self.assertFails  # type: ignore[attr-defined]
        complete = self.store.complete_upload
        await fails(errors.InvalidPartOrder, complete(upload_id, [(2, p2.etag), (1, p1.etag)]))
        await fails(errors.InvalidPartOrder, complete(upload_id, [(1, p1.etag), (1, p1.etag)]))
        await fails(errors.InvalidPart, complete(upload_id, [(1, p1.etag), (4, p1.etag)]))
        await fails(errors.InvalidPart, complete(upload_id, [(1, p2.etag)]))
        await fails(errors.InvalidPart, complete(upload_id, [(1, "not-an-etag")]))
        await fails(errors.EntityTooSmall, complete(upload_id, [(2, p2.etag), (3, p3.etag)]))
        await fails(errors.MalformedXML, complete(upload_id, []))
        # nothing of the failed attempts remains; the upload still works
        self.assertEqual(len(await self.store.list_parts(upload_id)), 3)
        await fails(errors.NoSuchKey, self.store.head_object("bkt", "big"))
        # a small part is fine as the last one, and parts may be skipped
        info = await complete(upload_id, [(1, p1.etag), (2, p2.etag)])
        self.assertEqual(info.etag, multipart_etag([big, small]))
        self.assertEqual(info.size, 2047)
        await self.store.close()
        self.assertEqual(self.tmp_files(), [])  # type: ignore[attr-defined]

    async def test_copy_part(self) -> None:
        upload_id = await self.begin()
        body = bytes(range(256)) * 20
        await self.put("bkt", "src", body)  # type: ignore[attr-defined]
        whole = await self.store.copy_part(upload_id, 1, "bkt", "src")
        self.assertEqual((whole.size, whole.etag), (len(body), hashlib.md5(body).hexdigest()))
        ranged = await self.store.copy_part(upload_id, 2, "bkt", "src", 100, 199)
        self.assertEqual((ranged.size, ranged.etag),
                         (100, hashlib.md5(body[100:200]).hexdigest()))
        fails = self.assertFails  # type: ignore[attr-defined]
        await fails(errors.InvalidRange,
                    self.store.copy_part(upload_id, 3, "bkt", "src", 10, len(body)))
        await fails(errors.InvalidRange, self.store.copy_part(upload_id, 3, "bkt", "src", 5, 4))
        await fails(errors.NoSuchKey, self.store.copy_part(upload_id, 3, "bkt", "nope"))
        await fails(errors.NoSuchUpload,
                    self.store.copy_part("0" * 32, 3, "bkt", "src"))
        info = await self.store.complete_upload(upload_id, [(1, whole.etag), (2, ranged.etag)])
        self.assertEqual(await self.read_all("bkt", "big"), body + body[100:200])  # type: ignore[attr-defined]
        self.assertEqual(info.etag, multipart_etag([body, body[100:200]]))

    async def test_abort(self) -> None:
        upload_id = await self.begin()
        await self.part(upload_id, 1, b"x" * 5000)
        await self.store.abort_upload(upload_id)
        fails = self.assertFails  # type: ignore[attr-defined]
        await fails(errors.NoSuchUpload, self.store.abort_upload(upload_id))
        await fails(errors.NoSuchUpload, self.store.get_upload(upload_id))
        await fails(errors.NoSuchUpload, self.part(upload_id, 2, b"late"))
        await fails(errors.NoSuchUpload, self.store.complete_upload(upload_id, [(1, "x")]))
        await fails(errors.NoSuchUpload, self.store.get_upload("../../etc"))
        self.assertEqual(files_under(self.root / "uploads"), [])  # type: ignore[attr-defined]
        await self.store.close()
        self.assertEqual(self.tmp_files(), [])  # type: ignore[attr-defined]

    async def test_create_upload_rules(self) -> None:
        fails = self.assertFails  # type: ignore[attr-defined]
        await fails(errors.NoSuchBucket,
                    self.store.create_upload("nope", "k", NewObject(owner=OWNER)))
        await self.store.create_bucket("bkt", OWNER)
        await fails(errors.KeyTooLongError,
                    self.store.create_upload("bkt", "k" * 1025, NewObject(owner=OWNER)))
        ids = {await self.begin() for _ in range(5)}
        self.assertEqual(len(ids), 5)

    async def test_list_uploads(self) -> None:
        made = {}
        for key in ["b", "a", "b", "c/d", "a"]:
            self.clock.advance(1)
            made.setdefault(key, []).append(await self.begin(key))
        listed = await self.store.list_uploads("bkt")
        self.assertEqual([(u.key, u.upload_id) for u in listed],
                         [("a", i) for i in made["a"]] + [("b", i) for i in made["b"]]
                         + [("c/d", made["c/d"][0])])
        self.assertEqual([u.key for u in await self.store.list_uploads("bkt", prefix="c/")],
                         ["c/d"])
        self.assertEqual([u.key for u in await self.store.list_uploads("bkt", key_after="a")],
                         ["b", "b", "c/d"])
        after_first_b = await self.store.list_uploads("bkt", key_after="b",
                                                      upload_id_after=made["b"][0])
        self.assertEqual([u.upload_id for u in after_first_b], [made["b"][1], made["c/d"][0]])
        self.assertEqual(len(await self.store.list_uploads("bkt", max_uploads=2)), 2)
        got = await self.store.get_upload(made["c/d"][0])
        self.assertEqual((got.bucket, got.key, got.new_object.owner), ("bkt", "c/d", OWNER))
        await self.assertFails(errors.NoSuchBucket,  # type: ignore[attr-defined]
                               self.store.list_uploads("nope"))

    async def test_upload_survives_restart(self) -> None:
        upload_id = await self.begin(metadata={"k": "v"})
        p1 = await self.part(upload_id, 1, b"1" * 1024)
        await self.store.close()
        store = await self.make_store()  # type: ignore[attr-defined]
        writer = store.new_writer("bkt")
        writer.write(b"2" * 10)
        p2 = await store.commit_part(writer, upload_id, 2)
        info = await store.complete_upload(upload_id, [(1, p1.etag), (2, p2.etag)])
        self.assertEqual((info.etag, info.metadata),
                         (multipart_etag([b"1" * 1024, b"2" * 10]), {"k": "v"}))


class MemoryMultipartTests(MemoryStoreHarness, MultipartContractMixin, unittest.TestCase):
    """Multipart, in memory."""

    min_part_size = 1024


class RedisMultipartTests(RedisStoreHarness, MultipartContractMixin, unittest.TestCase):
    """Multipart, on Redis with worker threads."""

    min_part_size = 1024


class RealPartSizeTests(MemoryStoreHarness, unittest.TestCase):
    """S3's own 5 MiB minimum part size."""

    min_part_size = 5 * 1024 * 1024

    async def test_five_mebibytes(self) -> None:
        await self.store.create_bucket("bkt", OTHER)
        upload = await self.store.create_upload("bkt", "k", NewObject(owner=OTHER))
        bodies = [b"a" * (5 * 1024 * 1024), b"b" * (5 * 1024 * 1024 - 1), b"c"]
        parts = []
        for number, body in enumerate(bodies, 1):
            writer = self.store.new_writer("bkt")
            writer.write(body)
            parts.append(await self.store.commit_part(writer, upload.upload_id, number))
        named = [(p.part_number, p.etag) for p in parts]
        await self.assertFails(errors.EntityTooSmall,
                               self.store.complete_upload(upload.upload_id, named))
        info = await self.store.complete_upload(upload.upload_id, [named[0], named[2]])
        self.assertEqual(info.etag, multipart_etag([bodies[0], bodies[2]]))
        self.assertEqual(info.size, 5 * 1024 * 1024 + 1)
