"""
The S3 site over a loopback port, the real store in a temporary directory:
bucket operations, addressing, authentication schemes, authorisation and
the error documents.
"""

from __future__ import annotations

from twisted.trial import unittest

from nova.auth.signer import SignedRequest, presign_s3_v2
from nova.objectstore.http import xmlrender
from nova.objectstore.http.auth import canonical_id
from tests.test_objectstore_http_support import NS, VHOST_SUFFIX, S3Harness, bucket_name


class BucketTests(unittest.TestCase):
    async def setUp(self) -> None:
        self.s3 = await S3Harness(self).start()

    async def test_create_list_head_delete(self) -> None:
        s3 = self.s3
        name = await s3.make_bucket(s3.alice)
        other = await s3.make_bucket(s3.bob)
        listed = (await s3.request("GET", "/", user=s3.alice)).xml()
        self.assertEqual([e.text for e in listed.iter(NS + "Name")], [name])
        self.assertEqual(listed.findtext(f"{NS}Owner/{NS}ID"), canonical_id("web"))
        self.assertEqual(listed.findtext(f"{NS}Owner/{NS}DisplayName"), "web")
        # a superuser (nova's own services) sees every bucket
        everything = (await s3.request("GET", "/", user=s3.root)).xml()
        self.assertEqual(sorted(e.text for e in everything.iter(NS + "Name")),
                         sorted([name, other]))
        self.assertEqual((await s3.request("HEAD", f"/{name}", user=s3.alice)).status, 200)
        self.assertEqual((await s3.request("DELETE", f"/{name}", user=s3.alice)).status, 204)
        gone = await s3.request("HEAD", f"/{name}", user=s3.alice)
        self.assertEqual((gone.status, gone.body), (404, b""))
        missing = await s3.request("GET", f"/{name}", user=s3.alice)
        self.assertEqual((missing.status, missing.code), (404, "NoSuchBucket"))
        self.assertEqual(missing.xml().findtext("BucketName"), name)
        self.assertEqual(missing.xml().findtext("Resource"), f"/{name}")
        self.assertEqual(missing.xml().findtext("RequestId"), missing.headers["x-amz-request-id"])

    async def test_create_conflicts_and_names(self) -> None:
        s3 = self.s3
        name = await s3.make_bucket(s3.alice)
        mine = await s3.request("PUT", f"/{name}", user=s3.alice)
        theirs = await s3.request("PUT", f"/{name}", user=s3.bob)
        self.assertEqual((mine.status, mine.code), (409, "BucketAlreadyOwnedByYou"))
        self.assertEqual((theirs.status, theirs.code), (409, "BucketAlreadyExists"))
        for bad in ("ab", "Upper-Case", "under_score", "-leading", "192.168.1.1", "a" * 64):
            reply = await s3.request("PUT", f"/{bad}", user=s3.alice)
            self.assertEqual((reply.status, reply.code), (400, "InvalidBucketName"), bad)

    async def test_create_with_location_and_acl(self) -> None:
        s3 = self.s3
        name = bucket_name()
        body = (b'<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                b"<LocationConstraint>nova</LocationConstraint></CreateBucketConfiguration>")
        reply = await s3.request("PUT", f"/{name}", user=s3.alice, body=body,
                                 headers={"x-amz-acl": "public-read"})
        self.assertEqual(reply.status, 200, reply.body)
        self.assertEqual(reply.headers["location"], f"/{name}")
        self.assertEqual((await s3.store.get_bucket(name)).acl, "public-read")
        location = await s3.request("GET", f"/{name}", query=[("location", "")], user=s3.alice)
        self.assertEqual(location.status, 200)
        self.assertEqual(location.xml().tag, NS + "LocationConstraint")
        self.assertEqual(location.xml().text, "nova")
        bad = await s3.request("PUT", f"/{bucket_name()}", user=s3.alice, body=b"<nope")
        self.assertEqual((bad.status, bad.code), (400, "MalformedXML"))
        acl = await s3.request("PUT", f"/{bucket_name()}", user=s3.alice,
                               headers={"x-amz-acl": "everyone-please"})
        self.assertEqual((acl.status, acl.code), (400, "InvalidArgument"))

    async def test_delete_not_empty(self) -> None:
        s3 = self.s3
        name = await s3.make_bucket(s3.alice)
        await s3.put(s3.alice, name, "k", b"x")
        reply = await s3.request("DELETE", f"/{name}", user=s3.alice)
        self.assertEqual((reply.status, reply.code), (409, "BucketNotEmpty"))

    async def test_another_projects_bucket_is_refused(self) -> None:
        s3 = self.s3
        name = await s3.make_bucket(s3.alice)
        await s3.put(s3.alice, name, "k", b"private data")
        for method, path, query in (("GET", f"/{name}", []), ("HEAD", f"/{name}", []),
                                    ("GET", f"/{name}/k", []), ("DELETE", f"/{name}", []),
                                    ("GET", f"/{name}", [("acl", "")]),
                                    ("PUT", f"/{name}/new", []),
                                    ("DELETE", f"/{name}/k", []),
                                    ("GET", f"/{name}/missing", [])):
            reply = await s3.request(method, path, query=query, user=s3.bob, body=b"")
            self.assertEqual(reply.status, 403, (method, path, query))
            if method != "HEAD":
                self.assertEqual(reply.code, "AccessDenied")
        # superusers may do everything: how nova fetches images
        root = await s3.request("GET", f"/{name}/k", user=s3.root)
        self.assertEqual((root.status, root.body), (200, b"private data"))

    async def test_anonymous_access(self) -> None:
        s3 = self.s3
        private = await s3.make_bucket(s3.alice)
        public = await s3.make_bucket(s3.alice, acl="public-read")
        for name in (private, public):
            await s3.put(s3.alice, name, "k", b"data")
        self.assertEqual((await s3.request("GET", "/", sign="none")).code, "AccessDenied")
        self.assertEqual((await s3.request("GET", f"/{private}", sign="none")).status, 403)
        listing = await s3.request("GET", f"/{public}", sign="none")
        self.assertEqual(listing.status, 200)
        self.assertEqual(listing.xml().findtext(f"{NS}Contents/{NS}Key"), "k")
        # the object itself stays private: object reads follow the object's ACL
        self.assertEqual((await s3.request("GET", f"/{public}/k", sign="none")).status, 403)
        # and a missing key in a listable bucket is told as missing
        self.assertEqual((await s3.request("GET", f"/{public}/nope", sign="none")).code,
                         "NoSuchKey")
        self.assertEqual((await s3.request("PUT", f"/{public}/x", sign="none",
                                           body=b"x")).status, 403)
        self.assertEqual((await s3.request("PUT", f"/{bucket_name()}", sign="none")).status,
                         403)

    async def test_public_read_write_and_authenticated_read(self) -> None:
        s3 = self.s3
        open_bucket = await s3.make_bucket(s3.alice, acl="public-read-write")
        reply = await s3.request("PUT", f"/{open_bucket}/drop", sign="none", body=b"anon")
        self.assertEqual(reply.status, 200, reply.body)
        self.assertEqual((await s3.store.head_object(open_bucket, "drop")).owner.project_id,
                         "web")
        shared = await s3.make_bucket(s3.alice, acl="authenticated-read")
        self.assertEqual((await s3.request("GET", f"/{shared}", user=s3.bob)).status, 200)
        self.assertEqual((await s3.request("GET", f"/{shared}", sign="none")).status, 403)
        self.assertEqual((await s3.request("PUT", f"/{shared}/x", user=s3.bob,
                                           body=b"x")).status, 403)

    async def test_bucket_acl(self) -> None:
        s3 = self.s3
        name = await s3.make_bucket(s3.alice)
        reply = await s3.request("PUT", f"/{name}", query=[("acl", "")], user=s3.alice,
                                 headers={"x-amz-acl": "public-read"})
        self.assertEqual(reply.status, 200, reply.body)
        policy = (await s3.request("GET", f"/{name}", query=[("acl", "")], user=s3.alice)).xml()
        self.assertEqual(policy.findtext(f"{NS}Owner/{NS}ID"), canonical_id("web"))
        uris = [e.text for e in policy.iter(NS + "URI")]
        self.assertEqual(uris, [xmlrender.ALL_USERS])
        body = xmlrender.access_control_policy(
            (await s3.store.get_bucket(name)).owner, canonical_id("web"), "authenticated-read")
        reply = await s3.request("PUT", f"/{name}", query=[("acl", "")], user=s3.alice,
                                 body=body)
        self.assertEqual(reply.status, 200, reply.body)
        self.assertEqual((await s3.store.get_bucket(name)).acl, "authenticated-read")
        foreign = xmlrender.access_control_policy(
            (await s3.store.get_bucket(name)).owner, canonical_id("db"), "private")
        reply = await s3.request("PUT", f"/{name}", query=[("acl", "")], user=s3.alice,
                                 body=foreign)
        self.assertEqual((reply.status, reply.code), (501, "NotImplemented"))
        reply = await s3.request("PUT", f"/{name}", query=[("acl", "")], user=s3.bob,
                                 headers={"x-amz-acl": "public-read-write"})
        self.assertEqual(reply.status, 403)

    async def test_configurations_it_never_has(self) -> None:
        s3 = self.s3
        name = await s3.make_bucket(s3.alice)
        versioning = await s3.request("GET", f"/{name}", query=[("versioning", "")],
                                      user=s3.alice)
        self.assertEqual((versioning.status, versioning.xml().tag),
                         (200, NS + "VersioningConfiguration"))
        policy = await s3.request("GET", f"/{name}", query=[("policy", "")], user=s3.alice)
        self.assertEqual((policy.status, policy.code), (404, "NoSuchBucketPolicy"))
        cors = await s3.request("DELETE", f"/{name}", query=[("cors", "")], user=s3.alice)
        self.assertEqual(cors.status, 204)
        lifecycle = await s3.request("PUT", f"/{name}", query=[("lifecycle", "")],
                                     user=s3.alice, body=b"<LifecycleConfiguration/>")
        self.assertEqual((lifecycle.status, lifecycle.code), (501, "NotImplemented"))
        versions = await s3.request("GET", f"/{name}", query=[("versions", "")], user=s3.alice)
        self.assertEqual((versions.status, versions.code), (501, "NotImplemented"))

    async def test_wrong_methods(self) -> None:
        s3 = self.s3
        reply = await s3.request("DELETE", "/", user=s3.alice)
        self.assertEqual((reply.status, reply.code), (405, "MethodNotAllowed"))
        self.assertTrue(reply.headers["x-amz-request-id"])
        reply = await s3.request("PATCH", f"/{bucket_name()}/k", user=s3.alice)
        self.assertEqual(reply.status, 405)


class AuthenticationTests(unittest.TestCase):
    async def setUp(self) -> None:
        self.s3 = await S3Harness(self).start()
        self.bucket = await self.s3.make_bucket(self.s3.alice)
        await self.s3.put(self.s3.alice, self.bucket, "dir/obj ü", b"payload")

    async def test_every_scheme(self) -> None:
        s3 = self.s3
        for sign in ("v4", "v2", "v4-query"):
            reply = await s3.request("GET", f"/{self.bucket}/dir/obj ü", user=s3.alice,
                                     sign=sign)
            self.assertEqual((reply.status, reply.body), (200, b"payload"), sign)
            listing = await s3.request("GET", f"/{self.bucket}", user=s3.alice, sign=sign,
                                       query=[("prefix", "dir/"), ("acl", "")]
                                       if sign == "v2" else [("prefix", "dir/")])
            self.assertEqual(listing.status, 200, (sign, listing.body))

    async def test_sigv2_presigned_amz_query_parameters_are_signed_headers(self) -> None:
        # boto 2's Key.generate_url signs the key's metadata and moves it
        # into the query, where S3 counts it as headers
        s3 = self.s3
        path = f"/{self.bucket}/dir/obj%20%C3%BC"
        view = SignedRequest.from_parts("GET", path, {"host": s3.host,
                                                      "x-amz-meta-colour": "red"})
        pairs = presign_s3_v2(view, s3.alice.access, s3.alice.secret,
                              int(s3.reactor.seconds()) + 60)
        reply = await s3.request("GET", f"/{self.bucket}/dir/obj ü", sign="none",
                                 query=pairs + [("x-amz-meta-colour", "red")])
        self.assertEqual((reply.status, reply.body), (200, b"payload"))
        tampered = await s3.request("GET", f"/{self.bucket}/dir/obj ü", sign="none",
                                    query=pairs + [("x-amz-meta-colour", "blue")])
        self.assertEqual(tampered.code, "SignatureDoesNotMatch")

    async def test_virtual_host_addressing(self) -> None:
        s3 = self.s3
        host = f"{self.bucket}.{VHOST_SUFFIX}:{s3.port.getHost().port}"
        for sign in ("v4", "v2"):
            reply = await s3.request("GET", "/dir/obj ü", user=s3.alice, host=host, sign=sign)
            self.assertEqual((reply.status, reply.body), (200, b"payload"), sign)
            listing = await s3.request("GET", "/", user=s3.alice, host=host, sign=sign)
            self.assertEqual(listing.xml().findtext(f"{NS}Name"), self.bucket)

    async def test_errors(self) -> None:
        s3 = self.s3
        path = f"/{self.bucket}/dir/obj ü"
        unknown = await s3.request("GET", path, user=type(s3.alice)("nobody:web", "x"))
        self.assertEqual((unknown.status, unknown.code), (403, "InvalidAccessKeyId"))
        forged = await s3.request("GET", path, user=type(s3.alice)(s3.alice.access, "wrong"))
        self.assertEqual((forged.status, forged.code), (403, "SignatureDoesNotMatch"))
        self.assertTrue(forged.xml().findtext("StringToSign"))
        v2 = await s3.request("GET", path, user=type(s3.alice)(s3.alice.access, "wrong"),
                              sign="v2")
        self.assertEqual(v2.xml().findtext("StringToSign").split("\n")[0], "GET")
        skewed = await s3.request("GET", path, user=s3.alice,
                                  now=s3.reactor.seconds() - 3600)
        self.assertEqual((skewed.status, skewed.code), (403, "RequestTimeTooSkewed"))
        # a signed hash that is not the body's
        lying = await s3.request("PUT", f"/{self.bucket}/k", user=s3.alice, body=b"real",
                                 payload="0" * 64)
        self.assertEqual((lying.status, lying.code), (400, "XAmzContentSHA256Mismatch"))
        self.assertEqual((await s3.request("HEAD", f"/{self.bucket}/k", user=s3.alice)).status,
                         404)
