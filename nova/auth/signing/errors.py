"""
The errors request authentication raises.

All of them are L{nova.exception.AuthFailure} subclasses, so an HTTP front end
can catch C{AuthFailure} once and render C{.code}/C{.status}.  The codes are the
ones AWS answers with: EC2 uses C{IncompleteSignature}, C{RequestExpired},
C{MissingAuthenticationToken}...; S3 uses C{AccessDenied},
C{AuthorizationHeaderMalformed}, C{RequestTimeTooSkewed}...
"""

from __future__ import annotations

from nova import exception


class IncompleteSignature(exception.AuthFailure):
    """The request signature does not conform to AWS standards."""

    code = "IncompleteSignature"
    status = 400


class MissingAuthenticationToken(exception.AuthFailure):
    """The request must contain either a valid access key ID or X.509 certificate."""

    code = "MissingAuthenticationToken"
    status = 403


class UnsupportedSignatureVersion(exception.AuthFailure):
    """The request is signed with a signature version this cloud does not accept."""

    code = "InvalidParameterValue"
    status = 400


class RequestExpired(exception.AuthFailure):
    """The request is too old, too far in the future, or past its expiry (EC2)."""

    code = "RequestExpired"
    status = 400


class AccessDenied(exception.AuthFailure):
    """Access Denied (S3): e.g. an expired presigned URL or a missing date."""

    code = "AccessDenied"
    status = 403


class AnonymousRequest(AccessDenied):
    """
    The S3 request carries no authentication at all.

    Distinct from L{AccessDenied} so that an object store can decide to serve
    public objects to anonymous callers; rendered as C{AccessDenied}.
    """


class RequestTimeTooSkewed(exception.AuthFailure):
    """The difference between the request time and the current time is too large (S3)."""

    code = "RequestTimeTooSkewed"
    status = 403


class AuthorizationHeaderMalformed(exception.AuthFailure):
    """The authorization header is malformed (S3)."""

    code = "AuthorizationHeaderMalformed"
    status = 400


class AuthorizationQueryParametersError(exception.AuthFailure):
    """The query-string authentication parameters are malformed (S3)."""

    code = "AuthorizationQueryParametersError"
    status = 400


class InvalidArgument(exception.AuthFailure):
    """An authentication argument has a value S3 does not accept."""

    code = "InvalidArgument"
    status = 400


class ContentSHA256Mismatch(exception.AuthFailure):
    """The provided x-amz-content-sha256 header does not match what was computed (S3)."""

    code = "XAmzContentSHA256Mismatch"
    status = 400


class SignatureMismatch(exception.SignatureDoesNotMatch):
    """
    The signature the client sent is not the one computed from the secret key.

    Carries what S3 puts in its C{SignatureDoesNotMatch} error document so that
    a client can see which canonicalisation the server used.

    @ivar string_to_sign: the string the server signed.
    @ivar canonical_request: the SigV4 canonical request (C{None} for V2).
    @ivar signature_provided: the signature the client sent.
    """

    def __init__(self, message: str = "", string_to_sign: str = "",
                 canonical_request: str | None = None,
                 signature_provided: str = "") -> None:
        super().__init__(message or (
            "The request signature we calculated does not match the signature"
            " you provided. Check your key and signing method."))
        self.string_to_sign = string_to_sign
        self.canonical_request = canonical_request
        self.signature_provided = signature_provided


class InvalidRequest(exception.AuthFailure):
    """The request is missing something S3 requires to authenticate it."""

    code = "InvalidRequest"
    status = 400
