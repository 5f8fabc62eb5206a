"""
The request view, AWS percent-encoding and the timestamp parsers the
signature schemes share.
"""

from __future__ import annotations

import calendar
import hashlib

from twisted.trial import unittest

from nova.auth import signer
from nova.auth.signing.encoding import (aws_unquote, format_amz_date,
                                        format_iso8601, parse_amz_date,
                                        parse_http_date, parse_iso8601)
from nova.auth.signing.sigv4 import canonical_query, canonical_uri

WHEN = float(calendar.timegm((2011, 10, 3, 15, 19, 30)))


class FromPartsTests(unittest.TestCase):

    def test_split_uri_and_fold_headers(self) -> None:
        req = signer.SignedRequest.from_parts(
            b"get", b"/a%20b/c?x=1&y=%2B+&z&x=2",
            [(b"Host", b"h:1"), (b"X-Amz-Meta-A", b" one "),
             ("x-amz-meta-a", "two"), ("Content-Type", ["text/plain"])])
        self.assertEqual((req.method, req.host, req.path), ("GET", "h:1", "/a%20b/c"))
        self.assertEqual(req.query, (("x", "1"), ("y", "++"), ("z", ""), ("x", "2")))
        self.assertEqual(req.raw_query, "x=1&y=%2B+&z&x=2")
        self.assertEqual(req.headers["x-amz-meta-a"], "one,two")
        self.assertEqual(req.headers["content-type"], "text/plain")
        self.assertIsNone(req.payload_sha256)
        self.assertEqual(req.query_value("x"), "1")
        self.assertIsNone(req.query_value("missing"))

    def test_form_body(self) -> None:
        """A POSTed form is decoded (+ is a space there) and hashed."""
        req = signer.SignedRequest.from_parts(
            "POST", "/", {"Host": "h", "Content-Type":
                          "application/x-www-form-urlencoded; charset=UTF-8"},
            b"Action=Run&Data=a+b%2Bc")
        self.assertEqual(req.body_params, (("Action", "Run"), ("Data", "a b+c")))
        self.assertEqual(req.payload_sha256,
                         hashlib.sha256(b"Action=Run&Data=a+b%2Bc").hexdigest())
        self.assertEqual(req.all_params()[0], ("Action", "Run"))

    def test_form_body_only_when_asked(self) -> None:
        headers = {"Host": "h", "Content-Type": "application/x-www-form-urlencoded"}
        self.assertEqual(signer.SignedRequest.from_parts(
            "PUT", "/", headers, b"a=1").body_params, ())
        self.assertEqual(signer.SignedRequest.from_parts(
            "POST", "/", headers, b"a=1", form_body=False).body_params, ())
        self.assertEqual(signer.SignedRequest.from_parts(
            "PUT", "/", {"Host": "h"}, b"a=1", form_body=True).body_params,
            (("a", "1"),))

    def test_absolute_form_target(self) -> None:
        req = signer.SignedRequest.from_parts("GET", "http://h:8773/a/b?x=1",
                                              {"Host": "h:8773"})
        self.assertEqual((req.path, req.query), ("/a/b", (("x", "1"),)))
        req = signer.SignedRequest.from_parts("GET", "http://h?x=1", {"Host": "h"})
        self.assertEqual((req.path, req.query), ("/", (("x", "1"),)))

    def test_empty_path(self) -> None:
        req = signer.SignedRequest.from_parts("GET", "", {"Host": "h"})
        self.assertEqual((req.path, req.raw_query), ("/", None))

    def test_non_utf8_bytes_survive(self) -> None:
        """Bytes that are not UTF-8 come back unchanged when encoded again."""
        req = signer.SignedRequest.from_parts("GET", b"/k?v=%FF", {"Host": "h"})
        self.assertEqual(signer.aws_quote(req.query[0][1]), "%FF")


class EncodingTests(unittest.TestCase):

    def test_aws_quote(self) -> None:
        self.assertEqual(signer.aws_quote("AZaz09-_.~"), "AZaz09-_.~")
        self.assertEqual(signer.aws_quote("a b+c*d/e=&"), "a%20b%2Bc%2Ad%2Fe%3D%26")
        self.assertEqual(signer.aws_quote("a/b", safe="/"), "a/b")
        self.assertEqual(signer.aws_quote("\u00e9"), "%C3%A9")

    def test_query_plus_is_literal(self) -> None:
        """In URL queries AWS clients send %20 for spaces; + stays a +."""
        self.assertEqual(signer.parse_query("a=x+y"), [("a", "x+y")])
        self.assertEqual(signer.parse_query("a=x+y", plus_as_space=True),
                         [("a", "x y")])
        self.assertEqual(aws_unquote("%7e%7E"), "~~")

    def test_canonical_query(self) -> None:
        self.assertEqual(canonical_query([("b", "2"), ("a", "x y"), ("a", "+"),
                                          ("X-Amz-Signature", "s")],
                                         exclude=["X-Amz-Signature"]),
                         "a=%2B&a=x%20y&b=2")

    def test_canonical_uri(self) -> None:
        """Other services: normalised, encoded again; S3: encoded once."""
        self.assertEqual(canonical_uri("/a/./b/../c//d/", s3=False), "/a/c/d/")
        self.assertEqual(canonical_uri("/a%20b", s3=False), "/a%2520b")
        self.assertEqual(canonical_uri("", s3=False), "/")
        self.assertEqual(canonical_uri("/a/./b//c", s3=True), "/a/./b//c")
        self.assertEqual(canonical_uri("/a%20b/c$d%c3%a9", s3=True),
                         "/a%20b/c%24d%C3%A9")


class TimeTests(unittest.TestCase):

    def test_amz_date(self) -> None:
        self.assertEqual(parse_amz_date("20111003T151930Z"), WHEN)
        self.assertEqual(format_amz_date(WHEN), "20111003T151930Z")
        for bad in ("20111003T151930", "2011-10-03T15:19:30Z", "20111303T151930Z", ""):
            self.assertIsNone(parse_amz_date(bad))

    def test_iso8601(self) -> None:
        for text in ("2011-10-03T15:19:30", "2011-10-03T15:19:30Z",
                     "2011-10-03T15:19:30.000Z", "2011-10-03T17:19:30+02:00",
                     "2011-10-03T10:19:30-0500"):
            self.assertEqual(parse_iso8601(text), WHEN, text)
        self.assertEqual(format_iso8601(WHEN), "2011-10-03T15:19:30Z")
        for bad in ("yesterday", "2011-10-03", "2011-13-03T15:19:30Z"):
            self.assertIsNone(parse_iso8601(bad))

    def test_http_date(self) -> None:
        for text in ("Mon, 03 Oct 2011 15:19:30 GMT", "Mon, 03 Oct 2011 15:19:30 +0000",
                     "Monday, 03-Oct-11 15:19:30 GMT", "Mon Oct  3 15:19:30 2011",
                     "20111003T151930Z", "2011-10-03T15:19:30Z"):
            self.assertEqual(parse_http_date(text), WHEN, text)
        for bad in ("", "soon", "Mon, 99 Oct 2011 15:19:30 GMT"):
            self.assertIsNone(parse_http_date(bad))
