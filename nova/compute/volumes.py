"""
The compute host's side of volumes: hot-plugging an exported volume into a
running guest through the virt driver, unplugging it, and letting go of a
terminated instance's volumes. The API has already moved the record
(attaching, detaching); the compute host finishes the move or records why
it could not.
"""

from __future__ import annotations

from typing import Any, Mapping

from twisted.logger import Logger

from nova.exception import NovaError
from nova.virt.records import VolumeSource
from nova.volume import states
from nova.volume.records import Volume

log = Logger()


class UnsupportedExport(NovaError):
    """The volume's export is of a kind this compute host cannot attach."""

    code = "UnsupportedOperation"
    status = 400


def volume_source(export: Mapping[str, Any] | None) -> VolumeSource:
    """
    @param export: the volume host's connection info (the volume record's
        C{export}).
    @return: what the virt driver attaches.
    @raise UnsupportedExport: no export, or a kind this host cannot attach
        (an NBD export over a unix socket is what crosses namespaces; see
        docs/volume-exports.md).
    """
    if not export:
        raise UnsupportedExport("the volume has no export")
    kind = export.get("kind")
    if kind == "nbd":
        return VolumeSource(kind="nbd", path=str(export["socket"]),
                            export=str(export["export"]))
    if kind == "file":
        return VolumeSource(kind="file", path=str(export["path"]))
    raise UnsupportedExport(f"this compute host cannot attach {kind!r} exports")


class ComputeVolumes:
    """
    @param volumes: the volume records (L{nova.volume.repository.VolumeRepository}).
    @param driver: the host's virt driver.
    """

    def __init__(self, volumes: Any, driver: Any) -> None:
        self._volumes = volumes
        self._driver = driver

    async def attach(self, instance_id: str, volume_id: str) -> None:
        """
        Plug the volume in at the device the API recorded; the record ends
        C{attached}, or back C{available} with the reason when it failed.
        """
        volume: Volume = await self._volumes.get(volume_id)
        if volume.instance_id != instance_id or volume.attach_status != states.ATTACHING:
            log.info("{vol} is not attaching to {id}: left alone", vol=volume_id,
                     id=instance_id)
            return
        device = volume.guest_device
        assert device is not None
        try:
            await self._driver.attach_volume(instance_id, device, volume_source(volume.export))
        except Exception as e:
            log.failure("attaching {vol} to {id} failed", vol=volume_id, id=instance_id)
            await self._volumes.transition(volume_id, "attach_failed", instance_id=instance_id,
                                           status_reason=f"attach failed: {e}")
            return
        await self._volumes.transition(volume_id, "attached", instance_id=instance_id)

    async def detach(self, instance_id: str, volume_id: str, force: bool = False) -> None:
        """
        Unplug the volume; the record ends C{available}. When the guest
        refuses (and C{force} is not set) it goes back to C{in-use}.
        """
        volume: Volume = await self._volumes.get(volume_id)
        if volume.instance_id != instance_id or volume.attach_status != states.DETACHING:
            log.info("{vol} is not detaching from {id}: left alone", vol=volume_id,
                     id=instance_id)
            return
        device = volume.guest_device
        assert device is not None
        try:
            if device in await self._driver.list_volumes(instance_id):
                await self._driver.detach_volume(instance_id, device)
        except Exception as e:
            if not force:
                log.failure("detaching {vol} from {id} failed", vol=volume_id, id=instance_id)
                await self._volumes.transition(volume_id, "detach_failed",
                                               instance_id=instance_id,
                                               status_reason=f"detach failed: {e}")
                return
            log.warn("forced detach of {vol} from {id}: {e}", vol=volume_id, id=instance_id,
                     e=e)
        await self._volumes.transition(volume_id, "detached", instance_id=instance_id)

    async def release(self, instance_id: str) -> None:
        """The instance is gone (terminated): its volumes are detached and free."""
        for volume in await self._volumes.on_instance(instance_id):
            try:
                await self._volumes.transition(volume.volume_id, "detached",
                                               instance_id=instance_id)
            except NovaError:
                log.failure("releasing {vol} of {id}", vol=volume.volume_id, id=instance_id)
