"""
L{ComputeManager} with the fake driver, the in-memory datastore, a fake
object store and a fake qemu-img: spawning, failures, the other actions and
the reconciliation of records with guests.
"""

from __future__ import annotations

import base64
import os
from typing import Any

import attr
from twisted.internet import defer
from twisted.trial import unittest

from nova.compute import states
from nova.datastore import keys
from nova.compute.imagecache import ImageCorrupted, ImageUnavailable
from nova.compute.manager import guest_uuid
from nova.context import RequestContext
from nova.image import records as image_records
from nova.virt import power_state
from nova.virt.errors import VirtError
from nova.virt.records import InstanceSpec
from tests.support.compute import ComputeWorld, VIRTUAL_SIZE
from tests.test_compute_records import a_launch

CTX = RequestContext.system()


class ManagerTestCase(unittest.TestCase):

    def setUp(self) -> None:
        self.world = ComputeWorld(self.mktemp())
        os.makedirs(self.world.dir)
        self.manager = self.world.manager

    async def launch(self, n: int = 1, host: str | None = "host1", **changes: Any) -> list[str]:
        """Store C{n} pending instances placed on C{host}; @return: their ids."""
        reservation, instances = a_launch(n, created_at=self.world.clock.seconds(), **changes)
        await self.world.instances.create_reservation(reservation, instances)
        for instance in instances:
            if host is not None:
                await self.world.instances.update(instance.instance_id, host=host)
        return [i.instance_id for i in instances]

    async def kernel_launch(self, n: int = 1) -> list[str]:
        kernel = await self.world.add_image(image_records.KERNEL, data=b"kernel")
        ramdisk = await self.world.add_image(image_records.RAMDISK, data=b"ramdisk")
        machine = await self.world.add_image(data=b"disk" * 100)
        return await self.launch(n, image_id=machine.image_id, kernel_id=kernel.image_id,
                                 ramdisk_id=ramdisk.image_id)


class SpawnTests(ManagerTestCase):

    async def test_spawn_kernel_boot(self) -> None:
        """A kernel/ramdisk instance boots its cached aki/ari on a qcow2 overlay."""
        [iid] = await self.kernel_launch()
        await self.manager.run_instance(CTX, iid)
        instance = await self.world.instances.get(iid)
        self.assertEqual((instance.state, instance.power_state, instance.state_reason),
                         (states.RUNNING, power_state.RUNNING, None))
        self.assertIsNotNone(instance.launched_at)
        [spec] = self.world.driver.spawned
        base = self.world.dir / "_base"
        self.assertEqual(spec, InstanceSpec(
            name=iid, uuid=guest_uuid(iid), memory_mb=512, vcpus=1,
            console_log=str(self.world.dir / iid / "console.log"),
            kernel=spec.kernel, initrd=spec.initrd, cmdline="console=ttyS0",
            disk=str(self.world.dir / iid / "disk"), mac=instance.mac_address,
            bridge="novabr100", target_dev="novat" + iid[-10:]))
        self.assertTrue(spec.kernel.startswith(str(base)))
        with open(spec.kernel, "rb") as f:
            self.assertEqual(f.read(), b"kernel")
        with open(spec.initrd, "rb") as f:
            self.assertEqual(f.read(), b"ramdisk")
        [create] = self.world.runner.calls_matching(["qemu-img", "create"])
        machine = await self.world.images.get(instance.image_id)
        self.assertEqual(create.argv, (
            "qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base / machine.checksum),
            "-F", "raw", str(self.world.dir / iid / "disk"), str(VIRTUAL_SIZE)))

    async def test_root_disk_sized_to_type(self) -> None:
        """m1.small's 20 GB root disk is bigger than the image: the overlay grows."""
        machine = await self.world.add_image()
        [iid] = await self.launch(image_id=machine.image_id, instance_type="m1.small")
        await self.manager.run_instance(CTX, iid)
        [create] = self.world.runner.calls_matching(["qemu-img", "create"])
        self.assertEqual(create.argv[-1], str(20 * 1024 ** 3))
        self.assertIsNone(self.world.driver.spawned[0].kernel)

    async def test_image_fetched_once_per_host(self) -> None:
        ids = await self.kernel_launch(3)
        for iid in ids:
            await self.manager.run_instance(CTX, iid)
        self.assertEqual(len(self.world.client.downloads), 3)  # kernel, ramdisk, disk
        self.assertEqual(len(self.world.driver.spawned), 3)

    async def test_base_inspected_once(self) -> None:
        """Overlays of one base image ask qemu-img its size once."""
        for iid in await self.kernel_launch(3):
            await self.manager.run_instance(CTX, iid)
        self.assertEqual(len(self.world.runner.calls_matching(["qemu-img", "info"])), 1)
        self.assertEqual(len(self.world.runner.calls_matching(["qemu-img", "create"])), 3)

    async def test_capacity_counts_instances(self) -> None:
        await self.manager.init_host()
        ids = await self.kernel_launch(2)
        for iid in ids:
            await self.manager.run_instance(CTX, iid)
        capacity = self.manager.capacity()
        self.assertEqual((capacity["vcpus_used"], capacity["memory_mb_used"],
                          capacity["instances"], capacity["vcpus"]), (2, 1024, 2, 16))

    async def test_spawn_failure_leaves_nothing(self) -> None:
        """The hypervisor refuses: no guest, no files, terminated with a reason, quota back."""
        [iid] = await self.kernel_launch()
        self.world.driver.fail_next("spawn", VirtError("no room at the inn"))
        await self.manager.run_instance(CTX, iid)
        self.assertEqual(len(self.flushLoggedErrors(VirtError)), 1)
        instance = await self.world.instances.get(iid)
        self.assertEqual(instance.state, states.TERMINATED)
        self.assertEqual(instance.state_reason[0], "Server.InternalError")
        self.assertIn("no room at the inn", instance.state_reason[1])
        self.assertEqual(await self.world.driver.list_instances(), [])
        self.assertFalse((self.world.dir / iid).exists())
        usage = await self.world.instances.quotas.get_usage("proj")
        self.assertEqual(usage["instances"], 0)
        self.assertEqual(self.manager.capacity()["instances"], 0)

    async def test_spawn_failure_gives_the_address_back(self) -> None:
        """A guest that fails to start frees its fixed IP, DHCP entry and filter chain."""
        [iid] = await self.kernel_launch()
        self.world.driver.fail_next("spawn", VirtError("no room at the inn"))
        await self.manager.run_instance(CTX, iid)
        self.flushLoggedErrors(VirtError)
        self.assertEqual(await self.world.fixed_ips.list_for_instance(iid), [])
        self.assertIsNone((await self.world.instances.get(iid)).private_ip)
        self.assertEqual(self.world.network_host.filters, {})
        self.assertEqual(self.world.network_host.dhcp_hosts["novabr100"], ())

    async def test_exhausted_network_fails_with_a_reason(self) -> None:
        """No fixed IP left: the instance ends terminated saying so, nothing left behind."""
        from nova.network.errors import NoMoreFixedIps
        [first, last] = await self.kernel_launch(2)
        await self.manager.run_instance(CTX, first)
        network = (await self.world.fixed_ips.list_for_instance(first))[0].network_id
        for n in range(251):  # the rest of the /24's guest addresses
            await self.world.fixed_ips.allocate_fixed_ip(
                network, f"i-{n:08x}", f"02:00:00:00:{n // 256:02x}:{n % 256:02x}")
        await self.manager.run_instance(CTX, last)
        self.assertEqual(len(self.flushLoggedErrors(NoMoreFixedIps)), 1)
        instance = await self.world.instances.get(last)
        self.assertEqual(instance.state, states.TERMINATED)
        self.assertIn("No fixed IP address is free", instance.state_reason[1])
        self.assertNotIn(last, await self.world.driver.list_instances())
        self.assertFalse((self.world.dir / last).exists())
        self.assertNotIn(last, self.world.network_host.filters)

    async def test_corrupt_image_fails_spawn(self) -> None:
        """Bytes that do not match the registered checksum are refused and not kept."""
        machine = await self.world.add_image()
        self.world.client.objects[machine.data_location] = b"something else"
        [iid] = await self.launch(image_id=machine.image_id)
        await self.manager.run_instance(CTX, iid)
        self.assertEqual(len(self.flushLoggedErrors(ImageCorrupted)), 1)
        instance = await self.world.instances.get(iid)
        self.assertEqual(instance.state, states.TERMINATED)
        self.assertIn("SHA-256", instance.state_reason[1])
        self.assertEqual(os.listdir(self.world.dir / "_base"), [])

    async def test_unavailable_image_is_a_client_error(self) -> None:
        machine = await self.world.add_image()
        await self.world.images.change(machine.image_id,
                                       lambda i: attr.evolve(i, state=image_records.FAILED))
        [iid] = await self.launch(image_id=machine.image_id)
        await self.manager.run_instance(CTX, iid)
        self.assertEqual(len(self.flushLoggedErrors(ImageUnavailable)), 1)
        instance = await self.world.instances.get(iid)
        self.assertEqual((instance.state, instance.state_reason[0]),
                         (states.TERMINATED, "Client.InternalError"))

    async def test_not_mine_or_not_pending_is_ignored(self) -> None:
        [other] = await self.kernel_launch()
        await self.world.instances.update(other, host="host2")
        await self.manager.run_instance(CTX, other)
        [done] = await self.launch(host="host1")
        await self.world.instances.transition(done, "terminate")
        await self.manager.run_instance(CTX, done)
        self.assertEqual(self.world.driver.spawned, [])


class ActionTests(ManagerTestCase):

    async def running(self) -> str:
        [iid] = await self.kernel_launch()
        await self.manager.run_instance(CTX, iid)
        return iid

    async def test_terminate(self) -> None:
        iid = await self.running()
        await self.world.instances.transition(iid, "terminate")
        await self.manager.terminate_instance(CTX, iid)
        instance = await self.world.instances.get(iid)
        self.assertEqual(instance.state, states.TERMINATED)
        self.assertEqual(await self.world.driver.list_instances(), [])
        self.assertFalse((self.world.dir / iid).exists())

    async def test_terminate_while_spawning_waits(self) -> None:
        """A terminate queued behind a spawn destroys what the spawn made."""
        [iid] = await self.kernel_launch()
        spawning = defer.Deferred.fromCoroutine(self.manager.run_instance(CTX, iid))
        await self.world.instances.transition(iid, "terminate")
        await self.manager.terminate_instance(CTX, iid)
        await spawning
        self.assertEqual((await self.world.instances.get(iid)).state, states.TERMINATED)
        self.assertEqual(await self.world.driver.list_instances(), [])

    async def test_stop_and_start(self) -> None:
        iid = await self.running()
        await self.world.instances.transition(iid, "stop")
        await self.manager.stop_instance(CTX, iid)
        instance = await self.world.instances.get(iid)
        self.assertEqual((instance.state, instance.state_reason),
                         (states.STOPPED, states.USER_INITIATED_SHUTDOWN))
        self.assertEqual((await self.world.driver.get_info(iid)).state, power_state.SHUTOFF)
        await self.world.instances.transition(iid, "start")
        await self.manager.start_instance(CTX, iid)
        instance = await self.world.instances.get(iid)
        self.assertEqual((instance.state, instance.state_reason), (states.RUNNING, None))
        self.assertEqual((await self.world.driver.get_info(iid)).state, power_state.RUNNING)

    async def test_start_recreates_a_lost_guest(self) -> None:
        iid = await self.running()
        await self.world.instances.transition(iid, "stop")
        await self.manager.stop_instance(CTX, iid)
        await self.world.driver.destroy(iid)
        await self.world.instances.transition(iid, "start")
        await self.manager.start_instance(CTX, iid)
        self.assertEqual((await self.world.instances.get(iid)).state, states.RUNNING)
        self.assertEqual(len(self.world.driver.spawned), 2)

    async def test_reboot(self) -> None:
        iid = await self.running()
        self.world.clock.advance(5)
        before = (await self.world.driver.get_info(iid)).cpu_time
        await self.manager.reboot_instance(CTX, iid)
        self.world.clock.advance(1)
        after = (await self.world.driver.get_info(iid)).cpu_time
        self.assertEqual((await self.world.instances.get(iid)).state, states.RUNNING)
        self.assertEqual(after - before, 1_000_000_000)

    async def test_console_output(self) -> None:
        iid = await self.running()
        log = self.world.dir / iid / "console.log"
        log.write_bytes(b"x" * 70000 + b"NOVA-TINY-READY instance-id=" + iid.encode())
        output = base64.b64decode(await self.manager.get_console_output(CTX, iid))
        self.assertEqual(len(output), 64 * 1024)
        self.assertTrue(output.endswith(b"instance-id=" + iid.encode()))
        await self.world.driver.destroy(iid)
        output = base64.b64decode(await self.manager.get_console_output(CTX, iid))
        self.assertTrue(output.endswith(iid.encode()))


class ReconcileTests(ManagerTestCase):

    async def running(self, n: int = 1) -> list[str]:
        ids = await self.kernel_launch(n)
        for iid in ids:
            await self.manager.run_instance(CTX, iid)
        return ids

    async def test_vanished_guest_is_recorded_stopped(self) -> None:
        [iid] = await self.running()
        await self.world.driver.destroy(iid)
        await self.manager.reconcile()
        instance = await self.world.instances.get(iid)
        self.assertEqual(instance.state, states.STOPPED)
        self.assertEqual(instance.state_reason[0], "Server.InternalError")

    async def test_guest_powered_off_from_inside(self) -> None:
        [iid] = await self.running()
        await self.world.driver.power_off(iid)
        await self.manager.reconcile()
        instance = await self.world.instances.get(iid)
        self.assertEqual((instance.state, instance.state_reason),
                         (states.STOPPED, states.INSTANCE_INITIATED_SHUTDOWN))

    async def test_a_record_changed_meanwhile_is_not_overwritten(self) -> None:
        """The reconcile decided from a record it read; the API stopped it since."""
        [iid] = await self.running()
        await self.world.driver.power_off(iid)
        stale = await self.world.instances.on_host(self.manager.host)
        await self.world.instances.transition(iid, "stop")  # the user's stop
        read = self.world.instances.on_host

        async def on_host_read_before(host: str) -> list:
            self.world.instances.on_host = read  # type: ignore[method-assign]
            return stale
        self.world.instances.on_host = on_host_read_before  # type: ignore[method-assign]
        await self.manager.reconcile()
        instance = await self.world.instances.get(iid)
        self.assertEqual((instance.state, instance.state_reason), (states.STOPPING, None))

    async def test_unknown_guest_left_alone(self) -> None:
        [iid] = await self.running()
        stranger = InstanceSpec(name="not-nova", uuid=guest_uuid("x"), memory_mb=64, vcpus=1,
                                console_log="/tmp/none.log", kernel="/boot/vmlinuz")
        await self.world.driver.spawn(stranger)
        await self.manager.reconcile()
        self.assertEqual(sorted(await self.world.driver.list_instances()),
                         sorted([iid, "not-nova"]))
        self.assertEqual((await self.world.instances.get(iid)).state, states.RUNNING)

    async def test_restart_adopts_and_finishes(self) -> None:
        """
        A new manager on the same host adopts running guests, fails a spawn a
        crash interrupted, and finishes an interrupted terminate and stop.
        """
        kept, dying, stopping = await self.running(3)
        [interrupted] = await self.kernel_launch()
        await self.world.instances.transition(dying, "terminate")
        await self.world.instances.transition(stopping, "stop")
        await self.manager.init_host()
        self.assertEqual((await self.world.instances.get(kept)).state, states.RUNNING)
        self.assertEqual((await self.world.instances.get(dying)).state, states.TERMINATED)
        self.assertEqual((await self.world.instances.get(stopping)).state, states.STOPPED)
        gone = await self.world.instances.get(interrupted)
        self.assertEqual(gone.state, states.TERMINATED)
        self.assertIn("restart", gone.state_reason[1])
        self.assertEqual(sorted(await self.world.driver.list_instances()),
                         sorted([kept, stopping]))
        self.assertEqual(self.manager.capacity()["instances"], 2)


class PurgeTests(unittest.TestCase):

    async def test_api_forgets_old_terminated_instances(self) -> None:
        from nova.tap.components import ApiManager
        world = ComputeWorld(self.mktemp())
        api = ApiManager("api", world.clock, world.instances)
        reservation, instances = a_launch(2, created_at=world.clock.seconds())
        await world.instances.create_reservation(reservation, instances)
        gone, kept = (i.instance_id for i in instances)
        await world.instances.transition(gone, "terminate")
        await world.instances.transition(gone, "destroyed")
        [task] = api.periodic_tasks()
        await task()
        self.assertEqual((await world.instances.get(gone)).state, states.TERMINATED)
        world.clock.advance(3601)
        await task()
        self.assertEqual([i.instance_id for i in (await world.instances.list()).instances],
                         [kept])
        self.assertIsNone(await world.store.get(keys.instance(gone)))
