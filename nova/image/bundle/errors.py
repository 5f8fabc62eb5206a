"""
Why a bundle was refused.

Every error is an L{InvalidManifest} (EC2 code C{InvalidManifest}, HTTP 400)
so that a registrar can copy C{code} and C{message} into the image's
C{stateReason}; the subclasses let code tell the causes apart, and the
message always says which check failed (and which part, for a part).
"""

from __future__ import annotations

from nova import exception


class InvalidManifest(exception.InvalidParameterValue):
    """The bundle manifest is not valid."""

    code = "InvalidManifest"


class ManifestSyntaxError(InvalidManifest):
    """The manifest is not well-formed XML, lacks a field, or holds a bad value."""


class SignatureMismatch(InvalidManifest):
    """The manifest's signature matches none of the user's certificates."""


class WrongCloudKey(InvalidManifest):
    """The image key was not encrypted for this cloud's certificate."""


class PartError(InvalidManifest):
    """A part is missing, truncated, or does not match its digest."""


class ImageDataError(InvalidManifest):
    """
    The decrypted image is unusable: bad padding, corrupt gzip, a tar that
    does not hold exactly one regular file, more bytes than the manifest's
    size, or a digest mismatch.
    """
