"""
L{nova.image.inspect}: the image type from the first bytes, the raw-disk
signatures, the qcow2 header checks and the reading of C{qemu-img info}.
Pure functions; one test runs the real qemu-img on images it makes.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import shutil
import subprocess
import struct

from twisted.trial import unittest

from nova.image import inspect
from nova.image.inspect import ImageRejected
from nova.image.tiny import tiny_disk
from tests.test_image_fakes import kernel_bytes, qcow2_header, qemu_info, raw_disk


class KindTests(unittest.TestCase):

    def test_kinds(self) -> None:
        cases = [
            (qcow2_header(), ("machine", "qcow2")),
            (kernel_bytes(), ("kernel", "aki")),
            (gzip.compress(b"070701..."), ("ramdisk", "ari")),
            (lzma.compress(b"cpio"), ("ramdisk", "ari")),
            (bz2.compress(b"cpio"), ("ramdisk", "ari")),
            (b"\x28\xb5\x2f\xfd" + b"\0" * 20, ("ramdisk", "ari")),
            (b"\x04\x22\x4d\x18" + b"\0" * 20, ("ramdisk", "ari")),
            (b"070701" + b"0" * 100, ("ramdisk", "ari")),
            (raw_disk(), ("machine", "raw")),
            (b"anything else", ("machine", "raw")),
            (b"", ("machine", "raw")),
        ]
        for head, expected in cases:
            self.assertEqual(inspect.kind_of(head), expected, head[:8])

    def test_check_kind(self) -> None:
        inspect.check_kind(kernel_bytes(), "kernel", "aki")
        e = self.assertRaises(ImageRejected, inspect.check_kind, raw_disk(), "kernel", "aki")
        self.assertIn("machine image (raw), not the kernel image (aki)", str(e))


class RawDiskTests(unittest.TestCase):

    def test_signatures(self) -> None:
        self.assertEqual(inspect.check_raw_disk(raw_disk()), "MBR")
        gpt = bytearray(4096)
        gpt[512:520] = b"EFI PART"
        self.assertEqual(inspect.check_raw_disk(bytes(gpt)), "GPT")
        ext = bytearray(4096)
        ext[1080:1082] = b"\x53\xef"
        self.assertEqual(inspect.check_raw_disk(bytes(ext)), "ext2/3/4")
        self.assertEqual(inspect.check_raw_disk(b"XFSB" + b"\0" * 4096), "xfs")
        iso = bytearray(40000)
        iso[0x8001:0x8006] = b"CD001"
        self.assertEqual(inspect.check_raw_disk(bytes(iso)), "iso9660")
        self.assertEqual(inspect.check_raw_disk(tiny_disk()[:inspect.HEAD_SIZE]), "MBR")

    def test_refused(self) -> None:
        for head, why in [(b"hello" * 1000, "neither a disk"), (b"", "neither a disk"),
                          (b"KDMV" + raw_disk()[4:], "VMDK"),
                          (b"conectix" + raw_disk()[8:], "VHD"),
                          (b"vhdxfile" + b"\0" * 1000, "VHDX")]:
            e = self.assertRaises(ImageRejected, inspect.check_raw_disk, head)
            self.assertIn(why, str(e))
            self.assertEqual(e.code, "Client.InvalidImage")


class Qcow2Tests(unittest.TestCase):

    def test_header(self) -> None:
        inspect.check_qcow2_header(qcow2_header())
        inspect.check_qcow2_header(qcow2_header(version=2))
        for head, why in [(qcow2_header(backing=True), "backing file"),
                          (qcow2_header(data_file=True), "external data file"),
                          (qcow2_header()[:40], "truncated"),
                          (qcow2_header(version=4), "version 4")]:
            e = self.assertRaises(ImageRejected, inspect.check_qcow2_header, head)
            self.assertIn(why, str(e))
        encrypted = bytearray(qcow2_header())
        struct.pack_into(">I", encrypted, 32, 1)
        e = self.assertRaises(ImageRejected, inspect.check_qcow2_header, bytes(encrypted))
        self.assertIn("encrypted", str(e))

    def test_qemu_info(self) -> None:
        self.assertEqual(inspect.check_qemu_info(qemu_info("raw", 100), "raw", 100), 100)
        self.assertEqual(inspect.check_qemu_info(qemu_info("qcow2", 10 ** 9), "qcow2", 5),
                         10 ** 9)
        bad = [(b"not json", "not JSON"), (b"[]", "not a JSON object"),
               (qemu_info("vmdk", 100), "format 'vmdk'"),
               (qemu_info("qcow2", 100, **{"backing-filename": "x"}), "backing file"),
               (qemu_info("qcow2", 100, **{"format-specific": {
                   "type": "qcow2", "data": {"data-file": "/dev/sda"}}}), "data file"),
               (qemu_info("qcow2", 100, **{"format-specific": {
                   "type": "qcow2", "data": {"corrupt": True}}}), "corrupt"),
               (json.dumps({"format": "qcow2"}).encode(), "no virtual size"),
               (qemu_info("raw", 99), "99 bytes in a 100-byte")]
        for output, why in bad:
            fmt = "raw" if b'"raw"' in output else "qcow2"
            e = self.assertRaises(ImageRejected, inspect.check_qemu_info, output, fmt, 100)
            self.assertIn(why, str(e))

    def test_real_qemu_img(self) -> None:
        qemu_img = shutil.which("qemu-img")
        if qemu_img is None:
            raise unittest.SkipTest("qemu-img is not installed")
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        plain = os.path.join(folder, "plain.qcow2")
        subprocess.run([qemu_img, "create", "-q", "-f", "qcow2", plain, "8M"], check=True)
        backed = os.path.join(folder, "backed.qcow2")
        subprocess.run([qemu_img, "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", plain,
                        backed], check=True)
        with open(plain, "rb") as f:
            inspect.check_qcow2_header(f.read(inspect.HEAD_SIZE))
        out = subprocess.run([qemu_img, "info", "--output=json", "-f", "qcow2", plain],
                             check=True, capture_output=True).stdout
        self.assertEqual(inspect.check_qemu_info(out, "qcow2", os.path.getsize(plain)),
                         8 * 1024 * 1024)
        with open(backed, "rb") as f:
            self.assertRaises(ImageRejected, inspect.check_qcow2_header,
                              f.read(inspect.HEAD_SIZE))
        out = subprocess.run([qemu_img, "info", "--output=json", "-f", "qcow2", backed],
                             check=True, capture_output=True).stdout
        self.assertRaises(ImageRejected, inspect.check_qemu_info, out, "qcow2", 1)
