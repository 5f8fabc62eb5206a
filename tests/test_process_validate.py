"""
Tests for L{nova.utils.validate}: identifiers that go into host commands.
"""

from __future__ import annotations

from twisted.trial import unittest

from nova.exception import InvalidParameterValue
from nova.utils import validate
from nova.utils.validate import InvalidIdentifier


class ValidateTests(unittest.TestCase):

    def assertRejects(self, check, *values) -> None:  # type: ignore[no-untyped-def]
        for value in values:
            with self.assertRaises(InvalidIdentifier, msg=repr(value)) as cm:
                check(value)
            self.assertIsInstance(cm.exception, ValueError)
            self.assertIsInstance(cm.exception, InvalidParameterValue)
            self.assertEqual(cm.exception.code, "InvalidParameterValue")

    def test_interface_name(self) -> None:
        for name in ("br100", "tap-0a1b2c3d", "vx.42", "eth0_1", "a", "x" * 15):
            self.assertEqual(validate.interface_name(name), name)
        self.assertRejects(validate.interface_name, "", "x" * 16, "-br", ".", "..", ".x",
                           "br 0", "br/0", "br:0", "br0\n", "br\x00", "brü", None, 5, b"br0")

    def test_netns_name(self) -> None:
        for name in ("nova-host1", "h", "a.b_c-d", "x" * 64, "9host"):
            self.assertEqual(validate.netns_name(name), name)
        self.assertRejects(validate.netns_name, "", "x" * 65, "-n", "..", "a/b", "a b",
                           "ns\n", None)

    def test_ipv4_address(self) -> None:
        self.assertEqual(validate.ipv4_address("10.0.0.5"), "10.0.0.5")
        self.assertEqual(validate.ipv4_address("169.254.169.254"), "169.254.169.254")
        self.assertRejects(validate.ipv4_address, "10.0.0.256", "10.0.0", "010.0.0.1",
                           " 10.0.0.1", "10.0.0.1/32", "::1", "-1.0.0.0", "", None, 167772161)

    def test_ipv4_network(self) -> None:
        self.assertEqual(validate.ipv4_network("10.0.0.0/24"), "10.0.0.0/24")
        self.assertEqual(validate.ipv4_network("10.0.0.7"), "10.0.0.7/32")
        self.assertEqual(validate.ipv4_network("10.0.0.7/24", strict=False), "10.0.0.0/24")
        self.assertEqual(validate.ipv4_network("10.0.0.0/255.255.255.0"), "10.0.0.0/24")
        self.assertRejects(validate.ipv4_network, "10.0.0.7/24", "10.0.0.0/33", "fd00::/8",
                           "10.0.0.0/-1", "", None)

    def test_ipv4_interface(self) -> None:
        self.assertEqual(validate.ipv4_interface("10.0.0.1/24"), "10.0.0.1/24")
        self.assertRejects(validate.ipv4_interface, "10.0.0.1", "10.0.0.1/40", "x/24", None)

    def test_mac_address(self) -> None:
        self.assertEqual(validate.mac_address("02:16:3E:0a:0B:ff"), "02:16:3e:0a:0b:ff")
        self.assertRejects(validate.mac_address, "02:16:3e:0a:0b", "02-16-3e-0a-0b-ff",
                           "0216.3e0a.0bff", "02:16:3e:0a:0b:ff:00", "02:16:3e:0a:0b:fg",
                           "2:16:3e:0a:0b:ff", " 02:16:3e:0a:0b:ff", "", None)

    def test_vlan_id(self) -> None:
        self.assertEqual(validate.vlan_id(1), 1)
        self.assertEqual(validate.vlan_id(4094), 4094)
        self.assertRejects(validate.vlan_id, 0, 4095, -1, True, "100", 1.0, None)
