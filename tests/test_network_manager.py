"""
nova-network's manager over the in-memory datastore and the in-memory
network host: allocation on RunInstances, release on terminate, the DHCP
lease cycle, elastic IPs and the rebuild after a restart.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.trial import unittest

from nova.context import RequestContext
from nova.exception import NovaError
from nova.network import errors
from nova.network.fake import FakeNetworkHost
from nova.network.manager import NetworkInfo, NetworkManager
from tests.support.compute import ComputeWorld, DirectNetworkAPI
from tests.test_compute_records import a_launch


class BrokenHost(FakeNetworkHost):
    """A network host whose NAT changes fail (to prove nothing is half-applied)."""

    async def ensure_floating_ip(self, floating_ip: str, fixed_ip: str) -> None:
        raise NovaError("iptables-restore failed")


class NetworkManagerTests(unittest.TestCase):

    def setUp(self) -> None:
        self.world = ComputeWorld(self.mktemp())
        os.makedirs(self.world.dir)
        self.manager = self.world.network_manager
        self.host = self.world.network_host
        self.context = RequestContext.system()

    async def launch(self, project: str = "proj", n: int = 1) -> list[str]:
        reservation, instances = a_launch(n, project_id=project,
                                          created_at=self.world.clock.seconds())
        await self.world.instances.create_reservation(reservation, instances)
        return [i.instance_id for i in instances]

    async def allocate(self, instance_id: str) -> NetworkInfo:
        return NetworkInfo.from_dict(
            await self.manager.allocate_for_instance(self.context, instance_id))

    async def test_allocate_on_the_project_network(self) -> None:
        """The project's network is bound, set up here, and the DHCP entry written."""
        [iid] = await self.launch()
        info = await self.allocate(iid)
        instance = await self.world.instances.get(iid)
        self.assertEqual(instance.private_ip, info.address)
        self.assertEqual(info.mac, instance.mac_address)
        self.assertEqual((info.vlan, info.bridge, info.host), (100, "novabr100", "host1"))
        self.assertEqual(info.gateway, "10.1.0.1")
        network = await self.world.networks.get(info.network_id)
        self.assertEqual((network.project_id, network.host), ("proj", "host1"))
        self.assertIn("novabr100", self.host.networks)
        [entry] = self.host.dhcp_hosts["novabr100"]
        self.assertEqual((entry.mac, entry.ip, entry.hostname),
                         (instance.mac_address, info.address, iid))

    async def test_projects_get_their_own_networks(self) -> None:
        [a] = await self.launch("alpha")
        [b] = await self.launch("beta")
        info_a, info_b = await self.allocate(a), await self.allocate(b)
        self.assertNotEqual(info_a.network_id, info_b.network_id)
        self.assertNotEqual(info_a.vlan, info_b.vlan)
        self.assertEqual(set(self.host.networks), {info_a.bridge, info_b.bridge})

    async def test_allocate_again_returns_the_same_address(self) -> None:
        [iid] = await self.launch()
        first = await self.allocate(iid)
        second = await self.allocate(iid)
        self.assertEqual(first, second)
        self.assertEqual(len(await self.world.fixed_ips.list_for_instance(iid)), 1)

    async def test_full_network_takes_nothing(self) -> None:
        """An exhausted pool raises NoMoreFixedIps and leaves the instance without address."""
        first, last = await self.launch(n=2)
        info = await self.allocate(first)
        for n in range(251):  # the rest of the /24's 252 guest addresses (.3 to .254)
            await self.world.fixed_ips.allocate_fixed_ip(info.network_id, f"i-{n:08x}",
                                                         f"02:00:00:00:{n // 256:02x}:{n % 256:02x}")
        with self.assertRaises(errors.NoMoreFixedIps):
            await self.allocate(last)
        self.assertIsNone((await self.world.instances.get(last)).private_ip)
        self.assertEqual(len(await self.world.fixed_ips.list_for_instance(last)), 0)

    async def test_deallocate_waits_for_the_lease(self) -> None:
        """The address returns to the pool when dnsmasq reports the lease's end."""
        [iid] = await self.launch()
        info = await self.allocate(iid)
        await self.manager.handle_dhcp_event({"action": "add", "mac": info.mac,
                                              "ip": info.address})
        await self.manager.deallocate_for_instance(self.context, iid)
        self.assertEqual(self.host.dhcp_hosts["novabr100"], ())
        self.assertIsNone((await self.world.instances.get(iid)).private_ip)
        held = await self.world.fixed_ips.get(info.address)
        self.assertFalse(held.allocated)
        await self.manager.handle_dhcp_event({"action": "del", "mac": info.mac,
                                              "ip": info.address})
        with self.assertRaises(errors.FixedIpNotFound):
            await self.world.fixed_ips.get(info.address)

    async def test_unknown_dhcp_events_are_ignored(self) -> None:
        await self.manager.handle_dhcp_event({"action": "add", "mac": "02:00:00:00:00:01",
                                              "ip": "10.1.0.9"})
        await self.manager.handle_dhcp_event({"action": "bogus"})

    # -- elastic IPs ---------------------------------------------------------------

    async def elastic(self, project: str = "proj") -> tuple[str, NetworkInfo, str]:
        await self.world.floating_ips.create_floating_ips("203.0.113.8/29")
        [iid] = await self.launch(project)
        info = await self.allocate(iid)
        address = (await self.world.floating_ips.allocate_floating_ip(project)).address
        return iid, info, address

    def as_project(self, project: str) -> RequestContext:
        return RequestContext(user_id="alice", project_id=project, roles=("netadmin",))

    async def test_associate_applies_nat(self) -> None:
        iid, info, address = await self.elastic()
        await self.manager.associate_floating_ip(self.as_project("proj"), address, iid)
        self.assertEqual(self.host.floating, {address: info.address})
        self.assertEqual((await self.world.instances.get(iid)).public_ip, address)
        await self.manager.disassociate_floating_ip(self.as_project("proj"), address)
        self.assertEqual(self.host.floating, {})
        self.assertIsNone((await self.world.instances.get(iid)).public_ip)

    async def test_associate_moves_from_another_instance(self) -> None:
        iid, info, address = await self.elastic()
        [other] = await self.launch()
        other_info = await self.allocate(other)
        await self.manager.associate_floating_ip(self.as_project("proj"), address, iid)
        await self.manager.associate_floating_ip(self.as_project("proj"), address, other)
        self.assertEqual(self.host.floating, {address: other_info.address})
        self.assertIsNone((await self.world.instances.get(iid)).public_ip)

    async def test_another_projects_address_is_refused(self) -> None:
        iid, info, address = await self.elastic("owner")
        [theirs] = await self.launch("intruder")
        await self.allocate(theirs)
        with self.assertRaises(errors.AddressNotOwned):
            await self.manager.associate_floating_ip(self.as_project("intruder"), address,
                                                     theirs)
        self.assertEqual(self.host.floating, {})

    async def test_failed_nat_undoes_the_association(self) -> None:
        iid, info, address = await self.elastic()
        self.manager._plumbing = BrokenHost()
        with self.assertRaises(NovaError):
            await self.manager.associate_floating_ip(self.as_project("proj"), address, iid)
        self.assertEqual(len(self.flushLoggedErrors(NovaError)), 1)
        record = await self.world.floating_ips.get(address)
        self.assertIsNone(record.instance_id)
        self.assertIsNone((await self.world.instances.get(iid)).public_ip)

    async def test_terminate_ends_the_association(self) -> None:
        iid, info, address = await self.elastic()
        await self.manager.associate_floating_ip(self.as_project("proj"), address, iid)
        await self.manager.deallocate_for_instance(self.context, iid)
        self.assertEqual(self.host.floating, {})
        record = await self.world.floating_ips.get(address)
        self.assertEqual((record.project_id, record.instance_id), ("proj", None))

    async def test_release_removes_nat(self) -> None:
        iid, info, address = await self.elastic()
        await self.manager.associate_floating_ip(self.as_project("proj"), address, iid)
        await self.manager.release_floating_ip(self.as_project("proj"), address)
        self.assertEqual(self.host.floating, {})
        self.assertIsNone((await self.world.floating_ips.get(address)).project_id)

    # -- restart ---------------------------------------------------------------------

    async def test_init_host_rebuilds_from_redis(self) -> None:
        """A restarted nova-network (new, empty host object) rebuilds everything it serves."""
        iid, info, address = await self.elastic()
        await self.manager.associate_floating_ip(self.as_project("proj"), address, iid)
        fresh = FakeNetworkHost()
        restarted = NetworkManager(
            "host1", self.world.clock, networks=self.world.networks,
            fixed_ips=self.world.fixed_ips, floating_ips=self.world.floating_ips,
            instances=self.world.instances, plumbing=fresh,
            network_api=DirectNetworkAPI(self.world), kind="vlan", metadata_port=8775)
        await restarted.init_host()
        self.assertEqual(set(fresh.networks), {info.bridge})
        self.assertEqual([e.ip for e in fresh.dhcp_hosts[info.bridge]], [info.address])
        self.assertEqual(fresh.floating, {address: info.address})
        self.assertEqual(fresh.metadata_redirect, 8775)

    async def test_flat_manager_shares_one_network(self) -> None:
        await self.world.networks.create_networks("10.9.0.0/24", 1, 256, None,
                                                  bridge="novaflat")
        self.manager._kind = "flat"
        [a] = await self.launch("alpha")
        [b] = await self.launch("beta")
        info_a, info_b = await self.allocate(a), await self.allocate(b)
        self.assertEqual((info_a.bridge, info_b.bridge), ("novaflat", "novaflat"))
        self.assertIsNone(info_a.vlan)
        self.assertEqual(len(self.host.dhcp_hosts["novaflat"]), 2)

    def test_unknown_kind_is_refused(self) -> None:
        kwargs: dict[str, Any] = dict(networks=None, fixed_ips=None, floating_ips=None,
                                      instances=None, plumbing=None, network_api=None,
                                      metadata_port=80)
        with self.assertRaises(ValueError):
            NetworkManager("h", self.world.clock, kind="bogus", **kwargs)


class MetadataTargetTests(unittest.TestCase):
    """Where 169.254.169.254:80 goes, by host kind (nova.network.wiring.metadata_target)."""

    def config(self, **network: Any) -> Any:
        from nova.config import ApiConfig, NetworkConfig, NovaConfig
        return NovaConfig(api=ApiConfig(metadata_port=8775),
                          network=NetworkConfig(metadata_proxy_port=9999, **network))

    def test_namespace_host_uses_its_proxy(self) -> None:
        from nova.network.wiring import metadata_target
        self.assertEqual(metadata_target(self.config(host_netns="nova-host0")),
                         {"metadata_port": 9999})

    def test_root_namespace_host_reaches_nova_api(self) -> None:
        from nova.network.wiring import metadata_target
        self.assertEqual(metadata_target(self.config()), {"metadata_port": 8775})
        self.assertEqual(metadata_target(self.config(metadata_host="192.0.2.10")),
                         {"metadata_port": 8775, "metadata_dnat_to": ("192.0.2.10", 8775)})

    async def test_dnat_reaches_the_host(self) -> None:
        world = ComputeWorld(self.mktemp())
        host = FakeNetworkHost()
        manager = NetworkManager(
            "host1", world.clock, networks=world.networks, fixed_ips=world.fixed_ips,
            floating_ips=world.floating_ips, instances=world.instances, plumbing=host,
            network_api=DirectNetworkAPI(world), kind="vlan", metadata_port=8775,
            metadata_dnat_to=("192.0.2.10", 8775))
        await manager.init_host()
        self.assertEqual(host.metadata_redirect, ("192.0.2.10", 8775))
