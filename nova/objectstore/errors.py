"""
S3's errors, each with its code and HTTP status, as the S3 API reference
lists them. The HTTP layer renders any of these as S3 error XML; the store
raises them.
"""

from __future__ import annotations

from nova.exception import NovaError


class S3Error(NovaError):
    """Base of the object store's errors."""

    code = "InternalError"
    status = 500


def s3_error(name: str, code: str, status: int, doc: str) -> type[S3Error]:
    """@return: a new L{S3Error} subclass answering C{code} with HTTP C{status}."""
    return type(name, (S3Error,), {"code": code, "status": status, "__doc__": doc})


NoSuchBucket = s3_error("NoSuchBucket", "NoSuchBucket", 404, "The specified bucket does not exist.")
NoSuchKey = s3_error("NoSuchKey", "NoSuchKey", 404, "The specified key does not exist.")
NoSuchUpload = s3_error("NoSuchUpload", "NoSuchUpload", 404,
                      "The specified multipart upload does not exist.")
BucketAlreadyExists = s3_error("BucketAlreadyExists", "BucketAlreadyExists", 409,
                             "The requested bucket name is not available.")
BucketAlreadyOwnedByYou = s3_error("BucketAlreadyOwnedByYou", "BucketAlreadyOwnedByYou", 409,
                                 "Your previous request to create the named bucket succeeded "
                                 "and you already own it.")
BucketNotEmpty = s3_error("BucketNotEmpty", "BucketNotEmpty", 409,
                        "The bucket you tried to delete is not empty.")
InvalidBucketName = s3_error("InvalidBucketName", "InvalidBucketName", 400,
                           "The specified bucket is not valid.")
KeyTooLongError = s3_error("KeyTooLongError", "KeyTooLongError", 400, "Your key is too long.")
InvalidArgument = s3_error("InvalidArgument", "InvalidArgument", 400, "Invalid Argument.")
InvalidRequest = s3_error("InvalidRequest", "InvalidRequest", 400, "Invalid Request.")
InvalidRange = s3_error("InvalidRange", "InvalidRange", 416,
                      "The requested range is not satisfiable.")
PreconditionFailed = s3_error("PreconditionFailed", "PreconditionFailed", 412,
                            "At least one of the preconditions you specified did not hold.")
NotModified = s3_error("NotModified", "NotModified", 304, "Not Modified.")
BadDigest = s3_error("BadDigest", "BadDigest", 400,
                   "The Content-MD5 you specified did not match what we received.")
InvalidDigest = s3_error("InvalidDigest", "InvalidDigest", 400,
                       "The Content-MD5 you specified is not valid.")
EntityTooLarge = s3_error("EntityTooLarge", "EntityTooLarge", 400,
                        "Your proposed upload exceeds the maximum allowed object size.")
EntityTooSmall = s3_error("EntityTooSmall", "EntityTooSmall", 400,
                        "Your proposed upload is smaller than the minimum allowed object size.")
IncompleteBody = s3_error("IncompleteBody", "IncompleteBody", 400,
                        "You did not provide the number of bytes specified by the "
                        "Content-Length HTTP header.")
InvalidPart = s3_error("InvalidPart", "InvalidPart", 400,
                     "One or more of the specified parts could not be found, or the "
                     "specified entity tag might not have matched the part's entity tag.")
InvalidPartOrder = s3_error("InvalidPartOrder", "InvalidPartOrder", 400,
                          "The list of parts was not in ascending order.")
MalformedXML = s3_error("MalformedXML", "MalformedXML", 400,
                      "The XML you provided was not well-formed or did not validate.")
MalformedACLError = s3_error("MalformedACLError", "MalformedACLError", 400,
                           "The XML you provided was not well-formed or did not validate "
                           "against our published schema.")
MethodNotAllowed = s3_error("MethodNotAllowed", "MethodNotAllowed", 405,
                          "The specified method is not allowed against this resource.")
MissingContentLength = s3_error("MissingContentLength", "MissingContentLength", 411,
                              "You must provide the Content-Length HTTP header.")
AccessDenied = s3_error("AccessDenied", "AccessDenied", 403, "Access Denied")
ServiceUnavailable = s3_error("ServiceUnavailable", "ServiceUnavailable", 503,
                            "Please reduce your request rate.")
