"""
L{ImageRegistrar} with single objects (raw, qcow2, kernel, ramdisk): the
synchronous checks of RegisterImage, the background copy into
C{nova-images}, failures (and that they leave nothing behind), cancellation,
recovery and deregistration. Memory datastore, fake object store, fake
qemu-img; no reactor.
"""

from __future__ import annotations

import gzip

from twisted.internet import defer

from nova.exception import InvalidParameterValue
from nova.image.permissions import ImageAuthFailure
from nova.image.records import (
    AVAILABLE, FAILED, PENDING, Image, InvalidAMIIDMalformed, InvalidAMIIDNotFound,
    InvalidAMINameMalformed, new_image_id)
from nova.image.registrar import (
    IMAGES_BUCKET, INTERRUPTED, InvalidAMINameDuplicate, InvalidManifestLocation,
    RegistrarClosed)
from tests.test_image_fakes import (
    RegistrarHarness, context, kernel_bytes, qcow2_header, qemu_info, raw_disk)
from tests.test_image_records import an_image

import hashlib


class RegisterSingleObjectTests(RegistrarHarness):

    async def register(self, data: bytes, key: str = "disk.img", project: str = "proj",
                       **kwargs: object) -> Image:
        location = self.s3.add(project, f"bucket-{project}", key, data)
        image = await self.registrar.register(context(project), location, **kwargs)
        await self.registrar.wait_idle()
        return await self.repo.get(image.image_id)

    async def test_raw_disk_becomes_available(self) -> None:
        data = raw_disk()
        location = self.s3.add("proj", "mine", "disk.img", data)
        pending = await self.registrar.register(context(), location, name="my disk",
                                                description="a test disk")
        self.assertEqual((pending.state, pending.image_type, pending.disk_format),
                         (PENDING, "machine", "raw"))
        self.assertTrue(pending.image_id.startswith("ami-"))
        self.assertEqual(pending.owner_project_id, "proj")
        await self.registrar.wait_idle()
        image = await self.repo.get(pending.image_id)
        self.assertEqual(image.state, AVAILABLE)
        self.assertEqual(image.data_location, f"{IMAGES_BUCKET}/{image.image_id}")
        self.assertEqual(image.size, len(data))
        self.assertEqual(image.checksum, hashlib.sha256(data).hexdigest())
        self.assertEqual(self.s3.objects[(IMAGES_BUCKET, image.image_id)], data)
        self.assertEqual(self.s3.buckets[IMAGES_BUCKET]["owner"], "admin")
        self.assertFalse(self.s3.buckets[IMAGES_BUCKET]["public"])
        self.assertEqual((image.name, image.description), ("my disk", "a test disk"))
        self.assertEqual(self.runner.commands()[0][:5],
                         ("qemu-img", "info", "--output=json", "-f", "raw"))
        self.assert_clean()

    async def test_qcow2(self) -> None:
        image = await self.register(qcow2_header() + b"\0" * 4096, "disk.qcow2")
        self.assertEqual((image.state, image.disk_format), (AVAILABLE, "qcow2"))
        self.assertEqual([c[:2] for c in self.runner.commands()],
                         [("qemu-img", "info"), ("qemu-img", "check")])
        self.assert_clean()

    async def test_kernel_and_ramdisk(self) -> None:
        kernel = await self.register(kernel_bytes(), "vmlinuz")
        ramdisk = await self.register(gzip.compress(b"070701" + b"0" * 100), "initrd")
        self.assertEqual((kernel.image_type, kernel.disk_format, kernel.state),
                         ("kernel", "aki", AVAILABLE))
        self.assertTrue(kernel.image_id.startswith("aki-"))
        self.assertEqual((ramdisk.image_type, ramdisk.disk_format, ramdisk.state),
                         ("ramdisk", "ari", AVAILABLE))
        self.assertEqual(self.runner.commands(), [])  # qemu-img is for disks
        machine = await self.register(raw_disk(), kernel_id=kernel.image_id,
                                      ramdisk_id=ramdisk.image_id, architecture="i386")
        self.assertEqual((machine.kernel_id, machine.ramdisk_id, machine.architecture),
                         (kernel.image_id, ramdisk.image_id, "i386"))

    async def test_junk_fails_with_reason(self) -> None:
        image = await self.register(b"just some text, not a disk" * 100, "junk")
        self.assertEqual(image.state, FAILED)
        self.assertEqual(image.state_reason[0], "Client.InvalidImage")
        self.assertIn("neither a disk", image.state_reason[1])
        self.assertIsNone(image.data_location)
        self.assertEqual(self.s3.keys(IMAGES_BUCKET), [])
        self.assert_clean()

    async def test_qcow2_with_backing_file_refused(self) -> None:
        for header, why in [(qcow2_header(backing=True), "backing file"),
                            (qcow2_header(data_file=True), "external data file")]:
            image = await self.register(header + b"\0" * 1024, "evil.qcow2")
            self.assertEqual(image.state, FAILED)
            self.assertIn(why, image.state_reason[1])
        self.assertEqual(self.runner.commands(), [])  # refused before qemu-img opened it
        self.assert_clean()

    async def test_qemu_img_disagrees(self) -> None:
        self.runner.add_result(["qemu-img", "info"], stdout=qemu_info("qcow2", 10, **{
            "backing-filename": "/etc/shadow"}))
        image = await self.register(qcow2_header() + b"\0" * 1024)
        self.assertEqual(image.state, FAILED)
        self.assertIn("backing file", image.state_reason[1])
        self.runner.add_result(["qemu-img", "info"], exit_code=1, stderr=b"bad image")
        image = await self.register(raw_disk())
        self.assertEqual(image.state, FAILED)
        self.assertIn("bad image", image.state_reason[1])
        self.runner.add_result(["qemu-img", "info"], stdout=qemu_info("qcow2", 1))
        self.runner.add_result(["qemu-img", "check"], exit_code=2)
        image = await self.register(qcow2_header() + b"\0" * 1024)
        self.assertIn("damaged", image.state_reason[1])
        self.assert_clean()

    async def test_upload_failure_leaves_nothing(self) -> None:
        from nova.objectstore.client_transfer import ObjectStoreUnavailable
        self.s3.fail_put = ObjectStoreUnavailable("gone")
        image = await self.register(raw_disk())
        self.assertEqual(image.state, FAILED)
        self.assertEqual(image.state_reason[0], "Server.InternalError")
        self.assertIn("object store", image.state_reason[1])
        self.assertEqual(self.s3.keys(IMAGES_BUCKET), [])
        self.assert_clean()

    async def test_object_changed_after_registration(self) -> None:
        location = self.s3.add("proj", "mine", "disk.img", raw_disk())
        blocked: defer.Deferred[None] = defer.Deferred()
        original = self.registrar._copier.importer.download

        async def slow_download(*args: object) -> None:
            await blocked
            await original(*args)  # type: ignore[arg-type]
        self.registrar._copier.importer.download = slow_download  # type: ignore[method-assign]
        pending = await self.registrar.register(context(), location)
        self.s3.objects[("mine", "disk.img")] = raw_disk(128 * 1024)
        blocked.callback(None)
        await self.registrar.wait_idle()
        image = await self.repo.get(pending.image_id)
        self.assertEqual(image.state, FAILED)
        self.assertIn("changed or deleted", image.state_reason[1])
        self.assert_clean()

    async def test_location_errors(self) -> None:
        self.s3.add("other", "theirs", "disk.img", raw_disk())
        self.s3.add("proj", "mine", "empty", b"")
        cases = [("mine/missing", InvalidManifestLocation, "does not exist"),
                 ("nobucket/x", InvalidManifestLocation, "does not exist"),
                 ("theirs/disk.img", InvalidManifestLocation, "may not read"),
                 ("mine/empty", InvalidParameterValue, "empty"),
                 ("no-key", InvalidParameterValue, "bucket/key"),
                 ("Bad_Bucket/x", InvalidParameterValue, "bucket/key"),
                 ("mine/", InvalidParameterValue, "bucket/key"),
                 ("mine/a\nb", InvalidParameterValue, "bucket/key")]
        for location, error, text in cases:
            e = await self.assertFailsWith(error, self.registrar.register(context(), location))
            self.assertIn(text, str(e), location)
        e = await self.assertFailsWith(InvalidManifestLocation,
                                       self.registrar.register(context(), "nobucket/x"))
        self.assertEqual((e.code, e.status), ("InvalidManifest", 400))
        self.assertEqual(await self.repo.describe("proj", True), [])

    async def test_public_bucket_and_leading_slash(self) -> None:
        self.s3.add("other", "shared", "disk.img", raw_disk(), public=True)
        image = await self.registrar.register(context(), "/shared/disk.img")
        self.assertEqual(image.image_location, "shared/disk.img")
        await self.registrar.wait_idle()
        self.assertEqual((await self.repo.get(image.image_id)).state, AVAILABLE)

    async def test_argument_errors(self) -> None:
        location = self.s3.add("proj", "mine", "disk.img", raw_disk())
        klocation = self.s3.add("proj", "mine", "vmlinuz", kernel_bytes())
        other_kernel = await self.repo.register(an_image("kernel", owner="other"))
        mine_ramdisk = await self.repo.register(an_image("ramdisk", owner="proj"))
        failed_kernel = await self.repo.register(an_image("kernel", owner="proj",
                                                          state=FAILED))
        await self.assertFailsWith(InvalidAMINameMalformed,
                                   self.registrar.register(context(), location, name="x"))
        await self.assertFailsWith(InvalidAMINameMalformed, self.registrar.register(
            context(), location, description="d" * 256))
        await self.assertFailsWith(InvalidParameterValue, self.registrar.register(
            context(), location, architecture="arm64"))
        await self.assertFailsWith(InvalidAMIIDMalformed, self.registrar.register(
            context(), location, kernel_id="aki-bogus"))
        await self.assertFailsWith(InvalidAMIIDNotFound, self.registrar.register(
            context(), location, kernel_id=other_kernel.image_id))
        e = await self.assertFailsWith(InvalidParameterValue, self.registrar.register(
            context(), location, kernel_id=mine_ramdisk.image_id))
        self.assertIn("not a kernel image", str(e))
        e = await self.assertFailsWith(InvalidParameterValue, self.registrar.register(
            context(), klocation, ramdisk_id=mine_ramdisk.image_id))
        self.assertIn("Only machine images", str(e))
        e = await self.assertFailsWith(Exception, self.registrar.register(
            context(), location, kernel_id=failed_kernel.image_id))
        self.assertEqual(e.code, "InvalidAMIID.Unavailable")  # type: ignore[attr-defined]
        self.assertEqual(len(await self.repo.describe("proj", True)), 3)  # nothing new

    async def test_duplicate_name(self) -> None:
        first = await self.register(raw_disk(), name="same name")
        location = self.s3.add("proj", "bucket-proj", "other.img", raw_disk())
        e = await self.assertFailsWith(InvalidAMINameDuplicate, self.registrar.register(
            context(), location, name="same name"))
        self.assertIn(first.image_id, str(e))
        # another project may use the name
        await self.register(raw_disk(), project="other", name="same name")

    async def test_deregister(self) -> None:
        image = await self.register(raw_disk())
        await self.assertFailsWith(InvalidAMIIDNotFound, self.registrar.deregister(
            context("other"), image.image_id))
        await self.repo.change(image.image_id, lambda i: i.__class__(
            **{**i.to_dict(), "is_public": True}))
        await self.assertFailsWith(ImageAuthFailure, self.registrar.deregister(
            context("other"), image.image_id))
        removed = await self.registrar.deregister(context(), image.image_id)
        self.assertEqual(removed.image_id, image.image_id)
        await self.assertFailsWith(InvalidAMIIDNotFound, self.repo.get(image.image_id))
        self.assertEqual(self.s3.keys(IMAGES_BUCKET), [])
        self.assertEqual(self.s3.keys("bucket-proj"), ["disk.img"])  # the user's stays
        await self.assertFailsWith(InvalidAMIIDNotFound, self.registrar.deregister(
            context(), image.image_id))
        await self.assertFailsWith(InvalidAMIIDMalformed, self.registrar.deregister(
            context(), "ami-x"))

    async def test_deregister_while_registering(self) -> None:
        location = self.s3.add("proj", "mine", "disk.img", raw_disk())
        uploading: defer.Deferred[None] = defer.Deferred()
        self.s3.on_put = lambda bucket, key: uploading
        pending = await self.registrar.register(context(), location)
        self.assertEqual(self.registrar.running(), {pending.image_id})
        await self.registrar.deregister(context(), pending.image_id)
        self.assertEqual(self.registrar.running(), frozenset())
        self.assertEqual(self.s3.keys(IMAGES_BUCKET), [])
        await self.assertFailsWith(InvalidAMIIDNotFound, self.repo.get(pending.image_id))
        self.assert_clean()

    async def test_close_interrupts(self) -> None:
        location = self.s3.add("proj", "mine", "disk.img", raw_disk())
        self.s3.on_put = lambda bucket, key: defer.Deferred()  # never answers
        pending = await self.registrar.register(context(), location)
        await self.registrar.close()
        image = await self.repo.get(pending.image_id)
        self.assertEqual((image.state, image.state_reason), (FAILED, INTERRUPTED))
        self.assertEqual(self.s3.keys(IMAGES_BUCKET), [])
        self.assert_clean()
        await self.assertFailsWith(RegistrarClosed,
                                   self.registrar.register(context(), location))

    async def test_recover(self) -> None:
        done = await self.register(raw_disk())
        stuck = [await self.repo.register(an_image(state=state, owner="proj"))
                 for state in (PENDING, "decrypting", "untarring")]
        orphan = new_image_id("machine")
        self.s3.objects[(IMAGES_BUCKET, orphan)] = b"left by a crash"
        leftover = self.work / stuck[0].image_id / "image"
        leftover.parent.mkdir(parents=True)
        leftover.write_bytes(b"partial")
        registrar = self.make_registrar()
        failed = await registrar.recover()
        self.assertEqual(sorted(failed), sorted(i.image_id for i in stuck))
        for image in stuck:
            got = await self.repo.get(image.image_id)
            self.assertEqual((got.state, got.state_reason), (FAILED, INTERRUPTED))
        self.assertEqual((await self.repo.get(done.image_id)).state, AVAILABLE)
        self.assertEqual(self.s3.keys(IMAGES_BUCKET), [done.image_id])
        self.assert_clean()
        self.assertEqual(await registrar.recover(), [])

    async def test_recover_leaves_newer_registrations(self) -> None:
        # another registrar of the process (the tiny image's) is working meanwhile
        late = self.make_registrar()
        self.clock.advance(1)
        location = self.s3.add("proj", "mine", "disk.img", raw_disk())
        uploading: defer.Deferred[None] = defer.Deferred()
        self.s3.on_put = lambda bucket, key: uploading
        pending = await self.registrar.register(context(), location)
        self.assertEqual(self.leftovers(), [pending.image_id, f"{pending.image_id}/image"])
        self.assertEqual(await late.recover(), [])
        self.assertEqual(self.leftovers(), [pending.image_id, f"{pending.image_id}/image"])
        self.assertEqual((await self.repo.get(pending.image_id)).state, PENDING)
        uploading.callback(None)
        await self.registrar.wait_idle()
        self.assertEqual((await self.repo.get(pending.image_id)).state, AVAILABLE)
        self.assert_clean()

    async def test_too_large(self) -> None:
        registrar = self.make_registrar(max_size=1000)
        location = self.s3.add("proj", "mine", "disk.img", raw_disk())
        e = await self.assertFailsWith(InvalidParameterValue,
                                       registrar.register(context(), location))
        self.assertIn("at most 1000", str(e))

    async def assertFailsWith(self, exc: type[BaseException], coro: object) -> BaseException:
        try:
            await coro  # type: ignore[misc]
        except exc as e:
            return e
        raise AssertionError(f"{exc.__name__} not raised")
