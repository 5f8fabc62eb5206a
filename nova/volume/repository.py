"""
L{VolumeRepository}: volumes in the datastore (snapshots:
L{nova.volume.snapshot_repository}, re-exported here).

Layout (key names in L{nova.datastore.keys}): one JSON record per volume;
sorted sets of volume keys by creation time (all, and per project), a set
per volume host, a set per instance of the volumes attached to it; the
project's quota usage hash (C{volumes}, C{gigabytes}, shared with the
instances' figures). Every write of a record and its indexes is one
C{transact}; creating checks the quota in the same transaction, so N
concurrent creates never spend more than the quota.

Who calls what: the EC2 API creates, attaches, and moves volumes into
C{deleting} and C{detaching} (L{VolumeRepository.transition} with the EC2
verbs); the scheduler sets C{host}; the volume host reports C{created},
C{create_failed}, C{delete_failed}, sets C{export} and removes the record
once its storage is gone (L{VolumeRepository.delete}); the compute host
reports C{attached}, C{attach_failed}, C{detached}, C{detach_failed}.
"""

from __future__ import annotations

import builtins
from typing import Any, Collection, Mapping, Sequence

import attr
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from nova.compute import states as instance_states
from nova.compute.quota import QUOTA_NAMES, QuotaRepository
from nova.compute.records import Instance
from nova.compute.repository import InvalidInstanceIDNotFound
from nova.datastore import keys
from nova.datastore.interfaces import IDatastore, ITransaction
from nova.exception import InvalidParameterValue
from nova.volume import states
from nova.volume.records import (
    InvalidAttachmentNotFound, InvalidSnapshotNotFound, InvalidVolumeNotFound,
    InvalidVolumeZoneMismatch, Snapshot, Volume, VolumeLimitExceeded, check_volume_id,
    guest_device)
from nova.volume.snapshot_repository import SnapshotRepository

__all__ = ["VolumeRepository", "SnapshotRepository", "VolumeLimitExceeded",
           "InvalidVolumeZoneMismatch", "InvalidAttachmentNotFound",
           "ATTACHABLE_INSTANCE_STATES"]

#: fields no update may change (the quota counts the size)
_FIXED = frozenset({"volume_id", "project_id", "user_id", "size", "created_at"})

#: fields only the state tables change
_STATE_FIELDS = frozenset({"status", "attach_status", "instance_id", "device", "attach_time"})

#: instances a volume may be attached to (libvirt attaches to a stopped
#: domain's definition too)
ATTACHABLE_INSTANCE_STATES = frozenset({instance_states.RUNNING, instance_states.STOPPED})


def _usage(volume: Volume) -> dict[str, int]:
    return {"volumes": 1, "gigabytes": volume.size}


def _check_quota(project_id: str, limits: Mapping[str, int], used: Mapping[str, int],
                 size: int) -> None:
    if used.get("volumes", 0) + 1 > limits["volumes"]:
        raise VolumeLimitExceeded(
            f"Maximum number of volumes reached: the project '{project_id}' has "
            f"{used.get('volumes', 0)} of its quota of {limits['volumes']}")
    if used.get("gigabytes", 0) + size > limits["gigabytes"]:
        raise VolumeLimitExceeded(
            f"Volume storage quota exceeded: the project '{project_id}' uses "
            f"{used.get('gigabytes', 0)} of its {limits['gigabytes']} GiB; "
            f"{size} GiB more were asked for")


def _sort_key(volume: Volume) -> tuple[float, str]:
    return (volume.created_at, volume.volume_id)


class VolumeRepository:
    """The volumes of every project."""

    def __init__(self, store: IDatastore, clock: IReactorTime,
                 quotas: QuotaRepository | None = None) -> None:
        """
        @param store: where records live.
        @param clock: stamps records.
        @param quotas: the quotas creation is checked against (share the
            instance repository's: one usage hash per project).
        """
        self._store = store
        self._clock = clock
        self.quotas = quotas if quotas is not None else QuotaRepository(store)
        self._create_locks: dict[str, defer.DeferredLock] = {}

    # -- creation ------------------------------------------------------------------

    async def create(self, volume: Volume) -> Volume:
        """
        Store a new volume (status C{creating}) with its indexes, counting it
        against its project's quota in the same transaction. A volume made
        from a snapshot is checked against the snapshot in that transaction
        too (still there, C{completed}, the project's, not larger).

        @return: C{volume}.
        @raise VolumeLimitExceeded: it does not fit in the quota (C{volumes}
            or C{gigabytes}); nothing is written.
        @raise InvalidSnapshotNotFound: its snapshot is gone or another project's.
        @raise nova.volume.states.IncorrectState: its snapshot is not completed.
        @raise InvalidParameterValue: it is smaller than its snapshot.
        """
        if volume.status != states.CREATING or volume.host is not None:
            raise ValueError("a new volume is 'creating' and has no host yet")
        project = volume.project_id
        key = keys.volume(volume.volume_id)
        snapshot_key = keys.snapshot(volume.snapshot_id) if volume.snapshot_id else None

        async def create(txn: ITransaction) -> Volume:
            if await txn.exists(key):
                raise ValueError(f"volume {volume.volume_id} exists already")
            if snapshot_key is not None:
                self._check_source(volume, await txn.get(snapshot_key))
            limits, used = await self.quotas.read(txn, project)
            _check_quota(project, limits, used, volume.size)
            self._write(txn, None, volume)
            self._queue_usage(txn, project, used, _usage(volume), 1)
            return volume

        watch = [key] + self.quotas.watch_keys(project) + ([snapshot_key] if snapshot_key else [])
        # creates of one project all watch its quota keys: run this process's
        # one at a time (a burst would retry itself to exhaustion); other
        # processes still meet at the WATCH, which keeps it correct
        lock = self._create_locks.setdefault(project, defer.DeferredLock())
        await lock.acquire()
        try:
            return await self._store.transact(watch, create)
        finally:
            lock.release()
            if not lock.locked and not lock.waiting:
                self._create_locks.pop(project, None)

    @staticmethod
    def _check_source(volume: Volume, raw: str | None) -> None:
        snapshot = None if raw is None else Snapshot.from_json(raw)
        if snapshot is None or snapshot.project_id != volume.project_id:
            raise InvalidSnapshotNotFound(
                f"The snapshot '{volume.snapshot_id}' does not exist.")
        if snapshot.status != states.COMPLETED:
            raise states.IncorrectState(
                f"Snapshot '{snapshot.snapshot_id}' is '{snapshot.status}'; a volume can be "
                "created from a 'completed' snapshot only")
        if volume.size < snapshot.volume_size:
            raise InvalidParameterValue(
                f"Volume of {volume.size}GiB is smaller than snapshot "
                f"'{snapshot.snapshot_id}', which needs {snapshot.volume_size}GiB.")

    def _queue_usage(self, txn: ITransaction, project_id: str, used: Mapping[str, int],
                     amounts: Mapping[str, int], sign: int) -> None:
        new = {k: used.get(k, 0) for k in QUOTA_NAMES}
        for name, amount in amounts.items():
            new[name] = max(new[name] + sign * amount, 0)
        self.quotas.write_usage(txn, project_id, new)

    # -- index upkeep ---------------------------------------------------------------

    def _write(self, txn: ITransaction, old: Volume | None, new: Volume) -> None:
        key = keys.volume(new.volume_id)
        txn.set(key, new.to_json())
        if old is None:
            txn.zadd(keys.volumes_by_time(), {key: new.created_at})
            txn.zadd(keys.volumes_of_project(new.project_id), {key: new.created_at})
        old_host = old.host if old is not None else None
        if old_host is not None and old_host != new.host:
            txn.srem(keys.volumes_on_host(old_host), key)
        if new.host is not None and new.host != old_host:
            txn.sadd(keys.volumes_on_host(new.host), key)
        old_instance = old.instance_id if old is not None else None
        if old_instance is not None and old_instance != new.instance_id:
            txn.srem(keys.volumes_of_instance(old_instance), key)
        if new.instance_id is not None and new.instance_id != old_instance:
            txn.sadd(keys.volumes_of_instance(new.instance_id), key)

    def _evolve(self, old: Volume, changes: Mapping[str, Any]) -> Volume:
        fixed = _FIXED & set(changes)
        if fixed:
            raise ValueError(f"cannot change {sorted(fixed)} of a volume")
        changes = dict(changes)
        if changes.get("attach_status", old.attach_status) == states.DETACHED:
            # a detached volume forgets its attachment
            changes.update(instance_id=None, device=None, attach_time=None)
        status = changes.get("status", old.status)
        if status != states.ERROR and "status_reason" not in changes:
            changes["status_reason"] = None
        return attr.evolve(old, **changes, updated_at=self._clock.seconds())

    async def _read(self, txn: ITransaction, volume_id: str) -> Volume:
        raw = await txn.get(keys.volume(volume_id))
        if raw is None:
            raise InvalidVolumeNotFound(f"The volume '{volume_id}' does not exist.")
        return Volume.from_json(raw)

    # -- changes ----------------------------------------------------------------------

    async def update(self, volume_id: str, /, **changes: Any) -> Volume:
        """
        Change fields of a volume (C{host}, C{export}, C{status_reason},
        C{display_name} ...), atomically against every other writer; its
        indexes follow. State changes go through L{transition}.

        @param changes: record fields and their new values (not the id,
            project, user, size or creation time; not the state and
            attachment fields either).
        @return: the record as stored.
        @raise InvalidVolumeNotFound: no such volume.
        """
        check_volume_id(volume_id)
        state = _STATE_FIELDS & set(changes)
        if state:
            raise ValueError(f"{sorted(state)} change through transition() or attach()")
        key = keys.volume(volume_id)

        async def change(txn: ITransaction) -> Volume:
            old = await self._read(txn, volume_id)
            new = self._evolve(old, changes)
            self._write(txn, old, new)
            return new

        return await self._store.transact([key], change)

    async def transition(self, volume_id: str, action: str, /, *,
                         instance_id: str | None = None,
                         **changes: Any) -> tuple[Volume, Volume]:
        """
        Apply an action of L{states.VOLUME_TRANSITIONS}, checked against the
        current state in the same transaction. Reaching C{detached} clears
        the attachment fields. C{delete} is refused while a snapshot of the
        volume is C{pending}.

        @param instance_id: when given, the volume must be attached to that
            instance (DetachVolume's InstanceId, checked in the transaction).
        @param changes: more fields to set with the new state (C{export},
            C{status_reason} ...); ignored when the action changes nothing.
        @return: the record before and after (the same record when the
            action changes nothing).
        @raise InvalidAttachmentNotFound: not attached to C{instance_id}.
        @raise nova.volume.states.VolumeInUse: delete of a volume in use.
        @raise nova.volume.states.IncorrectState: not allowed now.
        @raise InvalidVolumeNotFound: no such volume.
        """
        check_volume_id(volume_id)
        if action not in states.VOLUME_TRANSITIONS:
            raise ValueError(f"unknown action {action!r}")
        if action == "attach":
            raise ValueError("attach through VolumeRepository.attach")

        async def move(txn: ITransaction) -> tuple[Volume, Volume]:
            old = await self._read(txn, volume_id)
            if instance_id is not None and old.instance_id not in (None, instance_id):
                raise InvalidAttachmentNotFound(
                    f"The volume '{volume_id}' is not attached to instance '{instance_id}'")
            target = states.check_volume_transition(volume_id, old.status, old.attach_status,
                                                    action, old.instance_id)
            if target is None:
                return old, old
            if action == "delete":
                await self._check_no_snapshot_pending(txn, volume_id)
            new = self._evolve(old, {**changes, "status": target[0], "attach_status": target[1]})
            self._write(txn, old, new)
            return old, new

        return await self._store.transact([keys.volume(volume_id)], move)

    @staticmethod
    async def _check_no_snapshot_pending(txn: ITransaction, volume_id: str) -> None:
        index = keys.snapshots_of_volume(volume_id)
        await txn.watch(index)  # a snapshot created meanwhile makes this run again
        members = sorted(await txn.smembers(index))
        if not members:
            return
        await txn.watch(*members)
        for raw in await txn.mget(*members):
            if raw is not None and Snapshot.from_json(raw).status == states.PENDING:
                raise states.IncorrectState(
                    f"The volume '{volume_id}' has a snapshot in progress")

    async def attach(self, volume_id: str, instance_id: str, device: str
                     ) -> tuple[Volume, Volume]:
        """
        AttachVolume's record change: C{available} to C{in-use}
        (C{attaching}), checked in one transaction against the volume, the
        instance (running or stopped, same project and zone: a terminate
        that commits first wins) and the instance's other volumes (one
        device, one volume).

        @param device: as the user gave it (validated by L{guest_device}).
        @return: the record before and after.
        @raise InvalidVolumeNotFound: no such volume.
        @raise InvalidInstanceIDNotFound: no such instance, or another project's.
        @raise InvalidVolumeZoneMismatch: the instance is in another zone.
        @raise nova.volume.states.IncorrectState: the instance is not running
            or stopped, or the volume is not available.
        @raise nova.volume.states.VolumeInUse: the volume is attached already.
        @raise InvalidParameterValue: a bad device name, or one another
            volume of the instance has.
        """
        check_volume_id(volume_id)
        guest = guest_device(device)
        instance_key = keys.instance(instance_id)
        attached = keys.volumes_of_instance(instance_id)

        async def attach(txn: ITransaction) -> tuple[Volume, Volume]:
            old = await self._read(txn, volume_id)
            raw = await txn.get(instance_key)
            instance = None if raw is None else Instance.from_json(raw)
            if instance is None or instance.project_id != old.project_id:
                raise InvalidInstanceIDNotFound(
                    f"The instance ID '{instance_id}' does not exist")
            if instance.availability_zone != old.availability_zone:
                raise InvalidVolumeZoneMismatch(
                    f"The volume '{volume_id}' is in zone '{old.availability_zone}' and the "
                    f"instance '{instance_id}' in zone '{instance.availability_zone}'")
            if instance.state not in ATTACHABLE_INSTANCE_STATES:
                raise states.IncorrectState(f"Instance '{instance_id}' is not 'running'.")
            target = states.check_volume_transition(volume_id, old.status, old.attach_status,
                                                    "attach", old.instance_id)
            assert target is not None  # attach has no no-op states
            for other in await self._members(txn, attached):
                if other.instance_id == instance_id and other.guest_device == guest:
                    raise InvalidParameterValue(
                        f"Invalid value '{device}' for unixDevice. Attachment point "
                        f"{device} is already in use")
            new = self._evolve(old, {"status": target[0], "attach_status": target[1],
                                     "instance_id": instance_id, "device": device,
                                     "attach_time": self._clock.seconds()})
            self._write(txn, old, new)
            return old, new

        return await self._store.transact([keys.volume(volume_id), instance_key, attached],
                                          attach)

    @staticmethod
    async def _members(txn: ITransaction, index: str) -> builtins.list[Volume]:
        members = sorted(await txn.smembers(index))
        if not members:
            return []
        await txn.watch(*members)
        return [Volume.from_json(raw) for raw in await txn.mget(*members) if raw is not None]

    async def restore(self, written: Volume, previous: Volume) -> bool:
        """
        Undo a change whose follow-up failed (the cast that should carry it
        out could not be sent): put C{previous} back, if the record is still
        C{written} (nobody moved it on since).

        @return: whether it was put back.
        """
        key = keys.volume(written.volume_id)

        async def undo(txn: ITransaction) -> bool:
            raw = await txn.get(key)
            if raw is None or Volume.from_json(raw) != written:
                return False
            self._write(txn, written, attr.evolve(previous, updated_at=self._clock.seconds()))
            return True

        return await self._store.transact([key], undo)

    async def delete(self, volume_id: str,
                     statuses: Collection[str] | None = (states.DELETING,)) -> bool:
        """
        Remove a volume's record and indexes, and give back its quota: the
        volume host's last step of a delete (or the API's, for a volume that
        never reached a host).

        @param statuses: the statuses it may be removed in (C{None}: any).
        @return: whether it existed.
        @raise nova.volume.states.IncorrectState: it is in another status.
        """
        check_volume_id(volume_id)
        key = keys.volume(volume_id)

        async def remove(txn: ITransaction) -> bool:
            raw = await txn.get(key)
            if raw is None:
                return False
            volume = Volume.from_json(raw)
            if statuses is not None and volume.status not in statuses:
                raise states.IncorrectState(
                    f"The volume '{volume_id}' is '{volume.status}' and cannot be removed")
            await self._queue_removal(txn, volume)
            return True

        return await self._store.transact([key], remove)

    async def remove_abandoned(self, volume_id: str, host: str | None) -> Volume:
        """
        C{nova-manage volume delete} of a volume no volume host will delete:
        its host is down or gone (or it never got one). Remove the record,
        its indexes and its quota usage in one transaction that checks it
        is detached and still recorded on C{host}, whatever its status.

        @param host: the host the caller found down, or C{None}.
        @return: the record removed.
        @raise InvalidVolumeNotFound: no such volume.
        @raise nova.volume.states.VolumeInUse: it is attached (or being
            attached or detached).
        @raise nova.volume.states.IncorrectState: its host changed meanwhile.
        """
        check_volume_id(volume_id)
        key = keys.volume(volume_id)

        async def remove(txn: ITransaction) -> Volume:
            volume = await self._read(txn, volume_id)
            if volume.status == states.IN_USE or volume.instance_id is not None:
                raise states.VolumeInUse(f"Volume {volume_id} is currently attached to "
                                         f"{volume.instance_id}")
            if volume.host != host:
                raise states.IncorrectState(f"The volume '{volume_id}' moved to host "
                                            f"{volume.host} meanwhile")
            await self._queue_removal(txn, volume)
            return volume

        return await self._store.transact([key], remove)

    async def _queue_removal(self, txn: ITransaction, volume: Volume) -> None:
        """Queue the removal of C{volume}'s record and indexes, and give back its quota."""
        key = keys.volume(volume.volume_id)
        await txn.watch(*self.quotas.watch_keys(volume.project_id))
        _limits, used = await self.quotas.read(txn, volume.project_id)
        txn.delete(key)
        txn.zrem(keys.volumes_by_time(), key)
        txn.zrem(keys.volumes_of_project(volume.project_id), key)
        if volume.host is not None:
            txn.srem(keys.volumes_on_host(volume.host), key)
        if volume.instance_id is not None:
            txn.srem(keys.volumes_of_instance(volume.instance_id), key)
        self._queue_usage(txn, volume.project_id, used, _usage(volume), -1)

    # -- reads --------------------------------------------------------------------------

    async def get(self, volume_id: str, project_id: str | None = None) -> Volume:
        """
        @param project_id: the caller's project (C{None}: an admin, who sees all).
        @raise nova.volume.records.InvalidVolumeIDMalformed: not a volume id.
        @raise InvalidVolumeNotFound: no such volume in the project.
        """
        return (await self.get_many([volume_id], project_id))[0]

    async def get_many(self, volume_ids: Sequence[str],
                       project_id: str | None = None) -> builtins.list[Volume]:
        """
        @return: the records in the order of C{volume_ids} (duplicates once).
        @raise InvalidVolumeNotFound: some do not exist in the project (the
            message names them all).
        """
        wanted = list(dict.fromkeys(check_volume_id(v) for v in volume_ids))
        if not wanted:
            return []
        values = await self._store.mget(*[keys.volume(v) for v in wanted])
        found = [None if raw is None else Volume.from_json(raw) for raw in values]
        missing = [v for v, r in zip(wanted, found)
                   if r is None or (project_id is not None and r.project_id != project_id)]
        if len(missing) == 1:
            raise InvalidVolumeNotFound(f"The volume '{missing[0]}' does not exist.")
        if missing:
            raise InvalidVolumeNotFound(f"The volumes '{', '.join(missing)}' do not exist.")
        return [r for r in found if r is not None]

    async def list(self, project_id: str | None = None) -> builtins.list[Volume]:
        """@return: a project's volumes (every project's for C{None}), oldest first."""
        index = keys.volumes_by_time() if project_id is None \
            else keys.volumes_of_project(project_id)
        return await self._load(await self._store.zrangebyscore(index))

    async def on_instance(self, instance_id: str) -> builtins.list[Volume]:
        """
        @return: the volumes attached, being attached or being detached to
            an instance (what terminating it must detach), oldest first.
        """
        found = await self._load(await self._store.smembers(keys.volumes_of_instance(instance_id)))
        return [v for v in found if v.instance_id == instance_id]

    async def on_host(self, host: str) -> builtins.list[Volume]:
        """@return: the volumes a volume host holds, oldest first."""
        found = await self._load(await self._store.smembers(keys.volumes_on_host(host)))
        return [v for v in found if v.host == host]

    async def _load(self, members: Collection[str]) -> builtins.list[Volume]:
        if not members:
            return []
        values = await self._store.mget(*members)
        return sorted((Volume.from_json(v) for v in values if v is not None), key=_sort_key)
