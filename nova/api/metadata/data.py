"""
What the metadata service tells a guest, and how the guest is recognised.

A guest is known by the one thing it cannot forge on its own network: its
fixed IP. L{MetadataSource.for_address} follows the address to the fixed IP
record (whose C{instance_id} is authoritative), then to the instance, its
key pair and its image, and returns an L{InstanceMetadata}: plain values,
ready to render. An address that is not a fixed IP in use, or whose instance
is gone or terminated, gets nothing (C{None}): the service answers 404 and
never another instance's data.
"""

from __future__ import annotations

import base64
import ipaddress
from typing import Any

import attr
from twisted.logger import Logger

from nova.compute import states
from nova.compute.records import Instance
from nova.compute.repository import InstanceRepository
from nova.datastore.errors import KeyPairNotFound
from nova.datastore.repositories import KeyPairRepository
from nova.exception import InvalidParameterValue, NotFound
from nova.network.fixed_ips import FixedIpRepository

log = Logger()

#: the root device an instance gets when its image does not name one (what
#: DescribeInstances shows as C{rootDeviceName})
DEFAULT_ROOT_DEVICE = "/dev/sda1"

#: EC2's answer for C{ami-manifest-path} when the image has no manifest known
UNKNOWN_MANIFEST = "(unknown)"


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class InstanceMetadata:
    """
    Everything one instance may read about itself.

    @ivar hostname: C{hostname} and C{local-hostname}: the instance id, the
        name its DHCP entry gives it (see C{docs/metadata.md}).
    @ivar public_ipv4: its elastic IP, or C{None} (the keys are then absent,
        as on EC2).
    @ivar public_keys: C{(name, OpenSSH public key)} pairs, in index order.
    @ivar block_devices: C{(virtual name, device)} pairs, in listing order
        (C{ami}, C{root}; attached volumes later).
    @ivar manifest_path: C{ami-manifest-path}: the image's location in the
        object store, or C{(unknown)}.
    @ivar user_data: decoded user-data, or C{None} when there is none.
    """

    instance_id: str
    reservation_id: str
    image_id: str
    kernel_id: str | None = None
    ramdisk_id: str | None = None
    instance_type: str
    launch_index: int
    availability_zone: str
    hostname: str
    local_ipv4: str
    public_ipv4: str | None = None
    security_groups: tuple[str, ...] = ()
    public_keys: tuple[tuple[str, str], ...] = ()
    block_devices: tuple[tuple[str, str], ...] = ()
    manifest_path: str = UNKNOWN_MANIFEST
    user_data: bytes | None = None


def canonical_address(text: str) -> str | None:
    """
    @param text: an address as a peer or a header names it.
    @return: its dotted IPv4 form (an IPv4-mapped IPv6 address is unwrapped),
        or C{None} when it is not an IPv4 address.
    """
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is None:
            return None
        address = address.ipv4_mapped
    return str(address)


class MetadataSource:
    """
    Reads an instance's metadata from the datastore, by its fixed IP.

    Key pairs are looked up in the instance's project, by the name it was
    launched with (EC2 key pairs belong to the account, here the project); a
    key pair deleted since the launch is no longer served.
    """

    def __init__(self, instances: InstanceRepository, fixed_ips: FixedIpRepository,
                 keypairs: KeyPairRepository, images: Any = None,
                 volumes: Any = None) -> None:
        """
        @param instances: the instance records.
        @param fixed_ips: the fixed IPs in use (who has which address).
        @param keypairs: the key pairs of every project.
        @param images: an L{nova.image.repository.ImageRepository} for the
            manifest path and root device name, or C{None} (then
            C{(unknown)} and L{DEFAULT_ROOT_DEVICE}).
        @param volumes: an L{nova.volume.repository.VolumeRepository}: the
            attached volumes appear as C{ebs1}, C{ebs2} ... (C{None}: none).
        """
        self._instances = instances
        self._fixed_ips = fixed_ips
        self._keypairs = keypairs
        self._images = images
        self._volumes = volumes

    async def for_address(self, address: str) -> InstanceMetadata | None:
        """
        @param address: the caller's IPv4 address.
        @return: the metadata of the instance that holds C{address} as its
            fixed IP, or C{None}: not an address in use, deallocated, the
            instance gone or terminated.
        @raise nova.datastore.errors.DatastoreError: the datastore failed
            (the caller answers 500, never another instance's data).
        """
        canonical = canonical_address(address)
        if canonical is None:
            return None
        try:
            fixed = await self._fixed_ips.get(canonical)
        except NotFound:
            return None
        if not fixed.allocated:
            return None  # deallocated, waiting for its lease to end
        try:
            instance = await self._instances.get(fixed.instance_id)
        except (NotFound, InvalidParameterValue):
            return None
        if instance.state == states.TERMINATED:
            return None
        if instance.private_ip is not None and instance.private_ip != canonical:
            # the records disagree (a change in flight): answer nothing rather
            # than risk answering for the wrong instance
            log.warn("fixed IP {address} names {instance_id}, whose address is {other}",
                     address=canonical, instance_id=instance.instance_id,
                     other=instance.private_ip)
            return None
        return await self._build(instance, canonical)

    async def _build(self, instance: Instance, address: str) -> InstanceMetadata:
        manifest_path, root_device = await self._image_facts(instance.image_id)
        return InstanceMetadata(
            instance_id=instance.instance_id,
            reservation_id=instance.reservation_id,
            image_id=instance.image_id,
            kernel_id=instance.kernel_id,
            ramdisk_id=instance.ramdisk_id,
            instance_type=instance.instance_type,
            launch_index=instance.launch_index,
            availability_zone=instance.availability_zone,
            hostname=instance.instance_id,
            local_ipv4=address,
            public_ipv4=instance.public_ip or None,
            security_groups=tuple(instance.security_groups),
            public_keys=await self._public_keys(instance),
            block_devices=block_devices(root_device) + await self._ebs(instance.instance_id),
            manifest_path=manifest_path,
            user_data=base64.b64decode(instance.user_data) if instance.user_data else None,
        )

    async def _ebs(self, instance_id: str) -> tuple[tuple[str, str], ...]:
        """@return: C{ebsN} entries for the attached volumes, in device order (as EC2)."""
        if self._volumes is None:
            return ()
        devices = sorted(v.device for v in await self._volumes.on_instance(instance_id)
                         if v.attach_status == "attached" and v.device)
        return tuple((f"ebs{n}", device[len("/dev/"):] if device.startswith("/dev/")
                      else device) for n, device in enumerate(devices, 1))

    async def _public_keys(self, instance: Instance) -> tuple[tuple[str, str], ...]:
        if not instance.key_name:
            return ()
        try:
            pair = await self._keypairs.get(instance.project_id, instance.key_name)
        except KeyPairNotFound:
            return ()
        return ((pair.name, pair.public_key.strip()),)

    async def _image_facts(self, image_id: str) -> tuple[str, str]:
        if self._images is None:
            return UNKNOWN_MANIFEST, DEFAULT_ROOT_DEVICE
        try:
            image = await self._images.get(image_id)
        except (NotFound, ValueError):
            # deregistered since the launch, or an id of another kind
            return UNKNOWN_MANIFEST, DEFAULT_ROOT_DEVICE
        return image.image_location, image.root_device_name or DEFAULT_ROOT_DEVICE


def block_devices(root_device: str) -> tuple[tuple[str, str], ...]:
    """
    @param root_device: the instance's root device name (C{/dev/sda1}).
    @return: the C{block-device-mapping/} entries of an instance-store
        instance, as EC2 gave them: C{ami} without C{/dev/}, C{root} with it.
    """
    bare = root_device[len("/dev/"):] if root_device.startswith("/dev/") else root_device
    return (("ami", bare), ("root", "/dev/" + bare))


__all__ = ["InstanceMetadata", "MetadataSource", "block_devices", "canonical_address",
           "DEFAULT_ROOT_DEVICE", "UNKNOWN_MANIFEST"]
