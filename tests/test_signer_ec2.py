"""
EC2 Query API authentication: Signature Version 2 (the published example and
the client helper), SigV4 as EC2 sees it, and the errors AWS answers with.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

from twisted.trial import unittest

from nova import exception
from nova.auth import signer
from nova.auth.signing.encoding import (format_amz_date, format_iso8601,
                                        parse_iso8601)

ACCESS = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
NOW = 1_300_000_000.0
HOST = "127.0.0.1:8773"
PATH = "/services/Cloud/"


def signed_get(params: dict[str, str], host: str = HOST,
               path: str = PATH) -> signer.SignedRequest:
    query = urlencode(params, quote_via=lambda s, *a, **k: signer.aws_quote(s))
    return signer.SignedRequest.from_parts("GET", f"{path}?{query}", [("Host", host)])


def check(req: signer.SignedRequest, secret: str = SECRET,
          now: float = NOW) -> signer.Credentials:
    creds = signer.identify_ec2(req)
    signer.verify(req, creds, secret, now=now)
    return creds


class PublishedV2ExampleTests(unittest.TestCase):
    """
    The example of "Signature Version 2 signing process" in the AWS General
    Reference (https://docs.aws.amazon.com/general/latest/gr/signature-version-2.html):
    DescribeJobFlows on elasticmapreduce.amazonaws.com.
    """

    URI = ("/?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Action=DescribeJobFlows"
           "&SignatureMethod=HmacSHA256&SignatureVersion=2"
           "&Timestamp=2011-10-03T15%3A19%3A30&Version=2009-03-31"
           "&Signature=i91nKc4PWAt0JJIdXwz9HxZCJDdiy6cf%2FMj6vPxyYIs%3D")
    WHEN = parse_iso8601("2011-10-03T15:19:30")

    def request(self, uri: str | None = None) -> signer.SignedRequest:
        return signer.SignedRequest.from_parts(
            "GET", uri or self.URI, [("Host", "elasticmapreduce.amazonaws.com")])

    def test_string_to_sign(self) -> None:
        """The canonical string shown in the documentation."""
        req = self.request()
        self.assertEqual(
            signer.string_to_sign_v2("GET", req.host, req.path, req.query),
            "GET\nelasticmapreduce.amazonaws.com\n/\n"
            "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Action=DescribeJobFlows"
            "&SignatureMethod=HmacSHA256&SignatureVersion=2"
            "&Timestamp=2011-10-03T15%3A19%3A30&Version=2009-03-31")

    def test_verifies(self) -> None:
        """The published signature verifies."""
        creds = check(self.request(), now=self.WHEN + 60)
        self.assertEqual((creds.scheme, creds.access_key, creds.signature_method),
                         (signer.Scheme.EC2_V2, ACCESS, "HmacSHA256"))

    def test_helper_reproduces_it(self) -> None:
        """sign_ec2_v2 produces the published signature."""
        params = signer.sign_ec2_v2(
            {"Action": "DescribeJobFlows", "Version": "2009-03-31",
             "Timestamp": "2011-10-03T15:19:30"}, ACCESS, SECRET, "GET",
            "elasticmapreduce.amazonaws.com", "/")
        self.assertEqual(params["Signature"],
                         "i91nKc4PWAt0JJIdXwz9HxZCJDdiy6cf/Mj6vPxyYIs=")

    def test_tampered_parameter(self) -> None:
        """Changing a parameter breaks the signature."""
        req = self.request(self.URI.replace("DescribeJobFlows", "RunJobFlow"))
        error = self.assertRaises(signer.SignatureMismatch, check, req,
                                  now=self.WHEN)
        self.assertIsInstance(error, exception.SignatureDoesNotMatch)
        self.assertIn("Action=RunJobFlow", error.string_to_sign)

    def test_wrong_secret(self) -> None:
        """Another secret key does not verify."""
        self.assertRaises(signer.SignatureMismatch, check, self.request(),
                          SECRET + "x", self.WHEN)

    def test_timestamp_too_old(self) -> None:
        """Sixteen minutes late: RequestExpired."""
        error = self.assertRaises(signer.RequestExpired, check, self.request(),
                                  now=self.WHEN + 16 * 60)
        self.assertEqual((error.code, error.status), ("RequestExpired", 400))


class SigV2Tests(unittest.TestCase):
    """SigV2 requests as boto 2 and euca2ools send them."""

    def params(self, **extra: str) -> dict[str, str]:
        return {"Action": "DescribeInstances", "Version": "2010-08-31", **extra}

    def test_get_sha256(self) -> None:
        """A GET signed with HmacSHA256 over host:port verifies."""
        signed = signer.sign_ec2_v2(self.params(), ACCESS, SECRET, "GET", HOST,
                                    PATH, now=NOW)
        check(signed_get(signed))

    def test_get_sha1(self) -> None:
        """HmacSHA1 is accepted too."""
        signed = signer.sign_ec2_v2(self.params(), ACCESS, SECRET, "GET", HOST,
                                    PATH, signature_method="HmacSHA1", now=NOW)
        self.assertEqual(check(signed_get(signed)).signature_method, "HmacSHA1")

    def test_post_form_body(self) -> None:
        """Parameters in an x-www-form-urlencoded body are read and signed."""
        signed = signer.sign_ec2_v2(self.params(**{"Filter.1.Value.1": "a b+c"}),
                                    ACCESS, SECRET, "POST", HOST, PATH, now=NOW)
        body = urlencode(signed).encode("ascii")
        req = signer.SignedRequest.from_parts(
            "POST", PATH, [("Host", HOST), ("Content-Type",
                                            "application/x-www-form-urlencoded")],
            body)
        check(req)
        self.assertIn(("Filter.1.Value.1", "a b+c"), req.body_params)

    def test_host_without_port(self) -> None:
        """boto 2.49 signs the bare host name while sending host:port."""
        signed = signer.sign_ec2_v2(self.params(), ACCESS, SECRET, "GET",
                                    "127.0.0.1", PATH, now=NOW)
        check(signed_get(signed, host=HOST))

    def test_host_case(self) -> None:
        """The host is compared in lower case."""
        signed = signer.sign_ec2_v2(self.params(), ACCESS, SECRET, "GET",
                                    "Cloud.Example:8773", PATH, now=NOW)
        check(signed_get(signed, host="cloud.example:8773"))

    def test_other_host_refused(self) -> None:
        """A signature for another host does not verify."""
        signed = signer.sign_ec2_v2(self.params(), ACCESS, SECRET, "GET",
                                    "10.0.0.1:8773", PATH, now=NOW)
        self.assertRaises(signer.SignatureMismatch, check, signed_get(signed))

    def test_access_key_with_project(self) -> None:
        """nova's access:project form is carried through untouched."""
        signed = signer.sign_ec2_v2(self.params(), "key:proj", SECRET, "GET",
                                    HOST, PATH, now=NOW)
        self.assertEqual(check(signed_get(signed)).access_key, "key:proj")

    def test_unicode_parameter(self) -> None:
        """Non-ASCII values are signed as their UTF-8 encoding."""
        signed = signer.sign_ec2_v2(self.params(GroupDescription="caf\u00e9 \u2603"),
                                    ACCESS, SECRET, "GET", HOST, PATH, now=NOW)
        check(signed_get(signed))

    def test_timestamp_in_future(self) -> None:
        """A Timestamp more than 15 minutes ahead is refused."""
        signed = signer.sign_ec2_v2(self.params(), ACCESS, SECRET, "GET", HOST,
                                    PATH, now=NOW + 901)
        self.assertRaises(signer.RequestExpired, check, signed_get(signed))

    def test_expires(self) -> None:
        """Expires instead of Timestamp: valid until then (plus the skew)."""
        expires = format_iso8601(NOW + 3600)
        signed = signer.sign_ec2_v2(self.params(Expires=expires), ACCESS,
                                    SECRET, "GET", HOST, PATH)
        self.assertNotIn("Timestamp", signed)
        check(signed_get(signed), now=NOW + 3600)
        self.assertRaises(signer.RequestExpired, check, signed_get(signed),
                          now=NOW + 3600 + 901)

    def test_sign_helper_validates_method(self) -> None:
        self.assertRaises(ValueError, signer.sign_ec2_v2, {}, ACCESS, SECRET,
                          "GET", HOST, PATH, signature_method="HmacMD5")


class IdentifyErrorTests(unittest.TestCase):
    """Malformed or missing authentication gets AWS's error codes."""

    def assertCode(self, error_type: type, code: str,
                   params: dict[str, str]) -> None:
        error = self.assertRaises(error_type, signer.identify_ec2,
                                  signed_get(params))
        self.assertIsInstance(error, exception.AuthFailure)
        self.assertEqual(error.code, code)

    def base(self, **changes: str) -> dict[str, str]:
        params = {"Action": "DescribeInstances", "AWSAccessKeyId": ACCESS,
                  "SignatureVersion": "2", "SignatureMethod": "HmacSHA256",
                  "Timestamp": "2011-03-13T07:06:40Z", "Signature": "c2ln"}
        params.update(changes)
        return {name: value for name, value in params.items() if value != "-"}

    def test_no_authentication(self) -> None:
        self.assertCode(signer.MissingAuthenticationToken,
                        "MissingAuthenticationToken", {"Action": "DescribeInstances"})

    def test_signature_versions_0_and_1(self) -> None:
        for version in ("0", "1"):
            self.assertCode(signer.UnsupportedSignatureVersion,
                            "InvalidParameterValue",
                            self.base(SignatureVersion=version))

    def test_missing_signature_version(self) -> None:
        self.assertCode(signer.IncompleteSignature, "IncompleteSignature",
                        self.base(SignatureVersion="-"))

    def test_missing_parameters(self) -> None:
        for name in ("AWSAccessKeyId", "Signature", "SignatureMethod"):
            self.assertCode(signer.IncompleteSignature, "IncompleteSignature",
                            self.base(**{name: "-"}))

    def test_unknown_signature_method(self) -> None:
        self.assertCode(signer.UnsupportedSignatureVersion, "InvalidParameterValue",
                        self.base(SignatureMethod="HmacMD5"))

    def test_timestamp_and_expires(self) -> None:
        self.assertCode(signer.IncompleteSignature, "IncompleteSignature",
                        self.base(Expires="2011-03-13T07:16:40Z"))
        self.assertCode(signer.IncompleteSignature, "IncompleteSignature",
                        self.base(Timestamp="-"))

    def test_bad_timestamp(self) -> None:
        self.assertCode(signer.IncompleteSignature, "IncompleteSignature",
                        self.base(Timestamp="yesterday"))

    def test_malformed_v4_header(self) -> None:
        for header in ("AWS4-HMAC-SHA256 Credential=a/20110313/r/ec2/aws4_request",
                       "AWS4-HMAC-SHA256 Credential=a/2011/r/ec2/aws4_request,"
                       " SignedHeaders=host, Signature=00",
                       "AWS4-HMAC-SHA256 Credential=a/20110313/r/ec2/aws4_request,"
                       " SignedHeaders=x-amz-date, Signature=00",
                       "AWS4-HMAC-SHA1 Credential=a/20110313/r/ec2/aws4_request,"
                       " SignedHeaders=host, Signature=00"):
            req = signer.SignedRequest.from_parts(
                "GET", PATH, [("Host", HOST), ("X-Amz-Date", "20110313T071640Z"),
                              ("Authorization", header)])
            self.assertRaises(signer.IncompleteSignature, signer.identify_ec2, req)


class SigV4ForEC2Tests(unittest.TestCase):
    """SigV4 requests to the EC2 API, signed with the client helpers."""

    def request(self, now: float = NOW, service: str = "ec2",
                region: str = "nova", body: bytes = b"Action=DescribeInstances",
                date_override: str | None = None) -> signer.SignedRequest:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        added = signer.sign_v4_headers(
            "POST", HOST, PATH, [], headers, ACCESS, SECRET, region, service,
            payload_sha256=hashlib.sha256(body).hexdigest(), now=now)
        if date_override:
            added["X-Amz-Date"] = date_override
        return signer.SignedRequest.from_parts(
            "POST", PATH, [("Host", HOST), *headers.items(), *added.items()], body)

    def test_header_signed(self) -> None:
        creds = check(self.request())
        self.assertEqual((creds.scheme, creds.region, creds.scope.service),
                         (signer.Scheme.SIGV4_HEADER, "nova", "ec2"))

    def test_body_tampered(self) -> None:
        req = self.request()
        changed = signer.SignedRequest.from_parts(
            "POST", PATH, list(req.headers.items()), b"Action=TerminateInstances")
        self.assertRaises(signer.SignatureMismatch, check, changed)

    def test_skew_is_request_expired(self) -> None:
        """EC2 answers RequestExpired where S3 says RequestTimeTooSkewed."""
        error = self.assertRaises(signer.RequestExpired, check, self.request(),
                                  now=NOW + 901)
        self.assertEqual(error.code, "RequestExpired")
        check(self.request(), now=NOW + 899)

    def test_scope_date_mismatch(self) -> None:
        req = self.request(date_override=format_amz_date(NOW + 86400))
        error = self.assertRaises(signer.SignatureMismatch, signer.identify_ec2, req)
        self.assertIn("Credential scope", error.message)

    def test_wrong_service(self) -> None:
        error = self.assertRaises(signer.SignatureMismatch, signer.identify_ec2,
                                  self.request(service="s3"))
        self.assertIn("'ec2'", error.message)

    def test_boto2_service_from_host(self) -> None:
        """boto 2 signs 127.0.0.1 as service "127", region "0": accepted."""
        self.assertEqual(check(self.request(service="127", region="0")).region, "0")

    def test_presigned(self) -> None:
        """SigV4 query authentication on the EC2 API, with X-Amz-Expires."""
        pairs = signer.presign_v4("GET", HOST, PATH, [("Action", "DescribeRegions")],
                                  ACCESS, SECRET, "nova", "ec2", expires=300,
                                  now=NOW)
        req = signed_get(dict(pairs))
        creds = check(req, now=NOW + 300)
        self.assertEqual(creds.scheme, signer.Scheme.SIGV4_QUERY)
        self.assertRaises(signer.RequestExpired, check, req, now=NOW + 301)

    def test_presigned_missing_parameter(self) -> None:
        pairs = dict(signer.presign_v4("GET", HOST, PATH, [], ACCESS, SECRET,
                                       "nova", "ec2", now=NOW))
        del pairs["X-Amz-SignedHeaders"]
        self.assertRaises(signer.IncompleteSignature, signer.identify_ec2,
                          signed_get(pairs))
