"""
Chunk signatures of S3 streaming uploads (C{Content-Encoding: aws-chunked},
C{x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD}).

Each chunk carries C{;chunk-signature=...}: an HMAC with the request's signing
key over::

    AWS4-HMAC-SHA256-PAYLOAD\\n
    <X-Amz-Date>\\n
    <scope>\\n
    <previous signature>\\n
    <SHA-256 of the empty string>\\n
    <SHA-256 of the chunk data>

where the first "previous signature" is the request's own (the seed).  The
chain ends with a zero-length chunk.  See "Signature Calculations for the
Authorization Header: Transferring Payload in Multiple Chunks" in the S3 API
reference.
"""

from __future__ import annotations

import hmac

from nova.auth.signing.errors import SignatureMismatch
from nova.auth.signing.request import EMPTY_SHA256
from nova.auth.signing.sigv4 import compute_v4

_CHUNK_ALGORITHM = "AWS4-HMAC-SHA256-PAYLOAD"
_TRAILER_ALGORITHM = "AWS4-HMAC-SHA256-TRAILER"


class ChunkSigner:
    """
    Computes and checks the rolling chunk signatures of one upload.

    Not thread-safe: one instance follows one body, chunk after chunk.

    @ivar previous_signature: the signature the next chunk chains from.
    """

    def __init__(self, signing_key: bytes, amz_date: str, scope: str,
                 seed_signature: str) -> None:
        """
        @param signing_key: the request's SigV4 signing key.
        @param amz_date: the request's C{X-Amz-Date}.
        @param scope: the credential scope string
            (C{20130524/us-east-1/s3/aws4_request}).
        @param seed_signature: the signature of the request itself.
        """
        self._key = signing_key
        self._amz_date = amz_date
        self._scope = scope
        self.previous_signature = seed_signature.lower()

    def expected(self, chunk_sha256_hex: str) -> str:
        """
        The signature the next chunk must carry, without advancing.

        @param chunk_sha256_hex: hex SHA-256 of the chunk data.
        @return: the hex signature.
        """
        to_sign = "\n".join([_CHUNK_ALGORITHM, self._amz_date, self._scope,
                             self.previous_signature, EMPTY_SHA256,
                             chunk_sha256_hex.lower()])
        return compute_v4(self._key, to_sign)

    def sign_chunk(self, chunk_sha256_hex: str) -> str:
        """
        Client side: sign the next chunk and advance the chain.

        @param chunk_sha256_hex: hex SHA-256 of the chunk data.
        @return: the hex signature to send with the chunk.
        """
        signature = self.expected(chunk_sha256_hex)
        self.previous_signature = signature
        return signature

    def verify_chunk(self, chunk_sha256_hex: str, claimed_signature: str) -> None:
        """
        Check the next chunk's signature and advance the chain.

        @param chunk_sha256_hex: hex SHA-256 of the chunk data as received.
        @param claimed_signature: the C{chunk-signature} the client sent.
        @raise SignatureMismatch: when it is not the expected one; the chain
            does not advance, and the upload must be abandoned.
        """
        expected = self.expected(chunk_sha256_hex)
        claimed = claimed_signature.strip().lower()
        if not hmac.compare_digest(expected.encode("ascii"),
                                   claimed.encode("ascii", "replace")):
            raise SignatureMismatch(
                "The chunk signature does not match the one computed from the"
                " chunk data and the signing key.",
                signature_provided=claimed_signature)
        self.previous_signature = expected

    def verify_trailer(self, trailer_sha256_hex: str,
                       claimed_signature: str) -> None:
        """
        Check the C{x-amz-trailer-signature} of a
        C{STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER} body.

        @param trailer_sha256_hex: hex SHA-256 of the canonical trailing
            headers (C{name:value\\n} each).
        @param claimed_signature: the trailer signature the client sent.
        @raise SignatureMismatch: when it does not match.
        """
        to_sign = "\n".join([_TRAILER_ALGORITHM, self._amz_date, self._scope,
                             self.previous_signature, trailer_sha256_hex.lower()])
        expected = compute_v4(self._key, to_sign)
        claimed = claimed_signature.strip().lower()
        if not hmac.compare_digest(expected.encode("ascii"),
                                   claimed.encode("ascii", "replace")):
            raise SignatureMismatch("The trailer signature does not match.",
                                    signature_provided=claimed_signature)
        self.previous_signature = expected
