"""
Helpers for tests of bundles (this package's and the image registrar's):
a throw-away cloud CA with a user, and L{seal}, which wraps any payload
(a hostile tar.gz, say) in a correctly encrypted and signed bundle.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import attr
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from nova.crypto import CertificateAuthority
from nova.image.bundle.manifest import Manifest
from nova.image.bundle.pack import certificate_key, encrypt_for
from nova.image.bundle.writer import render_manifest


@attr.s(frozen=True, auto_attribs=True)
class Credentials:
    """A cloud CA and one user's key and certificate from it."""

    ca: CertificateAuthority
    user_id: str
    user_key_pem: str
    user_cert_pem: str

    @property
    def cloud_cert_pem(self) -> str:
        """@return: the cloud's certificate (C{cacert.pem})."""
        return self.ca.ca_cert_pem


def make_credentials(ca_dir: str | None = None, user_id: str = "alice",
                     project_id: str = "proj") -> Credentials:
    """
    @param ca_dir: where the CA lives (default: a new temporary directory).
    @return: a CA and a user with a certificate it issued (and recorded).
    """
    ca = CertificateAuthority(Path(ca_dir or tempfile.mkdtemp(prefix="nova-ca-")))
    key_pem, cert_pem = ca.issue_user_certificate(user_id, project_id)
    return Credentials(ca, user_id, key_pem, cert_pem)


def seal(payload: bytes, out_dir: str, prefix: str, creds: Credentials, *,
         size: int, digest: str | None = None, part_size: int = 1024 * 1024,
         cloud_cert_pem: str | None = None, padded: bool = True) -> tuple[bytes, list[str]]:
    """
    Encrypt C{payload} (what should be a tar.gz) as a bundle, honestly: the
    manifest is well signed, the part digests right. For testing refusals
    of what is inside.

    @param size: the manifest's C{<size>}.
    @param digest: the manifest's digest (default: SHA-1 of C{payload}, which
        is never right: pass the tar's).
    @param cloud_cert_pem: encrypt the key for this certificate instead.
    @param padded: PKCS#7-pad (C{False}: a payload of whole blocks, unpadded).
    @return: C{(manifest_bytes, part_paths)}; the manifest is also written
        as C{<out_dir>/<prefix>.manifest.xml}.
    """
    key, iv = os.urandom(16), os.urandom(16)
    if padded:
        padder = sym_padding.PKCS7(128).padder()
        payload = padder.update(payload) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(payload) + encryptor.finalize()
    paths, parts = [], []
    for index, start in enumerate(range(0, len(ciphertext), part_size)):
        chunk = ciphertext[start:start + part_size]
        name = f"{prefix}.part.{index}"
        path = os.path.join(out_dir, name)
        with open(path, "wb") as f:
            f.write(chunk)
        paths.append(path)
        parts.append((name, hashlib.sha1(chunk).hexdigest()))
    cloud = certificate_key(cloud_cert_pem or creds.cloud_cert_pem, "cloud")
    user = certificate_key(creds.user_cert_pem, "user")
    manifest = Manifest(
        image_name=prefix, image_type="machine", size=size,
        digest=digest or hashlib.sha1(payload).hexdigest(),
        bundled_size=len(ciphertext),
        ec2_encrypted_key=encrypt_for(cloud, key), ec2_encrypted_iv=encrypt_for(cloud, iv),
        user_encrypted_key=encrypt_for(user, key), user_encrypted_iv=encrypt_for(user, iv),
        parts=tuple(parts))
    data = render_manifest(manifest, creds.user_key_pem)
    with open(os.path.join(out_dir, f"{prefix}.manifest.xml"), "wb") as f:
        f.write(data)
    return data, paths


_shared: list[Credentials] = []


def shared_credentials() -> Credentials:
    """
    @return: one L{Credentials} per process (RSA key generation is slow),
        in a temporary directory removed when the process exits. Only for
        tests that do not change the CA.
    """
    if not _shared:
        import atexit
        import shutil
        ca_dir = tempfile.mkdtemp(prefix="nova-bundle-test-ca-")
        atexit.register(shutil.rmtree, ca_dir, True)
        _shared.append(make_credentials(ca_dir))
    return _shared[0]
