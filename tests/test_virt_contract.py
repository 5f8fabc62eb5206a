"""
The contract of L{nova.virt.interfaces.IVirtDriver}: one suite, run against
L{FakeDriver} (on a Clock) and against L{LibvirtDriver} on libvirt's
built-in C{test:///default} hypervisor (in process, no daemon). That
hypervisor is shared by the whole process and starts with a domain named
C{test}: every test uses unique names and destroys what it spawned.
"""

from __future__ import annotations

import os
import tempfile
import uuid

from twisted.internet import defer, reactor, task
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from nova.virt import power_state
from nova.virt.errors import (DeviceInUse, DeviceNotFound, InstanceExists,
                              InstanceNotFound, InvalidInstanceState, VirtError)
from nova.virt.fake import FakeDriver
from nova.virt.interfaces import IVirtDriver
from nova.virt.libvirt.driver import LibvirtDriver
from nova.virt.records import HostCapacity, InstanceSpec, VolumeSource


class VirtDriverContractMixin:
    """The behaviour every L{IVirtDriver} shares; needs C{self.driver}."""

    driver: IVirtDriver

    def make_tmp(self) -> str:
        path = tempfile.mkdtemp(prefix="nova-virt-test-")
        self.addCleanup(_rmtree, path)  # type: ignore[attr-defined]
        return path

    def make_spec(self, **overrides: object) -> InstanceSpec:
        tmp = self.make_tmp()
        fields: dict[str, object] = dict(
            name=f"test-{uuid.uuid4().hex[:12]}", uuid=str(uuid.uuid4()),
            memory_mb=80, vcpus=1, console_log=os.path.join(tmp, "console.log"),
            kernel=os.path.join(tmp, "vmlinuz"), initrd=os.path.join(tmp, "initrd"),
            cmdline="console=ttyS0 no_timer_check")
        fields.update(overrides)
        return InstanceSpec(**fields)  # type: ignore[arg-type]

    async def spawn(self, **overrides: object) -> InstanceSpec:
        spec = self.make_spec(**overrides)
        self.addCleanup(  # type: ignore[attr-defined]
            lambda: defer.Deferred.fromCoroutine(self.driver.destroy(spec.name)))
        await self.driver.spawn(spec)
        return spec

    async def assertState(self, name: str, state: int) -> None:
        info = await self.driver.get_info(name)
        self.assertEqual(power_state.name(info.state),  # type: ignore[attr-defined]
                         power_state.name(state))

    def test_provides_interface(self) -> None:
        self.assertTrue(verifyObject(IVirtDriver, self.driver))  # type: ignore[attr-defined]

    async def test_spawn_runs_and_reports(self) -> None:
        spec = self.make_spec(memory_mb=96, vcpus=2)
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(self.driver.destroy(spec.name)))
        info = await self.driver.spawn(spec)
        self.assertEqual(info.state, power_state.RUNNING)
        self.assertEqual((info.max_mem, info.num_cpu), (96 * 1024, 2))
        again = await self.driver.get_info(spec.name)
        self.assertEqual((again.state, again.max_mem, again.num_cpu),
                         (power_state.RUNNING, 96 * 1024, 2))
        self.assertIn(spec.name, await self.driver.list_instances())

    async def test_disk_boot(self) -> None:
        tmp = self.make_tmp()
        spec = await self.spawn(kernel=None, initrd=None, cmdline=None,
                                disk=os.path.join(tmp, "disk.qcow2"))
        await self.assertState(spec.name, power_state.RUNNING)

    async def test_spawn_duplicate_name(self) -> None:
        spec = await self.spawn()
        twin = self.make_spec(name=spec.name)
        with self.assertRaises(InstanceExists):
            await self.driver.spawn(twin)
        await self.assertState(spec.name, power_state.RUNNING)

    async def test_destroy_removes_and_is_idempotent(self) -> None:
        spec = await self.spawn()
        await self.driver.destroy(spec.name)
        self.assertNotIn(spec.name, await self.driver.list_instances())
        with self.assertRaises(InstanceNotFound):
            await self.driver.get_info(spec.name)
        await self.driver.destroy(spec.name)
        await self.driver.destroy(f"never-{uuid.uuid4().hex[:8]}")

    async def test_destroy_stopped_guest(self) -> None:
        spec = await self.spawn()
        await self.driver.power_off(spec.name)
        await self.driver.destroy(spec.name)
        self.assertNotIn(spec.name, await self.driver.list_instances())

    async def test_power_off_and_on(self) -> None:
        spec = await self.spawn()
        await self.driver.power_off(spec.name)
        await self.assertState(spec.name, power_state.SHUTOFF)
        self.assertIn(spec.name, await self.driver.list_instances())
        await self.driver.power_off(spec.name)
        await self.assertState(spec.name, power_state.SHUTOFF)
        await self.driver.power_on(spec.name)
        await self.assertState(spec.name, power_state.RUNNING)
        await self.driver.power_on(spec.name)
        await self.assertState(spec.name, power_state.RUNNING)

    async def test_reboot(self) -> None:
        spec = await self.spawn()
        await self.driver.reboot(spec.name)
        await self.assertState(spec.name, power_state.RUNNING)

    async def test_reboot_stopped_guest_refused(self) -> None:
        spec = await self.spawn()
        await self.driver.power_off(spec.name)
        with self.assertRaises(InvalidInstanceState):
            await self.driver.reboot(spec.name)
        await self.assertState(spec.name, power_state.SHUTOFF)

    async def test_unknown_name(self) -> None:
        name = f"never-{uuid.uuid4().hex[:8]}"
        for call in (self.driver.get_info, self.driver.reboot, self.driver.power_off,
                     self.driver.power_on, self.driver.get_console_output,
                     self.driver.list_volumes):
            with self.assertRaises(InstanceNotFound):
                await call(name)
        with self.assertRaises(InstanceNotFound):
            await self.driver.detach_volume(name, "vdb")
        with self.assertRaises(InstanceNotFound):
            await self.driver.attach_volume(name, "vdb", VolumeSource(kind="file",
                                                                      path="/x.img"))

    async def test_console_output_tail(self) -> None:
        spec = await self.spawn()
        self.assertEqual(await self.driver.get_console_output(spec.name), b"")
        with open(spec.console_log, "wb") as f:
            f.write(b"booting\n" + b"x" * 100 + b"\nNOVA-MARKER i-1 10.0.0.2\n")
        out = await self.driver.get_console_output(spec.name)
        self.assertTrue(out.startswith(b"booting\n"))
        tail = await self.driver.get_console_output(spec.name, max_bytes=25)
        self.assertEqual(tail, b"NOVA-MARKER i-1 10.0.0.2\n")

    async def test_volume_errors(self) -> None:
        spec = await self.spawn()
        self.assertEqual(await self.driver.list_volumes(spec.name), {})
        with self.assertRaises(DeviceNotFound):
            await self.driver.detach_volume(spec.name, "vdc")
        with self.assertRaises(ValueError):
            await self.driver.detach_volume(spec.name, "sda")
        await self.driver.power_off(spec.name)
        with self.assertRaises(InvalidInstanceState):
            await self.driver.attach_volume(spec.name, "vdb",
                                            VolumeSource(kind="file", path="/x.img"))

    async def test_capacity(self) -> None:
        cap = await self.driver.capacity()
        self.assertIsInstance(cap, HostCapacity)
        self.assertGreater(cap.vcpus, 0)
        self.assertGreater(cap.memory_mb, 0)
        self.assertGreaterEqual(cap.disk_gb, 0)


def _rmtree(path: str) -> None:
    import shutil
    shutil.rmtree(path, ignore_errors=True)


class FakeDriverContractTests(VirtDriverContractMixin, unittest.TestCase):
    """The contract on the in-memory driver."""

    async def setUp(self) -> None:
        self.clock = task.Clock()
        self.driver = FakeDriver(self.clock)
        await self.driver.init_host()

    async def test_volume_round_trip(self) -> None:
        # test:///default cannot hot-plug; the libvirt half is covered by
        # the XML builder tests and, later, a real libvirtd test.
        spec = await self.spawn()
        nbd = VolumeSource(kind="nbd", path="/run/nova/vol-1.sock", export="vol-1")
        await self.driver.attach_volume(spec.name, "vdb", nbd)
        self.assertEqual(await self.driver.list_volumes(spec.name), {"vdb": nbd})
        with self.assertRaises(DeviceInUse):
            await self.driver.attach_volume(spec.name, "vdb", nbd)
        await self.driver.detach_volume(spec.name, "vdb")
        self.assertEqual(await self.driver.list_volumes(spec.name), {})

    async def test_cpu_time_follows_clock(self) -> None:
        spec = await self.spawn()
        self.clock.advance(2)
        self.assertEqual((await self.driver.get_info(spec.name)).cpu_time, 2 * 10**9)
        await self.driver.power_off(spec.name)
        self.clock.advance(5)
        self.assertEqual((await self.driver.get_info(spec.name)).cpu_time, 2 * 10**9)

    async def test_injected_failure(self) -> None:
        self.driver.fail_next("spawn", VirtError("no room"))
        spec = self.make_spec()
        with self.assertRaises(VirtError):
            await self.driver.spawn(spec)
        self.assertNotIn(spec.name, await self.driver.list_instances())
        await self.spawn()


class LibvirtTestDriverContractTests(VirtDriverContractMixin, unittest.TestCase):
    """The contract on libvirt's in-process test hypervisor."""

    async def setUp(self) -> None:
        self.driver = LibvirtDriver(reactor, "test:///default",
                                    instances_path=tempfile.gettempdir())
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(self.driver.close()))
        await self.driver.init_host()

    def test_capability_decides_tcg(self) -> None:
        # The test hypervisor lists no kvm domain type.
        self.assertEqual(self.driver.domain_type, "qemu")

    async def test_guests_created_elsewhere_are_listed(self) -> None:
        self.assertIn("test", await self.driver.list_instances())

    async def test_hotplug_unsupported_is_typed(self) -> None:
        spec = await self.spawn()
        with self.assertRaises(VirtError):
            await self.driver.attach_volume(spec.name, "vdb",
                                            VolumeSource(kind="file", path="/x.img"))
