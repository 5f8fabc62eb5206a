"""
EC2 Query API Signature Version 2.

The string to sign is::

    VERB\\n
    host (lower case)\\n
    path\\n
    sorted, RFC 3986-encoded name=value pairs joined with &

signed with HMAC-SHA256 or HMAC-SHA1 and base64-encoded.  See "Signature
Version 2 signing process" in the AWS General Reference.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping
from typing import Callable

from nova.auth.signing.encoding import aws_quote, encode_wire, format_iso8601

#: The signature methods SigV2 knows, and their digests.
SIGNATURE_METHODS: dict[str, Callable[..., "hashlib._Hash"]] = {
    "HmacSHA256": hashlib.sha256,
    "HmacSHA1": hashlib.sha1,
}


def canonical_query_v2(params: Iterable[tuple[str, str]]) -> str:
    """
    The sorted, encoded parameter string of SigV2 (C{Signature} left out).

    @param params: the decoded request parameters.
    @return: C{name=value&...} sorted by name (UTF-8 byte order), then value.
    """
    pairs = sorted(((name, value) for name, value in params
                    if name != "Signature"),
                   key=lambda pair: (encode_wire(pair[0]), encode_wire(pair[1])))
    return "&".join(f"{aws_quote(name)}={aws_quote(value)}"
                    for name, value in pairs)


def string_to_sign_v2(method: str, host: str, path: str,
                      params: Iterable[tuple[str, str]]) -> str:
    """
    Build the SigV2 string to sign.

    @param method: the HTTP verb.
    @param host: the host the client signed (lower-cased here).
    @param path: the request path as sent; empty means C{/}.
    @param params: the decoded request parameters.
    @return: the string to sign.
    """
    return "\n".join([method.upper(), host.lower(), path or "/",
                      canonical_query_v2(params)])


def compute_v2(secret_key: str, string_to_sign: str,
               signature_method: str = "HmacSHA256") -> str:
    """
    Sign a SigV2 string.

    @param secret_key: the secret access key.
    @param string_to_sign: from L{string_to_sign_v2}.
    @param signature_method: C{HmacSHA256} or C{HmacSHA1}.
    @return: the base64 signature.
    @raise KeyError: for another signature method (callers check first).
    """
    digest = SIGNATURE_METHODS[signature_method]
    mac = hmac.new(encode_wire(secret_key), encode_wire(string_to_sign), digest)
    return base64.b64encode(mac.digest()).decode("ascii")


def sign_ec2_v2(params: Mapping[str, str], access_key: str, secret_key: str,
                method: str, host: str, path: str, *,
                signature_method: str = "HmacSHA256",
                now: float | None = None) -> dict[str, str]:
    """
    Sign EC2 Query parameters with SigV2, the way boto 2 and euca2ools do.

    Adds C{AWSAccessKeyId}, C{SignatureVersion}, C{SignatureMethod}, a
    C{Timestamp} (unless C{Timestamp} or C{Expires} is already there) and the
    C{Signature}.

    @param params: the operation parameters (C{Action}, C{Version}, ...).
    @param access_key: the access key id.
    @param secret_key: the secret key.
    @param method: C{GET} or C{POST}.
    @param host: the C{Host} header the request will carry.
    @param path: the request path, e.g. C{/services/Cloud/}.
    @param signature_method: C{HmacSHA256} or C{HmacSHA1}.
    @param now: the signing time in seconds since the epoch (default: the
        current time).
    @return: a new dict: the parameters to send.
    """
    if signature_method not in SIGNATURE_METHODS:
        raise ValueError(f"unknown signature method {signature_method!r}")
    signed = dict(params)
    signed.pop("Signature", None)
    signed["AWSAccessKeyId"] = access_key
    signed["SignatureVersion"] = "2"
    signed["SignatureMethod"] = signature_method
    if "Timestamp" not in signed and "Expires" not in signed:
        signed["Timestamp"] = format_iso8601(time.time() if now is None else now)
    to_sign = string_to_sign_v2(method, host, path, signed.items())
    signed["Signature"] = compute_v2(secret_key, to_sign, signature_method)
    return signed
