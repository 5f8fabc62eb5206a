"""
What real clients sign verifies here: boto 2.49 and botocore/boto3 1.44 sign
requests locally (nothing is sent: the send step is intercepted), and the
captured requests go through identify + verify.
"""

from __future__ import annotations

import hashlib
import io
from urllib.parse import urlsplit

import boto
import boto.auth
import boto.ec2.connection
import boto.s3.connection
import boto3
from boto.ec2.regioninfo import RegionInfo
from botocore import auth as botocore_auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials as BotocoreCredentials
from twisted.trial import unittest

from nova.auth import signer
from nova.auth.signing.encoding import (parse_amz_date, parse_http_date,
                                        parse_iso8601)

ACCESS = "nova-access:nova-project"
SECRET = "nova/secret+key=="


class _Captured(Exception):
    """Raised instead of sending a request."""


def _host_header(url: str) -> str:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname or ""
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


def _body_bytes(body: object) -> bytes:
    if body is None:
        return b""
    if isinstance(body, io.IOBase):
        return body.read()  # type: ignore[no-any-return]
    if isinstance(body, str):
        return body.encode("utf-8")
    return bytes(body)  # type: ignore[call-overload]


def from_botocore(prepared: object, virtual_bucket: str | None = None
                  ) -> signer.SignedRequest:
    """Turn a botocore AWSPreparedRequest into the request view."""
    url = prepared.url  # type: ignore[attr-defined]
    parts = urlsplit(url)
    uri = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = [("Host", _host_header(url))] + list(
        prepared.headers.items())  # type: ignore[attr-defined]
    return signer.SignedRequest.from_parts(
        prepared.method, uri, headers,  # type: ignore[attr-defined]
        _body_bytes(prepared.body), virtual_bucket=virtual_bucket)  # type: ignore[attr-defined]


def from_boto2(req: object, virtual_bucket: str | None = None) -> signer.SignedRequest:
    """Turn a boto 2 HTTPRequest, as it would go on the wire, into the view."""
    host, port = req.host, req.port  # type: ignore[attr-defined]
    if ":" not in host and port not in (80, 443):
        host = f"{host}:{port}"
    headers = [("Host", host)] + [(name, str(value)) for name, value
                                  in req.headers.items()]  # type: ignore[attr-defined]
    return signer.SignedRequest.from_parts(
        req.method, req.path, headers,  # type: ignore[attr-defined]
        _body_bytes(req.body), virtual_bucket=virtual_bucket)  # type: ignore[attr-defined]


def capture_boto2(connection: object) -> list[object]:
    """Make a boto 2 connection sign its requests and keep them, unsent."""
    captured: list[object] = []

    def _mexe(request: object, *args: object, **kwargs: object) -> None:
        request.authorize(connection=connection)  # type: ignore[attr-defined]
        captured.append(request)
        raise _Captured()

    connection._mexe = _mexe  # type: ignore[attr-defined]
    return captured


def signed_time(req: signer.SignedRequest, creds: signer.Credentials) -> float:
    """The time the client signed at, so that verification never races a clock."""
    if creds.scheme in (signer.Scheme.SIGV4_HEADER, signer.Scheme.SIGV4_QUERY):
        return parse_amz_date(creds.timestamp or "") or 0.0
    if creds.scheme is signer.Scheme.EC2_V2:
        return parse_iso8601(creds.timestamp or "") or 0.0
    if creds.scheme is signer.Scheme.S3_V2_QUERY:
        return float(creds.expires or 0) - 60
    return parse_http_date(creds.timestamp or "") or 0.0


class Boto2Tests(unittest.TestCase):
    """boto 2.49, as euca2ools-era tools and the 2010 smoketests used it."""

    def ec2(self) -> boto.ec2.connection.EC2Connection:
        return boto.ec2.connection.EC2Connection(
            aws_access_key_id=ACCESS, aws_secret_access_key=SECRET,
            is_secure=False, port=8773, path="/services/Cloud",
            region=RegionInfo(name="nova", endpoint="127.0.0.1"))

    def check_ec2(self, captured: list[object]) -> signer.Credentials:
        req = from_boto2(captured[-1])
        creds = signer.identify_ec2(req)
        signer.verify(req, creds, SECRET, now=signed_time(req, creds))
        self.assertEqual(creds.access_key, ACCESS)
        self.assertRaises(signer.SignatureMismatch, signer.verify, req, creds,
                          SECRET + "x", signed_time(req, creds))
        return creds

    def test_ec2_connection_default_signer(self) -> None:
        """EC2Connection's own signer (SigV4, service "127", region "0")."""
        connection = self.ec2()
        captured = capture_boto2(connection)
        self.assertRaises(_Captured, connection.get_all_instances,
                          instance_ids=["i-00000001"])
        creds = self.check_ec2(captured)
        self.assertEqual(creds.scheme, signer.Scheme.SIGV4_HEADER)

    def test_ec2_sigv2_post(self) -> None:
        """boto's QuerySignatureV2AuthHandler (bare host signed, port sent)."""
        connection = self.ec2()
        connection._auth_handler = boto.auth.QuerySignatureV2AuthHandler(
            connection.host, boto.config, connection.provider)
        captured = capture_boto2(connection)
        self.assertRaises(_Captured, connection.get_all_zones)
        self.assertEqual(self.check_ec2(captured).scheme, signer.Scheme.EC2_V2)

    def test_ec2_sigv2_get(self) -> None:
        """The same handler on a GET with parameters in the query string."""
        connection = self.ec2()
        connection._auth_handler = boto.auth.QuerySignatureV2AuthHandler(
            connection.host, boto.config, connection.provider)
        captured = capture_boto2(connection)
        self.assertRaises(_Captured, connection.make_request, "DescribeImages",
                          {"Owner.1": "self", "Filter.1.Name": "name",
                           "Filter.1.Value.1": "tiny image*"}, "/", "GET")
        self.check_ec2(captured)

    def s3(self, host: str = "127.0.0.1", ordinary: bool = True
           ) -> boto.s3.connection.S3Connection:
        kwargs = {"calling_format": boto.s3.connection.OrdinaryCallingFormat()
                  } if ordinary else {}
        return boto.s3.connection.S3Connection(ACCESS, SECRET, host=host,
                                               port=3333, is_secure=False,
                                               **kwargs)

    def check_s3(self, req: signer.SignedRequest) -> signer.Credentials:
        creds = signer.identify_s3(req)
        signer.verify(req, creds, SECRET, now=signed_time(req, creds))
        self.assertEqual(creds.access_key, ACCESS)
        return creds

    def test_s3_put_path_style(self) -> None:
        """HmacAuthV1Handler: PUT ?acl with metadata, MD5 and an odd key."""
        connection = self.s3()
        captured = capture_boto2(connection)
        self.assertRaises(_Captured, connection.make_request, "PUT", "bkt",
                          "a b/c$.txt", headers={
                              "Content-Type": "text/plain", "x-amz-meta-foo": "bar",
                              "Content-MD5": "XrY7u+Ae7tCTyyK7j1rNww=="},
                          data=b"hello world", query_args="acl")
        creds = self.check_s3(from_boto2(captured[-1]))
        self.assertEqual(creds.scheme, signer.Scheme.S3_V2_HEADER)

    def test_s3_virtual_host(self) -> None:
        """Subdomain calling format: the bucket comes from the Host header."""
        connection = self.s3(host="s3.nova.example", ordinary=False)
        captured = capture_boto2(connection)
        self.assertRaises(_Captured, connection.make_request, "GET", "bkt", "k",
                          query_args="uploadId=abc&partNumber=2")
        raw = captured[-1]
        bucket = signer.bucket_from_host(raw.host, ["s3.nova.example"])  # type: ignore[attr-defined]
        self.assertEqual(bucket, "bkt")
        self.check_s3(from_boto2(raw, virtual_bucket=bucket))

    def test_s3_sigv4_handler(self) -> None:
        """
        boto's S3HmacAuthV4Handler (opt-in).  On the default port only: on
        any other port boto 2.49 signs "host:port:port" (it appends the port
        to a host that already carries it), which no server can match.
        """
        connection = boto.s3.connection.S3Connection(
            ACCESS, SECRET, host="127.0.0.1", port=80, is_secure=False,
            calling_format=boto.s3.connection.OrdinaryCallingFormat())
        connection._auth_handler = boto.auth.S3HmacAuthV4Handler(
            connection.host, boto.config, connection.provider,
            service_name="s3", region_name="nova")
        captured = capture_boto2(connection)
        self.assertRaises(_Captured, connection.make_request, "PUT", "bkt",
                          "a b/c$.txt", headers={"x-amz-meta-foo": "bar"},
                          data=b"hello world", query_args="uploadId=x&partNumber=3")
        creds = self.check_s3(from_boto2(captured[-1]))
        self.assertEqual((creds.scheme, creds.region),
                         (signer.Scheme.SIGV4_HEADER, "nova"))

    def test_s3_generate_url(self) -> None:
        """A SigV2 presigned URL from generate_url."""
        url = self.s3().generate_url(300, "GET", "bkt", "a b/c.txt")
        parts = urlsplit(url)
        req = signer.SignedRequest.from_parts(
            "GET", f"{parts.path}?{parts.query}", [("Host", parts.netloc)])
        self.assertEqual(self.check_s3(req).scheme, signer.Scheme.S3_V2_QUERY)


class BotocoreAuthTests(unittest.TestCase):
    """botocore's signers applied to hand-built AWSRequests."""

    CREDS = BotocoreCredentials(ACCESS, SECRET)

    def check(self, request: AWSRequest, identify: object = signer.identify_ec2,
              virtual_bucket: str | None = None) -> signer.Credentials:
        req = from_botocore(request.prepare(), virtual_bucket)
        creds = identify(req)  # type: ignore[operator]
        signer.verify(req, creds, SECRET, now=signed_time(req, creds))
        self.assertEqual(creds.access_key, ACCESS)
        return creds

    def test_sigv4_ec2_post(self) -> None:
        request = AWSRequest(
            method="POST", url="http://127.0.0.1:8773/services/Cloud/",
            data={"Action": "RunInstances", "ImageId": "ami-00000001",
                  "UserData": "IyEvYmluL3NoCmVjaG8gaGk=", "Version": "2010-08-31"},
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        botocore_auth.SigV4Auth(self.CREDS, "ec2", "nova").add_auth(request)
        creds = self.check(request)
        self.assertEqual((creds.scheme, creds.region),
                         (signer.Scheme.SIGV4_HEADER, "nova"))

    def test_sigv4_query_ec2(self) -> None:
        request = AWSRequest(method="GET", url="http://127.0.0.1:8773/services/Cloud/",
                             params={"Action": "DescribeRegions",
                                     "Version": "2010-08-31"})
        botocore_auth.SigV4QueryAuth(self.CREDS, "ec2", "nova",
                                     expires=300).add_auth(request)
        self.assertEqual(self.check(request).scheme, signer.Scheme.SIGV4_QUERY)

    def test_s3_sigv4_put(self) -> None:
        request = AWSRequest(method="PUT",
                             url="http://127.0.0.1:3333/bkt/dir/a%20b%2Bc.txt",
                             data=b"some bytes", headers={"x-amz-meta-k": "v"})
        botocore_auth.S3SigV4Auth(self.CREDS, "s3", "nova").add_auth(request)
        creds = self.check(request, signer.identify_s3)
        self.assertEqual(creds.content_sha256,
                         hashlib.sha256(b"some bytes").hexdigest())

    def test_s3_sigv4_query(self) -> None:
        request = AWSRequest(method="GET", url="http://127.0.0.1:3333/bkt/a%20b.txt")
        botocore_auth.S3SigV4QueryAuth(self.CREDS, "s3", "nova",
                                       expires=300).add_auth(request)
        creds = self.check(request, signer.identify_s3)
        self.assertEqual(creds.scheme, signer.Scheme.SIGV4_QUERY)

    def test_hmac_v1(self) -> None:
        request = AWSRequest(method="GET",
                             url="http://127.0.0.1:3333/bkt/k?versionId=3&x=y",
                             headers={"x-amz-meta-a": "1"})
        botocore_auth.HmacV1Auth(self.CREDS).add_auth(request)
        self.assertEqual(self.check(request, signer.identify_s3).scheme,
                         signer.Scheme.S3_V2_HEADER)

    def test_hmac_v1_query(self) -> None:
        request = AWSRequest(method="GET", url="http://127.0.0.1:3333/bkt/k")
        botocore_auth.HmacV1QueryAuth(self.CREDS, expires=300).add_auth(request)
        self.assertEqual(self.check(request, signer.identify_s3).scheme,
                         signer.Scheme.S3_V2_QUERY)


class Boto3ClientTests(unittest.TestCase):
    """boto3 clients, exactly as a user builds them; sending is intercepted."""

    def client(self, service: str, url: str, **config: object) -> object:
        session = boto3.session.Session(aws_access_key_id=ACCESS,
                                        aws_secret_access_key=SECRET,
                                        region_name="nova")
        client = session.client(service, endpoint_url=url, config=Config(
            retries={"max_attempts": 1}, **config))  # type: ignore[arg-type]
        captured: list[object] = []

        def before_send(request: object, **kwargs: object) -> None:
            captured.append(request)
            raise _Captured()

        client.meta.events.register("before-send", before_send)
        client.captured = captured  # type: ignore[attr-defined]
        return client

    def verify_captured(self, client: object, identify: object
                        ) -> signer.Credentials:
        req = from_botocore(client.captured[-1])  # type: ignore[attr-defined]
        creds = identify(req)  # type: ignore[operator]
        signer.verify(req, creds, SECRET, now=signed_time(req, creds))
        return creds

    def test_ec2_run_instances(self) -> None:
        client = self.client("ec2", "http://127.0.0.1:8773/services/Cloud")
        self.assertRaises(_Captured, client.run_instances,  # type: ignore[attr-defined]
                          ImageId="ami-00000001", MinCount=1, MaxCount=1,
                          KeyName="my key", UserData="echo hi")
        self.verify_captured(client, signer.identify_ec2)

    def test_s3_put_object(self) -> None:
        client = self.client("s3", "http://127.0.0.1:3333",
                             s3={"addressing_style": "path"})
        self.assertRaises(_Captured, client.put_object,  # type: ignore[attr-defined]
                          Bucket="bkt", Key="a b/c$.txt", Body=b"hello world",
                          Metadata={"foo": "bar"})
        creds = self.verify_captured(client, signer.identify_s3)
        self.assertEqual(creds.scheme, signer.Scheme.SIGV4_HEADER)

    def test_s3_presigned_url(self) -> None:
        client = self.client("s3", "http://127.0.0.1:3333",
                             s3={"addressing_style": "path"},
                             signature_version="s3v4")
        url = client.generate_presigned_url(  # type: ignore[attr-defined]
            "get_object", Params={"Bucket": "bkt", "Key": "dir/a b.txt"},
            ExpiresIn=600)
        parts = urlsplit(url)
        req = signer.SignedRequest.from_parts(
            "GET", f"{parts.path}?{parts.query}", [("Host", parts.netloc)])
        creds = signer.identify_s3(req)
        signer.verify(req, creds, SECRET, now=signed_time(req, creds))

    def test_s3_sigv2_client(self) -> None:
        client = self.client("s3", "http://127.0.0.1:3333",
                             s3={"addressing_style": "path"}, signature_version="s3")
        self.assertRaises(_Captured, client.get_object,  # type: ignore[attr-defined]
                          Bucket="bkt", Key="k", ResponseContentType="text/plain")
        creds = self.verify_captured(client, signer.identify_s3)
        self.assertEqual(creds.scheme, signer.Scheme.S3_V2_HEADER)
