"""
Which bucket, key and operation an S3 request names.

Path style (C{/bucket/key}) and virtual-host style (C{Host: bucket.<suffix>},
C{/key}) both resolve to a L{Route}; L{resolve_action} then names the S3
operation from the method, the route's sub-resources and a few headers.
Pure functions: no I/O.
"""

from __future__ import annotations

from typing import Mapping
from urllib.parse import unquote

import attr

from nova.auth.signer import bucket_from_host, parse_query
from nova.objectstore.errors import MethodNotAllowed
from nova.objectstore.http.errors import InvalidURI, S3NotImplemented

def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _decode_segment(raw: str) -> str:
    try:
        decoded = unquote(raw, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        decoded = "\udcff"
    if _has_surrogates(decoded):
        raise InvalidURI("Couldn't parse the specified URI: the path is not UTF-8.")
    return decoded


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class Route:
    """
    What an S3 request addresses.

    @ivar bucket: the bucket name, or C{None} for the service (ListBuckets).
    @ivar key: the object key (decoded UTF-8), or C{None} for a bucket request.
    @ivar raw_path: the path as sent, still percent-encoded (the signatures use it).
    @ivar raw_query: the query string as sent, or C{None} when there was no C{?}.
    @ivar params: the decoded query pairs, in the order sent.
    @ivar virtual_bucket: the bucket the C{Host} header names (virtual-host
        style), else C{None}.
    """

    bucket: str | None
    key: str | None
    raw_path: str
    raw_query: str | None
    params: tuple[tuple[str, str], ...]
    virtual_bucket: str | None = None

    def param(self, name: str) -> str | None:
        """@return: the first value of query parameter C{name}, or C{None}."""
        for key, value in self.params:
            if key == name:
                return value
        return None

    def has(self, name: str) -> bool:
        """@return: whether the query names C{name} (with or without a value)."""
        return any(key == name for key, _ in self.params)

    @property
    def resource(self) -> str:
        """@return: C{/bucket/key} (decoded), what error documents call the Resource."""
        if self.bucket is None:
            return "/"
        if self.key is None:
            return f"/{self.bucket}"
        return f"/{self.bucket}/{self.key}"


def parse_route(uri: str, host: str, virtual_host_suffix: str = "") -> Route:
    """
    Resolve the request target.

    @param uri: the request target as sent (C{/path?query}, or an absolute URI).
    @param host: the C{Host} header.
    @param virtual_host_suffix: the host name under which C{<bucket>.<suffix>}
        names a bucket; empty for path style only.
    @return: the route.
    @raise InvalidURI: the path or the query is not percent-encoded UTF-8.
    """
    if uri.startswith(("http://", "https://")):
        rest = uri.split("://", 1)[1]
        cut = min((i for i in (rest.find("/"), rest.find("?")) if i != -1), default=len(rest))
        uri = rest[cut:]
    raw_path, sep, raw_query = uri.partition("?")
    raw_path = raw_path or "/"
    if not raw_path.startswith("/"):
        raise InvalidURI("Couldn't parse the specified URI.")
    params = tuple(parse_query(raw_query)) if sep else ()
    if any(_has_surrogates(name) or _has_surrogates(value) for name, value in params):
        raise InvalidURI("Couldn't parse the specified URI: the query is not UTF-8.")
    virtual = bucket_from_host(host, [virtual_host_suffix]) if virtual_host_suffix else None
    bucket: str | None
    key: str | None
    if virtual:
        bucket = virtual
        key = _decode_segment(raw_path[1:]) or None
    else:
        name, slash, rest = raw_path[1:].partition("/")
        bucket = _decode_segment(name) or None
        key = _decode_segment(rest) if slash and rest else None
        if bucket is None and rest:
            raise InvalidURI("Couldn't parse the specified URI.")
    return Route(bucket=bucket, key=key, raw_path=raw_path,
                 raw_query=raw_query if sep else None, params=params,
                 virtual_bucket=virtual)


# -- operations -------------------------------------------------------------

#: bucket GETs of configurations this store never has: (sub-resource, action)
BUCKET_CONFIG_GETS = (
    "versioning", "policy", "cors", "lifecycle", "tagging", "website", "encryption",
    "replication", "object-lock", "ownershipControls", "publicAccessBlock", "logging",
    "notification", "requestPayment", "accelerate", "policyStatus",
)
#: bucket DELETEs of such configurations: nothing to delete, S3 answers 204
BUCKET_CONFIG_DELETES = ("policy", "cors", "lifecycle", "tagging", "website", "encryption",
                         "replication", "ownershipControls", "publicAccessBlock")
#: sub-resources S3 knows that this store does not implement
UNSUPPORTED = frozenset({
    "versions", "analytics", "inventory", "metrics", "intelligent-tiering", "torrent",
    "retention", "legal-hold", "attributes", "restore", "select", "select-type",
    "object-lock", "website", "replication", "lifecycle", "cors", "policy", "tagging",
    "encryption", "logging", "notification", "versioning", "requestPayment", "accelerate",
    "ownershipControls", "publicAccessBlock", "renameObject", "metadataTable", "session",
})


def _first_present(route: Route, names: tuple[str, ...] | frozenset[str]) -> str | None:
    for name, _ in route.params:
        if name in names:
            return name
    return None


def _unsupported(route: Route) -> S3NotImplemented:
    name = _first_present(route, UNSUPPORTED) or "?"
    return S3NotImplemented(f"The sub-resource '{name}' is not implemented by this store.")


def _service_action(method: str) -> str:
    if method in ("GET", "HEAD"):
        return "ListBuckets"
    raise MethodNotAllowed()


def _bucket_action(method: str, route: Route) -> str:
    if method == "GET":
        if route.has("acl"):
            return "GetBucketAcl"
        if route.has("location"):
            return "GetBucketLocation"
        if route.has("uploads"):
            return "ListMultipartUploads"
        config = _first_present(route, BUCKET_CONFIG_GETS)
        if config is not None:
            return f"GetBucketConfig:{config}"
        if _first_present(route, UNSUPPORTED):
            raise _unsupported(route)
        return "ListObjectsV2" if route.param("list-type") == "2" else "ListObjects"
    if method == "HEAD":
        return "HeadBucket"
    if method == "PUT":
        if route.has("acl"):
            return "PutBucketAcl"
        if _first_present(route, UNSUPPORTED):
            raise _unsupported(route)
        return "CreateBucket"
    if method == "DELETE":
        config = _first_present(route, BUCKET_CONFIG_DELETES)
        if config is not None:
            return f"DeleteBucketConfig:{config}"
        if _first_present(route, UNSUPPORTED):
            raise _unsupported(route)
        return "DeleteBucket"
    if method == "POST":
        if route.has("delete"):
            return "DeleteObjects"
        raise S3NotImplemented("POST uploads (browser forms) are not implemented by this store.")
    raise MethodNotAllowed()


def _object_action(method: str, route: Route, headers: Mapping[str, str]) -> str:
    if method in ("GET", "HEAD"):
        if method == "GET" and route.has("acl"):
            return "GetObjectAcl"
        if method == "GET" and route.has("uploadId"):
            return "ListParts"
        if method == "GET" and route.has("tagging"):
            return "GetObjectTagging"
        if route.has("partNumber"):
            raise S3NotImplemented("GET and HEAD of a part number are not implemented.")
        if _first_present(route, UNSUPPORTED):
            raise _unsupported(route)
        return "GetObject" if method == "GET" else "HeadObject"
    if method == "PUT":
        if route.has("acl"):
            return "PutObjectAcl"
        if route.has("partNumber") or route.has("uploadId"):
            return "UploadPartCopy" if "x-amz-copy-source" in headers else "UploadPart"
        if _first_present(route, UNSUPPORTED):
            raise _unsupported(route)
        return "CopyObject" if "x-amz-copy-source" in headers else "PutObject"
    if method == "DELETE":
        if route.has("uploadId"):
            return "AbortMultipartUpload"
        if route.has("tagging"):
            return "DeleteObjectTagging"
        if _first_present(route, UNSUPPORTED):
            raise _unsupported(route)
        return "DeleteObject"
    if method == "POST":
        if route.has("uploads"):
            return "CreateMultipartUpload"
        if route.has("uploadId"):
            return "CompleteMultipartUpload"
        if _first_present(route, UNSUPPORTED):
            raise _unsupported(route)
        raise MethodNotAllowed()
    raise MethodNotAllowed()


def resolve_action(method: str, route: Route, headers: Mapping[str, str]) -> str:
    """
    Name the S3 operation.

    @param method: the HTTP verb, upper case.
    @param route: from L{parse_route}.
    @param headers: lower-case header names (C{x-amz-copy-source} matters).
    @return: the operation name (C{GetObject}, C{UploadPart}...); bucket
        configurations this store never has are C{GetBucketConfig:<name>} and
        C{DeleteBucketConfig:<name>}.
    @raise MethodNotAllowed: the method makes no sense on that resource.
    @raise S3NotImplemented: a sub-resource S3 knows and this store does not do.
    """
    if route.bucket is None:
        return _service_action(method)
    if route.key is None:
        return _bucket_action(method, route)
    return _object_action(method, route, headers)


#: the operations whose request body is an object's data, streamed to the store
UPLOAD_ACTIONS = frozenset({"PutObject", "UploadPart"})

__all__ = ["Route", "UPLOAD_ACTIONS", "parse_route", "resolve_action"]
