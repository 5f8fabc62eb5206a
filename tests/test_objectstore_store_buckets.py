"""
L{FilesystemObjectStore}'s buckets: create (name rules, taken names, one
winner of a race), get, list, delete (not while objects or uploads remain),
canned ACLs; on the in-memory datastore and on Redis.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.trial import unittest

from nova.objectstore import errors
from nova.objectstore.interfaces import CANNED_ACLS, NewObject, Owner
from nova.objectstore.store import FilesystemObjectStore
from tests.test_objectstore_store_harness import (OTHER, OWNER, START, MemoryStoreHarness,
                                                  RedisStoreHarness, files_under)


class BucketContractMixin:
    """Buckets: what every datastore gives."""

    store: FilesystemObjectStore
    assertEqual: Any
    assertTrue: Any

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


class MemoryBucketTests(MemoryStoreHarness, BucketContractMixin, unittest.TestCase):
    """Buckets, in memory."""


class RedisBucketTests(RedisStoreHarness, BucketContractMixin, unittest.TestCase):
    """Buckets, on Redis."""
