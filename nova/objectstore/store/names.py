"""
The rules for names that come from users: bucket names (S3's rules), object
keys (any UTF-8 up to 1024 bytes), upload ids, part numbers, canned ACLs.

None of these names ever becomes a file name as given: object files are
named by a hash (L{nova.objectstore.store.layout}), so a key such as
C{../../etc/passwd} or one holding NUL is only data.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets

from nova.objectstore import errors
from nova.objectstore.interfaces import CANNED_ACLS

#: the longest key S3 accepts, in bytes of UTF-8
MAX_KEY_BYTES = 1024

#: part numbers S3 accepts in a multipart upload
MIN_PART_NUMBER, MAX_PART_NUMBER = 1, 10000

_BUCKET_CHARS = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]\Z")
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}\Z")


def check_bucket_name(name: object) -> str:
    """
    Check a name for a new bucket against S3's rules: 3 to 63 characters of
    lowercase letters, digits, C{.} and C{-}; starting and ending with a
    letter or digit; no C{..}; not an IP address; none of the prefixes and
    suffixes S3 reserves (C{xn--}, C{sthree-}, C{-s3alias}, C{--ol-s3}).

    @return: C{name}.
    @raise InvalidBucketName: it breaks a rule.
    """
    if not isinstance(name, str) or not _BUCKET_CHARS.match(name):
        raise errors.InvalidBucketName(
            f"bucket names are 3 to 63 lowercase letters, digits, '.' and '-', "
            f"starting and ending with a letter or digit: {name!r}")
    if ".." in name:
        raise errors.InvalidBucketName(f"bucket names may not hold '..': {name!r}")
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        pass
    else:
        raise errors.InvalidBucketName(f"bucket names may not be IP addresses: {name!r}")
    if name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3")):
        raise errors.InvalidBucketName(f"bucket name with a reserved prefix or suffix: {name!r}")
    return name


def is_bucket_name(name: object) -> bool:
    """@return: whether C{name} could name a bucket (lookups of others find nothing)."""
    try:
        check_bucket_name(name)
    except errors.InvalidBucketName:
        return False
    return True


def key_bytes(key: object) -> bytes:
    """
    @return: C{key} encoded as UTF-8.
    @raise KeyTooLongError: over L{MAX_KEY_BYTES} bytes.
    @raise InvalidArgument: empty, not a str, or not encodable (a lone surrogate).
    """
    if not isinstance(key, str) or not key:
        raise errors.InvalidArgument(f"an object key is a non-empty string: {key!r}")
    try:
        raw = key.encode("utf-8")
    except UnicodeEncodeError:
        raise errors.InvalidArgument("the object key is not valid UTF-8") from None
    if len(raw) > MAX_KEY_BYTES:
        raise errors.KeyTooLongError(
            f"the key is {len(raw)} bytes of UTF-8; the limit is {MAX_KEY_BYTES}")
    return raw


def check_key(key: object) -> str:
    """@return: C{key}, checked by L{key_bytes}."""
    key_bytes(key)
    return key  # type: ignore[return-value]


def is_key(key: object) -> bool:
    """@return: whether C{key} could name an object (lookups of others find nothing)."""
    try:
        key_bytes(key)
    except (errors.KeyTooLongError, errors.InvalidArgument):
        return False
    return True


def object_digest(bucket: str, key: str) -> str:
    """
    @return: the hex SHA-256 of C{bucket NUL key}: the object's file name.
        NUL cannot occur in a bucket name, so no two (bucket, key) pairs share it.
    """
    return hashlib.sha256(bucket.encode("ascii") + b"\0" + key_bytes(key)).hexdigest()


def new_upload_id() -> str:
    """@return: a fresh, unguessable upload id (128 random bits, hex)."""
    return secrets.token_hex(16)


def is_upload_id(upload_id: object) -> bool:
    """@return: whether C{upload_id} has the form L{new_upload_id} makes (so it is safe as a path)."""
    return isinstance(upload_id, str) and bool(_UPLOAD_ID.match(upload_id))


def check_part_number(part_number: object) -> int:
    """
    @return: C{part_number}.
    @raise InvalidArgument: not an int from 1 to 10000.
    """
    if isinstance(part_number, bool) or not isinstance(part_number, int) or \
            not MIN_PART_NUMBER <= part_number <= MAX_PART_NUMBER:
        raise errors.InvalidArgument(
            f"part numbers are integers from {MIN_PART_NUMBER} to {MAX_PART_NUMBER}: "
            f"{part_number!r}")
    return part_number


def check_acl(acl: object) -> str:
    """
    @return: C{acl}.
    @raise InvalidArgument: not one of the canned ACLs.
    """
    if acl not in CANNED_ACLS:
        raise errors.InvalidArgument(
            f"unknown canned ACL {acl!r}; one of: {', '.join(CANNED_ACLS)}")
    return acl  # type: ignore[return-value]


def normalise_etag(etag: str) -> str:
    """@return: an entity tag as a client sends it, without quotes, lower case."""
    return etag.strip().strip('"').lower()
