"""
Key pairs (CreateKeyPair/ImportKeyPair rules) and the cloud CA.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import os
import stat
import textwrap
import warnings
from pathlib import Path

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID
from twisted.trial import unittest

from nova import crypto, exception

# Made with `ssh-keygen -t ed25519`; `ssh-keygen -lf` prints
# "SHA256:czjREZBXPxNKzGf5jKAYguKXQ0UuvDS9Bv2YvnawIJk" for it.
ED25519_LINE = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGNaqfC1aUNBlbNdIygkuzJcmjBl"
                "HA1tg6sdS23EnsYD nova@example")
ED25519_FINGERPRINT = "czjREZBXPxNKzGf5jKAYguKXQ0UuvDS9Bv2YvnawIJk="

# Made with `ssh-keygen -t rsa -b 1024`; the fingerprint is what
# `ssh-keygen -e -m PKCS8 -f key.pub | openssl pkey -pubin -outform DER |
# openssl md5 -c` prints, AWS's rule for imported keys.
RSA_LINE = ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDMGA9XuiqZ2m4daB36I9vFoa7h5XD6cU"
            "uZalDvtwu7rsjmvOlsaVBjfM8b788vS6envsKqHJzSQ3VvXGNlxmDtFwq0m6gx93/oei"
            "wgMUy5DfRN7uypqYDtdCj5Vf9Pbh9qR+wXkM8VwgX2fOJ5MXI3kQ1HhO7Ce986CTXpQy"
            "lbQQ== imported")
RSA_FINGERPRINT = "5d:e8:9b:6f:2a:d0:0c:d7:0c:a8:7e:d6:0c:1e:37:86"

NOW = datetime.datetime(2010, 7, 15, 12, 0, tzinfo=datetime.timezone.utc)


def colon_hex(digest: bytes) -> str:
    return ":".join(f"{byte:02x}" for byte in digest)


def openssh(public_key: object, comment: str = "") -> bytes:
    line = public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return line + (b" " + comment.encode() if comment else b"")


class GenerateKeyPairTests(unittest.TestCase):

    def test_rsa(self) -> None:
        """RSA: traditional PEM, and the SHA-1 of the PKCS#8 DER private key."""
        private_pem, public, fingerprint = crypto.generate_key_pair("rsa")
        self.assertTrue(private_pem.startswith("-----BEGIN RSA PRIVATE KEY-----\n"))
        key = serialization.load_pem_private_key(private_pem.encode(), None)
        assert isinstance(key, rsa.RSAPrivateKey)
        self.assertEqual(key.key_size, 2048)
        self.assertEqual(public.encode(), openssh(key.public_key()))
        der = key.private_bytes(serialization.Encoding.DER,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        self.assertEqual(fingerprint, colon_hex(hashlib.sha1(der).digest()))
        self.assertEqual(len(fingerprint.split(":")), 20)

    def test_ed25519(self) -> None:
        """ED25519: OpenSSH private key, base64 SHA-256 fingerprint."""
        private_pem, public, fingerprint = crypto.generate_key_pair("ed25519")
        self.assertTrue(private_pem.startswith("-----BEGIN OPENSSH PRIVATE KEY-----"))
        key = serialization.load_ssh_private_key(private_pem.encode(), None)
        assert isinstance(key, ed25519.Ed25519PrivateKey)
        self.assertEqual(public.encode(), openssh(key.public_key()))
        blob = base64.b64decode(public.split()[1])
        self.assertEqual(fingerprint,
                         base64.b64encode(hashlib.sha256(blob).digest()).decode())

    def test_generated_keys_import_alike(self) -> None:
        """The public half of a generated key imports with the same type."""
        _, public, _ = crypto.generate_key_pair("ed25519")
        self.assertEqual(crypto.parse_public_key(public.encode())[:2],
                         ("ed25519", public))

    def test_bad_arguments(self) -> None:
        self.assertRaises(exception.InvalidParameterValue, crypto.generate_key_pair,
                          "dsa")
        self.assertRaises(exception.InvalidParameterValue, crypto.generate_key_pair,
                          "rsa", 1024)


class ParsePublicKeyTests(unittest.TestCase):

    def test_literal_ed25519(self) -> None:
        self.assertEqual(crypto.parse_public_key(ED25519_LINE.encode()),
                         ("ed25519", ED25519_LINE.rsplit(" ", 1)[0],
                          ED25519_FINGERPRINT))

    def test_literal_rsa(self) -> None:
        self.assertEqual(crypto.parse_public_key(RSA_LINE.encode()),
                         ("rsa", RSA_LINE.rsplit(" ", 1)[0], RSA_FINGERPRINT))

    def test_base64_wrapped(self) -> None:
        """The API's PublicKeyMaterial: the key file base64-encoded once more."""
        wrapped = base64.b64encode(RSA_LINE.encode() + b"\n")
        self.assertEqual(crypto.parse_public_key(wrapped)[2], RSA_FINGERPRINT)
        self.assertEqual(crypto.parse_public_key(wrapped.decode())[2], RSA_FINGERPRINT)

    def test_generated_rsa_fingerprint(self) -> None:
        """MD5 of the DER SubjectPublicKeyInfo, recomputed here."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        kind, line, fingerprint = crypto.parse_public_key(
            openssh(key.public_key(), "me@host"))
        self.assertEqual((kind, line.encode()), ("rsa", openssh(key.public_key())))
        self.assertEqual(fingerprint, colon_hex(hashlib.md5(der).digest()))
        pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.assertEqual(crypto.parse_public_key(pem)[2], fingerprint)
        self.assertEqual(crypto.parse_public_key(base64.b64encode(der))[2], fingerprint)

    def test_rfc4716(self) -> None:
        """The SSH2 public key file format (RFC 4716), with a header."""
        blob = RSA_LINE.split()[1]
        text = ("---- BEGIN SSH2 PUBLIC KEY ----\n"
                'Comment: "1024-bit RSA, converted by me"\n'
                + "\n".join(textwrap.wrap(blob, 70))
                + "\n---- END SSH2 PUBLIC KEY ----\n")
        self.assertEqual(crypto.parse_public_key(text.encode())[2], RSA_FINGERPRINT)

    def test_bare_blob(self) -> None:
        """The base64 key blob alone (the middle of an OpenSSH line)."""
        self.assertEqual(crypto.parse_public_key(RSA_LINE.split()[1])[2],
                         RSA_FINGERPRINT)

    def test_ecdsa(self) -> None:
        for curve in (ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()):
            public = ec.generate_private_key(curve).public_key()
            kind, line, _ = crypto.parse_public_key(openssh(public))
            self.assertEqual((kind, line.encode()), ("ecdsa", openssh(public)))

    def test_authorized_keys_options(self) -> None:
        """A line with authorized_keys options still names its key."""
        line = 'from="10.0.0.0/8",no-pty ' + ED25519_LINE
        self.assertEqual(crypto.parse_public_key(line.encode())[2], ED25519_FINGERPRINT)
        public = ec.generate_private_key(ec.SECP256R1()).public_key()
        self.assertEqual(crypto.parse_public_key(b"no-pty " + openssh(public))[0],
                         "ecdsa")

    def assertRefused(self, material: bytes | str) -> None:
        error = self.assertRaises(crypto.InvalidKeyFormat, crypto.parse_public_key,
                                  material)
        self.assertIsInstance(error, exception.InvalidParameterValue)
        self.assertEqual((error.code, error.status), ("InvalidKey.Format", 400))

    def test_dsa_refused(self) -> None:
        public = dsa.generate_private_key(key_size=1024).public_key()
        with warnings.catch_warnings():
            # cryptography deprecates writing ssh-dss keys; we need one.
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            line = openssh(public)
        self.assertRefused(line)
        self.assertRefused(line.split()[1])
        der = public.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
        self.assertRefused(base64.b64encode(der))

    def test_short_rsa_refused(self) -> None:
        """A 768-bit modulus (built from numbers: no generator makes one)."""
        public = rsa.RSAPublicNumbers(65537, (1 << 767) | 1).public_key()
        self.assertRefused(openssh(public))

    def test_private_key_refused(self) -> None:
        private_pem, _, _ = crypto.generate_key_pair("ed25519")
        self.assertRefused(private_pem)
        self.assertRefused(base64.b64encode(private_pem.encode()))

    def test_garbage_refused(self) -> None:
        for material in (b"", b"   ", b"hello world", b"ssh-rsa", b"ssh-rsa !!!!",
                         b"ssh-rsa AAAAB3NzaC1yc2E=", b"\xff\xfe\x00",
                         b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
                         base64.b64encode(b"not a key at all"),
                         "ssh-ed25519 " + RSA_LINE.split()[1],
                         ED25519_LINE + "\n" + RSA_LINE):
            self.assertRefused(material)

    def test_oversize_refused(self) -> None:
        self.assertRefused(ED25519_LINE + " " + "x" * crypto.MAX_PUBLIC_KEY_MATERIAL)


class CertificateAuthorityTests(unittest.TestCase):

    def setUp(self) -> None:
        self.ca_dir = Path(self.mktemp())
        self.ca = crypto.CertificateAuthority(self.ca_dir, now=NOW)

    def test_created(self) -> None:
        """Self-signed CA, CN nova-ca, ten years, key file 0600."""
        cert = self.ca.ca_certificate
        self.assertEqual(cert.subject, cert.issuer)
        self.assertEqual(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value,
                         "nova-ca")
        cert.verify_directly_issued_by(cert)
        self.assertTrue(cert.extensions.get_extension_for_class(
            x509.BasicConstraints).value.ca)
        self.assertGreaterEqual(cert.not_valid_after_utc - NOW,
                                datetime.timedelta(days=3649))
        key_mode = stat.S_IMODE(os.stat(self.ca_dir / "private" / "cakey.pem").st_mode)
        self.assertEqual(key_mode, 0o600)
        self.assertEqual((self.ca_dir / "cacert.pem").read_text(), self.ca.ca_cert_pem)
        self.assertEqual([p.name for p in self.ca_dir.rglob("*.tmp")], [])

    def test_reloaded(self) -> None:
        """A second instance on the same directory loads the same CA."""
        again = crypto.CertificateAuthority(self.ca_dir)
        self.assertEqual(again.ca_cert_pem, self.ca.ca_cert_pem)

    def test_issue_user_certificate(self) -> None:
        key_pem, cert_pem = self.ca.issue_user_certificate("alice", "proj-1",
                                                           now=NOW)
        self.assertTrue(key_pem.startswith("-----BEGIN RSA PRIVATE KEY-----"))
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
        cert.verify_directly_issued_by(self.ca.ca_certificate)
        self.assertEqual(self.ca.verify_certificate(cert_pem, now=NOW).subject,
                         cert.subject)
        key = serialization.load_pem_private_key(key_pem.encode(), None)
        self.assertEqual(key.public_key(), cert.public_key())
        attributes = {attr.oid: attr.value for attr in cert.subject}
        self.assertEqual(attributes[NameOID.ORGANIZATION_NAME], "NOVA")
        self.assertEqual(attributes[NameOID.ORGANIZATIONAL_UNIT_NAME], "proj-1")
        self.assertEqual(attributes[NameOID.COMMON_NAME], "alice-20100715T120000Z")
        self.assertFalse(cert.extensions.get_extension_for_class(
            x509.BasicConstraints).value.ca)

    def test_verify_refuses_foreign_and_expired(self) -> None:
        other = crypto.CertificateAuthority(Path(self.mktemp()), now=NOW)
        _, foreign = other.issue_user_certificate("bob", "proj", now=NOW)
        self.assertRaises(crypto.CryptoError, self.ca.verify_certificate, foreign,
                          now=NOW)
        _, cert_pem = self.ca.issue_user_certificate("bob", "proj", now=NOW, days=1)
        self.assertRaises(crypto.CryptoError, self.ca.verify_certificate, cert_pem,
                          now=NOW + datetime.timedelta(days=2))
        self.assertRaises(crypto.CryptoError, self.ca.verify_certificate, "junk")

    def test_invalid_ids(self) -> None:
        for user, project in (("", "p"), ("u", ""), ("a/b", "p"), ("u", "p\nq"),
                              ("-u", "p"), ("u" * 48, "p"), ("u", "p" * 65),
                              ("CN=x,O=y", "p")):
            self.assertRaises(exception.InvalidParameterValue,
                              self.ca.issue_user_certificate, user, project)

    def test_decrypt_with_ca_key(self) -> None:
        """What a bundle tool encrypts with cacert.pem, the CA decrypts."""
        secret = os.urandom(32)
        public = self.ca.ca_certificate.public_key()
        assert isinstance(public, rsa.RSAPublicKey)
        ciphertext = public.encrypt(secret, padding.PKCS1v15())
        self.assertEqual(self.ca.decrypt_with_ca_key(ciphertext), secret)
        self.assertRaises(exception.InvalidParameterValue,
                          self.ca.decrypt_with_ca_key, b"short")

    def test_cert_lost_key_kept(self) -> None:
        """A crash between the two writes: the certificate is remade."""
        (self.ca_dir / "cacert.pem").unlink()
        again = crypto.CertificateAuthority(self.ca_dir)
        self.assertEqual(again.ca_certificate.public_key(),
                         self.ca.ca_certificate.public_key())

    def test_key_lost_is_an_error(self) -> None:
        (self.ca_dir / "private" / "cakey.pem").unlink()
        self.assertRaises(crypto.CryptoError, crypto.CertificateAuthority, self.ca_dir)

    def test_mismatched_pair_is_an_error(self) -> None:
        other_dir = Path(self.mktemp())
        crypto.CertificateAuthority(other_dir, now=NOW)
        (self.ca_dir / "cacert.pem").write_bytes((other_dir / "cacert.pem").read_bytes())
        self.assertRaises(crypto.CryptoError, crypto.CertificateAuthority, self.ca_dir)


class UserCertificateRecordTests(unittest.TestCase):
    """The CA records what it issues, so that it can verify users' signatures."""

    def setUp(self) -> None:
        self.ca_dir = Path(self.mktemp())
        self.ca = crypto.CertificateAuthority(self.ca_dir, now=NOW)

    def test_recorded_under_serial(self) -> None:
        """users/<user>/<serial hex>.pem, written atomically (no leftovers)."""
        _, cert_pem = self.ca.issue_user_certificate("alice", "proj", now=NOW)
        serial = x509.load_pem_x509_certificate(cert_pem.encode()).serial_number
        path = self.ca_dir / "users" / "alice" / f"{serial:x}.pem"
        self.assertEqual(path.read_text(), cert_pem)
        self.assertEqual([p.name for p in self.ca_dir.rglob("*.tmp")], [])

    def test_user_certificates_newest_first(self) -> None:
        later = NOW + datetime.timedelta(days=1)
        _, first = self.ca.issue_user_certificate("alice", "proj", now=NOW)
        _, second = self.ca.issue_user_certificate("alice", "other", now=later)
        self.ca.issue_user_certificate("bob", "proj", now=NOW)
        self.assertEqual(self.ca.user_certificates("alice", now=later), [second, first])

    def test_unknown_or_invalid_user(self) -> None:
        self.assertEqual(self.ca.user_certificates("nobody", now=NOW), [])
        self.assertEqual(self.ca.user_certificates("../alice", now=NOW), [])

    def test_expired_foreign_and_junk_left_out(self) -> None:
        """Only valid certificates of this CA, for this user, are returned."""
        _, expired = self.ca.issue_user_certificate("alice", "proj", now=NOW, days=1)
        _, valid = self.ca.issue_user_certificate("alice", "proj", now=NOW, days=30)
        other = crypto.CertificateAuthority(Path(self.mktemp()), now=NOW)
        _, foreign = other.issue_user_certificate("alice", "proj", now=NOW)
        _, bobs = self.ca.issue_user_certificate("bob", "proj", now=NOW, days=30)
        folder = self.ca_dir / "users" / "alice"
        (folder / "foreign.pem").write_text(foreign)
        (folder / "bobs.pem").write_text(bobs)
        (folder / "junk.pem").write_text("not a certificate")
        check_at = NOW + datetime.timedelta(days=2)
        self.assertEqual(self.ca.user_certificates("alice", now=check_at), [valid])
        self.assertNotIn(expired, self.ca.user_certificates("alice", now=check_at))
