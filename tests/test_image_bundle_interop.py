"""
Interoperability with the tools of 2010: a bundle made the way euca2ools
makes one (GNU C{tar ch -S} of a sparse image, C{gzip}, C{openssl enc},
a C{minidom} manifest signed with C{openssl dgst -sha1 -sign}) unbundles,
and a bundle L{make_bundle} makes opens the way 2010 nova's
C{decrypt_image}/C{untarzip_image} opened one (C{openssl} RSA and
C{enc -d}, C{tar -xzf}), its signature checking with C{openssl dgst -verify}.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile

from twisted.trial import unittest

from nova.image import bundle
from nova.image.bundle import testing
from tests.support.minidom import manifest_document

TOOLS = ("tar", "gzip", "openssl")
MISSING = [tool for tool in TOOLS if shutil.which(tool) is None]


def run(*argv: str, data: bytes | None = None) -> bytes:
    return subprocess.run(argv, input=data, capture_output=True, check=True,
                          timeout=60).stdout


class InteropTestCase(unittest.TestCase):
    if MISSING:
        skip = f"needs {', '.join(MISSING)} on PATH"

    def setUp(self) -> None:
        self.creds = testing.shared_credentials()
        self.dir = self.mktemp()
        os.mkdir(self.dir)

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def write(self, name: str, data: bytes | str) -> str:
        mode = "wb" if isinstance(data, bytes) else "w"
        with open(self.path(name), mode) as f:
            f.write(data)
        return self.path(name)

    def sparse_image(self) -> tuple[str, bytes]:
        path = self.path("disk.img")
        with open(path, "wb") as f:
            f.write(os.urandom(300000))
            f.seek(3 << 20)
            f.write(os.urandom(5000))
            f.truncate(5 << 20)
        with open(path, "rb") as f:
            return path, f.read()


class Euca2oolsBundleTests(InteropTestCase):

    def euca2ools_manifest(self, parts: list[tuple[str, str]], fields: dict[str, str]) -> bytes:
        doc, root, add = manifest_document("1.3")
        machine = add(root, "machine_configuration")
        add(machine, "architecture", "x86_64")
        add(machine, "kernel_id", "aki-00000001")
        image = add(root, "image")
        add(image, "name", "disk.img")
        add(image, "user", "42")
        add(image, "type", "machine")
        add(image, "digest", fields["digest"], algorithm="SHA1")
        add(image, "size", fields["size"])
        add(image, "bundled_size", fields["bundled_size"])
        add(image, "ec2_encrypted_key", fields["ec2_key"], algorithm="AES-128-CBC")
        add(image, "user_encrypted_key", fields["user_key"], algorithm="AES-128-CBC")
        add(image, "ec2_encrypted_iv", fields["ec2_iv"])
        add(image, "user_encrypted_iv", fields["user_iv"])
        parts_elem = add(image, "parts", count=str(len(parts)))
        for index, (name, digest) in enumerate(parts):
            part = add(parts_elem, "part", index=str(index))
            add(part, "filename", name)
            add(part, "digest", digest, algorithm="SHA1")
        text = doc.toxml()
        to_sign = (text[text.find("<machine_configuration>"):
                        text.find("</machine_configuration>") + 24]
                   + text[text.find("<image>"):text.find("</image>") + 8])
        key_path = self.write("pk.pem", self.creds.user_key_pem)
        signature = run("openssl", "dgst", "-sha1", "-sign", key_path, data=to_sign.encode())
        add(root, "signature", signature.hex())
        return doc.toxml().encode()

    def encrypt_for(self, cert_pem: str, secret_hex: str) -> str:
        cert_path = self.write("for.pem", cert_pem)
        return run("openssl", "pkeyutl", "-encrypt", "-certin", "-inkey", cert_path,
                   data=secret_hex.encode()).hex()

    def test_euca2ools_bundle_accepted(self) -> None:
        image_path, image = self.sparse_image()
        tar = run("tar", "ch", "-S", "-C", self.dir, "disk.img")
        with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
            self.assertTrue(archive.next().issparse())  # type: ignore[union-attr]
        key, iv = os.urandom(16).hex(), os.urandom(16).hex()
        encrypted = run("openssl", "enc", "-e", "-aes-128-cbc", "-K", key, "-iv", iv,
                        data=run("gzip", "-c", data=tar))
        parts, part_paths = [], []
        for index, start in enumerate(range(0, len(encrypted), 100000)):
            chunk = encrypted[start:start + 100000]
            name = f"disk.img.part.{index}"
            part_paths.append(self.write(name, chunk))
            parts.append((name, hashlib.sha1(chunk).hexdigest()))
        manifest_bytes = self.euca2ools_manifest(parts, {
            "digest": hashlib.sha1(tar).hexdigest(), "size": str(len(image)),
            "bundled_size": str(len(encrypted)),
            "ec2_key": self.encrypt_for(self.creds.cloud_cert_pem, key),
            "ec2_iv": self.encrypt_for(self.creds.cloud_cert_pem, iv),
            "user_key": self.encrypt_for(self.creds.user_cert_pem, key),
            "user_iv": self.encrypt_for(self.creds.user_cert_pem, iv)})
        manifest = bundle.parse_manifest(manifest_bytes)
        self.assertEqual(manifest.kernel_id, "aki-00000001")
        bundle.verify_signature(manifest, self.creds.ca.user_certificates("alice"))
        out = self.path("out.img")
        size, sha256 = bundle.unbundle(manifest, part_paths, self.creds.ca, out)
        self.assertEqual((size, sha256), (len(image), hashlib.sha256(image).hexdigest()))
        with open(out, "rb") as f:
            self.assertEqual(f.read(), image)


class Nova2010ReaderTests(InteropTestCase):

    def test_our_bundle_opens_the_2010_way(self) -> None:
        image_path, image = self.sparse_image()
        out_dir = self.path("bundle")
        os.mkdir(out_dir)
        manifest_path, part_paths = bundle.make_bundle(
            image_path, out_dir, "disk.img", user_cert_pem=self.creds.user_cert_pem,
            user_key_pem=self.creds.user_key_pem, cloud_cert_pem=self.creds.cloud_cert_pem,
            part_size=200000)
        with open(manifest_path, "rb") as f:
            text = f.read().decode()
        manifest = bundle.parse_manifest(text.encode())
        # decrypt_image: the key is the hex text RSA-decrypted with the cloud's key
        cakey = str(self.creds.ca.ca_dir / "private" / "cakey.pem")
        key = run("openssl", "pkeyutl", "-decrypt", "-inkey", cakey,
                  data=bytes.fromhex(manifest.ec2_encrypted_key)).decode()
        iv = run("openssl", "pkeyutl", "-decrypt", "-inkey", cakey,
                 data=bytes.fromhex(manifest.ec2_encrypted_iv)).decode()
        encrypted = b""
        for path in part_paths:
            with open(path, "rb") as f:
                encrypted += f.read()
        tgz = run("openssl", "enc", "-d", "-aes-128-cbc", "-K", key, "-iv", iv,
                  data=encrypted)
        # untarzip_image
        self.write("image.tar.gz", tgz)
        extract = self.path("extract")
        os.mkdir(extract)
        run("tar", "-xzf", self.path("image.tar.gz"), "-C", extract)
        self.assertEqual(os.listdir(extract), ["disk.img"])
        with open(os.path.join(extract, "disk.img"), "rb") as f:
            self.assertEqual(f.read(), image)
        self.assertEqual(hashlib.sha1(run("gzip", "-dc", data=tgz)).hexdigest(),
                         manifest.digest)
        # the signature, over euca2ools' verification string
        to_sign = (text[text.find("<machine_configuration>"):
                        text.find("</machine_configuration>") + 24]
                   + text[text.find("<image>"):text.find("</image>") + 8])
        public = run("openssl", "x509", "-pubkey", "-noout",
                     "-in", self.write("cert.pem", self.creds.user_cert_pem))
        self.write("sig.bin", bytes.fromhex(manifest.signature))
        verified = run("openssl", "dgst", "-sha1", "-verify", self.write("pub.pem", public),
                       "-signature", self.path("sig.bin"), data=to_sign.encode())
        self.assertIn(b"Verified OK", verified)
