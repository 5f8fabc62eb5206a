"""
Request signing: the public face of L{nova.auth.signing}.

Server side, an HTTP front end does::

    req = SignedRequest.from_parts(method, uri, headers, body)
    creds = identify_ec2(req)            # or identify_s3(req)
    secret = await lookup_secret(creds.access_key)
    verify(req, creds, secret, now=reactor.seconds())

and renders any L{nova.exception.AuthFailure} it raises with its C{code} and
C{status}.  All of these are pure functions: no I/O, no reactor.

Supported: EC2 Query Signature Version 2 (HmacSHA256/HmacSHA1), Signature
Version 4 in the C{Authorization} header or in the query string (presigned),
S3 Signature Version 2 (C{Authorization: AWS access:signature} and presigned
C{AWSAccessKeyId}/C{Expires}/C{Signature}), and S3 streaming chunk signatures.
Signature versions 0 and 1 are refused.

Client-side helpers (for tests and tools) sign the same way: L{sign_ec2_v2},
L{sign_v4_headers}, L{presign_v4}, L{sign_s3_v2}, L{presign_s3_v2}.
"""

from nova.auth.signing.chunked import ChunkSigner
from nova.auth.signing.encoding import aws_quote, parse_query
from nova.auth.signing.errors import (AccessDenied, AnonymousRequest,
                                      AuthorizationHeaderMalformed,
                                      AuthorizationQueryParametersError,
                                      ContentSHA256Mismatch, IncompleteSignature,
                                      InvalidArgument, InvalidRequest,
                                      MissingAuthenticationToken, RequestExpired,
                                      RequestTimeTooSkewed, SignatureMismatch,
                                      UnsupportedSignatureVersion)
from nova.auth.signing.identify import identify_ec2, identify_s3
from nova.auth.signing.request import (EMPTY_SHA256, Credentials, Scheme, Scope,
                                       SignedRequest, join_headers)
from nova.auth.signing.s3v2 import (bucket_from_host, presign_s3_v2,
                                    sign_s3_v2, string_to_sign_s3v2)
from nova.auth.signing.sigv2 import sign_ec2_v2, string_to_sign_v2
from nova.auth.signing.sigv4 import (MAX_PRESIGN_EXPIRES, STREAMING_PAYLOAD,
                                     UNSIGNED_PAYLOAD, canonical_request,
                                     presign_v4, sign_v4_headers, signing_key,
                                     string_to_sign_v4)
from nova.auth.signing.verify import (DEFAULT_MAX_SKEW, check_payload_sha256,
                                      streaming_chunk_signer, verify)

__all__ = [
    "AccessDenied", "AnonymousRequest", "AuthorizationHeaderMalformed",
    "AuthorizationQueryParametersError", "ChunkSigner", "ContentSHA256Mismatch",
    "Credentials", "DEFAULT_MAX_SKEW", "EMPTY_SHA256", "IncompleteSignature",
    "InvalidArgument", "InvalidRequest", "MAX_PRESIGN_EXPIRES",
    "MissingAuthenticationToken", "RequestExpired", "RequestTimeTooSkewed",
    "STREAMING_PAYLOAD", "Scheme", "Scope", "SignatureMismatch",
    "SignedRequest", "UNSIGNED_PAYLOAD", "UnsupportedSignatureVersion",
    "aws_quote", "bucket_from_host", "canonical_request",
    "check_payload_sha256", "identify_ec2", "identify_s3", "join_headers",
    "parse_query", "presign_s3_v2", "presign_v4", "sign_ec2_v2", "sign_s3_v2",
    "sign_v4_headers", "signing_key", "streaming_chunk_signer",
    "string_to_sign_s3v2", "string_to_sign_v2", "string_to_sign_v4", "verify",
]
