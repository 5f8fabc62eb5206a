"""
The listing index of a bucket, in the datastore: a sorted set of its keys
(every score 0, so ZRANGEBYLEX walks them in UTF-8 byte order, S3's order)
and a hash from key to a summary (size, etag, time, owner), so that a page
of a listing is two round trips and opens no file.

The index follows the files: an object's entry is written after its file
was renamed into place and removed after its file was unlinked.

New entries are written in batches (L{ObjectIndex.add}): while one batch
is on its way to the datastore, the entries of the PUTs that finish
meanwhile wait for it and then go together, in one MULTI/EXEC, so that
concurrent small PUTs share round trips.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure

from nova.datastore import keys
from nova.datastore.interfaces import IDatastore, ITransaction
from nova.objectstore import errors
from nova.objectstore.interfaces import ObjectInfo
from nova.objectstore.store.records import (BadRecord, bucket_from_json, summary_from_json,
                                            summary_to_json)


class ObjectIndex:
    """The per-bucket key index and summaries."""

    def __init__(self, datastore: IDatastore) -> None:
        """@param datastore: where the index lives."""
        self._ds = datastore
        self._queued: list[tuple[ObjectInfo, defer.Deferred[None]]] = []
        self._writing = False

    async def add(self, info: ObjectInfo) -> None:
        """
        Add or replace the entry of C{info.key}, unchecked (the caller makes
        sure its bucket stays: L{nova.objectstore.store.buckets.Buckets.in_use}),
        in a batch with the other entries added meanwhile.

        @raise DatastoreError: the batch could not be written (no entry of
            it was).
        """
        d: defer.Deferred[None] = defer.Deferred()
        self._queued.append((info, d))
        if not self._writing:
            self._start()
        await d

    def _start(self) -> None:
        batch, self._queued = self._queued, []
        self._writing = True
        defer.Deferred.fromCoroutine(self._write(batch)).addBoth(self._written, batch)

    async def _write(self, batch: list[tuple[ObjectInfo, defer.Deferred[None]]]) -> None:
        by_bucket: dict[str, list[ObjectInfo]] = {}
        for info, _ in batch:
            by_bucket.setdefault(info.bucket, []).append(info)

        async def write(txn: ITransaction) -> None:
            for bucket, infos in by_bucket.items():
                txn.zadd(keys.s3_object_index(bucket), {info.key: 0 for info in infos})
                txn.hset(keys.s3_object_summaries(bucket),
                         {info.key: summary_to_json(info) for info in infos})

        await self._ds.transact([], write)

    def _written(self, result: Any, batch: list[tuple[ObjectInfo, defer.Deferred[None]]]) -> None:
        self._writing = False
        for _, d in batch:
            if isinstance(result, Failure):
                d.errback(result)
            else:
                d.callback(None)
        if self._queued:
            self._start()

    async def put(self, bucket: str, incarnation: str, info: ObjectInfo) -> None:
        """
        Add or replace the entry of C{info.key}, in the same creation of the
        bucket as the caller saw (a bucket deleted, or deleted and made
        again, meanwhile refuses it).

        @raise NoSuchBucket: the bucket is gone, or is another bucket now.
        """
        bucket_key = keys.s3_bucket(bucket)

        async def write(txn: ITransaction) -> None:
            raw = await txn.get(bucket_key)
            try:
                current = bucket_from_json(raw)[1] if raw is not None else None
            except BadRecord:
                current = None
            if current != incarnation:
                raise errors.NoSuchBucket(f"bucket {bucket} was deleted meanwhile")
            txn.zadd(keys.s3_object_index(bucket), {info.key: 0})
            txn.hset(keys.s3_object_summaries(bucket), {info.key: summary_to_json(info)})

        await self._ds.transact([bucket_key], write)

    async def put_many(self, bucket: str, infos: list[ObjectInfo]) -> None:
        """Add or replace many entries at once, unchecked (index rebuilds and tests)."""
        if not infos:
            return

        async def write(txn: ITransaction) -> None:
            txn.zadd(keys.s3_object_index(bucket), {info.key: 0 for info in infos})
            txn.hset(keys.s3_object_summaries(bucket),
                     {info.key: summary_to_json(info) for info in infos})

        await self._ds.transact([], write)

    async def remove(self, bucket: str, *object_keys: str) -> None:
        """Remove the entries of C{object_keys} (missing ones are ignored)."""
        if not object_keys:
            return

        async def write(txn: ITransaction) -> None:
            txn.zrem(keys.s3_object_index(bucket), *object_keys)
            txn.hdel(keys.s3_object_summaries(bucket), *object_keys)

        await self._ds.transact([], write)

    async def keys_between(self, bucket: str, start: str | bytes, end: str | bytes,
                           count: int) -> list[str]:
        """
        @param start: a ZRANGEBYLEX lower bound.
        @param end: a ZRANGEBYLEX upper bound.
        @return: up to C{count} keys of the bucket between the bounds, in order.
        """
        return await self._ds.zrangebylex(keys.s3_object_index(bucket), start, end, 0, count)

    async def summaries(self, bucket: str, object_keys: list[str]) -> list[ObjectInfo | None]:
        """@return: the summary of each key (C{None} where it has none: removed meanwhile)."""
        if not object_keys:
            return []
        raws = await self._ds.hmget(keys.s3_object_summaries(bucket), *object_keys)
        found: list[ObjectInfo | None] = []
        for key, raw in zip(object_keys, raws):
            try:
                found.append(summary_from_json(bucket, key, raw) if raw is not None else None)
            except BadRecord:
                found.append(None)
        return found

    async def all_summaries(self, bucket: str) -> dict[str, str]:
        """@return: every key of the bucket's index and its summary text (for rebuilds)."""
        summaries = await self._ds.hgetall(keys.s3_object_summaries(bucket))
        listed = await self._ds.zrangebylex(keys.s3_object_index(bucket))
        return {key: summaries.get(key, "") for key in listed}

    async def drop(self, bucket: str) -> None:
        """Remove a bucket's whole index."""
        await self._ds.delete(keys.s3_object_index(bucket), keys.s3_object_summaries(bucket))
