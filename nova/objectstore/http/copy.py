"""
CopyObject, and the copy source that UploadPartCopy shares with it:
C{x-amz-copy-source} (URL-encoded, C{?versionId} ignored: there are no
versions here), the C{x-amz-copy-source-if-*} conditions, and the
COPY/REPLACE metadata directive.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from nova.objectstore.errors import InvalidArgument, InvalidRequest, NoSuchKey
from nova.objectstore.http import xmlrender
from nova.objectstore.http.auth import READ, WRITE, require
from nova.objectstore.http.call import Response, S3Call
from nova.objectstore.http.common import (bucket_for, canned_acl, get_bucket,
                                          new_object_from, no_such_key, owner_of_new,
                                          refuse_unsupported)
from nova.objectstore.http.conditionals import check_copy_conditions
from nova.objectstore.http.errors import with_fields
from nova.objectstore.interfaces import NewObject, ObjectInfo

_BAD_SOURCE = "Copy Source must mention the source bucket and key: sourcebucket/sourcekey"


def parse_copy_source(value: str) -> tuple[str, str]:
    """
    @param value: an C{x-amz-copy-source} header: C{[/]bucket/key[?versionId=...]},
        the key URL-encoded (or not, from older clients).
    @return: the source bucket and key.
    @raise InvalidArgument: no bucket or no key, or not UTF-8.
    """
    raw = value.strip()
    if "?versionId=" in raw:
        raw = raw.rsplit("?versionId=", 1)[0]
    try:
        decoded = unquote(raw, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise with_fields(InvalidArgument(_BAD_SOURCE), ArgumentName="x-amz-copy-source",
                          ArgumentValue=value) from None
    if decoded.startswith("/"):
        decoded = decoded[1:]
    bucket, _, key = decoded.partition("/")
    if not bucket or not key:
        raise with_fields(InvalidArgument(_BAD_SOURCE), ArgumentName="x-amz-copy-source",
                          ArgumentValue=value)
    return bucket, key


async def copy_source(service: Any, call: S3Call) -> ObjectInfo:
    """
    @return: the copy source, once the caller may read it and its
        C{x-amz-copy-source-if-*} conditions hold.
    @raise NoSuchBucket, NoSuchKey, AccessDenied, PreconditionFailed: as S3.
    """
    src_bucket, src_key = parse_copy_source(call.headers["x-amz-copy-source"])
    bucket = await get_bucket(service, src_bucket)
    try:
        info = await service.store.head_object(src_bucket, src_key)
    except NoSuchKey:
        require(call.identity, (bucket.owner,), bucket.acl, READ)
        raise no_such_key(src_bucket, src_key) from None
    require(call.identity, (info.owner, bucket.owner), info.acl, READ)
    check_copy_conditions(call.headers, info.etag, info.last_modified)
    return info


async def copy_object(service: Any, call: S3Call) -> Response:
    """CopyObject: the body is copied by the store, off the reactor thread."""
    assert call.route.key is not None
    bucket = await bucket_for(service, call, WRITE)
    source = await copy_source(service, call)
    directive = (call.headers.get("x-amz-metadata-directive") or "COPY").strip().upper()
    if directive not in ("COPY", "REPLACE"):
        raise with_fields(InvalidArgument("Unknown metadata directive."),
                          ArgumentName="x-amz-metadata-directive", ArgumentValue=directive)
    acl = canned_acl(call.headers)
    assert acl is not None
    owner = owner_of_new(call.identity, bucket)
    if directive == "COPY":
        refuse_unsupported(call.headers)
        if (source.bucket, source.key) == (bucket.name, call.route.key):
            raise InvalidRequest(
                "This copy request is illegal because it is trying to copy an object to "
                "itself without changing the object's metadata, storage class, website "
                "redirect location or encryption attributes.")
        new = NewObject(content_type=source.content_type, headers=dict(source.headers),
                        metadata=dict(source.metadata), owner=owner, acl=acl)
    else:
        new = new_object_from(call.headers, owner, acl)
    info = await service.store.copy_object(source.bucket, source.key, bucket.name,
                                           call.route.key, new)
    return Response.xml(xmlrender.copy_result("CopyObjectResult", info.etag,
                                              info.last_modified))


__all__ = ["copy_object", "copy_source", "parse_copy_source"]
