"""Functional: the all-in-one's start, restart and failure to start."""

from __future__ import annotations

import socket

from twisted.trial import unittest

from tests.support.allinone import AllInOne, parse_novarc


class StartupTests(unittest.TestCase):
    timeout = 240

    def test_restart_reuses_state(self) -> None:
        cloud = AllInOne()
        self.addCleanup(cloud.remove)
        self.addCleanup(cloud.stop)
        cloud.start()
        first = parse_novarc(cloud.novarc_path.read_text())
        user = cloud.nova_manage("user", "create", "survivor").stdout
        cloud.stop()
        cloud.start()
        second = parse_novarc(cloud.novarc_path.read_text())
        self.assertEqual(first["AWS_ACCESS_KEY_ID"], second["AWS_ACCESS_KEY_ID"])
        self.assertEqual(cloud.nova_manage("user", "exports", "survivor").stdout, user)

    def test_port_taken(self) -> None:
        cloud = AllInOne()
        self.addCleanup(cloud.remove)
        self.addCleanup(cloud.stop)
        squatter = socket.socket()
        self.addCleanup(squatter.close)
        squatter.bind(("127.0.0.1", cloud.ec2_port))
        squatter.listen()
        with self.assertRaises(RuntimeError) as caught:
            cloud.start()
        self.assertIn("exited (1)", str(caught.exception))
        self.assertIn("cannot listen", cloud.log_tail())
        # the redis-server it had started went with it
        with socket.socket() as probe:
            self.assertNotEqual(probe.connect_ex(("127.0.0.1", cloud.redis_port)), 0)
