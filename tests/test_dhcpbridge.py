"""Unit tests of nova-dhcpbridge, dnsmasq's lease script."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

from twisted.trial import unittest

from nova.cmd import dhcpbridge
from nova.network import dhcp_client

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class DhcpBridgeTests(unittest.TestCase):
    def setUp(self) -> None:
        self.path = os.path.abspath(self.mktemp())
        self.env = {dhcpbridge.EVENTS_ENV: self.path, "DNSMASQ_INTERFACE": "novabr100",
                    "DNSMASQ_LEASE_EXPIRES": "2000"}
        self.err = io.StringIO()

    def call(self, *argv: str, now: float = 1000.0) -> str:
        out = io.StringIO()
        self.assertEqual(dhcpbridge.main(list(argv), self.env, out, self.err, now), 0)
        return out.getvalue()

    def events(self) -> list[dict]:
        with open(self.path) as f:
            return [json.loads(line) for line in f]

    def test_records_events_and_init_replays(self) -> None:
        self.call("add", "02:00:00:00:00:0A", "10.0.5.10", "i-0000000a")
        self.call("add", "02:00:00:00:00:0b", "10.0.5.11")
        self.call("del", "02:00:00:00:00:0b", "10.0.5.11")
        self.assertEqual(self.events()[0], {
            "time": 1000.0, "action": "add", "mac": "02:00:00:00:00:0a", "ip": "10.0.5.10",
            "hostname": "i-0000000a", "interface": "novabr100", "expires": 2000})
        self.assertEqual(len(self.events()), 3)
        self.assertEqual(self.call("init"), "2000 02:00:00:00:00:0a 10.0.5.10 i-0000000a *\n")
        self.assertEqual(self.call("init", now=3000.0), "")  # expired
        self.assertEqual(self.err.getvalue(), "")

    def test_bad_input_never_fails(self) -> None:
        for argv in (["add"], ["add", "zz", "10.0.5.1"], ["add", "02:00:00:00:00:0a", "x"],
                     ["bogus", "a", "b"]):
            self.call(*argv)
        self.assertEqual(self.err.getvalue().count("nova-dhcpbridge:"), 4)
        self.assertFalse(os.path.exists(self.path))
        self.call("tftp", "1", "2", "3")
        self.assertEqual(self.err.getvalue().count("nova-dhcpbridge:"), 4)
        del self.env[dhcpbridge.EVENTS_ENV]
        self.call("add", "02:00:00:00:00:0a", "10.0.5.10")
        self.assertIn("NOVA_DHCPBRIDGE_EVENTS is not set", self.err.getvalue())

    def test_torn_lines_skipped(self) -> None:
        with open(self.path, "w") as f:
            f.write('{"action": "add", "ip": "10.0.5.3", "mac": "02:00:00:00:00:03"}\n{"act\n')
        self.assertEqual(self.call("init"), "0 02:00:00:00:00:03 10.0.5.3 * *\n")

    def test_script_exits_zero(self) -> None:
        env = {"PATH": os.environ.get("PATH", ""), dhcpbridge.EVENTS_ENV: self.path}
        for argv in (["add", "02:00:00:00:00:0a", "10.0.5.10"], ["add", "garbage"]):
            done = subprocess.run([sys.executable, os.path.join(ROOT, "bin", "nova-dhcpbridge"),
                                   *argv], env=env, capture_output=True, timeout=30)
            self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual([e["ip"] for e in self.events()], ["10.0.5.10"])

    def test_socket_event_is_the_file_event(self) -> None:
        # The socket and the fallback file carry the same event.
        recorded = dhcpbridge.record(self.path, "add", "02:00:00:00:00:0A", "10.0.5.10",
                                     "i-0000000a", self.env, 1000.0)
        self.assertEqual(dhcp_client.make_event("add", "02:00:00:00:00:0A", "10.0.5.10",
                                                "i-0000000a", self.env, 1000.0), recorded)
        self.assertRaises(ValueError, dhcp_client.make_event, "tftp", "02:00:00:00:00:0a",
                          "10.0.5.10", None, self.env, 1.0)

    def test_unset_socket_uses_the_file(self) -> None:
        out, err = io.StringIO(), io.StringIO()
        self.assertEqual(dhcp_client.main(["add", "02:00:00:00:00:0a", "10.0.5.10"], self.env,
                                          out, err, 1000.0), 0)
        self.assertEqual((err.getvalue(), [e["ip"] for e in self.events()]), ("", ["10.0.5.10"]))
        self.env[dhcp_client.SOCKET_ENV] = "/nonexistent/nova-dhcp.sock"
        self.assertEqual(dhcp_client.main(["init"], self.env, out, err, 1000.0), 0)
        self.assertEqual(out.getvalue(), "2000 02:00:00:00:00:0a 10.0.5.10 * *\n")
        self.assertEqual(dhcp_client.main(["add", "bad", "10.0.5.10"], self.env, out, err), 0)
        self.assertIn("invalid MAC address 'bad'", err.getvalue())
