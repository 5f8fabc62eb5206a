"""
L{FilesystemObjectStore}: the L{IObjectStore} of nova, bodies on the local
filesystem and the records and listing index in the datastore.

Start it with L{FilesystemObjectStore.open} (it clears the writers'
leftovers and, after a run that did not stop cleanly, reconciles the
datastore with the files) and stop it with L{FilesystemObjectStore.close}
(it waits for the changes in flight, then leaves the clean-shutdown marker).
One process owns a store directory (and its datastore prefix) at a time.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, Awaitable, Callable, TypeVar

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from nova.datastore import keys
from nova.datastore.interfaces import IDatastore
from nova.objectstore import errors
from nova.objectstore.interfaces import (Bucket, IObjectStore, Listing, NewObject, ObjectInfo,
                                         Owner, Part, Upload)
from nova.objectstore.store.buckets import Buckets
from nova.objectstore.store.concurrency import InFlight, KeyedLocks, RunInThread
from nova.objectstore.store.index import ObjectIndex
from nova.objectstore.store.layout import Layout, remove, remove_quietly
from nova.objectstore.store.listing import list_page
from nova.objectstore.store.multipart import MIN_PART_SIZE, Uploads
from nova.objectstore.store.objects import Objects
from nova.objectstore.store.reader import ReadHandle
from nova.objectstore.store.spares import SpareFiles
from nova.objectstore.store.recovery import (RecoveryReport, clear_tmp, reconcile,
                                             scan_files)
from nova.objectstore.store.writer import FileWriter
from nova.utils.files import write_atomically

T = TypeVar("T")
log = Logger()

#: S3's largest single PUT
DEFAULT_MAX_OBJECT_SIZE = 5 * 1024 ** 3


def _read_marker(path: Path) -> str | None:
    try:
        return path.read_text("ascii").strip()
    except (FileNotFoundError, UnicodeError):
        return None


@implementer(IObjectStore)
class FilesystemObjectStore:
    """
    Buckets and objects under C{root}, indexed in C{datastore}.

    @ivar max_object_size: the largest single PUT (and part), bytes.
    @ivar last_recovery: what the last L{open} repaired (C{None} after a clean stop).
    """

    def __init__(self, root: Path, datastore: IDatastore, clock: IReactorTime,
                 run_in_thread: RunInThread,
                 max_object_size: int = DEFAULT_MAX_OBJECT_SIZE, *,
                 min_part_size: int = MIN_PART_SIZE) -> None:
        """
        @param root: the store's directory (C{NovaConfig.objectstore_dir}).
        @param datastore: holds bucket records, the listing index, uploads.
        @param clock: gives the times of objects, parts and uploads.
        @param run_in_thread: runs blocking file work (fsync, copies, renames)
            off the reactor thread; see L{nova.objectstore.store.concurrency}.
        @param max_object_size: the largest body a writer accepts.
        @param min_part_size: the smallest part but the last (S3: 5 MiB).
        """
        self.max_object_size = max_object_size
        self.last_recovery: RecoveryReport | None = None
        self._layout = Layout(root)
        self._ds = datastore
        self._run = run_in_thread
        self._state = "new"
        self._closing: defer.Deferred[None] | None = None
        self._dirty = False
        self._inflight = InFlight()
        self._background: set[defer.Deferred[Any]] = set()
        self._spares = SpareFiles(self._layout, run_in_thread)
        locks = KeyedLocks()
        self._index = ObjectIndex(datastore)
        self._buckets = Buckets(datastore, self._layout, clock, run_in_thread, locks)
        # the store's own writers (copies, assembly) need no SHA-256
        internal = self._internal_writer
        self._objects = Objects(self._layout, self._buckets, self._index, clock, run_in_thread,
                                locks, internal, self._mark_dirty)
        self._uploads = Uploads(datastore, self._layout, self._buckets, self._objects, clock,
                                run_in_thread, locks, internal, min_part_size)

    @property
    def root(self) -> Path:
        """@return: the store's directory."""
        return self._layout.root

    # -- life cycle ------------------------------------------------------------------

    async def open(self) -> RecoveryReport | None:
        """
        Make the directories, remove the writers' leftovers, and reconcile
        the datastore with the files unless the last run stopped cleanly.

        @return: what was repaired, or C{None} after a clean stop.
        """
        if self._state != "new":
            raise RuntimeError(f"the object store is {self._state}")
        layout = self._layout
        await self._run(layout.make_dirs)
        token = await self._run(_read_marker, layout.marker)
        clean = token is not None and token == await self._ds.get(keys.s3_clean_token())
        # from here on the run is not clean until close() says so
        await self._run(remove, layout.marker)
        await self._ds.delete(keys.s3_clean_token())
        removed = await self._run(clear_tmp, layout)
        report = None
        if not clean:
            report = RecoveryReport(tmp_removed=removed)
            scan = await self._run(scan_files, layout, report)
            await reconcile(self._ds, self._index, scan, report)
            log.info("object store: reconciled the index with {root}: {report}",
                     root=str(layout.root), report=report)
        self.last_recovery = report
        self._state = "open"
        self._spares.refill()
        return report

    async def close(self) -> None:
        """
        Refuse new changes, wait for those in flight, and leave the
        clean-shutdown marker (unless the index may be behind the files).
        Idempotent: a second call waits for the first.
        """
        if self._closing is None:
            self._closing = defer.Deferred.fromCoroutine(self._close())
        waiter: defer.Deferred[None] = defer.Deferred()

        def relay(result: Any) -> None:
            # hand the outcome to this caller; the first one gets any error
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(None)

        self._closing.addBoth(relay)
        await waiter

    async def _close(self) -> None:
        was, self._state = self._state, "closing"
        try:
            if was != "open":
                return  # never opened: nothing to declare clean
            await self._inflight.drained()
            await self._spares.close()
            while self._background:
                await defer.DeferredList(list(self._background), consumeErrors=True)
            if not self._dirty:
                token = secrets.token_hex(16)
                await self._ds.set(keys.s3_clean_token(), token)
                await self._run(write_atomically, self._layout.marker, token.encode("ascii"))
        finally:
            self._state = "closed"

    def _mark_dirty(self) -> None:
        self._dirty = True

    def _check_open(self) -> None:
        if self._state != "open":
            raise errors.ServiceUnavailable(f"the object store is {self._state}")

    async def _change(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run a change of the store, counted as in flight."""
        self._check_open()
        async with self._inflight.track():
            return await fn(*args)

    def _writer(self, bucket: str, sha256: bool = True) -> FileWriter:
        return FileWriter(self._layout, bucket, self.max_object_size, self._discard,
                          self._spares.take(), sha256)

    def _internal_writer(self, bucket: str) -> FileWriter:
        return self._writer(bucket, sha256=False)

    def _discard(self, path: Path) -> None:
        d = defer.Deferred.fromCoroutine(self._run(remove_quietly, path))  # type: ignore[arg-type]
        self._background.add(d)

        def done(result: Any) -> None:
            self._background.discard(d)
            if isinstance(result, Failure):
                log.failure("object store: removing {path}", result, path=str(path))

        d.addBoth(done)

    # -- buckets ---------------------------------------------------------------------

    async def create_bucket(self, name: str, owner: Owner, acl: str = "private") -> Bucket:
        """See L{IObjectStore.create_bucket}."""
        return await self._change(self._buckets.create, name, owner, acl)

    async def get_bucket(self, name: str) -> Bucket:
        """See L{IObjectStore.get_bucket}."""
        return await self._buckets.get(name)

    async def list_buckets(self, project_id: str | None = None) -> list[Bucket]:
        """See L{IObjectStore.list_buckets}."""
        return await self._buckets.list(project_id)

    async def delete_bucket(self, name: str) -> None:
        """See L{IObjectStore.delete_bucket}."""
        await self._change(self._buckets.delete, name)

    async def set_bucket_acl(self, name: str, acl: str) -> Bucket:
        """See L{IObjectStore.set_bucket_acl}."""
        return await self._change(self._buckets.set_acl, name, acl)

    # -- objects ---------------------------------------------------------------------

    def new_writer(self, bucket: str, sha256: bool = True) -> FileWriter:
        """
        See L{IObjectStore.new_writer}.

        @param sha256: whether the writer computes the body's SHA-256 (leave
            it out when nothing will ask: a third less work per byte).
        @raise ServiceUnavailable: the store is not open.
        """
        self._check_open()
        return self._writer(bucket, sha256)

    async def commit_object(self, writer: FileWriter, bucket: str, key: str,
                            new: NewObject) -> ObjectInfo:
        """See L{IObjectStore.commit_object}."""
        return await self._change(self._objects.commit, writer, bucket, key, new)

    async def head_object(self, bucket: str, key: str) -> ObjectInfo:
        """See L{IObjectStore.head_object}."""
        return await self._objects.head(bucket, key)

    async def open_object(self, bucket: str, key: str) -> ReadHandle:
        """See L{IObjectStore.open_object}."""
        return await self._objects.open(bucket, key)

    async def delete_object(self, bucket: str, key: str) -> bool:
        """See L{IObjectStore.delete_object}."""
        return await self._change(self._objects.delete, bucket, key)

    async def copy_object(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str,
                          new: NewObject) -> ObjectInfo:
        """See L{IObjectStore.copy_object}."""
        return await self._change(self._objects.copy, src_bucket, src_key, dst_bucket,
                                  dst_key, new)

    async def set_object_acl(self, bucket: str, key: str, acl: str) -> ObjectInfo:
        """See L{IObjectStore.set_object_acl}."""
        return await self._change(self._objects.set_acl, bucket, key, acl)

    async def list_objects(self, bucket: str, prefix: str = "", delimiter: str = "",
                           after: str = "", max_keys: int = 1000) -> Listing:
        """See L{IObjectStore.list_objects}."""
        await self._buckets.get(bucket)
        return await list_page(self._index, bucket, prefix, delimiter, after, max_keys)

    # -- multipart ------------------------------------------------------------------------

    async def create_upload(self, bucket: str, key: str, new: NewObject) -> Upload:
        """See L{IObjectStore.create_upload}."""
        return await self._change(self._uploads.create, bucket, key, new)

    async def get_upload(self, upload_id: str) -> Upload:
        """See L{IObjectStore.get_upload}."""
        return await self._uploads.get(upload_id)

    async def commit_part(self, writer: FileWriter, upload_id: str, part_number: int) -> Part:
        """See L{IObjectStore.commit_part}."""
        return await self._change(self._uploads.commit_part, writer, upload_id, part_number)

    async def copy_part(self, upload_id: str, part_number: int, src_bucket: str, src_key: str,
                        first: int | None = None, last: int | None = None) -> Part:
        """See L{IObjectStore.copy_part}."""
        return await self._change(self._uploads.copy_part, upload_id, part_number, src_bucket,
                                  src_key, first, last)

    async def list_parts(self, upload_id: str, after: int = 0,
                         max_parts: int = 1000) -> list[Part]:
        """See L{IObjectStore.list_parts}."""
        return await self._uploads.list_parts(upload_id, after, max_parts)

    async def complete_upload(self, upload_id: str, parts: list[tuple[int, str]]) -> ObjectInfo:
        """See L{IObjectStore.complete_upload}."""
        return await self._change(self._uploads.complete, upload_id, parts)

    async def abort_upload(self, upload_id: str) -> None:
        """See L{IObjectStore.abort_upload}."""
        await self._change(self._uploads.abort, upload_id)

    async def list_uploads(self, bucket: str, prefix: str = "", key_after: str = "",
                           upload_id_after: str = "", max_uploads: int = 1000) -> list[Upload]:
        """See L{IObjectStore.list_uploads}."""
        return await self._uploads.list(bucket, prefix, key_after, upload_id_after,
                                        max_uploads)
