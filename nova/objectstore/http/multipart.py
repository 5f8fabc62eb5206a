"""
Multipart uploads: CreateMultipartUpload, UploadPart (admitted before its
body streams in, like PutObject), UploadPartCopy, CompleteMultipartUpload,
AbortMultipartUpload, ListParts and ListMultipartUploads. The store checks
the parts at completion (InvalidPart, InvalidPartOrder, EntityTooSmall) and
computes the C{<md5 of md5s>-<N>} entity tag.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from nova.objectstore.errors import InvalidArgument, NoSuchUpload
from nova.objectstore.http import xmlrender
from nova.objectstore.http.auth import WRITE, Identity, canonical_id, require
from nova.objectstore.http.call import Response, S3Call, UploadPlan
from nova.objectstore.http.common import bucket_for, canned_acl, get_bucket, new_object_from
from nova.objectstore.http.copy import copy_source
from nova.objectstore.http.digests import parse_content_md5
from nova.objectstore.http.errors import with_fields
from nova.objectstore.http.listing import encoding_type, max_keys
from nova.objectstore.http.objects import check_body, check_key
from nova.objectstore.http.ranges import parse_copy_range
from nova.objectstore.http.routing import Route
from nova.objectstore.http.xmlparse import parse_complete
from nova.objectstore.interfaces import Bucket, Upload

#: part numbers run from 1 to this (S3's limit)
MAX_PART_NUMBER = 10000


def part_number(route: Route) -> int:
    """
    @return: the C{partNumber} query parameter.
    @raise InvalidArgument: missing, or not an integer in 1..10000.
    """
    value = route.param("partNumber") or ""
    if not value.isdigit() or not 1 <= int(value) <= MAX_PART_NUMBER:
        raise with_fields(InvalidArgument("Part number must be an integer between 1 and "
                                          "10000, inclusive"),
                          ArgumentName="partNumber", ArgumentValue=value)
    return int(value)


async def upload_for(service: Any, route: Route, identity: Identity | None,
                     permission: str | None) -> tuple[Bucket, Upload]:
    """
    @param permission: C{WRITE} (any writer of the bucket), or C{None}: the
        bucket's owner or the upload's initiator only.
    @return: the bucket and the upload C{uploadId} names, for this key.
    @raise NoSuchUpload: no such upload in progress for this bucket and key.
    """
    assert route.bucket is not None
    bucket = await get_bucket(service, route.bucket)
    if permission == WRITE:
        require(identity, (bucket.owner,), bucket.acl, WRITE)
    upload_id = route.param("uploadId") or ""
    try:
        upload = await service.store.get_upload(upload_id)
    except NoSuchUpload as e:
        raise with_fields(e, UploadId=upload_id)
    if upload.bucket != bucket.name or upload.key != route.key:
        raise with_fields(NoSuchUpload("The specified multipart upload does not exist."),
                          UploadId=upload_id)
    if permission is None:
        require(identity, (bucket.owner, upload.new_object.owner), None, None)
    return bucket, upload


async def admit_upload_part(service: Any, plan: UploadPlan,
                            identity: Identity | None) -> tuple[Upload, int, bytes | None]:
    """
    Everything an UploadPart can be refused for before its body is read.

    @return: the upload, the part number and the Content-MD5 digest to check.
    """
    number = part_number(plan.route)
    content_md5 = parse_content_md5(plan.headers.get("content-md5"))
    _, upload = await upload_for(service, plan.route, identity, WRITE)
    return upload, number, content_md5


async def upload_part(service: Any, call: S3Call) -> Response:
    """UploadPart: check the streamed body, then keep it as the part."""
    assert call.received is not None
    upload, number, content_md5 = call.received.admitted
    check_body(call, content_md5)
    part = await service.store.commit_part(call.received.writer, upload.upload_id, number)
    return Response(headers=[("ETag", xmlrender.quote_etag(part.etag)),
                             ("Content-Length", "0")])


async def upload_part_copy(service: Any, call: S3Call) -> Response:
    """UploadPartCopy: a byte range (C{x-amz-copy-source-range}) of an object as a part."""
    number = part_number(call.route)
    _, upload = await upload_for(service, call.route, call.identity, WRITE)
    source = await copy_source(service, call)
    first = last = None
    wanted = call.headers.get("x-amz-copy-source-range")
    if wanted is not None:
        first, last = parse_copy_range(wanted, source.size)
    part = await service.store.copy_part(upload.upload_id, number, source.bucket, source.key,
                                         first, last)
    return Response.xml(xmlrender.copy_result("CopyPartResult", part.etag, part.last_modified))


async def create_multipart_upload(service: Any, call: S3Call) -> Response:
    """CreateMultipartUpload (POST ?uploads): the object's headers are given here."""
    bucket = await bucket_for(service, call, WRITE)
    assert call.route.key is not None
    check_key(call.route.key)
    acl = canned_acl(call.headers)
    assert acl is not None
    owner = call.identity.owner if call.identity is not None else bucket.owner
    upload = await service.store.create_upload(bucket.name, call.route.key,
                                               new_object_from(call.headers, owner, acl))
    return Response.xml(xmlrender.initiate_multipart(bucket.name, upload.key, upload.upload_id))


async def complete_multipart_upload(service: Any, call: S3Call) -> Response:
    """CompleteMultipartUpload: join the listed parts into the object."""
    bucket, upload = await upload_for(service, call.route, call.identity, WRITE)
    parts = parse_complete(call.body)
    info = await service.store.complete_upload(upload.upload_id, parts)
    location = f"http://{call.host}/{quote(bucket.name)}/{quote(upload.key)}"
    return Response.xml(xmlrender.complete_multipart(location, bucket.name, upload.key,
                                                     info.etag))


async def abort_multipart_upload(service: Any, call: S3Call) -> Response:
    """AbortMultipartUpload: the bucket's owner or the initiator forgets the parts."""
    _, upload = await upload_for(service, call.route, call.identity, None)
    await service.store.abort_upload(upload.upload_id)
    return Response(status=204)


async def list_parts(service: Any, call: S3Call) -> Response:
    """ListParts: part-number-marker, max-parts."""
    _, upload = await upload_for(service, call.route, call.identity, None)
    marker_text = call.route.param("part-number-marker") or "0"
    if not marker_text.isdigit():
        raise with_fields(InvalidArgument("Invalid part-number-marker"),
                          ArgumentName="part-number-marker", ArgumentValue=marker_text)
    marker = int(marker_text)
    limit = max_keys(call, "max-parts")
    parts = await service.store.list_parts(upload.upload_id, after=marker,
                                           max_parts=limit + 1) if limit else []
    truncated = len(parts) > limit
    parts = parts[:limit]
    owner_id = canonical_id(upload.new_object.owner.project_id)
    return Response.xml(xmlrender.list_parts(upload, owner_id, parts, marker, limit, truncated))


async def list_multipart_uploads(service: Any, call: S3Call) -> Response:
    """ListMultipartUploads: prefix, delimiter, key-marker, upload-id-marker, max-uploads."""
    bucket = await bucket_for(service, call, None)
    params = {
        "prefix": call.route.param("prefix") or "",
        "delimiter": call.route.param("delimiter") or "",
        "key_marker": call.route.param("key-marker") or "",
        "upload_id_marker": call.route.param("upload-id-marker") or "",
        "max_uploads": max_keys(call, "max-uploads"),
        "encoding": encoding_type(call),
    }
    limit = params["max_uploads"]
    found = await service.store.list_uploads(
        bucket.name, prefix=params["prefix"], key_after=params["key_marker"],
        upload_id_after=params["upload_id_marker"], max_uploads=limit + 1) if limit else []
    truncated = len(found) > limit
    found = found[:limit]
    uploads, prefixes = [], []
    delimiter = params["delimiter"]
    for upload in found:
        rest = upload.key[len(params["prefix"]):]
        if delimiter and delimiter in rest:
            common = params["prefix"] + rest.split(delimiter, 1)[0] + delimiter
            if common not in prefixes:
                prefixes.append(common)
        else:
            uploads.append(upload)
    last = found[-1] if truncated and found else None
    return Response.xml(xmlrender.list_uploads(bucket.name, params, uploads, prefixes,
                                               last, canonical_id))


HANDLERS = {
    "CreateMultipartUpload": create_multipart_upload,
    "UploadPart": upload_part,
    "UploadPartCopy": upload_part_copy,
    "CompleteMultipartUpload": complete_multipart_upload,
    "AbortMultipartUpload": abort_multipart_upload,
    "ListParts": list_parts,
    "ListMultipartUploads": list_multipart_uploads,
}

__all__ = ["HANDLERS", "MAX_PART_NUMBER", "admit_upload_part", "part_number", "upload_for"]
