"""
S3 authentication (the real auth manager on an embedded directory, a Clock)
and authorisation (projects, superusers, canned ACLs): no network.
"""

from __future__ import annotations

import email.utils
import hashlib
from pathlib import Path

from twisted.internet import defer, task
from twisted.trial import unittest

from nova.auth.directory import EmbeddedDirectory
from nova.auth.ldapdriver import LdapDriver
from nova.auth.manager import AuthManager
from nova.auth.signer import (AccessDenied as SigningAccessDenied, ContentSHA256Mismatch,
                              RequestTimeTooSkewed, SignatureMismatch, SignedRequest,
                              presign_s3_v2, presign_v4, sign_s3_v2, sign_v4_headers)
from nova.objectstore.errors import AccessDenied
from nova.objectstore.http.auth import (READ, WRITE, Authenticator, acl_allows, canonical_id,
                                        is_owner, require)
from nova.objectstore.http.errors import InvalidAccessKeyId, fields_of
from nova.objectstore.interfaces import Owner

NOW = 1_800_000_000.0
HOST = "127.0.0.1:3333"


class AuthenticatorTests(unittest.TestCase):
    async def setUp(self) -> None:
        self.clock = task.Clock()
        self.clock.advance(NOW)
        directory = await EmbeddedDirectory.open(Path(self.mktemp()), "dc=test,dc=local")
        self.auth = AuthManager(LdapDriver(directory.base), self.clock)
        self.alice = await self.auth.create_user("alice")
        await self.auth.create_project("web", "alice")
        await self.auth.create_project("alice", "alice")
        self.bob = await self.auth.create_user("bob")
        await self.auth.create_project("db", "bob")
        self.authenticator = Authenticator(self.auth, self.clock)

    def v4(self, access: str, secret: str, body: bytes = b"", now: float = NOW,
           path: str = "/b/k", method: str = "PUT") -> SignedRequest:
        headers = sign_v4_headers(method, HOST, path, [], {}, access, secret, "us-east-1",
                                  "s3", payload_sha256=hashlib.sha256(body).hexdigest(),
                                  now=now)
        headers["Host"] = HOST
        return SignedRequest.from_parts(method, path, headers, body)

    async def fails(self, coroutine, error):
        return await self.assertFailure(defer.Deferred.fromCoroutine(coroutine), error)

    async def test_anonymous(self) -> None:
        view = SignedRequest.from_parts("GET", "/b/k", {"Host": HOST})
        self.assertIsNone(await self.authenticator.authenticate(view))

    async def test_sigv4_names_the_project(self) -> None:
        identity = await self.authenticator.authenticate(
            self.v4(f"{self.alice.access}:web", self.alice.secret, b"data", path="/b/k"))
        self.assertEqual((identity.project_id, identity.owner.display_name), ("web", "web"))
        self.assertFalse(identity.is_superuser)

    async def test_bare_access_key_is_the_users_own_project(self) -> None:
        identity = await self.authenticator.authenticate(
            self.v4(self.alice.access, self.alice.secret))
        self.assertEqual(identity.project_id, "alice")

    async def test_unknown_key_and_foreign_project(self) -> None:
        for access in ("nobody:web", f"{self.bob.access}:web", f"{self.alice.access}:nope"):
            error = await self.fails(
                self.authenticator.authenticate(self.v4(access, self.alice.secret)),
                InvalidAccessKeyId)
            self.assertEqual((error.code, error.status), ("InvalidAccessKeyId", 403))
            self.assertEqual(fields_of(error)["AWSAccessKeyId"], access)

    async def test_wrong_secret_shows_the_string_to_sign(self) -> None:
        error = await self.fails(self.authenticator.authenticate(
            self.v4(f"{self.alice.access}:web", "wrong")), SignatureMismatch)
        self.assertEqual((error.code, error.status), ("SignatureDoesNotMatch", 403))
        fields = fields_of(error)
        self.assertTrue(fields["StringToSign"].startswith("AWS4-HMAC-SHA256\n"))
        self.assertIn("CanonicalRequest", fields)
        self.assertEqual(fields["AWSAccessKeyId"], f"{self.alice.access}:web")

    async def test_clock_skew(self) -> None:
        error = await self.fails(self.authenticator.authenticate(
            self.v4(f"{self.alice.access}:web", self.alice.secret, now=NOW - 3600)),
            RequestTimeTooSkewed)
        self.assertEqual(error.status, 403)

    async def test_known_body_must_match_the_signed_hash(self) -> None:
        view = self.v4(f"{self.alice.access}:web", self.alice.secret, b"signed body")
        tampered = SignedRequest.from_parts("PUT", "/b/k", dict(view.headers), b"other body")
        await self.fails(self.authenticator.authenticate(tampered),
                                 ContentSHA256Mismatch)

    async def test_presigned_v4_and_its_expiry(self) -> None:
        query = presign_v4("GET", HOST, "/b/k", [], f"{self.alice.access}:web",
                           self.alice.secret, "us-east-1", "s3", expires=60, now=NOW)
        view = SignedRequest.from_parts("GET", "/b/k?" + "&".join(
            f"{k}={v.replace('/', '%2F').replace(':', '%3A').replace(';', '%3B')}"
            for k, v in query), {"Host": HOST})
        identity = await self.authenticator.authenticate(view)
        self.assertEqual(identity.project_id, "web")
        self.clock.advance(61)
        error = await self.fails(self.authenticator.authenticate(view),
                                         SigningAccessDenied)
        self.assertEqual((error.code, error.status), ("AccessDenied", 403))

    async def test_sigv2_header_and_query(self) -> None:
        headers = {"Host": HOST, "Date": email.utils.formatdate(NOW, usegmt=True),
                   "Content-Type": "text/plain"}
        authenticator = self.authenticator
        view = SignedRequest.from_parts("PUT", "/b/k", headers)
        headers["Authorization"] = sign_s3_v2(view, f"{self.alice.access}:web",
                                              self.alice.secret)
        identity = await authenticator.authenticate(SignedRequest.from_parts("PUT", "/b/k",
                                                                             headers))
        self.assertEqual(identity.project_id, "web")
        pairs = presign_s3_v2(SignedRequest.from_parts("GET", "/b/k", {"Host": HOST}),
                              f"{self.alice.access}:web", self.alice.secret,
                              int(self.clock.seconds()) + 10)
        query = "&".join(f"{k}={v.replace('+', '%2B').replace('/', '%2F').replace('=', '%3D')}"
                         .replace(":", "%3A") for k, v in pairs)
        view = SignedRequest.from_parts("GET", "/b/k?" + query, {"Host": HOST})
        self.assertEqual((await authenticator.authenticate(view)).project_id, "web")
        self.clock.advance(11)
        await self.fails(authenticator.authenticate(view), SigningAccessDenied)


WEB = Owner(project_id="web", display_name="web")
DB = Owner(project_id="db", display_name="db")


class _Identity:
    def __init__(self, project: str, superuser: bool = False) -> None:
        self.project_id = project
        self.is_superuser = superuser


class AuthorisationTests(unittest.TestCase):
    owner = _Identity("web")
    stranger = _Identity("db")
    admin = _Identity("ops", superuser=True)

    def test_canonical_id_is_stable_64_hex(self) -> None:
        self.assertEqual(canonical_id("web"), canonical_id("web"))
        self.assertNotEqual(canonical_id("web"), canonical_id("db"))
        self.assertRegex(canonical_id("web"), "^[0-9a-f]{64}$")

    def test_owner_and_superuser(self) -> None:
        self.assertTrue(is_owner(self.owner, WEB))
        self.assertTrue(is_owner(self.admin, WEB))
        self.assertFalse(is_owner(self.stranger, WEB))
        self.assertFalse(is_owner(None, WEB))

    def test_canned_acls(self) -> None:
        table = {
            # acl: (anonymous read, authenticated read, anonymous write, authenticated write)
            "private": (False, False, False, False),
            "public-read": (True, True, False, False),
            "public-read-write": (True, True, True, True),
            "authenticated-read": (False, True, False, False),
        }
        for acl, expected in table.items():
            found = (acl_allows(acl, None, READ), acl_allows(acl, self.stranger, READ),
                     acl_allows(acl, None, WRITE), acl_allows(acl, self.stranger, WRITE))
            self.assertEqual(found, expected, acl)

    def test_require(self) -> None:
        require(self.owner, (WEB,), "private", READ)
        require(self.admin, (WEB,), "private", None)
        require(None, (DB, WEB), "public-read", READ)
        require(self.stranger, (WEB, DB), "private", None)  # an object's own owner
        self.assertRaises(AccessDenied, require, self.stranger, (WEB,), "private", READ)
        self.assertRaises(AccessDenied, require, None, (WEB,), "public-read", WRITE)
        self.assertRaises(AccessDenied, require, self.stranger, (WEB,), "public-read-write",
                          None)
