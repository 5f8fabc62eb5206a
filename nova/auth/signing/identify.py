"""
Find which signature scheme a request uses and what it claims.

C{identify_ec2} and C{identify_s3} only parse: they need no secret and no
clock, and they reject malformed authentication with the error AWS gives.
The caller then looks the secret key up by C{Credentials.access_key} and
calls L{nova.auth.signing.verify.verify}.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import attrs

from nova.auth.signing import errors
from nova.auth.signing.encoding import (format_amz_date, parse_amz_date,
                                        parse_http_date, parse_iso8601)
from nova.auth.signing.request import Credentials, Scheme, Scope, SignedRequest
from nova.auth.signing.sigv2 import SIGNATURE_METHODS
from nova.auth.signing.sigv4 import (ALGORITHM, MAX_PRESIGN_EXPIRES,
                                     PAYLOAD_MARKERS, UNSIGNED_PAYLOAD)

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_DATE8 = re.compile(r"^\d{8}$")
_V4_QUERY_PARAMS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date",
                    "X-Amz-SignedHeaders", "X-Amz-Signature")


class _Malformed(Exception):
    """Internal: a parse problem, turned into the right AWS error by the caller."""


class _ScopeDate(Exception):
    def __init__(self, scope_date: str, amz_date: str) -> None:
        super().__init__(scope_date, amz_date)
        self.scope_date, self.amz_date = scope_date, amz_date


class _ScopeService(Exception):
    def __init__(self, service: str) -> None:
        super().__init__(service)
        self.service = service


def _first(pairs: list[tuple[str, str]], name: str) -> str | None:
    for key, value in pairs:
        if key == name:
            return value
    return None


def _parse_credential(value: str) -> tuple[str, Scope]:
    parts = value.rsplit("/", 4)
    if len(parts) != 5 or parts[4] != "aws4_request" or not parts[0]:
        raise _Malformed(
            f"the Credential '{value}' is not of the form "
            "<access key>/<YYYYMMDD>/<region>/<service>/aws4_request")
    access, date, region, service, _ = parts
    if not _DATE8.match(date):
        raise _Malformed(f"the Credential date '{date}' is not YYYYMMDD")
    if not region or not service:
        raise _Malformed(f"the Credential '{value}' names no region or service")
    return access, Scope(date, region, service)


def _parse_signed_headers(value: str) -> tuple[str, ...]:
    names = tuple(name.strip().lower() for name in value.split(";"))
    if not value or any(not name for name in names):
        raise _Malformed(f"SignedHeaders '{value}' is not a ;-separated list")
    if "host" not in names:
        raise _Malformed("the host header must be signed")
    return names


def _parse_v4_header(value: str) -> dict[str, str]:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise _Malformed(f"Unsupported AWS 'algorithm': '{algorithm}'")
    fields: dict[str, str] = {}
    for piece in rest.split(","):
        piece = piece.strip()
        if not piece:
            continue
        key, sep, item = piece.partition("=")
        if not sep:
            raise _Malformed(f"'{piece}' is not a key=value pair")
        fields[key.strip()] = item.strip()
    missing = [key for key in ("Credential", "SignedHeaders", "Signature")
               if not fields.get(key)]
    if missing:
        raise _Malformed("Authorization header requires "
                         + ", ".join(f"'{key}'" for key in missing)
                         + " parameter(s)")
    return fields


def _header_amz_date(req: SignedRequest) -> str | None:
    value = req.headers.get("x-amz-date")
    if value is not None:
        return value if parse_amz_date(value) is not None else None
    date = req.headers.get("date")
    when = parse_http_date(date) if date else None
    return format_amz_date(when) if when is not None else None


def _v4_credentials(req: SignedRequest, service: str, allowed: frozenset[str],
                    fields: dict[str, str], scheme: Scheme,
                    amz_date: str | None, expires: str | None) -> Credentials:
    """Shared SigV4 checks; raises L{_Malformed} or an AWS error."""
    access, scope = _parse_credential(fields["Credential"])
    signed_headers = _parse_signed_headers(fields["SignedHeaders"])
    if amz_date is None:
        raise _Malformed("no valid X-Amz-Date")
    if scope.date != amz_date[:8]:
        raise _ScopeDate(scope.date, amz_date)
    if scope.service not in allowed:
        raise _ScopeService(scope.service)
    return Credentials(access_key=access, scheme=scheme, service=service,
                       signature=fields["Signature"], timestamp=amz_date,
                       expires=expires, scope=scope,
                       signed_headers=signed_headers)


def _ec2_services(req: SignedRequest, services: Iterable[str]) -> frozenset[str]:
    # boto 2 derives the SigV4 service from the first label of the endpoint
    # name (127.0.0.1 signs as service "127", localhost as "localhost"), so
    # that label is accepted too: the signature still binds the request to
    # the host it was sent to.
    first_label = req.host.rsplit(":", 1)[0].split(".")[0].lower()
    return frozenset(set(services) | {first_label}) - {""}


def _identify_ec2_v4(req: SignedRequest, fields: dict[str, str],
                     scheme: Scheme, amz_date: str | None,
                     expires: str | None, services: Iterable[str]) -> Credentials:
    try:
        return _v4_credentials(req, "ec2", _ec2_services(req, services), fields,
                               scheme, amz_date, expires)
    except _Malformed as problem:
        raise errors.IncompleteSignature(str(problem)) from None
    except _ScopeDate as problem:
        raise errors.SignatureMismatch(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601"
            f" version of date from HTTP: '{problem.scope_date}' !="
            f" '{problem.amz_date[:8]}'") from None
    except _ScopeService:
        expected = "', '".join(sorted(services))
        raise errors.SignatureMismatch(
            f"Credential should be scoped to correct service: '{expected}'."
        ) from None


def _identify_ec2_v2(params: dict[str, str]) -> Credentials:
    version = params.get("SignatureVersion")
    if version is None:
        raise errors.IncompleteSignature(
            "SignatureVersion is required with Signature/AWSAccessKeyId")
    if version != "2":
        raise errors.UnsupportedSignatureVersion(
            f"SignatureVersion {version} is not supported: sign with"
            " SignatureVersion 2 (HmacSHA256) or Signature Version 4"
            " (AWS4-HMAC-SHA256)")
    missing = [name for name in ("AWSAccessKeyId", "Signature", "SignatureMethod")
               if not params.get(name)]
    if missing:
        raise errors.IncompleteSignature(
            "Request is missing required parameter(s): " + ", ".join(missing))
    method = params["SignatureMethod"]
    if method not in SIGNATURE_METHODS:
        raise errors.UnsupportedSignatureVersion(
            f"Value ({method}) for parameter SignatureMethod is invalid:"
            " use HmacSHA256 or HmacSHA1")
    timestamp, expires = params.get("Timestamp"), params.get("Expires")
    if (timestamp is None) == (expires is None):
        raise errors.IncompleteSignature(
            "Request must contain exactly one of Timestamp and Expires")
    when = timestamp if timestamp is not None else expires
    if when is None or parse_iso8601(when) is None:
        raise errors.IncompleteSignature(
            f"Invalid {'Timestamp' if timestamp is not None else 'Expires'}"
            f" '{when}': use ISO 8601, e.g. 2011-10-03T15:19:30Z")
    return Credentials(access_key=params["AWSAccessKeyId"],
                       scheme=Scheme.EC2_V2, service="ec2",
                       signature=params["Signature"], signature_method=method,
                       timestamp=timestamp, expires=expires)


def identify_ec2(req: SignedRequest,
                 services: Iterable[str] = ("ec2",)) -> Credentials:
    """
    Find the credentials of an EC2 Query API request.

    Recognises, in this order: a SigV4 C{Authorization} header, SigV4 query
    parameters (C{X-Amz-Algorithm}...), and SigV2 parameters in the query
    string or the form body.

    @param req: the request.
    @param services: the SigV4 service names accepted in the credential
        scope.  The first label of the C{Host} name is accepted as well,
        because boto 2 derives the service from it (C{127.0.0.1} signs as
        service C{127}).
    @return: what the request claims.
    @raise errors.MissingAuthenticationToken: nothing identifies the caller.
    @raise errors.IncompleteSignature: authentication is there but malformed.
    @raise errors.UnsupportedSignatureVersion: SignatureVersion 0 or 1, or an
        unknown SignatureMethod.
    @raise errors.SignatureMismatch: the SigV4 scope does not fit the request.
    """
    services = tuple(services)
    authorization = req.headers.get("authorization", "")
    if authorization.startswith("AWS4-"):
        try:
            fields = _parse_v4_header(authorization)
        except _Malformed as problem:
            raise errors.IncompleteSignature(str(problem)) from None
        return _identify_ec2_v4(req, fields, Scheme.SIGV4_HEADER,
                                _header_amz_date(req), None, services)
    query = list(req.query)
    algorithm = _first(query, "X-Amz-Algorithm")
    if algorithm is not None:
        if algorithm != ALGORITHM:
            raise errors.IncompleteSignature(
                f"Unsupported AWS 'algorithm': '{algorithm}'")
        missing = [name for name in _V4_QUERY_PARAMS if not _first(query, name)]
        if missing:
            raise errors.IncompleteSignature(
                "Request is missing required parameter(s): " + ", ".join(missing))
        amz_date = _first(query, "X-Amz-Date") or ""
        expires = _first(query, "X-Amz-Expires")
        if expires is not None and not _valid_expires(expires):
            raise errors.IncompleteSignature(
                f"X-Amz-Expires must be a number of seconds between 1 and"
                f" {MAX_PRESIGN_EXPIRES}")
        fields = {"Credential": _first(query, "X-Amz-Credential") or "",
                  "SignedHeaders": _first(query, "X-Amz-SignedHeaders") or "",
                  "Signature": _first(query, "X-Amz-Signature") or ""}
        return _identify_ec2_v4(
            req, fields, Scheme.SIGV4_QUERY,
            amz_date if parse_amz_date(amz_date) is not None else None, expires,
            services)
    params: dict[str, str] = {}
    for name, value in req.all_params():
        params.setdefault(name, value)
    if any(name in params for name in
           ("Signature", "AWSAccessKeyId", "SignatureVersion")):
        return _identify_ec2_v2(params)
    raise errors.MissingAuthenticationToken(
        "Request is missing Authentication Token: sign it with Signature"
        " Version 2 or 4")


def _valid_expires(value: str) -> bool:
    return value.isdigit() and 0 < int(value) <= MAX_PRESIGN_EXPIRES


def _identify_s3_v4(req: SignedRequest, fields: dict[str, str],
                    scheme: Scheme, amz_date: str | None,
                    expires: str | None) -> Credentials:
    malformed = (errors.AuthorizationHeaderMalformed
                 if scheme is Scheme.SIGV4_HEADER
                 else errors.AuthorizationQueryParametersError)
    try:
        creds = _v4_credentials(req, "s3", frozenset({"s3"}), fields, scheme,
                                amz_date, expires)
    except _Malformed as problem:
        raise malformed(f"The authorization is malformed; {problem}") from None
    except _ScopeDate as problem:
        raise malformed(
            f"The authorization is malformed; Invalid credential date"
            f" \"{problem.scope_date}\". This date is not the same as"
            f" X-Amz-Date: \"{problem.amz_date[:8]}\".") from None
    except _ScopeService as problem:
        raise malformed(
            f"The authorization is malformed; incorrect service"
            f" \"{problem.service}\". This endpoint belongs to \"s3\".") from None
    if scheme is Scheme.SIGV4_QUERY:
        return attrs.evolve(creds, content_sha256=UNSIGNED_PAYLOAD)
    content = req.headers.get("x-amz-content-sha256")
    if content is None:
        raise errors.InvalidRequest(
            "Missing required header for this request: x-amz-content-sha256")
    if content not in PAYLOAD_MARKERS and not _HEX64.match(content):
        raise errors.InvalidArgument(
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD,"
            " STREAMING-AWS4-HMAC-SHA256-PAYLOAD, or a valid sha256 value.")
    return attrs.evolve(creds, content_sha256=content)


def _identify_s3_query_v4(req: SignedRequest, algorithm: str) -> Credentials:
    query = list(req.query)
    if algorithm != ALGORITHM:
        raise errors.AuthorizationQueryParametersError(
            f"X-Amz-Algorithm only supports \"{ALGORITHM}\"")
    missing = [name for name in _V4_QUERY_PARAMS + ("X-Amz-Expires",)
               if not _first(query, name)]
    if missing:
        raise errors.AuthorizationQueryParametersError(
            "Query-string authentication version 4 requires the"
            " X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date,"
            " X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
    expires = _first(query, "X-Amz-Expires") or ""
    if not expires.lstrip("-").isdigit():
        raise errors.AuthorizationQueryParametersError(
            "X-Amz-Expires should be a number")
    if int(expires) < 0:
        raise errors.AuthorizationQueryParametersError(
            "X-Amz-Expires must be non-negative")
    if int(expires) > MAX_PRESIGN_EXPIRES:
        raise errors.AuthorizationQueryParametersError(
            "X-Amz-Expires must be less than a week (in seconds) that is;"
            f" {MAX_PRESIGN_EXPIRES}")
    amz_date = _first(query, "X-Amz-Date") or ""
    if parse_amz_date(amz_date) is None:
        raise errors.AuthorizationQueryParametersError(
            "X-Amz-Date must be in the ISO8601 Long Format"
            " \"yyyyMMdd'T'HHmmss'Z'\"")
    fields = {"Credential": _first(query, "X-Amz-Credential") or "",
              "SignedHeaders": _first(query, "X-Amz-SignedHeaders") or "",
              "Signature": _first(query, "X-Amz-Signature") or ""}
    return _identify_s3_v4(req, fields, Scheme.SIGV4_QUERY, amz_date, expires)


def _identify_s3_v2_header(req: SignedRequest, authorization: str) -> Credentials:
    # The access key may itself contain ':' (nova's "access:project"); the
    # base64 signature never does, so split at the last one.
    access, sep, signature = authorization[4:].strip().rpartition(":")
    if not sep or not access or not signature:
        raise errors.InvalidArgument(
            "AWS authorization header is invalid.  Expected"
            " AwsAccessKeyId:signature")
    stamp = req.headers.get("x-amz-date") or req.headers.get("date")
    if not stamp or parse_http_date(stamp) is None:
        raise errors.AccessDenied(
            "AWS authentication requires a valid Date or x-amz-date header")
    return Credentials(access_key=access, scheme=Scheme.S3_V2_HEADER,
                       service="s3", signature=signature, timestamp=stamp)


def _identify_s3_v2_query(req: SignedRequest) -> Credentials:
    query = list(req.query)
    access = _first(query, "AWSAccessKeyId")
    signature = _first(query, "Signature")
    expires = _first(query, "Expires")
    if not access or not signature or expires is None:
        raise errors.AccessDenied(
            "Query-string authentication requires the Signature, Expires and"
            " AWSAccessKeyId parameters")
    if not expires.isdigit():
        raise errors.AccessDenied(
            f"Invalid date (should be seconds since epoch): {expires}")
    return Credentials(access_key=access, scheme=Scheme.S3_V2_QUERY,
                       service="s3", signature=signature, expires=expires)


def identify_s3(req: SignedRequest) -> Credentials:
    """
    Find the credentials of an S3 REST request.

    Recognises a SigV4 or SigV2 (C{AWS access:signature}) C{Authorization}
    header, SigV4 query parameters, and SigV2 query parameters
    (C{AWSAccessKeyId}/C{Expires}/C{Signature}).

    @param req: the request.
    @return: what the request claims.
    @raise errors.AnonymousRequest: the request carries no authentication.
    @raise errors.InvalidArgument: several mechanisms at once, or an unknown
        C{Authorization} scheme.
    @raise errors.AuthorizationHeaderMalformed: a malformed SigV4 header.
    @raise errors.AuthorizationQueryParametersError: malformed SigV4 query
        parameters.
    @raise errors.AccessDenied: SigV2 without a usable date or with
        incomplete query parameters.
    @raise errors.InvalidRequest: SigV4 header without x-amz-content-sha256.
    """
    authorization = req.headers.get("authorization")
    query = list(req.query)
    algorithm = _first(query, "X-Amz-Algorithm")
    v2_signature = _first(query, "Signature")
    mechanisms = sum(item is not None
                     for item in (authorization, algorithm, v2_signature))
    if mechanisms > 1:
        raise errors.InvalidArgument(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query"
            " parameter, Signature query string parameter or the Authorization"
            " header should be specified")
    if authorization is not None:
        if authorization.startswith(ALGORITHM + " "):
            try:
                fields = _parse_v4_header(authorization)
            except _Malformed as problem:
                raise errors.AuthorizationHeaderMalformed(
                    f"The authorization header is malformed; {problem}") from None
            amz_date = _header_amz_date(req)
            if amz_date is None:
                raise errors.AccessDenied(
                    "AWS authentication requires a valid Date or x-amz-date"
                    " header")
            return _identify_s3_v4(req, fields, Scheme.SIGV4_HEADER,
                                   amz_date, None)
        if authorization.startswith("AWS "):
            return _identify_s3_v2_header(req, authorization)
        raise errors.InvalidArgument("Unsupported Authorization Type")
    if algorithm is not None:
        return _identify_s3_query_v4(req, algorithm)
    if v2_signature is not None or _first(query, "AWSAccessKeyId") is not None:
        return _identify_s3_v2_query(req)
    raise errors.AnonymousRequest(
        "Anonymous access is not allowed: sign the request")
