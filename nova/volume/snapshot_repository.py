"""
L{SnapshotRepository}: volume snapshots in the datastore.

Layout (L{nova.datastore.keys}): one JSON record per snapshot; sorted sets
of snapshot keys by creation time (all, and per project); a set per volume
of its snapshots. Taking a snapshot reads the volume in the same transaction
(it must be available or in use, on a host), and adds to the volume's set,
which a volume's delete watches: a volume is never deleted under a pending
snapshot. Snapshots outlive their volume, as in EC2.

Who calls what: the EC2 API creates snapshots and moves them to
C{deleting}; the volume host sets C{progress}, reports C{completed} (with
C{bucket}, C{object_key}, C{checksum}, C{stored_size}) or C{failed}, and
removes the record once the stored object is gone (L{SnapshotRepository.delete}).
"""

from __future__ import annotations

import builtins
from typing import Any, Collection, Mapping, Sequence

import attr
from twisted.internet.interfaces import IReactorTime

from nova.datastore import keys
from nova.datastore.interfaces import IDatastore, ITransaction
from nova.volume import states
from nova.volume.records import (
    InvalidSnapshotNotFound, InvalidVolumeNotFound, Snapshot, Volume, check_snapshot_id)

#: fields no update may change
_FIXED = frozenset({"snapshot_id", "volume_id", "project_id", "user_id", "volume_size",
                    "created_at"})


def _sort_key(snapshot: Snapshot) -> tuple[float, str]:
    return (snapshot.created_at, snapshot.snapshot_id)


class SnapshotRepository:
    """The snapshots of every project."""

    def __init__(self, store: IDatastore, clock: IReactorTime) -> None:
        """
        @param store: where records live.
        @param clock: stamps records.
        """
        self._store = store
        self._clock = clock

    async def create(self, snapshot: Snapshot) -> Snapshot:
        """
        Store a new C{pending} snapshot of a volume, checked against the
        volume in the same transaction. Its C{volume_size} and C{host} are
        taken from the volume as it is then.

        @return: the record as stored.
        @raise InvalidVolumeNotFound: no such volume in the snapshot's project.
        @raise nova.volume.states.IncorrectState: the volume is not available
            or in use, or has no host yet.
        """
        if snapshot.status != states.PENDING:
            raise ValueError("a new snapshot is 'pending'")
        key = keys.snapshot(snapshot.snapshot_id)
        volume_key = keys.volume(snapshot.volume_id)

        async def create(txn: ITransaction) -> Snapshot:
            if await txn.exists(key):
                raise ValueError(f"snapshot {snapshot.snapshot_id} exists already")
            raw = await txn.get(volume_key)
            volume = None if raw is None else Volume.from_json(raw)
            if volume is None or volume.project_id != snapshot.project_id:
                raise InvalidVolumeNotFound(
                    f"The volume '{snapshot.volume_id}' does not exist.")
            if volume.status not in states.SNAPSHOTTABLE or volume.host is None:
                raise states.IncorrectState(
                    f"Volume '{volume.volume_id}' is '{volume.status}'; a snapshot needs it "
                    "'available' or 'in-use'")
            stored = attr.evolve(snapshot, volume_size=volume.size, host=volume.host)
            txn.set(key, stored.to_json())
            txn.zadd(keys.snapshots_by_time(), {key: stored.created_at})
            txn.zadd(keys.snapshots_of_project(stored.project_id), {key: stored.created_at})
            txn.sadd(keys.snapshots_of_volume(stored.volume_id), key)
            return stored

        return await self._store.transact([key, volume_key], create)

    # -- changes ---------------------------------------------------------------------

    def _evolve(self, old: Snapshot, changes: Mapping[str, Any]) -> Snapshot:
        fixed = _FIXED & set(changes)
        if fixed:
            raise ValueError(f"cannot change {sorted(fixed)} of a snapshot")
        changes = dict(changes)
        now = self._clock.seconds()
        status = changes.get("status", old.status)
        if status == states.COMPLETED and old.status != states.COMPLETED:
            changes.setdefault("progress", "100%")
            changes.setdefault("completed_at", now)
        if status != states.SNAPSHOT_ERROR and "status_reason" not in changes:
            changes["status_reason"] = None
        return attr.evolve(old, **changes, updated_at=now)

    @staticmethod
    async def _read(txn: ITransaction, snapshot_id: str) -> Snapshot:
        raw = await txn.get(keys.snapshot(snapshot_id))
        if raw is None:
            raise InvalidSnapshotNotFound(f"The snapshot '{snapshot_id}' does not exist.")
        return Snapshot.from_json(raw)

    async def update(self, snapshot_id: str, /, **changes: Any) -> Snapshot:
        """
        Change fields of a snapshot (C{progress}, C{bucket}, C{object_key},
        C{checksum}, C{stored_size}, C{status_reason} ...) atomically. State
        changes go through L{transition}.

        @return: the record as stored.
        @raise InvalidSnapshotNotFound: no such snapshot.
        """
        check_snapshot_id(snapshot_id)
        if "status" in changes:
            raise ValueError("a snapshot's status changes through transition()")
        key = keys.snapshot(snapshot_id)

        async def change(txn: ITransaction) -> Snapshot:
            new = self._evolve(await self._read(txn, snapshot_id), changes)
            txn.set(key, new.to_json())
            return new

        return await self._store.transact([key], change)

    async def transition(self, snapshot_id: str, action: str, /,
                         **changes: Any) -> tuple[Snapshot, Snapshot]:
        """
        Apply an action of L{states.SNAPSHOT_TRANSITIONS}, checked against
        the current status in the same transaction. Reaching C{completed}
        sets C{progress} to 100% and C{completed_at}.

        @param changes: more fields to set with the new status.
        @return: the record before and after (the same when nothing changed).
        @raise nova.volume.states.IncorrectState: not allowed now.
        @raise InvalidSnapshotNotFound: no such snapshot.
        """
        check_snapshot_id(snapshot_id)
        if action not in states.SNAPSHOT_TRANSITIONS:
            raise ValueError(f"unknown action {action!r}")
        key = keys.snapshot(snapshot_id)

        async def move(txn: ITransaction) -> tuple[Snapshot, Snapshot]:
            old = await self._read(txn, snapshot_id)
            target = states.check_snapshot_transition(snapshot_id, old.status, action)
            if target is None:
                return old, old
            new = self._evolve(old, {**changes, "status": target})
            txn.set(key, new.to_json())
            return old, new

        return await self._store.transact([key], move)

    async def restore(self, written: Snapshot, previous: Snapshot) -> bool:
        """
        Put C{previous} back if the record is still C{written} (undoing a
        change whose cast could not be sent).

        @return: whether it was put back.
        """
        key = keys.snapshot(written.snapshot_id)

        async def undo(txn: ITransaction) -> bool:
            raw = await txn.get(key)
            if raw is None or Snapshot.from_json(raw) != written:
                return False
            txn.set(key, attr.evolve(previous, updated_at=self._clock.seconds()).to_json())
            return True

        return await self._store.transact([key], undo)

    async def delete(self, snapshot_id: str,
                     statuses: Collection[str] | None = (states.SNAPSHOT_DELETING,)) -> bool:
        """
        Remove a snapshot's record and indexes (the volume host's last step
        of DeleteSnapshot, once the stored object is gone; or the API's, for
        a snapshot that stored nothing).

        @param statuses: the statuses it may be removed in (C{None}: any).
        @return: whether it existed.
        @raise nova.volume.states.IncorrectState: it is in another status.
        """
        check_snapshot_id(snapshot_id)
        key = keys.snapshot(snapshot_id)

        async def remove(txn: ITransaction) -> bool:
            raw = await txn.get(key)
            if raw is None:
                return False
            snapshot = Snapshot.from_json(raw)
            if statuses is not None and snapshot.status not in statuses:
                raise states.IncorrectState(
                    f"The snapshot '{snapshot_id}' is '{snapshot.status}' and cannot be removed")
            txn.delete(key)
            txn.zrem(keys.snapshots_by_time(), key)
            txn.zrem(keys.snapshots_of_project(snapshot.project_id), key)
            txn.srem(keys.snapshots_of_volume(snapshot.volume_id), key)
            return True

        return await self._store.transact([key], remove)

    # -- reads --------------------------------------------------------------------------

    async def get(self, snapshot_id: str, project_id: str | None = None) -> Snapshot:
        """
        @param project_id: the caller's project (C{None}: an admin, who sees all).
        @raise nova.volume.records.InvalidSnapshotIDMalformed: not a snapshot id.
        @raise InvalidSnapshotNotFound: no such snapshot in the project.
        """
        return (await self.get_many([snapshot_id], project_id))[0]

    async def get_many(self, snapshot_ids: Sequence[str],
                       project_id: str | None = None) -> builtins.list[Snapshot]:
        """
        @return: the records in the order of C{snapshot_ids} (duplicates once).
        @raise InvalidSnapshotNotFound: some do not exist in the project.
        """
        wanted = list(dict.fromkeys(check_snapshot_id(s) for s in snapshot_ids))
        if not wanted:
            return []
        values = await self._store.mget(*[keys.snapshot(s) for s in wanted])
        found = [None if raw is None else Snapshot.from_json(raw) for raw in values]
        missing = [s for s, r in zip(wanted, found)
                   if r is None or (project_id is not None and r.project_id != project_id)]
        if len(missing) == 1:
            raise InvalidSnapshotNotFound(f"The snapshot '{missing[0]}' does not exist.")
        if missing:
            raise InvalidSnapshotNotFound(
                f"The snapshots '{', '.join(missing)}' do not exist.")
        return [r for r in found if r is not None]

    async def list(self, project_id: str | None = None) -> builtins.list[Snapshot]:
        """@return: a project's snapshots (every project's for C{None}), oldest first."""
        index = keys.snapshots_by_time() if project_id is None \
            else keys.snapshots_of_project(project_id)
        return await self._load(await self._store.zrangebyscore(index))

    async def of_volume(self, volume_id: str) -> builtins.list[Snapshot]:
        """@return: the snapshots taken of a volume (it may be gone), oldest first."""
        return await self._load(await self._store.smembers(keys.snapshots_of_volume(volume_id)))

    async def _load(self, members: Collection[str]) -> builtins.list[Snapshot]:
        if not members:
            return []
        values = await self._store.mget(*members)
        return sorted((Snapshot.from_json(v) for v in values if v is not None), key=_sort_key)
