"""
S3 REST Signature Version 2: C{Authorization: AWS access:signature} and the
C{AWSAccessKeyId}/C{Expires}/C{Signature} presigned query.

See "Signing and authenticating REST requests (AWS signature version 2)" in
the Amazon S3 API reference.  The string to sign is::

    VERB\\n
    Content-MD5\\n
    Content-Type\\n
    Date (empty when x-amz-date is sent; Expires for presigned URLs)\\n
    x-amz-name:value\\n ... (lower case, sorted, repeated values joined by ",")
    /bucket/key?sub-resources
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
from collections.abc import Iterable

from nova.auth.signing.encoding import aws_unquote, encode_wire
from nova.auth.signing.request import SignedRequest

#: Query parameters that are part of the resource being signed.  The union of
#: the AWS documentation's list, botocore's and boto 2's: a name a client
#: includes and the server leaves out (or the reverse) breaks the signature.
SUBRESOURCES = frozenset({
    "accelerate", "acl", "analytics", "billing", "compose", "cors",
    "defaultObjectAcl", "delete", "encryptionConfig", "inventory",
    "lifecycle", "location", "logging", "metrics", "notification",
    "object-lock", "partNumber", "policy", "replication", "requestPayment",
    "response-cache-control", "response-content-disposition",
    "response-content-encoding", "response-content-language",
    "response-content-type", "response-expires", "restore", "select",
    "select-type", "storageClass", "tagging", "torrent", "uploadId",
    "uploads", "userProject", "versionId", "versioning", "versions",
    "website", "websiteConfig",
})


def _strip_port(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def bucket_from_host(host: str, service_hosts: Iterable[str],
                     allow_cname: bool = False) -> str | None:
    """
    Find the bucket a virtual-hosted-style C{Host} header names.

    @param host: the C{Host} header value (a port is ignored).
    @param service_hosts: the names the object store answers to itself
        (e.g. C{s3.amazonaws.com}, C{objectstore.example}); a host that is
        one of them is path style, C{<bucket>.<one of them>} names a bucket.
    @param allow_cname: treat any other host name (not an IP address) as a
        bucket name, as S3 does for CNAME-style buckets.
    @return: the bucket name, or C{None} for a path-style request.
    """
    name = _strip_port(host)
    for base in service_hosts:
        base = _strip_port(base)
        if name == base:
            return None
        if name.endswith("." + base):
            return name[:-len(base) - 1]
    if not allow_cname or not name:
        return None
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return name
    return None


def _subresource_pairs(req: SignedRequest) -> list[str]:
    found: list[tuple[str, str]] = []
    if req.raw_query is not None:
        # Mirror botocore/boto: "acl" and "acl=" are different strings.
        for piece in req.raw_query.split("&"):
            name, sep, value = piece.partition("=")
            if name in SUBRESOURCES:
                found.append((name, f"{name}={aws_unquote(value)}" if sep else name))
    else:
        for name, value in req.query:
            if name in SUBRESOURCES:
                found.append((name, f"{name}={value}" if value else name))
    found.sort(key=lambda pair: pair[0])
    return [text for _, text in found]


def canonical_resource(req: SignedRequest) -> str:
    """
    The CanonicalizedResource element.

    @param req: the request; C{req.virtual_bucket} says whether the bucket
        came from the C{Host} header.
    @return: C{/bucket/key} (path as sent, still encoded) plus the sorted
        sub-resources.
    """
    resource = req.path or "/"
    if req.virtual_bucket:
        resource = "/" + req.virtual_bucket + resource
    subresources = _subresource_pairs(req)
    if subresources:
        resource += "?" + "&".join(subresources)
    return resource


def canonical_amz_headers(req: SignedRequest, skip: tuple[str, ...] = ()) -> str:
    """
    The CanonicalizedAmzHeaders element.

    @param req: the request.
    @param skip: header names to leave out.
    @return: one C{name:value\\n} line per C{x-amz-*} header, sorted.
    """
    return "".join(f"{name}:{req.headers[name]}\n" for name in sorted(req.headers)
                   if name.startswith("x-amz-") and name not in skip)


def string_to_sign_s3v2(req: SignedRequest, expires: str | None = None,
                        amz_date_in_date_line: bool = False) -> str:
    """
    Build the S3 SigV2 string to sign.

    With an C{x-amz-date} header the documented rule is an empty date line
    and C{x-amz-date} among the C{x-amz-*} headers (what boto and botocore
    sign).  The documentation's own "Delete" example instead puts the
    C{x-amz-date} value on the date line and leaves it out of the headers;
    C{amz_date_in_date_line} builds that form.

    @param req: the request.
    @param expires: for presigned URLs, the C{Expires} value, which takes the
        place of the date.
    @param amz_date_in_date_line: build the "Delete" example's form.
    @return: the string to sign.
    """
    skip: tuple[str, ...] = ()
    if expires is not None:
        date = expires
    elif "x-amz-date" in req.headers:
        date = req.headers["x-amz-date"] if amz_date_in_date_line else ""
        skip = ("x-amz-date",) if amz_date_in_date_line else ()
    else:
        date = req.headers.get("date", "")
    return (f"{req.method}\n{req.headers.get('content-md5', '')}\n"
            f"{req.headers.get('content-type', '')}\n{date}\n"
            f"{canonical_amz_headers(req, skip)}{canonical_resource(req)}")


def compute_s3v2(secret_key: str, string_to_sign: str) -> str:
    """
    @param secret_key: the secret access key.
    @param string_to_sign: from L{string_to_sign_s3v2}.
    @return: the base64 HMAC-SHA1 signature.
    """
    mac = hmac.new(encode_wire(secret_key), encode_wire(string_to_sign),
                   hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def sign_s3_v2(req: SignedRequest, access_key: str, secret_key: str) -> str:
    """
    Client side: the C{Authorization} header value for a request.

    @param req: the request as it will be sent (with its C{Date} or
        C{x-amz-date} header).
    @param access_key: the access key id.
    @param secret_key: the secret key.
    @return: C{AWS access:signature}.
    """
    return f"AWS {access_key}:{compute_s3v2(secret_key, string_to_sign_s3v2(req))}"


def presign_s3_v2(req: SignedRequest, access_key: str, secret_key: str,
                  expires: int) -> list[tuple[str, str]]:
    """
    Client side: the query parameters of a SigV2 presigned URL.

    @param req: the request as it will be sent, without auth parameters.
    @param access_key: the access key id.
    @param secret_key: the secret key.
    @param expires: when the URL stops working, in seconds since the epoch.
    @return: C{AWSAccessKeyId}, C{Expires} and C{Signature} pairs (decoded;
        encode them when building the URL).
    """
    signature = compute_s3v2(secret_key,
                             string_to_sign_s3v2(req, expires=str(expires)))
    return [("AWSAccessKeyId", access_key), ("Expires", str(expires)),
            ("Signature", signature)]
