"""
The neutral view of a request that the signature functions read, and the
credentials that L{nova.auth.signing.identify} finds in it.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Mapping
from typing import Union

import attrs

from nova.auth.signing.encoding import decode_wire, parse_query

_Value = Union[str, bytes]
_HeaderValues = Union[_Value, Iterable[_Value]]
HeaderInput = Union[Mapping[str, _HeaderValues],
                    Iterable[tuple[_Value, _HeaderValues]]]

#: SHA-256 of the empty string, the payload hash of a request without a body.
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _pairs(value: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((str(name), str(val)) for name, val in value)


def _lower_keys(value: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): val for name, val in value.items()}


def join_headers(headers: HeaderInput) -> dict[str, str]:
    """
    Fold raw headers into lower-case names mapped to one value each.

    Repeated headers are joined with C{","} after trimming each value, which
    is both how SigV4 canonicalises them and how S3 SigV2 joins C{x-amz-*}.

    @param headers: a mapping or C{(name, value)} pairs; names and values may
        be bytes; a value may be a list of values (Twisted's
        C{getAllRawHeaders()} shape).
    @return: the folded headers.
    """
    items = headers.items() if isinstance(headers, Mapping) else headers
    collected: dict[str, list[str]] = {}
    for name, values in items:
        if isinstance(values, (str, bytes)):
            values = [values]
        bucket = collected.setdefault(decode_wire(name).lower(), [])
        bucket.extend(decode_wire(v).strip() for v in values)
    return {name: ",".join(values) for name, values in collected.items()}


@attrs.frozen
class SignedRequest:
    """
    What the signature checks need to know about one HTTP request.

    @ivar method: the HTTP verb, upper case.
    @ivar host: the C{Host} header value, with the port if the client sent one.
    @ivar path: the request path exactly as sent, still percent-encoded.
    @ivar query: the decoded query pairs, in the order sent.
    @ivar headers: lower-case header names to values; repeated headers are
        joined with C{","} (see L{join_headers}).
    @ivar payload_sha256: hex SHA-256 of the body when the caller knows it.
    @ivar body_params: decoded parameters of an C{x-www-form-urlencoded}
        body (the EC2 Query API accepts its parameters there).
    @ivar raw_query: the query string as sent, when known; S3 SigV2 uses it to
        tell C{?acl} from C{?acl=}.
    @ivar virtual_bucket: for S3, the bucket the C{Host} header names
        (virtual-hosted style), as the front end decided (see
        L{nova.auth.signing.s3v2.bucket_from_host}); C{None} for path style.
    """

    method: str = attrs.field(converter=str.upper)
    host: str
    path: str
    query: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_pairs)
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_lower_keys)
    payload_sha256: str | None = None
    body_params: tuple[tuple[str, str], ...] = attrs.field(default=(),
                                                           converter=_pairs)
    raw_query: str | None = None
    virtual_bucket: str | None = None

    @classmethod
    def from_parts(cls, method: _Value, uri: _Value, headers: HeaderInput,
                   body: bytes | None = None, *, form_body: bool | None = None,
                   virtual_bucket: str | None = None) -> SignedRequest:
        """
        Build the view from what an HTTP server hands over.

        @param method: the HTTP verb.
        @param uri: the request target as sent (C{/path?query}; an absolute
            C{http://host/path?query} target is reduced to its path and query).
        @param headers: the raw headers (see L{join_headers}).
        @param body: the whole body when it was read, else C{None} (its hash
            is then unknown; S3 streams bodies and checks the hash later).
        @param form_body: decode C{body} as C{x-www-form-urlencoded}
            parameters; C{None} means "when it is a POST with that content
            type".
        @param virtual_bucket: see L{SignedRequest.virtual_bucket}.
        @return: the request view.
        """
        text_uri = decode_wire(uri)
        if text_uri.startswith(("http://", "https://")):
            # absolute-form request target (RFC 9112 3.2.2): keep path+query
            rest = text_uri.split("://", 1)[1]
            cut = min((i for i in (rest.find("/"), rest.find("?")) if i != -1),
                      default=len(rest))
            text_uri = rest[cut:]
        path, sep, raw_query = text_uri.partition("?")
        folded = join_headers(headers)
        verb = decode_wire(method).upper()
        payload = hashlib.sha256(body).hexdigest() if body is not None else None
        if form_body is None:
            content_type = folded.get("content-type", "").lower()
            form_body = (verb == "POST" and content_type.startswith(
                "application/x-www-form-urlencoded"))
        params: list[tuple[str, str]] = []
        if form_body and body:
            params = parse_query(decode_wire(body), plus_as_space=True)
        return cls(method=verb, host=folded.get("host", ""), path=path or "/",
                   query=parse_query(raw_query), headers=folded,
                   payload_sha256=payload, body_params=params,
                   raw_query=raw_query if sep else None,
                   virtual_bucket=virtual_bucket)

    def query_value(self, name: str) -> str | None:
        """
        @param name: a query parameter name (case-sensitive).
        @return: the first value of that query parameter, or C{None}.
        """
        for key, value in self.query:
            if key == name:
                return value
        return None

    def all_params(self) -> list[tuple[str, str]]:
        """
        @return: the query pairs followed by the form body pairs (the EC2
            Query API reads its parameters from both).
        """
        return list(self.query) + list(self.body_params)


class Scheme(enum.Enum):
    """The ways a request can be signed."""

    EC2_V2 = "ec2-sigv2"
    SIGV4_HEADER = "sigv4-header"
    SIGV4_QUERY = "sigv4-query"
    S3_V2_HEADER = "s3-sigv2-header"
    S3_V2_QUERY = "s3-sigv2-query"


@attrs.frozen
class Scope:
    """
    A SigV4 credential scope, C{date/region/service/aws4_request}.

    @ivar date: C{YYYYMMDD}.
    @ivar region: the region the client named; any string is accepted.
    @ivar service: the service name the client signed for.
    """

    date: str
    region: str
    service: str

    @property
    def value(self) -> str:
        """@return: the scope as it appears in the string to sign."""
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


@attrs.frozen
class Credentials:
    """
    What a request claims, as found by C{identify_ec2}/C{identify_s3}.

    The caller looks the secret key up by L{access_key} and hands both to
    C{verify}.

    @ivar access_key: the access key id the client sent (for nova, possibly
        C{access:project}).
    @ivar scheme: the signature scheme.
    @ivar service: C{"ec2"} or C{"s3"}: the API the request was identified for.
    @ivar signature: the signature the client sent.
    @ivar signature_method: EC2 SigV2: C{HmacSHA256} or C{HmacSHA1}.
    @ivar timestamp: the signing time as sent: EC2 SigV2 C{Timestamp}, S3
        SigV2 C{Date}/C{x-amz-date}, SigV4 C{X-Amz-Date} (basic format).
    @ivar expires: as sent: EC2 SigV2 C{Expires} (ISO 8601), S3 SigV2
        C{Expires} (epoch seconds), SigV4 C{X-Amz-Expires} (seconds).
    @ivar scope: the SigV4 credential scope.
    @ivar signed_headers: the SigV4 signed header names, in the order sent.
    @ivar content_sha256: S3 SigV4: the C{x-amz-content-sha256} value
        (a hex digest, C{UNSIGNED-PAYLOAD} or a C{STREAMING-...} marker).
    """

    access_key: str
    scheme: Scheme
    service: str
    signature: str
    signature_method: str | None = None
    timestamp: str | None = None
    expires: str | None = None
    scope: Scope | None = None
    signed_headers: tuple[str, ...] = ()
    content_sha256: str | None = None

    @property
    def region(self) -> str | None:
        """@return: the SigV4 region the client signed for, else C{None}."""
        return self.scope.region if self.scope is not None else None

    @property
    def is_presigned(self) -> bool:
        """@return: whether the signature travels in the query string."""
        return self.scheme in (Scheme.SIGV4_QUERY, Scheme.S3_V2_QUERY)

    @property
    def is_streaming(self) -> bool:
        """
        @return: whether the body is C{aws-chunked} with chunk signatures
            (C{STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]}).
        """
        return (self.content_sha256 or "").startswith(
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
