"""
The object operations: PutObject (admitted before its body streams in),
GetObject and HeadObject (ranges, conditions, C{response-*} overrides),
DeleteObject, DeleteObjects, Get/PutObjectAcl and object tagging's empty
answers. CopyObject is in L{nova.objectstore.http.copy}.
"""

from __future__ import annotations

from typing import Any

from nova.auth import signer
from nova.objectstore.errors import (InvalidRequest, KeyTooLongError, NoSuchKey, NotModified,
                                     S3Error)
from nova.objectstore.http import xmlrender
from nova.objectstore.http.auth import READ, WRITE, Identity, canonical_id, require
from nova.objectstore.http.buckets import acl_from_call
from nova.objectstore.http.call import ObjectStream, Response, S3Call, UploadPlan
from nova.objectstore.http.common import (bucket_for, canned_acl, get_bucket, http_date,
                                          new_object_from, no_such_key, object_headers,
                                          owner_of_new)
from nova.objectstore.http.conditionals import check_conditions
from nova.objectstore.http.copy import copy_object
from nova.objectstore.http.digests import check_content_md5, parse_content_md5
from nova.objectstore.http.ranges import content_range, parse_range
from nova.objectstore.http.xmlparse import parse_delete
from nova.objectstore.interfaces import Bucket, ObjectInfo

#: the longest key, in bytes of UTF-8 (S3's limit)
MAX_KEY_BYTES = 1024
#: query parameters that override a GetObject answer's headers, on signed requests
OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


def check_key(key: str) -> None:
    """@raise KeyTooLongError: over 1024 bytes of UTF-8."""
    if len(key.encode("utf-8", "surrogateescape")) > MAX_KEY_BYTES:
        raise KeyTooLongError("Your key is too long")


async def admit_put_object(service: Any, plan: UploadPlan,
                           identity: Identity | None) -> tuple[Bucket, Any, bytes | None]:
    """
    Everything a PutObject can be refused for before its body is read.

    @return: the bucket, the L{nova.objectstore.interfaces.NewObject}, and
        the Content-MD5 digest to check (or C{None}).
    """
    assert plan.route.bucket is not None and plan.route.key is not None
    check_key(plan.route.key)
    acl = canned_acl(plan.headers)
    assert acl is not None
    content_md5 = parse_content_md5(plan.headers.get("content-md5"))
    bucket = await get_bucket(service, plan.route.bucket)
    require(identity, (bucket.owner,), bucket.acl, WRITE)
    new = new_object_from(plan.headers, owner_of_new(identity, bucket), acl)
    return bucket, new, content_md5


def check_body(call: S3Call, content_md5: bytes | None) -> None:
    """
    Check a received upload body against what the request claimed.

    @raise BadDigest: Content-MD5 or a flexible checksum does not match.
    @raise nova.auth.signer.ContentSHA256Mismatch: the signed payload hash
        does not match.
    """
    received = call.received
    assert received is not None
    writer = received.writer
    check_content_md5(content_md5, writer.md5_bytes())
    if call.identity is not None:
        signer.check_payload_sha256(call.identity.claimed, writer.sha256_hex())
    received.checksums.check(writer, received.trailers)


async def put_object(service: Any, call: S3Call) -> Response:
    """PutObject: check the streamed body, then commit it as the object."""
    assert call.received is not None and call.route.key is not None
    bucket, new, content_md5 = call.received.admitted
    check_body(call, content_md5)
    info = await service.store.commit_object(call.received.writer, bucket.name,
                                             call.route.key, new)
    return Response(headers=[("ETag", xmlrender.quote_etag(info.etag)),
                             ("Content-Length", "0")])


async def readable_object(service: Any, call: S3Call) -> tuple[Bucket, ObjectInfo]:
    """
    @return: the bucket and the object the caller may read.
    @raise NoSuchKey: it does not exist and the caller may list the bucket
        (otherwise C{AccessDenied}, as in S3: absence is not told to strangers).
    """
    assert call.route.bucket is not None and call.route.key is not None
    bucket = await get_bucket(service, call.route.bucket)
    try:
        info = await service.store.head_object(bucket.name, call.route.key)
    except NoSuchKey:
        require(call.identity, (bucket.owner,), bucket.acl, READ)
        raise no_such_key(bucket.name, call.route.key) from None
    require(call.identity, (info.owner, bucket.owner), info.acl, READ)
    return bucket, info


def _overridden(call: S3Call, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    overrides = [(OVERRIDES[name], value) for name, value in call.route.params
                 if name in OVERRIDES]
    if not overrides:
        return headers
    if call.identity is None:
        raise InvalidRequest("Request specific response headers cannot be used for anonymous "
                             "GET requests.")
    replaced = {name.lower() for name, _ in overrides}
    return [(n, v) for n, v in headers if n.lower() not in replaced] + overrides


def _answer(call: S3Call, info: ObjectInfo) -> tuple[int, list[tuple[str, str]], int, int]:
    """@return: status, headers, first byte and length of a GET/HEAD answer."""
    headers = _overridden(call, object_headers(info))
    try:
        check_conditions(call.headers, info.etag, info.last_modified)
    except NotModified as e:
        e.s3_headers = [("ETag", xmlrender.quote_etag(info.etag)),  # type: ignore[attr-defined]
                        ("Last-Modified", http_date(info.last_modified))]
        raise
    wanted = parse_range(call.headers.get("range"), info.size)
    if wanted is None:
        return 200, headers + [("Content-Length", str(info.size))], 0, info.size
    first, last = wanted
    length = last - first + 1
    return 206, headers + [("Content-Length", str(length)),
                           ("Content-Range", content_range(first, last, info.size))], first, length


async def head_object(service: Any, call: S3Call) -> Response:
    """HeadObject: the headers a GetObject would answer with."""
    _, info = await readable_object(service, call)
    status, headers, _, _ = _answer(call, info)
    return Response(status=status, headers=headers)


async def get_object(service: Any, call: S3Call) -> Response:
    """GetObject: the body streams from an open snapshot of the object."""
    assert call.route.bucket is not None and call.route.key is not None
    bucket = await get_bucket(service, call.route.bucket)
    try:
        handle = await service.store.open_object(bucket.name, call.route.key)
    except NoSuchKey:
        require(call.identity, (bucket.owner,), bucket.acl, READ)
        raise no_such_key(bucket.name, call.route.key) from None
    try:
        info = handle.info
        require(call.identity, (info.owner, bucket.owner), info.acl, READ)
        status, headers, first, length = _answer(call, info)
    except BaseException:
        handle.close()
        raise
    return Response(status=status, headers=headers,
                    stream=ObjectStream(handle=handle, first=first, length=length))


async def delete_object(service: Any, call: S3Call) -> Response:
    """DeleteObject: 204 whether or not the key existed, as S3 answers."""
    bucket = await bucket_for(service, call, WRITE)
    assert call.route.key is not None
    await service.store.delete_object(bucket.name, call.route.key)
    return Response(status=204)


async def delete_objects(service: Any, call: S3Call) -> Response:
    """DeleteObjects (POST ?delete): up to 1000 keys, quiet mode."""
    bucket = await bucket_for(service, call, WRITE)
    if "content-md5" not in call.headers and not any(
            name.startswith("x-amz-checksum-") and name != "x-amz-checksum-algorithm"
            for name in call.headers):
        raise InvalidRequest("Missing required header for this request: Content-MD5")
    quiet, keys = parse_delete(call.body)
    deleted: list[str] = []
    failed: list[tuple[str, str, str]] = []
    for key in keys:
        try:
            check_key(key)
            await service.store.delete_object(bucket.name, key)
            deleted.append(key)
        except S3Error as e:
            failed.append((key, e.code, e.message))
    return Response.xml(xmlrender.delete_result(deleted, failed, quiet))


async def _owned_object(service: Any, call: S3Call) -> tuple[Bucket, ObjectInfo]:
    bucket, info = await readable_object(service, call)
    require(call.identity, (info.owner, bucket.owner), None, None)
    return bucket, info


async def get_object_acl(service: Any, call: S3Call) -> Response:
    """GetObjectAcl: the object's owner and the grants of its canned ACL."""
    _, info = await _owned_object(service, call)
    return Response.xml(xmlrender.access_control_policy(
        info.owner, canonical_id(info.owner.project_id), info.acl))


async def put_object_acl(service: Any, call: S3Call) -> Response:
    """PutObjectAcl: a canned ACL, from x-amz-acl or an equivalent policy."""
    bucket, info = await _owned_object(service, call)
    acl = acl_from_call(call, canonical_id(info.owner.project_id))
    await service.store.set_object_acl(bucket.name, info.key, acl)
    return Response(headers=[("Content-Length", "0")])


async def get_object_tagging(service: Any, call: S3Call) -> Response:
    """GetObjectTagging: objects here have no tags."""
    await readable_object(service, call)
    return Response.xml(xmlrender.empty_configuration("Tagging", (("TagSet", ""),)))


async def delete_object_tagging(service: Any, call: S3Call) -> Response:
    """DeleteObjectTagging: there are no tags to delete."""
    await _owned_object(service, call)
    return Response(status=204)


HANDLERS = {
    "PutObject": put_object,
    "GetObject": get_object,
    "HeadObject": head_object,
    "DeleteObject": delete_object,
    "DeleteObjects": delete_objects,
    "CopyObject": copy_object,
    "GetObjectAcl": get_object_acl,
    "PutObjectAcl": put_object_acl,
    "GetObjectTagging": get_object_tagging,
    "DeleteObjectTagging": delete_object_tagging,
}

__all__ = ["HANDLERS", "MAX_KEY_BYTES", "OVERRIDES", "admit_put_object", "check_body",
           "check_key", "readable_object"]
