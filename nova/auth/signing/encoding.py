"""
Percent-encoding, query parsing and timestamps the AWS signature schemes share.

Strings that came off the wire are kept as C{str} decoded from UTF-8 with
C{surrogateescape}, so that bytes which are not UTF-8 survive a round trip
into the string that is signed.
"""

from __future__ import annotations

import calendar
import datetime
import email.utils
import re
import time
from urllib.parse import quote, unquote, unquote_plus

#: The SigV4/SigV2 timestamp formats.
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
ISO8601_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

_AMZ_DATE_RE = re.compile(r"^(\d{8})T(\d{6})Z$")
_ISO8601_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d+)?"
    r"(Z|[+-]\d{2}:?\d{2})?$")


def aws_quote(value: str, safe: str = "") -> str:
    """
    Percent-encode the way AWS signatures want it (RFC 3986).

    Every byte of the UTF-8 form is encoded except the unreserved characters
    C{A-Z a-z 0-9 - _ . ~} and those in C{safe}; hex digits are upper case.

    @param value: the text to encode.
    @param safe: extra characters to leave alone (C{"/"} for paths).
    @return: the encoded text.
    """
    return quote(value, safe=safe, encoding="utf-8", errors="surrogateescape")


def aws_unquote(value: str, plus_as_space: bool = False) -> str:
    """
    Decode percent-escapes, keeping bytes that are not UTF-8 as surrogates.

    @param value: the encoded text.
    @param plus_as_space: decode C{+} as a space (form bodies) rather than
        keeping it (URL query strings, where AWS clients always send C{%20}).
    @return: the decoded text.
    """
    if plus_as_space:
        return unquote_plus(value, encoding="utf-8", errors="surrogateescape")
    return unquote(value, encoding="utf-8", errors="surrogateescape")


def parse_query(raw: str, plus_as_space: bool = False) -> list[tuple[str, str]]:
    """
    Split a query string (or a form body) into decoded pairs, order kept.

    A name without C{=} gets the empty string as its value; empty pieces
    (C{a=1&&b=2}) are skipped.

    @param raw: the text after C{?}, still percent-encoded.
    @param plus_as_space: see L{aws_unquote}.
    @return: the list of C{(name, value)} pairs.
    """
    pairs = []
    for piece in raw.split("&"):
        if not piece:
            continue
        name, _, value = piece.partition("=")
        pairs.append((aws_unquote(name, plus_as_space),
                      aws_unquote(value, plus_as_space)))
    return pairs


def decode_wire(value: bytes | str) -> str:
    """
    Turn bytes from the wire into the C{str} form used in this package.

    @param value: bytes (decoded as UTF-8 with C{surrogateescape}) or text.
    @return: the text.
    """
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value


def encode_wire(value: str) -> bytes:
    """
    The inverse of L{decode_wire}: the bytes that get hashed or signed.

    @param value: text, possibly with surrogate-escaped bytes.
    @return: its UTF-8 bytes.
    """
    return value.encode("utf-8", "surrogateescape")


def parse_amz_date(value: str) -> float | None:
    """
    Parse a SigV4 timestamp (ISO 8601 basic format, C{20130524T000000Z}).

    @param value: the C{X-Amz-Date} value.
    @return: seconds since the epoch, or C{None} when it is not of that form.
    """
    if not _AMZ_DATE_RE.match(value):
        return None
    try:
        parsed = time.strptime(value, AMZ_DATE_FORMAT)
    except ValueError:
        return None
    return float(calendar.timegm(parsed))


def parse_iso8601(value: str) -> float | None:
    """
    Parse an EC2 SigV2 C{Timestamp}/C{Expires} value.

    Accepts C{2011-10-03T15:19:30}, with an optional fraction, and a C{Z} or
    numeric offset; a value without a zone is UTC, as AWS reads it.

    @param value: the parameter value.
    @return: seconds since the epoch, or C{None} when it cannot be read.
    """
    match = _ISO8601_RE.match(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = datetime.datetime(int(year), int(month), int(day), int(hour),
                                   int(minute), int(second),
                                   tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    seconds = moment.timestamp() + (float(fraction) if fraction else 0.0)
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset = int(digits[:2]) * 3600 + int(digits[2:]) * 60
        seconds -= sign * offset
    return seconds


def parse_http_date(value: str) -> float | None:
    """
    Parse an HTTP C{Date} (RFC 1123, RFC 850 or asctime) or an ISO 8601 date.

    @param value: the header value.
    @return: seconds since the epoch, or C{None} when it cannot be read.
    """
    value = value.strip()
    if not value:
        return None
    basic = parse_amz_date(value)
    if basic is not None:
        return basic
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return parse_iso8601(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def format_amz_date(when: float) -> str:
    """
    Format seconds since the epoch as a SigV4 timestamp.

    @param when: seconds since the epoch.
    @return: e.g. C{20130524T000000Z}.
    """
    return time.strftime(AMZ_DATE_FORMAT, time.gmtime(when))


def format_iso8601(when: float) -> str:
    """
    Format seconds since the epoch as an EC2 SigV2 C{Timestamp}.

    @param when: seconds since the epoch.
    @return: e.g. C{2011-10-03T15:19:30Z}.
    """
    return time.strftime(ISO8601_FORMAT, time.gmtime(when))
