"""
Making a bundle, as euca2ools' C{euca-bundle-image} does: the image is
tarred (SHA-1 of the tar stream is the manifest's digest), gzipped,
encrypted with AES-128-CBC under a random key and IV, split into parts,
and described by a manifest signed with the user's key; the key and IV go
into it encrypted for the user and for the cloud. One streaming pass,
BLOCKING (run it in a thread, or from a command-line tool).
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import zlib
from collections.abc import Callable

import attr
from cryptography import x509
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from nova.image.bundle.errors import ManifestSyntaxError
from nova.image.bundle.manifest import Manifest, parse_manifest
from nova.image.bundle.writer import render_manifest
from nova.utils.files import write_atomically

#: euca2ools' part size.
PART_SIZE = 10 * 1024 * 1024
BUNDLER_NAME = "nova-bundle-image"
BUNDLER_VERSION = "1.0"
BUNDLER_RELEASE = "nova"
_IO_CHUNK = 1024 * 1024

Progress = Callable[[str, int, int], None]


def certificate_key(cert_pem: str | bytes, whose: str) -> rsa.RSAPublicKey:
    """
    @param cert_pem: a certificate in PEM.
    @param whose: C{"user"} or C{"cloud"}, for messages.
    @return: its RSA public key.
    @raise ManifestSyntaxError: not a certificate with an RSA key.
    """
    data = cert_pem.encode("ascii") if isinstance(cert_pem, str) else cert_pem
    try:
        key = x509.load_pem_x509_certificate(data).public_key()
    except ValueError as problem:
        raise ManifestSyntaxError(f"the {whose} certificate cannot be read: {problem}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ManifestSyntaxError(f"the {whose} certificate does not hold an RSA key")
    return key


def encrypt_for(key: rsa.RSAPublicKey, secret: bytes) -> str:
    """
    @return: hex of the RSA PKCS#1 v1.5 encryption of C{secret}'s hex text
        (euca2ools encrypts the key's hex digits, not the raw bytes).
    """
    return key.encrypt(secret.hex().encode("ascii"), padding.PKCS1v15()).hex()


class _PartWriter:
    """The last stage: ciphertext split into C{<prefix>.part.<n>} files."""

    def __init__(self, out_dir: str, prefix: str, part_size: int) -> None:
        self.out_dir, self.prefix, self.part_size = out_dir, prefix, part_size
        self.paths: list[str] = []
        self.parts: list[tuple[str, str]] = []
        self.total = 0
        self._file: object | None = None
        self._sha1 = hashlib.sha1(usedforsecurity=False)
        self._filled = 0

    def _roll(self) -> None:
        self._close_part()
        name = f"{self.prefix}.part.{len(self.paths)}"
        path = os.path.join(self.out_dir, name)
        self.paths.append(path)
        self.parts.append((name, ""))
        self._file = open(path, "wb")
        self._sha1 = hashlib.sha1(usedforsecurity=False)
        self._filled = 0

    def _close_part(self) -> None:
        if self._file is not None:
            self._file.close()  # type: ignore[attr-defined]
            self.parts[-1] = (self.parts[-1][0], self._sha1.hexdigest())
            self._file = None

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._file is None or self._filled >= self.part_size:
                self._roll()
            room = self.part_size - self._filled
            piece = view[:room]
            self._file.write(piece)  # type: ignore[attr-defined]
            self._sha1.update(piece)
            self._filled += len(piece)
            self.total += len(piece)
            view = view[room:]

    def close(self) -> None:
        self._close_part()

    def remove(self) -> None:
        self._close_part()
        for path in self.paths:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


class _TarSink:
    """What tarfile writes to: hashes the tar, gzips, encrypts, hands on."""

    def __init__(self, parts: _PartWriter, key: bytes, iv: bytes) -> None:
        self.tar_sha1 = hashlib.sha1(usedforsecurity=False)
        self._gzip = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: gzip framing
        self._encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        self._padder = sym_padding.PKCS7(128).padder()
        self._parts = parts

    def _encrypt(self, data: bytes) -> None:
        if data:
            self._parts.write(self._encryptor.update(self._padder.update(data)))

    def write(self, data: bytes) -> int:
        self.tar_sha1.update(data)
        self._encrypt(self._gzip.compress(data))
        return len(data)

    def finish(self) -> None:
        self._encrypt(self._gzip.flush())
        self._parts.write(self._encryptor.update(self._padder.finalize())
                          + self._encryptor.finalize())
        self._parts.close()


class _Progressing:
    """The image file, reporting how much of it was read."""

    def __init__(self, path: str, total: int, progress: Progress | None) -> None:
        self._file = open(path, "rb")
        self._done, self._total, self._progress = 0, total, progress

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self._done += len(data)
        if self._progress is not None:
            self._progress("bundle", self._done, self._total)
        return data

    def close(self) -> None:
        self._file.close()


def make_bundle(image_path: str, out_dir: str, prefix: str, *, user_cert_pem: str | bytes,
                user_key_pem: str | bytes, cloud_cert_pem: str | bytes,
                image_type: str = "machine", arch: str = "x86_64",
                kernel_id: str | None = None, ramdisk_id: str | None = None,
                part_size: int = PART_SIZE, progress: Progress | None = None,
                user: str = "42") -> tuple[str, list[str]]:
    """
    Bundle an image file. BLOCKING.

    @param image_path: the image (a regular file).
    @param out_dir: where the manifest and parts are written (must exist).
    @param prefix: the bundle's name: C{<prefix>.manifest.xml}, C{<prefix>.part.N}.
    @param user_cert_pem: the user's certificate (C{cert.pem}).
    @param user_key_pem: the user's private key (C{pk.pem}); signs the manifest.
    @param cloud_cert_pem: the cloud's certificate (C{cacert.pem}).
    @param image_type: C{machine}, C{kernel} or C{ramdisk}.
    @param arch: the architecture.
    @param kernel_id: the default kernel (C{aki-...}), if any.
    @param ramdisk_id: the default ramdisk (C{ari-...}), if any.
    @param part_size: the size of each part but the last.
    @param progress: called as C{progress("bundle", bytes_done, bytes_total)}.
    @param user: the manifest's C{<user>} (euca2ools' C{--user}; unused by nova).
    @return: C{(manifest_path, part_paths)}.
    @raise ManifestSyntaxError: a bad argument, certificate or key; nothing
        is left behind.
    @raise OSError: the image cannot be read or the bundle written.
    """
    if part_size < 16:
        raise ManifestSyntaxError("the part size must be at least 16 bytes")
    user_public = certificate_key(user_cert_pem, "user")
    cloud_public = certificate_key(cloud_cert_pem, "cloud")
    stat = os.stat(image_path)
    if not os.path.isfile(image_path):
        raise ManifestSyntaxError(f"{image_path} is not a regular file")
    key, iv = os.urandom(16), os.urandom(16)
    fields = Manifest(
        bundler_name=BUNDLER_NAME, bundler_version=BUNDLER_VERSION,
        bundler_release=BUNDLER_RELEASE, architecture=arch, kernel_id=kernel_id,
        ramdisk_id=ramdisk_id, image_name=os.path.basename(image_path), user=user,
        image_type=image_type, digest="0" * 40, size=stat.st_size, bundled_size=0,
        ec2_encrypted_key=encrypt_for(cloud_public, key),
        ec2_encrypted_iv=encrypt_for(cloud_public, iv),
        user_encrypted_key=encrypt_for(user_public, key),
        user_encrypted_iv=encrypt_for(user_public, iv),
        parts=((f"{prefix}.part.0", "0" * 40),))
    # Check every argument (ids, type, names, key) before the long work.
    parse_manifest(render_manifest(fields, user_key_pem))
    writer = _PartWriter(out_dir, prefix, part_size)
    try:
        sink = _TarSink(writer, key, iv)
        source = _Progressing(image_path, stat.st_size, progress)
        try:
            info = tarfile.TarInfo(os.path.basename(image_path))
            info.size, info.mtime, info.mode = stat.st_size, int(stat.st_mtime), 0o644
            with tarfile.open(fileobj=sink, mode="w|", format=tarfile.GNU_FORMAT,  # type: ignore[call-overload]
                              copybufsize=_IO_CHUNK) as archive:
                archive.addfile(info, source)
        finally:
            source.close()
        sink.finish()
        manifest = attr.evolve(fields, digest=sink.tar_sha1.hexdigest(),
                               bundled_size=writer.total, parts=tuple(writer.parts))
        manifest_path = os.path.join(out_dir, f"{prefix}.manifest.xml")
        write_atomically(manifest_path, render_manifest(manifest, user_key_pem), 0o644)
    except BaseException:
        writer.remove()
        raise
    return manifest_path, list(writer.paths)

