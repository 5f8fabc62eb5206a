"""
L{nova.image.tiny}: the tiny image's raw disk, and L{ensure_tiny_image}
registering the kernel, ramdisk and disk once (public, available), finding
them on the next start, and replacing them when the build changed. Fake
object store and stand-in files instead of the real build.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

from nova.context import RequestContext
from nova.image import inspect
from nova.image.records import AVAILABLE, InvalidAMIIDNotFound
from nova.image.tiny import (
    NAMES, TINY_BUCKET, TinyFiles, cache_dir, ensure_tiny_image, prepare_files, skip_requested,
    tiny_disk)
from tests.test_image_fakes import RegistrarHarness, in_line, kernel_bytes

ADMIN = RequestContext(user_id="admin", project_id="admin", is_admin=True)


class DiskTests(RegistrarHarness):

    def test_tiny_disk(self) -> None:
        disk = tiny_disk()
        self.assertEqual(len(disk), 1024 * 1024)
        self.assertEqual(disk, tiny_disk())
        self.assertEqual(inspect.check_raw_disk(disk[:inspect.HEAD_SIZE]), "MBR")
        self.assertEqual(inspect.kind_of(disk), ("machine", "raw"))
        self.assertEqual(disk[446 + 4], 0x83)

    def test_environment(self) -> None:
        self.assertTrue(skip_requested({"NOVA_SKIP_TINY_IMAGE": "1"}))
        self.assertFalse(skip_requested({"NOVA_SKIP_TINY_IMAGE": "0"}))
        self.assertFalse(skip_requested({}))
        self.assertEqual(cache_dir({}), Path("/var/tmp/nova-tiny-image-cache"))
        self.assertEqual(cache_dir({"NOVA_TINY_IMAGE_CACHE": "/x"}), Path("/x"))

    def test_prepare_files(self) -> None:
        build_dir = Path(self.mktemp())
        built = []
        files = prepare_files(build_dir, Path(self.mktemp()), build=built.append)
        self.assertEqual(built, [build_dir])
        self.assertEqual(files.kernel, build_dir / "vmlinuz")
        self.assertEqual(files.disk.read_bytes(), tiny_disk())


class EnsureTests(RegistrarHarness):

    def setUp(self) -> None:
        super().setUp()
        folder = Path(self.mktemp())
        folder.mkdir()
        self.files = TinyFiles(kernel=folder / "vmlinuz", ramdisk=folder / "initrd.img",
                               disk=folder / "tiny-disk.img")
        self.files.kernel.write_bytes(kernel_bytes())
        self.files.ramdisk.write_bytes(gzip.compress(b"070701 a cpio"))
        self.files.disk.write_bytes(tiny_disk(64 * 1024))

    async def service(self) -> object:
        return self._track(self.s3.client("admin", admin=True))

    async def ensure(self) -> str:
        return await ensure_tiny_image(self.make_registrar(), self.service, ADMIN, in_line,
                                       self.files)

    async def test_registers_once(self) -> None:
        ami = await self.ensure()
        images = {i.name: i for i in await self.repo.describe("someone", False)}
        self.assertEqual(set(images), set(NAMES.values()))
        machine = images["nova-tiny"]
        self.assertEqual(machine.image_id, ami)
        self.assertEqual(machine.kernel_id, images["nova-tiny-kernel"].image_id)
        self.assertEqual(machine.ramdisk_id, images["nova-tiny-ramdisk"].image_id)
        for image in images.values():
            self.assertEqual((image.state, image.is_public, image.owner_project_id),
                             (AVAILABLE, True, "admin"))
        self.assertEqual(machine.checksum,
                         hashlib.sha256(self.files.disk.read_bytes()).hexdigest())
        self.assertEqual(self.s3.keys(TINY_BUCKET),
                         ["initrd.img", "tiny-disk.img", "vmlinuz"])
        self.assertEqual(self.s3.buckets[TINY_BUCKET]["owner"], "admin")
        # the next start finds them
        self.assertEqual(await self.ensure(), ami)
        self.assertEqual(len(await self.repo.describe("admin", True)), 3)
        self.assert_clean()

    async def test_rebuilt_kernel_replaces_kernel_and_ami(self) -> None:
        ami = await self.ensure()
        old = {i.name: i for i in await self.repo.describe("admin", True)}
        self.files.kernel.write_bytes(kernel_bytes() + b"a newer kernel")
        new_ami = await self.ensure()
        self.assertNotEqual(new_ami, ami)
        await self.assertFailsWith(InvalidAMIIDNotFound, self.repo.get(ami))
        now = {i.name: i for i in await self.repo.describe("admin", True)}
        self.assertEqual(len(now), 3)
        self.assertEqual(now["nova-tiny-ramdisk"], old["nova-tiny-ramdisk"])
        self.assertNotEqual(now["nova-tiny-kernel"].image_id,
                            old["nova-tiny-kernel"].image_id)
        self.assertEqual(now["nova-tiny"].kernel_id, now["nova-tiny-kernel"].image_id)

    async def assertFailsWith(self, exc: type[BaseException], coro: object) -> None:
        try:
            await coro  # type: ignore[misc]
        except exc:
            return
        raise AssertionError(f"{exc.__name__} not raised")
