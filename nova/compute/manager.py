"""
nova-compute: the node worker (topics C{compute} and C{compute.<host>}).

It turns instance records into guests through the virt driver and reports
the outcome back into the records. The API and the scheduler have already
moved a record to the state the action leads through (pending, stopping,
shutting-down); the node finishes the move (running, stopped, terminated)
or, on failure, records why.

One operation at a time per instance (a lock per instance id): a terminate
that arrives while the spawn runs waits for it and then destroys what it
made. A restarted node adopts its guests: L{ComputeManager.init_host}
reconciles the records with what the hypervisor reports, and so does a
periodic task.
"""

from __future__ import annotations

import base64
import shutil
import attr
import uuid
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Sequence

from contextlib import asynccontextmanager
from twisted.internet import defer
from twisted.logger import Logger

from nova.compute import instance_types, states
from nova.compute.disks import DiskMaker
from nova.compute.imagecache import ImageCache, ImageUnavailable
from nova.compute.records import Instance
from nova.compute.repository import InstanceRepository, InvalidInstanceIDNotFound
from nova.context import RequestContext
from nova.exception import ClientError
from nova.image.records import Image
from nova.image.repository import ImageRepository
from nova.network.linux_net import tap_name
from nova.rpc.dispatcher import expose
from nova.service import Manager, PeriodicTask
from nova.virt import power_state
from nova.virt.console import read_tail
from nova.virt.errors import InstanceNotFound
from nova.virt.records import HostCapacity, InstanceSpec

log = Logger()

#: how much of the console log GetConsoleOutput returns (EC2: the last 64 KiB)
CONSOLE_BYTES = 64 * 1024
_GUEST_UUIDS = uuid.UUID("6e6f7661-2d67-7565-7374-2d7575696473")

ThreadRunner = Callable[..., Awaitable[Any]]


def guest_uuid(instance_id: str) -> str:
    """@return: the stable libvirt UUID of an instance's guest."""
    return str(uuid.uuid5(_GUEST_UUIDS, instance_id))


def _reason(base: tuple[str, str], detail: object) -> tuple[str, str]:
    return (base[0], f"{base[1]} ({detail})")


class ComputeManager(Manager):
    """
    @param driver: the host's L{nova.virt.interfaces.IVirtDriver}.
    @param instances: the instance records.
    @param images: the image records.
    @param image_cache: fetches and keeps base images.
    @param disks: makes instance disks.
    @param instances_dir: where each instance's directory (disk, console log) goes.
    @param run_in_thread: runs blocking file work off the reactor thread.
    @param kernel_cmdline: the command line of kernel-booted instances.
    @param networking: plugs instances into their networks and enforces
        their security groups (L{nova.compute.networking.ComputeNetworking}).
    @param volumes: hot-plugs volumes (L{nova.compute.volumes.ComputeVolumes}).
    """

    binary = "nova-compute"

    def __init__(self, host: str, clock: Any, *, driver: Any, instances: InstanceRepository,
                 images: ImageRepository, image_cache: ImageCache, disks: DiskMaker,
                 instances_dir: Path, run_in_thread: ThreadRunner,
                 kernel_cmdline: str, networking: Any, volumes: Any) -> None:
        super().__init__(host, clock)
        self._driver = driver
        self._instances = instances
        self._images = images
        self._cache = image_cache
        self._disks = disks
        self._dir = Path(instances_dir)
        self._run_in_thread = run_in_thread
        self._cmdline = kernel_cmdline
        self._networking = networking
        self._volumes = volumes
        self._locks: dict[str, defer.DeferredLock] = {}
        self._host_capacity = HostCapacity(vcpus=0, memory_mb=0, disk_gb=0)
        #: instance id to (vcpus, memory MiB) of what this host holds
        self._usage: dict[str, tuple[int, int]] = {}

    # -- life cycle --------------------------------------------------------------

    async def init_host(self) -> None:
        """Connect the driver, learn the host's size, adopt the guests found."""
        await self._driver.init_host()
        self._host_capacity = await self._driver.capacity()
        await self.reconcile(starting=True)

    def capacity(self) -> dict[str, Any]:
        """@return: the host's size and what its instances use (for the scheduler)."""
        cap = self._host_capacity
        return {"vcpus": cap.vcpus, "memory_mb": cap.memory_mb, "disk_gb": cap.disk_gb,
                "vcpus_used": sum(v for v, _ in self._usage.values()),
                "memory_mb_used": sum(m for _, m in self._usage.values()),
                "instances": len(self._usage)}

    def periodic_tasks(self) -> Sequence[PeriodicTask]:
        return (self.reconcile,)

    @asynccontextmanager
    async def _locked(self, instance_id: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(instance_id, defer.DeferredLock())
        await lock.acquire()
        try:
            yield
        finally:
            lock.release()
            if not lock.locked and not lock.waiting:
                self._locks.pop(instance_id, None)

    def _busy(self, instance_id: str) -> bool:
        return instance_id in self._locks

    async def _mine(self, instance_id: str) -> Instance | None:
        try:
            instance = await self._instances.get(instance_id)
        except InvalidInstanceIDNotFound:
            log.warn("{host}: no instance {id}", host=self.host, id=instance_id)
            return None
        if instance.host != self.host:
            log.warn("{host}: {id} belongs to host {other}", host=self.host, id=instance_id,
                     other=instance.host)
            return None
        return instance

    # -- spawning ----------------------------------------------------------------

    def _instance_dir(self, instance_id: str) -> Path:
        return self._dir / instance_id

    async def _image(self, image_id: str | None) -> Image | None:
        if image_id is None:
            return None
        image = await self._images.get(image_id)
        if not image.is_available:
            raise ImageUnavailable(f"The image '{image_id}' is {image.state}")
        return image

    async def _prepare(self, instance: Instance) -> InstanceSpec:
        """Fetch the images, make the instance's directory and disk: its guest spec."""
        machine = await self._image(instance.image_id)
        kernel = await self._image(instance.kernel_id)
        ramdisk = await self._image(instance.ramdisk_id)
        folder = self._instance_dir(instance.instance_id)
        await self._run_in_thread(folder.mkdir, 0o755, True, True)
        disk = folder / "disk"
        if machine is not None and machine.disk_format in ("raw", "qcow2") \
                and not await self._run_in_thread(disk.exists):
            base = await self._cache.fetch(machine)
            root_gb = instance_types.get(instance.instance_type).root_gb
            await self._disks.create_overlay(str(base), machine.disk_format, str(disk),
                                             root_gb)
        kernel_path = str(await self._cache.fetch(kernel)) if kernel is not None else None
        initrd_path = str(await self._cache.fetch(ramdisk)) if ramdisk is not None else None
        itype = instance_types.get(instance.instance_type)
        return InstanceSpec(
            name=instance.instance_id, uuid=guest_uuid(instance.instance_id),
            memory_mb=itype.memory_mb, vcpus=itype.vcpus,
            console_log=str(folder / "console.log"),
            kernel=kernel_path, initrd=initrd_path,
            cmdline=self._cmdline if kernel_path is not None else None,
            disk=str(disk) if machine is not None and machine.disk_format in ("raw", "qcow2")
            else None)

    async def _discard(self, instance_id: str) -> None:
        """Remove the guest and the instance's files; whatever is already gone is fine."""
        await self._driver.destroy(instance_id)
        await self._run_in_thread(shutil.rmtree, self._instance_dir(instance_id), True)
        self._usage.pop(instance_id, None)

    @expose
    async def run_instance(self, context: RequestContext, instance_id: str) -> None:
        """
        Spawn a pending instance scheduled here. On failure nothing is left
        (no guest, no disk) and the instance ends C{terminated} with a
        stateReason saying why.
        """
        async with self._locked(instance_id):
            instance = await self._mine(instance_id)
            if instance is None or instance.state != states.PENDING:
                return
            self._usage[instance_id] = (instance.vcpus, instance.memory_mb)
            began = self._clock.seconds()
            try:
                spec = await self._prepare(instance)
                nic = await self._networking.plug(context, instance)
                spec = attr.evolve(spec, mac=nic.mac, bridge=nic.bridge,
                                   target_dev=tap_name(instance_id))
                prepared = self._clock.seconds()
                await self._driver.spawn(spec)
            except Exception as e:
                log.failure("{host}: spawning {id} failed", host=self.host, id=instance_id)
                await self._fail_spawn(instance_id, e)
                return
            now = self._clock.seconds()
            log.info("{host}: {id} spawned in {total:.2f} s (images, disk, network {prep:.2f} s, "
                     "hypervisor {hyp:.2f} s)", host=self.host, id=instance_id,
                     total=now - began, prep=prepared - began, hyp=now - prepared)
            try:
                await self._instances.transition(instance_id, "spawned", state_reason=None,
                                                 power_state=power_state.RUNNING)
            except states.IncorrectInstanceState:
                # terminated while spawning: the queued terminate cleans up
                log.info("{id} was terminated while it spawned", id=instance_id)

    async def _fail_spawn(self, instance_id: str, error: Exception) -> None:
        base = states.CLIENT_INTERNAL_ERROR if isinstance(error, ClientError) \
            else states.SERVER_INTERNAL_ERROR
        try:
            await self._discard(instance_id)
            await self._networking.unplug(RequestContext.system(), instance_id)
        except Exception:
            log.failure("{host}: cleaning up after the failed spawn of {id}", host=self.host,
                        id=instance_id)
        await self._instances.transition(instance_id, "destroyed",
                                         state_reason=_reason(base, error),
                                         power_state=power_state.NOSTATE)

    # -- other actions -----------------------------------------------------------

    @expose
    async def terminate_instance(self, context: RequestContext, instance_id: str) -> None:
        """Destroy the guest and its files; the instance ends C{terminated}."""
        async with self._locked(instance_id):
            instance = await self._mine(instance_id)
            if instance is None or instance.state == states.TERMINATED:
                return
            await self._discard(instance_id)
            await self._networking.unplug(context, instance_id)
            await self._volumes.release(instance_id)
            await self._instances.transition(instance_id, "destroyed",
                                             power_state=power_state.NOSTATE)

    @expose
    async def reboot_instance(self, context: RequestContext, instance_id: str) -> None:
        """Hard-reboot a running guest (the record stays C{running})."""
        async with self._locked(instance_id):
            instance = await self._mine(instance_id)
            if instance is None or instance.state != states.RUNNING:
                return
            await self._driver.reboot(instance_id)

    @expose
    async def stop_instance(self, context: RequestContext, instance_id: str) -> None:
        """Power the guest off, keeping its disk; the instance ends C{stopped}."""
        async with self._locked(instance_id):
            instance = await self._mine(instance_id)
            if instance is None or instance.state != states.STOPPING:
                return
            try:
                await self._driver.power_off(instance_id)
            except InstanceNotFound:
                log.warn("{id}: its guest vanished; recording it stopped", id=instance_id)
            await self._instances.transition(instance_id, "powered_off",
                                             state_reason=states.USER_INITIATED_SHUTDOWN,
                                             power_state=power_state.SHUTOFF)

    @expose
    async def start_instance(self, context: RequestContext, instance_id: str) -> None:
        """Power a stopped guest on (re-creating it if the host lost it)."""
        async with self._locked(instance_id):
            instance = await self._mine(instance_id)
            if instance is None or instance.state != states.PENDING:
                return
            self._usage[instance_id] = (instance.vcpus, instance.memory_mb)
            try:
                try:
                    await self._driver.power_on(instance_id)
                except InstanceNotFound:
                    await self._driver.spawn(await self._prepare(instance))
            except Exception as e:
                log.failure("{host}: starting {id} failed", host=self.host, id=instance_id)
                await self._instances.update(instance_id, state=states.STOPPED,
                                             state_reason=_reason(states.SERVER_INTERNAL_ERROR,
                                                                  e))
                return
            await self._instances.transition(instance_id, "spawned", state_reason=None,
                                             power_state=power_state.RUNNING)
            await self._volumes.replug(instance_id)

    @expose
    async def get_console_output(self, context: RequestContext, instance_id: str) -> str:
        """@return: the last 64 KiB of the serial console, base64-encoded."""
        try:
            data = await self._driver.get_console_output(instance_id, CONSOLE_BYTES)
        except InstanceNotFound:
            data = await self._run_in_thread(self._console_file, instance_id)
        return base64.b64encode(data).decode("ascii")

    def _console_file(self, instance_id: str) -> bytes:
        # a stopped-and-gone guest still has its log file
        return read_tail(str(self._instance_dir(instance_id) / "console.log"), CONSOLE_BYTES)

    @expose
    async def attach_volume(self, context: RequestContext, instance_id: str, volume_id: str,
                            device: str) -> None:
        """Hot-plug a volume the API moved to C{attaching} (at the device it recorded)."""
        async with self._locked(instance_id):
            if await self._mine(instance_id) is not None:
                await self._volumes.attach(instance_id, volume_id)

    @expose
    async def detach_volume(self, context: RequestContext, instance_id: str, volume_id: str,
                            force: bool = False) -> None:
        """Unplug a volume the API moved to C{detaching}."""
        async with self._locked(instance_id):
            if await self._mine(instance_id) is not None:
                await self._volumes.detach(instance_id, volume_id, force)

    @expose
    async def reattach_volume(self, context: RequestContext, instance_id: str,
                              volume_id: str) -> bool:
        """
        Plug a volume recorded attached to the instance into its guest again,
        at the recorded device (C{nova-manage volume reattach}: the host lost
        it, e.g. in a restart). The record does not change.

        @return: whether it had to be plugged (C{False}: the guest has it).
        @raise InvalidInstanceIDNotFound: the instance is not on this host.
        """
        async with self._locked(instance_id):
            if await self._mine(instance_id) is None:
                raise InvalidInstanceIDNotFound(
                    f"The instance '{instance_id}' is not on host {self.host}")
            return bool(await self._volumes.reattach(instance_id, volume_id))

    @expose
    async def refresh_security_groups(self, context: RequestContext) -> int:
        """
        Rewrite the filter chains of every instance on this host from the
        security groups as they are now (one host transaction).

        @return: how many chains were written.
        """
        return await self._networking.refresh(await self._instances.on_host(self.host))

    # -- reconciliation ----------------------------------------------------------

    async def reconcile(self, starting: bool = False) -> None:
        """
        Bring the records of this host's instances in line with its guests.

        The record wins while an action is in flight; otherwise what the
        hypervisor says wins (L{states.reconciled_state}). At start-up the
        actions a previous run left unfinished are finished: a spawn is
        failed (unless its guest runs), a stop or a terminate is redone. A
        guest nova does not know is reported, never touched.
        """
        guests = set(await self._driver.list_instances())
        records = await self._instances.on_host(self.host)
        if starting:
            # filters from the records: what changed while this node was down
            await self._networking.refresh(records, exclusive=True)
        for instance in records:
            if instance.state == states.TERMINATED:
                continue
            if self._busy(instance.instance_id):
                continue
            try:
                await self._reconcile_one(instance, instance.instance_id in guests, starting)
            except Exception:
                log.failure("{host}: reconciling {id} failed", host=self.host,
                            id=instance.instance_id)
        known = {i.instance_id for i in records}
        for name in sorted(guests - known):
            log.warn("{host}: guest {name} is not a nova instance of this host; left alone",
                     host=self.host, name=name)
        # the records are the truth, except for instances an action is changing now
        usage = {i.instance_id: (i.vcpus, i.memory_mb)
                 for i in await self._instances.on_host(self.host)
                 if i.state != states.TERMINATED}
        busy = {k: v for k, v in self._usage.items() if self._busy(k)}
        self._usage = {**usage, **busy}

    async def _reconcile_one(self, instance: Instance, exists: bool, starting: bool) -> None:
        instance_id = instance.instance_id
        context = RequestContext.system()
        if starting and instance.state == states.SHUTTING_DOWN:
            await self.terminate_instance(context, instance_id)
            return
        if starting and instance.state == states.STOPPING:
            await self.stop_instance(context, instance_id)
            return
        power = (await self._driver.get_info(instance_id)).state if exists else None
        if starting and instance.state == states.PENDING:
            if power is not None and power_state.is_active(power):
                await self._instances.transition(instance_id, "spawned", state_reason=None,
                                                 power_state=power)
            else:
                await self._fail_spawn(instance_id, RuntimeError("interrupted by a restart"))
            return
        target = states.reconciled_state(instance.state, power)
        # written only if the record is still what was read: the API may
        # have moved it since (a stop, a terminate)
        if target is None:
            if power is not None and power != instance.power_state:
                await self._instances.update_if(instance_id, instance.state, power_state=power)
            return
        reason = None
        if target == states.STOPPED:
            reason = (states.INSTANCE_INITIATED_SHUTDOWN if power is not None
                      else _reason(states.SERVER_INTERNAL_ERROR, "the guest vanished"))
        log.info("{host}: {id} is {power} on the host: recording {state}", host=self.host,
                 id=instance_id, power=power_state.name(power) if power is not None else "gone",
                 state=target)
        written = await self._instances.update_if(
            instance_id, instance.state, state=target, state_reason=reason,
            power_state=power if power is not None else power_state.NOSTATE)
        if written is None:
            log.info("{host}: {id} changed meanwhile: left for the next reconcile",
                     host=self.host, id=instance_id)
