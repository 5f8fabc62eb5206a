"""
L{InstanceRepository}, against the in-memory datastore and against Redis at
127.0.0.1:6379 (the harnesses of the datastore contract tests).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import attr
from twisted.trial import unittest

from nova.compute import states
from nova.compute.records import Instance, new_instance_id
from nova.compute.repository import (
    TERMINATED_VISIBLE_SECONDS, InstanceRepository, InvalidInstanceIDMalformed,
    InvalidInstanceIDNotFound)
from nova.datastore import keys
from nova.utils.filters import wildcard
from nova.utils.paging import InvalidPaginationToken
from nova.datastore.interfaces import IDatastore
from nova.exception import InvalidParameterValue, NotFound
from tests.test_compute_records import a_launch
from tests.test_datastore_contract import MemoryHarness, RedisHarness, run
from tests.test_datastore_repositories import RepositoryMixin


class _CountingStore:
    """A datastore that counts the commands sent through it."""

    def __init__(self, store: IDatastore) -> None:
        self._store = store
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        self.calls[name] += 1
        return getattr(self._store, name)


class WildcardTests(unittest.TestCase):

    def test_wildcards(self) -> None:
        self.assertTrue(wildcard("m1.*").match("m1.small"))
        self.assertFalse(wildcard("m1.*").match("xm1.small"))
        self.assertTrue(wildcard("i-?bc").match("i-abc"))
        self.assertFalse(wildcard("i-?bc").match("i-bc"))
        self.assertTrue(wildcard(r"a\*b").match("a*b"))
        self.assertFalse(wildcard(r"a\*b").match("axb"))
        self.assertFalse(wildcard("m1.small").match("m1xsmall"))  # dots are literal
        self.assertFalse(wildcard("run").match("running"))


class InstanceRepositoryMixin(RepositoryMixin):

    def repo(self, store: IDatastore | None = None) -> InstanceRepository:
        return InstanceRepository(store or self.store, self.clock)

    async def launch(self, repo: InstanceRepository, n: int = 1, **kw: Any) -> list[Instance]:
        reservation, instances = a_launch(n, **kw)
        return list((await repo.create_reservation(reservation, instances)).instances)

    async def test_create_get(self) -> None:
        repo = self.repo()
        reservation, instances = a_launch(3)
        result = await repo.create_reservation(reservation, instances)
        self.assertEqual((result.reservation, list(result.instances), result.replayed),
                         (reservation, instances, False))
        for inst in instances:
            self.assertEqual(await repo.get(inst.instance_id), inst)
        self.assertEqual(await repo.get_reservation(reservation.reservation_id), reservation)
        ids = [i.instance_id for i in reversed(instances)]
        self.assertEqual(await repo.get_many(ids + ids[:1]), list(reversed(instances)))

    async def test_missing_and_malformed(self) -> None:
        repo = self.repo()
        missing = new_instance_id()
        e = await self.assertFails(InvalidInstanceIDNotFound, repo.get(missing))
        self.assertIsInstance(e, NotFound)
        self.assertEqual((e.code, e.status), ("InvalidInstanceID.NotFound", 400))  # type: ignore
        self.assertIn(missing, str(e))
        [inst] = await self.launch(repo)
        e = await self.assertFails(InvalidInstanceIDNotFound,
                                   repo.get_many([inst.instance_id, missing]))
        self.assertIn(missing, str(e))
        e = await self.assertFails(InvalidInstanceIDMalformed, repo.get("i-nothex"))
        self.assertEqual(e.code, "InvalidInstanceID.Malformed")  # type: ignore[attr-defined]
        await self.assertFails(InvalidInstanceIDNotFound, repo.update(missing, host="h"))
        await self.assertFails(InvalidInstanceIDNotFound, repo.transition(missing, "reboot"))

    async def test_client_token_returns_first_launch(self) -> None:
        repo = self.repo()
        first = await repo.create_reservation(*a_launch(2, client_token="tok-1"))
        again = await repo.create_reservation(*a_launch(2, client_token="tok-1"))
        self.assertTrue(again.replayed)
        self.assertEqual((again.reservation, again.instances),
                         (first.reservation, first.instances))
        self.assertEqual(len((await repo.list("proj")).instances), 2)
        self.assertEqual((await repo.quotas.get_usage("proj"))["instances"], 2)
        # the token is per project, and another token is another launch
        other = await repo.create_reservation(*a_launch(1, project_id="p2", client_token="tok-1"))
        self.assertFalse(other.replayed)
        self.assertFalse((await repo.create_reservation(
            *a_launch(1, client_token="tok-2"))).replayed)

    async def test_concurrent_client_token_one_launch(self) -> None:
        repo = self.repo(self.interleaving())
        attempts = [run(repo.create_reservation(*a_launch(2, client_token="same")))
                    for _ in range(4)]
        results = await self.settle(attempts)
        self.assertEqual(len({r.reservation.reservation_id for r in results}), 1)
        self.assertEqual(sorted(r.replayed for r in results), [False, True, True, True])
        self.assertEqual(len((await self.repo().list("proj")).instances), 2)
        self.assertEqual((await repo.quotas.get_usage("proj"))["instances"], 2)

    async def test_list_order_and_scope(self) -> None:
        repo = self.repo()
        late = await self.launch(repo, 2, created_at=3000.0)
        early = await self.launch(repo, 1, created_at=1000.0)
        other = await self.launch(repo, 1, project_id="other", created_at=2000.0)
        late.sort(key=lambda i: i.instance_id)
        self.assertEqual(list((await repo.list("proj")).instances), early + late)
        self.assertEqual(list((await repo.list(None)).instances), early + other + late)
        self.assertEqual((await repo.list("nobody")).instances, ())

    async def test_filters(self) -> None:
        repo = self.repo()
        small = await self.launch(repo, 2, instance_type="m1.small", image_id="ami-aaa")
        tiny = await self.launch(repo, 1, instance_type="m1.tiny", key_name=None,
                                 availability_zone="zone2")
        await repo.transition(small[0].instance_id, "spawned")

        async def ids(**filters: Any) -> set[str]:
            page = await repo.list("proj", filters=filters and {
                k.replace("_", "-"): v for k, v in filters.items()})
            return {i.instance_id for i in page.instances}

        s0, s1, t0 = small[0].instance_id, small[1].instance_id, tiny[0].instance_id
        self.assertEqual(await ids(instance_type=["m1.small"]), {s0, s1})
        self.assertEqual(await ids(instance_type=["m1.*"]), {s0, s1, t0})
        self.assertEqual(await ids(instance_state_name=["running"]), {s0})
        self.assertEqual(await ids(instance_state_name=["pending", "running"]), {s0, s1, t0})
        self.assertEqual(await ids(instance_state_code=["16"]), {s0})
        self.assertEqual(await ids(instance_state_name=["pending"], image_id=["ami-aaa"]), {s1})
        self.assertEqual(await ids(key_name=["*"]), {s0, s1})  # no key never matches
        self.assertEqual(await ids(availability_zone=["zone?"]), {t0})
        self.assertEqual(await ids(reservation_id=[small[0].reservation_id]), {s0, s1})
        self.assertEqual(await ids(instance_id=[s1, t0, "i-nonsense"]), {s1, t0})
        self.assertEqual(await ids(instance_id=[s1[:-3] + "*"]), {s1})
        e = await self.assertFails(InvalidParameterValue, repo.list("proj", {"colour": ["x"]}))
        self.assertIn("'colour'", str(e))

    async def test_paging(self) -> None:
        repo = self.repo()
        for t in range(7):
            await self.launch(repo, 1, created_at=1000.0 + t)
        everything = list((await repo.list("proj")).instances)
        self.assertIsNone((await repo.list("proj")).next_token)
        pages, token = [], None
        while True:
            page = await repo.list("proj", max_results=3, next_token=token)
            pages.append(list(page.instances))
            token = page.next_token
            if token is None:
                break
            # a launch between pages lands at the end, not in a page already seen
            if len(pages) == 1:
                newer = await self.launch(repo, 1, created_at=5000.0)
        self.assertEqual([len(p) for p in pages], [3, 3, 2])
        self.assertEqual(sum(pages, []), everything + newer)
        # exactly one full page: no token for an empty next page
        page = await repo.list("proj", max_results=8)
        self.assertEqual((len(page.instances), page.next_token), (8, None))
        # paging a filtered listing
        filtered = await repo.list("proj", {"instance-state-name": ["pending"]}, max_results=5)
        self.assertEqual(len(filtered.instances), 5)
        rest = await repo.list("proj", {"instance-state-name": ["pending"]},
                               next_token=filtered.next_token)
        self.assertEqual(list(filtered.instances + rest.instances), everything + newer)
        await self.assertFails(InvalidPaginationToken, repo.list("proj", next_token="garbage"))
        await self.assertFails(InvalidParameterValue, repo.list("proj", max_results=0))

    async def test_listing_is_one_index_read_and_one_mget(self) -> None:
        counting = _CountingStore(self.store)
        repo = self.repo(self.store)
        await repo.quotas.set_quota("proj", "instances", 50)
        await repo.quotas.set_quota("proj", "cores", 50)
        for _ in range(5):
            await self.launch(repo, 10)
        listed = await self.repo(counting).list("proj")  # type: ignore[arg-type]
        self.assertEqual(len(listed.instances), 50)
        self.assertEqual(counting.calls, Counter({"zrangebyscore_withscores": 1, "mget": 1}))

    async def test_update_and_host_index(self) -> None:
        repo = self.repo()
        a, b = await self.launch(repo, 2)
        self.clock.advance(50)
        moved = await repo.update(a.instance_id, host="node1", private_ip="10.0.0.2")
        self.assertEqual((moved.host, moved.private_ip, moved.updated_at), ("node1", "10.0.0.2", 50))
        await repo.update(b.instance_id, host="node1")
        self.assertEqual([i.instance_id for i in await repo.on_host("node1")],
                         sorted([a.instance_id, b.instance_id]))
        await repo.update(b.instance_id, host="node2")
        self.assertEqual([i.instance_id for i in await repo.on_host("node1")], [a.instance_id])
        self.assertEqual([i.host for i in await repo.on_host("node2")], ["node2"])
        self.assertEqual(await repo.on_host("node3"), [])
        self.assertRaises(ValueError, repo._evolve, a, {"project_id": "theirs"})
        e = await self.assertFails(ValueError, repo.update(a.instance_id, project_id="theirs"))
        self.assertIn("project_id", str(e))

    async def test_update_if_only_in_the_state_read(self) -> None:
        repo = self.repo()
        [inst] = await self.launch(repo)
        self.assertIsNone(await repo.update_if(inst.instance_id, states.RUNNING,
                                               state=states.STOPPED))
        self.assertEqual((await repo.get(inst.instance_id)).state, states.PENDING)
        written = await repo.update_if(inst.instance_id, states.PENDING, host="node1")
        self.assertEqual((written.state, written.host), (states.PENDING, "node1"))

    async def test_transitions(self) -> None:
        repo = self.repo()
        [inst] = await self.launch(repo)
        iid = inst.instance_id
        e = await self.assertFails(states.IncorrectInstanceState, repo.transition(iid, "reboot"))
        self.assertEqual(e.code, "IncorrectInstanceState")  # type: ignore[attr-defined]
        self.clock.advance(10)
        before, running = await repo.transition(iid, "spawned", power_state=1)
        self.assertEqual((before.state, running.state, running.launched_at), ("pending", "running", 10))
        _, stopping = await repo.transition(iid, "stop")
        self.assertEqual(stopping.state, "stopping")
        same = await repo.transition(iid, "stop")
        self.assertEqual(same, (stopping, stopping))
        await repo.transition(iid, "powered_off")
        self.clock.advance(10)
        _, pending = await repo.transition(iid, "start")
        self.assertEqual((pending.state, pending.launched_at), ("pending", 10))
        await repo.transition(iid, "terminate", state_reason=states.USER_INITIATED_SHUTDOWN)
        _, gone = await repo.transition(iid, "destroyed")
        self.assertEqual((gone.state, gone.terminated_at, gone.state_reason),
                         ("terminated", 20, states.USER_INITIATED_SHUTDOWN))
        self.assertEqual(await repo.transition(iid, "terminate"), (gone, gone))
        await self.assertFails(states.IncorrectInstanceState, repo.transition(iid, "start"))
        self.assertEqual(await repo.get(iid), gone)

    async def test_concurrent_transitions_checked_atomically(self) -> None:
        [inst] = await self.launch(self.repo())
        await self.repo().transition(inst.instance_id, "spawned")
        repo = self.repo(self.interleaving())
        stop = run(repo.transition(inst.instance_id, "stop"))
        terminate = run(repo.transition(inst.instance_id, "terminate"))
        stop.addErrback(lambda f: f.trap(states.IncorrectInstanceState) and None)
        outcomes = await self.settle([stop, terminate])
        self.assertEqual((await repo.get(inst.instance_id)).state, "shutting-down")
        if outcomes[0] is not None:  # stop went first, terminate saw "stopping"
            self.assertEqual(outcomes[1][0].state, "stopping")

    async def test_terminated_visible_for_an_hour(self) -> None:
        repo = self.repo()
        self.clock.advance(1000)
        keep, doomed = await self.launch(repo, 2, client_token="tok")
        await repo.transition(doomed.instance_id, "terminate")
        await repo.transition(doomed.instance_id, "destroyed")
        self.clock.advance(TERMINATED_VISIBLE_SECONDS)
        self.assertEqual((await repo.get(doomed.instance_id)).state, "terminated")
        self.assertEqual(await repo.purge_terminated(), 0)
        self.clock.advance(1)
        await self.assertFails(InvalidInstanceIDNotFound, repo.get(doomed.instance_id))
        self.assertEqual([i.instance_id for i in (await repo.list("proj")).instances],
                         [keep.instance_id])
        self.assertEqual(await repo.purge_terminated(), 1)
        self.assertEqual(await repo.purge_terminated(), 0)
        self.assertFalse(await self.store.exists(keys.instance(doomed.instance_id)))
        self.assertEqual(await self.store.zcard(keys.instances_by_time()), 1)
        self.assertEqual(await self.store.zcard(keys.instances_terminated()), 0)
        # the reservation stays while one of its instances does
        self.assertIsNotNone(await repo.get_reservation(doomed.reservation_id))
        self.assertTrue((await repo.create_reservation(*a_launch(1, client_token="tok"))).replayed)
        # ... and goes, with its client token, with the last one
        await repo.transition(keep.instance_id, "terminate")
        await repo.transition(keep.instance_id, "destroyed")
        self.assertEqual(await repo.purge_terminated(self.clock.seconds() + 3601), 1)
        self.assertIsNone(await repo.get_reservation(keep.reservation_id))
        self.assertFalse(await self.store.exists(keys.instance_client_token("proj", "tok")))
        self.assertFalse((await repo.create_reservation(*a_launch(1, client_token="tok"))).replayed)

    async def test_delete(self) -> None:
        repo = self.repo()
        [inst] = await self.launch(repo)
        inst = await repo.update(inst.instance_id, host="node1")
        self.assertTrue(await repo.delete(inst.instance_id))
        self.assertFalse(await repo.delete(inst.instance_id))
        self.assertEqual((await repo.list(None)).instances, ())
        self.assertEqual(await repo.on_host("node1"), [])
        self.assertIsNone(await repo.get_reservation(inst.reservation_id))
        self.assertEqual((await repo.quotas.get_usage("proj"))["instances"], 0)
        self.assertEqual(await self.store.scan("instance*"), [])

    async def test_bad_reservation_rejected(self) -> None:
        repo = self.repo()
        reservation, instances = a_launch(2)
        await self.assertFails(ValueError, repo.create_reservation(reservation, instances[:1]))
        mixed = [instances[0], attr.evolve(instances[1], instance_type="m1.large")]
        await self.assertFails(ValueError, repo.create_reservation(reservation, mixed))
        self.assertEqual(await self.store.scan("*"), [])


class MemoryInstanceRepositoryTests(MemoryHarness, InstanceRepositoryMixin, unittest.TestCase):
    pass


class RedisInstanceRepositoryTests(RedisHarness, InstanceRepositoryMixin, unittest.TestCase):
    pass
