"""
The error hierarchy: every error nova raises on purpose is a L{NovaError}.

Errors carry the protocol code they map to (an EC2 error code such as
C{InvalidKeyPair.NotFound}) and an HTTP status, so that the three translation
boundaries (the RPC dispatcher, the HTTP resources and service start-up) can
render them without a lookup table of their own.
"""

from __future__ import annotations


class NovaError(Exception):
    """
    Base of every deliberate nova error.

    @cvar code: the EC2-style error code this error is reported as.
    @cvar status: the HTTP status code the API answers with.
    """

    code: str = "InternalError"
    status: int = 500

    def __init__(self, message: str = "", code: str | None = None) -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)
        self.message = message or (self.__class__.__doc__ or self.code).strip()
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class ClientError(NovaError):
    """The request was wrong; the client can fix it."""

    code = "InvalidRequest"
    status = 400


class NotFound(ClientError):
    """The named object does not exist."""

    code = "NotFound"


class Duplicate(ClientError):
    """An object with that name already exists."""

    code = "Duplicate"


class InvalidParameterValue(ClientError):
    """A parameter has a value that is not allowed."""

    code = "InvalidParameterValue"


class MissingParameter(ClientError):
    """A required parameter is missing."""

    code = "MissingParameter"


class UnsupportedOperation(ClientError):
    """The action is not supported by this cloud."""

    code = "UnsupportedOperation"


class AuthFailure(NovaError):
    """The credentials could not be validated."""

    code = "AuthFailure"
    status = 401


class SignatureDoesNotMatch(AuthFailure):
    """The request signature does not match the one computed from the secret key."""

    code = "SignatureDoesNotMatch"
    status = 403


class NotAuthorized(NovaError):
    """The caller may not perform this action."""

    code = "UnauthorizedOperation"
    status = 403


class ConcurrencyError(NovaError):
    """A transaction kept conflicting with concurrent writers and gave up."""

    code = "InternalError"
    status = 503


class ProcessError(NovaError):
    """A host command failed or timed out."""


class RemoteError(NovaError):
    """
    An error raised by the far side of an RPC call.

    @ivar remote_type: the name of the exception class on the far side.
    @ivar remote_code: the error code it carried, when it was a L{NovaError}.
    """

    def __init__(self, remote_type: str, message: str, code: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(message, code=code or "InternalError")
        self.remote_type = remote_type
        if status is not None:
            self.status = status

    def __str__(self) -> str:
        return f"{self.remote_type}: {self.message}"


class RPCTimeout(NovaError):
    """An RPC call got no reply in time."""

    code = "RequestTimeout"
    status = 504
