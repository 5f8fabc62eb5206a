"""
The EC2 instance actions (L{InstanceController}) over the in-memory world,
with recording scheduler and compute clients: what each action writes, what
it hands on, and the EC2 errors of bad requests.
"""

from __future__ import annotations

import base64
import os
from typing import Any

import attr
from twisted.trial import unittest

from nova.api.ec2.instance_view import DescribeCache, describe_instance
from nova.api.ec2.instances import IdempotentParameterMismatch, InstanceController
from nova.api.ec2.params import Params
from nova.compute import states
from nova.compute.quota import InstanceLimitExceeded
from nova.compute.repository import InvalidInstanceIDNotFound
from nova.context import RequestContext
from nova.datastore.errors import KeyPairNotFound
from nova.datastore.records import KeyPair, new_key_pair_id
from nova.exception import InvalidParameterValue, MissingParameter
from nova.image import records as image_records
from nova.image.records import InvalidAMIIDNotFound
from nova.compute.records import InvalidUserData
from tests.support.compute import ComputeWorld
from tests.test_compute_records import a_launch, an_instance

ALICE = RequestContext(user_id="alice", project_id="proj", roles=("developer",))
MALLORY = RequestContext(user_id="mallory", project_id="other", roles=("developer",))


class Recorder:
    """Stands in for the scheduler and compute RPC clients; records every cast."""

    def __init__(self) -> None:
        self.casts: list[tuple[Any, ...]] = []

    def __getattr__(self, method: str) -> Any:
        async def record(context: Any, *args: Any) -> str:
            self.casts.append((method, *args))
            return base64.b64encode(b"console text").decode()
        return record


class InstanceActionTests(unittest.TestCase):

    def setUp(self) -> None:
        self.world = ComputeWorld(self.mktemp())
        os.makedirs(self.world.dir)
        self.scheduler = Recorder()
        self.compute = Recorder()
        self.api = InstanceController(self.world.instances, self.world.images,
                                      self.world.keypairs, self.scheduler, self.compute,
                                      self.world.clock, groups=self.world.security_groups)

    async def images(self) -> tuple[str, str, str]:
        kernel = await self.world.add_image(image_records.KERNEL)
        ramdisk = await self.world.add_image(image_records.RAMDISK)
        machine = await self.world.add_image(kernel_id=kernel.image_id,
                                             ramdisk_id=ramdisk.image_id)
        return machine.image_id, kernel.image_id, ramdisk.image_id

    async def launch(self, context: RequestContext = ALICE, **params: str) -> dict[str, Any]:
        if "ImageId" not in params:
            params["ImageId"] = (await self.images())[0]
        params.setdefault("InstanceType", "m1.tiny")
        return await self.api.run_instances(context, Params(params))

    async def test_security_groups_of_a_launch(self) -> None:
        """Groups must exist; the launch is bound to them by id; terminating unbinds."""
        from nova.network.security_group_records import InvalidGroupNotFound
        with self.assertRaises(InvalidGroupNotFound):
            await self.launch(**{"SecurityGroup.1": "nope"})
        self.assertEqual((await self.world.instances.list("proj")).instances, ())
        web = await self.world.security_groups.create("proj", "alice", "web", "web servers")
        result = await self.launch(**{"SecurityGroup.1": "default",
                                      "SecurityGroupId.1": web.group_id})
        [item] = result["instancesSet"]
        default = await self.world.security_groups.get("proj", name="default")
        self.assertEqual(item["groupSet"], [
            {"groupId": default.group_id, "groupName": "default"},
            {"groupId": web.group_id, "groupName": "web"}])
        iid = item["instanceId"]
        self.assertEqual(await self.world.security_groups.members("proj", "web"), {iid})
        await self.world.instances.update(iid, state="terminated")
        self.assertEqual(await self.world.security_groups.members("proj", "web"), set())

    async def test_run_writes_pending_and_schedules(self) -> None:
        ami, aki, ari = await self.images()
        await self.world.keypairs.create(KeyPair(
            project_id="proj", name="k", user_id="alice", fingerprint="f",
            public_key="ssh-rsa AAAA", key_type="rsa", created_at=1.0,
            key_pair_id=new_key_pair_id()))
        user_data = base64.b64encode(b"#!/bin/sh\necho hi\n").decode()
        result = await self.launch(ImageId=ami, MinCount="2", MaxCount="3", KeyName="k",
                                UserData=user_data, **{"Placement.AvailabilityZone": "nova"})
        items = result["instancesSet"]
        self.assertEqual(len(items), 3)
        self.assertEqual(result["ownerId"], "proj")
        for index, item in enumerate(items):
            self.assertEqual(item["instanceState"], {"code": 0, "name": "pending"})
            self.assertEqual((item["imageId"], item["kernelId"], item["ramdiskId"],
                              item["keyName"], item["amiLaunchIndex"]),
                             (ami, aki, ari, "k", index))
        self.assertEqual([c[0] for c in self.scheduler.casts], ["run_instance"] * 3)
        self.assertEqual(self.scheduler.casts[0][2:], ("nova", None))
        stored = await self.world.instances.get(items[0]["instanceId"])
        self.assertEqual(stored.user_data, user_data)

    async def test_max_count_trimmed_to_quota(self) -> None:
        await self.world.instances.quotas.set_quota("proj", "instances", 2)
        result = await self.launch(MinCount="1", MaxCount="5")
        self.assertEqual(len(result["instancesSet"]), 2)
        with self.assertRaises(InstanceLimitExceeded):
            await self.launch(MinCount="1", MaxCount="1")

    async def test_bad_requests(self) -> None:
        ami, aki, ari = await self.images()
        private = await self.world.add_image(owner="other", public=False)
        pending = await self.world.add_image(state=image_records.PENDING)
        cases = [
            ({"ImageId": "ami-0123456789abcdef0"}, InvalidAMIIDNotFound),
            ({"ImageId": private.image_id}, InvalidAMIIDNotFound),
            ({"ImageId": pending.image_id}, image_records.InvalidAMIIDUnavailable),
            ({"ImageId": aki}, InvalidParameterValue),
            ({"ImageId": ami, "KernelId": ari}, InvalidParameterValue),
            ({"ImageId": ami, "InstanceType": "m9.huge"}, InvalidParameterValue),
            ({"ImageId": ami, "KeyName": "nope"}, KeyPairNotFound),
            ({"ImageId": ami, "MinCount": "3", "MaxCount": "2"}, InvalidParameterValue),
            ({"ImageId": ami, "MaxCount": "0"}, InvalidParameterValue),
            ({"ImageId": ami, "UserData": base64.b64encode(b"x" * 16385).decode()},
             InvalidUserData),
            ({"ImageId": ami, "ClientToken": "x" * 65}, InvalidParameterValue),
        ]
        for params, error in cases:
            with self.assertRaises(error, msg=str(params)):
                await self.launch(**params)
        with self.assertRaises(MissingParameter):
            await self.api.run_instances(ALICE, Params({}))
        self.assertEqual((await self.world.instances.list("proj")).instances, ())

    async def test_client_token_replays(self) -> None:
        ami = (await self.images())[0]
        first = await self.launch(ImageId=ami, ClientToken="tok-1", MaxCount="2")
        again = await self.launch(ImageId=ami, ClientToken="tok-1", MaxCount="2")
        self.assertEqual(first["reservationId"], again["reservationId"])
        self.assertEqual(len(self.scheduler.casts), 2)
        with self.assertRaises(IdempotentParameterMismatch):
            await self.launch(ImageId=ami, ClientToken="tok-1", InstanceType="m1.small")

    async def test_terminate_unscheduled_and_scheduled(self) -> None:
        result = await self.launch(MaxCount="2")
        a, b = (i["instanceId"] for i in result["instancesSet"])
        await self.world.instances.update(b, host="h1")
        answer = await self.api.terminate_instances(
            ALICE, Params({"InstanceId.1": a, "InstanceId.2": b}))
        states_now = [(c["instanceId"], c["previousState"]["name"], c["currentState"]["name"])
                      for c in answer["instancesSet"]]
        self.assertEqual(states_now, [(a, "pending", "terminated"),
                                      (b, "pending", "shutting-down")])
        self.assertEqual(self.compute.casts, [("terminate_instance", "h1", b)])
        # terminating again changes nothing and casts nothing
        await self.api.terminate_instances(ALICE, Params({"InstanceId.1": a}))
        self.assertEqual(len(self.compute.casts), 1)

    async def running(self) -> str:
        result = await self.launch()
        iid = result["instancesSet"][0]["instanceId"]
        await self.world.instances.update(iid, host="h1")
        await self.world.instances.transition(iid, "spawned")
        return iid

    async def test_stop_start_reboot(self) -> None:
        iid = await self.running()
        ids = Params({"InstanceId.1": iid})
        await self.api.reboot_instances(ALICE, ids)
        stop = await self.api.stop_instances(ALICE, ids)
        self.assertEqual(stop["instancesSet"][0]["currentState"]["name"], "stopping")
        with self.assertRaises(states.IncorrectInstanceState):
            await self.api.reboot_instances(ALICE, ids)
        await self.world.instances.transition(iid, "powered_off")
        start = await self.api.start_instances(ALICE, ids)
        self.assertEqual(start["instancesSet"][0]["currentState"]["name"], "pending")
        self.assertEqual([c[0] for c in self.compute.casts],
                         ["reboot_instance", "stop_instance", "start_instance"])

    async def test_console_output(self) -> None:
        iid = await self.running()
        answer = await self.api.get_console_output(ALICE, Params({"InstanceId": iid}))
        self.assertEqual(base64.b64decode(answer["output"]), b"console text")
        self.assertEqual(self.compute.casts, [("get_console_output", "h1", iid)])

    async def test_other_projects_instances_are_not_found(self) -> None:
        iid = await self.running()
        ids = Params({"InstanceId.1": iid})
        for action in (self.api.terminate_instances, self.api.stop_instances,
                       self.api.describe_instances):
            with self.assertRaises(InvalidInstanceIDNotFound):
                await action(MALLORY, ids)
        listing = await self.api.describe_instances(MALLORY, Params({}))
        self.assertEqual(listing["reservationSet"], [])

    async def test_describe_filters_and_paging(self) -> None:
        for _ in range(3):
            await self.launch(MaxCount="2")
        everything = await self.api.describe_instances(ALICE, Params({}))
        self.assertEqual([len(r["instancesSet"]) for r in everything["reservationSet"]],
                         [2, 2, 2])
        first = await self.api.describe_instances(ALICE, Params({"MaxResults": "5"}))
        self.assertEqual(sum(len(r["instancesSet"]) for r in first["reservationSet"]), 5)
        rest = await self.api.describe_instances(
            ALICE, Params({"MaxResults": "5", "NextToken": first["nextToken"]}))
        self.assertEqual(sum(len(r["instancesSet"]) for r in rest["reservationSet"]), 1)
        self.assertIsNone(rest["nextToken"])
        one = everything["reservationSet"][1]["instancesSet"][0]["instanceId"]
        await self.world.instances.transition(one, "terminate")
        filtered = await self.api.describe_instances(ALICE, Params({
            "Filter.1.Name": "instance-state-name", "Filter.1.Value.1": "shutting-down"}))
        self.assertEqual([i["instanceId"] for r in filtered["reservationSet"]
                          for i in r["instancesSet"]], [one])

    async def test_describe_instance_attribute(self) -> None:
        user_data = base64.b64encode(b"hello").decode()
        result = await self.launch(UserData=user_data)
        iid = result["instancesSet"][0]["instanceId"]

        async def attribute(name: str) -> Any:
            answer = await self.api.describe_instance_attribute(
                ALICE, Params({"InstanceId": iid, "Attribute": name}))
            return answer[name]
        self.assertEqual(await attribute("instanceType"), {"value": "m1.tiny"})
        self.assertEqual(await attribute("userData"), {"value": user_data})
        self.assertTrue((await attribute("kernel"))["value"].startswith("aki-"))
        with self.assertRaises(InvalidParameterValue):
            await attribute("sriovNetSupport")


class DescribeCacheTests(unittest.TestCase):

    def test_unchanged_records_reuse_their_item(self) -> None:
        cache = DescribeCache(size=2)
        first, second, third = an_instance(), an_instance(), an_instance()
        item = cache.describe(first, False)
        self.assertEqual(item, describe_instance(first))
        self.assertIs(cache.describe(first, False), item)
        self.assertIsNot(cache.describe(first, True), item)   # admins see the host
        cache.describe(second, False)
        cache.describe(third, False)                          # evicts the oldest
        self.assertIsNot(cache.describe(first, False), item)
        changed = attr.evolve(first, state="running")
        self.assertEqual(cache.describe(changed, False)["instanceState"]["name"], "running")

    async def test_repository_hands_out_one_object_per_unchanged_record(self) -> None:
        world = ComputeWorld(self.mktemp())
        reservation, instances = a_launch(2, created_at=world.clock.seconds())
        await world.instances.create_reservation(reservation, instances)
        one = (await world.instances.list("proj")).instances
        two = (await world.instances.list("proj")).instances
        self.assertEqual([a is b for a, b in zip(one, two)], [True, True])
        changed = one[0].instance_id
        await world.instances.update(changed, host="h9")
        three = (await world.instances.list("proj")).instances
        self.assertEqual((three[0] is one[0], three[1] is one[1]), (False, True))
        self.assertEqual((three[0].instance_id, three[0].host), (changed, "h9"))
