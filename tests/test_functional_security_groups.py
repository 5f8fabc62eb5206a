"""
Functional: security groups on a running all-in-one, through boto3 and
boto 2 as a network administrator drives them (the rules themselves, not
their effect on guests' traffic).
"""

from __future__ import annotations

import uuid
from typing import Any

from boto.exception import EC2ResponseError
from botocore.exceptions import ClientError
from twisted.trial import unittest

from tests.support.allinone import AllInOne, shared
from tests.support.clients import Tenant


def _name(prefix: str = "sg") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def netadmin(cloud: AllInOne, role: str = "netadmin") -> Tenant:
    """@return: a tenant holding C{role} globally and in its project (both count)."""
    tenant = Tenant(cloud)
    cloud.nova_manage("role", "add", tenant.user, role)
    cloud.nova_manage("role", "add", tenant.user, role, tenant.project)
    return tenant


class Boto3SecurityGroupTests(unittest.TestCase):

    def setUp(self) -> None:
        self.cloud = shared()
        self.tenant = netadmin(self.cloud)
        self.addCleanup(self.tenant.remove)
        self.ec2: Any = self.tenant.boto3()

    def error_code(self, call: Any, **kwargs: Any) -> str:
        with self.assertRaises(ClientError) as caught:
            call(**kwargs)
        return caught.exception.response["Error"]["Code"]

    def groups(self, **kwargs: Any) -> dict[str, Any]:
        return {g["GroupName"]: g for g in
                self.ec2.describe_security_groups(**kwargs)["SecurityGroups"]}

    def test_lifecycle(self) -> None:
        # every project has its default group, which lets nothing in
        [default] = self.groups().values()
        self.assertEqual((default["GroupName"], default["OwnerId"], default["IpPermissions"]),
                         ("default", self.tenant.project, []))
        web = _name("web")
        group_id = self.ec2.create_security_group(GroupName=web,
                                                  Description="web servers")["GroupId"]
        self.assertRegex(group_id, r"^sg-[0-9a-f]{8}$")
        self.assertEqual(self.error_code(self.ec2.create_security_group, GroupName=web,
                                         Description="again"), "InvalidGroup.Duplicate")
        self.ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 443,
             "IpRanges": [{"CidrIp": "0.0.0.0/0"}, {"CidrIp": "10.1.2.3/16"}]},
            {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1,
             "UserIdGroupPairs": [{"GroupName": "default"}]}])
        # the old flat form, as euca2ools sends it
        self.ec2.authorize_security_group_ingress(GroupName=web, IpProtocol="tcp", FromPort=22,
                                                  ToPort=22, CidrIp="192.168.0.0/24")
        described = self.groups(GroupNames=[web])[web]
        self.assertEqual(described["Description"], "web servers")
        self.assertEqual(described["IpPermissionsEgress"], [])
        permissions = described["IpPermissions"]
        self.assertEqual([(p["IpProtocol"], p["FromPort"], p["ToPort"]) for p in permissions],
                         [("icmp", -1, -1), ("tcp", 22, 22), ("tcp", 80, 443)])
        self.assertEqual([(g["GroupName"], g["GroupId"], g["UserId"])
                          for g in permissions[0]["UserIdGroupPairs"]],
                         [("default", default["GroupId"], self.tenant.project)])
        # host bits are masked off, as EC2 does
        self.assertEqual([r["CidrIp"] for r in permissions[2]["IpRanges"]],
                         ["0.0.0.0/0", "10.1.0.0/16"])

        self.assertEqual(self.error_code(
            self.ec2.authorize_security_group_ingress, GroupName=web, IpProtocol="tcp",
            FromPort=22, ToPort=22, CidrIp="192.168.0.0/24"), "InvalidPermission.Duplicate")
        self.assertEqual(self.error_code(
            self.ec2.revoke_security_group_ingress, GroupName=web, IpProtocol="tcp",
            FromPort=23, ToPort=23, CidrIp="192.168.0.0/24"), "InvalidPermission.NotFound")
        for bad in ({"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
                    {"IpProtocol": "tcp", "FromPort": 90, "ToPort": 80,
                     "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
                    {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
                     "IpRanges": [{"CidrIp": "10.0.0.0/33"}]}):
            self.assertEqual(self.error_code(self.ec2.authorize_security_group_ingress,
                                             GroupName=web, IpPermissions=[bad]),
                             "InvalidParameterValue", bad)
        self.assertEqual(self.error_code(
            self.ec2.authorize_security_group_ingress, GroupName=web, IpPermissions=[
                {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1,
                 "UserIdGroupPairs": [{"GroupName": _name("nope")}]}]), "InvalidGroup.NotFound")

        # "default" is named as a source: it stays, and can never be deleted anyway
        self.assertEqual(self.error_code(self.ec2.delete_security_group, GroupName="default"),
                         "InvalidGroup.Reserved")
        self.ec2.revoke_security_group_ingress(GroupName=web, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 443,
             "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        self.assertEqual(len(self.groups(GroupIds=[group_id])[web]["IpPermissions"]), 3)
        self.ec2.delete_security_group(GroupId=group_id)
        self.assertEqual(self.error_code(self.ec2.describe_security_groups, GroupNames=[web]),
                         "InvalidGroup.NotFound")

    def test_filters(self) -> None:
        web, db = _name("web"), _name("db")
        self.ec2.create_security_group(GroupName=web, Description="front")
        self.ec2.create_security_group(GroupName=db, Description="back")
        self.ec2.authorize_security_group_ingress(GroupName=db, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
             "UserIdGroupPairs": [{"GroupName": web, "UserId": self.tenant.project}]}])

        def names(*filters: tuple[str, str]) -> list[str]:
            return sorted(self.groups(Filters=[{"Name": n, "Values": [v]}
                                               for n, v in filters]))

        self.assertEqual(names(("group-name", "web-*")), [web])
        self.assertEqual(names(("description", "back")), [db])
        self.assertEqual(names(("ip-permission.group-name", web),
                               ("ip-permission.from-port", "5432")), [db])
        self.assertEqual(self.error_code(self.ec2.describe_security_groups,
                                         Filters=[{"Name": "vpc-id", "Values": ["v"]}]),
                         "InvalidParameterValue")
        # the group named by another's rule is in use
        self.assertEqual(self.error_code(self.ec2.delete_security_group, GroupName=web),
                         "InvalidGroup.InUse")


class CrossProjectTests(unittest.TestCase):

    def setUp(self) -> None:
        self.cloud = shared()
        self.a = netadmin(self.cloud)
        self.addCleanup(self.a.remove)
        self.b = netadmin(self.cloud)
        self.addCleanup(self.b.remove)

    def test_source_group_of_another_project(self) -> None:
        a: Any = self.a.boto3()
        b: Any = self.b.boto3()
        theirs = _name("theirs")
        their_id = b.create_security_group(GroupName=theirs, Description="b")["GroupId"]
        mine = _name("mine")
        a.create_security_group(GroupName=mine, Description="a")
        # owner as EC2 names it (the account: here the project) ...
        a.authorize_security_group_ingress(GroupName=mine, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
             "UserIdGroupPairs": [{"GroupName": theirs, "UserId": self.b.project}]}])
        # ... and as 2010 nova did (user:project), in the flat form
        a.authorize_security_group_ingress(
            GroupName=mine, IpProtocol="udp", FromPort=53, ToPort=53,
            SourceSecurityGroupName=theirs,
            SourceSecurityGroupOwnerId=f"{self.b.user}:{self.b.project}")
        [group] = a.describe_security_groups(GroupNames=[mine])["SecurityGroups"]
        self.assertEqual({(g["UserId"], g["GroupId"]) for p in group["IpPermissions"]
                          for g in p["UserIdGroupPairs"]}, {(self.b.project, their_id)})
        # b sees only its own groups, and cannot delete the one a's rules name
        self.assertEqual(sorted(g["GroupName"] for g in
                                b.describe_security_groups()["SecurityGroups"]),
                         sorted(["default", theirs]))
        with self.assertRaises(ClientError) as caught:
            b.delete_security_group(GroupName=theirs)
        self.assertEqual(caught.exception.response["Error"]["Code"], "InvalidGroup.InUse")

    def test_netadmin_role_needed(self) -> None:
        plain = Tenant(self.cloud)  # the project's manager, without netadmin
        self.addCleanup(plain.remove)
        ec2: Any = plain.boto3()
        self.assertEqual([g["GroupName"] for g in
                          ec2.describe_security_groups()["SecurityGroups"]], ["default"])
        with self.assertRaises(ClientError) as caught:
            ec2.create_security_group(GroupName=_name(), Description="d")
        self.assertEqual(caught.exception.response["Error"]["Code"], "UnauthorizedOperation")


class Boto2SecurityGroupTests(unittest.TestCase):
    """boto 2.49: its group objects, and the deprecated flat calls euca2ools-era code makes."""

    def setUp(self) -> None:
        self.cloud = shared()
        self.tenant = netadmin(self.cloud)
        self.addCleanup(self.tenant.remove)
        self.ec2: Any = self.tenant.boto2()

    def rules(self, name: str) -> list[tuple[str, str, str, list[str]]]:
        [group] = self.ec2.get_all_security_groups(groupnames=[name])
        return [(r.ip_protocol, r.from_port, r.to_port,
                 sorted(str(g.cidr_ip or f"{g.owner_id}/{g.name}") for g in r.grants))
                for r in group.rules]

    def test_lifecycle(self) -> None:
        name, other = _name("web"), _name("app")
        group = self.ec2.create_security_group(name, "web servers")
        self.assertTrue(group.id.startswith("sg-"))
        app = self.ec2.create_security_group(other, "app servers")
        self.assertTrue(group.authorize("tcp", 80, 80, "0.0.0.0/0"))
        # a whole group, no protocol or ports: boto 2 sends the flat form and
        # EC2-Classic grants tcp, udp and icmp
        self.assertTrue(group.authorize(src_group=app))
        source = f"{self.tenant.project}/{other}"
        self.assertEqual(self.rules(name), [("icmp", "-1", "-1", [source]),
                                            ("tcp", "0", "65535", [source]),
                                            ("tcp", "80", "80", ["0.0.0.0/0"]),
                                            ("udp", "0", "65535", [source])])
        [listed] = [g for g in self.ec2.get_all_security_groups() if g.name == name]
        self.assertEqual((listed.owner_id, listed.description, listed.vpc_id),
                         (self.tenant.project, "web servers", None))
        with self.assertRaises(EC2ResponseError) as caught:
            group.authorize("tcp", 80, 80, "0.0.0.0/0")
        self.assertEqual(caught.exception.error_code, "InvalidPermission.Duplicate")
        with self.assertRaises(EC2ResponseError) as caught:
            self.ec2.delete_security_group(other)
        self.assertEqual(caught.exception.error_code, "InvalidGroup.InUse")
        self.assertTrue(self.ec2.revoke_security_group(
            name, src_security_group_name=other,
            src_security_group_owner_id=self.tenant.project))
        self.assertTrue(group.revoke("tcp", 80, 80, "0.0.0.0/0"))
        self.assertEqual(self.rules(name), [])
        self.assertTrue(self.ec2.delete_security_group(other))
        self.assertTrue(group.delete())
        self.assertEqual([g.name for g in self.ec2.get_all_security_groups()], ["default"])
