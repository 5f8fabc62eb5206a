"""
L{FloatingIpRepository}, against the in-memory datastore and against Redis at
127.0.0.1:6379: the admin's ranges, allocation with its quota, ownership,
association, and concurrent allocation.
"""

from __future__ import annotations

from twisted.trial import unittest

from nova.datastore import keys
from nova.datastore.interfaces import IDatastore
from nova.exception import ClientError, NotFound
from nova.network.errors import (
    AddressDuplicate, AddressInUse, AddressLimitExceeded, AddressNotOwned,
    InvalidAddressNotFound, InvalidNetworkRange)
from nova.network.floating_ips import FloatingIpRepository
from tests.test_datastore_contract import MemoryHarness, RedisHarness, run
from tests.test_datastore_repositories import RepositoryMixin


class FloatingIpRepositoryMixin(RepositoryMixin):

    def repo(self, store: IDatastore | None = None) -> FloatingIpRepository:
        return FloatingIpRepository(store or self.store, self.clock)

    async def test_create_list_delete(self) -> None:
        repo = self.repo()
        made = await repo.create_floating_ips("4.4.4.0/29", host="net1")
        self.assertEqual([f.address for f in made], [f"4.4.4.{n}" for n in range(1, 7)])
        self.assertEqual(await repo.list_floating_ips(), made)
        self.assertEqual(made[0].host, "net1")
        e = await self.assertFails(AddressDuplicate, repo.create_floating_ips("4.4.4.6-4.4.4.9"))
        self.assertIn("4.4.4.6", str(e))
        self.assertEqual(len(await repo.list_floating_ips()), 6)  # nothing half-created
        await self.assertFails(InvalidNetworkRange, repo.create_floating_ips("4.4.4.0/33"))
        await repo.create_floating_ips("4.4.4.7-4.4.4.9")
        self.assertEqual(await repo.delete_floating_ips("4.4.4.0/30"), 2)
        self.assertEqual([f.address for f in await repo.list_floating_ips()],
                         ["4.4.4.3", "4.4.4.4", "4.4.4.5", "4.4.4.6", "4.4.4.7", "4.4.4.8",
                          "4.4.4.9"])
        await self.assertFails(InvalidAddressNotFound, repo.delete_floating_ips("5.5.5.0/30"))
        self.assertEqual(await self.store.smembers(keys.floating_ip_pool()),
                         {f"4.4.4.{n}" for n in range(3, 10)})

    async def test_delete_refuses_allocated(self) -> None:
        repo = self.repo()
        await repo.create_floating_ips("4.4.4.1/32")
        await repo.allocate_floating_ip("alpha")
        e = await self.assertFails(AddressInUse, repo.delete_floating_ips("4.4.4.1/32"))
        self.assertEqual(e.code, "InvalidIPAddress.InUse")  # type: ignore[attr-defined]
        await repo.release_floating_ip("alpha", "4.4.4.1")
        self.assertEqual(await repo.delete_floating_ips("4.4.4.1/32"), 1)
        self.assertEqual(await self.store.scard(keys.floating_ip_pool()), 0)

    async def test_allocate_and_release(self) -> None:
        repo = self.repo()
        await repo.create_floating_ips("4.4.4.1-4.4.4.2")
        got = await repo.allocate_floating_ip("alpha")
        self.assertEqual(got.project_id, "alpha")
        self.assertEqual(await repo.list_floating_ips("alpha"), [got])
        other = await repo.allocate_floating_ip("beta")
        e = await self.assertFails(AddressLimitExceeded, repo.allocate_floating_ip("gamma"))
        self.assertEqual(e.code, "AddressLimitExceeded")  # type: ignore[attr-defined]
        self.assertIsInstance(e, ClientError)
        # another project's address: AuthFailure, as EC2 answers
        e = await self.assertFails(AddressNotOwned,
                                   repo.release_floating_ip("alpha", other.address))
        self.assertEqual(e.code, "AuthFailure")  # type: ignore[attr-defined]
        self.assertEqual(e.status, 400)  # type: ignore[attr-defined]
        e = await self.assertFails(InvalidAddressNotFound,
                                   repo.release_floating_ip("alpha", "9.9.9.9"))
        self.assertEqual(e.code, "InvalidAddress.NotFound")  # type: ignore[attr-defined]
        self.assertIsInstance(e, NotFound)
        await repo.release_floating_ip("alpha", got.address)
        self.assertEqual(await repo.list_floating_ips("alpha"), [])
        self.assertIsNone((await repo.get(got.address)).project_id)
        # releasing twice: it is no longer yours
        await self.assertFails(AddressNotOwned, repo.release_floating_ip("alpha", got.address))
        self.assertEqual((await repo.allocate_floating_ip("gamma")).address, got.address)

    async def test_quota(self) -> None:
        repo = self.repo()
        await repo.create_floating_ips("4.4.4.0/27")
        for _ in range(10):
            await repo.allocate_floating_ip("alpha")
        e = await self.assertFails(AddressLimitExceeded, repo.allocate_floating_ip("alpha"))
        self.assertIn("quota is 10", str(e))
        self.assertEqual(await self.store.scard(keys.floating_ip_pool()), 20)
        await self.store.hset(keys.quota("alpha"), {"floating_ips": "11"})
        await repo.allocate_floating_ip("alpha")
        self.assertEqual(await repo.quota("alpha"), 11)

    async def test_concurrent_allocations_never_collide(self) -> None:
        """Two clients race for the pool: no address twice, a clear error past the end."""
        repo = self.repo()
        await repo.create_floating_ips("4.4.4.0/27")  # 30 addresses
        clients = [self.repo(await self.make_client()) for _ in range(2)]  # type: ignore[attr-defined]
        # 8 per project: under the quota, so only the pool limits them
        results = await self.settle([
            run(self._try(clients[n % 2], f"p{n % 4}")) for n in range(32)])
        won = [r for r in results if isinstance(r, str)]
        self.assertEqual(len(won), 30)
        self.assertEqual(len(set(won)), 30)
        lost = [r for r in results if not isinstance(r, str)]
        self.assertEqual(len(lost), 2)
        self.assertIn("No more elastic IP", str(lost[0]))
        self.assertEqual(await self.store.scard(keys.floating_ip_pool()), 0)

    async def test_concurrent_allocations_respect_the_quota(self) -> None:
        repo = self.repo()
        await repo.create_floating_ips("4.4.4.0/27")
        clients = [self.repo(await self.make_client()) for _ in range(2)]  # type: ignore[attr-defined]
        results = await self.settle([run(self._try(clients[n % 2], "alpha"))
                                     for n in range(15)])
        self.assertEqual(len([r for r in results if isinstance(r, str)]), 10)
        self.assertEqual(len(await repo.list_floating_ips("alpha")), 10)
        self.assertEqual(await self.store.scard(keys.floating_ip_pool()), 20)

    @staticmethod
    async def _try(repo: FloatingIpRepository, project: str) -> str | AddressLimitExceeded:
        try:
            return (await repo.allocate_floating_ip(project)).address
        except AddressLimitExceeded as e:
            return e

    async def test_associate_and_disassociate(self) -> None:
        repo = self.repo()
        await repo.create_floating_ips("4.4.4.1-4.4.4.2")
        one = (await repo.allocate_floating_ip("alpha")).address
        two = (await repo.allocate_floating_ip("alpha")).address
        done = await repo.associate("alpha", one, "i-1", "10.0.0.3")
        self.assertEqual((done.floating_ip.instance_id, done.floating_ip.fixed_address,
                          done.previous), ("i-1", "10.0.0.3", ()))
        self.assertEqual((await repo.for_instance("i-1")).address, one)
        # the address moves to another instance (EC2-Classic)
        moved = await repo.associate("alpha", one, "i-2", "10.0.0.4")
        self.assertEqual([p.instance_id for p in moved.previous], ["i-1"])
        self.assertIsNone(await repo.for_instance("i-1"))
        # the instance takes another address: its previous one is let go
        swapped = await repo.associate("alpha", two, "i-2", "10.0.0.4")
        self.assertEqual([(p.address, p.instance_id) for p in swapped.previous], [(one, "i-2")])
        self.assertIsNone((await repo.get(one)).instance_id)
        self.assertEqual((await repo.for_instance("i-2")).address, two)
        await self.assertFails(AddressNotOwned, repo.associate("beta", two, "i-3", "10.0.0.5"))
        await self.assertFails(InvalidNetworkRange, repo.associate("alpha", two, "i-3", "x"))
        old = await repo.disassociate("alpha", two)
        self.assertEqual(old.instance_id, "i-2")
        self.assertIsNone(await repo.for_instance("i-2"))
        self.assertEqual((await repo.disassociate("alpha", two)).instance_id, None)

    async def test_release_ends_the_association(self) -> None:
        repo = self.repo()
        await repo.create_floating_ips("4.4.4.1/32")
        ip = await repo.allocate_floating_ip("alpha")
        await repo.associate("alpha", ip.address, "i-1", "10.0.0.3")
        old = await repo.release_floating_ip(None, ip.address)  # an admin
        self.assertEqual(old.fixed_address, "10.0.0.3")
        self.assertIsNone(await repo.for_instance("i-1"))
        now = await repo.get(ip.address)
        self.assertEqual((now.project_id, now.instance_id), (None, None))
        await self.assertFails(AddressNotOwned, repo.associate(None, ip.address, "i-1",
                                                               "10.0.0.3"))


class MemoryFloatingIpRepositoryTests(MemoryHarness, FloatingIpRepositoryMixin,
                                      unittest.TestCase):
    """In memory."""


class RedisFloatingIpRepositoryTests(RedisHarness, FloatingIpRepositoryMixin,
                                     unittest.TestCase):
    """Against Redis."""
