"""
An in-memory L{IVirtDriver}: the contract in executable form, for the unit
tests of the compute manager. It runs no guest; power states change at once,
and CPU time grows with its clock while a guest runs.
"""

from __future__ import annotations

import attrs
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from nova.virt import power_state
from nova.virt.console import read_tail
from nova.virt.errors import (DeviceInUse, DeviceNotFound, InstanceExists,
                              InstanceNotFound, InvalidInstanceState)
from nova.virt.interfaces import IVirtDriver
from nova.virt.records import (HostCapacity, InstanceInfo, InstanceSpec,
                               VolumeSource, check_device)


@attrs.define
class _Guest:
    spec: InstanceSpec
    state: int
    cpu_ns: int = 0
    started_at: float | None = None
    volumes: dict[str, VolumeSource] = attrs.Factory(dict)


@implementer(IVirtDriver)
class FakeDriver:
    """
    Guests as records in a dict.

    @ivar spawned: every spec spawned so far, in order (for assertions).
    """

    def __init__(self, clock: IReactorTime,
                 capacity: HostCapacity = HostCapacity(vcpus=16, memory_mb=32768,
                                                       disk_gb=500)) -> None:
        """
        @param clock: the time source for CPU time.
        @param capacity: what L{capacity} reports.
        """
        self._clock = clock
        self._capacity = capacity
        self._guests: dict[str, _Guest] = {}
        self._failures: dict[str, list[Exception]] = {}
        self.spawned: list[InstanceSpec] = []
        self.initialised = False

    def fail_next(self, method: str, error: Exception) -> None:
        """
        Make the next call of C{method} raise C{error} instead of acting,
        the way a hypervisor refuses (for tests of the caller's clean-up).

        @param method: a method name of L{IVirtDriver}, e.g. C{"spawn"}.
        @param error: the exception to raise.
        """
        if method not in IVirtDriver.names():
            raise ValueError(f"{method!r} is not a driver method")
        self._failures.setdefault(method, []).append(error)

    def _maybe_fail(self, method: str) -> None:
        pending = self._failures.get(method)
        if pending:
            raise pending.pop(0)

    def _get(self, name: str) -> _Guest:
        try:
            return self._guests[name]
        except KeyError:
            raise InstanceNotFound(f"no guest named {name!r}") from None

    def _start(self, guest: _Guest) -> None:
        guest.state = power_state.RUNNING
        guest.started_at = self._clock.seconds()

    def _stop(self, guest: _Guest) -> None:
        guest.cpu_ns = self._cpu_ns(guest)
        guest.state = power_state.SHUTOFF
        guest.started_at = None
        guest.volumes.clear()  # hot-plugged disks do not survive a stop

    def _cpu_ns(self, guest: _Guest) -> int:
        if guest.started_at is None:
            return guest.cpu_ns
        return guest.cpu_ns + int((self._clock.seconds() - guest.started_at) * 1e9)

    def _info(self, guest: _Guest) -> InstanceInfo:
        kib = guest.spec.memory_mb * 1024
        return InstanceInfo(state=guest.state, max_mem=kib, mem=kib,
                            num_cpu=guest.spec.vcpus, cpu_time=self._cpu_ns(guest))

    async def init_host(self) -> None:
        """See L{IVirtDriver.init_host}."""
        self._maybe_fail("init_host")
        self.initialised = True

    async def close(self) -> None:
        """See L{IVirtDriver.close}."""
        self.initialised = False

    async def list_instances(self) -> list[str]:
        """See L{IVirtDriver.list_instances}."""
        self._maybe_fail("list_instances")
        return list(self._guests)

    async def spawn(self, spec: InstanceSpec) -> InstanceInfo:
        """See L{IVirtDriver.spawn}."""
        if not isinstance(spec, InstanceSpec):
            raise TypeError("spawn needs an InstanceSpec")
        if spec.name in self._guests:
            raise InstanceExists(f"a guest named {spec.name!r} exists")
        self._maybe_fail("spawn")
        guest = _Guest(spec=spec, state=power_state.NOSTATE)
        self._start(guest)
        self._guests[spec.name] = guest
        self.spawned.append(spec)
        return self._info(guest)

    async def destroy(self, name: str) -> None:
        """See L{IVirtDriver.destroy}."""
        self._maybe_fail("destroy")
        self._guests.pop(name, None)

    async def reboot(self, name: str) -> None:
        """See L{IVirtDriver.reboot}."""
        guest = self._get(name)
        if not power_state.is_active(guest.state):
            raise InvalidInstanceState(f"{name} is {power_state.name(guest.state)}")
        self._maybe_fail("reboot")
        self._stop(guest)
        self._start(guest)

    async def power_off(self, name: str) -> None:
        """See L{IVirtDriver.power_off}."""
        guest = self._get(name)
        self._maybe_fail("power_off")
        if guest.state != power_state.SHUTOFF:
            self._stop(guest)

    async def power_on(self, name: str) -> None:
        """See L{IVirtDriver.power_on}."""
        guest = self._get(name)
        self._maybe_fail("power_on")
        if guest.state != power_state.RUNNING:
            self._start(guest)

    async def get_info(self, name: str) -> InstanceInfo:
        """See L{IVirtDriver.get_info}."""
        return self._info(self._get(name))

    async def get_console_output(self, name: str, max_bytes: int = 65536) -> bytes:
        """See L{IVirtDriver.get_console_output}."""
        guest = self._get(name)
        # A blocking read, accepted in this test double: the log is small and local.
        return read_tail(guest.spec.console_log, max_bytes)

    async def attach_volume(self, name: str, device: str, source: VolumeSource) -> None:
        """See L{IVirtDriver.attach_volume}."""
        check_device(device)
        if not isinstance(source, VolumeSource):
            raise TypeError("attach_volume needs a VolumeSource")
        guest = self._get(name)
        if not power_state.is_active(guest.state):
            raise InvalidInstanceState(f"{name} is {power_state.name(guest.state)}")
        if device == "vda" or device in guest.volumes:
            raise DeviceInUse(f"{name} already has a disk at {device}")
        self._maybe_fail("attach_volume")
        guest.volumes[device] = source

    async def detach_volume(self, name: str, device: str) -> None:
        """See L{IVirtDriver.detach_volume}."""
        check_device(device)
        guest = self._get(name)
        if device not in guest.volumes:
            raise DeviceNotFound(f"{name} has no volume at {device}")
        self._maybe_fail("detach_volume")
        del guest.volumes[device]

    async def list_volumes(self, name: str) -> dict[str, VolumeSource]:
        """See L{IVirtDriver.list_volumes}."""
        return dict(self._get(name).volumes)

    async def capacity(self) -> HostCapacity:
        """See L{IVirtDriver.capacity}."""
        return self._capacity
