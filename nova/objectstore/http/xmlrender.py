"""
S3's XML documents, rendered: error documents, bucket and object listings,
ACLs and the small results of copies, deletes and multipart uploads. The
element names and order are those of the S3 API reference (what botocore's
parser and boto 2's SAX handlers read).
"""

from __future__ import annotations

import time
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import quote_plus
from xml.etree import ElementTree

from nova.objectstore.interfaces import Bucket, ObjectInfo, Owner, Part, Upload

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
#: the grants to groups each canned ACL makes, besides the owner's FULL_CONTROL
CANNED_GRANTS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "private": (),
    "public-read": ((ALL_USERS, "READ"),),
    "public-read-write": ((ALL_USERS, "READ"), (ALL_USERS, "WRITE")),
    "authenticated-read": ((AUTHENTICATED_USERS, "READ"),),
}


def iso8601(when: float) -> str:
    """@return: C{when} as S3 writes times in XML (C{2009-10-12T17:50:30.000Z})."""
    millis = int(round((when - int(when)) * 1000)) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(when))) + f".{millis:03d}Z"


def quote_etag(etag: str) -> str:
    """@return: the entity tag in double quotes, as S3 sends it."""
    return f'"{etag}"'


def _add(parent: ElementTree.Element, name: str, value: Any = None) -> ElementTree.Element:
    child = ElementTree.SubElement(parent, name)
    if value is not None:
        child.text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return child


def _root(name: str, namespace: bool = True) -> ElementTree.Element:
    return ElementTree.Element(name, {"xmlns": NS} if namespace else {})


def serialize(root: ElementTree.Element) -> bytes:
    """@return: the document, with its XML declaration, UTF-8."""
    return _DECLARATION + ElementTree.tostring(root, encoding="utf-8", xml_declaration=False)


def error_document(code: str, message: str, resource: str, request_id: str, host_id: str,
                   fields: Mapping[str, Any] | None = None) -> bytes:
    """
    @param fields: extra elements (C{BucketName}, C{Key}, C{StringToSign}...).
    @return: an S3 C{<Error>} document.
    """
    root = _root("Error", namespace=False)
    _add(root, "Code", code)
    _add(root, "Message", message)
    for name, value in (fields or {}).items():
        _add(root, name, value)
    _add(root, "Resource", resource)
    _add(root, "RequestId", request_id)
    _add(root, "HostId", host_id)
    return serialize(root)


def _owner(parent: ElementTree.Element, owner: Owner, canonical_id: str,
           name: str = "Owner") -> None:
    element = _add(parent, name)
    _add(element, "ID", canonical_id)
    _add(element, "DisplayName", owner.display_name)


def list_buckets(owner: Owner, owner_id: str, buckets: Iterable[Bucket]) -> bytes:
    """@return: C{ListAllMyBucketsResult}."""
    root = _root("ListAllMyBucketsResult")
    _owner(root, owner, owner_id)
    container = _add(root, "Buckets")
    for bucket in buckets:
        entry = _add(container, "Bucket")
        _add(entry, "Name", bucket.name)
        _add(entry, "CreationDate", iso8601(bucket.created_at))
    return serialize(root)


def _encoder(encoding: str | None) -> Any:
    if encoding == "url":
        return lambda text: quote_plus(text, safe="/", encoding="utf-8")
    return lambda text: text


def _contents(root: ElementTree.Element, info: ObjectInfo, encode: Any, with_owner: bool,
              canonical_id: Any) -> None:
    entry = _add(root, "Contents")
    _add(entry, "Key", encode(info.key))
    _add(entry, "LastModified", iso8601(info.last_modified))
    _add(entry, "ETag", quote_etag(info.etag))
    _add(entry, "Size", info.size)
    if with_owner:
        _owner(entry, info.owner, canonical_id(info.owner.project_id))
    _add(entry, "StorageClass", "STANDARD")


def list_objects_v1(bucket: str, params: Mapping[str, Any], listing: Any,
                    canonical_id: Any) -> bytes:
    """
    @param params: C{prefix}, C{marker}, C{max_keys}, C{delimiter}, C{encoding}.
    @param listing: the store's L{nova.objectstore.interfaces.Listing}.
    @param canonical_id: project id to canonical id.
    @return: C{ListBucketResult} (version 1).
    """
    encode = _encoder(params.get("encoding"))
    root = _root("ListBucketResult")
    _add(root, "Name", bucket)
    _add(root, "Prefix", encode(params["prefix"]))
    _add(root, "Marker", encode(params["marker"]))
    if params["delimiter"] and listing.is_truncated and listing.next_marker is not None:
        _add(root, "NextMarker", encode(listing.next_marker))
    _add(root, "MaxKeys", params["max_keys"])
    if params["delimiter"]:
        _add(root, "Delimiter", encode(params["delimiter"]))
    if params.get("encoding"):
        _add(root, "EncodingType", params["encoding"])
    _add(root, "IsTruncated", listing.is_truncated)
    for info in listing.contents:
        _contents(root, info, encode, True, canonical_id)
    for prefix in listing.common_prefixes:
        _add(_add(root, "CommonPrefixes"), "Prefix", encode(prefix))
    return serialize(root)


def list_objects_v2(bucket: str, params: Mapping[str, Any], listing: Any,
                    next_token: str | None, canonical_id: Any) -> bytes:
    """
    @param params: C{prefix}, C{max_keys}, C{delimiter}, C{encoding},
        C{continuation_token}, C{start_after}, C{fetch_owner}.
    @param next_token: the C{NextContinuationToken} when truncated.
    @return: C{ListBucketResult} (version 2).
    """
    encode = _encoder(params.get("encoding"))
    root = _root("ListBucketResult")
    _add(root, "Name", bucket)
    _add(root, "Prefix", encode(params["prefix"]))
    if params.get("continuation_token") is not None:
        _add(root, "ContinuationToken", params["continuation_token"])
    if next_token is not None:
        _add(root, "NextContinuationToken", next_token)
    if params.get("start_after"):
        _add(root, "StartAfter", encode(params["start_after"]))
    _add(root, "KeyCount", len(listing.contents) + len(listing.common_prefixes))
    _add(root, "MaxKeys", params["max_keys"])
    if params["delimiter"]:
        _add(root, "Delimiter", encode(params["delimiter"]))
    if params.get("encoding"):
        _add(root, "EncodingType", params["encoding"])
    _add(root, "IsTruncated", listing.is_truncated)
    for info in listing.contents:
        _contents(root, info, encode, bool(params.get("fetch_owner")), canonical_id)
    for prefix in listing.common_prefixes:
        _add(_add(root, "CommonPrefixes"), "Prefix", encode(prefix))
    return serialize(root)


def location(constraint: str) -> bytes:
    """@return: C{LocationConstraint} (empty for S3's default region)."""
    root = _root("LocationConstraint")
    if constraint:
        root.text = constraint
    return serialize(root)


def access_control_policy(owner: Owner, owner_id: str, acl: str) -> bytes:
    """@return: the C{AccessControlPolicy} of a canned ACL."""
    root = _root("AccessControlPolicy")
    _owner(root, owner, owner_id)
    grants = _add(root, "AccessControlList")
    grant = _add(grants, "Grant")
    grantee = ElementTree.SubElement(grant, "Grantee",
                                     {"xmlns:xsi": XSI, "xsi:type": "CanonicalUser"})
    _add(grantee, "ID", owner_id)
    _add(grantee, "DisplayName", owner.display_name)
    _add(grant, "Permission", "FULL_CONTROL")
    for uri, permission in CANNED_GRANTS.get(acl, ()):
        grant = _add(grants, "Grant")
        grantee = ElementTree.SubElement(grant, "Grantee", {"xmlns:xsi": XSI, "xsi:type": "Group"})
        _add(grantee, "URI", uri)
        _add(grant, "Permission", permission)
    return serialize(root)


def copy_result(name: str, etag: str, last_modified: float) -> bytes:
    """@param name: C{CopyObjectResult} or C{CopyPartResult}."""
    root = _root(name)
    _add(root, "LastModified", iso8601(last_modified))
    _add(root, "ETag", quote_etag(etag))
    return serialize(root)


def delete_result(deleted: Sequence[str], errors: Sequence[tuple[str, str, str]],
                  quiet: bool) -> bytes:
    """
    @param deleted: the keys deleted (left out in quiet mode).
    @param errors: C{(key, code, message)} of the keys that could not be.
    @return: C{DeleteResult}.
    """
    root = _root("DeleteResult")
    if not quiet:
        for key in deleted:
            _add(_add(root, "Deleted"), "Key", key)
    for key, code, message in errors:
        entry = _add(root, "Error")
        _add(entry, "Key", key)
        _add(entry, "Code", code)
        _add(entry, "Message", message)
    return serialize(root)


def initiate_multipart(bucket: str, key: str, upload_id: str) -> bytes:
    """@return: C{InitiateMultipartUploadResult}."""
    root = _root("InitiateMultipartUploadResult")
    _add(root, "Bucket", bucket)
    _add(root, "Key", key)
    _add(root, "UploadId", upload_id)
    return serialize(root)


def complete_multipart(location_url: str, bucket: str, key: str, etag: str) -> bytes:
    """@return: C{CompleteMultipartUploadResult}."""
    root = _root("CompleteMultipartUploadResult")
    _add(root, "Location", location_url)
    _add(root, "Bucket", bucket)
    _add(root, "Key", key)
    _add(root, "ETag", quote_etag(etag))
    return serialize(root)


def list_parts(upload: Upload, owner_id: str, parts: Sequence[Part], marker: int,
               max_parts: int, truncated: bool) -> bytes:
    """@return: C{ListPartsResult}."""
    root = _root("ListPartsResult")
    _add(root, "Bucket", upload.bucket)
    _add(root, "Key", upload.key)
    _add(root, "UploadId", upload.upload_id)
    _owner(root, upload.new_object.owner, owner_id, "Initiator")
    _owner(root, upload.new_object.owner, owner_id)
    _add(root, "StorageClass", "STANDARD")
    _add(root, "PartNumberMarker", marker)
    if parts:
        _add(root, "NextPartNumberMarker", parts[-1].part_number)
    _add(root, "MaxParts", max_parts)
    _add(root, "IsTruncated", truncated)
    for part in parts:
        entry = _add(root, "Part")
        _add(entry, "PartNumber", part.part_number)
        _add(entry, "LastModified", iso8601(part.last_modified))
        _add(entry, "ETag", quote_etag(part.etag))
        _add(entry, "Size", part.size)
    return serialize(root)


def list_uploads(bucket: str, params: Mapping[str, Any], uploads: Sequence[Upload],
                 common_prefixes: Sequence[str], last: Upload | None, canonical_id: Any) -> bytes:
    """
    @param params: C{prefix}, C{delimiter}, C{key_marker}, C{upload_id_marker},
        C{max_uploads}, C{encoding}.
    @param last: the last upload of the page when more follow (the next markers).
    @return: C{ListMultipartUploadsResult}.
    """
    encode = _encoder(params.get("encoding"))
    root = _root("ListMultipartUploadsResult")
    _add(root, "Bucket", bucket)
    _add(root, "KeyMarker", encode(params["key_marker"]))
    _add(root, "UploadIdMarker", params["upload_id_marker"])
    if last is not None:
        _add(root, "NextKeyMarker", encode(last.key))
        _add(root, "NextUploadIdMarker", last.upload_id)
    _add(root, "MaxUploads", params["max_uploads"])
    if params.get("encoding"):
        _add(root, "EncodingType", params["encoding"])
    _add(root, "IsTruncated", last is not None)
    if params["prefix"]:
        _add(root, "Prefix", encode(params["prefix"]))
    if params["delimiter"]:
        _add(root, "Delimiter", encode(params["delimiter"]))
    for upload in uploads:
        owner = upload.new_object.owner
        entry = _add(root, "Upload")
        _add(entry, "Key", encode(upload.key))
        _add(entry, "UploadId", upload.upload_id)
        _owner(entry, owner, canonical_id(owner.project_id), "Initiator")
        _owner(entry, owner, canonical_id(owner.project_id))
        _add(entry, "StorageClass", "STANDARD")
        _add(entry, "Initiated", iso8601(upload.initiated))
    for prefix in common_prefixes:
        _add(_add(root, "CommonPrefixes"), "Prefix", encode(prefix))
    return serialize(root)


def empty_configuration(root_name: str, children: Sequence[tuple[str, str]] = ()) -> bytes:
    """
    @return: a configuration document with nothing configured
        (C{VersioningConfiguration}, C{BucketLoggingStatus}...), optionally
        with a few fixed C{(name, text)} children.
    """
    root = _root(root_name)
    for name, text in children:
        if name == "TagSet":
            _add(root, name)
        else:
            _add(root, name, text)
    return serialize(root)


__all__ = [
    "ALL_USERS", "AUTHENTICATED_USERS", "CANNED_GRANTS", "NS", "access_control_policy",
    "complete_multipart", "copy_result", "delete_result", "empty_configuration",
    "error_document", "initiate_multipart", "iso8601", "list_buckets", "list_objects_v1",
    "list_objects_v2", "list_parts", "list_uploads", "location", "quote_etag", "serialize",
]
