"""
Signature Version 4 against the examples AWS publishes.

The expected values below are copied from the AWS documentation named above
each test; none is computed by the code under test.
"""

from __future__ import annotations

import hashlib

from twisted.trial import unittest

from nova.auth import signer
from nova.auth.signing.encoding import parse_amz_date
from nova.auth.signing.sigv4 import (canonical_request, compute_v4, sha256_hex,
                                     string_to_sign_v4)

# The AWS General Reference test suite and IAM examples
# (https://docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html,
# the 2015 "aws-sig-v4-test-suite" edition) use these credentials.
SUITE_ACCESS = "AKIDEXAMPLE"
SUITE_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SUITE_DATE = "20150830T123600Z"
SUITE_NOW = parse_amz_date(SUITE_DATE)
SUITE_SCOPE = "20150830/us-east-1/service/aws4_request"

# The S3 API reference SigV4 examples use these.
S3_ACCESS = "AKIAIOSFODNN7EXAMPLE"
S3_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
S3_DATE = "20130524T000000Z"
S3_NOW = parse_amz_date(S3_DATE)
S3_CREDENTIAL = f"{S3_ACCESS}/20130524/us-east-1/s3/aws4_request"


def suite_request(method: str, uri: str, headers: list[tuple[str, str]],
                  signed: str, signature: str,
                  body: bytes = b"") -> signer.SignedRequest:
    """A test-suite request carrying the published Authorization header."""
    authorization = (f"AWS4-HMAC-SHA256 Credential={SUITE_ACCESS}/{SUITE_SCOPE},"
                     f" SignedHeaders={signed}, Signature={signature}")
    return signer.SignedRequest.from_parts(
        method, uri, [("Host", "example.amazonaws.com"),
                      ("X-Amz-Date", SUITE_DATE)] + headers
        + [("Authorization", authorization)], body)


def s3_request(method: str, uri: str, headers: list[tuple[str, str]],
               signed: str, signature: str, body: bytes | None = None,
               host: str = "examplebucket.s3.amazonaws.com") -> signer.SignedRequest:
    authorization = (f"AWS4-HMAC-SHA256 Credential={S3_CREDENTIAL},"
                     f"SignedHeaders={signed},Signature={signature}")
    return signer.SignedRequest.from_parts(
        method, uri, [("Host", host), ("x-amz-date", S3_DATE)] + headers
        + [("Authorization", authorization)], body)


def verify_suite(req: signer.SignedRequest) -> signer.Credentials:
    creds = signer.identify_ec2(req, services=("service", "iam"))
    signer.verify(req, creds, SUITE_SECRET, now=SUITE_NOW)
    return creds


def verify_s3(req: signer.SignedRequest, now: float = S3_NOW) -> signer.Credentials:
    creds = signer.identify_s3(req)
    signer.verify(req, creds, S3_SECRET, now=now)
    return creds


class TestSuiteTests(unittest.TestCase):
    """
    The AWS Signature Version 4 test suite
    (https://docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html).
    """

    def test_get_vanilla(self) -> None:
        """get-vanilla: GET / with only host and x-amz-date signed."""
        req = suite_request(
            "GET", "/", [], "host;x-amz-date",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        creds = verify_suite(req)
        self.assertEqual(creds.scheme, signer.Scheme.SIGV4_HEADER)
        self.assertEqual(creds.access_key, SUITE_ACCESS)
        self.assertEqual(creds.region, "us-east-1")

    def test_get_vanilla_query_order_key_case(self) -> None:
        """get-vanilla-query-order-key-case: query sorted before signing."""
        req = suite_request(
            "GET", "/?Param2=value2&Param1=value1", [], "host;x-amz-date",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")
        verify_suite(req)

    def test_post_vanilla(self) -> None:
        """post-vanilla: an empty POST hashes the empty body."""
        req = suite_request(
            "POST", "/", [], "host;x-amz-date",
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b")
        verify_suite(req)

    def test_post_x_www_form_urlencoded(self) -> None:
        """post-x-www-form-urlencoded: the body's hash is signed."""
        req = suite_request(
            "POST", "/", [("Content-Type", "application/x-www-form-urlencoded")],
            "content-type;host;x-amz-date",
            "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
            body=b"Param1=value1")
        verify_suite(req)
        self.assertEqual(req.body_params, (("Param1", "value1"),))

    def test_post_x_www_form_urlencoded_wrong_body(self) -> None:
        """The same signature over another body does not verify."""
        req = suite_request(
            "POST", "/", [("Content-Type", "application/x-www-form-urlencoded")],
            "content-type;host;x-amz-date",
            "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
            body=b"Param1=value2")
        self.assertRaises(signer.SignatureMismatch, verify_suite, req)

    def test_get_header_key_duplicate(self) -> None:
        """get-header-key-duplicate: repeated headers join with commas."""
        req = suite_request(
            "GET", "/", [("My-Header1", "value2"), ("My-Header1", "value2"),
                         ("My-Header1", "value1")],
            "host;my-header1;x-amz-date",
            "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea")
        verify_suite(req)

    def test_get_utf8(self) -> None:
        """get-utf8: the path's UTF-8 bytes are percent-encoded (/%E1%88%B4)."""
        req = signer.SignedRequest(
            method="GET", host="example.amazonaws.com", path="/\u1234",
            headers={"host": "example.amazonaws.com", "x-amz-date": SUITE_DATE})
        scope = signer.Scope("20150830", "us-east-1", "service")
        creq = canonical_request(req, ["host", "x-amz-date"], signer.EMPTY_SHA256,
                                 s3=False)
        self.assertEqual(creq.split("\n")[1], "/%E1%88%B4")
        self.assertEqual(
            compute_v4(signer.signing_key(SUITE_SECRET, scope),
                       string_to_sign_v4(SUITE_DATE, scope, creq)),
            "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85")


class IAMExampleTests(unittest.TestCase):
    """
    The IAM ListUsers example of "Create a signed AWS API request"
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html,
    formerly general/latest/gr/sigv4-create-canonical-request.html).
    """

    def test_signing_key(self) -> None:
        """The derived signing key of "Examples of how to derive a signing key"."""
        key = signer.signing_key(SUITE_SECRET,
                                 signer.Scope("20150830", "us-east-1", "iam"))
        self.assertEqual(
            key.hex(),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9")

    def test_list_users(self) -> None:
        """Canonical request hash and signature of the ListUsers GET."""
        req = signer.SignedRequest.from_parts(
            "GET", "/?Action=ListUsers&Version=2010-05-08",
            [("Host", "iam.amazonaws.com"),
             ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),
             ("X-Amz-Date", SUITE_DATE),
             ("Authorization",
              "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/"
              "aws4_request, SignedHeaders=content-type;host;x-amz-date, "
              "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7")],
            b"")
        creds = verify_suite(req)
        creq = canonical_request(req, creds.signed_headers, signer.EMPTY_SHA256,
                                 s3=False)
        self.assertEqual(
            sha256_hex(creq),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59")


class S3HeaderExampleTests(unittest.TestCase):
    """
    The examples of "Signature Calculations for the Authorization Header:
    Transferring Payload in a Single Chunk"
    (https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html).
    """

    def test_get_object(self) -> None:
        """Example: GET Object (first 10 bytes of test.txt)."""
        req = s3_request(
            "GET", "/test.txt", [("Range", "bytes=0-9"),
                                 ("x-amz-content-sha256", signer.EMPTY_SHA256)],
            "host;range;x-amz-content-sha256;x-amz-date",
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        creds = verify_s3(req)
        self.assertEqual(creds.service, "s3")
        self.assertEqual(
            sha256_hex(canonical_request(req, creds.signed_headers,
                                         signer.EMPTY_SHA256, s3=True)),
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972")

    def test_put_object(self) -> None:
        """Example: PUT Object (test$file.text, '$' encoded once as %24)."""
        body = b"Welcome to Amazon S3."
        payload = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        self.assertEqual(hashlib.sha256(body).hexdigest(), payload)
        for path in ("/test$file.text", "/test%24file.text"):
            req = s3_request(
                "PUT", path, [("Date", "Fri, 24 May 2013 00:00:00 GMT"),
                              ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
                              ("x-amz-content-sha256", payload)],
                "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
                body=body)
            verify_s3(req)

    def test_put_object_body_mismatch(self) -> None:
        """A body that is not the signed x-amz-content-sha256 is refused."""
        payload = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        req = s3_request(
            "PUT", "/test$file.text", [("Date", "Fri, 24 May 2013 00:00:00 GMT"),
                                       ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
                                       ("x-amz-content-sha256", payload)],
            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
            body=b"Welcome to Amazon S4.")
        error = self.assertRaises(signer.ContentSHA256Mismatch, verify_s3, req)
        self.assertEqual(error.code, "XAmzContentSHA256Mismatch")

    def test_payload_checked_later(self) -> None:
        """A streamed body is checked with check_payload_sha256 after verify."""
        payload = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        req = s3_request(
            "PUT", "/test$file.text", [("Date", "Fri, 24 May 2013 00:00:00 GMT"),
                                       ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
                                       ("x-amz-content-sha256", payload)],
            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
        creds = verify_s3(req)
        signer.check_payload_sha256(creds, payload)
        self.assertRaises(signer.ContentSHA256Mismatch, signer.check_payload_sha256,
                          creds, signer.EMPTY_SHA256)

    def test_get_bucket_lifecycle(self) -> None:
        """Example: GET Bucket Lifecycle (?lifecycle)."""
        req = s3_request(
            "GET", "/?lifecycle", [("x-amz-content-sha256", signer.EMPTY_SHA256)],
            "host;x-amz-content-sha256;x-amz-date",
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")
        verify_s3(req)

    def test_list_objects(self) -> None:
        """Example: Get Bucket (List Objects), ?max-keys=2&prefix=J."""
        req = s3_request(
            "GET", "/?max-keys=2&prefix=J",
            [("x-amz-content-sha256", signer.EMPTY_SHA256)],
            "host;x-amz-content-sha256;x-amz-date",
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
        verify_s3(req)

    def test_time_too_skewed(self) -> None:
        """A request 16 minutes away from the server's clock is refused."""
        req = s3_request(
            "GET", "/?lifecycle", [("x-amz-content-sha256", signer.EMPTY_SHA256)],
            "host;x-amz-content-sha256;x-amz-date",
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")
        for now in (S3_NOW + 16 * 60, S3_NOW - 16 * 60):
            error = self.assertRaises(signer.RequestTimeTooSkewed, verify_s3,
                                      req, now)
            self.assertEqual((error.code, error.status), ("RequestTimeTooSkewed", 403))
        verify_s3(req, S3_NOW + 14 * 60)


class S3PresignedExampleTests(unittest.TestCase):
    """
    "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)"
    (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html).
    """

    URI = ("/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
           "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3"
           "%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400"
           "&X-Amz-SignedHeaders=host&X-Amz-Signature="
           "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")

    def request(self, uri: str | None = None) -> signer.SignedRequest:
        return signer.SignedRequest.from_parts(
            "GET", uri or self.URI, [("Host", "examplebucket.s3.amazonaws.com")])

    def test_presigned_get(self) -> None:
        """The published presigned URL verifies during its 24 hours."""
        creds = verify_s3(self.request(), now=S3_NOW + 86400)
        self.assertEqual(creds.scheme, signer.Scheme.SIGV4_QUERY)
        self.assertTrue(creds.is_presigned)
        self.assertEqual(creds.content_sha256, signer.UNSIGNED_PAYLOAD)

    def test_presigned_expired(self) -> None:
        """After X-Amz-Expires: AccessDenied "Request has expired"."""
        error = self.assertRaises(signer.AccessDenied, verify_s3, self.request(),
                                  S3_NOW + 86401)
        self.assertEqual((error.code, error.message),
                         ("AccessDenied", "Request has expired"))

    def test_presigned_not_yet_valid(self) -> None:
        """Signed for a time well in the future: AccessDenied."""
        self.assertRaises(signer.AccessDenied, verify_s3, self.request(),
                          S3_NOW - 3600)

    def test_presigned_tampered(self) -> None:
        """Another object under the same signature: SignatureDoesNotMatch."""
        req = self.request(self.URI.replace("/test.txt", "/secret.txt"))
        error = self.assertRaises(signer.SignatureMismatch, verify_s3, req,
                                  S3_NOW + 60)
        self.assertEqual(error.code, "SignatureDoesNotMatch")
        self.assertIn("/secret.txt", error.canonical_request)

    def test_presigned_too_long(self) -> None:
        """X-Amz-Expires above seven days is refused before any signing."""
        req = self.request(self.URI.replace("X-Amz-Expires=86400",
                                            "X-Amz-Expires=604801"))
        error = self.assertRaises(signer.AuthorizationQueryParametersError,
                                  signer.identify_s3, req)
        self.assertEqual(error.status, 400)

    def test_presign_helper(self) -> None:
        """presign_v4 reproduces the published query string."""
        pairs = signer.presign_v4("GET", "examplebucket.s3.amazonaws.com",
                                  "/test.txt", [], S3_ACCESS, S3_SECRET,
                                  "us-east-1", "s3", expires=86400, now=S3_NOW)
        self.assertEqual(dict(pairs)["X-Amz-Signature"],
                         "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")


class S3ChunkedExampleTests(unittest.TestCase):
    """
    "Signature Calculations for the Authorization Header: Transferring Payload
    in Multiple Chunks" (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html):
    66560 bytes of 'a' sent in 64 KB chunks.
    """

    SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    CHUNKS = [
        (b"a" * 65536, "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"),
        (b"a" * 1024, "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"),
        (b"", "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"),
    ]

    def request(self) -> signer.SignedRequest:
        return s3_request(
            "PUT", "/examplebucket/chunkObject.txt",
            [("x-amz-storage-class", "REDUCED_REDUNDANCY"),
             ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
             ("Content-Encoding", "aws-chunked"),
             ("x-amz-decoded-content-length", "66560"),
             ("Content-Length", "66824")],
            "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
            "x-amz-decoded-content-length;x-amz-storage-class", self.SEED,
            host="s3.amazonaws.com")

    def test_seed_and_chunks(self) -> None:
        """The seed signature verifies, then each chunk in turn."""
        creds = verify_s3(self.request())
        self.assertTrue(creds.is_streaming)
        chunks = signer.streaming_chunk_signer(creds, S3_SECRET)
        for data, signature in self.CHUNKS:
            chunks.verify_chunk(hashlib.sha256(data).hexdigest(), signature)
        self.assertEqual(chunks.previous_signature, self.CHUNKS[-1][1])

    def test_chunk_signer_directly(self) -> None:
        """ChunkSigner built by hand signs the published chain."""
        key = signer.signing_key(S3_SECRET, signer.Scope("20130524", "us-east-1", "s3"))
        chunks = signer.ChunkSigner(key, S3_DATE, "20130524/us-east-1/s3/aws4_request",
                                    self.SEED)
        self.assertEqual([chunks.sign_chunk(hashlib.sha256(data).hexdigest())
                          for data, _ in self.CHUNKS],
                         [signature for _, signature in self.CHUNKS])

    def test_tampered_chunk(self) -> None:
        """A changed byte breaks that chunk's signature; the chain stays put."""
        creds = verify_s3(self.request())
        chunks = signer.streaming_chunk_signer(creds, S3_SECRET)
        data, signature = self.CHUNKS[0]
        self.assertRaises(signer.SignatureMismatch, chunks.verify_chunk,
                          hashlib.sha256(b"b" + data[1:]).hexdigest(), signature)
        self.assertEqual(chunks.previous_signature, self.SEED)

    def test_chunks_out_of_order(self) -> None:
        """Chunks cannot be replayed in another order."""
        creds = verify_s3(self.request())
        chunks = signer.streaming_chunk_signer(creds, S3_SECRET)
        data, signature = self.CHUNKS[1]
        self.assertRaises(signer.SignatureMismatch, chunks.verify_chunk,
                          hashlib.sha256(data).hexdigest(), signature)

    def test_not_streaming(self) -> None:
        """A request that is not aws-chunked has no chunk signer."""
        req = s3_request(
            "GET", "/?lifecycle", [("x-amz-content-sha256", signer.EMPTY_SHA256)],
            "host;x-amz-content-sha256;x-amz-date",
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")
        self.assertRaises(ValueError, signer.streaming_chunk_signer,
                          verify_s3(req), S3_SECRET)
