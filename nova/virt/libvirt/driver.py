"""
L{IVirtDriver} on libvirt. Every method builds one function of the
connection and runs it in the connection's worker thread, so each
operation is one uninterrupted sequence of libvirt calls.
"""

from __future__ import annotations

import os
from typing import Any, Awaitable, Callable

import libvirt
from twisted.internet.interfaces import IReactorFromThreads
from twisted.python import log
from zope.interface import implementer

from nova.utils.polling import poll_until
from nova.virt.console import read_tail
from nova.virt.errors import (DeviceInUse, DeviceNotFound, InstanceExists,
                              InstanceNotFound, InvalidInstanceState, VirtError)
from nova.virt.interfaces import IVirtDriver
from nova.virt.libvirt import domain_xml
from nova.virt.libvirt.capability import probe_domain_type
from nova.virt.libvirt.connection import LibvirtConnection
from nova.virt.records import (HostCapacity, InstanceInfo, InstanceSpec,
                               VolumeSource, check_device)


def _lookup(conn: Any, name: str) -> Any:
    try:
        return conn.lookupByName(name)
    except libvirt.libvirtError as e:
        if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            raise InstanceNotFound(f"no guest named {name!r}") from e
        raise


def _info(dom: Any) -> InstanceInfo:
    state, max_mem, mem, num_cpu, cpu_time = dom.info()
    return InstanceInfo(state=state, max_mem=max_mem, mem=mem, num_cpu=num_cpu,
                        cpu_time=cpu_time)


def _require_active(dom: Any, name: str) -> None:
    if not dom.isActive():
        raise InvalidInstanceState(f"{name} is not running")


async def wait_for_removal(clock: Any, devices: Callable[[], Awaitable[list[str]]],
                           device: str, *, timeout: float, interval: float = 0.2) -> None:
    """
    Wait until C{device} is no longer among the guest's C{devices()}.

    @raise VirtError: it is still there after C{timeout} seconds (the guest
        did not release it: the caller records the detach as failed).
    """
    async def released() -> bool:
        return device not in await devices()
    if not await poll_until(clock, released, timeout=timeout, interval=interval):
        raise VirtError(f"the guest has not released {device} within {timeout:g} s")


@implementer(IVirtDriver)
class LibvirtDriver:
    """
    Guests as persistent libvirt domains.

    @ivar domain_type: C{"kvm"} or C{"qemu"}, known after L{init_host}.
    """

    def __init__(self, reactor: IReactorFromThreads, uri: str, instances_path: str,
                 domain_type: str | None = None, machine: str = "pc",
                 cpuinfo_path: str = "/proc/cpuinfo",
                 kvm_device: str = "/dev/kvm", detach_timeout: float = 30.0) -> None:
        """
        @param reactor: delivers the worker thread's results.
        @param uri: the libvirt URI of this host's libvirtd.
        @param instances_path: where instance disks live (its file system
            is the disk capacity reported).
        @param domain_type: force C{"kvm"} or C{"qemu"}; C{None} decides by
            capability at L{init_host}.
        @param machine: the QEMU machine type.
        @param cpuinfo_path: read for the capability check.
        @param kvm_device: checked for the capability check.
        @param detach_timeout: seconds a guest has to release a detached disk.
        """
        if domain_type is not None and domain_type not in domain_xml.DOMAIN_TYPES:
            raise ValueError(f"domain type {domain_type!r} is not kvm or qemu")
        self._conn = LibvirtConnection(reactor, uri)
        self._reactor = reactor
        self._detach_timeout = detach_timeout
        self._instances_path = instances_path
        self._machine = machine
        self._cpuinfo_path = cpuinfo_path
        self._kvm_device = kvm_device
        self.domain_type = domain_type

    async def init_host(self) -> None:
        """See L{IVirtDriver.init_host}."""
        def probe(conn: Any) -> str:
            return probe_domain_type(conn.getCapabilities(), self._cpuinfo_path,
                                     self._kvm_device)
        chosen = await self._conn.run(probe)
        if self.domain_type is None:
            self.domain_type = chosen
        log.msg(f"libvirt driver on {self._conn.uri}: domain type {self.domain_type}"
                f" (capability check says {chosen})")

    async def close(self) -> None:
        """See L{IVirtDriver.close}."""
        await self._conn.close()

    async def list_instances(self) -> list[str]:
        """See L{IVirtDriver.list_instances}."""
        return await self._conn.run(
            lambda conn: [dom.name() for dom in conn.listAllDomains()])

    async def spawn(self, spec: InstanceSpec) -> InstanceInfo:
        """See L{IVirtDriver.spawn}."""
        if not isinstance(spec, InstanceSpec):
            raise TypeError("spawn needs an InstanceSpec")
        if self.domain_type is None:
            raise VirtError("init_host has not run")
        xml = domain_xml.build_domain(spec, self.domain_type, self._machine)

        def spawn(conn: Any) -> InstanceInfo:
            try:
                _lookup(conn, spec.name)
            except InstanceNotFound:
                pass
            else:
                raise InstanceExists(f"a guest named {spec.name!r} exists")
            dom = conn.defineXML(xml)
            try:
                dom.create()
            except BaseException:
                # A failed spawn leaves no domain behind.
                try:
                    dom.undefine()
                except libvirt.libvirtError as e:
                    log.msg(f"could not undefine {spec.name} after a failed start: {e}")
                raise
            return _info(dom)
        return await self._conn.run(spawn)

    async def destroy(self, name: str) -> None:
        """See L{IVirtDriver.destroy}."""
        def destroy(conn: Any) -> None:
            try:
                dom = _lookup(conn, name)
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
            except InstanceNotFound:
                pass  # already gone: destroy is idempotent
            except libvirt.libvirtError as e:
                if e.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                    raise
        await self._conn.run(destroy)

    async def reboot(self, name: str) -> None:
        """See L{IVirtDriver.reboot}."""
        def reboot(conn: Any) -> None:
            dom = _lookup(conn, name)
            _require_active(dom, name)
            # Hard reboot as in 2010 nova: a new hypervisor process, which
            # works whether or not the guest cooperates.
            dom.destroy()
            dom.create()
        await self._conn.run(reboot)

    async def power_off(self, name: str) -> None:
        """See L{IVirtDriver.power_off}."""
        def power_off(conn: Any) -> None:
            dom = _lookup(conn, name)
            if dom.isActive():
                dom.destroy()
        await self._conn.run(power_off)

    async def power_on(self, name: str) -> None:
        """See L{IVirtDriver.power_on}."""
        def power_on(conn: Any) -> None:
            dom = _lookup(conn, name)
            if not dom.isActive():
                dom.create()
        await self._conn.run(power_on)

    async def get_info(self, name: str) -> InstanceInfo:
        """See L{IVirtDriver.get_info}."""
        return await self._conn.run(lambda conn: _info(_lookup(conn, name)))

    async def get_console_output(self, name: str, max_bytes: int = 65536) -> bytes:
        """See L{IVirtDriver.get_console_output}."""
        def console(conn: Any) -> bytes:
            path = domain_xml.console_path(_lookup(conn, name).XMLDesc(0))
            return b"" if path is None else read_tail(path, max_bytes)
        return await self._conn.run(console)

    async def attach_volume(self, name: str, device: str, source: VolumeSource) -> None:
        """See L{IVirtDriver.attach_volume}."""
        check_device(device)
        if not isinstance(source, VolumeSource):
            raise TypeError("attach_volume needs a VolumeSource")
        disk = domain_xml.build_volume_disk(device, source)

        def attach(conn: Any) -> None:
            dom = _lookup(conn, name)
            _require_active(dom, name)
            if device in domain_xml.disk_devices(dom.XMLDesc(0)):
                raise DeviceInUse(f"{name} already has a disk at {device}")
            dom.attachDeviceFlags(disk, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        await self._conn.run(attach)

    async def detach_volume(self, name: str, device: str) -> None:
        """See L{IVirtDriver.detach_volume}."""
        check_device(device)

        def detach(conn: Any) -> None:
            dom = _lookup(conn, name)
            disk = domain_xml.disk_element(dom.XMLDesc(0), device)
            if disk is None or device == domain_xml.ROOT_DEVICE:
                raise DeviceNotFound(f"{name} has no volume at {device}")
            dom.detachDeviceFlags(disk, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        await self._conn.run(detach)
        # libvirt answers once it asked the guest, or after ~5 s without the
        # guest's answer: the disk is detached when the live XML lacks it
        await wait_for_removal(self._reactor, lambda: self._devices(name), device,
                               timeout=self._detach_timeout)

    async def _devices(self, name: str) -> list[str]:
        return await self._conn.run(
            lambda conn: domain_xml.disk_devices(_lookup(conn, name).XMLDesc(0)))

    async def list_volumes(self, name: str) -> dict[str, VolumeSource]:
        """See L{IVirtDriver.list_volumes}."""
        return await self._conn.run(
            lambda conn: domain_xml.parse_volumes(_lookup(conn, name).XMLDesc(0)))

    async def capacity(self) -> HostCapacity:
        """See L{IVirtDriver.capacity}."""
        def capacity(conn: Any) -> HostCapacity:
            _model, memory_mb, cpus = conn.getInfo()[:3]
            fs = os.statvfs(self._instances_path)
            return HostCapacity(vcpus=cpus, memory_mb=memory_mb,
                                disk_gb=fs.f_frsize * fs.f_blocks // (1024 ** 3))
        return await self._conn.run(capacity)
