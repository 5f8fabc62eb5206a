"""
EC2 Query API responses and errors as XML.

EC2 responses are plain nested elements: a dict becomes child elements, a list
becomes a sequence of C{<item>} elements, booleans are C{true}/C{false}, and
C{None} leaves the element out. The namespace echoes the API version the
client asked for, as 2010 nova did, so old and new clients parse it.
"""

from __future__ import annotations

import datetime
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
    if not isinstance(value, datetime.datetime):
        value = datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _render_value(parts: list[str], value: Any) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            _render_element(parts, key, child)
    elif isinstance(value, (list, tuple)):
        for child in value:
            _render_element(parts, "item", child)
    elif isinstance(value, bool):
        parts.append("true" if value else "false")
    elif isinstance(value, datetime.datetime):
        parts.append(format_timestamp(value))
    else:
        parts.append(escape(str(value)))


def _render_element(parts: list[str], name: str, value: Any) -> None:
    if value is None:
        return
    parts.append(f"<{name}>")
    _render_value(parts, value)
    parts.append(f"</{name}>")


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
