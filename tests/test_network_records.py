"""
The network records (L{nova.network.records}) and address arithmetic
(L{nova.network.addresses}): pure, no datastore.
"""

from __future__ import annotations

import attr
from twisted.trial import unittest

from nova.datastore import keys
from nova.datastore.errors import CorruptRecord
from nova.exception import InvalidParameterValue
from nova.network import addresses
from nova.network.errors import InvalidNetworkRange
from nova.network.records import MAX_INTERFACE_NAME, FixedIp, FloatingIp, Network, bridge_name


def a_fixed_ip(**changes: object) -> FixedIp:
    """@return: a valid fixed IP record, with C{changes}."""
    fields: dict[str, object] = dict(
        address="10.0.0.3", network_id=1, instance_id="i-0123456789abcdef0",
        mac="02:16:3e:00:00:01", allocated_at=10.0, updated_at=10.0)
    fields.update(changes)
    return FixedIp(**fields)  # type: ignore[arg-type]


class NetworkRecordTests(unittest.TestCase):

    def test_plan_derives_the_layout(self) -> None:
        net = Network.plan(7, "10.0.2.0/24", 102, None, 5.0)
        self.assertEqual((net.netmask, net.gateway, net.vpn_address, net.dhcp_start,
                          net.broadcast, net.bridge, net.project_id),
                         ("255.255.255.0", "10.0.2.1", "10.0.2.2", "10.0.2.3",
                          "10.0.2.255", "novabr102", None))
        self.assertEqual(Network.from_json(net.to_json()), net)
        self.assertEqual(net.allocatable()[0], "10.0.2.3")
        self.assertEqual(net.allocatable()[-1], "10.0.2.254")
        self.assertEqual(len(net.allocatable()), 252)

    def test_flat_network_needs_a_bridge(self) -> None:
        self.assertEqual(Network.plan(1, "192.168.0.0/24", None, "br100", 0).bridge, "br100")
        self.assertRaises(ValueError, Network.plan, 1, "192.168.0.0/24", None, None, 0)

    def test_bridge_names_fit_an_interface_name(self) -> None:
        self.assertLessEqual(len(bridge_name(addresses.VLAN_MAX)), MAX_INTERFACE_NAME)
        self.assertRaises(ValueError, Network.plan, 1, "10.0.0.0/24", None,
                          "a-bridge-name-too-long", 0)
        self.assertRaises(ValueError, Network.plan, 1, "10.0.0.0/24", None, "br;reboot", 0)

    def test_inconsistent_records_refused(self) -> None:
        net = Network.plan(1, "10.0.0.0/24", 100, None, 0)
        self.assertRaises(ValueError, attr.evolve, net, gateway="10.0.0.9")
        self.assertRaises(ValueError, attr.evolve, net, vlan=4095)
        self.assertRaises(ValueError, attr.evolve, net, network_id=0)
        bad = net.to_dict()
        bad["cidr"] = "10.0.0.1/24"
        self.assertRaises(CorruptRecord, Network.from_dict, bad)


class FixedAndFloatingRecordTests(unittest.TestCase):

    def test_fixed_ip_round_trip_and_validation(self) -> None:
        record = a_fixed_ip()
        self.assertEqual(FixedIp.from_json(record.to_json()), record)
        self.assertTrue(record.allocated)
        self.assertFalse(record.leased)
        self.assertRaises(ValueError, a_fixed_ip, address="10.0.0.300")
        self.assertRaises(ValueError, a_fixed_ip, address="010.0.0.3")
        self.assertRaises(ValueError, a_fixed_ip, mac="02:16:3E:00:00:01")
        self.assertRaises(ValueError, a_fixed_ip, mac="nope")

    def test_floating_ip_association_fields_go_together(self) -> None:
        free = FloatingIp(address="4.4.4.4", created_at=1, updated_at=1)
        self.assertEqual(FloatingIp.from_json(free.to_json()), free)
        self.assertRaises(ValueError, attr.evolve, free, project_id="p", instance_id="i-1")
        self.assertRaises(ValueError, attr.evolve, free, instance_id="i-1",
                          fixed_address="10.0.0.3")  # not allocated
        attr.evolve(free, project_id="p", instance_id="i-1", fixed_address="10.0.0.3")


class AddressTests(unittest.TestCase):

    def test_plan_subnets(self) -> None:
        nets = addresses.plan_subnets("10.0.0.0/8", 3, 256)
        self.assertEqual([str(n) for n in nets], ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"])
        self.assertEqual([str(n) for n in addresses.plan_subnets("10.1.0.0/28", 2, 8)],
                         ["10.1.0.0/29", "10.1.0.8/29"])

    def test_plan_refusals_are_clear(self) -> None:
        for args, words in [
                (("10.0.0.0/8", 2, 100), "power of two"),
                (("10.0.0.0/8", 2, 4), "at least 8"),
                (("10.0.0.0/24", 2, 256), "holds 1 network"),
                (("10.0.0.0/24", 1, 512), "larger than"),
                (("10.0.0.1/24", 1, 8), "host bits"),
                (("nonsense", 1, 8), "Invalid range"),
                (("10.0.0.0/8", 0, 8), "num_networks"),
        ]:
            e = self.assertRaises(InvalidNetworkRange, addresses.plan_subnets, *args)
            self.assertIsInstance(e, InvalidParameterValue)
            self.assertEqual(e.code, "InvalidParameterValue")
            self.assertIn(words, str(e))

    def test_vlans(self) -> None:
        self.assertEqual(list(addresses.check_vlans(4093, 2)), [4093, 4094])
        self.assertRaises(InvalidNetworkRange, addresses.check_vlans, 4094, 2)
        self.assertRaises(InvalidNetworkRange, addresses.check_vlans, 0, 1)

    def test_floating_ranges(self) -> None:
        self.assertEqual(addresses.parse_floating_range("4.4.4.0/30"), ["4.4.4.1", "4.4.4.2"])
        self.assertEqual(addresses.parse_floating_range("4.4.4.9/32"), ["4.4.4.9"])
        self.assertEqual(addresses.parse_floating_range("4.4.4.254-4.4.5.1"),
                         ["4.4.4.254", "4.4.4.255", "4.4.5.0", "4.4.5.1"])
        for bad in ("4.4.4.9-4.4.4.1", "4.4.4.0/33", "1.0.0.0/8", "x-y", "4.4.4.1/24"):
            self.assertRaises(InvalidNetworkRange, addresses.parse_floating_range, bad)

    def test_keys_of_addresses(self) -> None:
        self.assertEqual(keys.fixed_ip("10.0.0.3"), "fixed_ip:10.0.0.3")
        self.assertEqual(keys.network(3), "network:3")
        self.assertEqual(keys.network_of_project("a:b"), "network-of-project:a%3Ab")
