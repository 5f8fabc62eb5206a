"""
ListObjects (version 1) and ListObjectsV2 over the store's paged listing.

Version 2's continuation token is opaque to clients; here it is the
URL-safe base64 of the key (or common prefix) to continue after, so a
token is valid as long as the bucket is.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from nova.objectstore.errors import InvalidArgument
from nova.objectstore.http import xmlrender
from nova.objectstore.http.auth import canonical_id
from nova.objectstore.http.call import Response, S3Call
from nova.objectstore.http.common import bucket_for
from nova.objectstore.http.errors import with_fields
from nova.objectstore.interfaces import Listing

#: the most keys one listing page returns (S3's limit)
MAX_KEYS = 1000


def max_keys(call: S3Call, name: str = "max-keys", limit: int = MAX_KEYS) -> int:
    """
    @return: the page size asked for (at most C{limit}; C{limit} by default).
    @raise InvalidArgument: not a non-negative integer.
    """
    value = call.route.param(name)
    if value is None or value == "":
        return limit
    if not value.isdigit():
        raise with_fields(InvalidArgument("Provided max-keys not an integer or within "
                                          "integer range"),
                          ArgumentName=name, ArgumentValue=value)
    return min(int(value), limit)


def encoding_type(call: S3Call) -> str | None:
    """
    @return: C{"url"} when the client asked for URL-encoded keys, else C{None}.
    @raise InvalidArgument: another encoding.
    """
    value = call.route.param("encoding-type")
    if value is None:
        return None
    if value.lower() != "url":
        raise with_fields(InvalidArgument("Invalid Encoding Method specified in Request"),
                          ArgumentName="encoding-type", ArgumentValue=value)
    return "url"


def encode_token(after: str) -> str:
    """@return: the continuation token that continues after C{after}."""
    return base64.urlsafe_b64encode(after.encode("utf-8")).decode("ascii")


def decode_token(token: str) -> str:
    """
    @return: the key a continuation token continues after.
    @raise InvalidArgument: not a token this store made.
    """
    try:
        return base64.b64decode(token.encode("ascii"), altchars=b"-_",
                                validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeError):
        raise with_fields(InvalidArgument("The continuation token provided is incorrect"),
                          ArgumentName="continuation-token", ArgumentValue=token) from None


async def _page(service: Any, bucket: str, prefix: str, delimiter: str, after: str,
                count: int) -> Listing:
    if count == 0:
        return Listing(contents=(), common_prefixes=(), is_truncated=False, next_marker=None)
    return await service.store.list_objects(bucket, prefix=prefix, delimiter=delimiter,
                                            after=after, max_keys=count)


async def list_objects(service: Any, call: S3Call) -> Response:
    """ListObjects (version 1): prefix, delimiter, marker, max-keys."""
    bucket = await bucket_for(service, call, "READ")
    params = {
        "prefix": call.route.param("prefix") or "",
        "delimiter": call.route.param("delimiter") or "",
        "marker": call.route.param("marker") or "",
        "max_keys": max_keys(call),
        "encoding": encoding_type(call),
    }
    listing = await _page(service, bucket.name, params["prefix"], params["delimiter"],
                          params["marker"], params["max_keys"])
    return Response.xml(xmlrender.list_objects_v1(bucket.name, params, listing, canonical_id))


async def list_objects_v2(service: Any, call: S3Call) -> Response:
    """ListObjectsV2: continuation-token, start-after, fetch-owner, KeyCount."""
    bucket = await bucket_for(service, call, "READ")
    token = call.route.param("continuation-token")
    start_after = call.route.param("start-after") or ""
    if token is not None:
        after = decode_token(token)
    else:
        after = start_after
    params = {
        "prefix": call.route.param("prefix") or "",
        "delimiter": call.route.param("delimiter") or "",
        "max_keys": max_keys(call),
        "encoding": encoding_type(call),
        "continuation_token": token,
        "start_after": start_after,
        "fetch_owner": (call.route.param("fetch-owner") or "").lower() == "true",
    }
    listing = await _page(service, bucket.name, params["prefix"], params["delimiter"],
                          after, params["max_keys"])
    next_token = None
    if listing.is_truncated and listing.next_marker is not None:
        next_token = encode_token(listing.next_marker)
    return Response.xml(xmlrender.list_objects_v2(bucket.name, params, listing, next_token,
                                                  canonical_id))


__all__ = ["MAX_KEYS", "decode_token", "encode_token", "encoding_type", "list_objects",
           "list_objects_v2", "max_keys"]
