"""
The incremental aws-chunked decoder (chunk signatures, trailers, lengths)
and the body digests (Content-MD5, flexible checksums).
"""

from __future__ import annotations

import base64
import hashlib
import zlib

from twisted.trial import unittest

from nova.auth.signer import ChunkSigner, Scope, SignatureMismatch, signing_key
from nova.objectstore.errors import (BadDigest, EntityTooLarge, IncompleteBody, InvalidDigest,
                                     InvalidRequest)
from nova.objectstore.http.chunked import AwsChunkedDecoder
from nova.objectstore.http.digests import (BodyChecksums, check_buffered_body,
                                           check_content_md5, parse_content_md5,
                                           requested_checksums)
from nova.objectstore.http.errors import InvalidChunkSizeError
from tests.test_objectstore_http_support import aws_chunked

SCOPE = Scope("20130524", "us-east-1", "s3")
KEY = signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", SCOPE)
SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
DATE = "20130524T000000Z"


def signer() -> ChunkSigner:
    return ChunkSigner(KEY, DATE, SCOPE.value, SEED)


class Sink:
    def __init__(self) -> None:
        self.pieces: list[bytes] = []

    def __call__(self, data: bytes) -> None:
        self.pieces.append(data)

    @property
    def data(self) -> bytes:
        return b"".join(self.pieces)


def decode(body: bytes, feed_size: int, verifier: ChunkSigner | None = None,
           length: int | None = None, max_size: int = 1 << 30) -> tuple[Sink, AwsChunkedDecoder]:
    sink = Sink()
    decoder = AwsChunkedDecoder(sink, verifier, length, max_size)
    for i in range(0, len(body), feed_size):
        decoder.feed(body[i:i + feed_size])
    decoder.finish()
    return sink, decoder


class DecoderTests(unittest.TestCase):
    data = bytes(range(256)) * 300  # 76,800 bytes

    def test_aws_published_example_chunk_signatures(self) -> None:
        """
        The S3 reference's example ("Example PUT Object" of the chunked
        upload page): 65 KiB of 'a' in a 64 KiB chunk and a 1 KiB chunk.
        """
        body = aws_chunked(b"a" * 66560, 65536, signer())
        self.assertIn(b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade"
                      b"35a65485a288648", body)
        self.assertIn(b"400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234"
                      b"b86a503ef5497", body)
        sink, decoder = decode(body, 1000, signer(), 66560)
        self.assertEqual(sink.data, b"a" * 66560)

    def test_any_split_of_the_body_decodes_the_same(self) -> None:
        body = aws_chunked(self.data, 8192, signer())
        for feed in (1, 7, 100, 8192, 8300, len(body)):
            sink, decoder = decode(body, feed, signer(), len(self.data))
            self.assertEqual(sink.data, self.data, feed)
            self.assertEqual(decoder.decoded, len(self.data))

    def test_data_is_handed_on_as_it_arrives(self) -> None:
        body = aws_chunked(self.data, 65536, signer())
        sink = Sink()
        decoder = AwsChunkedDecoder(sink, signer(), len(self.data), 1 << 30)
        decoder.feed(body[:30000])
        # most of the first chunk is out before its end (and its signature check)
        self.assertGreater(len(sink.data), 29000)
        self.assertLess(len(sink.data), 30000)

    def test_a_bad_chunk_signature_stops_the_body(self) -> None:
        body = bytearray(aws_chunked(self.data, 8192, signer()))
        body[body.index(b"chunk-signature=", 200) + 20] ^= 1
        self.assertRaises(SignatureMismatch, decode, bytes(body), 4096, signer(),
                          len(self.data))

    def test_tampered_data_fails(self) -> None:
        body = bytearray(aws_chunked(self.data, 8192, signer()))
        body[9000] ^= 0xFF
        self.assertRaises(SignatureMismatch, decode, bytes(body), 4096, signer(),
                          len(self.data))

    def test_missing_signature_on_a_signed_body(self) -> None:
        self.assertRaises(SignatureMismatch, decode, aws_chunked(b"abc", 2), 10, signer(), 3)

    def test_unsigned_trailer_body(self) -> None:
        crc = base64.b64encode(zlib.crc32(self.data).to_bytes(4, "big")).decode()
        body = aws_chunked(self.data, 10000, trailers={"x-amz-checksum-crc32": crc})
        sink, decoder = decode(body, 333, None, len(self.data))
        self.assertEqual(sink.data, self.data)
        self.assertEqual(decoder.trailers, {"x-amz-checksum-crc32": crc})

    def test_signed_trailer(self) -> None:
        body = aws_chunked(b"xyz" * 5000, 4096, signer(),
                           trailers={"x-amz-checksum-crc32": "AAAAAA=="})
        _, decoder = decode(body, 999, signer(), 15000)
        self.assertEqual(decoder.trailers, {"x-amz-checksum-crc32": "AAAAAA=="})
        forged = body.replace(b"x-amz-checksum-crc32:AAAAAA==", b"x-amz-checksum-crc32:AAAAAB==")
        self.assertRaises(SignatureMismatch, decode, forged, 999, signer(), 15000)

    def test_lengths(self) -> None:
        body = aws_chunked(self.data, 8192, signer())
        self.assertRaises(IncompleteBody, decode, body, 8192, signer(), len(self.data) + 1)
        self.assertRaises(EntityTooLarge, decode, body, 8192, signer(), len(self.data) - 1)
        self.assertRaises(EntityTooLarge, decode, body, 8192, signer(), None, 1000)

    def test_truncated_and_malformed_bodies(self) -> None:
        body = aws_chunked(self.data, 8192, signer())
        self.assertRaises(IncompleteBody, decode, body[:-40], 8192, signer(), len(self.data))
        for bad in (b"zz;chunk-signature=00\r\n", b"5\r\nabcdefgh\r\n0\r\n\r\n",
                    b"3\nabc\n0\n\n", b"1" * 5000):
            self.assertRaises(InvalidChunkSizeError, decode, bad, 10, None, None)
        self.assertRaises(InvalidChunkSizeError, decode, aws_chunked(b"abc", 3) + b"extra",
                          100, None, 3)


class DigestTests(unittest.TestCase):
    def test_content_md5(self) -> None:
        digest = hashlib.md5(b"body").digest()
        self.assertEqual(parse_content_md5(base64.b64encode(digest).decode()), digest)
        self.assertIsNone(parse_content_md5(None))
        for bad in ("not base64!", base64.b64encode(b"short").decode(), ""):
            self.assertRaises(InvalidDigest, parse_content_md5, bad)
        check_content_md5(digest, digest)
        check_content_md5(None, digest)
        self.assertRaises(BadDigest, check_content_md5, digest, hashlib.md5(b"x").digest())

    def test_flexible_checksums(self) -> None:
        body = b"checksum me"
        headers = {
            "x-amz-checksum-crc32": base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode(),
            "x-amz-checksum-sha1": base64.b64encode(hashlib.sha1(body).digest()).decode(),
            "x-amz-checksum-sha256": base64.b64encode(hashlib.sha256(body).digest()).decode(),
            "x-amz-checksum-crc32c": "AAAAAA==",  # not checked (documented)
        }
        check_buffered_body(headers, body)
        for name in ("x-amz-checksum-crc32", "x-amz-checksum-sha1", "x-amz-checksum-sha256"):
            self.assertRaises(BadDigest, check_buffered_body, headers, body + b"!")
            self.assertRaises(BadDigest, check_buffered_body,
                              {name: headers[name]}, b"other")

    def test_checksum_in_the_trailer(self) -> None:
        requested = requested_checksums({"x-amz-trailer": "x-amz-checksum-crc32"})
        self.assertEqual(requested, {"crc32": None})
        checksums = BodyChecksums(requested)
        checksums.update(b"ab")
        checksums.update(b"c")
        good = base64.b64encode(zlib.crc32(b"abc").to_bytes(4, "big")).decode()
        checksums.check(None, {"x-amz-checksum-crc32": good})
        self.assertRaises(BadDigest, checksums.check, None, {"x-amz-checksum-crc32": "AAAAAA=="})
        self.assertRaises(InvalidRequest, checksums.check, None, {})

    def test_bad_checksum_headers(self) -> None:
        self.assertRaises(InvalidRequest, requested_checksums, {"x-amz-checksum-md4": "AA=="})
        self.assertRaises(InvalidRequest, requested_checksums, {"x-amz-checksum-crc32": "!!"})
        self.assertEqual(requested_checksums({"x-amz-checksum-algorithm": "CRC32",
                                              "x-amz-checksum-mode": "ENABLED"}), {})
