"""
Quotas: the RunInstances rule (pure), and quota overrides, usage and the
race-free launch check against the in-memory datastore and Redis.
"""

from __future__ import annotations

from typing import Any

from twisted.trial import unittest

from nova.compute import instance_types
from nova.compute.quota import (
    DEFAULT_QUOTAS, QUOTA_NAMES, InstanceLimitExceeded, QuotaRepository, how_many_fit)
from nova.compute.repository import InstanceRepository
from nova.exception import ClientError, InvalidParameterValue
from tests.test_compute_records import a_launch
from tests.test_datastore_contract import MemoryHarness, RedisHarness, run
from tests.test_datastore_repositories import RepositoryMixin

TINY = instance_types.get("m1.tiny")
XLARGE = instance_types.get("m1.xlarge")


def usage(**used: int) -> dict[str, int]:
    """@return: a whole usage hash: every quota name, 0 unless given."""
    return {**dict.fromkeys(QUOTA_NAMES, 0), **used}


class HowManyFitTests(unittest.TestCase):

    def test_all_fit(self) -> None:
        self.assertEqual(how_many_fit(DEFAULT_QUOTAS, {}, TINY, 1, 10), 10)

    def test_as_many_as_fit(self) -> None:
        used = {"instances": 7, "cores": 7, "ram_mb": 7 * 512}
        self.assertEqual(how_many_fit(DEFAULT_QUOTAS, used, TINY, 1, 10), 3)
        self.assertEqual(how_many_fit(DEFAULT_QUOTAS, used, TINY, 3, 10), 3)

    def test_cores_and_ram_bind(self) -> None:
        self.assertEqual(how_many_fit(DEFAULT_QUOTAS, {}, XLARGE, 1, 5), 2)  # 20 cores / 8
        limits = dict(DEFAULT_QUOTAS, ram_mb=1500)
        self.assertEqual(how_many_fit(limits, {}, TINY, 1, 5), 2)

    def test_min_count_not_met(self) -> None:
        used = {"instances": 9}
        e = self.assertRaises(InstanceLimitExceeded, how_many_fit,
                              DEFAULT_QUOTAS, used, TINY, 2, 4)
        self.assertIsInstance(e, ClientError)
        self.assertEqual((e.code, e.status), ("InstanceLimitExceeded", 400))
        self.assertIn("1 more", str(e))
        # over-used (a quota lowered below usage) fits nothing, never a negative count
        self.assertRaises(InstanceLimitExceeded, how_many_fit,
                          DEFAULT_QUOTAS, {"instances": 12}, TINY, 1, 1)

    def test_bad_counts(self) -> None:
        self.assertRaises(InvalidParameterValue, how_many_fit, DEFAULT_QUOTAS, {}, TINY, 0, 1)
        self.assertRaises(InvalidParameterValue, how_many_fit, DEFAULT_QUOTAS, {}, TINY, 3, 2)


class QuotaMixin(RepositoryMixin):

    def repos(self, interleaved: bool = False) -> tuple[InstanceRepository, QuotaRepository]:
        store = self.interleaving() if interleaved else self.store
        quotas = QuotaRepository(store)
        return InstanceRepository(store, self.clock, quotas), quotas

    async def test_defaults_and_overrides(self) -> None:
        _, quotas = self.repos()
        self.assertEqual(await quotas.get_quotas("proj"),
                         {"instances": 10, "cores": 20, "ram_mb": 51200, "floating_ips": 10,
                          "volumes": 10, "gigabytes": 1000})
        after = await quotas.set_quota("proj", "cores", 64)
        self.assertEqual(after["cores"], 64)
        self.assertEqual(await quotas.get_quotas("proj"), {**DEFAULT_QUOTAS, "cores": 64})
        self.assertEqual((await quotas.get_quotas("other"))["cores"], 20)
        self.assertEqual((await quotas.set_quota("proj", "cores", None))["cores"], 20)
        for name, value in [("gpus", 1), ("cores", -1), ("cores", "9"), ("cores", True)]:
            await self.assertFails(InvalidParameterValue, quotas.set_quota("proj", name, value))
        self.assertEqual(await quotas.get_quotas("proj"), dict(DEFAULT_QUOTAS))

    async def test_custom_defaults(self) -> None:
        quotas = QuotaRepository(self.store, {"instances": 2, "cores": 4, "ram_mb": 1024,
                                              "floating_ips": 1, "volumes": 1,
                                              "gigabytes": 5})
        self.assertEqual((await quotas.get_quotas("proj"))["instances"], 2)
        self.assertRaises(ValueError, QuotaRepository, self.store, {"instances": 2})

    async def test_launch_counts_usage_and_fits(self) -> None:
        instances, quotas = self.repos()
        first = await instances.create_reservation(*a_launch(4), min_count=1)
        self.assertEqual(len(first.instances), 4)
        self.assertEqual(await quotas.get_usage("proj"),
                         usage(instances=4, cores=4, ram_mb=2048))
        reservation, asked = a_launch(8)
        second = await instances.create_reservation(reservation, asked, min_count=2)
        self.assertEqual(list(second.instances), asked[:6])
        self.assertEqual(second.reservation.instance_ids,
                         tuple(i.instance_id for i in asked[:6]))
        self.assertEqual(await instances.get_reservation(reservation.reservation_id),
                         second.reservation)
        await self.assertFails(InstanceLimitExceeded,
                               instances.create_reservation(*a_launch(1)))
        self.assertEqual(len((await instances.list("proj")).instances), 10)
        # another project has its own quota
        self.assertEqual(len((await instances.create_reservation(
            *a_launch(3, project_id="p2"))).instances), 3)

    async def test_min_count_failure_writes_nothing(self) -> None:
        instances, quotas = self.repos()
        await quotas.set_quota("proj", "instances", 3)
        reservation, asked = a_launch(5, client_token="t")
        e = await self.assertFails(InstanceLimitExceeded,
                                   instances.create_reservation(reservation, asked, min_count=4))
        self.assertEqual(e.code, "InstanceLimitExceeded")  # type: ignore[attr-defined]
        self.assertEqual(sorted(await self.store.scan("*")),
                         sorted(quotas.watch_keys("proj")[:1]))  # the override only

    async def test_termination_frees_quota(self) -> None:
        instances, quotas = self.repos()
        launched = (await instances.create_reservation(*a_launch(10))).instances
        await self.assertFails(InstanceLimitExceeded, instances.create_reservation(*a_launch(1)))
        await instances.transition(launched[0].instance_id, "terminate")
        # shutting down still counts: the guest still holds its resources
        self.assertEqual((await quotas.get_usage("proj"))["instances"], 10)
        await instances.transition(launched[0].instance_id, "destroyed")
        self.assertEqual(await quotas.get_usage("proj"),
                         usage(instances=9, cores=9, ram_mb=9 * 512))
        self.assertEqual(len((await instances.create_reservation(*a_launch(1))).instances), 1)
        # purging a terminated instance gives back nothing more
        self.clock.advance(7200)
        self.assertEqual(await instances.purge_terminated(), 1)
        self.assertEqual((await quotas.get_usage("proj"))["instances"], 10)

    async def test_type_change_moves_usage(self) -> None:
        instances, quotas = self.repos()
        [inst] = (await instances.create_reservation(*a_launch(1))).instances
        await instances.update(inst.instance_id, instance_type="m1.medium")
        self.assertEqual(await quotas.get_usage("proj"),
                         usage(instances=1, cores=2, ram_mb=4096))

    async def _race(self, min_count: int) -> list[Any]:
        instances, _ = self.repos(interleaved=True)
        attempts = [run(instances.create_reservation(*a_launch(6), min_count=min_count))
                    for _ in range(2)]
        for d in attempts:
            d.addErrback(lambda f: f.trap(InstanceLimitExceeded) and None)
        return await self.settle(attempts)

    async def test_concurrent_launches_as_many_as_fit(self) -> None:
        outcomes = await self._race(min_count=1)
        self.assertEqual(sorted(len(o.instances) for o in outcomes), [4, 6])
        instances, quotas = self.repos()
        self.assertEqual(len((await instances.list("proj")).instances), 10)
        self.assertEqual((await quotas.get_usage("proj"))["instances"], 10)

    async def test_concurrent_launches_min_count(self) -> None:
        outcomes = await self._race(min_count=6)
        self.assertEqual(sorted(o is None for o in outcomes), [False, True])
        instances, quotas = self.repos()
        self.assertEqual(len((await instances.list("proj")).instances), 6)
        self.assertEqual((await quotas.get_usage("proj"))["instances"], 6)


class MemoryQuotaTests(MemoryHarness, QuotaMixin, unittest.TestCase):
    pass


class RedisQuotaTests(RedisHarness, QuotaMixin, unittest.TestCase):
    pass
