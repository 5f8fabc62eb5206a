"""
L{NetworkRepository}, against the in-memory datastore and against Redis at
127.0.0.1:6379 (the harnesses of the datastore contract tests).
"""

from __future__ import annotations

from twisted.trial import unittest

from nova.datastore import keys
from nova.datastore.interfaces import IDatastore
from nova.exception import InvalidParameterValue
from nova.network.errors import InvalidNetworkRange, NetworkNotFound, NoMoreNetworks
from nova.network.networks import FLAT, VLAN, NetworkRepository
from tests.test_datastore_contract import MemoryHarness, RedisHarness, run
from tests.test_datastore_repositories import RepositoryMixin, _InterleavingStore


class NetworkRepositoryMixin(RepositoryMixin):

    def repo(self, store: IDatastore | None = None) -> NetworkRepository:
        return NetworkRepository(store or self.store, self.clock)

    async def test_create_networks(self) -> None:
        self.clock.advance(42)
        made = await self.repo().create_networks("10.0.0.0/16", 3, 256, 100)
        self.assertEqual([(n.network_id, n.cidr, n.vlan, n.bridge) for n in made],
                         [(1, "10.0.0.0/24", 100, "novabr100"),
                          (2, "10.0.1.0/24", 101, "novabr101"),
                          (3, "10.0.2.0/24", 102, "novabr102")])
        self.assertEqual(await self.repo().list(), made)
        self.assertEqual(await self.repo().get(2), made[1])
        self.assertEqual(made[0].created_at, 42.0)
        self.assertEqual(await self.repo().free_addresses(1), 252)
        pool = await self.store.smembers(keys.fixed_ip_pool(3))
        self.assertEqual(pool, set(made[2].allocatable()))
        for reserved in ("10.0.2.0", "10.0.2.1", "10.0.2.2", "10.0.2.255"):
            self.assertNotIn(reserved, pool)
        self.assertEqual(await self.store.smembers(keys.networks_free()), {"1", "2", "3"})
        # ids continue after earlier networks
        more = await self.repo().create_networks("10.1.0.0/16", 1, 16, 200)
        self.assertEqual(more[0].network_id, 4)
        await self.assertFails(NetworkNotFound, self.repo().get(99))

    async def test_refusals_write_nothing(self) -> None:
        repo = self.repo()
        await repo.create_networks("10.0.0.0/16", 2, 256, 100)
        for args, words in [
                (("10.0.1.0/24", 1, 256, 300), "overlaps network 2 (10.0.1.0/24)"),
                (("10.0.0.0/8", 1, 256, 300), "overlaps network 1"),
                (("10.1.0.0/16", 2, 256, 101), "VLAN 101 is already used"),
                (("10.1.0.0/16", 2, 256, 4094), "out of range"),
                (("10.1.0.0/16", 2, 96, 300), "power of two"),
                (("10.1.0.0/16", 2, 4, 300), "at least 8"),
                (("10.1.0.0/30", 1, 8, 300), "larger than"),
                (("10.1.0.0/24", 9, 32, 300), "holds 8 network(s)"),
        ]:
            e = await self.assertFails(InvalidNetworkRange, repo.create_networks(*args))
            self.assertIsInstance(e, InvalidParameterValue)
            self.assertIn(words, str(e))
        self.assertEqual(len(await repo.list()), 2)
        self.assertFalse(await self.store.exists(keys.fixed_ip_pool(3)))
        self.assertEqual(await self.store.get(keys.network_counter()), "2")

    async def test_network_for_project(self) -> None:
        repo = self.repo()
        await repo.create_networks("10.0.0.0/16", 2, 256, 100)
        mine = await repo.network_for_project("alpha")
        self.assertEqual((mine.network_id, mine.project_id), (1, "alpha"))
        self.assertEqual(await repo.network_for_project("alpha"), mine)
        self.assertEqual(await repo.network_for(VLAN, "alpha"), mine)
        theirs = await repo.network_for_project("beta")
        self.assertEqual((theirs.network_id, theirs.project_id), (2, "beta"))
        e = await self.assertFails(NoMoreNetworks, repo.network_for_project("gamma"))
        self.assertEqual(e.code, "InsufficientAddressCapacity")  # type: ignore[attr-defined]
        self.assertIn("nova-manage network create", str(e))
        self.assertEqual(await self.store.smembers(keys.networks_free()), set())

    async def test_concurrent_first_use_of_one_project(self) -> None:
        """Two processes, worst interleaving: one network for the project."""
        await self.repo().create_networks("10.0.0.0/16", 4, 256, 100)
        other = await self.make_client()  # type: ignore[attr-defined]
        a = NetworkRepository(self.interleaving(), self.clock)
        b = NetworkRepository(self.interleaving_of(other), self.clock)
        got = await self.settle([run(r.network_for_project("alpha"))
                                 for r in (a, b, a, b)])
        self.assertEqual({n.network_id for n in got}, {1})
        self.assertEqual(await self.store.smembers(keys.networks_free()), {"2", "3", "4"})

    async def test_concurrent_first_use_of_many_projects(self) -> None:
        """Projects racing never share a network, and every one gets one."""
        await self.repo().create_networks("10.0.0.0/16", 6, 256, 100)
        other = await self.make_client()  # type: ignore[attr-defined]
        a, b = self.repo(), self.repo(other)
        got = await self.settle([run((a, b)[i % 2].network_for_project(f"p{i}"))
                                 for i in range(6)])
        self.assertEqual(sorted(n.network_id for n in got), [1, 2, 3, 4, 5, 6])
        for i, net in enumerate(got):
            self.assertEqual(net.project_id, f"p{i}")
            self.assertEqual(await self.repo().network_for_project(f"p{i}"), net)

    async def test_flat_network(self) -> None:
        repo = self.repo()
        await self.assertFails(NetworkNotFound, repo.flat_network())
        await self.assertFails(InvalidNetworkRange,
                               repo.create_networks("192.168.0.0/24", 1, 256, None))
        flat, = await repo.create_networks("192.168.0.0/24", 1, 256, None, bridge="br100")
        self.assertEqual((flat.vlan, flat.bridge), (None, "br100"))
        self.assertEqual(await repo.network_for(FLAT, "anyone"), flat)
        self.assertEqual(await repo.network_for(FLAT, "someone-else"), flat)
        # a flat network is never handed to a project
        await self.assertFails(NoMoreNetworks, repo.network_for_project("alpha"))

    async def test_set_host_first_wins(self) -> None:
        repo = self.repo()
        await repo.create_networks("10.0.0.0/24", 1, 256, 100)
        self.assertEqual((await repo.set_host(1, "net1")).host, "net1")
        self.assertEqual((await repo.set_host(1, "net2")).host, "net1")
        await self.assertFails(NetworkNotFound, repo.set_host(5, "net1"))

    def interleaving_of(self, store: IDatastore) -> IDatastore:
        return _InterleavingStore(store, self.pause)  # type: ignore[return-value]


class MemoryNetworkRepositoryTests(MemoryHarness, NetworkRepositoryMixin, unittest.TestCase):
    """In memory."""


class RedisNetworkRepositoryTests(RedisHarness, NetworkRepositoryMixin, unittest.TestCase):
    """Against Redis."""
