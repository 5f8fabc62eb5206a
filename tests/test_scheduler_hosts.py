"""The scheduling policies: which host gets new work."""

from __future__ import annotations

import random

from twisted.trial import unittest

from nova.datastore.records import Service
from nova.exception import NotAuthorized
from nova.scheduler.hosts import (Demand, NoValidHost, chance, parse_placement, simple)

NOW = 1_000_000.0


def host(name: str, zone: str = "nova", vcpus: int = 4, used: int = 0, memory: int = 4096,
         memory_used: int = 0, age: float = 0, disabled: bool = False) -> Service:
    return Service(host=name, binary="nova-compute", topic="compute", zone=zone,
                   updated_at=NOW - age, report_count=1, disabled=disabled, started_at=0,
                   capacity={"vcpus": vcpus, "vcpus_used": used, "memory_mb": memory,
                             "memory_mb_used": memory_used})


class PolicyTests(unittest.SynchronousTestCase):
    def test_simple_picks_least_loaded(self) -> None:
        hosts = [host("a", used=3), host("b", used=1, memory_used=2048), host("c", used=1)]
        self.assertEqual(simple(hosts, Demand(vcpus=1, memory_mb=512), NOW, 60).host, "c")

    def test_full_stale_and_disabled_hosts_get_nothing(self) -> None:
        hosts = [host("full", used=4), host("stale", age=61), host("off", disabled=True),
                 host("small", memory=256), host("ok", used=2)]
        demand = Demand(vcpus=1, memory_mb=512)
        self.assertEqual(simple(hosts, demand, NOW, 60).host, "ok")
        rng = random.Random(1)
        self.assertEqual({chance(hosts, demand, NOW, 60, rng).host for _ in range(20)}, {"ok"})

    def test_chance_spreads(self) -> None:
        hosts = [host("a"), host("b"), host("c")]
        rng = random.Random(7)
        picked = {chance(hosts, Demand(vcpus=1, memory_mb=1), NOW, 60, rng).host
                  for _ in range(50)}
        self.assertEqual(picked, {"a", "b", "c"})

    def test_zone_and_forced_host(self) -> None:
        hosts = [host("a", zone="east"), host("b", zone="west", used=3), host("c", zone="west")]
        self.assertEqual(simple(hosts, Demand(vcpus=1, memory_mb=1, zone="west"), NOW, 60).host,
                         "c")
        forced = Demand(vcpus=1, memory_mb=1, zone="west", forced_host="b")
        self.assertEqual(simple(hosts, forced, NOW, 60).host, "b")

    def test_no_valid_host(self) -> None:
        error = self.assertRaises(NoValidHost, simple, [host("a", used=4)],
                                  Demand(vcpus=1, memory_mb=1), NOW, 60)
        self.assertEqual(error.code, "InsufficientInstanceCapacity")
        self.assertRaises(NoValidHost, chance, [], Demand(vcpus=1, memory_mb=1), NOW, 60,
                          random.Random())


class PlacementTests(unittest.SynchronousTestCase):
    def test_parse(self) -> None:
        self.assertEqual(parse_placement(None, False), (None, None))
        self.assertEqual(parse_placement("nova", False), ("nova", None))
        self.assertEqual(parse_placement("nova:host1", True), ("nova", "host1"))
        self.assertEqual(parse_placement(":host1", True), (None, "host1"))
        self.assertRaises(NotAuthorized, parse_placement, "nova:host1", False)
