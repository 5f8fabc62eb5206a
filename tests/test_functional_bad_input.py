"""
Functional: malformed HTTP requests against the running API get EC2 error
XML with the right status, and change nothing.
"""

from __future__ import annotations

import http.client
from urllib.parse import urlencode
from xml.etree import ElementTree

from twisted.trial import unittest

from nova.auth.signer import sign_ec2_v2
from tests.support.allinone import shared
from tests.support.clients import Tenant


class BadInputTests(unittest.TestCase):
    def setUp(self) -> None:
        self.cloud = shared()
        self.tenant = Tenant(self.cloud)
        self.addCleanup(self.tenant.remove)

    def send(self, method: str, target: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, str | None]:
        conn = http.client.HTTPConnection("127.0.0.1", self.cloud.ec2_port, timeout=30)
        self.addCleanup(conn.close)
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        code = ElementTree.fromstring(data).findtext("Errors/Error/Code") if data else None
        return response.status, code

    def signed(self, params: dict[str, str], method: str = "GET") -> str:
        return urlencode(sign_ec2_v2({"Version": "2016-11-15", **params}, self.tenant.access,
                                     self.tenant.secret, method,
                                     f"127.0.0.1:{self.cloud.ec2_port}", "/services/Cloud"))

    def test_body_over_a_mebibyte(self) -> None:
        form = self.signed({"Action": "ImportKeyPair", "KeyName": "big"}, "POST")
        body = (form + "&PublicKeyMaterial=" + "A" * (1024 * 1024 + 10)).encode()
        status, code = self.send("POST", "/services/Cloud", body,
                                 {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual((status, code), (413, "RequestEntityTooLarge"))
        self.assertEqual(self.tenant.boto3().describe_key_pairs()["KeyPairs"], [])

    def test_malformed_query_string(self) -> None:
        status, code = self.send("GET", "/services/Cloud?Action=DescribeRegions&%zz=&&=")
        self.assertEqual((status, code), (400, "MalformedQueryString"))

    def test_unknown_action(self) -> None:
        status, code = self.send("GET", "/services/Cloud?" + self.signed({"Action": "Explode"}))
        self.assertEqual((status, code), (400, "InvalidAction"))

    def test_signature_version_1_refused(self) -> None:
        query = urlencode({"Action": "DescribeRegions", "AWSAccessKeyId": self.tenant.access,
                           "SignatureVersion": "1", "Signature": "x",
                           "Timestamp": "2026-01-01T00:00:00Z"})
        status, code = self.send("GET", "/services/Cloud?" + query)
        self.assertEqual(status // 100, 4)
        self.assertIsNotNone(code)

    def test_expired_request(self) -> None:
        query = self.signed({"Action": "DescribeRegions", "Expires": "2001-01-01T00:00:00Z"})
        status, code = self.send("GET", "/services/Cloud?" + query)
        self.assertEqual(code, "RequestExpired")

    def test_versions_listing(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.cloud.ec2_port, timeout=30)
        self.addCleanup(conn.close)
        conn.request("GET", "/")
        response = conn.getresponse()
        self.assertEqual(response.status, 200)
        self.assertIn(b"2009-04-04", response.read())
