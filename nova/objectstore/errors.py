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


def _error(name: str, code: str, status: int, doc: str) -> type[S3Error]:
    return type(name, (S3Error,), {"code": code, "status": status, "__doc__": doc})


NoSuchBucket = _error("NoSuchBucket", "NoSuchBucket", 404, "The specified bucket does not exist.")
NoSuchKey = _error("NoSuchKey", "NoSuchKey", 404, "The specified key does not exist.")
NoSuchUpload = _error("NoSuchUpload", "NoSuchUpload", 404,
                      "The specified multipart upload does not exist.")
BucketAlreadyExists = _error("BucketAlreadyExists", "BucketAlreadyExists", 409,
                             "The requested bucket name is not available.")
BucketAlreadyOwnedByYou = _error("BucketAlreadyOwnedByYou", "BucketAlreadyOwnedByYou", 409,
                                 "Your previous request to create the named bucket succeeded "
                                 "and you already own it.")
BucketNotEmpty = _error("BucketNotEmpty", "BucketNotEmpty", 409,
                        "The bucket you tried to delete is not empty.")
InvalidBucketName = _error("InvalidBucketName", "InvalidBucketName", 400,
                           "The specified bucket is not valid.")
KeyTooLongError = _error("KeyTooLongError", "KeyTooLongError", 400, "Your key is too long.")
InvalidArgument = _error("InvalidArgument", "InvalidArgument", 400, "Invalid Argument.")
InvalidRequest = _error("InvalidRequest", "InvalidRequest", 400, "Invalid Request.")
InvalidRange = _error("InvalidRange", "InvalidRange", 416,
                      "The requested range is not satisfiable.")
PreconditionFailed = _error("PreconditionFailed", "PreconditionFailed", 412,
                            "At least one of the preconditions you specified did not hold.")
NotModified = _error("NotModified", "NotModified", 304, "Not Modified.")
BadDigest = _error("BadDigest", "BadDigest", 400,
                   "The Content-MD5 you specified did not match what we received.")
InvalidDigest = _error("InvalidDigest", "InvalidDigest", 400,
                       "The Content-MD5 you specified is not valid.")
EntityTooLarge = _error("EntityTooLarge", "EntityTooLarge", 400,
                        "Your proposed upload exceeds the maximum allowed object size.")
EntityTooSmall = _error("EntityTooSmall", "EntityTooSmall", 400,
                        "Your proposed upload is smaller than the minimum allowed object size.")
IncompleteBody = _error("IncompleteBody", "IncompleteBody", 400,
                        "You did not provide the number of bytes specified by the "
                        "Content-Length HTTP header.")
InvalidPart = _error("InvalidPart", "InvalidPart", 400,
                     "One or more of the specified parts could not be found, or the "
                     "specified entity tag might not have matched the part's entity tag.")
InvalidPartOrder = _error("InvalidPartOrder", "InvalidPartOrder", 400,
                          "The list of parts was not in ascending order.")
MalformedXML = _error("MalformedXML", "MalformedXML", 400,
                      "The XML you provided was not well-formed or did not validate.")
MalformedACLError = _error("MalformedACLError", "MalformedACLError", 400,
                           "The XML you provided was not well-formed or did not validate "
                           "against our published schema.")
MethodNotAllowed = _error("MethodNotAllowed", "MethodNotAllowed", 405,
                          "The specified method is not allowed against this resource.")
MissingContentLength = _error("MissingContentLength", "MissingContentLength", 411,
                              "You must provide the Content-Length HTTP header.")
AccessDenied = _error("AccessDenied", "AccessDenied", 403, "Access Denied")
NotImplementedHeader = _error("NotImplementedHeader", "NotImplemented", 501,
                        "A header you provided implies functionality that is not implemented.")
ServiceUnavailable = _error("ServiceUnavailable", "ServiceUnavailable", 503,
                            "Please reduce your request rate.")
