"""
EC2 Query API responses and errors as XML.

EC2 responses are plain nested elements: a dict becomes child elements, a list
becomes a sequence of C{<item>} elements, booleans are C{true}/C{false}, and
C{None} leaves the element out. The namespace echoes the API version the
client asked for, as 2010 nova did, so old and new clients parse it.
"""

from __future__ import annotations

import datetime
import math
import time
from typing import Any
from xml.sax.saxutils import escape

DEFAULT_VERSION = "2016-11-15"


def _namespace(version: str | None) -> str:
    # Only echo versions shaped like a date: anything else is client input
    # that must not end up in our XML unescaped or misleading.
    if version and len(version) == 10 and version[4] == "-" and version[7] == "-" \
            and version.replace("-", "").isdigit():
        return f"http://ec2.amazonaws.com/doc/{version}/"
    return f"http://ec2.amazonaws.com/doc/{DEFAULT_VERSION}/"


def format_timestamp(value: float | datetime.datetime) -> str:
    """@return: an ISO 8601 UTC timestamp with milliseconds, as EC2 prints them."""
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    # (time.gmtime is several times cheaper than a datetime: this runs once
    # per instance of a DescribeInstances answer)
    fraction, whole = math.modf(value)  # rounded as datetime.fromtimestamp rounds
    seconds, micro = int(whole), round(fraction * 1_000_000)
    if micro >= 1_000_000:
        seconds, micro = seconds + 1, micro - 1_000_000
    t = time.gmtime(seconds)
    return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:"
            f"{t.tm_sec:02d}.{micro // 1000:03d}Z")


class RenderOnce(dict):  # type: ignore[type-arg]
    """
    A part of a response that renders to the same XML whenever it is shown
    (an instance that did not change since the last DescribeInstances): its
    XML is made on first use and kept. It must not be changed after that.
    """

    xml: str | None = None


def _text(value: Any) -> str:
    kind = type(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int or kind is float:
        return str(value)
    if isinstance(value, datetime.datetime):
        return format_timestamp(value)
    text = value if kind is str else str(value)
    # most values need no escaping: skip the three replacements for them
    if "&" in text or "<" in text or ">" in text:
        text = escape(text)
    return text


def _render_value(parts: list[str], value: Any) -> None:
    if isinstance(value, dict):
        _render_items(parts, value.items())
    elif isinstance(value, (list, tuple)):
        _render_items(parts, (("item", child) for child in value))
    else:
        parts.append(_text(value))


def _render_items(parts: list[str], items: Any) -> None:
    # The hot path of large answers (DescribeInstances of 1,000 instances is
    # ~40,000 elements): leaves are written in one piece, None is skipped here.
    append = parts.append
    for name, child in items:
        if child is None:
            continue
        if isinstance(child, dict):
            if type(child) is RenderOnce:
                if child.xml is None:
                    inner: list[str] = []
                    _render_items(inner, child.items())
                    child.xml = "".join(inner)
                append(f"<{name}>{child.xml}</{name}>")
                continue
            append(f"<{name}>")
            _render_items(parts, child.items())
            append(f"</{name}>")
        elif isinstance(child, (list, tuple)):
            append(f"<{name}>")
            _render_items(parts, (("item", c) for c in child))
            append(f"</{name}>")
        else:
            append(f"<{name}>{_text(child)}</{name}>")


def render_response(action: str, request_id: str, body: dict[str, Any],
                    version: str | None = None) -> bytes:
    """
    Render a successful response.

    @param action: the EC2 action, e.g. C{DescribeKeyPairs}.
    @param body: the response's fields, in document order.
    @param version: the C{Version} the client sent.
    @return: the UTF-8 XML document.
    """
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n',
             f'<{action}Response xmlns="{_namespace(version)}">',
             f"<requestId>{escape(request_id)}</requestId>"]
    _render_value(parts, body)
    parts.append(f"</{action}Response>")
    return "".join(parts).encode("utf-8")


def render_error(code: str, message: str, request_id: str) -> bytes:
    """@return: an EC2 error document, which boto 2 and botocore both parse."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{escape(code)}</Code>"
        f"<Message>{escape(message)}</Message></Error></Errors>"
        f"<RequestID>{escape(request_id)}</RequestID></Response>"
    ).encode("utf-8")
