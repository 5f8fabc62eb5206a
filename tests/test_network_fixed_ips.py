"""
L{FixedIpRepository}, against the in-memory datastore and against Redis at
127.0.0.1:6379: allocation, the DHCP lease cycle, and the proof that many
concurrent allocations through several clients never hand out an address
twice and run out cleanly.
"""

from __future__ import annotations

from twisted.trial import unittest

from nova.datastore import keys
from nova.datastore.interfaces import IDatastore
from nova.network.errors import (
    FixedIpMacMismatch, FixedIpNotFound, NetworkNotFound, NoMoreFixedIps)
from nova.network.fixed_ips import FixedIpRepository
from nova.network.networks import NetworkRepository
from nova.network.records import Network
from tests.test_datastore_contract import MemoryHarness, RedisHarness, run
from tests.test_datastore_repositories import RepositoryMixin

MAC = "02:16:3e:00:00:01"


class FixedIpRepositoryMixin(RepositoryMixin):

    def repo(self, store: IDatastore | None = None) -> FixedIpRepository:
        return FixedIpRepository(store or self.store, self.clock, lease_time=120)

    async def network(self, cidr: str = "10.0.0.0/29") -> Network:
        size = 2 ** (32 - int(cidr.split("/")[1]))
        net, = await NetworkRepository(self.store, self.clock).create_networks(
            cidr, 1, size, 100)
        return net

    async def test_allocate_until_empty(self) -> None:
        net = await self.network()  # a /29: .3 .. .6 for guests
        repo = self.repo()
        got = [await repo.allocate_fixed_ip(net.network_id, f"i-{n}", MAC) for n in range(4)]
        self.assertEqual(sorted(f.address for f in got),
                         ["10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"])
        e = await self.assertFails(NoMoreFixedIps, repo.allocate_fixed_ip(net.network_id,
                                                                           "i-9", MAC))
        self.assertIn(f"network {net.network_id}", str(e))
        self.assertEqual(e.code, "InsufficientAddressCapacity")  # type: ignore[attr-defined]
        self.assertEqual([f.address for f in await repo.list_for_network(net.network_id)],
                         ["10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"])
        self.assertEqual(await repo.list_for_instance("i-2"), [got[2]])
        self.assertEqual(await repo.get(got[0].address), got[0])
        await self.assertFails(NetworkNotFound, repo.allocate_fixed_ip(77, "i-1", MAC))

    async def test_bad_input_takes_nothing(self) -> None:
        net = await self.network()
        with self.assertRaises(ValueError):
            await self.repo().allocate_fixed_ip(net.network_id, "i-1", "not-a-mac")
        self.assertEqual(await self.store.scard(keys.fixed_ip_pool(net.network_id)), 4)

    async def test_deallocate_without_lease_frees_at_once(self) -> None:
        net = await self.network()
        repo = self.repo()
        ip = await repo.allocate_fixed_ip(net.network_id, "i-1", MAC)
        self.assertIsNone(await repo.deallocate_fixed_ip(ip.address))
        self.assertTrue(await self.store.sismember(keys.fixed_ip_pool(net.network_id),
                                                   ip.address))
        self.assertEqual(await repo.list_for_instance("i-1"), [])
        self.assertEqual(await repo.list_for_network(net.network_id), [])
        await self.assertFails(FixedIpNotFound, repo.get(ip.address))
        await self.assertFails(FixedIpNotFound, repo.deallocate_fixed_ip(ip.address))

    async def test_lease_cycle(self) -> None:
        """allocate, dnsmasq add, deallocate, dnsmasq del: back in the pool only then."""
        net = await self.network()
        repo = self.repo()
        ip = await repo.allocate_fixed_ip(net.network_id, "i-1", MAC)
        await self.assertFails(FixedIpMacMismatch,
                               repo.lease_fixed_ip(ip.address, "02:16:3e:00:00:02"))
        self.assertTrue((await repo.lease_fixed_ip(ip.address, MAC)).leased)
        # the guest's lease ends while it still holds the address: it stays
        released = await repo.release_fixed_ip(ip.address, MAC)
        self.assertEqual((released.allocated, released.leased), (True, False))
        await repo.lease_fixed_ip(ip.address, MAC)
        waiting = await repo.deallocate_fixed_ip(ip.address)
        self.assertEqual((waiting.allocated, waiting.leased), (False, True))
        pool = keys.fixed_ip_pool(net.network_id)
        self.assertFalse(await self.store.sismember(pool, ip.address))
        await self.assertFails(FixedIpMacMismatch,
                               repo.release_fixed_ip(ip.address, "02:16:3e:00:00:02"))
        self.assertIsNone(await repo.release_fixed_ip(ip.address, MAC))
        self.assertTrue(await self.store.sismember(pool, ip.address))
        await self.assertFails(FixedIpNotFound, repo.release_fixed_ip(ip.address, MAC))
        self.assertEqual(await self.store.zcard(keys.fixed_ips_releasing()), 0)

    async def test_reclaim_when_the_lease_end_is_never_reported(self) -> None:
        net = await self.network()
        repo = self.repo()
        stale = await repo.allocate_fixed_ip(net.network_id, "i-1", MAC)
        await repo.lease_fixed_ip(stale.address, MAC)
        await repo.deallocate_fixed_ip(stale.address)
        self.clock.advance(119)
        self.assertEqual(await repo.reclaim_expired(), [])
        self.clock.advance(1)
        self.assertEqual(await repo.reclaim_expired(), [stale.address])
        self.assertTrue(await self.store.sismember(keys.fixed_ip_pool(net.network_id),
                                                   stale.address))
        self.assertEqual(await repo.reclaim_expired(), [])

    async def test_repair_pool(self) -> None:
        """An address lost between SPOP and write (a crash) comes back; used ones do not."""
        net = await self.network()
        repo = self.repo()
        used = await repo.allocate_fixed_ip(net.network_id, "i-1", MAC)
        lost = await self.store.spop(keys.fixed_ip_pool(net.network_id))
        self.assertEqual(await repo.repair_pool(net), [lost])
        self.assertEqual(await repo.repair_pool(net), [])
        free = await self.store.smembers(keys.fixed_ip_pool(net.network_id))
        self.assertEqual(free, set(net.allocatable()) - {used.address})

    async def test_concurrent_allocations_never_collide(self) -> None:
        """
        1,001 concurrent allocations for the last 1,000 free addresses of a
        network, through four clients (four processes): 1,000 distinct
        addresses, then a clear error for the one too many.
        """
        net = await self.network("10.64.0.0/22")  # 1,020 addresses for guests
        first = self.repo()
        for n in range(20):
            await first.allocate_fixed_ip(net.network_id, f"i-early{n}", MAC)
        repos = [self.repo(await self.make_client()) for _ in range(4)]  # type: ignore[attr-defined]
        results = await self.settle([
            run(self._try(repos[n % 4], net.network_id, f"i-{n}")) for n in range(1001)])
        addresses = [r for r in results if not isinstance(r, NoMoreFixedIps)]
        failures = [r for r in results if isinstance(r, NoMoreFixedIps)]
        self.assertEqual(len(addresses), 1000)
        self.assertEqual(len(set(addresses)), 1000)
        self.assertEqual(len(failures), 1)
        self.assertIn("No fixed IP address is free", str(failures[0]))
        stored = await first.list_for_network(net.network_id)
        self.assertEqual(len(stored), 1020)
        self.assertEqual({f.address for f in stored}, set(net.allocatable()))
        self.assertEqual(await self.store.scard(keys.fixed_ip_pool(net.network_id)), 0)

    @staticmethod
    async def _try(repo: FixedIpRepository, network_id: int, instance_id: str
                   ) -> str | NoMoreFixedIps:
        try:
            return (await repo.allocate_fixed_ip(network_id, instance_id, MAC)).address
        except NoMoreFixedIps as e:
            return e


class MemoryFixedIpRepositoryTests(MemoryHarness, FixedIpRepositoryMixin, unittest.TestCase):
    """In memory."""


class RedisFixedIpRepositoryTests(RedisHarness, FixedIpRepositoryMixin, unittest.TestCase):
    """Against Redis."""
