"""
What an image object is, read from its first bytes, and whether its bytes may
be booted. Pure functions: the registrar gives them bytes and the JSON that
C{qemu-img info} printed; they never open a file or run a command.

The rules (docs/images.md):

 - a qcow2 header (C{QFI\\xfb}) is a machine image in qcow2;
 - a Linux bzImage (C{HdrS} at 0x202) is a kernel (C{aki});
 - gzip, xz, zstd, lz4, bzip2 or a cpio archive is a ramdisk (C{ari});
 - anything else is a raw machine image, which must look like a disk: an MBR
   boot signature (0x55AA at 510), a GPT header, or an ext2/3/4, xfs or
   iso9660 superblock; a VMDK, VHD, VHDX, QED or VDI header is refused (only
   raw and qcow2 are booted here, and such a file would otherwise be taken
   for a "raw" disk).

A qcow2 image is refused when it names a backing file or an external data
file (either would make the compute node read a host file the image chose),
when it is encrypted, or when qemu-img says it is corrupt.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from nova.image.records import KERNEL, MACHINE, RAMDISK
from nova.exception import NovaError

#: how many leading bytes the checks here need (the iso9660 descriptor is at 32 KiB)
HEAD_SIZE = 64 * 1024

QCOW2_MAGIC = b"QFI\xfb"
_RAMDISK_MAGICS = (
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"\x02\x21\x4c\x18", "lz4 (legacy)"),
    (b"BZh", "bzip2"),
    (b"\x5d\x00\x00", "lzma"),
    (b"070701", "cpio"),
    (b"070702", "cpio"),
    (b"070707", "cpio"),
)
#: other virtual disk containers: refused rather than booted as raw bytes
_FOREIGN_DISKS = (
    (0, b"KDMV", "VMDK"),
    (0, b"# Disk DescriptorFile", "VMDK descriptor"),
    (0, b"conectix", "VHD"),
    (0, b"vhdxfile", "VHDX"),
    (0, b"QED\x00", "QED"),
    (64, b"\x7f\x10\xda\xbe", "VDI"),
)
_QCOW2_INCOMPAT_DATA_FILE = 1 << 2


class ImageRejected(NovaError):
    """
    The image's bytes cannot be registered; the message says why. It ends as
    the image's stateReason, with C{code}.
    """

    code = "Client.InvalidImage"
    status = 400


def kind_of(head: bytes) -> tuple[str, str]:
    """
    Decide what an object is from its first bytes (up to L{HEAD_SIZE}).

    @return: C{(image_type, disk_format)}: C{(machine, qcow2)},
        C{(kernel, aki)}, C{(ramdisk, ari)} or C{(machine, raw)}.
    """
    if head.startswith(QCOW2_MAGIC):
        return MACHINE, "qcow2"
    if head[0x202:0x206] == b"HdrS":
        return KERNEL, "aki"
    if ramdisk_format(head) is not None:
        return RAMDISK, "ari"
    return MACHINE, "raw"


def ramdisk_format(head: bytes) -> str | None:
    """@return: the compression (or C{cpio}) a ramdisk starts with, or C{None}."""
    for magic, name in _RAMDISK_MAGICS:
        if head.startswith(magic):
            return name
    return None


def check_kind(head: bytes, image_type: str, disk_format: str) -> None:
    """
    Check that the bytes downloaded are still what registration decided (the
    download is pinned to the ETag seen then, so this guards the logic, not
    the store).

    @raise ImageRejected: they are something else now.
    """
    found = kind_of(head)
    if found != (image_type, disk_format):
        raise ImageRejected(f"the object is a {found[0]} image ({found[1]}), "
                            f"not the {image_type} image ({disk_format}) registered")


def check_raw_disk(head: bytes) -> str:
    """
    @param head: the first bytes (at least L{HEAD_SIZE} unless the disk is smaller).
    @return: what makes it look like a disk (C{MBR}, C{GPT}, C{ext4} ...).
    @raise ImageRejected: nothing does, or it is another container format.
    """
    for offset, magic, name in _FOREIGN_DISKS:
        if head[offset:offset + len(magic)] == magic:
            raise ImageRejected(f"{name} images are not supported: register raw or qcow2")
    if head[512:520] == b"EFI PART":
        return "GPT"
    if len(head) >= 512 and head[510:512] == b"\x55\xaa":
        return "MBR"
    if head[1080:1082] == b"\x53\xef":
        return "ext2/3/4"
    if head[0:4] == b"XFSB":
        return "xfs"
    if head[0x8001:0x8006] == b"CD001":
        return "iso9660"
    raise ImageRejected(
        "the object is neither a disk (no MBR, GPT, ext2/3/4, xfs or iso9660 "
        "signature), nor qcow2, nor a kernel or ramdisk")


def check_qcow2_header(head: bytes) -> None:
    """
    Read the qcow2 header before qemu-img opens the file: a backing file or
    an external data file would make qemu (here and on the compute node) open
    a host path the image chose.

    @raise ImageRejected: a backing file, an external data file, encryption,
        or a header too short or of an unknown version.
    """
    if len(head) < 72 or not head.startswith(QCOW2_MAGIC):
        raise ImageRejected("the qcow2 header is truncated")
    version, backing_offset, backing_size = struct.unpack(">IQI", head[4:20])
    crypt_method = struct.unpack(">I", head[32:36])[0]
    if version not in (2, 3):
        raise ImageRejected(f"qcow2 version {version} is not supported")
    if backing_offset or backing_size:
        raise ImageRejected("qcow2 images with a backing file are refused")
    if crypt_method:
        raise ImageRejected("encrypted qcow2 images are refused")
    if version == 3:
        if len(head) < 80:
            raise ImageRejected("the qcow2 header is truncated")
        incompatible = struct.unpack(">Q", head[72:80])[0]
        if incompatible & _QCOW2_INCOMPAT_DATA_FILE:
            raise ImageRejected("qcow2 images with an external data file are refused")


def check_qemu_info(output: bytes, disk_format: str, file_size: int) -> int:
    """
    Check what C{qemu-img info --output=json -f FORMAT FILE} printed.

    @param disk_format: C{raw} or C{qcow2}, the format it was told.
    @param file_size: the file's size in bytes.
    @return: the virtual size in bytes.
    @raise ImageRejected: not that format, a backing or data file, corrupt, or
        not JSON.
    """
    try:
        info: Any = json.loads(output)
    except ValueError:
        raise ImageRejected("qemu-img info printed something that is not JSON") from None
    if not isinstance(info, dict):
        raise ImageRejected("qemu-img info printed something that is not a JSON object")
    if info.get("format") != disk_format:
        raise ImageRejected(f"qemu-img sees format {info.get('format')!r}, not {disk_format}")
    if any(k in info for k in ("backing-filename", "full-backing-filename")):
        raise ImageRejected(f"{disk_format} images with a backing file are refused")
    specific = info.get("format-specific")
    data = specific.get("data") if isinstance(specific, dict) else None
    if isinstance(data, dict):
        if data.get("data-file") or data.get("data-file-raw"):
            raise ImageRejected("qcow2 images with an external data file are refused")
        if data.get("corrupt"):
            raise ImageRejected("qemu-img says the qcow2 image is corrupt")
    if info.get("encrypted"):
        raise ImageRejected("encrypted images are refused")
    virtual = info.get("virtual-size")
    if isinstance(virtual, bool) or not isinstance(virtual, int) or virtual <= 0:
        raise ImageRejected("qemu-img gives no virtual size")
    if disk_format == "raw" and virtual != file_size:
        raise ImageRejected(f"qemu-img sees {virtual} bytes in a {file_size}-byte raw file")
    return virtual
