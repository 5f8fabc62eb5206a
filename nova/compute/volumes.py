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


class VolumeNotAttached(NovaError):
    """The volume is not recorded attached to that instance."""

    code = "IncorrectState"
    status = 400


def volume_source(export: Mapping[str, Any] | None) -> VolumeSource:
    """
    @param export: the volume host's connection info (the volume record's
        C{export}; its forms are in L{nova.volume.exports.interface}).
    @return: what the virt driver attaches: an NBD export (unix socket) or
        an iSCSI LUN as a network disk that QEMU opens itself, or a file.
    @raise UnsupportedExport: no export, a malformed one, or a kind this
        host cannot attach (AoE; see docs/volume-exports.md).
    """
    if not export:
        raise UnsupportedExport("the volume has no export")
    kind = export.get("kind")
    try:
        if kind == "nbd":
            return VolumeSource(kind="nbd", path=_str(export, "socket"),
                                export=_str(export, "export"))
        if kind == "file":
            return VolumeSource(kind="file", path=_str(export, "path"))
        if kind == "iscsi":
            host, port = _portal(_str(export, "portal"))
            return VolumeSource(kind="iscsi", host=host, port=port,
                                iqn=_str(export, "iqn"), lun=export.get("lun"))
    except ValueError as e:
        raise UnsupportedExport(f"malformed {kind} export {dict(export)!r}: {e}") from None
    if kind == "aoe":
        # QEMU has no AoE client: the host kernel's aoe module would have
        # to make /dev/etherd/eS.N first, and nova does not load modules.
        raise UnsupportedExport(
            "this compute host cannot attach AoE exports: they need the aoe kernel module "
            "(which makes /dev/etherd/eS.N) loaded on the compute host; use the nbd or "
            "iscsi volume driver")
    raise UnsupportedExport(f"this compute host cannot attach {kind!r} exports")


def _str(export: Mapping[str, Any], key: str) -> str:
    if key not in export:
        raise ValueError(f"it has no {key}")
    value = export[key]
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string, not {value!r}")
    return value


def _portal(portal: str) -> tuple[str, int]:
    """@return: the address and port of an iSCSI portal C{"a.b.c.d:port"}."""
    host, sep, port = portal.rpartition(":")
    if not sep or not port.isdigit() or not port.isascii():
        raise ValueError(f"portal {portal!r} is not address:port")
    return host, int(port)


class ComputeVolumes:
    """
    @param volumes: the volume records (L{nova.volume.repository.VolumeRepository}).
    @param driver: the host's virt driver.
    @param aoe: the host's AoE initiator (L{nova.compute.aoe.AoeInitiator}),
        which turns an AoE export into a block device; C{None}: AoE exports
        are refused with L{volume_source}'s reason.
    """

    def __init__(self, volumes: Any, driver: Any, aoe: Any = None) -> None:
        self._volumes = volumes
        self._driver = driver
        self._aoe = aoe

    async def _source(self, export: Mapping[str, Any] | None) -> VolumeSource:
        """@return: what the virt driver attaches for C{export} (L{volume_source})."""
        if export and export.get("kind") == "aoe" and self._aoe is not None:
            device = await self._aoe.device(export.get("shelf"), export.get("slot"))
            return VolumeSource(kind="block", path=device)
        return volume_source(export)

    async def _moving(self, instance_id: str, volume_id: str,
                      attach_status: str) -> tuple[Volume, str] | None:
        """
        @return: the volume and its guest device when the record says it is
            C{attach_status} (attaching, detaching) on C{instance_id};
            C{None} (logged) when not: a late or repeated message.
        """
        volume: Volume = await self._volumes.get(volume_id)
        if volume.instance_id != instance_id or volume.attach_status != attach_status:
            log.info("{vol} is not {status} on {id}: left alone", vol=volume_id,
                     status=attach_status, id=instance_id)
            return None
        assert volume.guest_device is not None
        return volume, volume.guest_device

    async def attach(self, instance_id: str, volume_id: str) -> None:
        """
        Plug the volume in at the device the API recorded; the record ends
        C{attached}, or back C{available} with the reason when it failed.
        """
        moving = await self._moving(instance_id, volume_id, states.ATTACHING)
        if moving is None:
            return
        volume, device = moving
        try:
            source = await self._source(volume.export)
            await self._driver.attach_volume(instance_id, device, source)
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
        moving = await self._moving(instance_id, volume_id, states.DETACHING)
        if moving is None:
            return
        _volume, device = moving
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

    async def reattach(self, instance_id: str, volume_id: str) -> bool:
        """
        Plug a volume recorded attached to the instance into its guest
        again at the recorded device, when the guest lost it (C{nova-manage
        volume reattach}). The caller holds the instance's lock, so no
        detach can finish in between; the record does not change.

        @return: whether it had to be plugged (C{False}: the guest has it).
        @raise VolumeNotAttached: the record says it is not attached there.
        """
        volume: Volume = await self._volumes.get(volume_id)
        if volume.instance_id != instance_id or volume.attach_status != states.ATTACHED:
            raise VolumeNotAttached(f"{volume_id} is not attached to {instance_id}")
        return await self._plug_again(instance_id, volume,
                                      await self._driver.list_volumes(instance_id))

    async def _plug_again(self, instance_id: str, volume: Volume,
                          present: Mapping[str, Any]) -> bool:
        device = volume.guest_device
        assert device is not None
        if device in present:
            return False
        await self._driver.attach_volume(instance_id, device, await self._source(volume.export))
        return True

    async def replug(self, instance_id: str) -> int:
        """
        Plug the instance's attached volumes into its guest again after it
        started (hot-plugged disks do not survive a stop; EBS volumes stay
        attached across one). A volume that cannot be plugged is logged
        and stays recorded attached (C{nova-manage volume reattach} retries).

        @return: how many were plugged.
        """
        attached = [v for v in await self._volumes.on_instance(instance_id)
                    if v.attach_status == states.ATTACHED]
        if not attached:
            return 0
        present = await self._driver.list_volumes(instance_id)
        plugged = 0
        for volume in attached:
            try:
                plugged += await self._plug_again(instance_id, volume, present)
            except Exception:
                log.failure("plugging {vol} into {id} again failed", vol=volume.volume_id,
                            id=instance_id)
        return plugged

    async def release(self, instance_id: str) -> None:
        """The instance is gone (terminated): its volumes are detached and free."""
        for volume in await self._volumes.on_instance(instance_id):
            try:
                await self._volumes.transition(volume.volume_id, "detached",
                                               instance_id=instance_id)
            except NovaError:
                log.failure("releasing {vol} of {id}", vol=volume.volume_id, id=instance_id)
