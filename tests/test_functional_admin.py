"""
Functional: the admin API (/services/Admin) on a running all-in-one, called
with boto 2 as 2010 nova's adminclient did: open to admins, closed to others.
"""

from __future__ import annotations

import base64
import io
import uuid
import zipfile
from xml.etree import ElementTree

from twisted.trial import unittest

from tests.support.allinone import shared
from tests.support.clients import Tenant, boto2_ec2

NS = "{*}"  # boto 2 sends its own Version; the namespace follows it


def call(conn, action: str, **params: str) -> tuple[int, ElementTree.Element]:
    """@return: the HTTP status and the parsed XML of an admin API call."""
    response = conn.make_request(action, {"Version": "2016-11-15", **params}, verb="POST")
    return response.status, ElementTree.fromstring(response.read())


def text(root: ElementTree.Element, path: str) -> str | None:
    found = root.find("/".join(NS + p for p in path.split("/")))
    return None if found is None else found.text


class AdminApiTests(unittest.TestCase):
    def setUp(self) -> None:
        self.cloud = shared()
        env = self.cloud.admin_env()
        self.admin = boto2_ec2(self.cloud.admin_url, env["EC2_ACCESS_KEY"],
                               env["EC2_SECRET_KEY"])

    def test_user_lifecycle(self) -> None:
        name = f"adm-{uuid.uuid4().hex[:8]}"
        status, root = call(self.admin, "RegisterUser", Name=name)
        self.assertEqual(status, 200, ElementTree.tostring(root))
        self.assertEqual(text(root, "username"), name)
        self.assertTrue(text(root, "accesskey"))
        status, root = call(self.admin, "DescribeUsers")
        names = [e.text for e in root.findall(".//{*}username")]
        self.assertIn(name, names)
        self.assertIn("admin", names)
        status, root = call(self.admin, "RegisterProject", Name=name, ManagerUser=name,
                            Description="made by the admin API")
        self.assertEqual(status, 200, ElementTree.tostring(root))
        self.assertEqual(text(root, "projectManagerId"), name)
        status, root = call(self.admin, "ModifyUserRole", User=name, Role="netadmin",
                            Operation="add")
        self.assertEqual(status, 200)
        status, root = call(self.admin, "DescribeUserRoles", User=name)
        self.assertEqual([e.text for e in root.findall(".//{*}role")], ["netadmin"])
        status, root = call(self.admin, "GenerateX509ForUser", Name=name, Project=name)
        self.assertEqual(status, 200)
        archive = zipfile.ZipFile(io.BytesIO(base64.b64decode(text(root, "file"))))
        self.assertEqual(sorted(archive.namelist()), ["cacert.pem", "cert.pem", "novarc", "pk.pem"])
        self.assertIn(b"AWS_ENDPOINT_URL_EC2", archive.read("novarc"))
        status, root = call(self.admin, "DeregisterProject", Name=name)
        self.assertEqual(status, 200)
        status, root = call(self.admin, "DeregisterUser", Name=name)
        self.assertEqual(status, 200)
        status, root = call(self.admin, "DescribeUser", Name=name)
        self.assertEqual(status, 400)
        self.assertEqual(root.findtext("Errors/Error/Code"), "InvalidUser.NotFound")

    def test_project_members(self) -> None:
        tenant = Tenant(self.cloud)
        self.addCleanup(tenant.remove)
        other = Tenant(self.cloud)
        self.addCleanup(other.remove)
        status, _ = call(self.admin, "ModifyProjectMember", User=other.user,
                         Project=tenant.project, Operation="add")
        self.assertEqual(status, 200)
        status, root = call(self.admin, "DescribeProjectMembers", Name=tenant.project)
        self.assertEqual(sorted(e.text for e in root.findall(".//{*}member")),
                         sorted([tenant.user, other.user]))

    def test_describe_hosts_and_roles(self) -> None:
        status, root = call(self.admin, "DescribeHosts")
        self.assertEqual(status, 200)
        self.assertIn("functional-test", [e.text for e in root.findall(".//{*}name")])
        self.assertIn("nova-api", [e.text for e in root.findall(".//{*}binary")])
        status, root = call(self.admin, "DescribeRoles")
        self.assertIn("netadmin", [e.text for e in root.findall(".//{*}role")])

    def test_bad_names_are_refused(self) -> None:
        for name in ("a;rm -rf /", "cn=x,dc=evil", "a*)(uid=*", "", "x" * 65):
            status, root = call(self.admin, "RegisterUser", Name=name)
            self.assertEqual(status, 400, name)
            self.assertIn(root.findtext("Errors/Error/Code"),
                          ("InvalidParameterValue", "MissingParameter"))
        status, root = call(self.admin, "DescribeUsers")
        self.assertFalse([e.text for e in root.findall(".//{*}username") if ";" in (e.text or "")])

    def test_unknown_admin_action(self) -> None:
        status, root = call(self.admin, "DescribeInstances")
        self.assertEqual(status, 400)
        self.assertEqual(root.findtext("Errors/Error/Code"), "InvalidAction")

    def test_non_admin_is_refused(self) -> None:
        tenant = Tenant(self.cloud)
        self.addCleanup(tenant.remove)
        conn = boto2_ec2(self.cloud.admin_url, tenant.access, tenant.secret)
        for action in ("DescribeUsers", "RegisterUser", "DescribeHosts"):
            status, root = call(conn, action, Name="x")
            self.assertEqual(status, 403, action)
            self.assertEqual(root.findtext("Errors/Error/Code"), "UnauthorizedOperation")

    def test_admin_sees_verbose_zones(self) -> None:
        cloud_conn = boto2_ec2(self.cloud.ec2_url, self.admin.aws_access_key_id,
                               self.admin.aws_secret_access_key)
        names = [z.name for z in cloud_conn.get_all_zones(["verbose"])]
        self.assertIn("|- functional-test", names)
        self.assertIn("| |- nova-api", names)
        states = [z.state for z in cloud_conn.get_all_zones(["verbose"])]
        self.assertTrue(any(":-)" in (s or "") for s in states), states)
