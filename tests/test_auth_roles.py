"""Roles, the action table, names and the directory layout."""

from __future__ import annotations

from twisted.trial import unittest

from nova.auth import roles
from nova.auth.ldaplayout import DirectoryLayout, child_dn
from nova.auth.models import Project, validate_description, validate_id
from nova.exception import InvalidParameterValue


class IsAuthorizedTests(unittest.TestCase):
    def test_everyone_may_describe_and_manage_key_pairs(self) -> None:
        for action in ("DescribeInstances", "DescribeImages", "DescribeVolumes",
                       "DescribeRegions", "DescribeAvailabilityZones", "CreateKeyPair",
                       "ImportKeyPair", "DeleteKeyPair", "DescribeKeyPairs"):
            self.assertTrue(roles.is_authorized(action, (), False), action)

    def test_every_describe_action_is_open(self) -> None:
        describes = [a for a in roles.ACTION_ROLES if a.startswith("Describe")
                     and roles.ACTION_ROLES[a] != (roles.NONE,)]
        self.assertGreater(len(describes), 8)
        for action in describes:
            self.assertEqual(roles.allowed_roles(action), (roles.ALL,), action)

    def test_network_actions_need_netadmin(self) -> None:
        for action in ("CreateSecurityGroup", "AuthorizeSecurityGroupIngress",
                       "AllocateAddress", "AssociateAddress"):
            self.assertTrue(roles.is_authorized(action, ("netadmin",), False))
            self.assertFalse(roles.is_authorized(action, ("sysadmin", "projectmanager",
                                                          "developer", "itsec"), False))

    def test_instances_volumes_images_need_manager_or_sysadmin(self) -> None:
        for action in ("RunInstances", "TerminateInstances", "GetConsoleOutput",
                       "CreateVolume", "AttachVolume", "RegisterImage", "ModifyImageAttribute"):
            self.assertTrue(roles.is_authorized(action, ("projectmanager",), False))
            self.assertTrue(roles.is_authorized(action, ("sysadmin",), False))
            self.assertFalse(roles.is_authorized(action, ("netadmin", "developer"), False))

    def test_unknown_and_admin_actions_are_for_superusers(self) -> None:
        for action in ("NoSuchAction", "", "RegisterUser", "ModifyUserRole", "DescribeUsers"):
            self.assertFalse(roles.is_authorized(action, roles.ALL_ROLES, False), action)
            self.assertTrue(roles.is_authorized(action, (), True), action)

    def test_the_table_names_only_known_roles(self) -> None:
        known = set(roles.ALL_ROLES) | {roles.ALL, roles.NONE}
        for action, allowed in roles.ACTION_ROLES.items():
            self.assertTrue(allowed and set(allowed) <= known, action)
        self.assertNotIn(roles.DEVELOPER, {r for a in roles.ACTION_ROLES.values() for r in a})

    def test_role_constants(self) -> None:
        self.assertEqual(roles.GLOBAL_ROLES, {"cloudadmin", "itsec"})
        self.assertEqual(roles.SUPERUSER_ROLES, {"cloudadmin"})
        self.assertEqual(set(roles.GLOBAL_GROUP_NAMES), roles.ASSIGNABLE_ROLES)
        self.assertNotIn("projectmanager", roles.ASSIGNABLE_ROLES)

    def test_validate_role(self) -> None:
        self.assertEqual(roles.validate_role("sysadmin", project_scoped=True), "sysadmin")
        self.assertEqual(roles.validate_role("itsec", project_scoped=False), "itsec")
        for role, scoped in (("itsec", True), ("cloudadmin", True), ("projectmanager", False),
                             ("admin", False), (None, False), ("sysadmins", False)):
            with self.assertRaises(InvalidParameterValue):
                roles.validate_role(role, project_scoped=scoped)


class NamesAndLayoutTests(unittest.TestCase):
    def test_ids(self) -> None:
        for good in ("a", "A9", "web-farm_2.prod", "x" * 64):
            self.assertEqual(validate_id(good), good)
        for bad in ("", "x" * 65, "a\n", "a b", "a,b", None, 5):
            with self.assertRaises(InvalidParameterValue):
                validate_id(bad)

    def test_descriptions(self) -> None:
        self.assertEqual(validate_description("anything (*) goes, é"), "anything (*) goes, é")
        for bad in ("", "a\0b", "x" * 256):
            with self.assertRaises(InvalidParameterValue):
                validate_description(bad)

    def test_dns_are_escaped(self) -> None:
        layout = DirectoryLayout("dc=nova,dc=local")
        self.assertEqual(layout.user_dn("alice").getText(), "uid=alice,ou=Users,dc=nova,dc=local")
        self.assertEqual(layout.role_dn("sysadmin").getText(),
                         "cn=sysadmins,ou=Groups,dc=nova,dc=local")
        self.assertEqual(layout.role_dn("sysadmin", "web").getText(),
                         "cn=sysadmin,cn=web,ou=Groups,dc=nova,dc=local")
        # even if a bad name slipped past validation, it could not change the DN's shape
        odd = child_dn(layout.users, "uid", "x,ou=Groups=\\ #")
        self.assertEqual(odd.getText(), "uid=x\\,ou\\=Groups\\=\\\\ \\#,ou=Users,dc=nova,dc=local")
        self.assertEqual(len(odd.split()), 4)

    def test_uid_of(self) -> None:
        layout = DirectoryLayout("dc=nova,dc=local")
        self.assertEqual(layout.uid_of("uid=bob,ou=Users,dc=nova,dc=local"), "bob")
        self.assertEqual(layout.uid_of(b"UID=bob,OU=users,DC=nova,DC=local"), "bob")
        for other in ("uid=bob,ou=Other,dc=nova,dc=local", "cn=bob,ou=Users,dc=nova,dc=local",
                      "not a dn", ""):
            self.assertIsNone(layout.uid_of(other))

    def test_project_membership_ignores_case(self) -> None:
        project = Project(id="p", name="p", description="d", project_manager_id="Alice",
                          member_ids=("Alice", "bob"))
        self.assertTrue(project.has_member("alice"))
        self.assertTrue(project.is_manager("ALICE"))
        self.assertFalse(project.has_member("carol"))
