"""
Starting L{FilesystemObjectStore} after a run that did not stop cleanly: the
writers' leftovers go, and the datastore (bucket records, listing index,
uploads and parts) is brought back in line with the files, which are the
truth. A crash is simulated by dropping a store without closing it and
damaging what a crash could leave behind.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.trial import unittest

from nova.datastore import keys
from nova.datastore.memory import MemoryDatastore
from nova.objectstore import errors
from nova.objectstore.interfaces import NewObject, ObjectInfo
from nova.objectstore.store import FilesystemObjectStore
from nova.objectstore.store.index import ObjectIndex
from tests.test_datastore_contract import unique_prefix
from tests.test_objectstore_store_harness import (OTHER, OWNER, MemoryStoreHarness,
                                                  RedisStoreHarness, files_under)


class RecoveryContractMixin:
    """Recovery: what every datastore gives."""

    store: FilesystemObjectStore
    assertEqual: Any
    assertTrue: Any
    assertIsNone: Any
    assertIsNotNone: Any

    async def populate(self) -> dict[str, Any]:
        """Two buckets, objects, an upload with parts; @return: what a listing should show."""
        store = self.store
        await store.create_bucket("one", OWNER)
        await store.create_bucket("two", OTHER, acl="public-read")
        for key in ["a", "b/c", "b/d", "\u00e9t\u00e9"]:
            await self.put("one", key, key.encode() * 10)  # type: ignore[attr-defined]
        await self.put("two", "x", b"x")  # type: ignore[attr-defined]
        upload = await store.create_upload("one", "big", NewObject(owner=OWNER))
        writer = store.new_writer("one")
        writer.write(b"p" * 100)
        await store.commit_part(writer, upload.upload_id, 3)
        return await self.snapshot(store)

    async def snapshot(self, store: FilesystemObjectStore) -> dict[str, Any]:
        state: dict[str, Any] = {"buckets": await store.list_buckets(),
                                 "one": await store.list_buckets("proj-a")}
        for bucket in state["buckets"]:
            page = await store.list_objects(bucket.name)
            state[bucket.name] = page
            uploads = await store.list_uploads(bucket.name)
            state[f"{bucket.name} uploads"] = uploads
            for upload in uploads:
                state[upload.upload_id] = await store.list_parts(upload.upload_id)
        return state

    async def crash_and_restart(self, datastore: Any = None) -> FilesystemObjectStore:
        """Leave the store as a crash leaves it (no close) and start another on the same files."""
        self.store._state = "crashed"  # its clean-up close() must not leave the marker
        store = await self.make_store(datastore)  # type: ignore[attr-defined]
        self.assertIsNotNone(store.last_recovery)
        return store

    async def test_clean_restart_does_not_reconcile(self) -> None:
        before = await self.populate()
        await self.store.close()
        store = await self.make_store()  # type: ignore[attr-defined]
        self.assertIsNone(store.last_recovery)
        self.assertEqual(await self.snapshot(store), before)

    async def test_missing_index_rebuilt(self) -> None:
        before = await self.populate()
        # a crash between the rename and the index update, for every object
        index = ObjectIndex(self.datastore)  # type: ignore[attr-defined]
        await index.drop("one")
        await index.drop("two")
        store = await self.crash_and_restart()
        self.assertEqual(store.last_recovery.index_added, 5)  # type: ignore[union-attr]
        self.assertEqual(await self.snapshot(store), before)

    async def test_stale_index_corrected(self) -> None:
        before = await self.populate()
        index = ObjectIndex(self.datastore)  # type: ignore[attr-defined]
        # entries whose files are gone (a crash after the unlink), a wrong summary
        ghost = ObjectInfo(bucket="one", key="ghost", size=1, etag="0" * 32,
                           last_modified=1.0, owner=OWNER)
        await index.put_many("one", [ghost])
        await index.put_many("two", [ObjectInfo(bucket="two", key="x", size=999, etag="f" * 32,
                                                last_modified=1.0, owner=OWNER)])
        store = await self.crash_and_restart()
        report = store.last_recovery
        self.assertEqual((report.index_removed, report.index_added), (1, 1))  # type: ignore[union-attr]
        self.assertEqual(await self.snapshot(store), before)

    async def test_unlinked_file_leaves_the_listing(self) -> None:
        await self.populate()
        os.unlink(self.store._layout.object_path("one", "b/c"))
        store = await self.crash_and_restart()
        self.assertEqual([i.key for i in (await store.list_objects("one")).contents],
                         ["a", "b/d", "\u00e9t\u00e9"])

    async def test_tmp_leftovers_removed_at_every_start(self) -> None:
        await self.populate()
        abandoned = self.store.new_writer("one")
        abandoned.write(b"half a body")
        (self.root / "tmp" / "junk").write_bytes(b"junk")  # type: ignore[attr-defined]
        await self.store.close()
        self.assertEqual(len(self.tmp_files()), 2)  # type: ignore[attr-defined]
        store = await self.make_store()  # type: ignore[attr-defined]
        self.assertIsNone(store.last_recovery)
        self.assertEqual(await self.leftovers(store), [])  # type: ignore[attr-defined]
        (self.root / "tmp" / "more").write_bytes(b"junk")  # type: ignore[attr-defined]
        store = await self.crash_and_restart_from(store)
        # the junk, and the spare files the crashed store had made
        self.assertTrue(store.last_recovery.tmp_removed > 1)  # type: ignore[union-attr]
        self.assertEqual(await self.leftovers(store), [])  # type: ignore[attr-defined]

    async def crash_and_restart_from(self, old: FilesystemObjectStore) -> FilesystemObjectStore:
        self.store = old
        return await self.crash_and_restart()

    async def test_datastore_lost(self) -> None:
        before = await self.populate()
        await self.store.close()  # clean, but the datastore then loses everything
        lost = await self.fresh_datastore()
        store = await self.make_store(lost)  # type: ignore[attr-defined]
        self.assertIsNotNone(store.last_recovery)
        self.assertEqual(await self.snapshot(store), before)
        # and the restored store works: complete the restored upload
        upload = before["one uploads"][0]
        parts = await store.list_parts(upload.upload_id)
        info = await store.complete_upload(upload.upload_id, [(3, parts[0].etag)])
        self.assertEqual(info.size, 100)

    async def test_orphans_and_unreadable_files(self) -> None:
        await self.populate()
        await self.store.create_bucket("gone", OWNER)
        await self.put("gone", "orphan", b"o")  # type: ignore[attr-defined]
        # a crash in the middle of deleting bucket "gone": its file went first
        os.unlink(self.root / "buckets" / "gone.json")  # type: ignore[attr-defined]
        # a file that is not an object, where objects live
        junk = self.root / "objects" / "00"  # type: ignore[attr-defined]
        (junk / ("0" * 64)).write_bytes(b"garbage")
        # an upload directory without its upload.json, a part without its record
        stray = self.root / "uploads" / ("f" * 32)  # type: ignore[attr-defined]
        stray.mkdir()
        (stray / "00001").write_bytes(b"part")
        upload = (await self.store.list_uploads("one"))[0]
        await self.datastore.hdel(keys.s3_parts(upload.upload_id), "3")  # type: ignore[attr-defined]
        store = await self.crash_and_restart()
        report = store.last_recovery
        self.assertEqual((report.quarantined, report.orphans_removed), (1, 2))  # type: ignore[union-attr]
        await self.assertFails(errors.NoSuchBucket, store.get_bucket("gone"))  # type: ignore[attr-defined]
        self.assertEqual([b.name for b in await store.list_buckets()], ["one", "two"])
        self.assertEqual(files_under(self.root / "quarantine"), [  # type: ignore[attr-defined]
            self.root / "quarantine" / ("00-" + "0" * 64)])  # type: ignore[attr-defined]
        self.assertEqual(os.listdir(self.root / "uploads"), [upload.upload_id])  # type: ignore[attr-defined]
        self.assertEqual([p.part_number for p in await store.list_parts(upload.upload_id)], [3])
        self.assertEqual(await self.datastore.scan("s3:*gone*"), [])  # type: ignore[attr-defined]

    async def test_upload_records_follow_files(self) -> None:
        await self.populate()
        upload = (await self.store.list_uploads("one"))[0]
        # a crash in the middle of an abort: upload.json went first
        os.unlink(self.root / "uploads" / upload.upload_id / "upload.json")  # type: ignore[attr-defined]
        store = await self.crash_and_restart()
        await self.assertFails(errors.NoSuchUpload,  # type: ignore[attr-defined]
                               store.get_upload(upload.upload_id))
        self.assertEqual(await store.list_uploads("one"), [])
        self.assertEqual(files_under(self.root / "uploads"), [])  # type: ignore[attr-defined]
        await store.delete_object("one", "a")
        for key in ["b/c", "b/d", "\u00e9t\u00e9"]:
            await store.delete_object("one", key)
        await store.delete_bucket("one")  # no upload left to keep it


class MemoryRecoveryTests(MemoryStoreHarness, RecoveryContractMixin, unittest.TestCase):
    """Recovery, in memory."""

    async def fresh_datastore(self) -> Any:
        return MemoryDatastore(self.clock, unique_prefix())


class RedisRecoveryTests(RedisStoreHarness, RecoveryContractMixin, unittest.TestCase):
    """Recovery, on Redis."""

    async def fresh_datastore(self) -> Any:
        return await self.make_client(unique_prefix())
