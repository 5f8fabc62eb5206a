"""
The S3 errors only the HTTP face raises (the store's are in
L{nova.objectstore.errors}), and what an error document says besides its
code and message.
"""

from __future__ import annotations

from typing import Any

from nova.objectstore.errors import S3Error, s3_error as _error


S3NotImplemented = _error(
    "S3NotImplemented", "NotImplemented", 501,
    "A header or query you provided implies functionality that is not implemented.")
InvalidAccessKeyId = _error("InvalidAccessKeyId", "InvalidAccessKeyId", 403,
                            "The AWS Access Key Id you provided does not exist in our records.")
InvalidURI = _error("InvalidURI", "InvalidURI", 400, "Couldn't parse the specified URI.")
MetadataTooLarge = _error("MetadataTooLarge", "MetadataTooLarge", 400,
                          "Your metadata headers exceed the maximum allowed metadata size.")
MaxMessageLengthExceeded = _error("MaxMessageLengthExceeded", "MaxMessageLengthExceeded", 400,
                                  "Your request was too big.")
UnexpectedContent = _error("UnexpectedContent", "UnexpectedContent", 400,
                           "This request does not support content.")
InvalidChunkSizeError = _error("InvalidChunkSizeError", "InvalidChunkSizeError", 400,
                               "Only the last chunk is allowed to have a size less than 8192 "
                               "bytes, and the chunk encoding must be well formed.")


def _missing_config(name: str, code: str, doc: str) -> type[S3Error]:
    return _error(name, code, 404, doc)


#: GET of a bucket configuration this store never has: the "absent" answer S3 gives
NoSuchBucketPolicy = _missing_config("NoSuchBucketPolicy", "NoSuchBucketPolicy",
                                     "The bucket policy does not exist")
NoSuchCORSConfiguration = _missing_config("NoSuchCORSConfiguration", "NoSuchCORSConfiguration",
                                          "The CORS configuration does not exist")
NoSuchLifecycleConfiguration = _missing_config(
    "NoSuchLifecycleConfiguration", "NoSuchLifecycleConfiguration",
    "The lifecycle configuration does not exist")
NoSuchTagSet = _missing_config("NoSuchTagSet", "NoSuchTagSet", "The TagSet does not exist")
NoSuchWebsiteConfiguration = _missing_config(
    "NoSuchWebsiteConfiguration", "NoSuchWebsiteConfiguration",
    "The specified bucket does not have a website configuration")
NoEncryptionConfiguration = _missing_config(
    "NoEncryptionConfiguration", "ServerSideEncryptionConfigurationNotFoundError",
    "The server side encryption configuration was not found")
NoReplicationConfiguration = _missing_config(
    "NoReplicationConfiguration", "ReplicationConfigurationNotFoundError",
    "The replication configuration was not found")
NoObjectLockConfiguration = _missing_config(
    "NoObjectLockConfiguration", "ObjectLockConfigurationNotFoundError",
    "Object Lock configuration does not exist for this bucket")
NoOwnershipControls = _missing_config(
    "NoOwnershipControls", "OwnershipControlsNotFoundError",
    "The bucket ownership controls were not found")
NoPublicAccessBlock = _missing_config(
    "NoPublicAccessBlock", "NoSuchPublicAccessBlockConfiguration",
    "The public access block configuration was not found")


def with_fields(error: S3Error, **fields: Any) -> S3Error:
    """
    Attach extra elements for the error document (C{BucketName}, C{Key},
    C{ActualObjectSize}...) to C{error}.

    @param error: the error.
    @param fields: element name to value; C{None} values are left out.
    @return: C{error}, for C{raise with_fields(...)}.
    """
    current = dict(getattr(error, "s3_fields", {}) or {})
    current.update({name: value for name, value in fields.items() if value is not None})
    error.s3_fields = current  # type: ignore[attr-defined]
    return error


def fields_of(error: Exception) -> dict[str, Any]:
    """
    @return: the extra error-document elements of C{error}: those attached
        with L{with_fields}, and for a signature mismatch what S3 shows
        (C{StringToSign}, C{SignatureProvided}, C{CanonicalRequest}...).
    """
    fields: dict[str, Any] = {}
    to_sign = getattr(error, "string_to_sign", None)
    if to_sign:
        fields["StringToSign"] = to_sign
        fields["StringToSignBytes"] = " ".join(f"{b:02x}" for b in to_sign.encode("utf-8"))
    provided = getattr(error, "signature_provided", None)
    if provided:
        fields["SignatureProvided"] = provided
    canonical = getattr(error, "canonical_request", None)
    if canonical:
        fields["CanonicalRequest"] = canonical
        fields["CanonicalRequestBytes"] = " ".join(
            f"{b:02x}" for b in canonical.encode("utf-8"))
    fields.update(getattr(error, "s3_fields", {}) or {})
    return fields


__all__ = [
    "InvalidAccessKeyId", "InvalidChunkSizeError", "InvalidURI", "MaxMessageLengthExceeded",
    "MetadataTooLarge", "NoEncryptionConfiguration", "NoObjectLockConfiguration",
    "NoOwnershipControls", "NoPublicAccessBlock", "NoReplicationConfiguration",
    "NoSuchBucketPolicy", "NoSuchCORSConfiguration", "NoSuchLifecycleConfiguration",
    "NoSuchTagSet", "NoSuchWebsiteConfiguration", "S3NotImplemented",
    "UnexpectedContent", "fields_of", "with_fields",
]
