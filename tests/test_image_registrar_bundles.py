"""
L{ImageRegistrar} with euca2ools-style bundles (L{nova.image.bundle}): a
good bundle goes decrypting, untarring, available; a tampered part, a
manifest another user signed, or a bundle whose content is not what it says
ends C{failed} with nothing left behind; an unparsable manifest is refused
at once. Memory datastore, fake object store, a throw-away CA.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from nova.image import bundle
from nova.image.bundle.testing import make_credentials
from nova.image.records import AVAILABLE, DECRYPTING, FAILED, UNTARRING, Image
from nova.image.registrar import IMAGES_BUCKET
from tests.test_image_fakes import RegistrarHarness, context, kernel_bytes, raw_disk


class BundleTests(RegistrarHarness):

    def setUp(self) -> None:
        self.creds = make_credentials(os.path.abspath(self.mktemp()), user_id="alice")
        self.ca = self.creds.ca
        super().setUp()
        self.states: list[str] = []
        original = self.repo.update_state

        async def recording(image_id: str, state: str, *args: Any, **kwargs: Any) -> Image:
            self.states.append(state)
            return await original(image_id, state, *args, **kwargs)
        self.repo.update_state = recording  # type: ignore[method-assign]

    def upload_bundle(self, data: bytes, image_type: str = "machine", creds: Any = None,
                      prefix: str = "img", **kwargs: Any) -> str:
        """Bundle C{data} and put it in C{proj}'s bucket; @return: the manifest's location."""
        folder = Path(os.path.abspath(self.mktemp()))
        folder.mkdir()
        image = folder / f"{prefix}.raw"
        image.write_bytes(data)
        creds = creds or self.creds
        out = folder / "out"
        out.mkdir()
        manifest, parts = bundle.make_bundle(
            str(image), str(out), prefix, user_cert_pem=creds.user_cert_pem,
            user_key_pem=creds.user_key_pem, cloud_cert_pem=self.creds.cloud_cert_pem,
            image_type=image_type, part_size=16 * 1024, **kwargs)
        for path in [manifest, *parts]:
            self.s3.add("proj", "bundles", f"up/{os.path.basename(path)}",
                        Path(path).read_bytes())
        return f"bundles/up/{os.path.basename(manifest)}"

    async def register(self, location: str, **kwargs: Any) -> Image:
        pending = await self.registrar.register(context(), location, **kwargs)
        self.assertEqual(pending.disk_format, "bundle")
        await self.registrar.wait_idle()
        return await self.repo.get(pending.image_id)

    async def test_machine_bundle(self) -> None:
        data = raw_disk(100 * 1024)
        image = await self.register(self.upload_bundle(data), name="bundled disk")
        self.assertEqual(image.state, AVAILABLE, image.state_reason)
        self.assertEqual(self.states, [DECRYPTING, UNTARRING, AVAILABLE])
        self.assertEqual((image.image_type, image.disk_format, image.size, image.checksum),
                         ("machine", "raw", len(data), hashlib.sha256(data).hexdigest()))
        self.assertEqual(self.s3.objects[(IMAGES_BUCKET, image.image_id)], data)
        self.assertEqual(image.image_location, "bundles/up/img.manifest.xml")
        self.assert_clean()

    async def test_kernel_bundle_and_manifest_defaults(self) -> None:
        kernel = await self.register(self.upload_bundle(kernel_bytes(), "kernel", prefix="k"))
        self.assertEqual((kernel.image_type, kernel.disk_format, kernel.state),
                         ("kernel", "aki", AVAILABLE))
        self.assertTrue(kernel.image_id.startswith("aki-"))
        machine = await self.register(self.upload_bundle(
            raw_disk(), kernel_id=kernel.image_id, arch="i386", prefix="m"))
        self.assertEqual((machine.kernel_id, machine.architecture, machine.state),
                         (kernel.image_id, "i386", AVAILABLE))

    async def test_tampered_part(self) -> None:
        location = self.upload_bundle(raw_disk(64 * 1024, random=True))
        key = ("bundles", "up/img.part.1")
        self.s3.objects[key] = bytes([self.s3.objects[key][0] ^ 1]) + self.s3.objects[key][1:]
        image = await self.register(location)
        self.assertEqual(image.state, FAILED)
        self.assertEqual(image.state_reason[0], "InvalidManifest")
        self.assertIn("part", image.state_reason[1])
        self.assertEqual(self.s3.keys(IMAGES_BUCKET), [])
        self.assert_clean()

    async def test_missing_part(self) -> None:
        location = self.upload_bundle(raw_disk(64 * 1024, random=True))
        del self.s3.objects[("bundles", "up/img.part.2")]
        image = await self.register(location)
        self.assertEqual(image.state, FAILED)
        self.assertIn("img.part.2", image.state_reason[1])
        self.assert_clean()

    async def test_signed_by_someone_else(self) -> None:
        mallory = make_credentials(os.path.abspath(self.mktemp()), user_id="mallory")
        image = await self.register(self.upload_bundle(raw_disk(), creds=mallory))
        self.assertEqual(image.state, FAILED)
        self.assertEqual(image.state_reason[0], "InvalidManifest")
        self.assertEqual(self.states, [DECRYPTING, FAILED])
        self.assert_clean()

    async def test_content_is_not_what_it_says(self) -> None:
        image = await self.register(self.upload_bundle(raw_disk(), "kernel"))
        self.assertEqual(image.state, FAILED)
        self.assertIn("says kernel but holds a machine image", image.state_reason[1])
        junk = await self.register(self.upload_bundle(b"no disk here" * 100, prefix="j"))
        self.assertEqual(junk.state, FAILED)
        self.assertEqual(junk.state_reason[0], "Client.InvalidImage")
        self.assert_clean()

    async def test_unparsable_manifest_refused_at_once(self) -> None:
        self.s3.add("proj", "bundles", "x.manifest.xml", b"<manifest>oops")
        try:
            await self.registrar.register(context(), "bundles/x.manifest.xml")
        except bundle.InvalidManifest as e:
            self.assertEqual((e.code, e.status), ("InvalidManifest", 400))
        else:
            self.fail("no InvalidManifest")
        self.assertEqual(await self.repo.describe("proj", True), [])
