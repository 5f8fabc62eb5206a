"""
The on-disk format of an object (and of a multipart part): one file holding
a small header, then the body.

::

    offset 0   magic  b"novaobj1"                       8 bytes
    offset 8   header length, big-endian                4 bytes
    offset 12  data offset (where the body starts)      8 bytes
    offset 20  header: JSON, UTF-8                      header length bytes
    ...        zeros up to the data offset
    data_offset  the body

A writer streams the body from L{DATA_OFFSET} (one page in) before the
metadata is known, and the header is written into the page left in front of
it when the object is committed; the file is then renamed into place. So
the metadata and the body of a version live and die together: a reader that
opened the file keeps reading that version whatever renames follow.

A header too big for the first page (huge user metadata) is handled by the
writer, which then copies the body behind a larger header (see
L{nova.objectstore.store.writer}).
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

from nova.objectstore.errors import S3Error
from nova.objectstore.interfaces import ObjectInfo, Owner

MAGIC = b"novaobj1"
_PREFIX = struct.Struct(">8sIQ")

#: where a writer puts the body: one page in, room for any usual header
DATA_OFFSET = 4096

#: a header longer than this is not one we wrote
MAX_HEADER = 1 << 20


class CorruptObjectFile(S3Error):
    """An object file that does not hold what the store wrote."""

    code = "InternalError"
    status = 500


def header_room(data_offset: int) -> int:
    """@return: how many bytes of JSON fit in front of a body at C{data_offset}."""
    return data_offset - _PREFIX.size


def needed_offset(header_len: int) -> int:
    """@return: the smallest page-aligned data offset with room for a header of C{header_len}."""
    need = _PREFIX.size + header_len
    return max(DATA_OFFSET, -(-need // DATA_OFFSET) * DATA_OFFSET)


def encode_header(header: dict[str, Any], data_offset: int) -> bytes:
    """
    @return: the prefix and JSON of C{header}, to write at offset 0 of a file
        whose body starts at C{data_offset}.
    @raise ValueError: it does not fit in front of the body.
    """
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    body = text.encode("utf-8")
    if len(body) > header_room(data_offset):
        raise ValueError(f"a header of {len(body)} bytes does not fit before offset {data_offset}")
    return _PREFIX.pack(MAGIC, len(body), data_offset) + body


def encode_header_page(header: dict[str, Any]) -> bytes | None:
    """
    @return: the first L{DATA_OFFSET} bytes of a file whose body starts
        there (prefix, JSON, zeros), or C{None} when C{header} does not fit.
    """
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    body = text.encode("utf-8")
    if len(body) > header_room(DATA_OFFSET):
        return None
    head = _PREFIX.pack(MAGIC, len(body), DATA_OFFSET) + body
    return head + bytes(DATA_OFFSET - len(head))


def header_json_length(header: dict[str, Any]) -> int:
    """@return: how long the JSON of C{header} is, in bytes."""
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return len(text.encode("utf-8"))


def read_header(fd: int) -> tuple[dict[str, Any], int, int]:
    """
    Read the header of an open object or part file (a small read).

    @return: C{(header, data_offset, body size)}; the body size is what the
        file holds behind the header.
    @raise CorruptObjectFile: not a file in this format, or cut short.
    """
    first = os.pread(fd, DATA_OFFSET, 0)
    if len(first) < _PREFIX.size:
        raise CorruptObjectFile("object file too short for its header")
    magic, length, data_offset = _PREFIX.unpack_from(first)
    if magic != MAGIC or length > MAX_HEADER or data_offset < _PREFIX.size + length:
        raise CorruptObjectFile("not an object file of this store")
    raw = first[_PREFIX.size:_PREFIX.size + length]
    if len(raw) < length:
        raw += os.pread(fd, length - len(raw), _PREFIX.size + len(raw))
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise CorruptObjectFile("unreadable object header") from None
    if not isinstance(header, dict):
        raise CorruptObjectFile("unreadable object header")
    on_disk = os.fstat(fd).st_size - data_offset
    return header, data_offset, on_disk


def object_header(info: ObjectInfo, sha256: str | None = None) -> dict[str, Any]:
    """@return: the header of an object file for C{info} (and the body's SHA-256, if known)."""
    header: dict[str, Any] = {
        "kind": "object", "bucket": info.bucket, "key": info.key, "size": info.size,
        "etag": info.etag, "last_modified": info.last_modified,
        "content_type": info.content_type, "headers": dict(info.headers),
        "metadata": dict(info.metadata), "acl": info.acl,
        "owner": {"project_id": info.owner.project_id,
                  "display_name": info.owner.display_name},
    }
    if sha256 is not None:
        header["sha256"] = sha256
    return header


def info_from_header(header: dict[str, Any]) -> ObjectInfo:
    """
    @return: the L{ObjectInfo} an object header describes.
    @raise CorruptObjectFile: not an object header.
    """
    try:
        if header["kind"] != "object":
            raise CorruptObjectFile("not an object file")
        owner = header["owner"]
        return ObjectInfo(
            bucket=header["bucket"], key=header["key"], size=int(header["size"]),
            etag=header["etag"], last_modified=float(header["last_modified"]),
            content_type=header["content_type"], headers=dict(header["headers"]),
            metadata=dict(header["metadata"]), acl=header["acl"],
            owner=Owner(project_id=owner["project_id"], display_name=owner["display_name"]))
    except (KeyError, TypeError, ValueError):
        raise CorruptObjectFile("incomplete object header") from None


def part_header(upload_id: str, part_number: int, etag: str, size: int,
                last_modified: float) -> dict[str, Any]:
    """@return: the header of a part file."""
    return {"kind": "part", "upload_id": upload_id, "part_number": part_number,
            "etag": etag, "size": size, "last_modified": last_modified}
