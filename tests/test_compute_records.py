"""
Instance types, EC2 states and transitions, and the compute records
(L{Instance}, L{Reservation}): pure, no datastore.
"""

from __future__ import annotations

import base64

import attr
from twisted.trial import unittest

from nova.compute import instance_types, states
from nova.compute.records import (
    MAX_USER_DATA, Instance, InvalidUserData, Reservation, check_user_data, new_instance_id,
    new_mac_address, new_reservation_id)
from nova.datastore.errors import CorruptRecord
from nova.exception import ClientError, InvalidParameterValue
from nova.virt import power_state


def a_launch(n: int = 1, project_id: str = "proj", instance_type: str = "m1.tiny",
             created_at: float = 1000.0, client_token: str | None = None,
             **changes: object) -> tuple[Reservation, list[Instance]]:
    """@return: a reservation of C{n} fresh pending instances, as RunInstances builds it."""
    rid = new_reservation_id()
    instances = [
        Instance(**{**dict(
            instance_id=new_instance_id(), reservation_id=rid, project_id=project_id,
            user_id="alice", image_id="ami-00000001", instance_type=instance_type,
            key_name="mykey", launch_index=index, mac_address=new_mac_address(),
            client_token=client_token, created_at=created_at, updated_at=created_at),
            **changes})  # type: ignore[arg-type]
        for index in range(n)]
    reservation = Reservation(
        reservation_id=rid, project_id=project_id, user_id="alice",
        instance_ids=[i.instance_id for i in instances], client_token=client_token,
        created_at=created_at)
    return reservation, instances


def an_instance(**changes: object) -> Instance:
    """@return: one valid instance record, with C{changes}."""
    return a_launch(1, **changes)[1][0]


class InstanceTypeTests(unittest.TestCase):

    def test_2010_flavors(self) -> None:
        self.assertEqual(
            [(t.name, t.vcpus, t.memory_mb, t.root_gb)
             for t in instance_types.INSTANCE_TYPES.values()],
            [("m1.tiny", 1, 512, 0), ("m1.small", 1, 2048, 20), ("m1.medium", 2, 4096, 40),
             ("m1.large", 4, 8192, 80), ("m1.xlarge", 8, 16384, 160)])
        self.assertIn(instance_types.DEFAULT_INSTANCE_TYPE, instance_types.INSTANCE_TYPES)

    def test_frozen(self) -> None:
        t = instance_types.get("m1.large")
        self.assertRaises(attr.exceptions.FrozenInstanceError, setattr, t, "vcpus", 64)
        with self.assertRaises(TypeError):
            instance_types.INSTANCE_TYPES["m1.huge"] = t  # type: ignore[index]

    def test_unknown(self) -> None:
        e = self.assertRaises(InvalidParameterValue, instance_types.get, "m1.huge")
        self.assertEqual(str(e), "Invalid value 'm1.huge' for InstanceType")
        self.assertEqual((e.code, e.status), ("InvalidParameterValue", 400))


class StateTests(unittest.TestCase):

    def test_codes(self) -> None:
        self.assertEqual(dict(states.CODES), {
            "pending": 0, "running": 16, "shutting-down": 32, "terminated": 48,
            "stopping": 64, "stopped": 80})

    def test_allowed(self) -> None:
        check = states.check_transition
        self.assertEqual(check("i-1", states.RUNNING, "reboot"), states.RUNNING)
        self.assertEqual(check("i-1", states.RUNNING, "stop"), states.STOPPING)
        self.assertEqual(check("i-1", states.STOPPED, "start"), states.PENDING)
        for state in ("pending", "running", "stopping", "stopped"):
            self.assertEqual(check("i-1", state, "terminate"), states.SHUTTING_DOWN)
        self.assertEqual(check("i-1", states.PENDING, "spawned"), states.RUNNING)
        self.assertEqual(check("i-1", states.STOPPING, "powered_off"), states.STOPPED)
        self.assertEqual(check("i-1", states.SHUTTING_DOWN, "destroyed"), states.TERMINATED)

    def test_noop(self) -> None:
        # EC2 answers these with success and changes nothing
        self.assertIsNone(states.check_transition("i-1", states.STOPPED, "stop"))
        self.assertIsNone(states.check_transition("i-1", states.RUNNING, "start"))
        self.assertIsNone(states.check_transition("i-1", states.TERMINATED, "terminate"))

    def test_refused(self) -> None:
        for state, action in [("stopped", "reboot"), ("pending", "reboot"),
                              ("terminated", "start"), ("pending", "stop"),
                              ("terminated", "reboot"), ("shutting-down", "start")]:
            e = self.assertRaises(states.IncorrectInstanceState,
                                  states.check_transition, "i-0123", state, action)
            self.assertIsInstance(e, ClientError)
            self.assertEqual((e.code, e.status), ("IncorrectInstanceState", 400))
            self.assertIn("'i-0123'", str(e))

    def test_every_transition_targets_a_state(self) -> None:
        for t in states.TRANSITIONS.values():
            self.assertTrue({t.to} | t.allowed_from | t.noop_from <= states.ALL_STATES)
            self.assertFalse(t.allowed_from & t.noop_from)

    def test_reasons(self) -> None:
        self.assertEqual(states.USER_INITIATED_SHUTDOWN,
                         ("Client.UserInitiatedShutdown",
                          "Client.UserInitiatedShutdown: User initiated shutdown"))
        self.assertEqual(states.SERVER_INTERNAL_ERROR[0], "Server.InternalError")
        self.assertEqual(states.INSUFFICIENT_CAPACITY[0], "Server.InsufficientInstanceCapacity")

    def test_reconcile(self) -> None:
        r = states.reconciled_state
        self.assertIsNone(r("running", power_state.RUNNING))
        self.assertEqual(r("running", power_state.SHUTOFF), "stopped")
        self.assertEqual(r("running", power_state.CRASHED), "stopped")
        self.assertEqual(r("stopped", power_state.RUNNING), "running")
        self.assertEqual(r("running", None), "stopped")  # the domain vanished
        self.assertIsNone(r("stopped", None))
        self.assertEqual(r("stopping", power_state.SHUTOFF), "stopped")
        self.assertIsNone(r("stopping", power_state.RUNNING))
        self.assertIsNone(r("running", power_state.NOSTATE))
        for busy in ("pending", "shutting-down", "terminated"):
            self.assertIsNone(r(busy, power_state.SHUTOFF))
            self.assertIsNone(r(busy, None))


class RecordTests(unittest.TestCase):

    def test_ids(self) -> None:
        self.assertRegex(new_instance_id(), r"^i-[0-9a-f]{17}$")
        self.assertRegex(new_reservation_id(), r"^r-[0-9a-f]{17}$")
        self.assertNotEqual(new_instance_id(), new_instance_id())
        self.assertRegex(new_mac_address(), r"^02:16:3e(:[0-9a-f]{2}){3}$")

    def test_round_trip(self) -> None:
        reservation, [inst] = a_launch(client_token="tok")
        full = attr.evolve(inst, state="terminated", state_reason=states.USER_INITIATED_SHUTDOWN,
                           host="node1", private_ip="10.0.0.3", launched_at=5,
                           terminated_at=6.5, user_data=base64.b64encode(b"#!/bin/sh").decode(),
                           security_groups=["default", "web"], power_state=5)
        for record in (reservation, inst, full):
            again = type(record).from_json(record.to_json())
            self.assertEqual(again, record)
        self.assertEqual(full.state_code, 48)
        self.assertEqual((full.vcpus, full.memory_mb), (1, 512))
        self.assertEqual(reservation.instance_ids, (inst.instance_id,))

    def test_frozen(self) -> None:
        inst = an_instance()
        self.assertRaises(attr.exceptions.FrozenInstanceError, setattr, inst, "state", "running")

    def test_bad_fields(self) -> None:
        for changes in [dict(instance_id="i-xyz"), dict(state="exploded"),
                        dict(instance_type="m9.huge"), dict(state_reason=("only-code",)),
                        dict(launch_index=True), dict(user_data="not base64!")]:
            self.assertRaises((TypeError, ValueError), an_instance, **changes)
        data = an_instance().to_dict()
        data["state"] = "exploded"
        self.assertRaises(CorruptRecord, Instance.from_dict, data)
        self.assertRaises(CorruptRecord, Reservation.from_json, "[1,2]")

    def test_user_data_limit(self) -> None:
        at_limit = base64.b64encode(b"x" * MAX_USER_DATA).decode()
        self.assertEqual(check_user_data(at_limit), at_limit)
        an_instance(user_data=at_limit)
        over = base64.b64encode(b"x" * (MAX_USER_DATA + 1)).decode()
        e = self.assertRaises(InvalidUserData, check_user_data, over)
        self.assertEqual(e.code, "InvalidParameterValue")
        self.assertEqual(str(e), "User data is limited to 16384 bytes")
        self.assertRaises(InvalidUserData, check_user_data, "@@@")
