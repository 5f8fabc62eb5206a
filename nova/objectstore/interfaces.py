"""
The seam between the object store's storage and its HTTP face.

The storage (L{nova.objectstore.store}) keeps object bodies on the local
filesystem under the state dir and the bucket records and the listing index
in the datastore (Redis). The HTTP face (L{nova.objectstore.http}) speaks S3:
it authenticates, authorises (owner project, canned ACLs), parses and renders,
and streams bodies in and out through the writers and handles defined here.

Every coroutine here raises the errors of L{nova.objectstore.errors}.
"""

from __future__ import annotations

from typing import Any, Mapping

import attr
from zope.interface import Attribute, Interface

#: the canned ACLs S3 knows and this store keeps
CANNED_ACLS = ("private", "public-read", "public-read-write", "authenticated-read")


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class Owner:
    """
    Who owns a bucket or an object: a project (the S3 account).

    @ivar project_id: the owning project; S3's canonical user id is derived from it.
    @ivar display_name: what S3 shows as DisplayName (the project id).
    """

    project_id: str
    display_name: str


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class Bucket:
    """A bucket: its owner, when it was made, its canned ACL."""

    name: str
    owner: Owner
    created_at: float
    acl: str = "private"


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class ObjectInfo:
    """
    What is known of a stored object without reading its body.

    @ivar etag: the entity tag without quotes: the hex MD5 of the body, or
        C{<hex md5 of the part md5s>-<N>} for a multipart upload.
    @ivar last_modified: seconds since the epoch.
    @ivar content_type: as given at upload (C{binary/octet-stream} by default).
    @ivar headers: the other stored standard headers, lower-case names:
        C{cache-control}, C{content-disposition}, C{content-encoding},
        C{content-language}, C{expires}.
    @ivar metadata: user metadata, the names without C{x-amz-meta-}, lower-case.
    @ivar acl: the object's canned ACL.
    """

    bucket: str
    key: str
    size: int
    etag: str
    last_modified: float
    content_type: str = "binary/octet-stream"
    headers: Mapping[str, str] = attr.Factory(dict)
    metadata: Mapping[str, str] = attr.Factory(dict)
    owner: Owner
    acl: str = "private"


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class NewObject:
    """What the uploader says about an object it writes (the rest is computed)."""

    content_type: str = "binary/octet-stream"
    headers: Mapping[str, str] = attr.Factory(dict)
    metadata: Mapping[str, str] = attr.Factory(dict)
    owner: Owner
    acl: str = "private"


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class Listing:
    """
    One page of a bucket listing (ListObjects v1 and v2 alike).

    @ivar contents: the objects on this page, in key order (UTF-8 byte order).
    @ivar common_prefixes: the rolled-up prefixes when a delimiter was given, sorted.
    @ivar is_truncated: more keys follow.
    @ivar next_marker: the last key or common prefix on this page, to continue after
        (v1's NextMarker; v2's continuation token is made from it by the HTTP layer).
    """

    contents: tuple[ObjectInfo, ...]
    common_prefixes: tuple[str, ...]
    is_truncated: bool
    next_marker: str | None


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class Upload:
    """A multipart upload in progress."""

    upload_id: str
    bucket: str
    key: str
    initiated: float
    new_object: NewObject


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class Part:
    """One uploaded part: its number, its MD5 entity tag (no quotes), size and time."""

    part_number: int
    etag: str
    size: int
    last_modified: float


class IWriter(Interface):
    """
    A body being received, streamed to a temporary file in the store.

    The HTTP face calls L{write} for each piece of the body as it arrives
    (on the reactor thread; the data goes to the page cache, and the digests
    are updated as it goes), then checks the digests against Content-MD5 and
    x-amz-content-sha256, then calls C{commit} (an object or a part) or
    L{abort}. A writer that is neither committed nor aborted leaves only a
    temporary file that the next start of the store removes.
    """

    size = Attribute("bytes written so far")

    def write(data):  # type: ignore[no-untyped-def]
        """Append C{data} (bytes). @raise EntityTooLarge: past the store's limit."""

    def md5_hex():  # type: ignore[no-untyped-def]
        """@return: the hex MD5 of what was written."""

    def md5_bytes():  # type: ignore[no-untyped-def]
        """@return: the raw MD5 of what was written (for Content-MD5)."""

    def sha256_hex():  # type: ignore[no-untyped-def]
        """@return: the hex SHA-256 of what was written (for x-amz-content-sha256)."""

    def abort():  # type: ignore[no-untyped-def]
        """Discard what was written. Idempotent."""


class IReadHandle(Interface):
    """
    An open object: a consistent snapshot (an open file) of one version,
    whatever happens to the key afterwards. Close it when done.
    """

    info = Attribute("the L{ObjectInfo} of this version")
    fileno = Attribute("callable: the open file's descriptor (for os.sendfile)")
    data_offset = Attribute("where the body starts in that file")

    def read(offset, length):  # type: ignore[no-untyped-def]
        """@return: up to C{length} bytes of the body from C{offset} (blocking, small reads)."""

    def close():  # type: ignore[no-untyped-def]
        """Close the file. Idempotent."""


class IObjectStore(Interface):
    """Buckets and objects. Bucket and key rules are checked here."""

    max_object_size = Attribute("largest single PUT, bytes (S3: 5 GiB)")

    async def create_bucket(name: str, owner: Owner, acl: str = "private") -> Bucket:
        """
        @raise InvalidBucketName: S3's naming rules broken.
        @raise BucketAlreadyOwnedByYou: it exists and C{owner} owns it.
        @raise BucketAlreadyExists: another project owns it.
        """

    async def get_bucket(name: str) -> Bucket:
        """@raise NoSuchBucket: it does not exist."""

    async def list_buckets(project_id: str | None = None) -> list[Bucket]:
        """@return: the buckets of C{project_id} (all when C{None}), by name."""

    async def delete_bucket(name: str) -> None:
        """@raise BucketNotEmpty: it has objects or uploads in progress."""

    async def set_bucket_acl(name: str, acl: str) -> Bucket:
        """@raise InvalidArgument: not one of L{CANNED_ACLS}."""

    def new_writer(bucket: str, sha256: bool = True) -> Any:
        """
        @param sha256: whether the writer computes the SHA-256 of the body;
            pass C{False} when nothing will call C{sha256_hex} (unsigned or
            chunk-signed payloads, SigV2): it saves a third of the hashing.
        @return: an L{IWriter} for a body that will become an object or a part
            in C{bucket} (the file lives on the store's filesystem, so committing
            is a rename).
        """

    async def commit_object(writer: Any, bucket: str, key: str, new: NewObject) -> ObjectInfo:
        """
        Make the writer's body the object C{bucket/key}: fsync, write the
        metadata into the file, rename it into place, update the index. A
        reader sees the old object or the new one, never a mix.

        @raise NoSuchBucket: the bucket was deleted meanwhile.
        @raise KeyTooLongError: the key is over 1024 bytes of UTF-8.
        """

    async def head_object(bucket: str, key: str) -> ObjectInfo:
        """@raise NoSuchKey: no such object (or NoSuchBucket)."""

    async def open_object(bucket: str, key: str) -> Any:
        """@return: an L{IReadHandle}. @raise NoSuchKey: no such object."""

    async def delete_object(bucket: str, key: str) -> bool:
        """@return: whether it existed (deleting a missing key is not an error in S3)."""

    async def copy_object(src_bucket: str, src_key: str, dst_bucket: str, dst_key: str,
                          new: NewObject) -> ObjectInfo:
        """Copy the body (off the reactor thread), with C{new} as its metadata."""

    async def set_object_acl(bucket: str, key: str, acl: str) -> ObjectInfo:
        """Change an object's canned ACL."""

    async def list_objects(bucket: str, prefix: str = "", delimiter: str = "",
                           after: str = "", max_keys: int = 1000) -> Listing:
        """
        One page of keys greater than C{after}, starting with C{prefix},
        rolled up at C{delimiter}. Fast with 100,000 keys in the bucket.
        """

    async def create_upload(bucket: str, key: str, new: NewObject) -> Upload:
        """Start a multipart upload."""

    async def get_upload(upload_id: str) -> Upload:
        """@raise NoSuchUpload: unknown, completed or aborted."""

    async def commit_part(writer: Any, upload_id: str, part_number: int) -> Part:
        """Store the writer's body as part C{part_number} (1..10000), replacing any."""

    async def copy_part(upload_id: str, part_number: int, src_bucket: str, src_key: str,
                        first: int | None = None, last: int | None = None) -> Part:
        """UploadPartCopy: a byte range (inclusive) of an object as a part."""

    async def list_parts(upload_id: str, after: int = 0, max_parts: int = 1000) -> list[Part]:
        """@return: the parts numbered above C{after}, in order."""

    async def complete_upload(upload_id: str, parts: list[tuple[int, str]]) -> ObjectInfo:
        """
        Join the named parts (number, etag) into the object, off the reactor.

        @raise InvalidPart: a part missing or with another etag.
        @raise InvalidPartOrder: numbers not ascending.
        @raise EntityTooSmall: a part but the last under 5 MiB.
        """

    async def abort_upload(upload_id: str) -> None:
        """Forget the upload and its parts."""

    async def list_uploads(bucket: str, prefix: str = "", key_after: str = "",
                           upload_id_after: str = "", max_uploads: int = 1000) -> list[Upload]:
        """@return: the uploads in progress, by key then initiation."""
