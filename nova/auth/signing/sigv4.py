"""
Signature Version 4 (AWS4-HMAC-SHA256): canonical request, string to sign,
signing key, and the client-side helpers that sign headers or presign URLs.

See "Create a signed AWS API request" (IAM user guide) and, for S3's
differences, "Authenticating Requests (AWS Signature Version 4)" in the S3
API reference: S3 does not normalise the path and does not encode it twice,
and it signs the C{x-amz-content-sha256} value instead of hashing the body.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping, Sequence

from nova.auth.signing.encoding import (aws_quote, aws_unquote, encode_wire,
                                        format_amz_date)
from nova.auth.signing.request import EMPTY_SHA256, Scope, SignedRequest

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_PAYLOAD = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_PAYLOAD_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

#: The literal x-amz-content-sha256 values S3 accepts besides a hex digest.
PAYLOAD_MARKERS = frozenset({UNSIGNED_PAYLOAD, STREAMING_PAYLOAD,
                             STREAMING_PAYLOAD_TRAILER,
                             STREAMING_UNSIGNED_TRAILER})

#: Longest validity of a presigned URL, in seconds (seven days).
MAX_PRESIGN_EXPIRES = 604800


def sha256_hex(data: bytes | str) -> str:
    """
    @param data: bytes, or text (hashed as UTF-8).
    @return: the hex SHA-256 digest.
    """
    if isinstance(data, str):
        data = encode_wire(data)
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, encode_wire(msg), hashlib.sha256).digest()


def signing_key(secret_key: str, scope: Scope) -> bytes:
    """
    Derive the SigV4 signing key: HMAC chain over date, region, service.

    @param secret_key: the secret access key.
    @param scope: the credential scope.
    @return: the 32-byte signing key.
    """
    key = _hmac(encode_wire("AWS4" + secret_key), scope.date)
    key = _hmac(key, scope.region)
    key = _hmac(key, scope.service)
    return _hmac(key, "aws4_request")


def remove_dot_segments(path: str) -> str:
    """
    Normalise a path the way SigV4 wants it for services other than S3:
    RFC 3986 dot-segment removal, and runs of C{/} collapsed; a trailing
    C{/} is kept.

    @param path: the path.
    @return: the normalised path.
    """
    if not path:
        return "/"
    output: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if output:
                output.pop()
        else:
            output.append(segment)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and output else ""
    return first + "/".join(output) + last


def canonical_uri(path: str, s3: bool) -> str:
    """
    The CanonicalURI line.

    @param path: the request path as sent (percent-encoded).
    @param s3: S3 rules: no normalisation; the path is decoded and encoded
        once again so that C{$} and C{%24}, or C{%c3} and C{%C3}, sign alike,
        as S3 itself does.  Other services encode the (normalised) path as
        sent a second time, as botocore and boto do.
    @return: the canonical URI.
    """
    if s3:
        return aws_quote(aws_unquote(path or "/"), safe="/")
    return aws_quote(remove_dot_segments(path), safe="/")


def canonical_query(pairs: Iterable[tuple[str, str]],
                    exclude: Iterable[str] = ()) -> str:
    """
    The CanonicalQueryString line.

    @param pairs: decoded query pairs.
    @param exclude: names to leave out (C{X-Amz-Signature} when presigned).
    @return: encoded C{name=value} pairs sorted by name then value.
    """
    skip = set(exclude)
    encoded = sorted((aws_quote(name), aws_quote(value))
                     for name, value in pairs if name not in skip)
    return "&".join(f"{name}={value}" for name, value in encoded)


def canonical_header_value(value: str) -> str:
    """
    @param value: a header value (repeated values already joined by C{","}).
    @return: the value trimmed, runs of white space collapsed to one space.
    """
    return " ".join(value.split())


def canonical_request(req: SignedRequest, signed_headers: Sequence[str],
                      payload_hash: str, *, s3: bool,
                      presigned: bool = False) -> str:
    """
    Build the SigV4 canonical request.

    @param req: the request.
    @param signed_headers: the lower-case names the client signed.
    @param payload_hash: the last line (hex digest or a payload marker).
    @param s3: apply S3's path rules (see L{canonical_uri}).
    @param presigned: leave C{X-Amz-Signature} out of the query.
    @return: the canonical request.
    """
    lines = []
    for name in signed_headers:
        value = req.headers.get(name)
        if value is None and name == "host":
            value = req.host
        lines.append(f"{name}:{canonical_header_value(value or '')}\n")
    exclude = ("X-Amz-Signature",) if presigned else ()
    return "\n".join([
        req.method,
        canonical_uri(req.path, s3),
        canonical_query(req.query, exclude),
        "".join(lines),
        ";".join(signed_headers),
        payload_hash,
    ])


def string_to_sign_v4(amz_date: str, scope: Scope, creq: str) -> str:
    """
    @param amz_date: the request time, C{YYYYMMDDTHHMMSSZ}.
    @param scope: the credential scope.
    @param creq: the canonical request.
    @return: the SigV4 string to sign.
    """
    return f"{ALGORITHM}\n{amz_date}\n{scope.value}\n{sha256_hex(creq)}"


def compute_v4(key: bytes, string_to_sign: str) -> str:
    """
    @param key: from L{signing_key}.
    @param string_to_sign: from L{string_to_sign_v4}.
    @return: the hex signature.
    """
    return hmac.new(key, encode_wire(string_to_sign), hashlib.sha256).hexdigest()


def _client_request(method: str, host: str, path: str,
                    query: Iterable[tuple[str, str]],
                    headers: Mapping[str, str]) -> SignedRequest:
    folded = {name.lower(): value for name, value in headers.items()}
    folded["host"] = host
    return SignedRequest(method=method, host=host, path=path, query=query,
                         headers=folded)


def sign_v4_headers(method: str, host: str, path: str,
                    query: Iterable[tuple[str, str]],
                    headers: Mapping[str, str], access_key: str,
                    secret_key: str, region: str, service: str, *,
                    payload_sha256: str | None = None,
                    now: float | None = None) -> dict[str, str]:
    """
    Client side: sign a request with an C{Authorization} header.

    Every header given is signed, plus C{host} and C{x-amz-date}; for
    C{service="s3"} the C{x-amz-content-sha256} header is added and signed.

    @param method: the HTTP verb.
    @param host: the C{Host} header the request will carry.
    @param path: the path as it will be sent (percent-encoded).
    @param query: the decoded query pairs.
    @param headers: headers to sign.
    @param access_key: the access key id.
    @param secret_key: the secret key.
    @param region: the region name.
    @param service: the service name (C{ec2}, C{s3}).
    @param payload_sha256: hex digest of the body or, for S3, a payload
        marker such as C{UNSIGNED-PAYLOAD}; default: the empty body's.
    @param now: the signing time (default: the current time).
    @return: the headers to add: C{X-Amz-Date}, C{Authorization} and, for
        S3, C{X-Amz-Content-SHA256}.
    """
    amz_date = format_amz_date(time.time() if now is None else now)
    payload = payload_sha256 or EMPTY_SHA256
    added = {"X-Amz-Date": amz_date}
    if service == "s3":
        added["X-Amz-Content-SHA256"] = payload
    req = _client_request(method, host, path, query, {**headers, **added})
    scope = Scope(amz_date[:8], region, service)
    names = sorted(req.headers)
    creq = canonical_request(req, names, payload, s3=service == "s3")
    signature = compute_v4(signing_key(secret_key, scope),
                           string_to_sign_v4(amz_date, scope, creq))
    added["Authorization"] = (
        f"{ALGORITHM} Credential={access_key}/{scope.value}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}")
    return added


def presign_v4(method: str, host: str, path: str,
               query: Iterable[tuple[str, str]], access_key: str,
               secret_key: str, region: str, service: str, *,
               expires: int = 3600, headers: Mapping[str, str] | None = None,
               payload_sha256: str | None = None,
               now: float | None = None) -> list[tuple[str, str]]:
    """
    Client side: presign a URL with SigV4 query parameters.

    @param method: the HTTP verb.
    @param host: the C{Host} header the request will carry.
    @param path: the path as it will be sent.
    @param query: the operation's decoded query pairs.
    @param access_key: the access key id.
    @param secret_key: the secret key.
    @param region: the region name.
    @param service: the service name.
    @param expires: validity in seconds (at most seven days).
    @param headers: extra headers to sign besides C{host}.
    @param payload_sha256: the payload line; default C{UNSIGNED-PAYLOAD} for
        S3 and the empty body's digest otherwise.
    @param now: the signing time (default: the current time).
    @return: the full decoded query: the given pairs, then the C{X-Amz-*}
        ones, C{X-Amz-Signature} last.
    """
    amz_date = format_amz_date(time.time() if now is None else now)
    scope = Scope(amz_date[:8], region, service)
    signed = {name.lower(): value for name, value in (headers or {}).items()}
    names = sorted(set(signed) | {"host"})
    pairs = list(query) + [
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", f"{access_key}/{scope.value}"),
        ("X-Amz-Date", amz_date),
        ("X-Amz-Expires", str(expires)),
        ("X-Amz-SignedHeaders", ";".join(names)),
    ]
    if payload_sha256 is None:
        payload_sha256 = UNSIGNED_PAYLOAD if service == "s3" else EMPTY_SHA256
    req = _client_request(method, host, path, pairs, signed)
    creq = canonical_request(req, names, payload_sha256, s3=service == "s3",
                             presigned=True)
    signature = compute_v4(signing_key(secret_key, scope),
                           string_to_sign_v4(amz_date, scope, creq))
    return pairs + [("X-Amz-Signature", signature)]
