"""
Records (L{nova.datastore.records}) and key names (L{nova.datastore.keys}).
"""

from __future__ import annotations

import json
import operator

import attr
from twisted.trial import unittest

from nova.datastore import keys
from nova.datastore._common import escape_glob, glob_to_regex
from nova.datastore.errors import CorruptRecord
from nova.datastore.records import KeyPair, Service, new_key_pair_id


def a_key_pair(**changes: object) -> KeyPair:
    """@return: a valid key pair, with C{changes}."""
    fields: dict[str, object] = dict(
        project_id="proj", name="mykey", user_id="alice",
        fingerprint="1f:51:ae:28:bf:89:e9:d8:1f:25:5d:37:2d:7d:b8:ca",
        public_key="ssh-rsa AAAAB3NzaC1yc2E alice@example", key_type="rsa",
        created_at=1764062441.25, key_pair_id="key-0123456789abcdef0")
    fields.update(changes)
    return KeyPair(**fields)  # type: ignore[arg-type]


def a_service(**changes: object) -> Service:
    """@return: a valid service record, with C{changes}."""
    fields: dict[str, object] = dict(
        host="node1", binary="nova-compute", topic="compute", zone="nova",
        updated_at=100.0, report_count=3,
        capacity={"vcpus": 4, "memory_mb": 8192, "disk_gb": 100, "vcpus_used": 1},
        disabled=False, started_at=50.0)
    fields.update(changes)
    return Service(**fields)  # type: ignore[arg-type]


class KeyPairRecordTests(unittest.TestCase):

    def test_json_round_trip(self) -> None:
        record = a_key_pair()
        text = record.to_json()
        self.assertEqual(json.loads(text)["name"], "mykey")
        self.assertEqual(KeyPair.from_json(text), record)
        self.assertEqual(KeyPair.from_dict(record.to_dict()), record)

    def test_whole_float_as_int_is_accepted(self) -> None:
        data = a_key_pair().to_dict()
        data["created_at"] = 1764062441
        self.assertEqual(KeyPair.from_dict(data).created_at, 1764062441.0)

    def test_unknown_fields_ignored(self) -> None:
        data = a_key_pair().to_dict()
        data["added_in_a_later_release"] = "x"
        self.assertEqual(KeyPair.from_dict(data), a_key_pair())

    def test_missing_field(self) -> None:
        data = a_key_pair().to_dict()
        del data["fingerprint"]
        self.assertRaises(CorruptRecord, KeyPair.from_dict, data)

    def test_corrupt_json(self) -> None:
        self.assertRaises(CorruptRecord, KeyPair.from_json, "{not json")
        self.assertRaises(CorruptRecord, KeyPair.from_json, "[1, 2]")
        self.assertRaises(CorruptRecord, KeyPair.from_json, '{"name": 5}')

    def test_validation(self) -> None:
        self.assertRaises(ValueError, a_key_pair, key_type="dsa")
        self.assertRaises(ValueError, a_key_pair, key_pair_id="key-123")
        self.assertRaises(TypeError, a_key_pair, name=5)
        self.assertEqual(a_key_pair(key_type="ed25519").key_type, "ed25519")

    def test_frozen(self) -> None:
        record = a_key_pair()
        self.assertRaises(attr.exceptions.FrozenInstanceError, setattr, record, "name", "x")

    def test_new_key_pair_id(self) -> None:
        ids = {new_key_pair_id() for _ in range(20)}
        self.assertEqual(len(ids), 20)
        for key_pair_id in ids:
            self.assertEqual(a_key_pair(key_pair_id=key_pair_id).key_pair_id, key_pair_id)


class ServiceRecordTests(unittest.TestCase):

    def test_json_round_trip(self) -> None:
        record = a_service()
        again = Service.from_json(record.to_json())
        self.assertEqual(again, record)
        self.assertEqual(again.capacity["memory_mb"], 8192)
        self.assertEqual(json.loads(record.to_json())["capacity"]["vcpus"], 4)

    def test_capacity_is_read_only(self) -> None:
        figures = {"vcpus": 4}
        record = a_service(capacity=figures)
        figures["vcpus"] = 99  # the record took a copy
        self.assertEqual(record.capacity["vcpus"], 4)
        self.assertRaises(TypeError, operator.setitem, record.capacity, "vcpus", 1)
        hash(record)

    def test_validation(self) -> None:
        self.assertRaises(TypeError, a_service, capacity={"vcpus": "4"})
        self.assertRaises(TypeError, a_service, report_count=True)
        self.assertRaises(TypeError, a_service, disabled="no")
        data = a_service().to_dict()
        data["report_count"] = "3"
        self.assertRaises(CorruptRecord, Service.from_dict, data)


class KeyTests(unittest.TestCase):

    def test_components_cannot_collide(self) -> None:
        self.assertNotEqual(keys.keypair("a", "b:c"), keys.keypair("a:b", "c"))
        self.assertNotEqual(keys.service("h:x", "b"), keys.service("h", "x:b"))

    def test_components_are_glob_safe(self) -> None:
        key = keys.keypair("p", "a*b?[c]\\%")
        self.assertEqual(escape_glob(key), key)
        self.assertEqual(keys.unpart(key.split(":")[2]), "a*b?[c]\\%")

    def test_project_pattern_matches_only_that_project(self) -> None:
        pattern = glob_to_regex(keys.keypair("p*", "") + "*")
        self.assertTrue(pattern.fullmatch(keys.keypair("p*", "anything")))
        self.assertFalse(pattern.fullmatch(keys.keypair("p2", "anything")))

    def test_readable(self) -> None:
        self.assertEqual(keys.keypair("proj", "my key"), "keypair:proj:my%20key")
        self.assertEqual(keys.keypairs_of_project("proj"), "keypairs:proj")
        self.assertEqual(keys.service("node1.example", "nova-compute"),
                         "service:node1.example:nova-compute")
        self.assertEqual(keys.services(), "services")
        self.assertEqual(keys.counter("reservation"), "counter:reservation")

    def test_non_str_rejected(self) -> None:
        self.assertRaises(TypeError, keys.keypair, "p", 5)
