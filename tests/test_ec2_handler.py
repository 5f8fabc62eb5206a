"""
The EC2 request handler end to end in memory: signed requests in, XML out,
with the real auth manager over an embedded directory, the in-memory
datastore and a Clock (no network, no global reactor).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

from twisted.internet import defer, task
from twisted.trial import unittest

from nova.api.ec2.handler import Ec2Handler, HttpRequest
from nova.api.ec2.keypairs import KeyPairController
from nova.api.ec2.zones import ZoneController
from nova.auth.directory import EmbeddedDirectory
from nova.auth.ldapdriver import LdapDriver
from nova.auth.manager import AuthManager
from nova.auth.signer import sign_ec2_v2, sign_v4_headers
from nova.datastore.memory import MemoryDatastore
from nova.datastore.records import Service
from nova.datastore.repositories import KeyPairRepository, ServiceRepository

NOW = 1_800_000_000.0
HOST = "127.0.0.1:8773"
PATH = "/services/Cloud"


async def _inline(fn: Any, *args: Any) -> Any:
    return fn(*args)


def _code(body: bytes) -> str | None:
    return ElementTree.fromstring(body).findtext("Errors/Error/Code")


class HandlerTests(unittest.TestCase):
    async def _set_up(self) -> None:
        self.clock = task.Clock()
        self.clock.advance(NOW)
        directory = await EmbeddedDirectory.open(Path(self.mktemp()), "dc=test,dc=local")
        self.auth = AuthManager(LdapDriver(directory.base), self.clock)
        self.alice = await self.auth.create_user("alice")
        await self.auth.create_project("web", "alice")
        self.bob = await self.auth.create_user("bob")
        await self.auth.create_project("db", "bob")
        store = MemoryDatastore(self.clock)
        self.services = ServiceRepository(store, self.clock)
        keys = KeyPairController(KeyPairRepository(store), _inline, self.clock)
        zones = ZoneController(self.services, "nova", "http://x/services/Cloud", 60)
        self.handler = Ec2Handler(self.auth, {
            "CreateKeyPair": keys.create_key_pair,
            "ImportKeyPair": keys.import_key_pair,
            "DescribeKeyPairs": keys.describe_key_pairs,
            "DeleteKeyPair": keys.delete_key_pair,
            "DescribeRegions": zones.describe_regions,
            "DescribeAvailabilityZones": zones.describe_availability_zones,
        }, self.clock, max_skew=900)

    def setUp(self) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(self._set_up())

    def request(self, params: dict[str, str], user: Any = None, project: str = "web",
                method: str = "GET", secret: str | None = None, now: float = NOW,
                extra: dict[str, str] | None = None) -> defer.Deferred[tuple[int, bytes]]:
        user = user or self.alice
        signed = sign_ec2_v2({"Version": "2016-11-15", **params}, f"{user.access}:{project}",
                             secret or user.secret, method, HOST, PATH, now=now)
        signed.update(extra or {})
        query = urlencode(signed)
        if method == "GET":
            req = HttpRequest(method="GET", host=HOST, path=PATH, query=query,
                              headers={"host": HOST})
        else:
            req = HttpRequest(method="POST", host=HOST, path=PATH, query="",
                              headers={"host": HOST,
                                       "content-type": "application/x-www-form-urlencoded"},
                              body=query.encode())
        return defer.Deferred.fromCoroutine(self.handler.handle(req))

    async def test_create_and_describe(self) -> None:
        status, body = await self.request({"Action": "CreateKeyPair", "KeyName": "k"},
                                          method="POST")
        self.assertEqual(status, 200, body)
        self.assertIn(b"<keyMaterial>-----BEGIN RSA PRIVATE KEY", body)
        status, body = await self.request({"Action": "DescribeKeyPairs"})
        self.assertEqual(status, 200)
        root = ElementTree.fromstring(body)
        self.assertEqual([e.text for e in root.findall(".//{*}keyName")], ["k"])
        self.assertTrue(root.findtext("{*}requestId"))

    async def test_project_scoping(self) -> None:
        await self.request({"Action": "CreateKeyPair", "KeyName": "k"})
        status, body = await self.request({"Action": "DescribeKeyPairs"}, user=self.bob,
                                          project="db")
        self.assertEqual(status, 200)
        self.assertNotIn(b"<keyName>", body)

    async def test_not_a_member(self) -> None:
        status, body = await self.request({"Action": "DescribeKeyPairs"}, user=self.bob,
                                          project="web")
        self.assertEqual((status, _code(body)), (401, "AuthFailure"))

    async def test_bad_signature(self) -> None:
        status, body = await self.request({"Action": "DescribeRegions"}, secret="wrong")
        self.assertEqual((status, _code(body)), (403, "SignatureDoesNotMatch"))

    async def test_tampered_parameter(self) -> None:
        status, body = await self.request({"Action": "DeleteKeyPair", "KeyName": "a"},
                                          extra={"KeyName": "b"})
        self.assertEqual((status, _code(body)), (403, "SignatureDoesNotMatch"))

    async def test_old_timestamp(self) -> None:
        status, body = await self.request({"Action": "DescribeRegions"}, now=NOW - 3600)
        self.assertEqual(status // 100, 4)
        self.assertEqual(_code(body), "RequestExpired")

    async def test_unknown_and_unsupported_actions(self) -> None:
        status, body = await self.request({"Action": "LaunchRockets"})
        self.assertEqual((status, _code(body)), (400, "InvalidAction"))
        status, body = await self.request({"Action": "RunInstances"})
        self.assertEqual((status, _code(body)), (400, "UnsupportedOperation"))

    async def test_missing_action(self) -> None:
        status, body = await self.request({})
        self.assertEqual((status, _code(body)), (400, "MissingParameter"))

    async def test_missing_parameter(self) -> None:
        status, body = await self.request({"Action": "CreateKeyPair"})
        self.assertEqual((status, _code(body)), (400, "MissingParameter"))

    async def test_malformed_query(self) -> None:
        for query in ("Action=DescribeRegions&&&", "a=%ff%fe", "novalue"):
            req = HttpRequest(method="GET", host=HOST, path=PATH, query=query,
                              headers={"host": HOST})
            status, body = await self.handler.handle(req)
            self.assertEqual((status, _code(body)), (400, "MalformedQueryString"), query)

    async def test_repeated_parameter(self) -> None:
        signed = sign_ec2_v2({"Action": "DescribeRegions"}, f"{self.alice.access}:web",
                             self.alice.secret, "GET", HOST, PATH, now=NOW)
        query = urlencode(signed) + "&Action=DeleteKeyPair"
        status, body = await self.handler.handle(
            HttpRequest(method="GET", host=HOST, path=PATH, query=query, headers={"host": HOST}))
        self.assertEqual((status, _code(body)), (400, "InvalidParameterValue"))

    async def test_unsigned(self) -> None:
        status, body = await self.handler.handle(HttpRequest(
            method="GET", host=HOST, path=PATH, query="Action=DescribeRegions",
            headers={"host": HOST}))
        self.assertEqual(status // 100, 4)
        self.assertIn(_code(body), ("MissingAuthenticationToken", "AuthFailure",
                                    "IncompleteSignature"))

    async def test_body_too_large(self) -> None:
        status, body = await self.handler.handle(HttpRequest(
            method="POST", host=HOST, path=PATH, query="", headers={"host": HOST},
            body_too_large=True))
        self.assertEqual((status, _code(body)), (413, "RequestEntityTooLarge"))

    async def test_sigv4(self) -> None:
        body = urlencode({"Action": "DescribeRegions", "Version": "2016-11-15"}).encode()
        headers = {"host": HOST, "content-type": "application/x-www-form-urlencoded"}
        added = sign_v4_headers("POST", HOST, PATH, [], headers,
                                  f"{self.alice.access}:web", self.alice.secret, "nova", "ec2",
                                  payload_sha256=hashlib.sha256(body).hexdigest(),
                                  now=NOW)
        headers.update({name.lower(): value for name, value in added.items()})
        status, out = await self.handler.handle(HttpRequest(
            method="POST", host=HOST, path=PATH, query="", headers=headers, body=body))
        self.assertEqual(status, 200, out)
        self.assertIn(b"<regionName>nova</regionName>", out)

    async def test_zones_follow_heartbeats(self) -> None:
        status, body = await self.request({"Action": "DescribeAvailabilityZones"})
        self.assertNotIn(b"<zoneName>", body)
        await self.services.heartbeat(Service(host="h1", binary="nova-compute", topic="compute",
                                              zone="east", updated_at=NOW, report_count=0,
                                              disabled=False, started_at=NOW))
        status, body = await self.request({"Action": "DescribeAvailabilityZones"})
        self.assertIn(b"<zoneName>east</zoneName><zoneState>available</zoneState>", body)
        self.clock.advance(120)  # the service falls silent
        status, body = await self.request({"Action": "DescribeAvailabilityZones"},
                                          now=NOW + 120)
        self.assertIn(b"<zoneState>unavailable</zoneState>", body)

    async def test_verbose_zones_only_for_admins(self) -> None:
        await self.services.heartbeat(Service(host="h1", binary="nova-compute", topic="compute",
                                              zone="east", updated_at=NOW, report_count=0,
                                              disabled=False, started_at=NOW))
        params = {"Action": "DescribeAvailabilityZones", "ZoneName.1": "verbose"}
        status, body = await self.request(params)
        self.assertNotIn(b"|- h1", body)
        await self.auth.modify_user("alice", admin=True)
        status, body = await self.request(params)
        self.assertIn(b"<zoneName>|- h1</zoneName>", body)
        self.assertIn(b"<zoneName>| |- nova-compute</zoneName>", body)
        self.assertIn(b"enabled :-)", body)
