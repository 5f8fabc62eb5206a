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




class NovaManageNetworkTests(unittest.TestCase):
    """
    C{nova-manage network} and C{floating}, against Redis at 127.0.0.1:6379
    under a key prefix of this test's own (the config file names it).
    """

    def setUp(self) -> None:
        from tests.test_datastore_contract import REDIS_PORT, unique_prefix

        self.port = REDIS_PORT
        self.prefix = unique_prefix()
        self.state = Path(self.mktemp()).resolve()
        self.state.mkdir(parents=True)
        self.config = self.state / "nova.conf"
        self.config.write_text(
            f"[nova]\nstate_dir = {self.state}\n\n"
            f"[redis]\nhost = 127.0.0.1\nport = {REDIS_PORT}\nprefix = {self.prefix}\n"
            f"spawn = false\n\n"
            "[network]\nfixed_range = 10.20.0.0/16\nnetwork_size = 64\nnum_networks = 2\n"
            "vlan_start = 300\n")
        self.env = {k: v for k, v in os.environ.items() if k != "NOVA_CONFIG"}
        self.env["NOVA_STATE_DIR"] = str(self.state)
        self.addCleanup(self._delete_keys)

    def _delete_keys(self) -> None:
        found = subprocess.run(["redis-cli", "-p", str(self.port), "--scan", "--pattern",
                                f"{self.prefix}*"], capture_output=True, text=True,
                               timeout=30).stdout.split()
        if found:
            subprocess.run(["redis-cli", "-p", str(self.port), "DEL", *found],
                           capture_output=True, timeout=30)

    def manage(self, *args: str, status: int = 0) -> str:
        result = subprocess.run([str(ROOT / "bin" / "nova-manage"), "--config",
                                 str(self.config), *args], env=self.env,
                                cwd=str(self.state), capture_output=True, text=True,
                                timeout=120)
        self.assertEqual(result.returncode, status,
                         f"nova-manage {' '.join(args)}: {result.stdout}{result.stderr}")
        if status:
            self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)
            return result.stderr
        return result.stdout

    def test_network_create_and_list(self) -> None:
        out = self.manage("network", "create")  # every value from [network]
        self.assertIn("created 2 network(s): 10.20.0.0/26 .. 10.20.0.64/26", out)
        out = self.manage("network", "create", "10.30.0.0/16", "3", "256", "400")
        self.assertIn("10.30.0.0/24 .. 10.30.2.0/24", out)
        rows = [line.split("\t") for line in self.manage("network", "list").splitlines()]
        self.assertEqual(rows[0], ["id", "cidr", "vlan", "bridge", "project", "host"])
        self.assertEqual(rows[1], ["1", "10.20.0.0/26", "300", "novabr300", "-", "-"])
        self.assertEqual([r[1] for r in rows[1:]], ["10.20.0.0/26", "10.20.0.64/26",
                                                    "10.30.0.0/24", "10.30.1.0/24",
                                                    "10.30.2.0/24"])
        self.assertIn("overlaps network 4",
                      self.manage("network", "create", "10.30.1.0/24", "1", "256", "500",
                                  status=1))
        self.assertIn("power of two",
                      self.manage("network", "create", "10.40.0.0/16", "1", "100", "500",
                                  status=1))
        self.assertIn("not a whole number",
                      self.manage("network", "create", "10.40.0.0/16", "many", status=2))
        self.assertEqual(len(self.manage("network", "list").splitlines()), 6)

    def test_floating_create_list_delete(self) -> None:
        self.assertIn("created 6 floating IP(s)",
                      self.manage("floating", "create", "203.0.113.0/29", "net1"))
        self.manage("floating", "create", "203.0.113.100-203.0.113.101")
        rows = [line.split("\t") for line in self.manage("floating", "list").splitlines()]
        self.assertEqual(rows[0], ["net1", "203.0.113.1", "-", "-", "-"])
        self.assertEqual(rows[-1], ["-", "203.0.113.101", "-", "-", "-"])
        self.assertEqual(len(rows), 8)
        self.assertIn("already exist",
                      self.manage("floating", "create", "203.0.113.6/32", status=1))
        self.assertIn("deleted 2", self.manage("floating", "delete", "203.0.113.100/31"))
        self.assertIn("deleted 6", self.manage("floating", "delete", "203.0.113.0/29"))
        self.assertIn("No floating IP", self.manage("floating", "delete", "203.0.113.0/29",
                                                    status=1))
        self.assertEqual(self.manage("floating", "list"), "")
