"""
bin/nova-manage as an administrator runs it: from the checkout, on a state
directory of its own (no cloud running, so it owns the embedded directory).
"""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

from twisted.trial import unittest

from tests.support.allinone import ROOT, parse_novarc


class NovaManageTests(unittest.TestCase):
    def setUp(self) -> None:
        self.state = Path(self.mktemp()).resolve()
        self.env = {k: v for k, v in os.environ.items() if k != "NOVA_CONFIG"}
        self.env["NOVA_STATE_DIR"] = str(self.state)

    def manage(self, *args: str, status: int = 0, cwd: str | None = None) -> str:
        result = subprocess.run([str(ROOT / "bin" / "nova-manage"), *args], env=self.env,
                                cwd=cwd or str(self.state.parent), capture_output=True,
                                text=True, timeout=120)
        self.assertEqual(result.returncode, status,
                         f"nova-manage {' '.join(args)}: {result.stdout}{result.stderr}")
        if status and result.stderr:
            # errors are one clear line
            self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)
        return result.stdout if status == 0 else (result.stderr or result.stdout)

    def test_users(self) -> None:
        out = self.manage("user", "create", "alice", "alice-access", "alice-secret")
        self.assertEqual(out.split(), ["export", "EC2_ACCESS_KEY=alice-access", "export",
                                       "EC2_SECRET_KEY=alice-secret"])
        self.manage("user", "admin", "root")
        self.assertEqual(self.manage("user", "list").split(), ["alice", "root", "(admin)"])
        self.manage("user", "modify", "alice", "", "new-secret", "T")
        self.assertIn("EC2_SECRET_KEY=new-secret", self.manage("user", "exports", "alice"))
        self.assertIn("(admin)", self.manage("user", "list").splitlines()[0])
        self.manage("user", "delete", "alice")
        self.assertNotIn("alice", self.manage("user", "list"))

    def test_bad_input_is_one_line_and_nonzero(self) -> None:
        self.assertIn("Invalid user id", self.manage("user", "create", "a;b", status=1))
        self.assertIn("Invalid user id", self.manage("user", "create", "$(reboot)", status=1))
        self.manage("user", "create", "bob")
        self.assertIn("bob", self.manage("user", "create", "bob", status=1))
        self.assertIn("nobody", self.manage("user", "delete", "nobody", status=1))
        self.assertIn("invalid choice", self.manage("planet", "list", status=2))
        self.assertIn("admin must be", self.manage("user", "modify", "bob", "", "", "perhaps",
                                                   status=2))
        self.assertIn("Unknown role", self.manage("role", "add", "bob", "overlord", status=1))

    def test_projects_roles_and_credentials(self) -> None:
        self.manage("user", "create", "alice")
        self.manage("user", "create", "bob")
        self.manage("project", "create", "web", "alice", "the web team")
        self.manage("project", "add", "web", "bob")
        self.assertEqual(self.manage("project", "list", "bob").split(), ["web"])
        self.manage("role", "add", "bob", "netadmin")
        self.manage("role", "add", "bob", "netadmin", "web")
        self.assertEqual(self.manage("role", "has", "bob", "netadmin", "web").strip(), "True")
        self.manage("role", "remove", "bob", "netadmin", "web")
        self.assertEqual(self.manage("role", "has", "bob", "netadmin", "web", status=1).strip(),
                         "False")

        self.manage("project", "zipfile", "web", "bob", "bob.zip")
        with zipfile.ZipFile(self.state.parent / "bob.zip") as archive:
            self.assertEqual(sorted(archive.namelist()),
                             ["cacert.pem", "cert.pem", "novarc", "pk.pem"])
            env = parse_novarc(archive.read("novarc").decode())
        for name in ("EC2_URL", "S3_URL", "EC2_ACCESS_KEY", "EC2_SECRET_KEY", "EC2_CERT",
                     "EC2_PRIVATE_KEY", "NOVA_CERT", "AWS_ACCESS_KEY_ID",
                     "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_EC2",
                     "AWS_ENDPOINT_URL_S3"):
            self.assertIn(name, env)
        self.assertTrue(env["EC2_ACCESS_KEY"].endswith(":web"))
        self.assertEqual(env["AWS_ACCESS_KEY_ID"], env["EC2_ACCESS_KEY"])

        self.manage("project", "environment", "web", "bob", "bobrc")
        self.assertEqual(oct((self.state.parent / "bobrc").stat().st_mode & 0o777), "0o600")
        self.manage("project", "remove", "web", "bob")
        self.assertIn("not a member", self.manage("project", "zipfile", "web", "bob", "x.zip",
                                                  status=1))
        self.manage("project", "delete", "web")
        self.assertEqual(self.manage("project", "list").split(), [])

    def test_runs_from_anywhere_on_the_same_state(self) -> None:
        """The script finds its environment and the state from any directory."""
        self.manage("user", "create", "carol", cwd="/")
        self.assertEqual(self.manage("user", "list", cwd=str(ROOT)).split(), ["carol"])
        self.assertTrue((self.state / "ldap" / "nova.ldif").exists())


