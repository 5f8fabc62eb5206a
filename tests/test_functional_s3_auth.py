"""
Functional: how the running object store authenticates: presigned GET and PUT
(SigV4 and SigV2, from boto3 and from nova's signer), expired and tampered
URLs, wrong secrets and unknown keys, clock skew, bodies that do not match
x-amz-content-sha256, streaming (aws-chunked) uploads with every chunk
signature checked, and requests the store must refuse before reading a body.
"""

from __future__ import annotations

import hashlib
import socket
import time
import http.client
import urllib.parse

from boto.exception import S3ResponseError

from nova.auth.signer import (STREAMING_PAYLOAD, UNSIGNED_PAYLOAD, ChunkSigner, Scope,
                              SignedRequest, aws_quote, presign_s3_v2, presign_v4,
                              sign_v4_headers, signing_key)
from tests.support.s3 import (REGION, Response, S3Case, boto2_s3, boto3_s3, error_code,
                              md5_hex, raw_request, url_path)


def fetch(url: str, method: str = "GET", data: bytes | None = None) -> tuple[int, bytes]:
    """
    Send a request with no credentials but the URL's, as curl would: no
    Content-Type (urllib would add one, which a SigV2 signature covers).
    """
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, target, body=data,
                     headers={"Content-Length": str(len(data or b""))} if data else {})
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def code_of(body: bytes) -> str | None:
    return Response(0, {}, body).code


class PresignedTests(S3Case):
    """Presigned URLs work without any other credentials, until they expire."""

    def setUp(self) -> None:
        super().setUp()
        self.b = self.bucket()
        self.s3.put_object(Bucket=self.b, Key="shared file", Body=b"presigned body")
        self.host = f"127.0.0.1:{self.cloud.s3_port}"

    def presigned(self, client, method: str, key: str, expires: int = 300) -> str:
        return client.generate_presigned_url(method, Params={"Bucket": self.b, "Key": key},
                                             ExpiresIn=expires)

    def test_boto3_sigv4_get_and_put(self) -> None:
        url = self.presigned(self.s3, "get_object", "shared file")
        self.assertIn("X-Amz-Signature=", url)
        self.assertEqual(fetch(url), (200, b"presigned body"))
        url = self.presigned(self.s3, "put_object", "uploaded")
        status, _ = fetch(url, "PUT", b"sent by a browser")
        self.assertEqual(status, 200)
        self.assertEqual(self.s3.get_object(Bucket=self.b, Key="uploaded")["Body"].read(),
                         b"sent by a browser")

    def test_boto3_sigv2_get_and_put(self) -> None:
        v2 = self.alice.client(signature="s3")
        url = self.presigned(v2, "get_object", "shared file")
        self.assertIn("Signature=", url)
        self.assertIn("AWSAccessKeyId=", url)
        self.assertEqual(fetch(url), (200, b"presigned body"))
        url = self.presigned(v2, "put_object", "uploaded-v2")
        self.assertEqual(fetch(url, "PUT", b"v2 upload")[0], 200)
        self.assertEqual(self.s3.get_object(Bucket=self.b, Key="uploaded-v2")["Body"].read(),
                         b"v2 upload")

    def test_presigned_head(self) -> None:
        url = self.alice.s3.generate_presigned_url(
            "head_object", Params={"Bucket": self.b, "Key": "shared file"})
        self.assertEqual(fetch(url, "HEAD"), (200, b""))

    def test_expired_sigv4(self) -> None:
        path = url_path(self.b, "shared file")
        query = presign_v4("GET", self.host, path, [], self.alice.access, self.alice.secret,
                           REGION, "s3", expires=60, now=time.time() - 3600)
        url = f"{self.alice.endpoint}{path}?" + "&".join(
            f"{aws_quote(n)}={aws_quote(v)}" for n, v in query)
        status, body = fetch(url)
        self.assertEqual((status, code_of(body)), (403, "AccessDenied"))

    def test_expired_sigv2(self) -> None:
        path = url_path(self.b, "shared file")
        request = SignedRequest(method="GET", host=self.host, path=path)
        query = presign_s3_v2(request, self.alice.access, self.alice.secret,
                              int(time.time()) - 60)
        url = f"{self.alice.endpoint}{path}?" + "&".join(
            f"{aws_quote(n)}={aws_quote(v)}" for n, v in query)
        status, body = fetch(url)
        self.assertEqual((status, code_of(body)), (403, "AccessDenied"))

    def test_tampered(self) -> None:
        self.s3.put_object(Bucket=self.b, Key="other", Body=b"not shared")
        url = self.presigned(self.s3, "get_object", "shared file")
        status, body = fetch(url.replace("shared%20file", "other"))
        self.assertEqual((status, code_of(body)), (403, "SignatureDoesNotMatch"))
        url = self.presigned(self.alice.client(signature="s3"), "get_object", "shared file")
        status, body = fetch(url.replace("shared%20file", "other"))
        self.assertEqual((status, code_of(body)), (403, "SignatureDoesNotMatch"))

    def test_expiry_over_seven_days(self) -> None:
        path = url_path(self.b, "shared file")
        query = presign_v4("GET", self.host, path, [], self.alice.access, self.alice.secret,
                           REGION, "s3", expires=604801)
        url = f"{self.alice.endpoint}{path}?" + "&".join(
            f"{aws_quote(n)}={aws_quote(v)}" for n, v in query)
        status, body = fetch(url)
        self.assertEqual((status, code_of(body)), (400, "AuthorizationQueryParametersError"))


class CredentialTests(S3Case):
    """Wrong secrets and unknown keys, with every client and signature version."""

    def test_wrong_secret(self) -> None:
        for signature in ("s3v4", "s3"):
            forger = boto3_s3(self.alice.endpoint, self.alice.access, self.alice.secret + "x",
                              signature=signature)
            self.assertEqual(error_code(forger.list_buckets), "SignatureDoesNotMatch",
                             signature)
        with self.assertRaises(S3ResponseError) as caught:
            boto2_s3(self.cloud.s3_port, self.alice.access, "wrong").get_all_buckets()
        self.assertEqual((caught.exception.status, caught.exception.error_code),
                         (403, "SignatureDoesNotMatch"))

    def test_unknown_access_key(self) -> None:
        for signature in ("s3v4", "s3"):
            stranger = boto3_s3(self.alice.endpoint, "no-such-key:no-project", "secret",
                                signature=signature)
            self.assertEqual(error_code(stranger.list_buckets), "InvalidAccessKeyId", signature)

    def test_anonymous_service_listing(self) -> None:
        status, body = fetch(self.alice.endpoint + "/")
        self.assertEqual((status, code_of(body)), (403, "AccessDenied"))

    def test_clock_skew(self) -> None:
        answer = self.alice.request("GET", "/", now=time.time() - 3600)
        self.assertEqual((answer.status, answer.code), (403, "RequestTimeTooSkewed"))

    def test_sigv4_without_content_sha256(self) -> None:
        host = f"127.0.0.1:{self.cloud.s3_port}"
        headers = sign_v4_headers("GET", host, "/", [], {}, self.alice.access,
                                  self.alice.secret, REGION, "s3")
        del headers["X-Amz-Content-SHA256"]
        answer = raw_request(self.cloud.s3_port, "GET", "/", headers=headers)
        self.assertEqual((answer.status, answer.code), (400, "InvalidRequest"))


class PayloadTests(S3Case):
    """x-amz-content-sha256: checked against the body; UNSIGNED-PAYLOAD; streaming."""

    def setUp(self) -> None:
        super().setUp()
        self.b = self.bucket()

    def test_mismatch(self) -> None:
        answer = self.alice.request("PUT", url_path(self.b, "k"), body=b"actual body",
                                    payload_sha256=hashlib.sha256(b"other").hexdigest())
        self.assertEqual((answer.status, answer.code), (400, "XAmzContentSHA256Mismatch"))
        self.assertCode("404", self.s3.head_object, Bucket=self.b, Key="k")

    def test_unsigned_payload(self) -> None:
        answer = self.alice.request("PUT", url_path(self.b, "k"), body=b"unsigned",
                                    payload_sha256=UNSIGNED_PAYLOAD)
        self.assertEqual(answer.status, 200, answer.body)
        self.assertEqual(answer.headers["etag"], f'"{md5_hex(b"unsigned")}"')

    def streaming_put(self, key: str, chunks: list[bytes], corrupt: int | None = None) -> Response:
        """PUT with aws-chunked encoding and chunk signatures (chunk C{corrupt} resigned)."""
        host = f"127.0.0.1:{self.cloud.s3_port}"
        path = url_path(self.b, key)
        decoded = sum(len(c) for c in chunks)
        sizes = [len(c) for c in chunks] + [0]
        # each chunk: hex size, ";chunk-signature=" and 64 hex digits, CRLF, data, CRLF
        encoded = sum(len(f"{n:x}") + 17 + 64 + 2 + n + 2 for n in sizes)
        headers = {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length":
                   str(decoded), "Content-Length": str(encoded)}
        headers.update(sign_v4_headers("PUT", host, path, [], headers, self.alice.access,
                                       self.alice.secret, REGION, "s3",
                                       payload_sha256=STREAMING_PAYLOAD))
        amz_date = headers["X-Amz-Date"]
        scope = Scope(amz_date[:8], REGION, "s3")
        seed = headers["Authorization"].rsplit("Signature=", 1)[1]
        signer = ChunkSigner(signing_key(self.alice.secret, scope), amz_date, scope.value, seed)
        body = b""
        for i, chunk in enumerate(chunks + [b""]):
            signature = signer.sign_chunk(hashlib.sha256(chunk).hexdigest())
            if i == corrupt:
                signature = signature[:-1] + ("0" if signature[-1] != "0" else "1")
            body += f"{len(chunk):x};chunk-signature={signature}\r\n".encode() + chunk + b"\r\n"
        self.assertEqual(len(body), encoded)
        return raw_request(self.cloud.s3_port, "PUT", path, headers=headers, body=body)

    def test_streaming_upload(self) -> None:
        chunks = [b"a" * 65536, b"b" * 65536, b"tail"]
        answer = self.streaming_put("streamed", chunks)
        self.assertEqual(answer.status, 200, answer.body)
        got = self.s3.get_object(Bucket=self.b, Key="streamed")
        self.assertEqual(got["Body"].read(), b"".join(chunks))
        self.assertNotEqual(got.get("ContentEncoding"), "aws-chunked")

    def test_streaming_bad_chunk_signature(self) -> None:
        for corrupt in (1, 3):  # a middle chunk, the final empty chunk
            answer = self.streaming_put("streamed", [b"a" * 65536, b"b" * 65536, b"c"],
                                        corrupt=corrupt)
            self.assertEqual((answer.status, answer.code), (403, "SignatureDoesNotMatch"),
                             corrupt)
            self.assertCode("404", self.s3.head_object, Bucket=self.b, Key="streamed")


class RefusedEarlyTests(S3Case):
    """Requests refused from their headers alone, before any body is sent."""

    def send_headers_only(self, method: str, path: str, headers: dict[str, str]) -> Response:
        host = f"127.0.0.1:{self.cloud.s3_port}"
        headers = dict(headers)
        headers.update(sign_v4_headers(method, host, path, [], headers, self.alice.access,
                                       self.alice.secret, REGION, "s3",
                                       payload_sha256=UNSIGNED_PAYLOAD))
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        with socket.create_connection(("127.0.0.1", self.cloud.s3_port), timeout=30) as sock:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            data = b""
            while b"\r\n\r\n" not in data or not self._complete(data):
                piece = sock.recv(65536)
                if not piece:
                    break
                data += piece
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        return Response(status, {}, body)

    @staticmethod
    def _complete(data: bytes) -> bool:
        head, _, body = data.partition(b"\r\n\r\n")
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                return len(body) >= int(value)
        return False

    def test_entity_too_large(self) -> None:
        b = self.bucket()
        answer = self.send_headers_only("PUT", url_path(b, "huge"),
                                        {"Content-Length": str(6 * 1024 ** 3)})
        self.assertEqual((answer.status, answer.code), (400, "EntityTooLarge"))
        self.assertCode("404", self.s3.head_object, Bucket=b, Key="huge")

    def test_no_such_bucket_before_body(self) -> None:
        answer = self.send_headers_only("PUT", "/no-such-bucket-" + str(time.time_ns()) + "/k",
                                        {"Content-Length": str(100 * 1024 ** 2)})
        self.assertEqual((answer.status, answer.code), (404, "NoSuchBucket"))

    def test_method_not_allowed(self) -> None:
        b = self.bucket()
        answer = self.alice.request("PATCH", url_path(b, "k"), body=b"x")
        self.assertEqual((answer.status, answer.code), (405, "MethodNotAllowed"))
