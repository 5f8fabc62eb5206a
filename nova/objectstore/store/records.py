"""
The JSON the object store keeps in the datastore and in its small record
files: buckets, listing summaries, multipart uploads and their parts.
"""

from __future__ import annotations

import json
from typing import Any

from nova.objectstore.interfaces import Bucket, NewObject, ObjectInfo, Owner, Part, Upload


class BadRecord(ValueError):
    """A stored record that cannot be read (written by something else, or cut short)."""


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as e:
        raise BadRecord(str(e)) from None


def _owner(value: Any) -> Owner:
    return Owner(project_id=value["project_id"], display_name=value["display_name"])


def _owner_dict(owner: Owner) -> dict[str, str]:
    return {"project_id": owner.project_id, "display_name": owner.display_name}


# -- buckets ---------------------------------------------------------------------

def bucket_to_json(bucket: Bucket, incarnation: str) -> str:
    """
    @param incarnation: a random id of this creation of the bucket, so that
        an operation that began before a delete and a re-create notices.
    @return: the record of C{bucket}.
    """
    return _dumps({"name": bucket.name, "owner": _owner_dict(bucket.owner),
                   "created_at": bucket.created_at, "acl": bucket.acl,
                   "incarnation": incarnation})


def bucket_from_json(text: str) -> tuple[Bucket, str]:
    """
    @return: C{(bucket, incarnation)}.
    @raise BadRecord: not a bucket record.
    """
    try:
        d = _loads(text)
        return (Bucket(name=d["name"], owner=_owner(d["owner"]),
                       created_at=float(d["created_at"]), acl=d["acl"]),
                str(d["incarnation"]))
    except (KeyError, TypeError, ValueError) as e:
        raise BadRecord(f"bad bucket record: {e}") from None


# -- listing summaries ---------------------------------------------------------------

def summary_to_json(info: ObjectInfo) -> str:
    """@return: what a listing shows of an object (no headers nor metadata)."""
    return _dumps([info.size, info.etag, info.last_modified,
                   info.owner.project_id, info.owner.display_name])


def summary_from_json(bucket: str, key: str, text: str) -> ObjectInfo:
    """
    @return: the L{ObjectInfo} of a listing (headers and metadata left empty).
    @raise BadRecord: not a summary.
    """
    try:
        size, etag, last_modified, project_id, display_name = _loads(text)
        return ObjectInfo(bucket=bucket, key=key, size=int(size), etag=etag,
                          last_modified=float(last_modified),
                          owner=Owner(project_id=project_id, display_name=display_name))
    except (TypeError, ValueError) as e:
        raise BadRecord(f"bad object summary: {e}") from None


# -- multipart uploads ------------------------------------------------------------------

def new_object_dict(new: NewObject) -> dict[str, Any]:
    """@return: C{new} as a JSON-able dict."""
    return {"content_type": new.content_type, "headers": dict(new.headers),
            "metadata": dict(new.metadata), "owner": _owner_dict(new.owner), "acl": new.acl}


def new_object_from_dict(d: Any) -> NewObject:
    """@return: the L{NewObject} that L{new_object_dict} made C{d} from."""
    return NewObject(content_type=d["content_type"], headers=dict(d["headers"]),
                     metadata=dict(d["metadata"]), owner=_owner(d["owner"]), acl=d["acl"])


def upload_to_json(upload: Upload) -> str:
    """@return: the record of an upload (in the datastore and in its C{upload.json})."""
    return _dumps({"upload_id": upload.upload_id, "bucket": upload.bucket, "key": upload.key,
                   "initiated": upload.initiated,
                   "new_object": new_object_dict(upload.new_object)})


def upload_from_json(text: str) -> Upload:
    """
    @return: the upload a record describes.
    @raise BadRecord: not an upload record.
    """
    try:
        d = _loads(text)
        return Upload(upload_id=d["upload_id"], bucket=d["bucket"], key=d["key"],
                      initiated=float(d["initiated"]),
                      new_object=new_object_from_dict(d["new_object"]))
    except (KeyError, TypeError, ValueError) as e:
        raise BadRecord(f"bad upload record: {e}") from None


def part_to_json(part: Part) -> str:
    """@return: the record of a part (the part number is the hash field)."""
    return _dumps([part.etag, part.size, part.last_modified])


def part_from_json(part_number: str, text: str) -> Part:
    """
    @return: the part a record describes.
    @raise BadRecord: not a part record.
    """
    try:
        etag, size, last_modified = _loads(text)
        return Part(part_number=int(part_number), etag=etag, size=int(size),
                    last_modified=float(last_modified))
    except (TypeError, ValueError) as e:
        raise BadRecord(f"bad part record: {e}") from None


def part_from_header(header: dict[str, Any]) -> Part:
    """
    @return: the part a part file's header describes.
    @raise BadRecord: not a part header.
    """
    try:
        if header["kind"] != "part":
            raise BadRecord("not a part file")
        return Part(part_number=int(header["part_number"]), etag=header["etag"],
                    size=int(header["size"]), last_modified=float(header["last_modified"]))
    except (KeyError, TypeError, ValueError) as e:
        raise BadRecord(f"bad part header: {e}") from None
