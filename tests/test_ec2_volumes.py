"""
The EC2 volume and snapshot actions (L{VolumeController}) over the in-memory
datastore, with recording nova-volume and compute clients: what each action
writes and hands on, the undo when a cast cannot be sent, the response
shapes (as dicts and as XML), and AWS's error codes for bad requests.
"""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

from twisted.internet import task
from twisted.trial import unittest

from nova.api.ec2.params import Params
from nova.api.ec2.volumes import VolumeController
from nova.api.ec2.xmlrender import format_timestamp, render_response
from nova.compute.records import Instance
from nova.compute.repository import InstanceRepository
from nova.context import RequestContext
from nova.datastore.memory import MemoryDatastore
from nova.datastore.records import Service
from nova.datastore.repositories import ServiceRepository
from nova.exception import NovaError
from nova.volume.records import Snapshot, Volume
from nova.volume.repository import SnapshotRepository, VolumeRepository
from tests.test_compute_records import a_launch

ALICE = RequestContext(user_id="alice", project_id="proj", roles=("sysadmin",))
MALLORY = RequestContext(user_id="mallory", project_id="other", roles=("sysadmin",))
ADMIN = RequestContext(user_id="root", project_id="admin", is_admin=True)
NS = "{http://ec2.amazonaws.com/doc/2016-11-15/}"


class SendFailed(NovaError):
    """The bus would not take the message."""


class Recorder:
    """Stands in for an RPC client: records every cast; fails them when told to."""

    def __init__(self) -> None:
        self.casts: list[tuple[Any, ...]] = []
        self.failing = False

    def __getattr__(self, method: str) -> Any:
        async def record(context: Any, *args: Any) -> None:
            if self.failing:
                raise SendFailed("the bus is down")
            self.casts.append((method, *args))
        return record


class VolumeActionTests(unittest.TestCase):

    def setUp(self) -> None:
        self.clock = task.Clock()
        self.clock.advance(1_000_000)
        self.store = MemoryDatastore(self.clock)
        self.instances = InstanceRepository(self.store, self.clock)
        self.volumes = VolumeRepository(self.store, self.clock, self.instances.quotas)
        self.snapshots = SnapshotRepository(self.store, self.clock)
        self.services = ServiceRepository(self.store, self.clock)
        self.volume_api = Recorder()
        self.compute = Recorder()
        self.api = VolumeController(self.volumes, self.snapshots, self.volume_api,
                                    self.compute, self.instances, self.clock, zone="nova",
                                    services=self.services)

    # -- helpers -------------------------------------------------------------------------

    async def call(self, action: str, context: RequestContext = ALICE,
                   **params: Any) -> dict[str, Any]:
        return await self.api.actions()[action](
            context, Params({k.replace("_", "."): str(v) for k, v in params.items()}))

    async def code(self, action: str, context: RequestContext = ALICE,
                   **params: Any) -> str:
        """@return: the EC2 error code the action answers with."""
        try:
            await self.call(action, context, **params)
        except NovaError as e:
            self.assertEqual(e.status, 400)
            return e.code
        raise AssertionError(f"{action} did not fail")

    async def created(self, context: RequestContext = ALICE, size: int = 5,
                      **params: Any) -> str:
        made = (await self.call("CreateVolume", context, Size=size, **params))["volumeId"]
        self.clock.advance(1)  # listings are in creation order
        return made

    async def available(self, context: RequestContext = ALICE, size: int = 5,
                        host: str = "vol1") -> Volume:
        volume_id = await self.created(context, size)
        await self.volumes.update(volume_id, host=host)
        return (await self.volumes.transition(volume_id, "created"))[1]

    async def instance(self, project: str = "proj", zone: str = "nova",
                       state: str = "running") -> Instance:
        [made] = (await self.instances.create_reservation(
            *a_launch(1, project_id=project))).instances
        if state == "pending":
            return made
        _, running = await self.instances.transition(made.instance_id, "spawned", host="c1",
                                                     availability_zone=zone)
        if state == "terminated":
            await self.instances.transition(made.instance_id, "terminate")
            _, running = await self.instances.transition(made.instance_id, "destroyed")
        return running

    async def attached(self) -> tuple[Volume, Instance]:
        volume = await self.available()
        instance = await self.instance()
        await self.call("AttachVolume", VolumeId=volume.volume_id,
                        InstanceId=instance.instance_id, Device="/dev/sdf")
        _, after = await self.volumes.transition(volume.volume_id, "attached")
        self.compute.casts.clear()
        return after, instance

    async def completed_snapshot(self, volume: Volume) -> Snapshot:
        made = await self.call("CreateSnapshot", VolumeId=volume.volume_id)
        _, done = await self.snapshots.transition(
            made["snapshotId"], "completed", bucket="snapshots", object_key=made["snapshotId"],
            checksum="c" * 64, stored_size=10)
        self.volume_api.casts.clear()
        return done

    # -- CreateVolume ----------------------------------------------------------------------

    async def test_create_volume(self) -> None:
        result = await self.call("CreateVolume", Size=7, AvailabilityZone="nova")
        volume_id = result["volumeId"]
        self.assertEqual(result, {
            "volumeId": volume_id, "size": 7, "snapshotId": "", "availabilityZone": "nova",
            "status": "creating", "createTime": "1970-01-12T13:46:40.000Z",
            "volumeType": "standard", "encrypted": False, "multiAttachEnabled": False})
        self.assertEqual(self.volume_api.casts, [("create_volume", volume_id)])
        stored = await self.volumes.get(volume_id, "proj")
        self.assertEqual((stored.size, stored.user_id, stored.host), (7, "alice", None))
        used = await self.volumes.quotas.get_usage("proj")
        self.assertEqual((used["volumes"], used["gigabytes"]), (1, 7))
        # the zone defaults to this cloud's; a zone some service reports is known too
        self.assertEqual((await self.call("CreateVolume", Size=1))["availabilityZone"], "nova")
        await self.services.heartbeat(Service(
            host="v2", binary="nova-volume", topic="volume", zone="east",
            updated_at=0, report_count=0, started_at=0))
        self.assertEqual((await self.call("CreateVolume", Size=1,
                                          AvailabilityZone="east"))["availabilityZone"], "east")

    async def test_create_volume_errors(self) -> None:
        self.assertEqual(await self.code("CreateVolume"), "MissingParameter")
        for size in (0, -3, 16385, "ten"):
            self.assertEqual(await self.code("CreateVolume", Size=size),
                             "InvalidParameterValue")
        self.assertEqual(await self.code("CreateVolume", Size=1, AvailabilityZone="mars"),
                         "InvalidZone.NotFound")
        self.assertEqual(await self.code("CreateVolume", Size=1, VolumeType="io1"),
                         "InvalidParameterValue")
        self.assertEqual(await self.code("CreateVolume", Size=1, Encrypted="true"),
                         "UnsupportedOperation")
        self.assertEqual(await self.code("CreateVolume", Size=1, Iops=100),
                         "UnsupportedOperation")
        self.assertEqual(await self.code("CreateVolume", SnapshotId="snapshot-1"),
                         "InvalidSnapshotID.Malformed")
        self.assertEqual(await self.code("CreateVolume", SnapshotId="snap-0123abcd"),
                         "InvalidSnapshot.NotFound")
        self.assertEqual(self.volume_api.casts, [])
        self.assertEqual(await self.volumes.list(), [])

    async def test_create_volume_quota(self) -> None:
        await self.volumes.quotas.set_quota("proj", "gigabytes", 10)
        await self.created(size=6)
        self.assertEqual(await self.code("CreateVolume", Size=5), "VolumeLimitExceeded")
        await self.created(size=4)
        await self.volumes.quotas.set_quota("proj", "gigabytes", 1000)
        await self.volumes.quotas.set_quota("proj", "volumes", 2)
        self.assertEqual(await self.code("CreateVolume", Size=1), "VolumeLimitExceeded")
        # another project has its own
        await self.created(MALLORY, size=10)
        self.assertEqual(len(self.volume_api.casts), 3)

    async def test_create_volume_cast_fails(self) -> None:
        """The scheduler cannot be told: no record is left, and the quota is given back."""
        self.volume_api.failing = True
        self.assertEqual(await self.code_internal("CreateVolume", Size=3), "InternalError")
        self.assertEqual(await self.volumes.list(), [])
        self.assertEqual((await self.volumes.quotas.get_usage("proj"))["gigabytes"], 0)

    async def code_internal(self, action: str, **params: Any) -> str:
        try:
            await self.call(action, **params)
        except SendFailed as e:
            return e.code
        raise AssertionError(f"{action} did not fail")

    async def test_create_volume_from_snapshot(self) -> None:
        source = await self.available(size=8)
        snapshot = await self.completed_snapshot(source)
        result = await self.call("CreateVolume", SnapshotId=snapshot.snapshot_id)
        self.assertEqual((result["size"], result["snapshotId"]), (8, snapshot.snapshot_id))
        bigger = await self.call("CreateVolume", SnapshotId=snapshot.snapshot_id, Size=20)
        self.assertEqual(bigger["size"], 20)
        self.assertEqual(await self.code("CreateVolume", SnapshotId=snapshot.snapshot_id,
                                         Size=7), "InvalidParameterValue")
        self.assertEqual(await self.code("CreateVolume", MALLORY,
                                         SnapshotId=snapshot.snapshot_id),
                         "InvalidSnapshot.NotFound")
        pending = await self.call("CreateSnapshot", VolumeId=source.volume_id)
        self.assertEqual(await self.code("CreateVolume", SnapshotId=pending["snapshotId"]),
                         "IncorrectState")

    # -- DescribeVolumes -------------------------------------------------------------------

    async def test_describe_volumes(self) -> None:
        volume, instance = await self.attached()
        other = await self.created(size=9)
        theirs = await self.created(MALLORY)
        listed = (await self.call("DescribeVolumes"))["volumeSet"]
        self.assertEqual([v["volumeId"] for v in listed], [volume.volume_id, other])
        item = listed[0]
        self.assertEqual(item["attachmentSet"], [{
            "volumeId": volume.volume_id, "instanceId": instance.instance_id,
            "device": "/dev/sdf", "status": "attached",
            "attachTime": format_timestamp(volume.attach_time or 0),
            "deleteOnTermination": False}])
        self.assertEqual((item["status"], item["size"], item["availabilityZone"]),
                         ("in-use", 5, "nova"))
        self.assertEqual(listed[1]["attachmentSet"], [])
        # by id; another project's is not found
        self.assertEqual([v["volumeId"] for v in (await self.call(
            "DescribeVolumes", VolumeId_1=other))["volumeSet"]], [other])
        self.assertEqual(await self.code("DescribeVolumes", VolumeId_1=theirs),
                         "InvalidVolume.NotFound")
        self.assertEqual(await self.code("DescribeVolumes", VolumeId_1="vol-x"),
                         "InvalidVolumeID.Malformed")
        # an admin sees every project's
        self.assertEqual(len((await self.call("DescribeVolumes", ADMIN))["volumeSet"]), 3)

    async def test_describe_volume_filters(self) -> None:
        volume, instance = await self.attached()
        other = await self.created(size=9)

        async def ids(*filters: tuple[str, str]) -> list[str]:
            params: dict[str, str] = {}
            for n, (name, value) in enumerate(filters, 1):
                params[f"Filter_{n}_Name"] = name
                params[f"Filter_{n}_Value_1"] = value
            return [v["volumeId"] for v in (await self.call("DescribeVolumes",
                                                            **params))["volumeSet"]]

        self.assertEqual(await ids(("status", "in-use")), [volume.volume_id])
        self.assertEqual(await ids(("status", "creating")), [other])
        self.assertEqual(await ids(("size", "9")), [other])
        self.assertEqual(await ids(("attachment.instance-id", instance.instance_id)),
                         [volume.volume_id])
        self.assertEqual(await ids(("attachment.status", "attached"),
                                   ("attachment.device", "/dev/sd*")), [volume.volume_id])
        self.assertEqual(await ids(("availability-zone", "nova"), ("volume-id", "vol-*")),
                         [volume.volume_id, other])
        self.assertEqual(await ids(("snapshot-id", "snap-*")), [])
        self.assertEqual(await ids(("create-time", "1970-01-12T*")), [volume.volume_id, other])
        self.assertEqual(await self.code("DescribeVolumes", Filter_1_Name="colour",
                                         Filter_1_Value_1="red"), "InvalidParameterValue")

    async def test_describe_volume_pages(self) -> None:
        made = []
        for _ in range(7):
            made.append(await self.created(size=1))
            self.clock.advance(1)
        first = await self.call("DescribeVolumes", MaxResults=5)
        self.assertEqual([v["volumeId"] for v in first["volumeSet"]], made[:5])
        second = await self.call("DescribeVolumes", MaxResults=5, NextToken=first["nextToken"])
        self.assertEqual([v["volumeId"] for v in second["volumeSet"]], made[5:])
        self.assertIsNone(second["nextToken"])
        self.assertEqual(await self.code("DescribeVolumes", MaxResults=5, VolumeId_1=made[0]),
                         "InvalidParameterCombination")
        self.assertEqual(await self.code("DescribeVolumes", NextToken="garbage!"),
                         "InvalidPaginationToken")

    async def test_update_volume(self) -> None:
        """2010 nova's UpdateVolume: a display name and description, shown by DescribeVolumes."""
        volume_id = await self.created()
        self.assertEqual(await self.call("UpdateVolume", VolumeId=volume_id,
                                         DisplayName="db", DisplayDescription="postgres data"),
                         {"return": True})
        [item] = (await self.call("DescribeVolumes", VolumeId_1=volume_id))["volumeSet"]
        self.assertEqual((item["displayName"], item["displayDescription"]),
                         ("db", "postgres data"))
        self.assertEqual(await self.code("UpdateVolume", MALLORY, VolumeId=volume_id,
                                         DisplayName="x"), "InvalidVolume.NotFound")
        self.assertEqual(await self.code("UpdateVolume", VolumeId=volume_id,
                                         DisplayName="x" * 256), "InvalidParameterValue")
        other = (await self.call("DescribeVolumes", VolumeId_1=await self.created())
                 )["volumeSet"][0]
        self.assertIsNone(other["displayName"])  # left out of the XML

    # -- DeleteVolume ------------------------------------------------------------------------

    async def test_delete_volume(self) -> None:
        volume = await self.available()
        self.assertEqual(await self.call("DeleteVolume", VolumeId=volume.volume_id),
                         {"return": True})
        self.assertEqual((await self.volumes.get(volume.volume_id)).status, "deleting")
        self.assertEqual(self.volume_api.casts[-1], ("delete_volume", "vol1", volume.volume_id))
        # repeated: still true, nothing sent again
        await self.call("DeleteVolume", VolumeId=volume.volume_id)
        self.assertEqual(len(self.volume_api.casts), 2)  # create + one delete

    async def test_delete_volume_never_scheduled(self) -> None:
        """A volume the scheduler failed (no host): its record is removed at once."""
        volume_id = await self.created(size=4)
        await self.volumes.transition(volume_id, "create_failed", status_reason="no host")
        await self.call("DeleteVolume", VolumeId=volume_id)
        self.assertEqual(await self.code("DescribeVolumes", VolumeId_1=volume_id),
                         "InvalidVolume.NotFound")
        self.assertEqual(self.volume_api.casts, [("create_volume", volume_id)])
        self.assertEqual((await self.volumes.quotas.get_usage("proj"))["gigabytes"], 0)

    async def test_delete_volume_errors(self) -> None:
        creating = await self.created()
        self.assertEqual(await self.code("DeleteVolume", VolumeId=creating), "IncorrectState")
        volume, _ = await self.attached()
        self.assertEqual(await self.code("DeleteVolume", VolumeId=volume.volume_id),
                         "VolumeInUse")
        self.assertEqual(await self.code("DeleteVolume", MALLORY, VolumeId=creating),
                         "InvalidVolume.NotFound")
        self.assertEqual(await self.code("DeleteVolume", VolumeId="vol-0123abcd"),
                         "InvalidVolume.NotFound")
        self.assertEqual(await self.code("DeleteVolume"), "MissingParameter")

    async def test_delete_volume_cast_fails(self) -> None:
        volume = await self.available()
        self.volume_api.failing = True
        self.assertEqual(await self.code_internal("DeleteVolume", VolumeId=volume.volume_id),
                         "InternalError")
        self.assertEqual((await self.volumes.get(volume.volume_id)).status, "available")

    # -- AttachVolume, DetachVolume ---------------------------------------------------------

    async def test_attach_volume(self) -> None:
        volume = await self.available()
        instance = await self.instance()
        result = await self.call("AttachVolume", VolumeId=volume.volume_id,
                                 InstanceId=instance.instance_id, Device="/dev/xvdg")
        self.assertEqual(result, {
            "volumeId": volume.volume_id, "instanceId": instance.instance_id,
            "device": "/dev/xvdg", "status": "attaching",
            "attachTime": format_timestamp(1_000_001), "deleteOnTermination": False})
        # the host is told the disk name the guest will see
        self.assertEqual(self.compute.casts, [("attach_volume", "c1", instance.instance_id,
                                               volume.volume_id, "vdg")])
        stored = await self.volumes.get(volume.volume_id)
        self.assertEqual((stored.status, stored.attach_status), ("in-use", "attaching"))

    async def test_attach_volume_errors(self) -> None:
        volume, instance = await self.attached()
        spare = await self.available()
        iid = instance.instance_id
        cases = [
            (dict(VolumeId=volume.volume_id, InstanceId=iid, Device="/dev/sdg"), "VolumeInUse"),
            (dict(VolumeId=spare.volume_id, InstanceId=iid, Device="/dev/vdf"),
             "InvalidParameterValue"),  # /dev/sdf is the same guest disk
            (dict(VolumeId=spare.volume_id, InstanceId=iid, Device="/dev/vda"),
             "InvalidParameterValue"),
            (dict(VolumeId=spare.volume_id, InstanceId=iid, Device="sdh"),
             "InvalidParameterValue"),
            (dict(VolumeId=await self.created(), InstanceId=iid, Device="/dev/sdh"),
             "IncorrectState"),
            (dict(VolumeId=spare.volume_id,
                  InstanceId=(await self.instance(zone="east")).instance_id,
                  Device="/dev/sdh"), "InvalidVolume.ZoneMismatch"),
            (dict(VolumeId=spare.volume_id,
                  InstanceId=(await self.instance(project="other")).instance_id,
                  Device="/dev/sdh"), "InvalidInstanceID.NotFound"),
            (dict(VolumeId=spare.volume_id,
                  InstanceId=(await self.instance(state="pending")).instance_id,
                  Device="/dev/sdh"), "IncorrectState"),
            (dict(VolumeId=spare.volume_id,
                  InstanceId=(await self.instance(state="terminated")).instance_id,
                  Device="/dev/sdh"), "IncorrectState"),
            (dict(VolumeId=spare.volume_id, InstanceId="i-0123456789abcdef0",
                  Device="/dev/sdh"), "InvalidInstanceID.NotFound"),
            (dict(VolumeId=spare.volume_id, InstanceId="instance", Device="/dev/sdh"),
             "InvalidInstanceID.Malformed"),
            (dict(VolumeId="vol-0123abcd", InstanceId=iid, Device="/dev/sdh"),
             "InvalidVolume.NotFound"),
            (dict(InstanceId=iid, Device="/dev/sdh"), "MissingParameter"),
            (dict(VolumeId=spare.volume_id, InstanceId=iid), "MissingParameter"),
        ]
        for params, expected in cases:
            self.assertEqual(await self.code("AttachVolume", **params), expected, params)
        # another project cannot attach our volume to its instance, nor ours to ours
        theirs = await self.instance(project="other")
        self.assertEqual(await self.code("AttachVolume", MALLORY, VolumeId=spare.volume_id,
                                         InstanceId=theirs.instance_id, Device="/dev/sdh"),
                         "InvalidVolume.NotFound")
        self.assertEqual(self.compute.casts, [])
        self.assertEqual(await self.volumes.get(spare.volume_id), spare)

    async def test_attach_volume_cast_fails(self) -> None:
        volume = await self.available()
        instance = await self.instance()
        self.compute.failing = True
        self.assertEqual(await self.code_internal(
            "AttachVolume", VolumeId=volume.volume_id, InstanceId=instance.instance_id,
            Device="/dev/sdf"), "InternalError")
        stored = await self.volumes.get(volume.volume_id)
        self.assertEqual((stored.status, stored.instance_id), ("available", None))
        self.assertEqual(await self.volumes.on_instance(instance.instance_id), [])

    async def test_detach_volume(self) -> None:
        volume, instance = await self.attached()
        result = await self.call("DetachVolume", VolumeId=volume.volume_id,
                                 InstanceId=instance.instance_id, Device="/dev/sdf")
        self.assertEqual((result["status"], result["instanceId"], result["device"]),
                         ("detaching", instance.instance_id, "/dev/sdf"))
        self.assertEqual(self.compute.casts, [("detach_volume", "c1", instance.instance_id,
                                               volume.volume_id, False)])
        # repeated while detaching: the same answer, nothing sent again
        again = await self.call("DetachVolume", VolumeId=volume.volume_id)
        self.assertEqual(again["status"], "detaching")
        self.assertEqual(len(self.compute.casts), 1)
        # Force sends it again
        await self.call("DetachVolume", VolumeId=volume.volume_id, Force="true")
        self.assertEqual(self.compute.casts[-1][-1], True)

    async def test_detach_volume_errors(self) -> None:
        volume, instance = await self.attached()
        spare = await self.available()
        self.assertEqual(await self.code("DetachVolume", VolumeId=spare.volume_id),
                         "IncorrectState")
        self.assertEqual(await self.code("DetachVolume", VolumeId=volume.volume_id,
                                         InstanceId="i-0123456789abcdef0"),
                         "InvalidAttachment.NotFound")
        self.assertEqual(await self.code("DetachVolume", VolumeId=volume.volume_id,
                                         Device="/dev/sdg"), "InvalidAttachment.NotFound")
        self.assertEqual(await self.code("DetachVolume", VolumeId=volume.volume_id,
                                         Device="/dev/sda"), "InvalidParameterValue")
        self.assertEqual(await self.code("DetachVolume", MALLORY, VolumeId=volume.volume_id),
                         "InvalidVolume.NotFound")
        self.assertEqual(await self.code("DetachVolume", VolumeId=volume.volume_id,
                                         Force="maybe"), "InvalidParameterValue")
        self.assertEqual(self.compute.casts, [])
        # an attachment still attaching needs Force
        other = await self.available()
        await self.call("AttachVolume", VolumeId=other.volume_id,
                        InstanceId=instance.instance_id, Device="/dev/sdg")
        self.assertEqual(await self.code("DetachVolume", VolumeId=other.volume_id),
                         "IncorrectState")
        forced = await self.call("DetachVolume", VolumeId=other.volume_id, Force="true")
        self.assertEqual(forced["status"], "detaching")

    async def test_detach_from_a_terminated_instance(self) -> None:
        """No guest is left to unplug it from: the volume is available at once."""
        volume, instance = await self.attached()
        await self.instances.transition(instance.instance_id, "terminate")
        await self.instances.transition(instance.instance_id, "destroyed")
        await self.call("DetachVolume", VolumeId=volume.volume_id)
        self.assertEqual(self.compute.casts, [])
        stored = await self.volumes.get(volume.volume_id)
        self.assertEqual((stored.status, stored.attach_status), ("available", "detached"))

    async def test_detach_volume_cast_fails(self) -> None:
        volume, _ = await self.attached()
        self.compute.failing = True
        self.assertEqual(await self.code_internal("DetachVolume", VolumeId=volume.volume_id),
                         "InternalError")
        self.assertEqual((await self.volumes.get(volume.volume_id)).attach_status, "attached")

    # -- snapshots ------------------------------------------------------------------------------

    async def test_create_snapshot(self) -> None:
        volume = await self.available(size=6)
        result = await self.call("CreateSnapshot", VolumeId=volume.volume_id,
                                 Description="before upgrade")
        snapshot_id = result["snapshotId"]
        self.assertEqual(result, {
            "snapshotId": snapshot_id, "volumeId": volume.volume_id, "status": "pending",
            "stateMessage": None, "startTime": "1970-01-12T13:46:41.000Z", "progress": "0%",
            "ownerId": "proj", "volumeSize": 6, "description": "before upgrade",
            "encrypted": False})
        self.assertEqual(self.volume_api.casts[-1], ("create_snapshot", "vol1", snapshot_id))

    async def test_create_snapshot_errors(self) -> None:
        creating = await self.created()
        volume = await self.available()
        self.assertEqual(await self.code("CreateSnapshot", VolumeId=creating), "IncorrectState")
        self.assertEqual(await self.code("CreateSnapshot", MALLORY, VolumeId=volume.volume_id),
                         "InvalidVolume.NotFound")
        self.assertEqual(await self.code("CreateSnapshot", VolumeId=volume.volume_id,
                                         Description="x" * 256), "InvalidParameterValue")
        self.assertEqual(await self.code("CreateSnapshot"), "MissingParameter")
        self.volume_api.failing = True
        self.assertEqual(await self.code_internal("CreateSnapshot", VolumeId=volume.volume_id),
                         "InternalError")
        self.assertEqual(await self.snapshots.list(), [])

    async def test_describe_snapshots(self) -> None:
        mine = await self.completed_snapshot(await self.available())
        pending = (await self.call("CreateSnapshot",
                                   VolumeId=(await self.available(size=2)).volume_id,
                                   Description="nightly"))["snapshotId"]
        theirs = await self.call("CreateSnapshot", MALLORY,
                                 VolumeId=(await self.available(MALLORY)).volume_id)

        async def ids(context: RequestContext = ALICE, **params: Any) -> list[str]:
            return [s["snapshotId"] for s in (await self.call("DescribeSnapshots", context,
                                                              **params))["snapshotSet"]]

        self.assertEqual(await ids(), [mine.snapshot_id, pending])
        self.assertEqual(await ids(Owner_1="self"), [mine.snapshot_id, pending])
        self.assertEqual(await ids(Owner_1="proj"), [mine.snapshot_id, pending])
        self.assertEqual(await ids(Owner_1="other"), [])
        self.assertEqual(await ids(Owner_1="amazon"), [])
        self.assertEqual(await ids(RestorableBy_1="self"), [mine.snapshot_id, pending])
        self.assertEqual(await ids(RestorableBy_1="all"), [])
        self.assertEqual(await ids(Filter_1_Name="status", Filter_1_Value_1="completed"),
                         [mine.snapshot_id])
        self.assertEqual(await ids(Filter_1_Name="description", Filter_1_Value_1="night*"),
                         [pending])
        self.assertEqual(await ids(Filter_1_Name="volume-size", Filter_1_Value_1="2"),
                         [pending])
        self.assertEqual(await ids(SnapshotId_1=pending), [pending])
        self.assertEqual(await self.code("DescribeSnapshots",
                                         SnapshotId_1=theirs["snapshotId"]),
                         "InvalidSnapshot.NotFound")
        # an admin sees all, and can ask for one project's
        self.assertEqual(len(await ids(ADMIN)), 3)
        self.assertEqual(await ids(ADMIN, Owner_1="other"), [theirs["snapshotId"]])
        self.assertEqual(await ids(ADMIN, RestorableBy_1="proj"), [mine.snapshot_id, pending])
        item = (await self.call("DescribeSnapshots", SnapshotId_1=mine.snapshot_id)
                )["snapshotSet"][0]
        self.assertEqual((item["status"], item["progress"], item["ownerId"]),
                         ("completed", "100%", "proj"))

    async def test_delete_snapshot(self) -> None:
        volume = await self.available()
        done = await self.completed_snapshot(volume)
        self.assertEqual(await self.call("DeleteSnapshot", SnapshotId=done.snapshot_id),
                         {"return": True})
        self.assertEqual(self.volume_api.casts, [("delete_snapshot", "vol1", done.snapshot_id)])
        self.assertEqual((await self.snapshots.get(done.snapshot_id)).status, "deleting")
        await self.call("DeleteSnapshot", SnapshotId=done.snapshot_id)
        self.assertEqual(len(self.volume_api.casts), 1)
        # one that failed before storing anything goes at once
        failed = (await self.call("CreateSnapshot", VolumeId=volume.volume_id))["snapshotId"]
        await self.snapshots.transition(failed, "failed", status_reason="read error")
        await self.call("DeleteSnapshot", SnapshotId=failed)
        self.assertEqual(await self.code("DescribeSnapshots", SnapshotId_1=failed),
                         "InvalidSnapshot.NotFound")

    async def test_delete_snapshot_errors(self) -> None:
        volume = await self.available()
        pending = (await self.call("CreateSnapshot", VolumeId=volume.volume_id))["snapshotId"]
        self.assertEqual(await self.code("DeleteSnapshot", SnapshotId=pending), "IncorrectState")
        self.assertEqual(await self.code("DeleteSnapshot", MALLORY, SnapshotId=pending),
                         "InvalidSnapshot.NotFound")
        self.assertEqual(await self.code("DeleteSnapshot", SnapshotId="snap-x"),
                         "InvalidSnapshotID.Malformed")
        done = await self.completed_snapshot(volume)
        self.volume_api.failing = True
        self.assertEqual(await self.code_internal("DeleteSnapshot",
                                                  SnapshotId=done.snapshot_id), "InternalError")
        self.assertEqual((await self.snapshots.get(done.snapshot_id)).status, "completed")
        # a volume with a snapshot in progress stays
        self.assertEqual(await self.code("DeleteVolume", VolumeId=volume.volume_id),
                         "IncorrectState")

    # -- XML -----------------------------------------------------------------------------------

    async def test_xml_shapes(self) -> None:
        volume, instance = await self.attached()
        await self.completed_snapshot(volume)
        body = await self.call("DescribeVolumes")
        root = ElementTree.fromstring(render_response("DescribeVolumes", "req-1", body))
        item = root.find(f"{NS}volumeSet/{NS}item")
        assert item is not None
        self.assertEqual(item.findtext(f"{NS}volumeId"), volume.volume_id)
        self.assertEqual(item.findtext(f"{NS}snapshotId"), "")
        self.assertEqual(item.findtext(f"{NS}status"), "in-use")
        attachment = item.find(f"{NS}attachmentSet/{NS}item")
        assert attachment is not None
        self.assertEqual([(e.tag[len(NS):], e.text) for e in attachment], [
            ("volumeId", volume.volume_id), ("instanceId", instance.instance_id),
            ("device", "/dev/sdf"), ("status", "attached"),
            ("attachTime", "1970-01-12T13:46:41.000Z"), ("deleteOnTermination", "false")])
        self.assertIsNone(root.find(f"{NS}nextToken"))
        snapshots = await self.call("DescribeSnapshots")
        root = ElementTree.fromstring(render_response("DescribeSnapshots", "req-2", snapshots))
        snap = root.find(f"{NS}snapshotSet/{NS}item")
        assert snap is not None
        self.assertEqual(snap.findtext(f"{NS}volumeSize"), "5")
        self.assertIsNone(snap.find(f"{NS}stateMessage"))
        attach_body = await self.call("DetachVolume", VolumeId=volume.volume_id)
        root = ElementTree.fromstring(render_response("DetachVolume", "req-3", attach_body))
        self.assertEqual(root.findtext(f"{NS}status"), "detaching")
