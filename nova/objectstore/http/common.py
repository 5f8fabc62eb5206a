"""
What several operation handlers share: finding a bucket the caller may use,
canned ACL headers, the stored headers and user metadata of an object.
"""

from __future__ import annotations

import email.utils
from typing import Any, Mapping

from nova.objectstore.errors import InvalidArgument, NoSuchBucket, NoSuchKey
from nova.objectstore.http.auth import Identity, require
from nova.objectstore.http.call import S3Call
from nova.objectstore.http.errors import MetadataTooLarge, S3NotImplemented, with_fields
from nova.objectstore.http.xmlrender import quote_etag
from nova.objectstore.interfaces import CANNED_ACLS, Bucket, NewObject, ObjectInfo, Owner

#: the standard headers an object keeps (besides Content-Type)
STORED_HEADERS = ("cache-control", "content-disposition", "content-encoding",
                  "content-language", "expires")
#: S3's limit on the user metadata of an object (names and values), bytes
MAX_METADATA = 2 * 1024
#: ACL values S3 knows that give no one but the owners anything here
_PRIVATE_EQUIVALENTS = ("bucket-owner-read", "bucket-owner-full-control", "aws-exec-read",
                        "log-delivery-write")


async def get_bucket(service: Any, name: str) -> Bucket:
    """@raise NoSuchBucket: with the BucketName element S3 gives it."""
    try:
        return await service.store.get_bucket(name)
    except NoSuchBucket as e:
        raise with_fields(e, BucketName=name)


async def bucket_for(service: Any, call: S3Call, permission: str | None) -> Bucket:
    """
    @param permission: C{READ}, C{WRITE}, or C{None} for what only the
        owner (or a superuser) may do.
    @return: the call's bucket.
    @raise NoSuchBucket: it does not exist.
    @raise AccessDenied: the caller may not do that with it.
    """
    assert call.route.bucket is not None
    bucket = await get_bucket(service, call.route.bucket)
    require(call.identity, (bucket.owner,), bucket.acl, permission)
    return bucket


def no_such_key(bucket: str, key: str) -> NoSuchKey:
    """@return: the error of a missing key, with the Key element S3 gives it."""
    return with_fields(NoSuchKey("The specified key does not exist."), Key=key)


def canned_acl(headers: Mapping[str, str], default: str | None = "private") -> str | None:
    """
    @return: the canned ACL of C{x-amz-acl}, or C{default} without one.
    @raise InvalidArgument: an ACL S3 does not know.
    @raise S3NotImplemented: explicit C{x-amz-grant-*} headers.
    """
    if any(name.startswith("x-amz-grant-") for name in headers):
        raise S3NotImplemented("Only canned ACLs (x-amz-acl) are supported, not "
                               "x-amz-grant-* headers.")
    value = headers.get("x-amz-acl")
    if value is None:
        return default
    value = value.strip()
    if value in CANNED_ACLS:
        return value
    if value in _PRIVATE_EQUIVALENTS:
        return "private"
    raise with_fields(InvalidArgument(f"The canned ACL {value!r} is not valid."),
                      ArgumentName="x-amz-acl", ArgumentValue=value)


#: request headers asking for what this store cannot honour (refused, not ignored)
_UNSUPPORTED_HEADER_PREFIXES = ("x-amz-server-side-encryption", "x-amz-object-lock-")


def refuse_unsupported(headers: Mapping[str, str]) -> None:
    """
    @raise S3NotImplemented: the request asks for server-side encryption or
        object lock, which this store does not do (storing the object
        without them would be a wrong answer).
    """
    for name in headers:
        if name.startswith(_UNSUPPORTED_HEADER_PREFIXES):
            raise S3NotImplemented(f"The {name} header asks for what this store does not "
                                   "implement.")


def metadata_from(headers: Mapping[str, str]) -> dict[str, str]:
    """
    @return: the user metadata of C{x-amz-meta-*} headers (names without the prefix).
    @raise MetadataTooLarge: over S3's 2 KB.
    """
    metadata = {name[len("x-amz-meta-"):]: value for name, value in headers.items()
                if name.startswith("x-amz-meta-") and len(name) > len("x-amz-meta-")}
    size = sum(len(name.encode("utf-8", "surrogateescape")) + len(
        value.encode("utf-8", "surrogateescape")) for name, value in metadata.items())
    if size > MAX_METADATA:
        raise MetadataTooLarge("Your metadata headers exceed the maximum allowed metadata "
                               "size.")
    return metadata


def stored_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """
    @return: the standard headers an object keeps; C{aws-chunked} (a transfer
        detail) is taken out of Content-Encoding.
    """
    kept = {name: headers[name] for name in STORED_HEADERS if name in headers}
    if "content-encoding" in kept:
        codings = [c.strip() for c in kept["content-encoding"].split(",")
                   if c.strip() and c.strip().lower() != "aws-chunked"]
        if codings:
            kept["content-encoding"] = ",".join(codings)
        else:
            del kept["content-encoding"]
    return kept


def new_object_from(headers: Mapping[str, str], owner: Owner, acl: str) -> NewObject:
    """
    @return: what a PutObject (or CreateMultipartUpload, or a replacing
        CopyObject) says about its object.
    @raise S3NotImplemented: see L{refuse_unsupported}.
    @raise MetadataTooLarge: see L{metadata_from}.
    """
    refuse_unsupported(headers)
    content_type = headers.get("content-type") or "binary/octet-stream"
    return NewObject(content_type=content_type, headers=stored_headers(headers),
                     metadata=metadata_from(headers), owner=owner, acl=acl)


def owner_of_new(identity: Identity | None, bucket: Bucket) -> Owner:
    """@return: who owns an object the caller writes (anonymous: the bucket's owner)."""
    return identity.owner if identity is not None else bucket.owner


def http_date(when: float) -> str:
    """@return: C{when} as an HTTP date (C{Wed, 12 Oct 2009 17:50:00 GMT})."""
    return email.utils.formatdate(int(when), usegmt=True)


def object_headers(info: ObjectInfo) -> list[tuple[str, str]]:
    """@return: the headers of a GetObject/HeadObject answer (without the length)."""
    headers = [("Content-Type", info.content_type), ("ETag", quote_etag(info.etag)),
               ("Last-Modified", http_date(info.last_modified)), ("Accept-Ranges", "bytes")]
    for name, value in info.headers.items():
        headers.append(("-".join(part.capitalize() for part in name.split("-")), value))
    for name, value in info.metadata.items():
        headers.append((f"x-amz-meta-{name}", value))
    return headers


__all__ = ["MAX_METADATA", "STORED_HEADERS", "bucket_for", "canned_acl", "get_bucket",
           "http_date", "metadata_from", "new_object_from", "no_such_key", "object_headers",
           "owner_of_new", "refuse_unsupported", "stored_headers"]
