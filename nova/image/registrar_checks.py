"""
The registrar's input checks and errors, and how a failure becomes an
image's stateReason.
"""

from __future__ import annotations

from nova.exception import ClientError, InvalidParameterValue, NovaError
from nova.image.records import check_location
from nova.objectstore.errors import S3Error
from nova.objectstore.store.names import is_bucket_name, is_key

#: a key ending so is a bundle manifest (euca2ools names them C{<prefix>.manifest.xml})
MANIFEST_SUFFIX = ".manifest.xml"


class InvalidManifestLocation(ClientError):
    """
    The image location does not exist or the caller may not read it. AWS
    answers both with C{InvalidManifest} ("an unparsable manifest, or you may
    not have access to the location of the manifest file").
    """

    code = "InvalidManifest"


class InvalidAMINameDuplicate(ClientError):
    """The project already has an image with that name."""

    code = "InvalidAMIName.Duplicate"


class RegistrarClosed(NovaError):
    """The image registrar is shutting down; try again."""

    code = "ServiceUnavailable"
    status = 503


def check_image_location(location: object) -> tuple[str, str, bool]:
    """
    @return: C{(bucket, key, is_bundle)} of a well-formed location
        C{bucket/key} (a leading C{/} is allowed, as some tools send it).
    @raise InvalidParameterValue: not C{bucket/key}, a bucket name S3 would
        not have, or a key that is no S3 key.
    """
    if isinstance(location, str) and location.startswith("/"):
        location = location[1:]
    check_location(location)
    assert isinstance(location, str)
    bucket, _, key = location.partition("/")
    if not is_bucket_name(bucket) or not is_key(key) or any(
            ord(c) < 32 or ord(c) == 127 for c in key):
        raise InvalidParameterValue(
            f"Invalid image location {location!r}: expected bucket/key of the manifest or "
            "image")
    return bucket, key, key.endswith(MANIFEST_SUFFIX)


def reason_of(error: BaseException) -> tuple[str, str]:
    """
    @return: the stateReason C{(code, message)} of an image whose
        registration failed with C{error}.
    """
    if isinstance(error, S3Error):
        return ("Server.InternalError",
                f"the object store failed while the image was copied: {error.code}: {error}")
    if isinstance(error, NovaError) and error.status < 500:
        return error.code, error.message
    if isinstance(error, NovaError):
        return "Server.InternalError", error.message
    return "Server.InternalError", f"the image could not be registered ({type(error).__name__})"
