"""
Functional: elastic IPs on a running all-in-one (in-memory network host),
through boto3 and boto 2: allocate, associate with a running instance,
describe, move, disassociate, release; the quota set with nova-manage; and
the errors AWS gives.
"""

from __future__ import annotations

import random
from typing import Any

from boto.exception import EC2ResponseError
from botocore.exceptions import ClientError
from twisted.trial import unittest

from tests.support.allinone import AllInOne, shared
from tests.support.clients import Tenant
from tests.support.guests import wait_state
from tests.support.images import register_raw_image
from tests.support.s3 import S3User


def floating_range(cloud: AllInOne, test: unittest.TestCase) -> list[str]:
    """Create a /29 of elastic IPs of this test's own; @return: its 8 addresses."""
    third, fourth = random.randrange(256), random.randrange(32) * 8
    cidr = f"198.18.{third}.{fourth}/29"
    cloud.nova_manage("floating", "create", cidr)
    test.addCleanup(cloud.nova_manage, "floating", "delete", cidr, check=False)
    return [f"198.18.{third}.{fourth + n}" for n in range(8)]


class Boto3AddressTests(unittest.TestCase):

    def setUp(self) -> None:
        self.cloud = shared()
        self.tenant = S3User(self.cloud, role="netadmin")
        self.addCleanup(self.tenant.remove)
        self.ec2: Any = self.tenant.boto3()
        self.pool = floating_range(self.cloud, self)
        self.image_id = register_raw_image(self.tenant, self)

    def error_code(self, call: Any, **kwargs: Any) -> str:
        with self.assertRaises(ClientError) as caught:
            call(**kwargs)
        return caught.exception.response["Error"]["Code"]

    def running(self) -> str:
        [instance] = self.ec2.run_instances(ImageId=self.image_id, MinCount=1, MaxCount=1,
                                            InstanceType="m1.tiny")["Instances"]
        instance_id = instance["InstanceId"]
        self.addCleanup(self.ec2.terminate_instances, InstanceIds=[instance_id])
        wait_state(self.ec2, instance_id, "running")
        return instance_id

    def addresses(self, **kwargs: Any) -> dict[str, dict[str, Any]]:
        return {a["PublicIp"]: a for a in self.ec2.describe_addresses(**kwargs)["Addresses"]}

    def test_lifecycle(self) -> None:
        instance_id = self.running()
        other = self.running()
        address = self.ec2.allocate_address(Domain="standard")["PublicIp"]
        self.assertIn(address, self.pool)
        self.assertEqual(self.addresses()[address].get("InstanceId", ""), "")
        self.ec2.associate_address(PublicIp=address, InstanceId=instance_id)
        self.assertEqual(self.addresses()[address]["InstanceId"], instance_id)
        [reservation] = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        self.assertEqual(reservation["Instances"][0]["PublicIpAddress"], address)
        # moving it to another instance ends the first association
        self.ec2.associate_address(PublicIp=address, InstanceId=other)
        self.assertEqual(self.addresses(Filters=[
            {"Name": "instance-id", "Values": [other]}])[address]["InstanceId"], other)
        [reservation] = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        self.assertNotIn("PublicIpAddress", reservation["Instances"][0])
        self.ec2.disassociate_address(PublicIp=address)
        self.assertEqual(self.addresses(PublicIps=[address])[address].get("InstanceId", ""), "")
        self.ec2.release_address(PublicIp=address)
        self.assertNotIn(address, self.addresses())

    def test_errors(self) -> None:
        self.assertEqual(self.error_code(self.ec2.release_address, PublicIp="198.51.100.77"),
                         "InvalidAddress.NotFound")
        self.assertEqual(self.error_code(self.ec2.release_address, PublicIp="not-an-ip"),
                         "InvalidParameterValue")
        self.assertEqual(self.error_code(self.ec2.describe_addresses,
                                         PublicIps=["198.51.100.77"]),
                         "InvalidAddress.NotFound")
        self.assertEqual(self.error_code(self.ec2.allocate_address, Domain="vpc"),
                         "UnsupportedOperation")
        address = self.ec2.allocate_address()["PublicIp"]
        self.addCleanup(self.ec2.release_address, PublicIp=address)
        self.assertEqual(self.error_code(self.ec2.associate_address, PublicIp=address,
                                         InstanceId="i-0123456789abcdef0"),
                         "InvalidInstanceID.NotFound")
        # another project's address is not ours to touch
        stranger = Tenant(self.cloud, role="netadmin")
        self.addCleanup(stranger.remove)
        theirs: Any = stranger.boto3()
        with self.assertRaises(ClientError) as caught:
            theirs.release_address(PublicIp=address)
        self.assertEqual(caught.exception.response["Error"]["Code"], "AuthFailure")
        self.assertNotIn(address, {a["PublicIp"] for a in
                                   theirs.describe_addresses()["Addresses"]})

    def test_quota_from_nova_manage(self) -> None:
        self.cloud.nova_manage("project", "quota", self.tenant.project, "floating_ips", "1")
        shown = self.cloud.nova_manage("project", "quota", self.tenant.project).stdout
        self.assertIn("floating_ips: 1 (in use: 0)", shown)
        address = self.ec2.allocate_address()["PublicIp"]
        self.addCleanup(self.ec2.release_address, PublicIp=address)
        self.assertEqual(self.error_code(self.ec2.allocate_address), "AddressLimitExceeded")
        self.assertIn("floating_ips: 1 (in use: 1)",
                      self.cloud.nova_manage("project", "quota", self.tenant.project).stdout)


class Boto2AddressTests(unittest.TestCase):

    def setUp(self) -> None:
        self.cloud = shared()
        self.tenant = Tenant(self.cloud, role="netadmin")
        self.addCleanup(self.tenant.remove)
        self.pool = floating_range(self.cloud, self)

    def test_allocate_describe_release(self) -> None:
        conn: Any = self.tenant.boto2()
        address = conn.allocate_address()
        self.assertIn(address.public_ip, self.pool)
        self.assertEqual([a.public_ip for a in conn.get_all_addresses()], [address.public_ip])
        self.assertTrue(conn.release_address(public_ip=address.public_ip))
        self.assertEqual(conn.get_all_addresses(), [])
        with self.assertRaises(EC2ResponseError) as caught:
            conn.release_address(public_ip=address.public_ip)
        self.assertEqual(caught.exception.error_code, "AuthFailure")
