"""
The C{Range} header of GetObject and the C{x-amz-copy-source-range} of
UploadPartCopy, as S3 reads them: one byte range; a header S3 cannot read
is ignored (the whole object is sent), an unsatisfiable one is
C{InvalidRange} (416).
"""

from __future__ import annotations

import re

from nova.objectstore.errors import InvalidArgument, InvalidRange
from nova.objectstore.http.errors import with_fields

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """
    Read a C{Range} header against an object of C{size} bytes.

    C{bytes=a-b}, C{bytes=a-} and C{bytes=-n} (the last C{n} bytes) are
    understood; a C{b} past the end is cut to the end. Anything else
    (several ranges, other units, garbage) is ignored as S3 ignores it.

    @param header: the header value, or C{None}.
    @param size: the object's size.
    @return: C{(first, last)} inclusive, or C{None} for the whole object.
    @raise InvalidRange: the range is well formed but no byte of the object
        is in it.
    """
    if header is None:
        return None
    match = _RANGE.match(header)
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text and not last_text:
        return None
    if not first_text:
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise _unsatisfiable(header, size)
        return max(0, size - suffix), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None  # RFC 9110: an invalid range-spec; S3 sends the whole object
    if first >= size:
        raise _unsatisfiable(header, size)
    return first, min(last, size - 1)


def _unsatisfiable(header: str, size: int) -> InvalidRange:
    error = with_fields(InvalidRange("The requested range is not satisfiable"),
                        RangeRequested=header.strip(), ActualObjectSize=str(size))
    error.s3_headers = [("Content-Range", f"bytes */{size}")]  # type: ignore[attr-defined]
    return error


def content_range(first: int, last: int, size: int) -> str:
    """@return: the C{Content-Range} value of a 206 answer."""
    return f"bytes {first}-{last}/{size}"


_COPY_RANGE = re.compile(r"^bytes=(\d+)-(\d+)$")


def parse_copy_range(header: str, size: int) -> tuple[int, int]:
    """
    Read UploadPartCopy's C{x-amz-copy-source-range} (C{bytes=first-last},
    both required, as S3 requires).

    @param header: the header value.
    @param size: the source object's size.
    @return: C{(first, last)} inclusive.
    @raise InvalidArgument: not of that form, or C{last < first}.
    @raise InvalidRange: the range goes past the end of the source.
    """
    match = _COPY_RANGE.match(header.strip())
    if match is None:
        raise InvalidArgument("The x-amz-copy-source-range value must be of the form "
                              "bytes=first-last where first and last are the zero-based "
                              "offsets of the first and last bytes to copy")
    first, last = int(match.group(1)), int(match.group(2))
    if last < first:
        raise InvalidArgument("The x-amz-copy-source-range value must be of the form "
                              "bytes=first-last where first <= last")
    if last >= size:
        raise with_fields(InvalidRange("The requested range is not satisfiable"),
                          RangeRequested=header.strip(), ActualObjectSize=str(size))
    return first, last


__all__ = ["content_range", "parse_copy_range", "parse_range"]
