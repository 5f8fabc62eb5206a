"""
Functional: the EC2 volume and snapshot actions on a running all-in-one,
through boto3 and boto 2: create, describe (ids, filters), delete, the quota
set with nova-manage, and the errors AWS gives.

What happens to a volume after CreateVolume is nova-volume's business (it may
stay C{creating} on a cloud without a volume host, or become C{available} or
C{error}): these tests assert only what the API itself decides, so that they
hold either way. The state machine is tested in tests/test_ec2_volumes.py.
"""

from __future__ import annotations

from typing import Any

from boto.exception import EC2ResponseError
from botocore.exceptions import ClientError
from twisted.trial import unittest

from tests.support.allinone import AllInOne, shared
from tests.support.clients import Tenant
from tests.support.images import register_raw_image
from tests.support.s3 import S3User, wait_for

#: what a new volume can be once nova-volume (if any) had a look at it
SETTLING = {"creating", "available", "error"}
NO_SUCH_VOLUME = "vol-0123456789abcdef0"
NO_SUCH_SNAPSHOT = "snap-0123456789abcdef0"


def error_code(call: Any, **kwargs: Any) -> str:
    """@return: the EC2 error code C{call} fails with (boto3)."""
    try:
        call(**kwargs)
    except ClientError as e:
        return str(e.response["Error"]["Code"])
    raise AssertionError(f"{call} did not fail")


def forget_volume(ec2: Any, volume_id: str) -> None:
    """Delete a test's volume if the API lets it (a volume still creating stays)."""
    try:
        ec2.delete_volume(VolumeId=volume_id)
    except ClientError as e:
        if e.response["Error"]["Code"] not in ("IncorrectState", "InvalidVolume.NotFound"):
            raise


class Boto3VolumeTests(unittest.TestCase):

    def setUp(self) -> None:
        self.cloud: AllInOne = shared()
        # the project's manager: volume actions are the manager's or a sysadmin's
        self.tenant = Tenant(self.cloud)
        self.addCleanup(self.tenant.remove)
        self.ec2: Any = self.tenant.boto3()

    def volume(self, size: int = 1, **kwargs: Any) -> dict[str, Any]:
        made = self.ec2.create_volume(Size=size, AvailabilityZone="nova", **kwargs)
        self.addCleanup(forget_volume, self.ec2, made["VolumeId"])
        return made

    def volumes(self, **kwargs: Any) -> list[str]:
        return [v["VolumeId"] for v in self.ec2.describe_volumes(**kwargs)["Volumes"]]

    def test_create_and_describe(self) -> None:
        made = self.volume(3)
        volume_id = made["VolumeId"]
        self.assertRegex(volume_id, r"\Avol-[0-9a-f]{17}\Z")
        self.assertEqual((made["Size"], made["AvailabilityZone"], made["State"],
                          made["VolumeType"], made["Encrypted"]),
                         (3, "nova", "creating", "standard", False))
        [shown] = self.ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"]
        self.assertIn(shown["State"], SETTLING)
        self.assertEqual((shown["Size"], shown["Attachments"], shown["SnapshotId"]),
                         (3, [], ""))
        self.assertEqual(shown["CreateTime"], made["CreateTime"])
        other = self.volume(2)["VolumeId"]
        self.assertEqual(self.volumes(), [volume_id, other])
        self.assertEqual(self.volumes(Filters=[{"Name": "size", "Values": ["3"]}]), [volume_id])
        self.assertEqual(self.volumes(Filters=[{"Name": "availability-zone",
                                                "Values": ["nova"]},
                                               {"Name": "volume-id", "Values": [other]}]),
                         [other])
        self.assertEqual(self.volumes(Filters=[{"Name": "attachment.instance-id",
                                                "Values": ["i-*"]}]), [])
        # another project sees none of them
        stranger = Tenant(self.cloud)
        self.addCleanup(stranger.remove)
        theirs: Any = stranger.boto3()
        self.assertEqual(theirs.describe_volumes()["Volumes"], [])
        self.assertEqual(error_code(theirs.describe_volumes, VolumeIds=[volume_id]),
                         "InvalidVolume.NotFound")
        self.assertEqual(error_code(theirs.delete_volume, VolumeId=volume_id),
                         "InvalidVolume.NotFound")

    def test_paging(self) -> None:
        made = [self.volume()["VolumeId"] for _ in range(6)]
        pages = self.ec2.get_paginator("describe_volumes").paginate(
            PaginationConfig={"PageSize": 5})
        sizes = []
        seen = []
        for page in pages:
            sizes.append(len(page["Volumes"]))
            seen.extend(v["VolumeId"] for v in page["Volumes"])
        self.assertEqual((sizes, seen), ([5, 1], made))

    def test_delete(self) -> None:
        """A volume still creating cannot be deleted yet (AWS's IncorrectState)."""
        volume_id = self.volume()["VolumeId"]
        try:
            self.ec2.delete_volume(VolumeId=volume_id)
        except ClientError as e:
            self.assertEqual(e.response["Error"]["Code"], "IncorrectState")
            # it may have become available since the refusal
            self.assertIn(self.ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
                          ["State"], {"creating", "available"})
            return
        # deleted: gone at once, or deleting on its host until it is
        try:
            [left] = self.ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"]
            self.assertEqual(left["State"], "deleting")
        except ClientError as e:
            self.assertEqual(e.response["Error"]["Code"], "InvalidVolume.NotFound")

    def test_errors(self) -> None:
        cases = [
            (self.ec2.create_volume, dict(Size=0, AvailabilityZone="nova"),
             "InvalidParameterValue"),
            (self.ec2.create_volume, dict(Size=16385, AvailabilityZone="nova"),
             "InvalidParameterValue"),
            (self.ec2.create_volume, dict(Size=1, AvailabilityZone="atlantis"),
             "InvalidZone.NotFound"),
            (self.ec2.create_volume, dict(Size=1, AvailabilityZone="nova",
                                          VolumeType="io1", Iops=100),
             "InvalidParameterValue"),
            (self.ec2.create_volume, dict(AvailabilityZone="nova",
                                          SnapshotId=NO_SUCH_SNAPSHOT),
             "InvalidSnapshot.NotFound"),
            (self.ec2.describe_volumes, dict(VolumeIds=[NO_SUCH_VOLUME]),
             "InvalidVolume.NotFound"),
            (self.ec2.describe_volumes, dict(VolumeIds=["vol-nope"]),
             "InvalidVolumeID.Malformed"),
            (self.ec2.describe_volumes, dict(Filters=[{"Name": "colour", "Values": ["red"]}]),
             "InvalidParameterValue"),
            (self.ec2.delete_volume, dict(VolumeId=NO_SUCH_VOLUME), "InvalidVolume.NotFound"),
            (self.ec2.attach_volume, dict(VolumeId=NO_SUCH_VOLUME, InstanceId="i-0123abcd",
                                          Device="/dev/sdf"), "InvalidVolume.NotFound"),
            (self.ec2.detach_volume, dict(VolumeId=NO_SUCH_VOLUME), "InvalidVolume.NotFound"),
            (self.ec2.create_snapshot, dict(VolumeId=NO_SUCH_VOLUME), "InvalidVolume.NotFound"),
            (self.ec2.describe_snapshots, dict(SnapshotIds=[NO_SUCH_SNAPSHOT]),
             "InvalidSnapshot.NotFound"),
            (self.ec2.delete_snapshot, dict(SnapshotId=NO_SUCH_SNAPSHOT),
             "InvalidSnapshot.NotFound"),
        ]
        for call, kwargs, expected in cases:
            self.assertEqual(error_code(call, **kwargs), expected, kwargs)
        volume_id = self.volume()["VolumeId"]
        # checked before the volume's state: the same answer whatever it is
        self.assertEqual(error_code(self.ec2.attach_volume, VolumeId=volume_id,
                                    InstanceId="i-0123456789abcdef0", Device="/dev/vda"),
                         "InvalidParameterValue")
        self.assertEqual(error_code(self.ec2.attach_volume, VolumeId=volume_id,
                                    InstanceId="i-0123456789abcdef0", Device="/dev/sdf"),
                         "InvalidInstanceID.NotFound")
        self.assertEqual(error_code(self.ec2.detach_volume, VolumeId=volume_id),
                         "IncorrectState")  # not attached
        self.assertEqual(self.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"], [])
        self.assertEqual(self.ec2.describe_snapshots(RestorableByUserIds=["all"])["Snapshots"],
                         [])

    def test_quota_from_nova_manage(self) -> None:
        project = self.tenant.project
        self.cloud.nova_manage("project", "quota", project, "volumes", "1")
        shown = self.cloud.nova_manage("project", "quota", project).stdout
        self.assertIn("volumes: 1 (in use: 0)", shown)
        self.assertIn("gigabytes: 1000 (in use: 0)", shown)
        self.volume(4)
        self.assertEqual(error_code(self.ec2.create_volume, Size=1, AvailabilityZone="nova"),
                         "VolumeLimitExceeded")
        shown = self.cloud.nova_manage("project", "quota", project).stdout
        self.assertIn("volumes: 1 (in use: 1)", shown)
        self.assertIn("gigabytes: 1000 (in use: 4)", shown)
        self.cloud.nova_manage("project", "quota", project, "volumes", "default")
        self.cloud.nova_manage("project", "quota", project, "gigabytes", "10")
        self.assertEqual(error_code(self.ec2.create_volume, Size=7, AvailabilityZone="nova"),
                         "VolumeLimitExceeded")
        self.assertEqual(self.volume(6)["Size"], 6)


class Boto3AttachTests(unittest.TestCase):
    """AttachVolume's checks against a running instance (fake driver)."""

    def setUp(self) -> None:
        self.cloud = shared()
        self.user = S3User(self.cloud)
        self.addCleanup(self.user.remove)
        self.ec2: Any = self.user.boto3()
        image_id = register_raw_image(self.user, self)
        [instance] = self.ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1,
                                            InstanceType="m1.tiny")["Instances"]
        self.instance_id = instance["InstanceId"]
        self.addCleanup(self.ec2.terminate_instances, InstanceIds=[self.instance_id])
        wait_for(lambda: self.ec2.describe_instances(InstanceIds=[self.instance_id])
                 ["Reservations"][0]["Instances"][0]["State"]["Name"] == "running", 30,
                 f"{self.instance_id} running")

    def test_attach_checks(self) -> None:
        volume_id = self.ec2.create_volume(Size=1, AvailabilityZone="nova")["VolumeId"]
        self.addCleanup(forget_volume, self.ec2, volume_id)
        for device in ("/dev/vda", "/dev/sda1", "sdf", "/dev/hdb"):
            self.assertEqual(error_code(self.ec2.attach_volume, VolumeId=volume_id,
                                        InstanceId=self.instance_id, Device=device),
                             "InvalidParameterValue", device)
        # another project's instance is not there for us, nor our volume for them
        stranger = Tenant(self.cloud)
        self.addCleanup(stranger.remove)
        theirs: Any = stranger.boto3()
        self.assertEqual(error_code(theirs.attach_volume, VolumeId=volume_id,
                                    InstanceId=self.instance_id, Device="/dev/sdf"),
                         "InvalidVolume.NotFound")
        their_volume = theirs.create_volume(Size=1, AvailabilityZone="nova")["VolumeId"]
        self.addCleanup(forget_volume, theirs, their_volume)
        self.assertEqual(error_code(theirs.attach_volume, VolumeId=their_volume,
                                    InstanceId=self.instance_id, Device="/dev/sdf"),
                         "InvalidInstanceID.NotFound")
        [shown] = self.ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"]
        self.assertEqual(shown["Attachments"], [])


class Boto2VolumeTests(unittest.TestCase):

    def setUp(self) -> None:
        self.cloud = shared()
        self.tenant = Tenant(self.cloud)
        self.addCleanup(self.tenant.remove)
        self.conn: Any = self.tenant.boto2()

    def test_create_describe(self) -> None:
        volume = self.conn.create_volume(2, "nova")
        self.addCleanup(forget_volume, self.tenant.boto3(), volume.id)
        self.assertEqual((volume.size, volume.zone, volume.status), (2, "nova", "creating"))
        [shown] = self.conn.get_all_volumes([volume.id])
        self.assertEqual((shown.id, shown.size, shown.zone), (volume.id, 2, "nova"))
        self.assertIn(shown.status, SETTLING)
        self.assertIsNone(shown.attach_data.instance_id)
        # the status filter is checked once the volume has settled: "creating"
        # may turn "available" between two calls
        wait_for(lambda: self.conn.get_all_volumes([volume.id])[0].status == "available",
                 30, f"{volume.id} available")
        self.assertEqual([v.id for v in self.conn.get_all_volumes(
            filters={"status": "available"})], [volume.id])
        self.assertEqual(self.conn.get_all_volumes(filters={"status": "creating"}), [])
        self.assertEqual(self.conn.get_all_snapshots(owner="self"), [])
        with self.assertRaises(EC2ResponseError) as caught:
            self.conn.get_all_volumes([NO_SUCH_VOLUME])
        self.assertEqual(caught.exception.error_code, "InvalidVolume.NotFound")
        with self.assertRaises(EC2ResponseError) as caught:
            self.conn.attach_volume(volume.id, "i-0123456789abcdef0", "/dev/vda")
        self.assertEqual(caught.exception.error_code, "InvalidParameterValue")
        with self.assertRaises(EC2ResponseError) as caught:
            self.conn.create_snapshot(NO_SUCH_VOLUME)
        self.assertEqual(caught.exception.error_code, "InvalidVolume.NotFound")


class VolumeFlowTests(unittest.TestCase):
    """
    The whole flow on the all-in-one with nova-volume (sparse files, the
    in-memory export) and the fake hypervisor: create, attach, detach,
    snapshot, a volume from the snapshot, deletes; through boto3.
    """

    def setUp(self) -> None:
        self.cloud = shared()
        self.user = S3User(self.cloud)
        self.addCleanup(self.user.remove)
        self.ec2: Any = self.user.boto3()
        self.image_id = register_raw_image(self.user, self)

    def state(self, volume_id: str) -> tuple[str, str]:
        [volume] = self.ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"]
        return volume["State"], (volume.get("Attachments") or [{}])[0].get("State", "detached")

    def wait(self, volume_id: str, state: str, attach: str = "detached") -> None:
        wait_for(lambda: self.state(volume_id) == (state, attach), 60,
                 f"{volume_id} {state}/{attach}")

    def test_create_attach_detach_snapshot_restore_delete(self) -> None:
        [instance] = self.ec2.run_instances(ImageId=self.image_id, MinCount=1, MaxCount=1,
                                            InstanceType="m1.tiny")["Instances"]
        instance_id = instance["InstanceId"]
        self.addCleanup(self.ec2.terminate_instances, InstanceIds=[instance_id])
        wait_for(lambda: self.ec2.describe_instances(InstanceIds=[instance_id])
                 ["Reservations"][0]["Instances"][0]["State"]["Name"] == "running", 60,
                 "running")
        volume_id = self.ec2.create_volume(Size=1, AvailabilityZone="nova")["VolumeId"]
        self.wait(volume_id, "available")

        attached = self.ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id,
                                          Device="/dev/sdf")
        self.assertEqual((attached["State"], attached["Device"]), ("attaching", "/dev/sdf"))
        self.wait(volume_id, "in-use", "attached")
        [volume] = self.ec2.describe_volumes(Filters=[
            {"Name": "attachment.instance-id", "Values": [instance_id]}])["Volumes"]
        self.assertEqual(volume["VolumeId"], volume_id)
        with self.assertRaises(ClientError) as caught:
            self.ec2.delete_volume(VolumeId=volume_id)
        self.assertEqual(caught.exception.response["Error"]["Code"], "VolumeInUse")
        self.ec2.detach_volume(VolumeId=volume_id)
        self.wait(volume_id, "available")

        snapshot_id = self.ec2.create_snapshot(VolumeId=volume_id)["SnapshotId"]
        wait_for(lambda: self.ec2.describe_snapshots(SnapshotIds=[snapshot_id])
                 ["Snapshots"][0]["State"] == "completed", 60, f"{snapshot_id} completed")
        restored = self.ec2.create_volume(Size=2, AvailabilityZone="nova",
                                          SnapshotId=snapshot_id)["VolumeId"]
        self.wait(restored, "available")
        [volume] = self.ec2.describe_volumes(VolumeIds=[restored])["Volumes"]
        self.assertEqual((volume["Size"], volume["SnapshotId"]), (2, snapshot_id))

        self.ec2.delete_snapshot(SnapshotId=snapshot_id)
        for doomed in (volume_id, restored):
            self.ec2.delete_volume(VolumeId=doomed)
        wait_for(lambda: self.ec2.describe_volumes(Filters=[
            {"Name": "volume-id", "Values": [volume_id, restored]}])["Volumes"] == [], 60,
                 "volumes deleted")
