"""
The values that cross the virt driver seam: what to run (L{InstanceSpec}),
what a guest looks like (L{InstanceInfo}), what to attach (L{VolumeSource})
and what the host has (L{HostCapacity}). All frozen and validated on
construction, so a driver never sees a malformed one.
"""

from __future__ import annotations

import re
import uuid as uuidlib
from typing import Any, Callable

import attrs

from nova.utils import validate

# Guest and device names go into domain XML and file names: keep them plain.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_DEVICE_RE = re.compile(r"^vd[a-z]$")
_MAC_RE = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")
_IFNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
# An iSCSI qualified name (RFC 3720 3.2.6.3.1) in its normalised, lower-case
# form: iqn.YYYY-MM.reversed.domain[:anything of a-z 0-9 . - :]. It goes into
# libvirt's "IQN/LUN" and QEMU's options: no "/", ",", "=" or spaces.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_IQN_RE = re.compile(rf"iqn\.[0-9]{{4}}-(?:0[1-9]|1[0-2])\.{_LABEL}(?:\.{_LABEL})*"
                     r"(?::[a-z0-9.:-]+)?")  # fullmatch: no trailing newline either
_IQN_MAX = 223  # bytes, RFC 3720 3.2.6.1
# A host block device's path (an AoE target's /dev/etherd/e1.3): absolute, no
# "..", no comma or space that QEMU's or libvirt's option syntax could read.
_BLOCK_DEVICE_RE = re.compile(r"(?:/[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}){1,16}")

#: the kinds of L{VolumeSource}
VOLUME_KINDS = ("file", "nbd", "iscsi", "block")
#: the largest LUN of SAM's flat space addressing (14 bits)
MAX_LUN = 16383


def _check_name(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise ValueError(f"{attribute.name} {value!r} is not a valid guest name")


def _check_uuid(_inst: object, _attribute: attrs.Attribute, value: str) -> None:
    uuidlib.UUID(value)  # raises ValueError when malformed


def _check_positive(_inst: object, attribute: attrs.Attribute, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{attribute.name} must be a positive int, not {value!r}")


def _check_abs_path(_inst: object, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None and (not isinstance(value, str) or not value.startswith("/")):
        raise ValueError(f"{attribute.name} must be an absolute path, not {value!r}")


def _ipv4_address(value: str | None) -> str | None:
    # IPv4 only: the volume hosts serve IPv4 portals, and "address:port"
    # then needs no brackets anywhere.
    return None if value is None else validate.ipv4_address(value)


def _optional_bounded(low: int, high: int) -> Callable[[Any, attrs.Attribute, Any], None]:
    def check(_inst: object, attribute: attrs.Attribute, value: int | None) -> None:
        if value is None:
            return
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ValueError(f"{attribute.name} must be an int in {low}..{high}, "
                             f"not {value!r}")
    return check


def _check_iqn(_inst: object, attribute: attrs.Attribute, value: str | None) -> None:
    if value is None:
        return
    if not isinstance(value, str) or len(value) > _IQN_MAX or not _IQN_RE.fullmatch(value):
        raise ValueError(f"{attribute.name} {value!r} is not an iSCSI qualified name "
                         "(iqn.YYYY-MM.reversed.domain[:name], lower case)")


def check_device(device: str) -> str:
    """
    @param device: a guest disk device name such as C{vdb}.
    @return: C{device}, when it is valid.
    @raise ValueError: when it is not C{vd} and one letter.
    """
    if not isinstance(device, str) or not _DEVICE_RE.match(device):
        raise ValueError(f"device {device!r} is not a virtio disk name (vdb..vdz)")
    return device


@attrs.frozen
class InstanceSpec:
    """
    What a driver needs to define and start one guest.

    Boot is either from a kernel (C{kernel}, optional C{initrd} and
    C{cmdline}: aki/ari images), or from C{disk} (whole-disk boot). C{disk},
    when given, is a qcow2 file attached as C{vda} in both cases.

    @ivar name: the guest name on the host (2010 style: C{instance-0000002a}).
    @ivar uuid: the guest's UUID, as a string.
    @ivar memory_mb: guest RAM in MiB.
    @ivar vcpus: virtual CPUs.
    @ivar console_log: absolute path of the file the serial console is
        written to; L{IVirtDriver.get_console_output} reads its tail. The
        caller owns the file (creates its directory, deletes it).
    @ivar kernel: absolute path of the kernel, for kernel boot.
    @ivar initrd: absolute path of the initial ramdisk, with C{kernel}.
    @ivar cmdline: kernel command line, with C{kernel}.
    @ivar disk: absolute path of the qcow2 root disk.
    @ivar mac: the MAC address of the guest's one NIC, with C{bridge}.
    @ivar bridge: the host bridge the NIC plugs into; no NIC when C{None}.
    @ivar target_dev: the host tap name for the NIC (libvirt picks one when C{None}).
    """

    name: str = attrs.field(validator=_check_name)
    uuid: str = attrs.field(validator=_check_uuid)
    memory_mb: int = attrs.field(validator=_check_positive)
    vcpus: int = attrs.field(validator=_check_positive)
    console_log: str = attrs.field(validator=_check_abs_path)
    kernel: str | None = attrs.field(default=None, validator=_check_abs_path)
    initrd: str | None = attrs.field(default=None, validator=_check_abs_path)
    cmdline: str | None = None
    disk: str | None = attrs.field(default=None, validator=_check_abs_path)
    mac: str | None = None
    bridge: str | None = None
    target_dev: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.kernel is None and self.disk is None:
            raise ValueError("an instance needs a kernel or a disk to boot from")
        if self.kernel is None and (self.initrd is not None or self.cmdline is not None):
            raise ValueError("initrd and cmdline need a kernel")
        if (self.mac is None) != (self.bridge is None):
            raise ValueError("mac and bridge go together")
        if self.mac is not None and not _MAC_RE.match(self.mac):
            raise ValueError(f"mac {self.mac!r} is not a lower-case MAC address")
        for ifname in (self.bridge, self.target_dev):
            if ifname is not None and not _IFNAME_RE.match(ifname):
                raise ValueError(f"{ifname!r} is not a valid interface name")
        if self.target_dev is not None and self.bridge is None:
            raise ValueError("target_dev needs a bridge")

    @property
    def kernel_boot(self) -> bool:
        """Whether the guest boots from a kernel file rather than its disk."""
        return self.kernel is not None


@attrs.frozen
class InstanceInfo:
    """
    What the hypervisor reports about one guest (2010 nova's C{get_info}).

    @ivar state: a constant of L{nova.virt.power_state}.
    @ivar max_mem: memory the guest may use, in KiB (as libvirt reports it).
    @ivar mem: memory the guest uses now, in KiB.
    @ivar num_cpu: virtual CPUs.
    @ivar cpu_time: CPU time used, in nanoseconds.
    """

    state: int
    max_mem: int
    mem: int
    num_cpu: int
    cpu_time: int


@attrs.frozen
class VolumeSource:
    """
    A block device to attach to a guest.

    @ivar kind: C{"file"} (a disk image at C{path}), C{"nbd"} (an NBD
        export served on the unix socket C{path}) or C{"iscsi"} (LUN C{lun}
        of target C{iqn} at the portal C{host}:C{port}, which QEMU logs in
        to itself) or C{"block"} (the host's block device C{path}, e.g. an
        AoE target's C{/dev/etherd/e1.3}).
    @ivar path: absolute path of the image file or of the NBD socket
        (C{None} for C{"iscsi"}).
    @ivar export: the NBD export name (C{"nbd"} only; C{None} for the default).
    @ivar format: the image format, C{"raw"} or C{"qcow2"} (C{"file"} only).
    @ivar read_only: whether the guest sees the disk read-only.
    @ivar host: the iSCSI portal's IPv4 address (C{"iscsi"} only), normalised.
    @ivar port: the iSCSI portal's TCP port (C{"iscsi"} only).
    @ivar iqn: the iSCSI target name (C{"iscsi"} only).
    @ivar lun: the logical unit within the target (C{"iscsi"} only).
    """

    kind: str = attrs.field(validator=attrs.validators.in_(VOLUME_KINDS))
    path: str | None = attrs.field(default=None, validator=_check_abs_path)
    export: str | None = None
    format: str = attrs.field(default="raw",
                              validator=attrs.validators.in_(("raw", "qcow2")))
    read_only: bool = False
    host: str | None = attrs.field(default=None, converter=_ipv4_address)
    port: int | None = attrs.field(default=None, validator=_optional_bounded(1, 65535))
    iqn: str | None = attrs.field(default=None, validator=_check_iqn)
    lun: int | None = attrs.field(default=None, validator=_optional_bounded(0, MAX_LUN))

    def __attrs_post_init__(self) -> None:
        iscsi = (self.host, self.port, self.iqn, self.lun)
        if self.kind == "iscsi":
            if None in iscsi:
                raise ValueError("an iscsi volume needs host, port, iqn and lun")
            if self.path is not None or self.export is not None:
                raise ValueError("an iscsi volume has no path or export name")
            if self.format != "raw":
                raise ValueError("an iscsi LUN is seen as raw")
            return
        if self.path is None:
            raise ValueError(f"a {self.kind} volume needs a path")
        if iscsi != (None,) * 4:
            raise ValueError("host, port, iqn and lun only apply to iscsi volumes")
        if self.kind != "nbd" and self.export is not None:
            raise ValueError("an export name only applies to nbd volumes")
        if self.kind in ("nbd", "block") and self.format != "raw":
            raise ValueError(f"a {self.kind} volume is seen as raw")
        if self.kind == "block" and not _BLOCK_DEVICE_RE.fullmatch(self.path):
            raise ValueError(f"{self.path!r} is not a plain absolute device path")


@attrs.frozen
class HostCapacity:
    """
    What a compute host offers, for the scheduler's heartbeat.

    @ivar vcpus: host CPUs guests may use.
    @ivar memory_mb: host memory in MiB.
    @ivar disk_gb: space for instance disks, in GiB.
    """

    vcpus: int
    memory_mb: int
    disk_gb: int
