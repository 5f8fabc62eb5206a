"""
EC2 volume and snapshot actions: CreateVolume, DeleteVolume,
DescribeVolumes, AttachVolume, DetachVolume, CreateSnapshot, DeleteSnapshot,
DescribeSnapshots; and 2010 nova's extension UpdateVolume (a volume's display
name and description).

As for instances, the API moves a record into the state the action leads
through, in one transaction that checks the state (so two concurrent actions
cannot both pass), then hands the work on with a cast: new volumes to the
scheduler, storage work to the volume host (C{volume.<host>}), attachments to
the instance's compute host. If that cast cannot be sent, the record change
is undone: nothing is left half-done. Describe actions read Redis only.
"""

from __future__ import annotations

from typing import Any

from nova.api.ec2 import volume_view
from nova.api.ec2.params import Params, matches
from nova.compute import states as instance_states
from nova.compute.repository import InstanceRepository, InvalidInstanceIDNotFound
from nova.context import RequestContext
from nova.datastore.repositories import ServiceRepository
from nova.exception import (ClientError, InvalidParameterValue, MissingParameter,
                            UnsupportedOperation)
from nova.volume import states
from nova.volume.records import (
    Snapshot, Volume, check_size, guest_device, new_snapshot_id, new_volume_id)
from nova.volume.repository import (
    InvalidAttachmentNotFound, SnapshotRepository, VolumeRepository)
from nova.volume.rpcapi import VolumeCasts, VolumeComputeCasts

#: DescribeVolumes' page sizes (AWS: 5..500); DescribeSnapshots' (5..1000)
VOLUME_RESULTS = (5, 500)
SNAPSHOT_RESULTS = (5, 1000)
#: AWS's limit on a snapshot's description
MAX_DESCRIPTION = 255
#: Owner.N values that name AWS itself: no snapshot here is theirs
_AWS_OWNERS = frozenset({"amazon", "aws-marketplace", "aws-backup-vault", "microsoft"})


class InvalidZoneNotFound(ClientError):
    """No service reports in that availability zone."""

    code = "InvalidZone.NotFound"


class InvalidParameterCombination(InvalidParameterValue):
    """Parameters that cannot be given together."""

    code = "InvalidParameterCombination"


def _page_size(params: Params, ids: list[str], bounds: tuple[int, int],
               what: str) -> int | None:
    size = params.get_int("MaxResults")
    if size is None:
        return None
    if ids:
        raise InvalidParameterCombination(
            f"The parameter {what} cannot be used with the parameter maxResults")
    low, high = bounds
    return min(max(size, low), high)


class VolumeController:
    """
    @param volumes: the volume records.
    @param snapshots: the snapshot records.
    @param volume_api: nova-volume's (and the scheduler's) client
        (L{nova.volume.rpcapi.VolumeAPI}).
    @param compute_api: the compute hosts' client (L{nova.compute.rpcapi.ComputeAPI}).
    @param instances: the instance records (AttachVolume's instance).
    @param clock: stamps new records.
    @param zone: the availability zone of a CreateVolume that names none
        (C{[nova] zone}).
    @param services: the services' heartbeats: a zone some service reports
        in is a zone CreateVolume accepts (as are C{zone}); C{None}: C{zone} only.
    """

    def __init__(self, volumes: VolumeRepository, snapshots: SnapshotRepository,
                 volume_api: VolumeCasts, compute_api: VolumeComputeCasts,
                 instances: InstanceRepository, clock: Any, *, zone: str = "nova",
                 services: ServiceRepository | None = None) -> None:
        self._volumes = volumes
        self._snapshots = snapshots
        self._volume_api = volume_api
        self._compute = compute_api
        self._instances = instances
        self._clock = clock
        self._zone = zone
        self._services = services

    def actions(self) -> dict[str, Any]:
        """@return: the volume and snapshot actions of the EC2 API."""
        return {
            "CreateVolume": self.create_volume,
            "DeleteVolume": self.delete_volume,
            "DescribeVolumes": self.describe_volumes,
            "UpdateVolume": self.update_volume,
            "AttachVolume": self.attach_volume,
            "DetachVolume": self.detach_volume,
            "CreateSnapshot": self.create_snapshot,
            "DeleteSnapshot": self.delete_snapshot,
            "DescribeSnapshots": self.describe_snapshots,
        }

    @staticmethod
    def _scope(context: RequestContext) -> str | None:
        """@return: the project whose records the caller sees (C{None}: all, an admin)."""
        return None if context.is_admin else (context.project_id or "")

    # -- volumes ---------------------------------------------------------------------

    async def _zone_of(self, params: Params) -> str:
        asked = params.get("AvailabilityZone") or self._zone
        known = {self._zone}
        if self._services is not None and asked not in known:
            known.update(s.zone for s in await self._services.list())
        if asked not in known:
            raise InvalidZoneNotFound(f"The zone '{asked}' does not exist.")
        return asked

    async def create_volume(self, context: RequestContext, params: Params) -> dict[str, Any]:
        """CreateVolume: C{creating}, quota counted; the scheduler picks its host."""
        if params.get("VolumeType") not in (None, "", volume_view.VOLUME_TYPE):
            raise InvalidParameterValue(
                f"Value ({params.get('VolumeType')}) for parameter volumeType is invalid. "
                f"This cloud has volumes of type '{volume_view.VOLUME_TYPE}' only.")
        for name in ("Iops", "KmsKeyId", "Throughput", "OutpostArn"):
            if params.get(name):
                raise UnsupportedOperation(f"{name} is not supported by this cloud")
        if params.get_bool("Encrypted") or params.get_bool("MultiAttachEnabled"):
            raise UnsupportedOperation("Encrypted and multi-attach volumes are not supported "
                                       "by this cloud")
        size = params.get_int("Size")
        snapshot_id = params.get("SnapshotId") or None
        if size is None and snapshot_id is None:
            raise MissingParameter("The request must contain the parameter size or snapshotId")
        zone = await self._zone_of(params)
        if snapshot_id is not None:
            snapshot = await self._snapshots.get(snapshot_id, self._scope(context))
            if snapshot.status != states.COMPLETED:
                raise states.IncorrectState(
                    f"Snapshot '{snapshot_id}' is '{snapshot.status}'; a volume can be "
                    "created from a 'completed' snapshot only")
            if size is None:
                size = snapshot.volume_size
            elif size < snapshot.volume_size:
                raise InvalidParameterValue(
                    f"Volume of {size}GiB is smaller than snapshot '{snapshot_id}', which "
                    f"needs {snapshot.volume_size}GiB.")
            project = snapshot.project_id  # an admin restores into the snapshot's project
        else:
            project = context.project_id or ""
        now = self._clock.seconds()
        volume = await self._volumes.create(Volume(
            volume_id=new_volume_id(), project_id=project, user_id=context.user_id or "",
            size=check_size(size), availability_zone=zone, snapshot_id=snapshot_id,
            created_at=now, updated_at=now))
        try:
            await self._volume_api.create_volume(context, volume.volume_id)
        except BaseException:
            await self._volumes.delete(volume.volume_id, statuses=(states.CREATING,))
            raise
        return volume_view.created_volume(volume)

    async def delete_volume(self, context: RequestContext, params: Params) -> dict[str, Any]:
        """DeleteVolume: C{deleting}; its host removes the storage, then the record."""
        volume = await self._volumes.get(params.require("VolumeId"), self._scope(context))
        before, after = await self._volumes.transition(volume.volume_id, "delete")
        if after is before:
            return {"return": True}  # deleting already
        if after.host is None:
            # never reached a volume host: no storage anywhere, only the record
            await self._volumes.delete(after.volume_id)
            return {"return": True}
        try:
            await self._volume_api.delete_volume(context, after.host, after.volume_id)
        except BaseException:
            await self._volumes.restore(after, before)
            raise
        return {"return": True}

    async def describe_volumes(self, context: RequestContext,
                               params: Params) -> dict[str, Any]:
        """DescribeVolumes with VolumeId.N, Filter.N, MaxResults and NextToken."""
        ids = params.get_list("VolumeId")
        filters = params.get_filters(volume_view.VOLUME_FILTERS)
        size = _page_size(params, ids, VOLUME_RESULTS, "volumeSet")
        scope = self._scope(context)
        found = await (self._volumes.get_many(ids, scope) if ids else self._volumes.list(scope))
        chosen = [v for v in found if matches(filters, volume_view.volume_fields(v))]
        shown, token = volume_view.page(chosen, size, params.get("NextToken"))
        return {"volumeSet": [volume_view.describe_volume(v) for v in shown],
                "nextToken": token}

    async def update_volume(self, context: RequestContext, params: Params) -> dict[str, Any]:
        """UpdateVolume (2010 nova): DisplayName and DisplayDescription."""
        volume = await self._volumes.get(params.require("VolumeId"), self._scope(context))
        changes = {}
        for name, field in (("DisplayName", "display_name"),
                            ("DisplayDescription", "display_description")):
            value = params.get(name)
            if value is not None:
                if len(value) > MAX_DESCRIPTION:
                    raise InvalidParameterValue(f"Value for parameter {name} is too long: at "
                                                f"most {MAX_DESCRIPTION} characters")
                changes[field] = value
        if changes:
            await self._volumes.update(volume.volume_id, **changes)
        return {"return": True}

    # -- attachments ---------------------------------------------------------------------

    async def attach_volume(self, context: RequestContext, params: Params) -> dict[str, Any]:
        """AttachVolume: C{in-use}/C{attaching}; the instance's host plugs it in."""
        volume_id = params.require("VolumeId")
        instance_id = params.require("InstanceId")
        device = params.require("Device")
        guest = guest_device(device)
        scope = self._scope(context)
        await self._volumes.get(volume_id, scope)
        instance = await self._instances.get(instance_id)
        if scope is not None and instance.project_id != scope:
            raise InvalidInstanceIDNotFound(f"The instance ID '{instance_id}' does not exist")
        # checked again, with the volume's state, in the attach transaction
        before, after = await self._volumes.attach(volume_id, instance_id, device)
        try:
            if instance.host is None:
                raise states.IncorrectState(f"Instance '{instance_id}' is not 'running'.")
            await self._compute.attach_volume(context, instance.host, instance_id, volume_id,
                                              guest)
        except BaseException:
            await self._volumes.restore(after, before)
            raise
        return volume_view.attachment(after)

    async def detach_volume(self, context: RequestContext, params: Params) -> dict[str, Any]:
        """DetachVolume (InstanceId, Device, Force): C{detaching}; the host unplugs it."""
        volume = await self._volumes.get(params.require("VolumeId"), self._scope(context))
        instance_id = params.get("InstanceId") or None
        device = params.get("Device") or None
        force = params.get_bool("Force")
        if volume.attach_status == states.DETACHED:
            raise states.IncorrectState(
                f"Volume '{volume.volume_id}' is in the '{volume.status}' state.")
        if instance_id is not None and instance_id != volume.instance_id:
            raise InvalidAttachmentNotFound(
                f"The volume '{volume.volume_id}' is not attached to instance '{instance_id}'")
        if device is not None and guest_device(device) != volume.guest_device:
            raise InvalidAttachmentNotFound(
                f"The volume '{volume.volume_id}' is not attached at '{device}'")
        before, after = await self._volumes.transition(
            volume.volume_id, "force_detach" if force else "detach",
            instance_id=volume.instance_id)
        if after is before:
            return volume_view.attachment(after)  # detaching already
        host = await self._host_of(after)
        if host is None:
            # no guest left to unplug it from: it is detached now
            await self._volumes.transition(after.volume_id, "detached")
            return volume_view.attachment(after)
        try:
            await self._compute.detach_volume(context, host, after.instance_id or "",
                                              after.volume_id, force)
        except BaseException:
            await self._volumes.restore(after, before)
            raise
        return volume_view.attachment(after)

    async def _host_of(self, volume: Volume) -> str | None:
        """@return: the compute host of the volume's instance, C{None} when it has no guest."""
        try:
            instance = await self._instances.get(volume.instance_id or "")
        except (InvalidInstanceIDNotFound, InvalidParameterValue):
            return None
        if instance.state == instance_states.TERMINATED:
            return None
        return instance.host

    # -- snapshots ---------------------------------------------------------------------

    async def create_snapshot(self, context: RequestContext, params: Params) -> dict[str, Any]:
        """CreateSnapshot: C{pending}; the volume's host copies it to the object store."""
        description = params.get("Description") or ""
        if len(description) > MAX_DESCRIPTION:
            raise InvalidParameterValue(
                f"Value for parameter Description is too long: at most {MAX_DESCRIPTION} "
                "characters")
        volume = await self._volumes.get(params.require("VolumeId"), self._scope(context))
        now = self._clock.seconds()
        snapshot = await self._snapshots.create(Snapshot(
            snapshot_id=new_snapshot_id(), volume_id=volume.volume_id,
            project_id=volume.project_id, user_id=context.user_id or "",
            volume_size=volume.size, description=description, created_at=now,
            updated_at=now))
        try:
            assert snapshot.host is not None  # the repository refuses a volume without one
            await self._volume_api.create_snapshot(context, snapshot.host,
                                                   snapshot.snapshot_id)
        except BaseException:
            await self._snapshots.delete(snapshot.snapshot_id, statuses=(states.PENDING,))
            raise
        return volume_view.describe_snapshot(snapshot)

    async def delete_snapshot(self, context: RequestContext, params: Params) -> dict[str, Any]:
        """DeleteSnapshot: C{deleting}; a volume host removes the stored object, then the record."""
        snapshot = await self._snapshots.get(params.require("SnapshotId"),
                                             self._scope(context))
        before, after = await self._snapshots.transition(snapshot.snapshot_id, "delete")
        if after is before:
            return {"return": True}  # deleting already
        if after.location is None:
            # nothing was stored (it failed before): only the record to remove
            await self._snapshots.delete(after.snapshot_id)
            return {"return": True}
        try:
            await self._volume_api.delete_snapshot(context, after.host, after.snapshot_id)
        except BaseException:
            await self._snapshots.restore(after, before)
            raise
        return {"return": True}

    async def describe_snapshots(self, context: RequestContext,
                                 params: Params) -> dict[str, Any]:
        """
        DescribeSnapshots with SnapshotId.N, Owner.N, RestorableBy.N, Filter.N,
        MaxResults and NextToken. A snapshot is restorable by its own project
        only (there is no sharing): C{RestorableBy} names projects (C{self}
        is the caller's) and C{all} matches none.
        """
        ids = params.get_list("SnapshotId")
        filters = params.get_filters(volume_view.SNAPSHOT_FILTERS)
        size = _page_size(params, ids, SNAPSHOT_RESULTS, "snapshotSet")
        owners = self._projects(context, params.get_list("Owner"))
        restorable = self._projects(context, params.get_list("RestorableBy"))
        scope = self._scope(context)
        found = await (self._snapshots.get_many(ids, scope) if ids
                       else self._snapshots.list(scope))
        chosen = [s for s in found
                  if (owners is None or s.project_id in owners)
                  and (restorable is None or s.project_id in restorable)
                  and matches(filters, volume_view.snapshot_fields(s))]
        shown, token = volume_view.page(chosen, size, params.get("NextToken"))
        return {"snapshotSet": [volume_view.describe_snapshot(s) for s in shown],
                "nextToken": token}

    @staticmethod
    def _projects(context: RequestContext, names: list[str]) -> set[str] | None:
        """@return: the projects Owner.N or RestorableBy.N name (C{None}: not given)."""
        if not names:
            return None
        projects = set()
        for name in names:
            if name == "self":
                projects.add(context.project_id or "")
            elif name != "all" and name not in _AWS_OWNERS:
                projects.add(name)
        return projects
