"""
Functional: virtual-host-style addressing (C{<bucket>.s3.nova.test}) on an
all-in-one configured with C{[objectstore] virtual_host_suffix}; path style
keeps working on the same server. The test process resolves the suffix to
127.0.0.1 as a wildcard DNS record would; what goes over the wire is what the
clients send to a real virtual host.
"""

from __future__ import annotations

import urllib.request
import uuid

from boto.s3.connection import SubdomainCallingFormat
from twisted.trial import unittest

from tests.support.s3 import (VHOST_SUFFIX, check_s3_answers, resolve_vhost, s3_users,
                              signed_request, vhost_cloud)


class VirtualHostTests(unittest.TestCase):
    def setUp(self) -> None:
        self.cloud = vhost_cloud()
        check_s3_answers(self.cloud)
        self.user, self.other = s3_users(self.cloud)
        resolve_vhost(self)
        self.endpoint = f"http://{VHOST_SUFFIX}:{self.cloud.s3_port}"
        self.sent: list[str] = []

    def client(self, signature: str = "s3v4"):
        s3 = self.user.client(addressing="virtual", signature=signature,
                              endpoint=self.endpoint)
        s3.meta.events.register("before-send", lambda request, **_: self.sent.append(
            request.url))
        return s3

    def test_boto3(self) -> None:
        for signature in ("s3v4", "s3"):
            s3 = self.client(signature)
            name = f"vhost-{signature}-{uuid.uuid4().hex[:8]}"
            s3.create_bucket(Bucket=name)
            self.addCleanup(self.user.purge, name)
            s3.put_object(Bucket=name, Key="dir/hello.txt", Body=b"virtual", Metadata={"a": "b"})
            got = s3.get_object(Bucket=name, Key="dir/hello.txt")
            self.assertEqual((got["Body"].read(), got["Metadata"]), (b"virtual", {"a": "b"}))
            listed = s3.list_objects_v2(Bucket=name, Prefix="dir/")
            self.assertEqual([o["Key"] for o in listed["Contents"]], ["dir/hello.txt"])
            s3.copy_object(Bucket=name, Key="copy", CopySource={"Bucket": name,
                                                               "Key": "dir/hello.txt"})
            self.assertEqual(s3.head_object(Bucket=name, Key="copy")["ContentLength"], 7)
            s3.delete_object(Bucket=name, Key="copy")
            # every request named the bucket in the host, none in the path
            host = f"http://{name}.{VHOST_SUFFIX}:{self.cloud.s3_port}/"
            self.assertTrue(self.sent)
            self.assertEqual([u for u in self.sent if not u.startswith(host)], [])
            self.sent.clear()

    def test_path_style_still_works(self) -> None:
        name = f"vhost-path-{uuid.uuid4().hex[:8]}"
        self.user.s3.create_bucket(Bucket=name)
        self.addCleanup(self.user.purge, name)
        self.user.s3.put_object(Bucket=name, Key="k", Body=b"path")
        self.assertEqual(self.client().get_object(Bucket=name, Key="k")["Body"].read(), b"path")

    def test_raw_host_header(self) -> None:
        name = f"vhost-raw-{uuid.uuid4().hex[:8]}"
        self.user.s3.create_bucket(Bucket=name)
        self.addCleanup(self.user.purge, name)
        host = f"{name}.{VHOST_SUFFIX}:{self.cloud.s3_port}"
        put = signed_request(self.cloud.s3_port, self.user.access, self.user.secret, "PUT",
                             "/raw%20key", body=b"by host", host=host)
        self.assertEqual(put.status, 200, put.body)
        got = signed_request(self.cloud.s3_port, self.user.access, self.user.secret, "GET",
                             "/raw%20key", host=host)
        self.assertEqual((got.status, got.body), (200, b"by host"))
        listing = signed_request(self.cloud.s3_port, self.user.access, self.user.secret, "GET",
                                 "/", query=[("list-type", "2")], host=host)
        self.assertIn(b"<Key>raw key</Key>", listing.body)
        # the other project is refused by virtual host too
        refused = signed_request(self.cloud.s3_port, self.other.access, self.other.secret,
                                 "GET", "/raw%20key", host=host)
        self.assertEqual((refused.status, refused.code), (403, "AccessDenied"))

    def test_anonymous_public_read(self) -> None:
        name = f"vhost-anon-{uuid.uuid4().hex[:8]}"
        self.user.s3.create_bucket(Bucket=name)
        self.addCleanup(self.user.purge, name)
        self.user.s3.put_object(Bucket=name, Key="pub", Body=b"public", ACL="public-read")
        url = f"http://{name}.{VHOST_SUFFIX}:{self.cloud.s3_port}/pub"
        with urllib.request.urlopen(url) as answer:
            self.assertEqual(answer.read(), b"public")

    def test_boto2_subdomain(self) -> None:
        name = f"vhost-boto2-{uuid.uuid4().hex[:8]}"
        conn = self.user.boto2_s3(host=VHOST_SUFFIX, calling_format=SubdomainCallingFormat())
        bucket = conn.create_bucket(name)
        self.addCleanup(self.user.purge, name)
        bucket.new_key("k").set_contents_from_string("boto2 by host")
        self.assertEqual(bucket.get_key("k").get_contents_as_string(), b"boto2 by host")
        self.assertEqual([k.name for k in bucket.list()], ["k"])
