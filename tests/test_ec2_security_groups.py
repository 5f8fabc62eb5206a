"""
The EC2 security group actions (L{SecurityGroupController}) over the
in-memory datastore: both parameter forms of Authorize/Revoke, the EC2
errors, DescribeSecurityGroups' answer and filters, and the undo of a rule
change whose refresh failed.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import task
from twisted.trial import unittest

from nova.api.ec2.params import Params
from nova.api.ec2.security_group_params import PermissionSpec, SourceRef, parse_permissions
from nova.api.ec2.security_groups import SecurityGroupController
from nova.api.ec2.xmlrender import render_response
from nova.context import RequestContext
from nova.datastore.memory import MemoryDatastore, MemoryServer
from nova.exception import InvalidParameterValue, MissingParameter, NovaError
from nova.network.security_group_records import (
    InvalidGroupDuplicate, InvalidGroupIdMalformed, InvalidGroupInUse, InvalidGroupNotFound,
    InvalidGroupReserved, InvalidPermissionDuplicate, InvalidPermissionNotFound)
from nova.network.security_groups import SecurityGroupRepository

ALICE = RequestContext(user_id="alice", project_id="proj", roles=("netadmin",))
BOB = RequestContext(user_id="bob", project_id="other", roles=("netadmin",))
ADMIN = RequestContext(user_id="root", project_id="admin", is_admin=True)


def perm(n: int, protocol: str, low: int | None, high: int | None, *cidrs: str,
         **group: str) -> dict[str, str]:
    """@return: the C{IpPermissions.n.*} parameters of one permission."""
    out = {f"IpPermissions.{n}.IpProtocol": protocol}
    if low is not None:
        out[f"IpPermissions.{n}.FromPort"] = str(low)
    if high is not None:
        out[f"IpPermissions.{n}.ToPort"] = str(high)
    for m, cidr in enumerate(cidrs, 1):
        out[f"IpPermissions.{n}.IpRanges.{m}.CidrIp"] = cidr
    for field, value in group.items():
        out[f"IpPermissions.{n}.Groups.1.{field}"] = value
    return out


class ParsePermissionTests(unittest.TestCase):

    def parse(self, **params: str) -> list[PermissionSpec]:
        return parse_permissions(Params(params))

    def test_flat_form(self) -> None:
        self.assertEqual(self.parse(IpProtocol="TCP", FromPort="22", ToPort="22",
                                    CidrIp="10.1.2.3/16"),
                         [PermissionSpec("tcp", 22, 22, ("10.1.0.0/16",))])
        self.assertEqual(self.parse(IpProtocol="17", FromPort="53", ToPort="53",
                                    SourceSecurityGroupName="dns",
                                    SourceSecurityGroupOwnerId="bob:other"),
                         [PermissionSpec("udp", 53, 53, (),
                                         (SourceRef(name="dns", owner="bob:other"),))])
        # icmp without ports: any type, any code
        self.assertEqual(self.parse(IpProtocol="1", CidrIp="0.0.0.0/0"),
                         [PermissionSpec("icmp", -1, -1, ("0.0.0.0/0",))])

    def test_flat_group_grant_is_everything(self) -> None:
        """EC2-Classic: a group granted without protocol and ports gets tcp, udp and icmp."""
        source = SourceRef(name="web", owner="other")
        self.assertEqual(self.parse(SourceSecurityGroupName="web",
                                    SourceSecurityGroupOwnerId="other"),
                         [PermissionSpec("tcp", 0, 65535, groups=(source,)),
                          PermissionSpec("udp", 0, 65535, groups=(source,)),
                          PermissionSpec("icmp", -1, -1, groups=(source,))])

    def test_indexed_form(self) -> None:
        specs = parse_permissions(Params({
            **perm(1, "tcp", 80, 443, "0.0.0.0/0", "10.0.0.9/8"),
            "IpPermissions.1.IpRanges.1.Description": "ignored",
            **perm(2, "icmp", 8, 0, GroupName="web", UserId="other"),
            **perm(3, "udp", 0, 65535, GroupId="sg-0000abcd")}))
        self.assertEqual(specs, [
            PermissionSpec("tcp", 80, 443, ("0.0.0.0/0", "10.0.0.0/8")),
            PermissionSpec("icmp", 8, 0, (), (SourceRef(name="web", owner="other"),)),
            PermissionSpec("udp", 0, 65535, (), (SourceRef(group_id="sg-0000abcd"),))])

    def test_refusals(self) -> None:
        invalid = [
            dict(IpProtocol="-1", CidrIp="0.0.0.0/0"),
            dict(IpProtocol="all", CidrIp="0.0.0.0/0"),
            dict(IpProtocol="gre", CidrIp="0.0.0.0/0"),
            dict(IpProtocol="tcp", FromPort="80", ToPort="79", CidrIp="0.0.0.0/0"),
            dict(IpProtocol="tcp", FromPort="-1", ToPort="80", CidrIp="0.0.0.0/0"),
            dict(IpProtocol="udp", FromPort="1", ToPort="65536", CidrIp="0.0.0.0/0"),
            dict(IpProtocol="tcp", FromPort="x", ToPort="80", CidrIp="0.0.0.0/0"),
            dict(IpProtocol="icmp", FromPort="256", ToPort="-1", CidrIp="0.0.0.0/0"),
            dict(IpProtocol="icmp", FromPort="-1", ToPort="3", CidrIp="0.0.0.0/0"),
            dict(IpProtocol="tcp", FromPort="1", ToPort="2", CidrIp="10.0.0.1"),
            dict(IpProtocol="tcp", FromPort="1", ToPort="2", CidrIp="10.0.0.0/40"),
            perm(1, "tcp", 1, 2, "::/0"),
            {**perm(1, "tcp", 1, 2), "IpPermissions.1.Ipv6Ranges.1.CidrIpv6": "::/0"},
            {**perm(1, "tcp", 1, 2), "IpPermissions.1.PrefixListIds.1.PrefixListId": "pl-1"},
            {**perm(1, "tcp", 1, 2, "0.0.0.0/0"), "IpPermissions.1.Colour": "red"},
            {**perm(1, "tcp", 1, 2, "0.0.0.0/0"), "IpPermissions.1.Groups.1.VpcId": "v"},
        ]
        for params in invalid:
            with self.assertRaises(InvalidParameterValue, msg=repr(params)) as caught:
                parse_permissions(Params(params))
            self.assertEqual(caught.exception.code, "InvalidParameterValue")
        missing = [
            {},
            dict(IpProtocol="tcp", FromPort="1", ToPort="2"),  # no source
            dict(IpProtocol="tcp", ToPort="2", CidrIp="0.0.0.0/0"),
            dict(FromPort="1", ToPort="2", CidrIp="0.0.0.0/0"),
            dict(SourceSecurityGroupOwnerId="other"),
            perm(1, "tcp", 1, 2),
            perm(1, "udp", None, 2, "0.0.0.0/0"),
            {"IpPermissions.1.FromPort": "1", "IpPermissions.1.ToPort": "1",
             "IpPermissions.1.IpRanges.1.CidrIp": "0.0.0.0/0"},
            {**perm(1, "tcp", 1, 2), "IpPermissions.1.Groups.1.UserId": "other"},
        ]
        for params in missing:
            with self.assertRaises(MissingParameter, msg=repr(params)):
                parse_permissions(Params(params))


class ControllerTests(unittest.TestCase):

    def setUp(self) -> None:
        self.clock = task.Clock()
        store = MemoryDatastore(self.clock, "t:", MemoryServer(self.clock))
        self.repo = SecurityGroupRepository(store, self.clock)
        self.refreshed: list[tuple[str | None, str]] = []
        self.refresh_error: Exception | None = None
        self.api = SecurityGroupController(self.repo, self.refresh, self.clock)
        self.actions = self.api.actions()

    async def refresh(self, context: RequestContext, project_id: str) -> None:
        self.refreshed.append((context.user_id, project_id))
        if self.refresh_error is not None:
            raise self.refresh_error

    async def call(self, action: str, context: RequestContext = ALICE,
                   **params: str) -> dict[str, Any]:
        return await self.actions[action](context, Params(params))

    async def fails(self, error: type[NovaError], action: str,
                    context: RequestContext = ALICE, **params: str) -> NovaError:
        try:
            await self.call(action, context, **params)
        except error as e:
            return e
        raise AssertionError(f"{action} did not raise {error.__name__}")

    async def describe(self, context: RequestContext = ALICE,
                       **params: str) -> dict[str, dict[str, Any]]:
        answer = await self.call("DescribeSecurityGroups", context, **params)
        return {g["groupName"]: g for g in answer["securityGroupInfo"]}

    async def test_actions(self) -> None:
        self.assertEqual(sorted(self.actions), [
            "AuthorizeSecurityGroupIngress", "CreateSecurityGroup", "DeleteSecurityGroup",
            "DescribeSecurityGroups", "RevokeSecurityGroupIngress"])

    async def test_create_describe_delete(self) -> None:
        created = await self.call("CreateSecurityGroup", GroupName="web",
                                  GroupDescription="web servers")
        self.assertEqual(created["return"], True)
        self.assertRegex(created["groupId"], r"^sg-[0-9a-f]{8}$")
        groups = await self.describe()
        self.assertEqual(sorted(groups), ["default", "web"])
        self.assertEqual(groups["web"], {
            "ownerId": "proj", "groupId": created["groupId"], "groupName": "web",
            "groupDescription": "web servers", "ipPermissions": [],
            "ipPermissionsEgress": []})
        await self.fails(InvalidGroupDuplicate, "CreateSecurityGroup", GroupName="web",
                         GroupDescription="again")
        await self.fails(InvalidGroupDuplicate, "CreateSecurityGroup", GroupName="default",
                         GroupDescription="x")
        await self.fails(MissingParameter, "CreateSecurityGroup", GroupName="x")
        await self.fails(InvalidParameterValue, "CreateSecurityGroup", GroupName="x" * 256,
                         GroupDescription="d")
        await self.fails(InvalidGroupReserved, "DeleteSecurityGroup", GroupName="default")
        await self.fails(MissingParameter, "DeleteSecurityGroup")
        await self.fails(InvalidGroupNotFound, "DeleteSecurityGroup", context=BOB,
                         GroupId=created["groupId"])
        await self.call("DeleteSecurityGroup", GroupId=created["groupId"])
        await self.fails(InvalidGroupNotFound, "DeleteSecurityGroup", GroupName="web")
        self.assertEqual(sorted(await self.describe()), ["default"])
        self.assertEqual(self.refreshed, [])  # no instance can be in a new or deleted group

    async def test_describe_selection_and_filters(self) -> None:
        web = (await self.call("CreateSecurityGroup", GroupName="web",
                               GroupDescription="front"))["groupId"]
        await self.call("CreateSecurityGroup", GroupName="db", GroupDescription="back")
        await self.call("CreateSecurityGroup", BOB, GroupName="theirs", GroupDescription="b")
        await self.call("AuthorizeSecurityGroupIngress", GroupName="db",
                        **perm(1, "tcp", 5432, 5432, "10.0.0.0/8", GroupName="web"))

        async def names(context: RequestContext = ALICE, **params: str) -> list[str]:
            return sorted(await self.describe(context, **params))

        self.assertEqual(await names(**{"GroupName.1": "web", "GroupName.2": "db"}),
                         ["db", "web"])
        self.assertEqual(await names(**{"GroupId.1": web}), ["web"])
        e = await self.fails(InvalidGroupNotFound, "DescribeSecurityGroups",
                             **{"GroupName.1": "web", "GroupName.2": "nope"})
        self.assertIn("nope", str(e))
        await self.fails(InvalidGroupNotFound, "DescribeSecurityGroups", BOB,
                         **{"GroupId.1": web})
        await self.fails(InvalidGroupIdMalformed, "DescribeSecurityGroups",
                         **{"GroupId.1": "web"})
        for name, value, expected in [
                ("group-name", "d*", ["db", "default"]), ("description", "front", ["web"]),
                ("group-id", web, ["web"]), ("owner-id", "proj", ["db", "default", "web"]),
                ("ip-permission.protocol", "tcp", ["db"]),
                ("ip-permission.from-port", "5432", ["db"]),
                ("ip-permission.to-port", "22", []),
                ("ip-permission.cidr", "10.0.0.0/8", ["db"]),
                ("ip-permission.group-name", "web", ["db"]),
                ("ip-permission.group-id", web, ["db"]),
                ("ip-permission.user-id", "proj", ["db"])]:
            self.assertEqual(await names(**{"Filter.1.Name": name, "Filter.1.Value.1": value}),
                             expected, name)
        # the rule filters must hold for one rule: no rule is both from a CIDR and a group
        self.assertEqual(await names(**{
            "Filter.1.Name": "ip-permission.cidr", "Filter.1.Value.1": "10.0.0.0/8",
            "Filter.2.Name": "ip-permission.group-name", "Filter.2.Value.1": "web"}), [])
        await self.fails(InvalidParameterValue, "DescribeSecurityGroups",
                         **{"Filter.1.Name": "vpc-id", "Filter.1.Value.1": "x"})
        # an admin sees every project's groups
        every = (await self.call("DescribeSecurityGroups", ADMIN))["securityGroupInfo"]
        self.assertEqual([(g["ownerId"], g["groupName"]) for g in every], [
            ("admin", "default"), ("other", "default"), ("other", "theirs"),
            ("proj", "db"), ("proj", "default"), ("proj", "web")])

    async def test_authorize_both_forms_and_describe(self) -> None:
        web = (await self.call("CreateSecurityGroup", GroupName="web",
                               GroupDescription="w"))["groupId"]
        theirs = (await self.call("CreateSecurityGroup", BOB, GroupName="theirs",
                                  GroupDescription="t"))["groupId"]
        await self.call("AuthorizeSecurityGroupIngress", GroupName="web", IpProtocol="tcp",
                        FromPort="22", ToPort="22", CidrIp="192.168.1.77/24")
        await self.call("AuthorizeSecurityGroupIngress", GroupId=web,
                        **perm(1, "tcp", 22, 22, "10.0.0.0/8"),
                        **perm(2, "icmp", -1, -1, GroupId=theirs))
        await self.call("AuthorizeSecurityGroupIngress", GroupName="web",
                        SourceSecurityGroupName="default",
                        SourceSecurityGroupOwnerId="alice:proj")
        default_id = (await self.describe())["default"]["groupId"]
        described = (await self.describe())["web"]["ipPermissions"]
        self.assertEqual(described, [
            {"ipProtocol": "icmp", "fromPort": -1, "toPort": -1, "ipRanges": [],
             "groups": [{"userId": "other", "groupId": theirs, "groupName": "theirs"},
                        {"userId": "proj", "groupId": default_id, "groupName": "default"}]},
            {"ipProtocol": "tcp", "fromPort": 0, "toPort": 65535, "ipRanges": [],
             "groups": [{"userId": "proj", "groupId": default_id, "groupName": "default"}]},
            {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "groups": [],
             "ipRanges": [{"cidrIp": "10.0.0.0/8"}, {"cidrIp": "192.168.1.0/24"}]},
            {"ipProtocol": "udp", "fromPort": 0, "toPort": 65535, "ipRanges": [],
             "groups": [{"userId": "proj", "groupId": default_id, "groupName": "default"}]}])
        self.assertEqual(self.refreshed, [("alice", "proj")] * 3)
        xml = render_response("DescribeSecurityGroups", "r",
                              await self.call("DescribeSecurityGroups",
                                              **{"GroupName.1": "web"})).decode()
        self.assertIn("<ipRanges><item><cidrIp>10.0.0.0/8</cidrIp></item>", xml)
        self.assertIn("<ipPermissionsEgress></ipPermissionsEgress>", xml)

        # the other project's group is in use as a source now
        e = await self.fails(InvalidGroupInUse, "DeleteSecurityGroup", BOB, GroupName="theirs")
        self.assertEqual(e.code, "InvalidGroup.InUse")

    async def test_rule_errors(self) -> None:
        await self.call("CreateSecurityGroup", GroupName="web", GroupDescription="w")
        ssh = dict(IpProtocol="tcp", FromPort="22", ToPort="22", CidrIp="0.0.0.0/0")
        await self.call("AuthorizeSecurityGroupIngress", GroupName="web", **ssh)
        e = await self.fails(InvalidPermissionDuplicate, "AuthorizeSecurityGroupIngress",
                             GroupName="web", **ssh)
        self.assertEqual(e.code, "InvalidPermission.Duplicate")
        await self.fails(InvalidParameterValue, "AuthorizeSecurityGroupIngress",
                         GroupName="web", **perm(1, "tcp", 80, 80, "1.0.0.0/8", "1.2.0.0/8"))
        await self.fails(InvalidGroupNotFound, "AuthorizeSecurityGroupIngress",
                         GroupName="nope", **ssh)
        await self.fails(MissingParameter, "AuthorizeSecurityGroupIngress", **ssh)
        await self.fails(InvalidGroupNotFound, "AuthorizeSecurityGroupIngress",
                         GroupName="web", **perm(1, "tcp", 80, 80, GroupName="nope"))
        await self.fails(InvalidGroupNotFound, "AuthorizeSecurityGroupIngress",
                         GroupName="web", **perm(1, "tcp", 80, 80, GroupId="sg-00000000"))
        e = await self.fails(InvalidPermissionNotFound, "RevokeSecurityGroupIngress",
                             GroupName="web", **perm(1, "tcp", 23, 23, "0.0.0.0/0"))
        self.assertEqual(e.code, "InvalidPermission.NotFound")
        # revoke in the IpPermissions form what the flat form authorized
        await self.call("RevokeSecurityGroupIngress", GroupName="web",
                        **perm(1, "6", 22, 22, "0.0.0.0/0"))
        self.assertEqual((await self.describe())["web"]["ipPermissions"], [])
        self.assertEqual(len(self.refreshed), 2)

    async def test_failed_refresh_undoes_authorize(self) -> None:
        await self.call("CreateSecurityGroup", GroupName="web", GroupDescription="w")
        await self.call("AuthorizeSecurityGroupIngress", GroupName="web",
                        **perm(1, "tcp", 22, 22, "0.0.0.0/0"))
        before = (await self.describe())["web"]
        self.refresh_error = RuntimeError("compute host unreachable")
        with self.assertRaises(RuntimeError):
            await self.call("AuthorizeSecurityGroupIngress", GroupName="web",
                            **perm(1, "tcp", 80, 80, "0.0.0.0/0", GroupName="default"),
                            **perm(2, "icmp", -1, -1, "10.0.0.0/8"))
        self.assertEqual((await self.describe())["web"], before)
        # the source group is free again: nothing refers to it
        self.assertEqual(len(self.refreshed), 2)
        self.refresh_error = None
        await self.call("AuthorizeSecurityGroupIngress", GroupName="web",
                        **perm(1, "tcp", 80, 80, "0.0.0.0/0"))

    async def test_failed_refresh_undoes_revoke(self) -> None:
        await self.call("CreateSecurityGroup", GroupName="web", GroupDescription="w")
        await self.call("CreateSecurityGroup", GroupName="src", GroupDescription="s")
        await self.call("AuthorizeSecurityGroupIngress", GroupName="web",
                        **perm(1, "tcp", 22, 22, "0.0.0.0/0", GroupName="src"))
        before = (await self.describe())["web"]
        self.refresh_error = RuntimeError("compute host unreachable")
        with self.assertRaises(RuntimeError):
            await self.call("RevokeSecurityGroupIngress", GroupName="web",
                            **perm(1, "tcp", 22, 22, "0.0.0.0/0", GroupName="src"))
        self.assertEqual((await self.describe())["web"], before)
        # the re-authorized rule still holds its source
        self.refresh_error = None
        await self.fails(InvalidGroupInUse, "DeleteSecurityGroup", GroupName="src")
