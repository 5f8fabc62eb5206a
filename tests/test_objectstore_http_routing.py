"""
Addressing (path and virtual-host style) and naming the S3 operation of a
request: pure functions, no I/O.
"""

from __future__ import annotations

from twisted.trial import unittest

from nova.objectstore.errors import MethodNotAllowed
from nova.objectstore.http.errors import InvalidURI, S3NotImplemented
from nova.objectstore.http.routing import parse_route, resolve_action

SUFFIX = "s3.nova.test"


def route(uri: str, host: str = "127.0.0.1:3333"):
    return parse_route(uri, host, SUFFIX)


class PathStyleTests(unittest.TestCase):
    def test_service(self) -> None:
        found = route("/")
        self.assertEqual((found.bucket, found.key, found.resource), (None, None, "/"))

    def test_bucket_with_and_without_slash(self) -> None:
        for uri in ("/photos", "/photos/"):
            found = route(uri)
            self.assertEqual((found.bucket, found.key), ("photos", None))

    def test_key_is_percent_decoded_utf8_and_raw_path_kept(self) -> None:
        found = route("/photos/a%20b/%C3%A9t%C3%A9+x.jpg?acl")
        self.assertEqual(found.key, "a b/été+x.jpg")
        self.assertEqual(found.raw_path, "/photos/a%20b/%C3%A9t%C3%A9+x.jpg")
        self.assertEqual(found.raw_query, "acl")
        self.assertTrue(found.has("acl"))
        self.assertEqual(found.resource, "/photos/a b/été+x.jpg")

    def test_key_keeps_leading_and_double_slashes(self) -> None:
        self.assertEqual(route("/b//x//y").key, "/x//y")

    def test_dot_segments_are_keys_not_paths(self) -> None:
        self.assertEqual(route("/b/../../etc/passwd").key, "../../etc/passwd")

    def test_not_utf8_is_invalid_uri(self) -> None:
        self.assertRaises(InvalidURI, route, "/b/%FF%FE")
        self.assertRaises(InvalidURI, route, "/b/k?prefix=%FF")

    def test_absolute_form_target(self) -> None:
        found = route("http://127.0.0.1:3333/b/k?uploads")
        self.assertEqual((found.bucket, found.key, found.raw_path), ("b", "k", "/b/k"))
        self.assertTrue(found.has("uploads"))

    def test_query_values_decoded_in_order(self) -> None:
        found = route("/b?prefix=a%2Fb&delimiter=%2F&list-type=2&prefix=second")
        self.assertEqual(found.param("prefix"), "a/b")
        self.assertEqual(found.param("delimiter"), "/")
        self.assertIsNone(found.param("marker"))


class VirtualHostTests(unittest.TestCase):
    def test_bucket_from_host(self) -> None:
        found = route("/a/b.txt", host=f"photos.{SUFFIX}:3333")
        self.assertEqual((found.bucket, found.key, found.virtual_bucket),
                         ("photos", "a/b.txt", "photos"))
        self.assertEqual(found.resource, "/photos/a/b.txt")

    def test_bucket_root(self) -> None:
        found = route("/?list-type=2", host=f"my.dotted.bucket.{SUFFIX}")
        self.assertEqual((found.bucket, found.key), ("my.dotted.bucket", None))

    def test_the_suffix_itself_is_path_style(self) -> None:
        found = route("/photos/k", host=SUFFIX)
        self.assertEqual((found.bucket, found.key, found.virtual_bucket), ("photos", "k", None))

    def test_no_suffix_configured_is_path_style_only(self) -> None:
        found = parse_route("/k", f"photos.{SUFFIX}", "")
        self.assertEqual((found.bucket, found.key), ("k", None))


def action(method: str, uri: str, headers: dict[str, str] | None = None) -> str:
    return resolve_action(method, route(uri), headers or {})


class ActionTests(unittest.TestCase):
    def test_service_level(self) -> None:
        self.assertEqual(action("GET", "/"), "ListBuckets")
        self.assertRaises(MethodNotAllowed, action, "PUT", "/")
        self.assertRaises(MethodNotAllowed, action, "DELETE", "/")

    def test_bucket_level(self) -> None:
        table = [
            ("GET", "/b", "ListObjects"), ("GET", "/b?list-type=2", "ListObjectsV2"),
            ("GET", "/b?acl", "GetBucketAcl"), ("GET", "/b?location", "GetBucketLocation"),
            ("GET", "/b?uploads", "ListMultipartUploads"), ("HEAD", "/b", "HeadBucket"),
            ("PUT", "/b", "CreateBucket"), ("PUT", "/b?acl", "PutBucketAcl"),
            ("DELETE", "/b", "DeleteBucket"), ("POST", "/b?delete", "DeleteObjects"),
            ("GET", "/b?versioning", "GetBucketConfig:versioning"),
            ("GET", "/b?policy", "GetBucketConfig:policy"),
            ("DELETE", "/b?cors", "DeleteBucketConfig:cors"),
            # parameters that are not sub-resources do not change the operation
            ("GET", "/b?prefix=x&x-id=ListObjects", "ListObjects"),
        ]
        for method, uri, expected in table:
            self.assertEqual(action(method, uri), expected, (method, uri))

    def test_object_level(self) -> None:
        copy = {"x-amz-copy-source": "/b/src"}
        table = [
            ("GET", "/b/k", {}, "GetObject"), ("HEAD", "/b/k", {}, "HeadObject"),
            ("PUT", "/b/k", {}, "PutObject"), ("PUT", "/b/k", copy, "CopyObject"),
            ("DELETE", "/b/k", {}, "DeleteObject"), ("GET", "/b/k?acl", {}, "GetObjectAcl"),
            ("PUT", "/b/k?acl", {}, "PutObjectAcl"),
            ("POST", "/b/k?uploads", {}, "CreateMultipartUpload"),
            ("PUT", "/b/k?partNumber=1&uploadId=u", {}, "UploadPart"),
            ("PUT", "/b/k?partNumber=1&uploadId=u", copy, "UploadPartCopy"),
            ("POST", "/b/k?uploadId=u", {}, "CompleteMultipartUpload"),
            ("DELETE", "/b/k?uploadId=u", {}, "AbortMultipartUpload"),
            ("GET", "/b/k?uploadId=u", {}, "ListParts"),
            ("GET", "/b/k?tagging", {}, "GetObjectTagging"),
            ("GET", "/b/k?response-content-type=text/plain&versionId=null", {}, "GetObject"),
        ]
        for method, uri, headers, expected in table:
            self.assertEqual(action(method, uri, headers), expected, (method, uri))

    def test_unknown_sub_resources_are_not_implemented(self) -> None:
        for method, uri in (("GET", "/b?versions"), ("PUT", "/b?lifecycle"),
                            ("PUT", "/b/k?tagging"), ("GET", "/b/k?torrent"),
                            ("POST", "/b/k?restore"), ("POST", "/b/k?select&select-type=2"),
                            ("GET", "/b/k?partNumber=2"), ("POST", "/b")):
            error = self.assertRaises(S3NotImplemented, action, method, uri)
            self.assertEqual((error.code, error.status), ("NotImplemented", 501))

    def test_wrong_methods(self) -> None:
        for method, uri in (("PATCH", "/b/k"), ("OPTIONS", "/b"), ("POST", "/b/k")):
            error = self.assertRaises(MethodNotAllowed, action, method, uri)
            self.assertEqual(error.status, 405)
