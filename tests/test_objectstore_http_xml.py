"""
S3's XML documents: what is rendered parses with botocore's own S3 parser
(the s3 service model, no network) into what boto3 users get; what clients
send parses back, and hostile documents are refused.
"""

from __future__ import annotations

from urllib.parse import unquote_plus

import botocore.handlers
import botocore.parsers
import botocore.session
from twisted.trial import unittest

from nova.objectstore.errors import InvalidArgument, MalformedACLError, MalformedXML
from nova.objectstore.http import xmlrender
from nova.objectstore.http.auth import canonical_id
from nova.objectstore.http.errors import S3NotImplemented
from nova.objectstore.http.xmlparse import (parse_acl, parse_complete, parse_create_bucket,
                                            parse_delete)
from nova.objectstore.interfaces import (Bucket, Listing, NewObject, ObjectInfo, Owner, Part,
                                         Upload)

WEB = Owner(project_id="web", display_name="web")
WEB_ID = canonical_id("web")
T = 1445412480.25
_MODEL = botocore.session.get_session().get_service_model("s3")
_PARSER = botocore.parsers.create_parser("rest-xml")


def parse(operation: str, body: bytes, status: int = 200) -> dict:
    """@return: what boto3 makes of C{body} as the answer to C{operation}."""
    shape = _MODEL.operation_model(operation).output_shape
    return _PARSER.parse({"status_code": status, "headers": {}, "body": body}, shape)


def info(key: str, size: int = 3) -> ObjectInfo:
    return ObjectInfo(bucket="b", key=key, size=size, etag="0" * 32, last_modified=T, owner=WEB)


class ListingTests(unittest.TestCase):
    def test_list_buckets(self) -> None:
        body = xmlrender.list_buckets(WEB, WEB_ID, [
            Bucket(name="one", owner=WEB, created_at=T), Bucket(name="two", owner=WEB,
                                                               created_at=T)])
        parsed = parse("ListBuckets", body)
        self.assertEqual([b["Name"] for b in parsed["Buckets"]], ["one", "two"])
        self.assertEqual(parsed["Owner"], {"ID": WEB_ID, "DisplayName": "web"})
        self.assertEqual(parsed["Buckets"][0]["CreationDate"].timestamp(), T)

    def test_v1_with_delimiter(self) -> None:
        listing = Listing(contents=(info("a"),), common_prefixes=("d/",), is_truncated=True,
                          next_marker="d/")
        body = xmlrender.list_objects_v1("b", {"prefix": "", "delimiter": "/", "marker": "",
                                               "max_keys": 2, "encoding": None}, listing,
                                         canonical_id)
        parsed = parse("ListObjects", body)
        self.assertEqual(parsed["Contents"][0]["Key"], "a")
        self.assertEqual(parsed["Contents"][0]["ETag"], '"' + "0" * 32 + '"')
        self.assertEqual(parsed["Contents"][0]["Owner"]["ID"], WEB_ID)
        self.assertEqual(parsed["CommonPrefixes"], [{"Prefix": "d/"}])
        self.assertEqual((parsed["IsTruncated"], parsed["NextMarker"], parsed["MaxKeys"]),
                         (True, "d/", 2))

    def test_v1_next_marker_only_with_a_delimiter(self) -> None:
        listing = Listing(contents=(info("a"),), common_prefixes=(), is_truncated=True,
                          next_marker="a")
        body = xmlrender.list_objects_v1("b", {"prefix": "", "delimiter": "", "marker": "",
                                               "max_keys": 1, "encoding": None}, listing,
                                         canonical_id)
        parsed = parse("ListObjects", body)
        self.assertTrue(parsed["IsTruncated"])
        self.assertNotIn("NextMarker", parsed)

    def test_v2_url_encoded_keys_round_trip(self) -> None:
        keys = ["a b+c", "ü/ß?&=%", "tab\tand\x7f"]
        listing = Listing(contents=tuple(info(k) for k in keys), common_prefixes=("p q/",),
                          is_truncated=True, next_marker="p q/")
        body = xmlrender.list_objects_v2("b", {
            "prefix": "", "delimiter": "/", "max_keys": 4, "encoding": "url",
            "continuation_token": "tok0", "start_after": "a", "fetch_owner": False},
            listing, "tok1", canonical_id)
        parsed = parse("ListObjectsV2", body)
        # botocore undoes encoding-type=url with unquote_plus
        self.assertEqual([unquote_plus(c["Key"]) for c in parsed["Contents"]], keys)
        self.assertEqual(unquote_plus(parsed["CommonPrefixes"][0]["Prefix"]), "p q/")
        self.assertEqual((parsed["KeyCount"], parsed["ContinuationToken"],
                          parsed["NextContinuationToken"], parsed["StartAfter"]),
                         (4, "tok0", "tok1", "a"))
        self.assertNotIn("Owner", parsed["Contents"][0])

    def test_v2_fetch_owner(self) -> None:
        listing = Listing(contents=(info("k"),), common_prefixes=(), is_truncated=False,
                          next_marker=None)
        body = xmlrender.list_objects_v2("b", {
            "prefix": "k", "delimiter": "", "max_keys": 1000, "encoding": None,
            "continuation_token": None, "start_after": "", "fetch_owner": True},
            listing, None, canonical_id)
        parsed = parse("ListObjectsV2", body)
        self.assertEqual(parsed["Contents"][0]["Owner"], {"ID": WEB_ID, "DisplayName": "web"})
        self.assertNotIn("NextContinuationToken", parsed)
        self.assertFalse(parsed["IsTruncated"])


class DocumentTests(unittest.TestCase):
    def test_acl_of_each_canned_acl(self) -> None:
        expected = {
            "private": [],
            "public-read": [("Group", "READ")],
            "public-read-write": [("Group", "READ"), ("Group", "WRITE")],
            "authenticated-read": [("Group", "READ")],
        }
        for acl, groups in expected.items():
            parsed = parse("GetBucketAcl", xmlrender.access_control_policy(WEB, WEB_ID, acl))
            self.assertEqual(parsed["Owner"]["ID"], WEB_ID)
            grants = parsed["Grants"]
            self.assertEqual((grants[0]["Grantee"]["ID"], grants[0]["Permission"]),
                             (WEB_ID, "FULL_CONTROL"))
            self.assertEqual([(g["Grantee"]["Type"], g["Permission"]) for g in grants[1:]],
                             groups)

    def test_location(self) -> None:
        # botocore reads this document by hand (handlers.parse_get_bucket_location)
        for constraint, expected in (("", None), ("nova", "nova")):
            parsed: dict = {}
            response = type("R", (), {"raw": object(),
                                      "content": xmlrender.location(constraint)})()
            botocore.handlers.parse_get_bucket_location(parsed, response)
            self.assertEqual(parsed["LocationConstraint"], expected)

    def test_copy_results(self) -> None:
        parsed = parse("CopyObject", xmlrender.copy_result("CopyObjectResult", "e" * 32, T))
        self.assertEqual(parsed["CopyObjectResult"]["ETag"], '"' + "e" * 32 + '"')
        parsed = parse("UploadPartCopy", xmlrender.copy_result("CopyPartResult", "f" * 32, T))
        self.assertEqual(parsed["CopyPartResult"]["ETag"], '"' + "f" * 32 + '"')

    def test_delete_result(self) -> None:
        body = xmlrender.delete_result(["a", "b"], [("c", "KeyTooLongError", "too long")], False)
        parsed = parse("DeleteObjects", body)
        self.assertEqual(parsed["Deleted"], [{"Key": "a"}, {"Key": "b"}])
        self.assertEqual(parsed["Errors"], [{"Key": "c", "Code": "KeyTooLongError",
                                             "Message": "too long"}])
        quiet = parse("DeleteObjects", xmlrender.delete_result(["a"], [], True))
        self.assertNotIn("Deleted", quiet)

    def test_multipart_documents(self) -> None:
        parsed = parse("CreateMultipartUpload", xmlrender.initiate_multipart("b", "k", "u1"))
        self.assertEqual((parsed["Bucket"], parsed["Key"], parsed["UploadId"]), ("b", "k", "u1"))
        parsed = parse("CompleteMultipartUpload",
                       xmlrender.complete_multipart("http://h/b/k", "b", "k", "a" * 32 + "-2"))
        self.assertEqual(parsed["ETag"], '"' + "a" * 32 + '-2"')
        upload = Upload(upload_id="u1", bucket="b", key="k", initiated=T,
                        new_object=NewObject(owner=WEB))
        parts = [Part(part_number=n, etag=str(n) * 32, size=5, last_modified=T)
                 for n in (1, 2)]
        parsed = parse("ListParts", xmlrender.list_parts(upload, WEB_ID, parts, 0, 2, True))
        self.assertEqual([p["PartNumber"] for p in parsed["Parts"]], [1, 2])
        self.assertEqual((parsed["IsTruncated"], parsed["NextPartNumberMarker"],
                          parsed["Initiator"]["ID"]), (True, 2, WEB_ID))
        params = {"prefix": "", "delimiter": "", "key_marker": "", "upload_id_marker": "",
                  "max_uploads": 1, "encoding": None}
        parsed = parse("ListMultipartUploads",
                       xmlrender.list_uploads("b", params, [upload], [], upload, canonical_id))
        self.assertEqual(parsed["Uploads"][0]["UploadId"], "u1")
        self.assertEqual((parsed["IsTruncated"], parsed["NextKeyMarker"],
                          parsed["NextUploadIdMarker"]), (True, "k", "u1"))

    def test_error_document(self) -> None:
        body = xmlrender.error_document("NoSuchKey", "The specified key does not exist.",
                                        "/b/k", "RID", "HID", {"Key": "k"})
        parsed = parse("GetObject", body, status=404)
        self.assertEqual(parsed["Error"]["Code"], "NoSuchKey")
        self.assertEqual(parsed["Error"]["Key"], "k")
        self.assertEqual(parsed["Error"]["Message"], "The specified key does not exist.")
        self.assertEqual(parsed["Error"]["Resource"], "/b/k")


class ParseTests(unittest.TestCase):
    def test_delete(self) -> None:
        body = (b'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet>'
                b'<Object><Key>a</Key></Object><Object><Key>b &amp; c</Key>'
                b'<VersionId>null</VersionId></Object></Delete>')
        self.assertEqual(parse_delete(body), (True, ["a", "b & c"]))
        self.assertEqual(parse_delete(b"<Delete><Object><Key>a</Key></Object></Delete>"),
                         (False, ["a"]))

    def test_delete_limits(self) -> None:
        self.assertRaises(MalformedXML, parse_delete, b"<Delete></Delete>")
        many = b"".join(b"<Object><Key>%d</Key></Object>" % i for i in range(1001))
        self.assertRaises(MalformedXML, parse_delete, b"<Delete>" + many + b"</Delete>")
        self.assertRaises(MalformedXML, parse_delete, b"<Delete><Object/></Delete>")

    def test_complete(self) -> None:
        body = (b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
                b"<ETag>\"aa\"</ETag></Part><Part><ETag>bb</ETag><PartNumber>2</PartNumber>"
                b"<ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part></CompleteMultipartUpload>")
        self.assertEqual(parse_complete(body), [(1, "aa"), (2, "bb")])
        self.assertRaises(MalformedXML, parse_complete,
                          b"<CompleteMultipartUpload></CompleteMultipartUpload>")
        self.assertRaises(InvalidArgument, parse_complete,
                          b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber>"
                          b"<ETag>a</ETag></Part></CompleteMultipartUpload>")

    def test_create_bucket_configuration(self) -> None:
        self.assertIsNone(parse_create_bucket(b""))
        self.assertEqual(parse_create_bucket(
            b'<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            b"<LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>"),
            "eu-west-1")
        self.assertRaises(MalformedXML, parse_create_bucket, b"<Other/>")

    def test_acl_round_trips_every_canned_acl(self) -> None:
        for acl in xmlrender.CANNED_GRANTS:
            self.assertEqual(parse_acl(xmlrender.access_control_policy(WEB, WEB_ID, acl),
                                       WEB_ID), acl)

    def test_acl_beyond_canned_is_not_implemented(self) -> None:
        other = xmlrender.access_control_policy(WEB, canonical_id("db"), "private")
        self.assertRaises(S3NotImplemented, parse_acl, other, WEB_ID)
        self.assertRaises(MalformedACLError, parse_acl, b"<AccessControlPolicy/>", WEB_ID)
        self.assertRaises(MalformedACLError, parse_acl, b"not xml", WEB_ID)

    def test_malformed_and_hostile_documents(self) -> None:
        bomb = (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa">'
                b'<!ENTITY b "&a;&a;&a;&a;">]><Delete><Object><Key>&b;</Key></Object></Delete>')
        for body in (b"", b"<Delete>", bomb, b"\x00\x01"):
            self.assertRaises(MalformedXML, parse_delete, body)
