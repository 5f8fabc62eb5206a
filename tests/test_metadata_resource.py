"""
The metadata tree over HTTP, driven through in-memory connections
(StringTransport, MemoryReactorClock): every path the guests read, the
identity rules of the TCP and unix listeners, methods and errors.
"""

from __future__ import annotations

import base64
from typing import Any

from twisted.internet.address import IPv4Address, UNIXAddress
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial import unittest

from nova.api.metadata.data import InstanceMetadata
from nova.api.metadata.resource import (
    VERSIONS, Directory, MetadataResource, forwarded_address, lookup, metadata_site,
    peer_address)
from nova.datastore.errors import DatastoreError
from tests.test_metadata_data import KEY, MetadataWorld

USER_DATA = b"#!/bin/sh\n\x00\xffbinary is fine\n"


def send(site: Any, path: str, *, peer: Any = None, method: str = "GET",
         headers: tuple[tuple[str, str], ...] = ()) -> StringTransport:
    """
    @return: the transport of an in-memory connection to C{site} that sent
        one request (its C{protocol} attribute is the server's protocol).
    """
    peer = peer if peer is not None else IPv4Address("TCP", "10.0.0.3", 40000)
    proto = site.buildProtocol(peer)
    transport = StringTransport(peerAddress=peer)
    transport.protocol = proto  # type: ignore[attr-defined]
    proto.makeConnection(transport)
    lines = [f"{method} {path} HTTP/1.1", "Host: 169.254.169.254", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    proto.dataReceived(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    return transport


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """@return: status, headers (lower-case names) and body of a response with a length."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    found = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        found[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), found, body


def http(site: Any, path: str, **kw: Any) -> tuple[int, dict[str, str], bytes]:
    """One request through an in-memory connection, answered at once: see L{send}, L{parse}."""
    return parse(send(site, path, **kw).value())


class MetadataTreeTests(unittest.TestCase):
    """The paths and values, for a caller identified by its TCP peer."""

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.world = MetadataWorld(self.reactor)
        self.site = metadata_site(MetadataResource(self.world.source(), peer_address),
                                  self.reactor)

    async def launch(self, **changes: Any) -> tuple[Any, IPv4Address]:
        instance = await self.world.launch(**changes)
        return instance, IPv4Address("TCP", instance.private_ip, 40000)

    def text(self, path: str, peer: Any) -> str:
        status, headers, body = http(self.site, path, peer=peer)
        self.assertEqual((status, headers["content-type"]), (200, "text/plain"), path)
        self.assertEqual(headers["content-length"], str(len(body)))
        return body.decode()

    def assertNotFound(self, path: str, peer: Any = None, **kw: Any) -> None:
        status, headers, body = http(self.site, path, peer=peer, **kw)
        self.assertEqual((status, headers["content-type"], body),
                         (404, "text/plain", b"Not Found"), path)

    def test_versions_for_anyone(self) -> None:
        listing = self.text("/", IPv4Address("TCP", "192.0.2.1", 1))
        self.assertEqual(listing, "1.0\n2007-01-19\n2007-03-01\n2007-08-29\n2007-10-10\n"
                                  "2007-12-15\n2008-02-01\n2008-09-01\n2009-04-04\nlatest")

    async def test_meta_data_listing(self) -> None:
        _, peer = await self.launch()
        expected = ("ami-id\nami-launch-index\nami-manifest-path\nblock-device-mapping/\n"
                    "hostname\ninstance-action\ninstance-id\ninstance-type\nlocal-hostname\n"
                    "local-ipv4\nplacement/\npublic-keys/\nreservation-id\nsecurity-groups")
        for version in VERSIONS:
            self.assertEqual(self.text(f"/{version}/meta-data/", peer), expected)
        self.assertEqual(self.text("/latest/meta-data", peer), expected)

    async def test_values(self) -> None:
        instance, peer = await self.launch(security_groups=["default", "web"],
                                           availability_zone="zone-a", launch_index=0)
        md = "/latest/meta-data/"
        expect = {
            "ami-id": instance.image_id,
            "ami-launch-index": "0",
            "ami-manifest-path": "(unknown)",
            "hostname": instance.instance_id,
            "local-hostname": instance.instance_id,
            "instance-action": "none",
            "instance-id": instance.instance_id,
            "instance-type": "m1.tiny",
            "local-ipv4": instance.private_ip,
            "reservation-id": instance.reservation_id,
            "security-groups": "default\nweb",
            "placement/": "availability-zone",
            "placement/availability-zone": "zone-a",
            "block-device-mapping/": "ami\nroot",
            "block-device-mapping/ami": "sda1",
            "block-device-mapping/root": "/dev/sda1",
            "public-keys/": "0=mykey",
            "public-keys": "0=mykey",
            "public-keys/0/": "openssh-key",
            "public-keys/0": "openssh-key",
            "public-keys/0/openssh-key": KEY,
            "instance-id/": instance.instance_id,
        }
        for key, value in expect.items():
            self.assertEqual(self.text(md + key, peer), value, key)

    async def test_optional_keys(self) -> None:
        instance, peer = await self.launch(kernel_id="aki-00000002", ramdisk_id="ari-00000003",
                                           key_name=None)
        await self.world.instances.update(instance.instance_id, public_ip="192.0.2.10")
        listing = self.text("/latest/meta-data/", peer).split("\n")
        for key in ("kernel-id", "ramdisk-id", "public-ipv4", "public-hostname"):
            self.assertIn(key, listing)
        self.assertNotIn("public-keys/", listing)
        self.assertEqual(self.text("/latest/meta-data/kernel-id", peer), "aki-00000002")
        self.assertEqual(self.text("/latest/meta-data/ramdisk-id", peer), "ari-00000003")
        self.assertEqual(self.text("/latest/meta-data/public-ipv4", peer), "192.0.2.10")
        self.assertEqual(self.text("/latest/meta-data/public-hostname", peer), "192.0.2.10")
        self.assertNotFound("/latest/meta-data/public-keys/", peer)

    async def test_absent_optional_keys(self) -> None:
        _, peer = await self.launch()
        listing = self.text("/latest/meta-data/", peer).split("\n")
        for key in ("kernel-id", "ramdisk-id", "public-ipv4", "public-hostname"):
            self.assertNotIn(key, listing)
            self.assertNotFound(f"/latest/meta-data/{key}", peer)

    async def test_user_data(self) -> None:
        _, peer = await self.launch(user_data=base64.b64encode(USER_DATA).decode())
        self.assertEqual(self.text("/latest/", peer), "meta-data/\nuser-data")
        self.assertEqual(self.text("/2009-04-04", peer), "meta-data/\nuser-data")
        status, headers, body = http(self.site, "/latest/user-data", peer=peer)
        self.assertEqual((status, headers["content-type"], body),
                         (200, "application/octet-stream", USER_DATA))

    async def test_no_user_data(self) -> None:
        _, peer = await self.launch()
        self.assertEqual(self.text("/latest/", peer), "meta-data/")
        self.assertNotFound("/latest/user-data", peer)

    async def test_unknown_paths(self) -> None:
        _, peer = await self.launch()
        for path in ("/2010-01-01/meta-data/", "/latest/meta-data/nope",
                     "/latest/meta-data/instance-id/more", "/latest//meta-data/",
                     "/latest/meta-data/public-keys/1/", "/latest/meta-data//instance-id",
                     "/LATEST/", "/latest/meta-data/%ff"):
            self.assertNotFound(path, peer)

    async def test_unknown_caller_gets_nothing(self) -> None:
        await self.launch()
        stranger = IPv4Address("TCP", "10.0.1.99", 40000)
        for path in ("/latest/", "/latest/meta-data/", "/latest/meta-data/instance-id",
                     "/latest/user-data"):
            self.assertNotFound(path, stranger)

    async def test_forwarded_for_is_not_trusted_over_tcp(self) -> None:
        one, peer = await self.launch()
        two, _ = await self.launch()
        header = (("X-Forwarded-For", two.private_ip),)
        self.assertNotFound("/latest/meta-data/instance-id",
                            IPv4Address("TCP", "127.0.0.1", 1), headers=header)
        status, _, body = http(self.site, "/latest/meta-data/instance-id", peer=peer,
                               headers=header)
        self.assertEqual((status, body.decode()), (200, one.instance_id))

    async def test_methods(self) -> None:
        _, peer = await self.launch()
        for method in ("POST", "PUT", "DELETE", "OPTIONS"):
            status, headers, body = http(self.site, "/latest/meta-data/", peer=peer,
                                         method=method)
            self.assertEqual((status, headers["allow"], headers["content-type"], body),
                             (405, "GET, HEAD", "text/plain", b"Method Not Allowed"))

    async def test_head(self) -> None:
        instance, peer = await self.launch()
        status, headers, body = http(self.site, "/latest/meta-data/instance-id", peer=peer,
                                     method="HEAD")
        self.assertEqual((status, headers["content-length"], body),
                         (200, str(len(instance.instance_id)), b""))

    def test_datastore_failure_is_500(self) -> None:
        class Broken:
            async def for_address(self, address: str) -> InstanceMetadata | None:
                raise DatastoreError("redis went away")

        site = metadata_site(MetadataResource(Broken(), peer_address), self.reactor)
        status, _, _ = http(site, "/latest/meta-data/")
        self.assertEqual(status, 500)
        self.assertEqual(len(self.flushLoggedErrors(DatastoreError)), 1)


class ForwardedIdentityTests(unittest.TestCase):
    """The unix socket's site: the proxy's X-Forwarded-For names the caller."""

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.world = MetadataWorld(self.reactor)
        self.site = metadata_site(MetadataResource(self.world.source(), forwarded_address),
                                  self.reactor)
        self.peer = UNIXAddress(None)

    async def test_forwarded_address_names_the_instance(self) -> None:
        one = await self.world.launch()
        two = await self.world.launch()
        for instance in (one, two):
            status, _, body = http(self.site, "/latest/meta-data/instance-id", peer=self.peer,
                                   headers=(("X-Forwarded-For", instance.private_ip),))
            self.assertEqual((status, body.decode()), (200, instance.instance_id))

    async def test_unknown_forwarded_address(self) -> None:
        await self.world.launch()
        status, _, body = http(self.site, "/latest/meta-data/instance-id", peer=self.peer,
                               headers=(("X-Forwarded-For", "10.0.1.99"),))
        self.assertEqual((status, body), (404, b"Not Found"))

    async def test_malformed_claims(self) -> None:
        instance = await self.world.launch()
        ip = instance.private_ip
        for headers in ((), (("X-Forwarded-For", f"{ip}, {ip}"),),
                        (("X-Forwarded-For", ip), ("X-Forwarded-For", ip)),
                        (("X-Forwarded-For", "guest"),), (("X-Forwarded-For", ""),)):
            status, headers_out, _ = http(self.site, "/latest/meta-data/instance-id",
                                          peer=self.peer, headers=headers)
            self.assertEqual((status, headers_out["content-type"]), (400, "text/plain"),
                             headers)

    def test_versions_need_no_claim(self) -> None:
        status, _, body = http(self.site, "/", peer=self.peer)
        self.assertEqual((status, body.decode().split("\n")), (200, list(VERSIONS)))


class TreeTests(unittest.TestCase):

    def test_lookup(self) -> None:
        tree = Directory({"a": Directory({"b": "value"}), "c": b"bytes"})
        self.assertEqual(lookup(tree, ["a", "b"]), "value")
        self.assertEqual(lookup(tree, ["a", "b", ""]), "value")
        self.assertEqual(lookup(tree, ["a", ""]), tree.entries["a"])
        self.assertEqual(lookup(tree, []), tree)
        self.assertIsNone(lookup(tree, ["a", "x"]))
        self.assertIsNone(lookup(tree, ["c", "d"]))
        self.assertIsNone(lookup(tree, ["", "a"]))

    def test_listing(self) -> None:
        tree = Directory({"d": Directory({}), "v": "x", "k": Directory({})}, {"k": "0=name"})
        self.assertEqual(tree.listing(), "d/\nv\n0=name")
