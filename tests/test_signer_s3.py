"""
S3 REST authentication: Signature Version 2 against the published examples,
virtual-hosted buckets, sub-resources, and the errors S3 answers with.
"""

from __future__ import annotations

from twisted.trial import unittest

from nova import exception
from nova.auth import signer
from nova.auth.signing.encoding import parse_http_date

ACCESS = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SERVICE_HOSTS = ["s3.amazonaws.com"]


def request(method: str, uri: str, headers: list[tuple[str, str]],
            allow_cname: bool = False) -> signer.SignedRequest:
    host = dict(headers)["Host"]
    return signer.SignedRequest.from_parts(
        method, uri, headers,
        virtual_bucket=signer.bucket_from_host(host, SERVICE_HOSTS, allow_cname))


def check(req: signer.SignedRequest, now: float) -> signer.Credentials:
    creds = signer.identify_s3(req)
    signer.verify(req, creds, SECRET, now=now)
    return creds


class PublishedV2ExampleTests(unittest.TestCase):
    """
    "Authentication examples" of "Signing and authenticating REST requests
    (AWS signature version 2)"
    (https://docs.aws.amazon.com/AmazonS3/latest/API/RESTAuthentication.html).

    The page was later edited to say "awsexamplebucket1" where it said
    "johnsmith", but the signatures were not recomputed: they are the
    johnsmith ones, so the bucket here is johnsmith.
    """

    def example(self, method: str, uri: str, date: str, signature: str,
                headers: list[tuple[str, str]] = (),  # type: ignore[assignment]
                host: str = "johnsmith.s3.amazonaws.com",
                date_header: str = "Date") -> signer.Credentials:
        authorization = f"AWS {ACCESS}:{signature}"
        req = request(method, uri, [("Host", host), (date_header, date),
                                    *headers, ("Authorization", authorization)],
                      allow_cname=True)
        return check(req, parse_http_date(date))

    def test_object_get(self) -> None:
        creds = self.example("GET", "/photos/puppy.jpg",
                             "Tue, 27 Mar 2007 19:36:42 +0000",
                             "bWq2s1WEIj+Ydj0vQ697zp+IXMU=")
        self.assertEqual((creds.scheme, creds.access_key),
                         (signer.Scheme.S3_V2_HEADER, ACCESS))

    def test_object_put(self) -> None:
        self.example("PUT", "/photos/puppy.jpg", "Tue, 27 Mar 2007 21:15:45 +0000",
                     "MyyxeRY7whkBe+bq8fHCL/2kKUg=",
                     [("Content-Type", "image/jpeg"), ("Content-Length", "94328")])

    def test_list(self) -> None:
        """Query parameters that are not sub-resources are not signed."""
        self.example("GET", "/?prefix=photos&max-keys=50&marker=puppy",
                     "Tue, 27 Mar 2007 19:42:41 +0000",
                     "htDYFYduRNen8P9ZfE/s9SuKy0U=", [("User-Agent", "Mozilla/5.0")])

    def test_fetch_acl(self) -> None:
        """The ?acl sub-resource is part of the resource."""
        self.example("GET", "/?acl", "Tue, 27 Mar 2007 19:44:46 +0000",
                     "c2WLPFtWHVgbEmeEG93a4cG37dM=")

    def test_delete_with_x_amz_date(self) -> None:
        """Path style; x-amz-date replaces Date in the string to sign."""
        self.example("DELETE", "/johnsmith/photos/puppy.jpg",
                     "Tue, 27 Mar 2007 21:20:27 +0000",
                     "lx3byBScXR6KzyMaifNkardMwNk=",
                     [("User-Agent", "dotnet"),
                      ("x-amz-date", "Tue, 27 Mar 2007 21:20:26 +0000")],
                     host="s3.amazonaws.com")

    def test_upload_cname_bucket(self) -> None:
        """CNAME bucket, sorted and joined x-amz-* headers, Content-MD5."""
        self.example(
            "PUT", "/db-backup.dat.gz", "Tue, 27 Mar 2007 21:06:08 +0000",
            "ilyl83RwaSoYIEdixDQcA4OnAnc=",
            [("User-Agent", "curl/7.15.5"), ("x-amz-acl", "public-read"),
             ("content-type", "application/x-download"),
             ("Content-MD5", "4gJE4saaMU4BqNR0kLY+lw=="),
             ("X-Amz-Meta-ReviewedBy", "joe@johnsmith.net"),
             ("X-Amz-Meta-ReviewedBy", "jane@johnsmith.net"),
             ("X-Amz-Meta-FileChecksum", "0x02661779"),
             ("X-Amz-Meta-ChecksumAlgorithm", "crc32"),
             ("Content-Disposition", "attachment; filename=database.dat"),
             ("Content-Encoding", "gzip"), ("Content-Length", "5913339")],
            host="static.johnsmith.net:8080")

    def test_list_all_my_buckets(self) -> None:
        self.example("GET", "/", "Wed, 28 Mar 2007 01:29:59 +0000",
                     "qGdzdERIC03wnaRNKh6OqZehG9s=", host="s3.amazonaws.com")

    def test_unicode_keys(self) -> None:
        """The path is signed exactly as sent, escapes and case included."""
        self.example("GET", "/dictionary/fran%C3%A7ais/pr%c3%a9f%c3%a8re",
                     "Wed, 28 Mar 2007 01:49:49 +0000",
                     "DNEZGsoieTZ92F3bUfSPQcbGmlM=", host="s3.amazonaws.com")

    def test_query_string_authentication(self) -> None:
        """The presigned example: valid until Expires, AccessDenied after."""
        req = request("GET", "/photos/puppy.jpg?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE"
                      "&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D&Expires=1175139620",
                      [("Host", "johnsmith.s3.amazonaws.com")])
        creds = check(req, 1175139620)
        self.assertEqual(creds.scheme, signer.Scheme.S3_V2_QUERY)
        error = self.assertRaises(signer.AccessDenied, check, req, 1175139621)
        self.assertEqual(error.message, "Request has expired")

    def test_helpers_reproduce_examples(self) -> None:
        req = request("GET", "/photos/puppy.jpg",
                      [("Host", "johnsmith.s3.amazonaws.com"),
                       ("Date", "Tue, 27 Mar 2007 19:36:42 +0000")])
        self.assertEqual(signer.sign_s3_v2(req, ACCESS, SECRET),
                         f"AWS {ACCESS}:bWq2s1WEIj+Ydj0vQ697zp+IXMU=")
        bare = request("GET", "/photos/puppy.jpg",
                       [("Host", "johnsmith.s3.amazonaws.com")])
        self.assertEqual(dict(signer.presign_s3_v2(bare, ACCESS, SECRET,
                                                   1175139620))["Signature"],
                         "NpgCjnDzrM+WFzoENXmpNDUsSn8=")

    def test_tampered(self) -> None:
        """Another key under the GET example's signature is refused."""
        date = "Tue, 27 Mar 2007 19:36:42 +0000"
        req = request("GET", "/photos/kitten.jpg",
                      [("Host", "johnsmith.s3.amazonaws.com"), ("Date", date),
                       ("Authorization", f"AWS {ACCESS}:bWq2s1WEIj+Ydj0vQ697zp+IXMU=")])
        error = self.assertRaises(signer.SignatureMismatch, check, req,
                                  parse_http_date(date))
        self.assertTrue(error.string_to_sign.endswith("/johnsmith/photos/kitten.jpg"))
        self.assertEqual(error.status, 403)


class CanonicalResourceTests(unittest.TestCase):
    """The parts of the SigV2 string to sign that vary between clients."""

    def sts(self, uri: str, headers: list[tuple[str, str]] = (),  # type: ignore[assignment]
            host: str = "s3.example") -> str:
        return signer.string_to_sign_s3v2(
            request("GET", uri, [("Host", host), *headers]))

    def test_subresources_sorted_and_decoded(self) -> None:
        text = self.sts("/b/k?versionId=v%2B1&uploadId=u&partNumber=2&foo=bar"
                        "&response-content-type=text%2Fplain")
        self.assertTrue(text.endswith(
            "/b/k?partNumber=2&response-content-type=text/plain&uploadId=u"
            "&versionId=v+1"), text)

    def test_empty_subresource_as_sent(self) -> None:
        """?acl and ?acl= are different strings, as botocore and boto sign them."""
        self.assertTrue(self.sts("/b?acl").endswith("/b?acl"))
        self.assertTrue(self.sts("/b?acl=").endswith("/b?acl="))

    def test_amz_headers_replace_date(self) -> None:
        text = self.sts("/b", [("Date", "d1"), ("X-Amz-Date", "d2"),
                               ("X-Amz-Meta-A", " x "), ("x-amz-meta-a", "y")])
        self.assertEqual(text, "GET\n\n\n\nx-amz-date:d2\nx-amz-meta-a:x,y\n/b")

    def test_bucket_from_host(self) -> None:
        self.assertEqual(signer.bucket_from_host("b1.s3.amazonaws.com:3333",
                                                 SERVICE_HOSTS), "b1")
        self.assertEqual(signer.bucket_from_host("a.b.s3.amazonaws.com",
                                                 SERVICE_HOSTS), "a.b")
        self.assertIsNone(signer.bucket_from_host("S3.amazonaws.com", SERVICE_HOSTS))
        self.assertIsNone(signer.bucket_from_host("other.example", SERVICE_HOSTS))
        self.assertEqual(signer.bucket_from_host("other.example", SERVICE_HOSTS,
                                                 allow_cname=True), "other.example")
        self.assertIsNone(signer.bucket_from_host("127.0.0.1:3333", SERVICE_HOSTS,
                                                  allow_cname=True))


class IdentifyErrorTests(unittest.TestCase):
    """Malformed or missing S3 authentication."""

    DATE = "Tue, 27 Mar 2007 19:36:42 +0000"

    def identify(self, uri: str = "/b/k",
                 headers: list[tuple[str, str]] = ()) -> signer.Credentials:  # type: ignore[assignment]
        return signer.identify_s3(request("GET", uri, [("Host", "s3.example"),
                                                       *headers]))

    def assertCode(self, error_type: type, code: str, status: int,
                   uri: str = "/b/k", headers: list[tuple[str, str]] = ()) -> None:  # type: ignore[assignment]
        error = self.assertRaises(error_type, self.identify, uri, headers)
        self.assertIsInstance(error, exception.AuthFailure)
        self.assertEqual((error.code, error.status), (code, status))

    def test_anonymous(self) -> None:
        self.assertCode(signer.AnonymousRequest, "AccessDenied", 403)

    def test_unsupported_authorization(self) -> None:
        self.assertCode(signer.InvalidArgument, "InvalidArgument", 400,
                        headers=[("Authorization", "Bearer abc")])

    def test_two_mechanisms(self) -> None:
        self.assertCode(signer.InvalidArgument, "InvalidArgument", 400,
                        uri="/b/k?AWSAccessKeyId=a&Expires=1&Signature=s",
                        headers=[("Authorization", "AWS a:b"), ("Date", self.DATE)])

    def test_v2_header_without_colon(self) -> None:
        self.assertCode(signer.InvalidArgument, "InvalidArgument", 400,
                        headers=[("Authorization", "AWS abc"), ("Date", self.DATE)])

    def test_v2_header_without_date(self) -> None:
        self.assertCode(signer.AccessDenied, "AccessDenied", 403,
                        headers=[("Authorization", "AWS a:b")])
        self.assertCode(signer.AccessDenied, "AccessDenied", 403,
                        headers=[("Authorization", "AWS a:b"), ("Date", "soon")])

    def test_v2_access_key_with_colon(self) -> None:
        """nova's access:project splits at the last colon."""
        creds = self.identify(headers=[("Authorization", "AWS key:proj:c2ln"),
                                       ("Date", self.DATE)])
        self.assertEqual((creds.access_key, creds.signature), ("key:proj", "c2ln"))

    def test_v2_query_incomplete(self) -> None:
        self.assertCode(signer.AccessDenied, "AccessDenied", 403,
                        uri="/b/k?AWSAccessKeyId=a&Signature=s")
        self.assertCode(signer.AccessDenied, "AccessDenied", 403,
                        uri="/b/k?AWSAccessKeyId=a&Signature=s&Expires=soon")

    def v4_header(self, credential: str = "a/20130524/us-east-1/s3/aws4_request",
                  signed: str = "host;x-amz-content-sha256;x-amz-date",
                  content: str | None = signer.EMPTY_SHA256,
                  date: str = "20130524T000000Z") -> list[tuple[str, str]]:
        headers = [("x-amz-date", date), ("Authorization",
                   f"AWS4-HMAC-SHA256 Credential={credential},"
                   f"SignedHeaders={signed},Signature=00")]
        if content is not None:
            headers.append(("x-amz-content-sha256", content))
        return headers

    def test_v4_header_malformed(self) -> None:
        for headers in (self.v4_header(credential="a/20130524/us-east-1/s3"),
                        self.v4_header(signed="x-amz-date"),
                        self.v4_header(credential="a/20130525/us-east-1/s3/aws4_request"),
                        self.v4_header(credential="a/20130524/us-east-1/ec2/aws4_request")):
            self.assertCode(signer.AuthorizationHeaderMalformed,
                            "AuthorizationHeaderMalformed", 400, headers=headers)

    def test_v4_header_bad_date(self) -> None:
        self.assertCode(signer.AccessDenied, "AccessDenied", 403,
                        headers=self.v4_header(date="2013-05-24"))

    def test_v4_content_sha256(self) -> None:
        self.assertCode(signer.InvalidRequest, "InvalidRequest", 400,
                        headers=self.v4_header(content=None))
        self.assertCode(signer.InvalidArgument, "InvalidArgument", 400,
                        headers=self.v4_header(content="abc"))
        for marker in ("UNSIGNED-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                       "STREAMING-UNSIGNED-PAYLOAD-TRAILER"):
            self.assertEqual(
                self.identify(headers=self.v4_header(content=marker)).content_sha256,
                marker)

    def test_v4_query_errors(self) -> None:
        base = ("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
                "a%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date="
                "20130524T000000Z&X-Amz-SignedHeaders=host&X-Amz-Signature=00")
        for query in (base, base + "&X-Amz-Expires=-1",
                      base + "&X-Amz-Expires=soon",
                      base.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1")
                      + "&X-Amz-Expires=60",
                      base.replace("20130524T000000Z", "20130524")
                      + "&X-Amz-Expires=60"):
            self.assertCode(signer.AuthorizationQueryParametersError,
                            "AuthorizationQueryParametersError", 400,
                            uri="/b/k?" + query)
        self.assertEqual(self.identify("/b/k?" + base + "&X-Amz-Expires=60").expires,
                         "60")


class V2TimeTests(unittest.TestCase):
    """S3 SigV2 header requests must be within 15 minutes of the server."""

    def test_skew(self) -> None:
        date = "Tue, 27 Mar 2007 19:36:42 +0000"
        req = request("GET", "/photos/puppy.jpg",
                      [("Host", "johnsmith.s3.amazonaws.com"), ("Date", date),
                       ("Authorization", f"AWS {ACCESS}:bWq2s1WEIj+Ydj0vQ697zp+IXMU=")])
        when = parse_http_date(date)
        check(req, when + 900)
        error = self.assertRaises(signer.RequestTimeTooSkewed, check, req, when + 901)
        self.assertEqual((error.code, error.status), ("RequestTimeTooSkewed", 403))
        self.assertRaises(signer.RequestTimeTooSkewed, check, req, when - 901)
