"""
File-like readers that unbundling chains together: the parts, checked and
decrypted (L{DecryptingPartsReader}), and a hashing, size-capped view of the
decompressed tar stream (L{CappedHashingReader}). Each holds at most a chunk
of data, never the image.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from nova.image.bundle.errors import ImageDataError, PartError

CHUNK = 1024 * 1024
_AES_BLOCK = 16


def _hash_file(fd: int) -> tuple[str, int]:
    digest = hashlib.sha1(usedforsecurity=False)
    size = 0
    os.lseek(fd, 0, os.SEEK_SET)
    while chunk := os.read(fd, CHUNK):
        digest.update(chunk)
        size += len(chunk)
    os.lseek(fd, 0, os.SEEK_SET)
    return digest.hexdigest(), size


class DecryptingPartsReader:
    """
    The plaintext of a bundle: its parts read in order, each checked
    against its SHA-1 B{before} any of its bytes is decrypted (so a bad
    part is reported as such, not as the gzip error it would cause), then
    AES-128-CBC decrypted with the PKCS#7 padding checked at the end.

    @ivar finished: the last part was read and the padding was good.
    """

    def __init__(self, part_paths: Sequence[str], parts: Sequence[tuple[str, str]],
                 key: bytes, iv: bytes, bundled_size: int) -> None:
        """
        @param part_paths: local files holding the parts, in order.
        @param parts: the manifest's C{(filename, sha1_hex)}, same order.
        @param key: the AES key.
        @param iv: the IV.
        @param bundled_size: the manifest's total of the parts' sizes.
        @raise PartError: a part is missing, or the parts' sizes do not add
            up to C{bundled_size} (a truncated bundle).
        """
        if len(part_paths) != len(parts):
            raise PartError(f"the manifest lists {len(parts)} parts but"
                            f" {len(part_paths)} were supplied")
        total = 0
        for index, (path, (name, _)) in enumerate(zip(part_paths, parts)):
            try:
                total += os.stat(path).st_size
            except FileNotFoundError:
                raise PartError(f"part {index} ({name}) is missing") from None
        if total != bundled_size:
            raise PartError(
                f"the bundle is truncated or padded: its parts hold {total} bytes,"
                f" the manifest's bundled_size says {bundled_size}")
        if total == 0 or total % _AES_BLOCK:
            raise PartError(f"the parts hold {total} bytes, not whole AES blocks")
        self._paths = list(part_paths)
        self._parts = list(parts)
        self._index = 0
        self._fd: int | None = None
        self._decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        self._unpadder = padding.PKCS7(128).unpadder()
        self._buffer = bytearray()
        self.finished = False

    def _open_next(self) -> bool:
        if self._index >= len(self._paths):
            return False
        name, expected = self._parts[self._index]
        try:
            self._fd = os.open(self._paths[self._index], os.O_RDONLY)
        except FileNotFoundError:
            raise PartError(f"part {self._index} ({name}) is missing") from None
        actual, size = _hash_file(self._fd)
        if actual != expected:
            raise PartError(
                f"part {self._index} ({name}, {size} bytes) does not match its"
                f" SHA-1 digest in the manifest: it is truncated or altered")
        return True

    def _fill(self) -> None:
        while True:
            if self._fd is None and not self._open_next():
                self._finish()
                return
            assert self._fd is not None
            chunk = os.read(self._fd, CHUNK)
            if chunk:
                self._buffer += self._unpadder.update(self._decryptor.update(chunk))
                return
            os.close(self._fd)
            self._fd = None
            self._index += 1

    def _finish(self) -> None:
        if self.finished:
            return
        try:
            tail = self._unpadder.update(self._decryptor.finalize())
            tail += self._unpadder.finalize()
        except ValueError:
            raise ImageDataError(
                "the decrypted image has bad padding: it was encrypted with"
                " another key or the data is corrupt") from None
        self._buffer += tail
        self.finished = True

    def read(self, size: int = -1) -> bytes:
        """@return: up to C{size} plaintext bytes (all the rest if negative); b"" at the end."""
        want = CHUNK if size is None or size < 0 else size
        while len(self._buffer) < want and not self.finished:
            self._fill()
        data = bytes(self._buffer[:want])
        del self._buffer[:want]
        return data

    def close(self) -> None:
        """Close the part being read."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class CappedHashingReader:
    """
    A pass-through reader that hashes (SHA-1) everything read and refuses
    to deliver more than a cap: the decompressed tar stream of a bundle,
    whose size the manifest bounds (a gzip bomb stops here).

    @ivar count: bytes delivered so far.
    """

    def __init__(self, source: object, cap: int) -> None:
        """
        @param source: an object with C{read(n)}.
        @param cap: the most bytes allowed.
        """
        self._source = source
        self._cap = cap
        self._sha1 = hashlib.sha1(usedforsecurity=False)
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        """@return: up to C{size} bytes. @raise ImageDataError: past the cap."""
        want = CHUNK if size is None or size < 0 else min(size, CHUNK)
        data = self._source.read(want)  # type: ignore[attr-defined]
        self.count += len(data)
        if self.count > self._cap:
            raise ImageDataError(
                f"the image decompresses to more than {self._cap} bytes of tar,"
                " more than the manifest's size allows (refused as a gzip bomb)")
        self._sha1.update(data)
        return data

    def drain(self) -> None:
        """Read (and hash) everything left."""
        while self.read(CHUNK):
            pass

    def hexdigest(self) -> str:
        """@return: the SHA-1 of what was read."""
        return self._sha1.hexdigest()
