"""
Request signing for the EC2 Query API and the S3 REST API.

The modules of this package are pure functions over a neutral view of an HTTP
request (L{nova.auth.signing.request.SignedRequest}); none of them does I/O or
touches a reactor.  Callers import the public names from L{nova.auth.signer}.

    - L{errors}: the typed errors, carrying the AWS error codes.
    - L{encoding}: AWS percent-encoding, query parsing, timestamps.
    - L{request}: the request view and the parsed credentials.
    - L{sigv2}: EC2 Query Signature Version 2.
    - L{s3v2}: S3 REST Signature Version 2 ("AWS access:signature").
    - L{sigv4}: Signature Version 4 (headers and presigned URLs).
    - L{chunked}: S3 streaming (aws-chunked) chunk signatures.
    - L{identify}: which scheme a request uses, and its credentials.
    - L{verify}: recompute and compare, with the time checks.
"""
