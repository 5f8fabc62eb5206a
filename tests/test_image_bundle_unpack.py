"""
Unbundling: the round trip with make_bundle, and the refusal of damaged or
hostile bundles (parts, padding, gzip bombs, tar members), leaving nothing
behind.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import tracemalloc

from twisted.trial import unittest

from nova.image import bundle
from nova.image.bundle import testing


def tar_of(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
            else:
                archive.addfile(info)
    return buffer.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, **fields: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    for field, value in fields.items():
        setattr(info, field, value)
    return info


class UnbundleTestCase(unittest.TestCase):

    def setUp(self) -> None:
        self.creds = testing.shared_credentials()
        self.dir = self.mktemp()
        os.mkdir(self.dir)
        self.out_path = os.path.join(self.dir, "image.out")

    def write_image(self, data: bytes) -> str:
        path = os.path.join(self.dir, "disk.img")
        with open(path, "wb") as f:
            f.write(data)
        return path

    def make(self, data: bytes, part_size: int = 4096) -> tuple[bundle.Manifest, list[str]]:
        manifest_path, parts = bundle.make_bundle(
            self.write_image(data), self.dir, "disk.img",
            user_cert_pem=self.creds.user_cert_pem, user_key_pem=self.creds.user_key_pem,
            cloud_cert_pem=self.creds.cloud_cert_pem, part_size=part_size)
        with open(manifest_path, "rb") as f:
            return bundle.parse_manifest(f.read()), parts

    def seal(self, tar: bytes, size: int, digest: str | None = None,
             **kwargs: object) -> tuple[bundle.Manifest, list[str]]:
        data, parts = testing.seal(gzip.compress(tar), self.dir, "hostile", self.creds,
                                   size=size, digest=digest or hashlib.sha1(tar).hexdigest(),
                                   **kwargs)  # type: ignore[arg-type]
        return bundle.parse_manifest(data), parts

    def assertRefused(self, error_class: type[bundle.InvalidManifest], words: str,
                      manifest: bundle.Manifest, parts: list[str]) -> None:
        error = self.assertRaises(error_class, bundle.unbundle, manifest, parts,
                                  self.creds.ca, self.out_path)
        self.assertEqual(error.code, "InvalidManifest")
        self.assertIn(words, str(error))
        self.assertFalse(os.path.exists(self.out_path), "the output was left behind")


class RoundTripTests(UnbundleTestCase):

    def test_round_trip(self) -> None:
        data = os.urandom(10000) + bytes(70000) + os.urandom(5)
        manifest, parts = self.make(data)
        self.assertGreater(len(parts), 2)
        bundle.verify_signature(manifest, self.creds.ca.user_certificates("alice"))
        size, sha256 = bundle.unbundle(manifest, parts, self.creds.ca, self.out_path)
        self.assertEqual((size, sha256), (len(data), hashlib.sha256(data).hexdigest()))
        with open(self.out_path, "rb") as f:
            self.assertEqual(f.read(), data)

    def test_empty_image(self) -> None:
        manifest, parts = self.make(b"")
        self.assertEqual(bundle.unbundle(manifest, parts, self.creds.ca, self.out_path),
                         (0, hashlib.sha256(b"").hexdigest()))

    def test_old_euca2ools_digest(self) -> None:
        """euca2ools before 1.2 put the SHA-1 of the image file in <digest>."""
        image = os.urandom(3000)
        manifest, parts = self.seal(tar_of((member("disk.img"), image)), size=3000,
                                    digest=hashlib.sha1(image).hexdigest())
        self.assertEqual(bundle.unbundle(manifest, parts, self.creds.ca, self.out_path)[0],
                         3000)

    def test_big_image_streams(self) -> None:
        """
        30 MiB, half random, in 4 parts, unbundled without holding the image
        (nor a part) in memory.
        """
        path = os.path.join(self.dir, "big.img")
        with open(path, "wb") as f:
            for block in range(30):
                f.write(os.urandom(1 << 20) if block % 2 else bytes(1 << 20))
        manifest_path, parts = bundle.make_bundle(
            path, self.dir, "big.img", user_cert_pem=self.creds.user_cert_pem,
            user_key_pem=self.creds.user_key_pem, cloud_cert_pem=self.creds.cloud_cert_pem,
            part_size=4 << 20)
        self.assertEqual(len(parts), 4)
        with open(manifest_path, "rb") as f:
            manifest = bundle.parse_manifest(f.read())
        tracemalloc.start()
        self.addCleanup(tracemalloc.stop)
        size, sha256 = bundle.unbundle(manifest, parts, self.creds.ca, self.out_path)
        _, peak = tracemalloc.get_traced_memory()
        self.assertLess(peak, 12 << 20)
        expected = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                expected.update(chunk)
        self.assertEqual((size, sha256), (30 << 20, expected.hexdigest()))


class PartTests(UnbundleTestCase):

    def test_tampered_part(self) -> None:
        manifest, parts = self.make(os.urandom(20000))
        with open(parts[1], "r+b") as f:
            byte = f.read(1)
            f.seek(0)
            f.write(bytes([byte[0] ^ 1]))
        self.assertRefused(bundle.PartError, "part 1 (disk.img.part.1, 4096 bytes) does not"
                           " match its SHA-1", manifest, parts)

    def test_truncated_part(self) -> None:
        manifest, parts = self.make(os.urandom(20000))
        os.truncate(parts[2], 100)
        self.assertRefused(bundle.PartError, "truncated", manifest, parts)

    def test_missing_part(self) -> None:
        manifest, parts = self.make(os.urandom(20000))
        os.unlink(parts[1])
        self.assertRefused(bundle.PartError, "part 1 (disk.img.part.1) is missing",
                           manifest, parts)
        self.assertRefused(bundle.PartError, "supplied", manifest, parts[:1])

    def test_parts_swapped(self) -> None:
        manifest, parts = self.make(os.urandom(20000))
        parts[0], parts[1] = parts[1], parts[0]
        self.assertRefused(bundle.PartError, "part 0", manifest, parts)

    def test_wrong_cloud(self) -> None:
        manifest, parts = self.make(b"data")
        other = testing.make_credentials(self.mktemp(), user_id="bob")
        error = self.assertRaises(bundle.WrongCloudKey, bundle.unbundle, manifest, parts,
                                  other.ca, self.out_path)
        self.assertIn("another cloud", str(error))
        self.assertFalse(os.path.exists(self.out_path))


class HostileContentTests(UnbundleTestCase):

    def test_bad_padding(self) -> None:
        tar = tar_of((member("disk.img"), b"x" * 100))
        payload = gzip.compress(tar)
        payload += bytes(-len(payload) % 16)  # whole blocks, no padding block
        data, parts = testing.seal(payload, self.dir, "p", self.creds, size=100,
                                   padded=False)
        self.assertRefused(bundle.ImageDataError, "bad padding", bundle.parse_manifest(data),
                           parts)

    def test_not_gzip(self) -> None:
        data, parts = testing.seal(b"plain text, not gzip", self.dir, "p", self.creds, size=9)
        self.assertRefused(bundle.ImageDataError, "not a valid tar.gz",
                           bundle.parse_manifest(data), parts)

    def test_digest_mismatch(self) -> None:
        manifest, parts = self.seal(tar_of((member("disk.img"), b"abc")), size=3,
                                    digest="0" * 40)
        self.assertRefused(bundle.ImageDataError, "SHA-1 digest", manifest, parts)

    def test_size_mismatch(self) -> None:
        manifest, parts = self.seal(tar_of((member("disk.img"), b"abc")), size=4)
        self.assertRefused(bundle.ImageDataError, "the manifest says 4", manifest, parts)

    def test_gzip_bomb_member(self) -> None:
        """A member bigger than <size> is refused from its header, unwritten."""
        manifest, parts = self.seal(tar_of((member("disk.img"), bytes(8 << 20))), size=1000)
        self.assertRefused(bundle.ImageDataError, "larger than the manifest's size",
                           manifest, parts)

    def test_gzip_bomb_after_the_tar(self) -> None:
        """Megabytes of zeros after the archive: stopped at size plus tar overhead."""
        tar = tar_of((member("disk.img"), b"abc")) + bytes(8 << 20)
        manifest, parts = self.seal(tar, size=3)
        self.assertRefused(bundle.ImageDataError, "gzip bomb", manifest, parts)

    def test_links_devices_and_directories(self) -> None:
        cases = [
            (member("disk.img", tarfile.SYMTYPE, linkname="/etc/shadow"), "is a link"),
            (member("disk.img", tarfile.LNKTYPE, linkname="other"), "is a link"),
            (member("disk.img", tarfile.CHRTYPE, devmajor=1, devminor=3), "is a device"),
            (member("disk.img", tarfile.BLKTYPE, devmajor=8, devminor=0), "is a device"),
            (member("disk.img", tarfile.DIRTYPE), "not a regular file"),
            (member("disk.img", tarfile.FIFOTYPE), "a pipe"),
        ]
        for info, words in cases:
            manifest, parts = self.seal(tar_of((info, None)), size=10)
            self.assertRefused(bundle.ImageDataError, words, manifest, parts)

    def test_unsafe_names(self) -> None:
        for name in ("../x", "/etc/passwd", "a/../../x"):
            manifest, parts = self.seal(tar_of((member(name), b"abc")), size=3)
            self.assertRefused(bundle.ImageDataError, "absolute or '..'", manifest, parts)

    def test_two_files(self) -> None:
        manifest, parts = self.seal(
            tar_of((member("disk.img"), b"abc"), (member("extra"), b"d")), size=3)
        self.assertRefused(bundle.ImageDataError, "more than one member", manifest, parts)

    def test_empty_tar(self) -> None:
        manifest, parts = self.seal(tar_of(), size=0)
        self.assertRefused(bundle.ImageDataError, "no file", manifest, parts)

    def test_existing_output_removed_on_failure(self) -> None:
        with open(self.out_path, "wb") as f:
            f.write(b"old")
        manifest, parts = self.seal(tar_of((member("../x"), b"abc")), size=3)
        self.assertRefused(bundle.ImageDataError, "'..'", manifest, parts)
