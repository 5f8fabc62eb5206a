"""
Conditional requests as S3 evaluates them: C{If-Match}, C{If-None-Match},
C{If-Modified-Since}, C{If-Unmodified-Since} on GetObject/HeadObject, and
the C{x-amz-copy-source-if-*} headers of CopyObject and UploadPartCopy.

The precedence is RFC 9110's (13.2.2), which is also what the S3 reference
describes: If-Match, else If-Unmodified-Since; then If-None-Match, else
If-Modified-Since. Dates compare at one-second resolution; a date that
cannot be read is ignored.
"""

from __future__ import annotations

import datetime
import email.utils
import math
from typing import Mapping

from nova.objectstore.errors import NotModified, PreconditionFailed
from nova.objectstore.http.errors import with_fields


def _http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def etag_matches(header: str, etag: str) -> bool:
    """
    @param header: an C{If-Match}/C{If-None-Match} value: C{*} or a list of
        entity tags, quoted or not, possibly weak (C{W/"..."}).
    @param etag: the object's entity tag without quotes.
    @return: whether one of them is C{etag} (or the header is C{*}).
    """
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*":
            return True
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate.strip('"') == etag:
            return True
    return False


def _modified_since(last_modified: float, since: float) -> bool:
    return math.floor(last_modified) > math.floor(since)


def check_conditions(headers: Mapping[str, str], etag: str, last_modified: float) -> None:
    """
    Evaluate a GET/HEAD's preconditions against an object.

    @param headers: lower-case header names to values.
    @param etag: the object's entity tag, without quotes.
    @param last_modified: the object's time, seconds since the epoch.
    @raise PreconditionFailed: If-Match or If-Unmodified-Since failed (412).
    @raise NotModified: If-None-Match or If-Modified-Since failed (304).
    """
    if_match = headers.get("if-match")
    if if_match is not None:
        if not etag_matches(if_match, etag):
            raise failed("If-Match")
    else:
        since = _http_date(headers.get("if-unmodified-since"))
        if since is not None and _modified_since(last_modified, since):
            raise failed("If-Unmodified-Since")
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        if etag_matches(if_none_match, etag):
            raise NotModified()
    else:
        since = _http_date(headers.get("if-modified-since"))
        if since is not None and not _modified_since(last_modified, since):
            raise NotModified()


def check_copy_conditions(headers: Mapping[str, str], etag: str, last_modified: float) -> None:
    """
    Evaluate the C{x-amz-copy-source-if-*} headers against the source object.

    As S3 documents: If-Match true makes If-Unmodified-Since irrelevant, and
    If-None-Match false with If-Modified-Since true still fails; every
    failure is C{PreconditionFailed} (there is no 304 for a copy).

    @param headers: lower-case header names to values.
    @param etag: the source's entity tag, without quotes.
    @param last_modified: the source's time.
    @raise PreconditionFailed: a condition failed.
    """
    prefix = "x-amz-copy-source-"
    if_match = headers.get(prefix + "if-match")
    if if_match is not None:
        if not etag_matches(if_match, etag):
            raise failed("x-amz-copy-source-If-Match")
    else:
        since = _http_date(headers.get(prefix + "if-unmodified-since"))
        if since is not None and _modified_since(last_modified, since):
            raise failed("x-amz-copy-source-If-Unmodified-Since")
    if_none_match = headers.get(prefix + "if-none-match")
    if if_none_match is not None:
        if etag_matches(if_none_match, etag):
            raise failed("x-amz-copy-source-If-None-Match")
    else:
        since = _http_date(headers.get(prefix + "if-modified-since"))
        if since is not None and not _modified_since(last_modified, since):
            raise failed("x-amz-copy-source-If-Modified-Since")


def failed(name: str) -> PreconditionFailed:
    """@return: the error of a failed precondition C{name}, naming it as S3 does."""
    return with_fields(PreconditionFailed(
        "At least one of the pre-conditions you specified did not hold"), Condition=name)


__all__ = ["check_conditions", "check_copy_conditions", "etag_matches"]
