"""Manifest signatures and the recovery of the image key with the cloud's CA."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.asymmetric import padding
from twisted.trial import unittest

from nova.image import bundle
from nova.image.bundle import testing


class VerifyTests(unittest.TestCase):

    def setUp(self) -> None:
        self.creds = testing.shared_credentials()
        self.out = self.mktemp()
        os.mkdir(self.out)
        self.data, _ = testing.seal(b"x" * 100, self.out, "img", self.creds, size=1)
        self.manifest = bundle.parse_manifest(self.data)

    def test_good_signature(self) -> None:
        """Verified by the user's certificate; others in the list are skipped."""
        other = testing.make_credentials(self.mktemp(), user_id="bob")
        found = bundle.verify_signature(
            self.manifest, ["junk", other.user_cert_pem, self.creds.user_cert_pem.encode()])
        self.assertEqual(found, self.creds.user_cert_pem)

    def test_certificates_recorded_by_the_ca(self) -> None:
        """The registrar's path: ca.user_certificates(user) holds the signer."""
        candidates = self.creds.ca.user_certificates(self.creds.user_id)
        self.assertIn(self.creds.user_cert_pem, candidates)
        bundle.verify_signature(self.manifest, candidates)

    def test_signed_by_someone_else(self) -> None:
        other = testing.make_credentials(self.mktemp(), user_id="bob")
        error = self.assertRaises(bundle.SignatureMismatch, bundle.verify_signature,
                                  self.manifest, [other.user_cert_pem])
        self.assertEqual(error.code, "InvalidManifest")
        self.assertIn("does not match any of the user's 1 certificate", str(error))

    def test_no_certificates(self) -> None:
        error = self.assertRaises(bundle.SignatureMismatch, bundle.verify_signature,
                                  self.manifest, [])
        self.assertIn("no certificate", str(error))

    def test_altered_manifest(self) -> None:
        """Any change to the signed elements breaks the signature."""
        for old, new in ((b"<size>1</size>", b"<size>2</size>"),
                         (b"<architecture>x86_64", b"<architecture>i386"),
                         (b"img.part.0</filename>", b"img.part.9</filename>")):
            self.assertIn(old, self.data)
            altered = bundle.parse_manifest(self.data.replace(old, new))
            self.assertRaises(bundle.SignatureMismatch, bundle.verify_signature,
                              altered, [self.creds.user_cert_pem])

    def test_altered_signature(self) -> None:
        signature = self.manifest.signature
        flipped = ("1" if signature[0] == "0" else "0") + signature[1:]
        altered = bundle.parse_manifest(self.data.replace(signature.encode(), flipped.encode()))
        self.assertRaises(bundle.SignatureMismatch, bundle.verify_signature,
                          altered, [self.creds.user_cert_pem])

    def test_decrypt_key(self) -> None:
        key, iv = bundle.decrypt_key(self.manifest, self.creds.ca)
        self.assertEqual((len(key), len(iv)), (16, 16))
        self.assertNotEqual(key, iv)

    def test_wrong_cloud_key(self) -> None:
        """
        Encrypted for another cloud: refused whether RSA fails outright or,
        with implicit rejection, "decrypts" to garbage.
        """
        other = testing.make_credentials(self.mktemp(), user_id="bob")
        error = self.assertRaises(bundle.WrongCloudKey, bundle.decrypt_key,
                                  self.manifest, other.ca)
        self.assertEqual(error.code, "InvalidManifest")
        self.assertIn("another cloud certificate", str(error))

    def test_key_not_hex(self) -> None:
        """A ciphertext of the right key, but of 16 raw bytes rather than hex: refused."""
        public = bundle.pack.certificate_key(self.creds.cloud_cert_pem, "cloud")
        raw = public.encrypt(os.urandom(16), padding.PKCS1v15()).hex()
        manifest = bundle.parse_manifest(
            self.data.replace(self.manifest.ec2_encrypted_key.encode(), raw.encode()))
        self.assertRaises(bundle.WrongCloudKey, bundle.decrypt_key, manifest, self.creds.ca)
