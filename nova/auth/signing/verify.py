"""
Recompute a request's signature from the secret key and compare, after the
time checks AWS makes.
"""

from __future__ import annotations

import hmac

from nova.auth.signing import errors
from nova.auth.signing.chunked import ChunkSigner
from nova.auth.signing.encoding import (encode_wire, parse_amz_date,
                                        parse_http_date, parse_iso8601)
from nova.auth.signing.request import (EMPTY_SHA256, Credentials, Scheme,
                                       SignedRequest)
from nova.auth.signing.s3v2 import compute_s3v2, string_to_sign_s3v2
from nova.auth.signing.sigv2 import compute_v2, string_to_sign_v2
from nova.auth.signing.sigv4 import (canonical_request, compute_v4,
                                     signing_key, string_to_sign_v4)

#: How far a request's clock may be from ours, in seconds (AWS: 15 minutes).
DEFAULT_MAX_SKEW = 900.0


def _same(expected: str, claimed: str) -> bool:
    return hmac.compare_digest(encode_wire(expected), encode_wire(claimed))


def _host_candidates(host: str) -> list[str]:
    # The Host header carries the port when it is not the default one, but
    # boto 2.49's SigV2 signer signs the bare host name (older boto versions
    # and other clients sign the header value): accept both.
    candidates = [host]
    if host.startswith("["):
        bracket = host.find("]")
        if bracket != -1 and host[bracket + 1:bracket + 2] == ":":
            candidates.append(host[:bracket + 1])
    elif host.count(":") == 1:
        name, _, port = host.partition(":")
        if port.isdigit():
            candidates.append(name)
    return candidates


def _verify_ec2_v2(req: SignedRequest, creds: Credentials, secret_key: str,
                   now: float, max_skew: float) -> None:
    if creds.timestamp is not None:
        when = parse_iso8601(creds.timestamp)
        if when is None or abs(now - when) > max_skew:
            raise errors.RequestExpired(
                f"Request has expired. Timestamp date is {creds.timestamp}")
    else:
        expires = parse_iso8601(creds.expires or "")
        # AWS allows the usual 15 minutes of clock skew past Expires.
        if expires is None or now > expires + max_skew:
            raise errors.RequestExpired(
                f"Request has expired. Expires date is {creds.expires}")
    method = creds.signature_method or "HmacSHA256"
    params = req.all_params()
    first_attempt = None
    for host in _host_candidates(req.host):
        to_sign = string_to_sign_v2(req.method, host, req.path, params)
        first_attempt = first_attempt or to_sign
        if _same(compute_v2(secret_key, to_sign, method), creds.signature):
            return
    raise errors.SignatureMismatch(string_to_sign=first_attempt or "",
                                   signature_provided=creds.signature)


def _check_v4_time(creds: Credentials, now: float, max_skew: float) -> None:
    s3 = creds.service == "s3"
    when = parse_amz_date(creds.timestamp or "")
    if when is None:
        raise errors.IncompleteSignature("X-Amz-Date is not a valid date")
    if creds.scheme is Scheme.SIGV4_QUERY and creds.expires is not None:
        if when > now + max_skew:
            if s3:
                raise errors.AccessDenied("Request is not valid yet")
            raise errors.RequestExpired(
                f"Request is not valid yet. X-Amz-Date is {creds.timestamp}")
        if now > when + int(creds.expires):
            if s3:
                raise errors.AccessDenied("Request has expired")
            raise errors.RequestExpired(
                f"Request has expired. X-Amz-Date is {creds.timestamp},"
                f" X-Amz-Expires {creds.expires}")
        return
    if abs(now - when) > max_skew:
        if s3:
            raise errors.RequestTimeTooSkewed(
                "The difference between the request time and the current time"
                f" is too large (request time {creds.timestamp}).")
        raise errors.RequestExpired(
            f"Request has expired. X-Amz-Date is {creds.timestamp}")


def _v4_payload(req: SignedRequest, creds: Credentials) -> str:
    if creds.service == "s3":
        return creds.content_sha256 or EMPTY_SHA256
    if req.payload_sha256 is not None:
        return req.payload_sha256
    return req.headers.get("x-amz-content-sha256", EMPTY_SHA256)


def _verify_v4(req: SignedRequest, creds: Credentials, secret_key: str,
               now: float, max_skew: float) -> None:
    if creds.scope is None or creds.timestamp is None:
        raise errors.IncompleteSignature("SigV4 credentials need a scope and a date")
    _check_v4_time(creds, now, max_skew)
    creq = canonical_request(req, creds.signed_headers, _v4_payload(req, creds),
                             s3=creds.service == "s3",
                             presigned=creds.scheme is Scheme.SIGV4_QUERY)
    to_sign = string_to_sign_v4(creds.timestamp, creds.scope, creq)
    expected = compute_v4(signing_key(secret_key, creds.scope), to_sign)
    if not _same(expected, creds.signature.lower()):
        raise errors.SignatureMismatch(string_to_sign=to_sign,
                                       canonical_request=creq,
                                       signature_provided=creds.signature)
    if req.payload_sha256 is not None:
        check_payload_sha256(creds, req.payload_sha256)


def _verify_s3_v2(req: SignedRequest, creds: Credentials, secret_key: str,
                  now: float, max_skew: float) -> None:
    if creds.scheme is Scheme.S3_V2_QUERY:
        if now > int(creds.expires or "0"):
            raise errors.AccessDenied("Request has expired")
        candidates = [string_to_sign_s3v2(req, expires=creds.expires)]
    else:
        when = parse_http_date(creds.timestamp or "")
        if when is None:
            raise errors.AccessDenied(
                "AWS authentication requires a valid Date or x-amz-date header")
        if abs(now - when) > max_skew:
            raise errors.RequestTimeTooSkewed(
                "The difference between the request time and the current time"
                f" is too large (request time {creds.timestamp}).")
        candidates = [string_to_sign_s3v2(req)]
        if "x-amz-date" in req.headers:
            # Both forms bind the same date; see string_to_sign_s3v2.
            candidates.append(string_to_sign_s3v2(req, amz_date_in_date_line=True))
    for to_sign in candidates:
        if _same(compute_s3v2(secret_key, to_sign), creds.signature):
            return
    raise errors.SignatureMismatch(string_to_sign=candidates[0],
                                   signature_provided=creds.signature)


def verify(req: SignedRequest, creds: Credentials, secret_key: str, now: float,
           max_skew: float = DEFAULT_MAX_SKEW) -> None:
    """
    Check a request's signature and its time.

    @param req: the request.
    @param creds: from C{identify_ec2(req)} or C{identify_s3(req)}.
    @param secret_key: the secret key of C{creds.access_key}.
    @param now: the current time, seconds since the epoch.
    @param max_skew: how far the request time may be from C{now}, seconds.
    @raise errors.SignatureMismatch: the signature is wrong (a
        L{nova.exception.SignatureDoesNotMatch}).
    @raise errors.RequestExpired: EC2: C{Timestamp}/C{X-Amz-Date} too far from
        C{now}, or C{Expires}/C{X-Amz-Expires} passed.
    @raise errors.RequestTimeTooSkewed: S3: the request date is too far from
        C{now}.
    @raise errors.AccessDenied: S3: a presigned URL has expired (or is not
        valid yet).
    @raise errors.ContentSHA256Mismatch: S3: the body is known and its hash
        is not the signed C{x-amz-content-sha256}.
    """
    if creds.scheme is Scheme.EC2_V2:
        _verify_ec2_v2(req, creds, secret_key, now, max_skew)
    elif creds.scheme in (Scheme.SIGV4_HEADER, Scheme.SIGV4_QUERY):
        _verify_v4(req, creds, secret_key, now, max_skew)
    else:
        _verify_s3_v2(req, creds, secret_key, now, max_skew)


def check_payload_sha256(creds: Credentials, actual_sha256_hex: str) -> None:
    """
    Check a body read after authentication against the signed S3 payload hash.

    Nothing to check for SigV2, C{UNSIGNED-PAYLOAD} and streaming markers.

    @param creds: the request's credentials.
    @param actual_sha256_hex: hex SHA-256 of the body as received.
    @raise errors.ContentSHA256Mismatch: when they differ.
    """
    claimed = creds.content_sha256
    if (creds.service != "s3" or claimed is None
            or claimed.startswith(("UNSIGNED-", "STREAMING-"))):
        return
    if not _same(claimed.lower(), actual_sha256_hex.lower()):
        raise errors.ContentSHA256Mismatch(
            "The provided 'x-amz-content-sha256' header does not match what"
            " was computed.")


def streaming_chunk_signer(creds: Credentials, secret_key: str) -> ChunkSigner:
    """
    The chunk verifier of a verified C{STREAMING-AWS4-HMAC-SHA256-PAYLOAD}
    request, seeded with the request's signature.

    @param creds: credentials that L{verify} accepted.
    @param secret_key: the secret key.
    @return: a fresh L{ChunkSigner}.
    @raise ValueError: the request is not a signed streaming upload.
    """
    if not creds.is_streaming or creds.scope is None or creds.timestamp is None:
        raise ValueError("not a signed aws-chunked (streaming) request")
    return ChunkSigner(signing_key(secret_key, creds.scope), creds.timestamp,
                       creds.scope.value, creds.signature)
