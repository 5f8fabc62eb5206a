"""
Integrity checks of a request body: C{Content-MD5}, and the flexible
checksums (C{x-amz-checksum-crc32}, C{-sha1}, C{-sha256}, in a header or in
an C{aws-chunked} trailer) that today's AWS SDKs send.

CRC32C and CRC64NVME need code this project does not have: they are
accepted without being checked (Content-MD5 and the SigV4 payload hash still
protect such bodies when the client sends them).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from typing import Any, Mapping

from nova.objectstore.errors import BadDigest, InvalidDigest, InvalidRequest

#: the algorithms whose checksum is computed and checked
CHECKED = ("crc32", "sha1", "sha256")
#: the algorithms S3 knows
KNOWN = CHECKED + ("crc32c", "crc64nvme")


def parse_content_md5(value: str | None) -> bytes | None:
    """
    @param value: a C{Content-MD5} header, or C{None}.
    @return: the 16-byte digest it carries, or C{None} when absent.
    @raise InvalidDigest: not the base64 of 16 bytes.
    """
    if value is None:
        return None
    try:
        digest = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidDigest("The Content-MD5 you specified is not valid.") from None
    if len(digest) != 16:
        raise InvalidDigest("The Content-MD5 you specified is not valid.")
    return digest


def check_content_md5(claimed: bytes | None, actual: bytes) -> None:
    """@raise BadDigest: C{claimed} is given and is not C{actual}."""
    if claimed is not None and claimed != actual:
        raise BadDigest("The Content-MD5 you specified did not match what we received.")


def _decode_checksum(name: str, value: str) -> bytes:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"Value for x-amz-checksum-{name} header is invalid.") from None


def requested_checksums(headers: Mapping[str, str]) -> dict[str, str | None]:
    """
    The flexible checksums a request announces.

    @param headers: lower-case header names.
    @return: algorithm name to the base64 value of its header, or C{None}
        when the value comes in the trailer (named by C{x-amz-trailer}).
    @raise InvalidRequest: an unknown algorithm, or a malformed value.
    """
    found: dict[str, str | None] = {}
    for name, value in headers.items():
        if name.startswith("x-amz-checksum-") and name not in (
                "x-amz-checksum-algorithm", "x-amz-checksum-mode", "x-amz-checksum-type"):
            algorithm = name[len("x-amz-checksum-"):]
            if algorithm not in KNOWN:
                raise InvalidRequest(f"Unknown checksum algorithm {algorithm!r}.")
            _decode_checksum(algorithm, value)
            found[algorithm] = value
    for trailer in headers.get("x-amz-trailer", "").split(","):
        trailer = trailer.strip().lower()
        if trailer.startswith("x-amz-checksum-"):
            algorithm = trailer[len("x-amz-checksum-"):]
            if algorithm not in KNOWN:
                raise InvalidRequest(f"Unknown checksum algorithm {algorithm!r}.")
            found.setdefault(algorithm, None)
    return found


class BodyChecksums:
    """
    Computes, as the body streams, the flexible checksums a request asks to
    be checked (SHA-256 is the writer's own).
    """

    def __init__(self, requested: Mapping[str, str | None]) -> None:
        self._requested = dict(requested)
        self._crc32 = 0 if "crc32" in requested else None
        self._sha1 = hashlib.sha1() if "sha1" in requested else None

    def update(self, data: bytes) -> None:
        """Feed the next piece of the decoded body."""
        if self._crc32 is not None:
            self._crc32 = zlib.crc32(data, self._crc32)
        if self._sha1 is not None:
            self._sha1.update(data)

    def check(self, writer: Any, trailers: Mapping[str, str]) -> None:
        """
        Compare what was computed with what the headers or trailers claim.

        @param writer: the L{nova.objectstore.interfaces.IWriter} that has
            the SHA-256 of the body.
        @param trailers: the C{aws-chunked} trailing headers (lower case).
        @raise InvalidRequest: a checksum announced for the trailer is missing.
        @raise BadDigest: a checksum does not match.
        """
        for algorithm, value in self._requested.items():
            if value is None:
                value = trailers.get(f"x-amz-checksum-{algorithm}")
                if value is None:
                    raise InvalidRequest(
                        f"The x-amz-checksum-{algorithm} trailer announced was not sent.")
            claimed = _decode_checksum(algorithm, value)
            if algorithm == "crc32":
                actual = (self._crc32 or 0).to_bytes(4, "big")
            elif algorithm == "sha1":
                assert self._sha1 is not None
                actual = self._sha1.digest()
            elif algorithm == "sha256":
                actual = bytes.fromhex(writer.sha256_hex())
            else:
                continue  # CRC32C, CRC64NVME: not checked (see the module docstring)
            if claimed != actual:
                raise BadDigest(f"The {algorithm.upper()} you specified did not match the "
                                "calculated checksum.")


class _Buffered:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def sha256_hex(self) -> str:
        return hashlib.sha256(self._body).hexdigest()


def check_buffered_body(headers: Mapping[str, str], body: bytes) -> None:
    """
    Check a small buffered body (an XML document) against its C{Content-MD5}
    and C{x-amz-checksum-*} headers.

    @raise InvalidDigest: a malformed Content-MD5.
    @raise BadDigest: a digest that does not match.
    @raise InvalidRequest: a malformed or unknown checksum.
    """
    check_content_md5(parse_content_md5(headers.get("content-md5")),
                      hashlib.md5(body).digest())
    requested = {name: value for name, value in requested_checksums(headers).items()
                 if value is not None}
    if requested:
        checksums = BodyChecksums(requested)
        checksums.update(body)
        checksums.check(_Buffered(body), {})


__all__ = ["BodyChecksums", "CHECKED", "KNOWN", "check_buffered_body", "check_content_md5",
           "parse_content_md5", "requested_checksums"]
