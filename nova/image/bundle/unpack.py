"""
Unbundling: parts -> SHA-1 checks -> AES-128-CBC -> gunzip -> untar of the
one image file, streamed (BLOCKING: run it in a thread).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
import zlib
from collections.abc import Sequence

from nova.crypto import CertificateAuthority
from nova.image.bundle.errors import ImageDataError
from nova.image.bundle.manifest import Manifest
from nova.image.bundle.streams import CHUNK, CappedHashingReader, DecryptingPartsReader
from nova.image.bundle.verify import decrypt_key

#: Room for tar headers, a long name, sparse maps and end-of-archive padding.
TAR_OVERHEAD = 1024 * 1024
_HOLE = 64 * 1024
_ZEROS = bytes(_HOLE)


def _check_member(member: tarfile.TarInfo) -> None:
    name = member.name
    if name.startswith("/") or ".." in name.split("/"):
        raise ImageDataError(f"the tar member {name!r} has an absolute or '..' path")
    if member.issym() or member.islnk():
        raise ImageDataError(f"the tar member {name!r} is a link, not the image file")
    if member.isdev():
        raise ImageDataError(f"the tar member {name!r} is a device or a pipe, not the image file")
    if not member.isreg():
        raise ImageDataError(f"the tar member {name!r} is not a regular file")


class _ImageWriter:
    """Writes the image, leaving holes for zero blocks, hashing everything."""

    def __init__(self, fd: int, limit: int) -> None:
        self.fd = fd
        self.limit = limit
        self.size = 0
        self.sha256 = hashlib.sha256()
        self.sha1 = hashlib.sha1(usedforsecurity=False)

    def write(self, data: bytes) -> None:
        if self.size + len(data) > self.limit:
            raise ImageDataError(
                f"the image is larger than the manifest's size ({self.limit} bytes)")
        self.sha256.update(data)
        self.sha1.update(data)
        view = memoryview(data)
        for start in range(0, len(view), _HOLE):
            block = view[start:start + _HOLE]
            if block == _ZEROS[:len(block)]:
                os.lseek(self.fd, len(block), os.SEEK_CUR)
            else:
                os.write(self.fd, block)
        self.size += len(data)

    def close(self) -> None:
        # a trailing hole needs the length set explicitly
        os.ftruncate(self.fd, self.size)
        os.fsync(self.fd)


def _extract_one(tar_stream: CappedHashingReader, writer: _ImageWriter) -> None:
    with tarfile.open(fileobj=tar_stream, mode="r|") as archive:  # type: ignore[call-overload]
        member = archive.next()
        if member is None:
            raise ImageDataError("the tar holds no file")
        _check_member(member)
        if member.size > writer.limit:
            raise ImageDataError(
                f"the tar member is {member.size} bytes, larger than the"
                f" manifest's size ({writer.limit} bytes)")
        source = archive.extractfile(member)
        assert source is not None
        while chunk := source.read(CHUNK):
            writer.write(chunk)
        if writer.size != member.size:
            raise ImageDataError("the tar member ends early")
        extra = archive.next()
        if extra is not None:
            raise ImageDataError(
                f"the tar holds more than one member ({extra.name!r} after"
                f" {member.name!r}): a bundle holds exactly one image file")


def _unpack(manifest: Manifest, part_paths: Sequence[str], ca: CertificateAuthority,
            fd: int) -> tuple[int, str]:
    key, iv = decrypt_key(manifest, ca)
    plain = DecryptingPartsReader(part_paths, manifest.parts, key, iv,
                                  manifest.bundled_size)
    try:
        tar_stream = CappedHashingReader(gzip.GzipFile(fileobj=plain, mode="rb"),  # type: ignore[arg-type]
                                         manifest.size + TAR_OVERHEAD)
        writer = _ImageWriter(fd, manifest.size)
        try:
            _extract_one(tar_stream, writer)
            tar_stream.drain()
        except (tarfile.TarError, gzip.BadGzipFile, zlib.error, EOFError) as problem:
            raise ImageDataError(
                f"the decrypted image is not a valid tar.gz ({problem})") from None
        if not plain.finished:
            raise ImageDataError("data follows the end of the compressed image")
        writer.close()
    finally:
        plain.close()
    if writer.size != manifest.size:
        raise ImageDataError(f"the image is {writer.size} bytes, the manifest says"
                             f" {manifest.size}")
    # euca2ools >= 1.2 and the AMI tools digest the tar stream; older
    # euca2ools digested the image file itself: either is the user's word.
    if manifest.digest not in (tar_stream.hexdigest(), writer.sha1.hexdigest()):
        raise ImageDataError("the image does not match the manifest's SHA-1 digest")
    return writer.size, writer.sha256.hexdigest()


def unbundle(manifest: Manifest, part_paths: list[str], ca: CertificateAuthority,
             out_path: str) -> tuple[int, str]:
    """
    Decrypt and unpack a bundle's image into C{out_path}. BLOCKING.

    Streams the parts in order (each checked against its SHA-1 before use),
    decrypts them with the key the cloud's CA recovers, gunzips, and writes
    the one regular file of the tar to C{out_path} (sparse where the image
    has zero blocks), never holding the image in memory and never writing
    more than the manifest's size. The signature is B{not} checked here:
    call L{nova.image.bundle.verify_signature} first.

    @param manifest: the parsed (and verified) manifest.
    @param part_paths: local files holding the parts, in the manifest's order.
    @param ca: the cloud's certificate authority.
    @param out_path: where the image goes (created or truncated).
    @return: C{(size, sha256_hex)} of what was written.
    @raise InvalidManifest: a subclass saying what is wrong (L{WrongCloudKey},
        L{PartError}, L{ImageDataError}); C{out_path} is removed.
    @raise OSError: the output could not be written; C{out_path} is removed.
    """
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        try:
            return _unpack(manifest, part_paths, ca, fd)
        finally:
            os.close(fd)
    except BaseException:
        try:
            os.unlink(out_path)
        except FileNotFoundError:
            pass
        raise

