"""
The S3 site over a loopback port, the real store in a temporary directory:
object operations (put, get with ranges and conditions, head, delete,
multi-delete, copy, ACLs) and listings.
"""

from __future__ import annotations

import base64
import hashlib
import zlib

from twisted.internet import defer, protocol
from twisted.trial import unittest

from nova.auth.signer import sign_v4_headers
from nova.objectstore.http import producers
from tests.test_objectstore_http_support import NS, REGION, S3Harness, aws_chunked


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


class ObjectTests(unittest.TestCase):
    async def setUp(self) -> None:
        self.s3 = await S3Harness(self).start()
        self.bucket = await self.s3.make_bucket(self.s3.alice)

    def path(self, key: str) -> str:
        return f"/{self.bucket}/{key}"

    async def test_put_keeps_headers_and_metadata(self) -> None:
        s3 = self.s3
        headers = {"Content-Type": "text/x-test", "Cache-Control": "max-age=60",
                   "Content-Disposition": 'attachment; filename="a.txt"',
                   "Content-Encoding": "identity", "Content-Language": "fr",
                   "Expires": "Thu, 01 Dec 2030 16:00:00 GMT",
                   "x-amz-meta-Colour": "blue", "x-amz-meta-n": "1",
                   "Content-MD5": md5_b64(b"hello")}
        put = await s3.put(s3.alice, self.bucket, "dir/a.txt", b"hello", headers)
        self.assertEqual(put.headers["etag"], f'"{hashlib.md5(b"hello").hexdigest()}"')
        for method in ("GET", "HEAD"):
            reply = await s3.request(method, self.path("dir/a.txt"), user=s3.alice)
            self.assertEqual(reply.status, 200)
            self.assertEqual(reply.body, b"hello" if method == "GET" else b"")
            for name, value in headers.items():
                if name != "Content-MD5":
                    self.assertEqual(reply.headers[name.lower()], value, (method, name))
            self.assertEqual(reply.headers["accept-ranges"], "bytes")
            self.assertTrue(reply.headers["last-modified"].endswith(" GMT"))

    async def test_default_content_type_and_empty_object(self) -> None:
        s3 = self.s3
        await s3.put(s3.alice, self.bucket, "empty", b"")
        reply = await s3.request("GET", self.path("empty"), user=s3.alice)
        self.assertEqual((reply.status, reply.body), (200, b""))
        self.assertEqual(reply.headers["content-type"], "binary/octet-stream")
        self.assertEqual(reply.headers["etag"], f'"{hashlib.md5(b"").hexdigest()}"')

    async def test_digests(self) -> None:
        s3 = self.s3
        bad = await s3.request("PUT", self.path("k"), user=s3.alice, body=b"data",
                               headers={"Content-MD5": "nonsense"})
        self.assertEqual((bad.status, bad.code), (400, "InvalidDigest"))
        wrong = await s3.request("PUT", self.path("k"), user=s3.alice, body=b"data",
                                 headers={"Content-MD5": md5_b64(b"other")})
        self.assertEqual((wrong.status, wrong.code), (400, "BadDigest"))
        crc = base64.b64encode(zlib.crc32(b"other").to_bytes(4, "big")).decode()
        wrong_crc = await s3.request("PUT", self.path("k"), user=s3.alice, body=b"data",
                                     headers={"x-amz-checksum-crc32": crc})
        self.assertEqual((wrong_crc.status, wrong_crc.code), (400, "BadDigest"))
        self.assertEqual((await s3.request("HEAD", self.path("k"), user=s3.alice)).status, 404)
        crc = base64.b64encode(zlib.crc32(b"data").to_bytes(4, "big")).decode()
        await s3.put(s3.alice, self.bucket, "k", b"data", {"x-amz-checksum-crc32": crc})

    async def test_keys(self) -> None:
        s3 = self.s3
        for key in ("ünï cödé/😀", "a+b=c&d?e#f", "../../escape", "x" * 1024, "%2F%00"):
            await s3.put(s3.alice, self.bucket, key, key.encode())
            reply = await s3.request("GET", self.path(key), user=s3.alice)
            self.assertEqual(reply.body, key.encode(), key)
        too_long = await s3.request("PUT", self.path("x" * 1025), user=s3.alice, body=b"x")
        self.assertEqual((too_long.status, too_long.code), (400, "KeyTooLongError"))

    async def test_what_cannot_be_honoured_is_refused(self) -> None:
        s3 = self.s3
        for headers in ({"x-amz-server-side-encryption": "AES256"},
                        {"x-amz-grant-read": 'id="someone"'},
                        {"x-amz-object-lock-mode": "GOVERNANCE"}):
            reply = await s3.request("PUT", self.path("k"), user=s3.alice, body=b"x",
                                     headers=headers)
            self.assertEqual((reply.status, reply.code), (501, "NotImplemented"), headers)
        big = await s3.request("PUT", self.path("k"), user=s3.alice, body=b"x",
                               headers={"x-amz-meta-big": "v" * 2100})
        self.assertEqual((big.status, big.code), (400, "MetadataTooLarge"))
        self.assertEqual((await s3.request("HEAD", self.path("k"), user=s3.alice)).status, 404)

    async def test_ranges(self) -> None:
        s3 = self.s3
        data = bytes(range(256)) * 4
        await s3.put(s3.alice, self.bucket, "r", data)
        for header, first, last in (("bytes=0-9", 0, 9), ("bytes=1000-", 1000, 1023),
                                    ("bytes=-24", 1000, 1023), ("bytes=500-5000", 500, 1023)):
            reply = await s3.request("GET", self.path("r"), user=s3.alice,
                                     headers={"Range": header})
            self.assertEqual(reply.status, 206, header)
            self.assertEqual(reply.body, data[first:last + 1], header)
            self.assertEqual(reply.headers["content-range"], f"bytes {first}-{last}/1024")
        ignored = await s3.request("GET", self.path("r"), user=s3.alice,
                                   headers={"Range": "bytes=0-1,5-6"})
        self.assertEqual((ignored.status, ignored.body), (200, data))
        beyond = await s3.request("GET", self.path("r"), user=s3.alice,
                                  headers={"Range": "bytes=1024-"})
        self.assertEqual((beyond.status, beyond.code), (416, "InvalidRange"))
        self.assertEqual(beyond.xml().findtext("ActualObjectSize"), "1024")
        self.assertEqual(beyond.headers["content-range"], "bytes */1024")
        head = await s3.request("HEAD", self.path("r"), user=s3.alice,
                                headers={"Range": "bytes=0-9"})
        self.assertEqual((head.status, head.headers["content-range"]), (206, "bytes 0-9/1024"))

    async def test_conditions(self) -> None:
        s3 = self.s3
        etag = (await s3.put(s3.alice, self.bucket, "c", b"body")).headers["etag"]
        last_modified = (await s3.request("HEAD", self.path("c"), user=s3.alice)
                         ).headers["last-modified"]
        cases = [({"If-Match": etag}, 200), ({"If-Match": '"other"'}, 412),
                 ({"If-None-Match": etag}, 304), ({"If-None-Match": '"other"'}, 200),
                 ({"If-Modified-Since": last_modified}, 304),
                 ({"If-Unmodified-Since": last_modified}, 200),
                 ({"If-Unmodified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}, 412),
                 ({"If-Match": etag, "If-Unmodified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"},
                  200)]
        for headers, status in cases:
            for method in ("GET", "HEAD"):
                reply = await s3.request(method, self.path("c"), user=s3.alice,
                                         headers=headers)
                self.assertEqual(reply.status, status, (method, headers))
                if status == 304:
                    self.assertEqual((reply.body, reply.headers["etag"]), (b"", etag))
                if status == 412 and method == "GET":
                    self.assertEqual(reply.code, "PreconditionFailed")

    async def test_response_overrides(self) -> None:
        s3 = self.s3
        await s3.put(s3.alice, self.bucket, "o", b"x", {"Content-Type": "text/plain"})
        query = [("response-content-type", "application/json"),
                 ("response-content-disposition", "inline"),
                 ("response-cache-control", "no-cache"), ("response-expires", "0"),
                 ("response-content-language", "de"), ("response-content-encoding", "gzip")]
        reply = await s3.request("GET", self.path("o"), user=s3.alice, query=query)
        self.assertEqual((reply.headers["content-type"], reply.headers["content-disposition"],
                          reply.headers["cache-control"], reply.headers["expires"],
                          reply.headers["content-language"], reply.headers["content-encoding"]),
                         ("application/json", "inline", "no-cache", "0", "de", "gzip"))
        await s3.request("PUT", self.path("o"), query=[("acl", "")], user=s3.alice,
                         headers={"x-amz-acl": "public-read"})
        anonymous = await s3.request("GET", self.path("o"), sign="none", query=query[:1])
        self.assertEqual((anonymous.status, anonymous.code), (400, "InvalidRequest"))
        plain = await s3.request("GET", self.path("o"), sign="none")
        self.assertEqual((plain.status, plain.body), (200, b"x"))

    async def test_object_acl(self) -> None:
        s3 = self.s3
        await s3.put(s3.alice, self.bucket, "pub", b"p", {"x-amz-acl": "public-read"})
        self.assertEqual((await s3.request("GET", self.path("pub"), sign="none")).body, b"p")
        self.assertEqual((await s3.request("HEAD", self.path("pub"), user=s3.bob)).status, 200)
        acl = (await s3.request("GET", self.path("pub"), query=[("acl", "")],
                                user=s3.alice)).xml()
        self.assertEqual([e.text for e in acl.iter(NS + "Permission")], ["FULL_CONTROL", "READ"])
        self.assertEqual((await s3.request("GET", self.path("pub"), query=[("acl", "")],
                                           user=s3.bob)).status, 403)
        reply = await s3.request("PUT", self.path("pub"), query=[("acl", "")], user=s3.alice,
                                 headers={"x-amz-acl": "private"})
        self.assertEqual(reply.status, 200)
        self.assertEqual((await s3.request("GET", self.path("pub"), sign="none")).status, 403)

    async def test_delete(self) -> None:
        s3 = self.s3
        await s3.put(s3.alice, self.bucket, "d", b"x")
        for _ in range(2):  # deleting a missing key is not an error
            self.assertEqual((await s3.request("DELETE", self.path("d"), user=s3.alice)).status,
                             204)
        self.assertEqual((await s3.request("GET", self.path("d"), user=s3.alice)).code,
                         "NoSuchKey")

    async def test_delete_objects(self) -> None:
        s3 = self.s3
        for key in ("a", "b & c"):
            await s3.put(s3.alice, self.bucket, key, b"x")
        body = (b"<Delete><Object><Key>a</Key></Object><Object><Key>b &amp; c</Key></Object>"
                b"<Object><Key>missing</Key></Object></Delete>")
        unsigned = await s3.request("POST", f"/{self.bucket}", query=[("delete", "")],
                                    user=s3.alice, body=body)
        self.assertEqual((unsigned.status, unsigned.code), (400, "InvalidRequest"))
        wrong = await s3.request("POST", f"/{self.bucket}", query=[("delete", "")],
                                 user=s3.alice, body=body,
                                 headers={"Content-MD5": md5_b64(b"x")})
        self.assertEqual(wrong.code, "BadDigest")
        reply = await s3.request("POST", f"/{self.bucket}", query=[("delete", "")],
                                 user=s3.alice, body=body, headers={"Content-MD5": md5_b64(body)})
        self.assertEqual(reply.status, 200, reply.body)
        self.assertEqual([e.text for e in reply.xml().iter(NS + "Key")],
                         ["a", "b & c", "missing"])
        listing = (await s3.request("GET", f"/{self.bucket}", user=s3.alice)).xml()
        self.assertEqual(list(listing.iter(NS + "Key")), [])
        quiet = body.replace(b"<Delete>", b"<Delete><Quiet>true</Quiet>")
        reply = await s3.request("POST", f"/{self.bucket}", query=[("delete", "")],
                                 user=s3.alice, body=quiet,
                                 headers={"Content-MD5": md5_b64(quiet)})
        self.assertEqual((reply.status, list(reply.xml())), (200, []))

    async def test_copy(self) -> None:
        s3 = self.s3
        source = (await s3.put(s3.alice, self.bucket, "src ü", b"copied", {
            "Content-Type": "text/plain", "x-amz-meta-a": "1"})).headers["etag"]
        encoded = f"/{self.bucket}/src%20%C3%BC?versionId=null"
        reply = await s3.request("PUT", self.path("dst"), user=s3.alice,
                                 headers={"x-amz-copy-source": encoded})
        self.assertEqual(reply.status, 200, reply.body)
        self.assertEqual(reply.xml().findtext(NS + "ETag"), source)
        copied = await s3.request("GET", self.path("dst"), user=s3.alice)
        self.assertEqual((copied.body, copied.headers["content-type"],
                          copied.headers["x-amz-meta-a"]), (b"copied", "text/plain", "1"))
        replaced = await s3.request("PUT", self.path("dst"), user=s3.alice, headers={
            "x-amz-copy-source": encoded, "x-amz-metadata-directive": "REPLACE",
            "Content-Type": "text/html", "x-amz-meta-b": "2"})
        self.assertEqual(replaced.status, 200)
        head = await s3.request("HEAD", self.path("dst"), user=s3.alice)
        self.assertEqual((head.headers["content-type"], head.headers.get("x-amz-meta-a"),
                          head.headers["x-amz-meta-b"]), ("text/html", None, "2"))
        itself = await s3.request("PUT", self.path("src ü"), user=s3.alice,
                                  headers={"x-amz-copy-source": encoded})
        self.assertEqual((itself.status, itself.code), (400, "InvalidRequest"))
        refresh = await s3.request("PUT", self.path("src ü"), user=s3.alice, headers={
            "x-amz-copy-source": encoded, "x-amz-metadata-directive": "REPLACE"})
        self.assertEqual(refresh.status, 200)
        for headers in ({"x-amz-copy-source-if-match": '"nope"'},
                        {"x-amz-copy-source-if-none-match": source}):
            failed = await s3.request("PUT", self.path("dst2"), user=s3.alice,
                                      headers={"x-amz-copy-source": encoded, **headers})
            self.assertEqual((failed.status, failed.code), (412, "PreconditionFailed"))
        missing = await s3.request("PUT", self.path("dst2"), user=s3.alice,
                                   headers={"x-amz-copy-source": f"/{self.bucket}/nope"})
        self.assertEqual(missing.code, "NoSuchKey")
        bad = await s3.request("PUT", self.path("dst2"), user=s3.alice,
                               headers={"x-amz-copy-source": "justabucket"})
        self.assertEqual(bad.code, "InvalidArgument")
        theirs = await s3.make_bucket(s3.bob)
        stolen = await s3.request("PUT", f"/{theirs}/x", user=s3.bob,
                                  headers={"x-amz-copy-source": encoded})
        self.assertEqual(stolen.status, 403)

    async def test_presigned_put(self) -> None:
        s3 = self.s3
        reply = await s3.request("PUT", self.path("via-url"), user=s3.alice, sign="v4-query",
                                 body=b"presigned body")
        self.assertEqual(reply.status, 200, reply.body)
        self.assertEqual((await s3.request("GET", self.path("via-url"), user=s3.alice)).body,
                         b"presigned body")

    async def test_unsigned_trailer_checksum(self) -> None:
        s3 = self.s3
        data = b"trailing checksum " * 1000
        crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
        for claimed, status in (("AAAAAA==", 400), (crc, 200)):
            body = aws_chunked(data, 4096, trailers={"x-amz-checksum-crc32": claimed})
            reply = await s3.request("PUT", self.path("trailer"), user=s3.alice, body=body,
                                     payload="STREAMING-UNSIGNED-PAYLOAD-TRAILER", headers={
                                         "Content-Encoding": "aws-chunked",
                                         "x-amz-decoded-content-length": str(len(data)),
                                         "x-amz-trailer": "x-amz-checksum-crc32"})
            self.assertEqual(reply.status, status, reply.body)
        got = await s3.request("GET", self.path("trailer"), user=s3.alice)
        self.assertEqual(got.body, data)
        self.assertNotIn("content-encoding", got.headers)

    async def test_missing_object(self) -> None:
        s3 = self.s3
        head = await s3.request("HEAD", self.path("nope"), user=s3.alice)
        self.assertEqual((head.status, head.body), (404, b""))
        get = await s3.request("GET", self.path("nope"), user=s3.alice)
        self.assertEqual((get.status, get.code, get.xml().findtext("Key")),
                         (404, "NoSuchKey", "nope"))

    async def test_client_gone_mid_download_closes_the_object(self) -> None:
        s3 = self.s3
        await s3.put(s3.alice, self.bucket, "big", b"b" * (8 * 1024 * 1024))
        open_object = s3.store.open_object
        service = s3.site.resource._service
        for use_sendfile in (True, False):
            service.use_sendfile = use_sendfile
            closed: defer.Deferred[None] = defer.Deferred()

            async def spy(bucket: str, key: str, closed=closed):
                handle = await open_object(bucket, key)
                close = handle.close

                def closing() -> None:
                    close()
                    if not closed.called:
                        closed.callback(None)

                handle.close = closing
                return handle

            s3.store.open_object = spy
            got_data: defer.Deferred[None] = defer.Deferred()
            request = self._raw_get(f"/{self.bucket}/big")

            class Impatient(protocol.Protocol):
                def connectionMade(self) -> None:  # noqa: N802
                    self.transport.write(request)

                def dataReceived(self, data: bytes) -> None:  # noqa: N802
                    if not got_data.called:
                        self.transport.abortConnection()
                        got_data.callback(None)

            await protocol.ClientCreator(s3.reactor, Impatient).connectTCP(
                "127.0.0.1", s3.port.getHost().port)
            await got_data
            await closed  # the producer noticed and let the object go
        self.assertEqual(self.flushLoggedErrors(), [])

    async def test_refused_upload_answered_while_the_client_still_sends(self) -> None:
        s3 = self.s3
        theirs = await s3.make_bucket(s3.bob)
        path = f"/{theirs}/stolen"
        length = 64 * 1024 * 1024
        headers = sign_v4_headers("PUT", s3.host, path, [], {"Content-Length": str(length)},
                                  s3.alice.access, s3.alice.secret, REGION, "s3",
                                  payload_sha256="UNSIGNED-PAYLOAD")
        head = "".join([f"PUT {path} HTTP/1.1\r\n", f"Host: {s3.host}\r\n",
                        f"Content-Length: {length}\r\n"] +
                       [f"{k}: {v}\r\n" for k, v in headers.items()]) + "\r\n"
        done: defer.Deferred[bytes] = defer.Deferred()

        class Pushy(protocol.Protocol):
            """
            Sends its whole body before it reads anything, as s3cmd and boto 2
            do: an answer followed by a reset would be lost to it.
            """

            received = b""
            sent = 0

            def connectionMade(self) -> None:  # noqa: N802
                self.transport.pauseProducing()  # no reading until all is sent
                self.transport.write(head.encode())
                self.transport.registerProducer(self, True)
                self.resumeProducing()

            def resumeProducing(self) -> None:  # noqa: N802
                self.paused = False
                while not self.paused and self.sent < length:
                    self.transport.write(b"\0" * 65536)
                    self.sent += 65536
                if self.sent >= length and not self.paused:
                    self.transport.resumeProducing()  # everything is out: read

            def pauseProducing(self) -> None:  # noqa: N802
                self.paused = True

            def stopProducing(self) -> None:  # noqa: N802
                self.paused = True

            def dataReceived(self, data: bytes) -> None:  # noqa: N802
                self.received += data

            def connectionLost(self, reason: object = None) -> None:  # noqa: N802
                done.callback(self.received)

        await protocol.ClientCreator(s3.reactor, Pushy).connectTCP(
            "127.0.0.1", s3.port.getHost().port)
        answer = await done
        # the whole error document arrived (no reset), and nothing was stored
        self.assertTrue(answer.startswith(b"HTTP/1.1 403 "), answer[:200])
        self.assertTrue(answer.endswith(b"</Error>"), answer[-200:])
        self.assertEqual((await s3.request("HEAD", path, user=s3.bob)).status, 404)

    def _raw_get(self, path: str) -> bytes:
        s3 = self.s3
        headers = sign_v4_headers("GET", s3.host, path, [], {}, s3.alice.access,
                                  s3.alice.secret, REGION, "s3")
        lines = [f"GET {path} HTTP/1.1", f"Host: {s3.host}"] + [
            f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def test_large_body_streams_with_sendfile(self) -> None:
        s3 = self.s3
        data = hashlib.sha256(b"seed").digest() * (3 * 1024 * 1024 // 32 + 5)
        calls: list[int] = []
        original = producers.sendfile_some

        def counting(out_fd: int, in_fd: int, offset: int, count: int) -> tuple[int, bool]:
            calls.append(count)
            return original(out_fd, in_fd, offset, count)

        self.patch(producers, "sendfile_some", counting)
        await s3.put(s3.alice, self.bucket, "big", data)
        reply = await s3.request("GET", self.path("big"), user=s3.alice)
        self.assertEqual(reply.body, data)
        self.assertTrue(calls)
        ranged = await s3.request("GET", self.path("big"), user=s3.alice,
                                  headers={"Range": "bytes=1000000-2999999"})
        self.assertEqual(ranged.body, data[1000000:3000000])

    async def test_large_body_streams_by_reads(self) -> None:
        s3 = self.s3
        s3.site.resource._service.use_sendfile = False
        data = bytes(range(256)) * (5 * 1024 * 1024 // 256 + 3)
        await s3.put(s3.alice, self.bucket, "big", data)
        reply = await s3.request("GET", self.path("big"), user=s3.alice,
                                 headers={"Range": "bytes=7-"})
        self.assertEqual(reply.body, data[7:])


class ListingTests(unittest.TestCase):
    keys = ["a", "b/1", "b/2", "b/c/3", "c", "d/4", "e"]

    async def setUp(self) -> None:
        self.s3 = await S3Harness(self).start()
        self.bucket = await self.s3.make_bucket(self.s3.alice)
        for key in self.keys:
            await self.s3.put(self.s3.alice, self.bucket, key, key.encode())

    async def list(self, **params: str):
        query = [(k.replace("_", "-"), v) for k, v in params.items()]
        reply = await self.s3.request("GET", f"/{self.bucket}", query=query, user=self.s3.alice)
        self.assertEqual(reply.status, 200, reply.body)
        return reply.xml()

    @staticmethod
    def names(root) -> tuple[list[str], list[str]]:
        return ([e.findtext(NS + "Key") for e in root.findall(NS + "Contents")],
                [e.findtext(NS + "Prefix") for e in root.findall(NS + "CommonPrefixes")])

    async def test_v1_pages_with_delimiter(self) -> None:
        seen_keys, seen_prefixes, marker = [], [], ""
        while True:
            root = await self.list(delimiter="/", max_keys="2", marker=marker)
            keys, prefixes = self.names(root)
            seen_keys += keys
            seen_prefixes += prefixes
            if root.findtext(NS + "IsTruncated") != "true":
                self.assertIsNone(root.find(NS + "NextMarker"))
                break
            marker = root.findtext(NS + "NextMarker")
        self.assertEqual((seen_keys, seen_prefixes), (["a", "c", "e"], ["b/", "d/"]))

    async def test_v1_without_delimiter_continues_from_the_last_key(self) -> None:
        root = await self.list(max_keys="3")
        self.assertEqual(self.names(root)[0], ["a", "b/1", "b/2"])
        self.assertEqual(root.findtext(NS + "IsTruncated"), "true")
        self.assertIsNone(root.find(NS + "NextMarker"))
        root = await self.list(prefix="b/", marker="b/1")
        self.assertEqual(self.names(root)[0], ["b/2", "b/c/3"])
        self.assertEqual(root.findtext(NS + "Prefix"), "b/")
        self.assertEqual(root.findtext(f"{NS}Contents/{NS}Owner/{NS}DisplayName"), "web")

    async def test_v2_continuation_start_after_fetch_owner(self) -> None:
        seen, token, pages = [], None, 0
        while True:
            params = {"list_type": "2", "max_keys": "3"}
            if token:
                params["continuation_token"] = token
            root = await self.list(**params)
            pages += 1
            self.assertEqual(int(root.findtext(NS + "KeyCount")),
                             len(root.findall(NS + "Contents")))
            self.assertIsNone(root.find(f"{NS}Contents/{NS}Owner"))
            seen += self.names(root)[0]
            token = root.findtext(NS + "NextContinuationToken")
            if root.findtext(NS + "IsTruncated") != "true":
                break
        self.assertEqual((seen, pages), (self.keys, 3))
        root = await self.list(list_type="2", start_after="c", fetch_owner="true")
        self.assertEqual(self.names(root)[0], ["d/4", "e"])
        self.assertEqual(root.findtext(NS + "StartAfter"), "c")
        self.assertEqual(root.findtext(f"{NS}Contents/{NS}Owner/{NS}DisplayName"), "web")
        root = await self.list(list_type="2", delimiter="/", prefix="b/")
        self.assertEqual(self.names(root), (["b/1", "b/2"], ["b/c/"]))
        self.assertEqual(root.findtext(NS + "KeyCount"), "3")

    async def test_bad_parameters(self) -> None:
        s3 = self.s3
        for query in ([("list-type", "2"), ("continuation-token", "!!!")],
                      [("max-keys", "-1")], [("max-keys", "many")],
                      [("encoding-type", "base64")]):
            reply = await s3.request("GET", f"/{self.bucket}", query=query, user=s3.alice)
            self.assertEqual((reply.status, reply.code), (400, "InvalidArgument"), query)

    async def test_url_encoding_and_max_keys(self) -> None:
        await self.s3.put(self.s3.alice, self.bucket, "sp ace+plus", b"x")
        root = await self.list(list_type="2", encoding_type="url", prefix="sp")
        self.assertEqual(self.names(root)[0], ["sp+ace%2Bplus"])
        self.assertEqual(root.findtext(NS + "EncodingType"), "url")
        root = await self.list(max_keys="0")
        self.assertEqual((self.names(root), root.findtext(NS + "IsTruncated")),
                         (([], []), "false"))
        root = await self.list(max_keys="100000")
        self.assertEqual(root.findtext(NS + "MaxKeys"), "1000")
