"""
Buckets: records in the datastore (for lookups and listings, and the atomic
claim of a name) and a copy of each in C{buckets/<name>.json} (the files are
the truth when the index is rebuilt after a crash).

Every request names a bucket, so the records read are kept for a moment
(L{RECORD_TTL}): one process owns a store and its datastore prefix, and its
own creates, ACL changes and deletes update or drop the kept record at once,
so within the process the copy is never stale; the time limit only bounds
how long a change made behind the store's back (by hand, in Redis) goes
unseen. Absence is never kept.
"""

from __future__ import annotations

import secrets
from typing import Any

from twisted.internet.interfaces import IReactorTime

from nova.datastore import keys
from nova.datastore.interfaces import IDatastore, ITransaction
from nova.objectstore import errors
from nova.objectstore.interfaces import Bucket, Owner
from nova.objectstore.store.concurrency import KeyedLocks, RunInThread, SharedGates
from nova.objectstore.store.layout import Layout, remove
from nova.objectstore.store.names import check_acl, check_bucket_name, is_bucket_name
from nova.objectstore.store.records import BadRecord, bucket_from_json, bucket_to_json
from nova.utils.files import write_atomically

#: seconds a bucket record read from the datastore is used without reading it again
RECORD_TTL = 2.0


class Buckets:
    """Create, find, list, delete buckets and change their ACL."""

    def __init__(self, datastore: IDatastore, layout: Layout, clock: IReactorTime,
                 run_in_thread: RunInThread, locks: KeyedLocks) -> None:
        """
        @param datastore: holds the records and the index sets.
        @param layout: where the record files go.
        @param clock: gives creation times.
        @param run_in_thread: runs the file writes.
        @param locks: orders the changes of one bucket in this process.
        """
        self._ds = datastore
        self._layout = layout
        self._clock = clock
        self._run = run_in_thread
        self._locks = locks
        #: name -> (kept until, bucket, incarnation)
        self._records: dict[str, tuple[float, Bucket, str]] = {}
        #: counts the records dropped: a read that began before a change
        #: must not keep what it found
        self._generation = 0
        #: held shared by object installs, exclusively by a delete (see L{in_use})
        self._gates = SharedGates()

    def _keep(self, bucket: Bucket, incarnation: str) -> None:
        self._records[bucket.name] = (self._clock.seconds() + RECORD_TTL, bucket, incarnation)

    def _drop(self, name: str) -> None:
        self._records.pop(name, None)
        self._generation += 1

    def in_use(self, name: str) -> Any:
        """
        @return: an async context manager during which bucket C{name} is
            not deleted by this store (a delete waits for it to end).
        """
        return self._gates.shared(name)

    async def create(self, name: str, owner: Owner, acl: str = "private") -> Bucket:
        """
        Claim C{name} for C{owner} (atomically: of two creates, one wins).

        @raise InvalidBucketName: S3's rules broken.
        @raise InvalidArgument: an unknown canned ACL.
        @raise BucketAlreadyOwnedByYou: C{owner}'s project has it already.
        @raise BucketAlreadyExists: another project has it.
        """
        check_bucket_name(name)
        check_acl(acl)
        key = keys.s3_bucket(name)
        bucket = Bucket(name=name, owner=owner, created_at=self._clock.seconds(), acl=acl)
        incarnation = secrets.token_hex(8)
        record = bucket_to_json(bucket, incarnation)

        async def claim(txn: ITransaction) -> None:
            existing = await txn.get(key)
            if existing is not None:
                held = _parse(existing)
                if held.owner.project_id == owner.project_id:
                    raise errors.BucketAlreadyOwnedByYou(f"you own bucket {name} already")
                raise errors.BucketAlreadyExists(f"bucket {name} is taken")
            txn.set(key, record)
            txn.sadd(keys.s3_buckets(), key)
            txn.sadd(keys.s3_buckets_of_project(owner.project_id), key)

        async with self._locks.hold(("bucket", name)):
            await self._ds.transact([key], claim)
            try:
                await self._run(write_atomically, self._layout.bucket_path(name),
                                record.encode("utf-8"))
            except BaseException:
                await self._forget(name, owner.project_id)
                raise
            self._drop(name)
            self._keep(bucket, incarnation)
        return bucket

    async def _forget(self, name: str, project_id: str) -> None:
        key = keys.s3_bucket(name)
        self._drop(name)

        async def drop(txn: ITransaction) -> None:
            txn.delete(key, keys.s3_object_index(name), keys.s3_object_summaries(name))
            txn.srem(keys.s3_buckets(), key)
            txn.srem(keys.s3_buckets_of_project(project_id), key)

        await self._ds.transact([], drop)

    async def get_with_incarnation(self, name: str) -> tuple[Bucket, str]:
        """
        @return: the bucket and the id of this creation of it.
        @raise NoSuchBucket: it does not exist.
        """
        kept = self._records.get(name)
        if kept is not None and kept[0] > self._clock.seconds():
            return kept[1], kept[2]
        generation = self._generation
        raw = await self._ds.get(keys.s3_bucket(name)) if is_bucket_name(name) else None
        if raw is None:
            raise errors.NoSuchBucket(f"no bucket {name!r}")
        try:
            bucket, incarnation = bucket_from_json(raw)
        except BadRecord as e:
            raise errors.S3Error(f"bucket {name}: {e}") from None
        if generation == self._generation:
            self._keep(bucket, incarnation)
        return bucket, incarnation

    async def get(self, name: str) -> Bucket:
        """@raise NoSuchBucket: it does not exist."""
        return (await self.get_with_incarnation(name))[0]

    async def list(self, project_id: str | None = None) -> list[Bucket]:
        """@return: the buckets of C{project_id} (every bucket when C{None}), by name."""
        index = keys.s3_buckets() if project_id is None else keys.s3_buckets_of_project(project_id)
        members = sorted(await self._ds.smembers(index))
        found = []
        for raw in await self._ds.mget(*members) if members else []:
            if raw is not None:  # deleted between the two reads
                found.append(_parse(raw))
        return sorted(found, key=lambda b: b.name)

    async def delete(self, name: str) -> None:
        """
        Delete an empty bucket, its record file and its index keys.

        @raise NoSuchBucket: it does not exist.
        @raise BucketNotEmpty: it holds objects or uploads in progress.
        """
        if not is_bucket_name(name):
            raise errors.NoSuchBucket(f"no bucket {name!r}")
        key = keys.s3_bucket(name)
        index, uploads = keys.s3_object_index(name), keys.s3_uploads_of_bucket(name)

        async def drop(txn: ITransaction) -> None:
            raw = await txn.get(key)
            if raw is None:
                raise errors.NoSuchBucket(f"no bucket {name!r}")
            if await txn.exists(index) or await txn.exists(uploads):
                raise errors.BucketNotEmpty(
                    f"bucket {name} holds objects or multipart uploads in progress")
            owner = _parse(raw).owner
            txn.delete(key, index, keys.s3_object_summaries(name))
            txn.srem(keys.s3_buckets(), key)
            txn.srem(keys.s3_buckets_of_project(owner.project_id), key)

        async with self._locks.hold(("bucket", name)), self._gates.exclusive(name):
            # exclusive: no object install is between its bucket check and
            # its index entry, so "empty" below is the truth
            try:
                await self._ds.transact([key, index, uploads], drop)
            finally:
                self._drop(name)
            await self._run(remove, self._layout.bucket_path(name))

    async def set_acl(self, name: str, acl: str) -> Bucket:
        """
        @raise InvalidArgument: not a canned ACL.
        @raise NoSuchBucket: it does not exist.
        """
        check_acl(acl)
        async with self._locks.hold(("bucket", name)):
            bucket, incarnation = await self.get_with_incarnation(name)
            changed = Bucket(name=bucket.name, owner=bucket.owner,
                             created_at=bucket.created_at, acl=acl)
            record = bucket_to_json(changed, incarnation)
            # the file first: it is what a rebuild of the index believes
            await self._run(write_atomically, self._layout.bucket_path(name),
                            record.encode("utf-8"))
            try:
                await self._ds.set(keys.s3_bucket(name), record)
            finally:
                self._drop(name)
            self._keep(changed, incarnation)
        return changed


def _parse(raw: str) -> Bucket:
    try:
        return bucket_from_json(raw)[0]
    except BadRecord as e:
        raise errors.S3Error(str(e)) from None

