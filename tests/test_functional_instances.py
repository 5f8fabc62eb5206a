"""
Instances through the EC2 API of a running all-in-one with the fake driver
(no real guests: the control plane alone), driven by boto3 and boto 2.
Real guests are in tests/test_e2e_instances.py.
"""

from __future__ import annotations

import base64
import threading

from botocore.exceptions import ClientError
from twisted.trial import unittest

from tests.support.allinone import shared
from tests.support.images import register_raw_image
from tests.support.s3 import S3User, wait_for


def _code(call: object, *args: object, **kwargs: object) -> str:
    try:
        call(*args, **kwargs)  # type: ignore[operator]
    except ClientError as e:
        return str(e.response["Error"]["Code"])
    raise AssertionError("the call did not fail")


class InstanceLifecycleTests(unittest.TestCase):

    def setUp(self) -> None:
        self.cloud = shared()
        self.user = S3User(self.cloud)
        self.addCleanup(self.user.remove)
        self.ec2 = self.user.boto3()
        self.image_id = register_raw_image(self.user, self)

    def instance(self, instance_id: str) -> dict:
        [reservation] = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        [found] = reservation["Instances"]
        return found

    def wait_state(self, instance_id: str, state: str) -> dict:
        wait_for(lambda: self.instance(instance_id)["State"]["Name"] == state, 30,
                 f"{instance_id} {state}")
        return self.instance(instance_id)

    def test_boto3_lifecycle(self) -> None:
        user_data = "#!/bin/sh\necho hello\n"
        reservation = self.ec2.run_instances(ImageId=self.image_id, MinCount=2, MaxCount=2,
                                             InstanceType="m1.tiny", UserData=user_data)
        ids = [i["InstanceId"] for i in reservation["Instances"]]
        self.assertEqual([i["State"]["Name"] for i in reservation["Instances"]],
                         ["pending", "pending"])
        first = self.wait_state(ids[0], "running")
        self.assertEqual((first["ImageId"], first["InstanceType"], first["AmiLaunchIndex"]),
                         (self.image_id, "m1.tiny", 0))
        self.assertEqual(first["Placement"]["AvailabilityZone"], "nova")
        self.wait_state(ids[1], "running")
        attribute = self.ec2.describe_instance_attribute(InstanceId=ids[0], Attribute="userData")
        self.assertEqual(base64.b64decode(attribute["UserData"]["Value"]).decode(), user_data)

        listed = self.ec2.describe_instances(Filters=[
            {"Name": "reservation-id", "Values": [reservation["ReservationId"]]},
            {"Name": "instance-state-name", "Values": ["running"]}])
        self.assertEqual(sorted(i["InstanceId"] for r in listed["Reservations"]
                                for i in r["Instances"]), sorted(ids))
        console = self.ec2.get_console_output(InstanceId=ids[0])
        self.assertEqual(console["InstanceId"], ids[0])

        stopping = self.ec2.stop_instances(InstanceIds=[ids[0]])["StoppingInstances"][0]
        self.assertEqual((stopping["PreviousState"]["Name"], stopping["CurrentState"]["Name"]),
                         ("running", "stopping"))
        stopped = self.wait_state(ids[0], "stopped")
        self.assertEqual(stopped["StateReason"]["Code"], "Client.UserInitiatedShutdown")
        self.assertEqual(_code(self.ec2.reboot_instances, InstanceIds=[ids[0]]),
                         "IncorrectInstanceState")
        self.ec2.start_instances(InstanceIds=[ids[0]])
        self.wait_state(ids[0], "running")
        self.ec2.reboot_instances(InstanceIds=ids)

        terminating = self.ec2.terminate_instances(InstanceIds=ids)["TerminatingInstances"]
        self.assertEqual({t["CurrentState"]["Name"] for t in terminating}, {"shutting-down"})
        for instance_id in ids:
            gone = self.wait_state(instance_id, "terminated")
            self.assertEqual(gone["State"]["Code"], 48)
        # terminated instances stay visible, and terminating again is fine
        self.ec2.terminate_instances(InstanceIds=ids)

    def test_boto2_lifecycle(self) -> None:
        conn = self.user.boto2()
        reservation = conn.run_instances(self.image_id, instance_type="m1.tiny")
        [instance] = reservation.instances
        self.assertEqual(instance.state, "pending")
        wait_for(lambda: instance.update() == "running", 30, "boto2 instance running")
        [found] = conn.get_all_instances(instance_ids=[instance.id])
        self.assertEqual(found.id, reservation.id)
        self.assertEqual(found.instances[0].image_id, self.image_id)
        conn.reboot_instances([instance.id])
        conn.stop_instances([instance.id])
        wait_for(lambda: instance.update() == "stopped", 30, "boto2 instance stopped")
        conn.start_instances([instance.id])
        wait_for(lambda: instance.update() == "running", 30, "boto2 instance running again")
        self.assertIsNotNone(conn.get_console_output(instance.id))
        conn.terminate_instances([instance.id])
        wait_for(lambda: instance.update() == "terminated", 30, "boto2 instance terminated")

    def test_paging_and_client_token(self) -> None:
        first = self.ec2.run_instances(ImageId=self.image_id, MinCount=6, MaxCount=6,
                                       InstanceType="m1.tiny", ClientToken="launch-1")
        again = self.ec2.run_instances(ImageId=self.image_id, MinCount=6, MaxCount=6,
                                       InstanceType="m1.tiny", ClientToken="launch-1")
        self.assertEqual(first["ReservationId"], again["ReservationId"])
        pages = list(self.ec2.get_paginator("describe_instances").paginate(
            PaginationConfig={"PageSize": 5}))
        self.assertEqual([sum(len(r["Instances"]) for r in p["Reservations"]) for p in pages],
                         [5, 1])
        self.ec2.terminate_instances(InstanceIds=[i["InstanceId"] for i in first["Instances"]])

    def test_concurrent_launches_in_one_project(self) -> None:
        """Eight clients launching at once all succeed (they share the quota keys)."""
        errors: list[Exception] = []
        launched: list[str] = []

        def client() -> None:
            ec2 = self.user.boto3()
            for _ in range(3):
                try:
                    [i] = ec2.run_instances(ImageId=self.image_id, MinCount=1, MaxCount=1,
                                            InstanceType="m1.tiny")["Instances"]
                    launched.append(i["InstanceId"])
                except Exception as e:  # collected: the assertion below reports them
                    errors.append(e)
        for name in ("instances", "cores"):
            self.cloud.nova_manage("project", "quota", self.user.project, name, "30")
        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(set(launched)), 24)
        self.ec2.terminate_instances(InstanceIds=launched)

    def test_bad_requests(self) -> None:
        run = self.ec2.run_instances
        self.assertEqual(_code(run, ImageId="ami-0123456789abcdef0", MinCount=1, MaxCount=1),
                         "InvalidAMIID.NotFound")
        self.assertEqual(_code(run, ImageId="not-an-image", MinCount=1, MaxCount=1),
                         "InvalidAMIID.Malformed")
        self.assertEqual(_code(run, ImageId=self.image_id, MinCount=1, MaxCount=1,
                               InstanceType="m9.huge"), "InvalidParameterValue")
        self.assertEqual(_code(run, ImageId=self.image_id, MinCount=1, MaxCount=1,
                               KeyName="no-such-key"), "InvalidKeyPair.NotFound")
        self.assertEqual(_code(run, ImageId=self.image_id, MinCount=1, MaxCount=1,
                               UserData="x" * (17 * 1024)), "InvalidParameterValue")
        self.assertEqual(_code(run, ImageId=self.image_id, MinCount=11, MaxCount=11,
                               InstanceType="m1.tiny"), "InstanceLimitExceeded")
        self.assertEqual(_code(self.ec2.terminate_instances,
                               InstanceIds=["i-0123456789abcdef0"]),
                         "InvalidInstanceID.NotFound")
        self.assertEqual(_code(self.ec2.describe_instances, InstanceIds=["i-bogus"]),
                         "InvalidInstanceID.Malformed")
        self.assertEqual(self.ec2.describe_instances()["Reservations"], [])

    def test_quota_set_with_nova_manage(self) -> None:
        self.cloud.nova_manage("project", "quota", self.user.project, "instances", "1")
        self.addCleanup(self.cloud.nova_manage, "project", "quota", self.user.project,
                        "instances", "default")
        shown = self.cloud.nova_manage("project", "quota", self.user.project).stdout
        self.assertIn("instances: 1 (in use: 0)", shown)
        reservation = self.ec2.run_instances(ImageId=self.image_id, MinCount=1, MaxCount=3,
                                             InstanceType="m1.tiny")
        self.assertEqual(len(reservation["Instances"]), 1)
        self.assertEqual(_code(self.ec2.run_instances, ImageId=self.image_id, MinCount=1,
                               MaxCount=1), "InstanceLimitExceeded")
        self.ec2.terminate_instances(InstanceIds=[reservation["Instances"][0]["InstanceId"]])

    def test_other_project_cannot_see_or_touch(self) -> None:
        reservation = self.ec2.run_instances(ImageId=self.image_id, MinCount=1, MaxCount=1,
                                             InstanceType="m1.tiny")
        instance_id = reservation["Instances"][0]["InstanceId"]
        self.addCleanup(self.ec2.terminate_instances, InstanceIds=[instance_id])
        other = S3User(self.cloud)
        self.addCleanup(other.remove)
        ec2 = other.boto3()
        self.assertEqual(ec2.describe_instances()["Reservations"], [])
        self.assertEqual(_code(ec2.terminate_instances, InstanceIds=[instance_id]),
                         "InvalidInstanceID.NotFound")
        # a private image of another project cannot be launched either
        self.assertEqual(_code(ec2.run_instances, ImageId=self.image_id, MinCount=1,
                               MaxCount=1), "InvalidAMIID.NotFound")
