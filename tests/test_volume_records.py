"""
The volume records (L{Volume}, L{Snapshot}), their ids, sizes and device
names, and the state tables of L{nova.volume.states}.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.trial import unittest

from nova.datastore.errors import CorruptRecord
from nova.exception import InvalidParameterValue
from nova.volume import states
from nova.volume.records import (
    InvalidSnapshotIDMalformed, InvalidVolumeIDMalformed, Snapshot, Volume, check_size,
    check_snapshot_id, check_volume_id, guest_device, new_snapshot_id, new_volume_id)

NOW = 1_000_000.0


def a_volume(**changes: Any) -> Volume:
    """@return: a C{creating} 10 GiB volume of project C{proj} in zone C{nova}."""
    fields: dict[str, Any] = dict(volume_id=new_volume_id(), project_id="proj",
                                  user_id="alice", size=10, availability_zone="nova",
                                  created_at=NOW, updated_at=NOW)
    fields.update(changes)
    return Volume(**fields)


def a_snapshot(volume: Volume, **changes: Any) -> Snapshot:
    """@return: a C{pending} snapshot of C{volume}."""
    fields: dict[str, Any] = dict(snapshot_id=new_snapshot_id(), volume_id=volume.volume_id,
                                  project_id=volume.project_id, user_id="alice",
                                  volume_size=volume.size, created_at=NOW, updated_at=NOW)
    fields.update(changes)
    return Snapshot(**fields)


class IdTests(unittest.TestCase):

    def test_new_ids(self) -> None:
        ids = {new_volume_id() for _ in range(100)}
        self.assertEqual(len(ids), 100)
        for volume_id in ids:
            self.assertRegex(volume_id, r"\Avol-[0-9a-f]{17}\Z")
        self.assertRegex(new_snapshot_id(), r"\Asnap-[0-9a-f]{17}\Z")

    def test_well_formed_ids(self) -> None:
        """The 8-digit form of older EC2 ids is well formed (it is simply not found)."""
        for good in ("vol-0123abcd", "vol-0123456789abcdef0"):
            self.assertEqual(check_volume_id(good), good)
        for bad in ("vol-", "vol-XYZ", "i-0123abcd", "vol-0123abc", "", None, 7,
                    "vol-0123456789abcdef0\n"):
            e = self.assertRaises(InvalidVolumeIDMalformed, check_volume_id, bad)
            self.assertEqual(e.code, "InvalidVolumeID.Malformed")
        self.assertEqual(check_snapshot_id("snap-0123abcd"), "snap-0123abcd")
        e2 = self.assertRaises(InvalidSnapshotIDMalformed, check_snapshot_id, "vol-0123abcd")
        self.assertEqual(e2.code, "InvalidSnapshotID.Malformed")

    def test_sizes(self) -> None:
        self.assertEqual(check_size(1), 1)
        self.assertEqual(check_size(16384), 16384)
        for bad in (0, -1, 16385, True, "5", 1.5):
            e = self.assertRaises(InvalidParameterValue, check_size, bad)
            self.assertEqual(e.code, "InvalidParameterValue")
        self.assertIn("minimum is 1GiB", str(self.assertRaises(InvalidParameterValue,
                                                                check_size, 0)))


class DeviceTests(unittest.TestCase):

    def test_three_spellings_one_guest_disk(self) -> None:
        for name in ("/dev/vdf", "/dev/sdf", "/dev/xvdf"):
            self.assertEqual(guest_device(name), "vdf")
        self.assertEqual(guest_device("/dev/sdb"), "vdb")
        self.assertEqual(guest_device("/dev/xvdz"), "vdz")

    def test_refused(self) -> None:
        for bad in ("/dev/vda", "/dev/sda", "/dev/xvda", "/dev/sda1", "/dev/sdf1", "sdf",
                    "/dev/hdb", "/dev/vdaa", "/dev/sd", "/dev/SDF", "/dev/sdf ", "", None,
                    "/dev/../sdf"):
            e = self.assertRaises(InvalidParameterValue, guest_device, bad)
            self.assertEqual(e.code, "InvalidParameterValue")
        self.assertIn("is not a valid EBS device name",
                      str(self.assertRaises(InvalidParameterValue, guest_device, "/dev/vda")))


class VolumeRecordTests(unittest.TestCase):

    def test_round_trip(self) -> None:
        volume = a_volume(status=states.IN_USE, attach_status=states.ATTACHED,
                          instance_id="i-0123456789abcdef0", device="/dev/sdf",
                          attach_time=NOW + 1, host="vol1",
                          export={"driver": "nbd", "socket": "/run/x.sock", "nested": {"a": [1]}})
        again = Volume.from_json(volume.to_json())
        self.assertEqual(again, volume)
        self.assertEqual(again.guest_device, "vdf")
        self.assertEqual(json.loads(volume.to_json())["export"]["nested"], {"a": [1]})
        self.assertEqual(a_volume().status, states.CREATING)
        self.assertEqual(a_volume().attach_status, states.DETACHED)
        self.assertIsNone(a_volume().guest_device)

    def test_export_is_a_private_copy(self) -> None:
        given = {"target": "iqn.x", "lun": 1}
        volume = a_volume(export=given)
        given["lun"] = 2
        self.assertEqual(volume.export["lun"], 1)  # type: ignore[index]
        with self.assertRaises(TypeError):
            volume.export["lun"] = 3  # type: ignore[index]
        self.assertRaises(TypeError, a_volume, export={"f": object()})
        self.assertRaises(TypeError, a_volume, export={"f": float("nan")})
        self.assertRaises(TypeError, a_volume, export=["not", "a", "dict"])

    def test_half_written_states_refused(self) -> None:
        iid = "i-0123456789abcdef0"
        for bad in (dict(status=states.IN_USE),  # in use, detached
                    dict(attach_status=states.ATTACHED, instance_id=iid, device="/dev/sdf"),
                    dict(status=states.IN_USE, attach_status=states.ATTACHING),  # no instance
                    dict(instance_id=iid),  # detached with an instance
                    dict(status="gone"), dict(attach_status="stuck"),
                    dict(size=0), dict(size=16385), dict(size="10"), dict(volume_id="vol-1")):
            self.assertRaises((ValueError, TypeError), a_volume, **bad)
        # the datastore reports a stored one as corrupt
        raw = json.loads(a_volume().to_json())
        raw["status"] = states.IN_USE
        self.assertRaises(CorruptRecord, Volume.from_json, json.dumps(raw))

    def test_unknown_fields_ignored(self) -> None:
        raw = json.loads(a_volume().to_json())
        raw["from_the_future"] = 1
        self.assertEqual(Volume.from_json(json.dumps(raw)).size, 10)


class SnapshotRecordTests(unittest.TestCase):

    def test_round_trip(self) -> None:
        snap = a_snapshot(a_volume(), status=states.COMPLETED, progress="100%",
                          bucket="nova-snapshots", object_key="snap-x", checksum="a" * 64,
                          raw_size=10 << 30, stored_size=123, completed_at=NOW + 5, description="nightly")
        self.assertEqual(Snapshot.from_json(snap.to_json()), snap)
        self.assertEqual(snap.location, "nova-snapshots/snap-x")
        self.assertEqual(snap.started_at, NOW)
        self.assertIsNone(a_snapshot(a_volume()).location)
        self.assertEqual(a_snapshot(a_volume()).progress, "0%")

    def test_bad_fields(self) -> None:
        volume = a_volume()
        for bad in (dict(progress="101%"), dict(progress="50"), dict(progress="05%"),
                    dict(checksum="abc"), dict(checksum="A" * 64), dict(status="done"),
                    dict(stored_size="9"), dict(raw_size=1.5), dict(volume_size=0), dict(snapshot_id="snap-1")):
            self.assertRaises((ValueError, TypeError), a_snapshot, volume, **bad)
        for good in ("0%", "7%", "42%", "100%"):
            self.assertEqual(a_snapshot(volume, progress=good).progress, good)


class StateTableTests(unittest.TestCase):

    def check(self, state: tuple[str, str], action: str) -> Any:
        return states.check_volume_transition("vol-0123abcd", state[0], state[1], action,
                                              "i-0123abcd")

    def test_every_action_from_every_state(self) -> None:
        """
        Each action either moves, does nothing, or refuses with EC2's code:
        VolumeInUse for attach or delete of a volume in use, IncorrectState
        otherwise. The result is always a reachable state.
        """
        reachable = set(states.reachable_volume_states())
        for action in states.VOLUME_TRANSITIONS:
            for state in reachable:
                try:
                    target = self.check(state, action)
                except states.VolumeInUse:
                    self.assertIn(action, ("attach", "delete"))
                    self.assertEqual(state[0], states.IN_USE)
                    continue
                except states.IncorrectState as e:
                    self.assertEqual(e.code, "IncorrectState")
                    continue
                self.assertTrue(target is None or target in reachable, (action, state))

    def test_lifecycle(self) -> None:
        fresh = (states.CREATING, states.DETACHED)
        available = self.check(fresh, "created")
        self.assertEqual(available, (states.AVAILABLE, states.DETACHED))
        attaching = self.check(available, "attach")
        self.assertEqual(attaching, (states.IN_USE, states.ATTACHING))
        attached = self.check(attaching, "attached")
        self.assertEqual(self.check(attaching, "attach_failed"), available)
        detaching = self.check(attached, "detach")
        self.assertEqual(detaching, (states.IN_USE, states.DETACHING))
        self.assertIsNone(self.check(detaching, "detach"))  # repeated: nothing more
        self.assertEqual(self.check(detaching, "detach_failed"), attached)
        self.assertEqual(self.check(detaching, "detached"), available)
        self.assertEqual(self.check(available, "delete"), (states.DELETING, states.DETACHED))
        self.assertEqual(self.check(fresh, "create_failed"), (states.ERROR, states.DETACHED))
        self.assertEqual(self.check((states.ERROR, states.DETACHED), "delete"),
                         (states.DELETING, states.DETACHED))

    def test_refusals_and_messages(self) -> None:
        fresh = (states.CREATING, states.DETACHED)
        attaching = (states.IN_USE, states.ATTACHING)
        attached = (states.IN_USE, states.ATTACHED)
        e = self.assertRaises(states.IncorrectState, self.check, fresh, "attach")
        self.assertEqual(str(e), "vol-0123abcd is not 'available'.")
        e2 = self.assertRaises(states.VolumeInUse, self.check, attached, "attach")
        self.assertEqual(e2.code, "VolumeInUse")
        e3 = self.assertRaises(states.VolumeInUse, self.check, attached, "delete")
        self.assertIn("i-0123abcd", str(e3))
        self.assertRaises(states.IncorrectState, self.check, fresh, "delete")
        self.assertRaises(states.IncorrectState, self.check, attaching, "detach")
        # Force detaches what is stuck attaching
        self.assertEqual(self.check(attaching, "force_detach"),
                         (states.IN_USE, states.DETACHING))
        e4 = self.assertRaises(states.IncorrectState, self.check,
                               (states.AVAILABLE, states.DETACHED), "detach")
        self.assertEqual(str(e4), "Volume 'vol-0123abcd' is in the 'available' state.")
        self.assertRaises(KeyError, self.check, fresh, "explode")

    def test_snapshot_table(self) -> None:
        check = states.check_snapshot_transition
        self.assertEqual(check("snap-1", states.PENDING, "completed"), states.COMPLETED)
        self.assertIsNone(check("snap-1", states.COMPLETED, "completed"))
        self.assertEqual(check("snap-1", states.PENDING, "failed"), states.SNAPSHOT_ERROR)
        self.assertEqual(check("snap-1", states.COMPLETED, "delete"), states.SNAPSHOT_DELETING)
        self.assertEqual(check("snap-1", states.SNAPSHOT_ERROR, "delete"),
                         states.SNAPSHOT_DELETING)
        self.assertIsNone(check("snap-1", states.SNAPSHOT_DELETING, "delete"))
        e = self.assertRaises(states.IncorrectState, check, "snap-1", states.PENDING, "delete")
        self.assertEqual(e.code, "IncorrectState")
        self.assertEqual(check("snap-1", states.SNAPSHOT_DELETING, "delete_failed"),
                         states.SNAPSHOT_ERROR)
