"""
Helpers for the object store's functional tests: S3 users of the running
all-in-one, and the clients they drive it with (boto3, boto 2, awscli,
s3cmd, raw signed HTTP).

Making a user and a project takes two nova-manage runs (a second or so), so
the S3 test modules share two users (L{s3_users}), each in a project of its
own, for the whole run; every test makes its own uniquely named buckets and
removes them (L{S3User.purge}) in a cleanup. They disappear with the shared
all-in-one when the run ends.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import socket
import subprocess
import time
import uuid
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import quote

import attr
import boto3
from boto.s3.connection import OrdinaryCallingFormat, S3Connection
from botocore.config import Config
from botocore.exceptions import ClientError
from twisted.trial import unittest

from nova.auth.signer import EMPTY_SHA256, aws_quote, sign_v4_headers
from tests.support.allinone import VENV_BIN, AllInOne, shared
from tests.support.clients import Tenant

REGION = "nova"
#: the host suffix for virtual-host addressing in L{vhost_cloud}
VHOST_SUFFIX = "s3.nova.test"
NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
MIB = 1024 * 1024


def bucket_name(prefix: str = "b") -> str:
    """@return: a bucket name no other run uses."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def multipart_etag(parts: Iterable[bytes]) -> str:
    """@return: S3's ETag of a multipart object: MD5 of the parts' MD5s, then -N."""
    digests = [hashlib.md5(p).digest() for p in parts]
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def error_code(call: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    """@return: the S3 error code C{call} fails with (it must fail with a ClientError)."""
    try:
        call(*args, **kwargs)
    except ClientError as e:
        return str(e.response["Error"]["Code"])
    raise AssertionError(f"{getattr(call, '__name__', call)} did not fail")


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "",
             interval: float = 0.05) -> Any:
    """
    Poll C{predicate} until it returns something true; fail with C{what}
    after C{timeout} seconds.

    @return: that true value.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout} s: {what or predicate}")
        time.sleep(interval)


def boto3_s3(endpoint: str, access: str, secret: str, addressing: str = "path",
             signature: str = "s3v4") -> Any:
    """@return: a boto3 S3 client (no retries: errors show at once)."""
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access,
                        aws_secret_access_key=secret, region_name=REGION,
                        config=Config(retries={"max_attempts": 1}, signature_version=signature,
                                      s3={"addressing_style": addressing}))


def boto2_s3(port: int, access: str, secret: str, host: str = "127.0.0.1",
             calling_format: Any = None) -> S3Connection:
    """@return: a boto 2.49 S3 connection (SigV2), path style unless told otherwise."""
    return S3Connection(access, secret, is_secure=False, host=host, port=port,
                        calling_format=calling_format or OrdinaryCallingFormat())


@attr.s(auto_attribs=True, frozen=True)
class Response:
    """A raw HTTP answer: status, lower-case headers, body."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def code(self) -> str | None:
        """@return: the S3 error code in the body, if it is an error document."""
        try:
            return ElementTree.fromstring(self.body).findtext("Code")
        except ElementTree.ParseError:
            return None


def raw_request(port: int, method: str, path: str, *, query: str = "",
                headers: dict[str, str] | None = None, body: bytes = b"",
                host: str | None = None) -> Response:
    """Send one request as given (no signing) to 127.0.0.1:C{port}."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.putrequest(method, path + (f"?{query}" if query else ""), skip_host=True,
                        skip_accept_encoding=True)
        conn.putheader("Host", host or f"127.0.0.1:{port}")
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        given = {name.lower() for name in (headers or {})}
        if "content-length" not in given and (body or method in ("PUT", "POST")):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        answer = conn.getresponse()
        return Response(answer.status, {k.lower(): v for k, v in answer.getheaders()},
                        answer.read())
    finally:
        conn.close()


def signed_request(port: int, access: str, secret: str, method: str, path: str, *,
                   query: list[tuple[str, str]] | None = None,
                   headers: dict[str, str] | None = None, body: bytes = b"",
                   host: str | None = None, payload_sha256: str | None = None,
                   now: float | None = None) -> Response:
    """
    Send one SigV4-signed request. C{path} is sent as given (encode it);
    C{query} pairs are decoded values. C{payload_sha256} defaults to the
    body's real hash.
    """
    host = host or f"127.0.0.1:{port}"
    query = query or []
    headers = dict(headers or {})
    payload = payload_sha256 or (hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256)
    headers.update(sign_v4_headers(method, host, path, query, headers, access, secret, REGION,
                                   "s3", payload_sha256=payload, now=now))
    text_query = "&".join(f"{aws_quote(n)}={aws_quote(v)}" for n, v in query)
    return raw_request(port, method, path, query=text_query, headers=headers, body=body,
                       host=host)


class S3User(Tenant):
    """A user in a project of their own, with S3 clients of every kind."""

    def __init__(self, cloud: AllInOne, role: str | None = None) -> None:
        super().__init__(cloud, role)
        self.endpoint = f"http://127.0.0.1:{cloud.s3_port}"
        self.s3 = self.client()

    def client(self, addressing: str = "path", signature: str = "s3v4",
               endpoint: str | None = None) -> Any:
        """@return: a boto3 S3 client of this user."""
        return boto3_s3(endpoint or self.endpoint, self.access, self.secret, addressing,
                        signature)

    def boto2_s3(self, **kwargs: Any) -> S3Connection:
        return boto2_s3(self.cloud.s3_port, self.access, self.secret, **kwargs)

    def request(self, method: str, path: str, **kwargs: Any) -> Response:
        """A raw SigV4-signed request of this user (see L{signed_request})."""
        return signed_request(self.cloud.s3_port, self.access, self.secret, method, path,
                              **kwargs)

    def bucket(self, test: Any, prefix: str = "b", acl: str | None = None) -> str:
        """Make a bucket for C{test}, removed with its contents when the test ends."""
        name = bucket_name(prefix)
        self.s3.create_bucket(Bucket=name, **({"ACL": acl} if acl else {}))
        test.addCleanup(self.purge, name)
        return name

    def purge(self, bucket: str) -> None:
        """Remove a bucket, its objects and its uploads; a missing bucket is fine."""
        try:
            for page in self.s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
                for upload in page.get("Uploads", []):
                    self.s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"],
                                                   UploadId=upload["UploadId"])
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for item in page.get("Contents", []):
                    self.s3.delete_object(Bucket=bucket, Key=item["Key"])
            self.s3.delete_bucket(Bucket=bucket)
        except ClientError as e:
            if e.response["Error"]["Code"] != "NoSuchBucket":
                raise

    def cli_env(self, home: str) -> dict[str, str]:
        """@return: the environment of awscli/s3cmd after sourcing this user's novarc."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(self.cloud.admin_env())
        env.update({"AWS_ACCESS_KEY_ID": self.access, "AWS_SECRET_ACCESS_KEY": self.secret,
                    "EC2_ACCESS_KEY": self.access, "EC2_SECRET_KEY": self.secret,
                    "HOME": home})
        os.makedirs(home, exist_ok=True)
        return env

    def aws(self, home: str, *args: str, check: bool = True,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run C{aws <args>} as this user (HOME=C{home}: no machine config)."""
        result = subprocess.run([str(VENV_BIN / "aws"), *args], env=self.cli_env(home),
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stderr}")
        return result

    def s3cmd_config(self, home: str, signature_v2: bool) -> str:
        """Write an s3cmd config for this user; @return: its path."""
        os.makedirs(home, exist_ok=True)
        path = os.path.join(home, f"s3cfg-{'v2' if signature_v2 else 'v4'}")
        host = f"127.0.0.1:{self.cloud.s3_port}"
        Path(path).write_text(
            "[default]\n"
            f"access_key = {self.access}\n"
            f"secret_key = {self.secret}\n"
            f"host_base = {host}\n"
            f"host_bucket = {host}\n"
            f"bucket_location = {REGION}\n"
            "use_https = False\n"
            f"signature_v2 = {signature_v2}\n"
            "check_ssl_certificate = False\n"
            "guess_mime_type = False\n"
            "progress_meter = False\n")
        return path

    def s3cmd(self, home: str, *args: str, signature_v2: bool = True,
              check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run Debian's s3cmd as this user with a config of its own."""
        config = self.s3cmd_config(home, signature_v2)
        env = self.cli_env(home)
        result = subprocess.run(["s3cmd", "-c", config, *args], env=env, capture_output=True,
                                text=True, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"s3cmd {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result


_users: dict[int, tuple[S3User, S3User]] = {}


def s3_users(cloud: AllInOne | None = None) -> tuple[S3User, S3User]:
    """@return: two users in two projects of C{cloud} (the shared one by default)."""
    cloud = cloud or shared()
    if id(cloud) not in _users:
        _users[id(cloud)] = (S3User(cloud), S3User(cloud))
    return _users[id(cloud)]


_vhost: AllInOne | None = None


def vhost_cloud() -> AllInOne:
    """
    @return: a second all-in-one whose object store also answers
        virtual-host-style requests for C{<bucket>.}L{VHOST_SUFFIX}; started
        on first use, stopped when the run ends.
    """
    global _vhost
    if _vhost is None:
        import atexit
        cloud = AllInOne(host="functional-vhost")
        # the [objectstore] section is AllInOne's: set the suffix in it
        lines = [line for line in cloud.config_path.read_text().splitlines()
                 if not line.startswith("virtual_host_suffix")]
        at = lines.index("[objectstore]") + 1
        lines.insert(at, f"virtual_host_suffix = {VHOST_SUFFIX}")
        cloud.config_path.write_text("\n".join(lines) + "\n")
        cloud.start()
        atexit.register(lambda: (cloud.stop(), cloud.remove()))
        _vhost = cloud
    return _vhost


def resolve_vhost(test: Any) -> None:
    """
    For the rest of C{test}, make this process resolve L{VHOST_SUFFIX} and
    every name under it to 127.0.0.1, as a DNS wildcard record would.
    """
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if isinstance(name, str) and (name == VHOST_SUFFIX or name.endswith("." + VHOST_SUFFIX)):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    test.patch(socket, "getaddrinfo", getaddrinfo)


def url_path(bucket: str, key: str = "") -> str:
    """@return: the percent-encoded path-style path of a bucket or object."""
    return "/" + bucket + ("/" + quote(key, safe="/~") if key else "")


def objectstore_tmp(cloud: AllInOne) -> Path:
    """@return: where the store keeps bodies being received."""
    return cloud.state_dir / "objectstore" / "tmp"


def leftovers(cloud: AllInOne) -> list[str]:
    """
    @return: the files in the store's temporary directory that hold data. (The
        store keeps a few empty spare files there, made ahead of need: those
        hold nothing of anybody's body.)
    """
    folder = objectstore_tmp(cloud)
    found = []
    for name in sorted(os.listdir(folder)) if folder.exists() else []:
        try:
            if (folder / name).stat().st_size > 0:
                found.append(name)
        except FileNotFoundError:
            pass  # committed or removed meanwhile
    return found


def check_s3_answers(cloud: AllInOne) -> None:
    """Fail with a clear message when the cloud's object store does not answer."""
    try:
        with socket.create_connection(("127.0.0.1", cloud.s3_port), timeout=5):
            pass
    except OSError as e:
        raise AssertionError(f"the all-in-one's object store does not answer on "
                             f"127.0.0.1:{cloud.s3_port}: {e}\n{cloud.log_tail()}")


def write_file(path: str | os.PathLike[str], size: int, seed: bytes = b"") -> str:
    """
    Write C{size} bytes (distinct in every MiB, fast to make) to C{path}.

    @return: the hex MD5 of the content.
    """
    block = os.urandom(MIB)
    md5 = hashlib.md5()
    with open(path, "wb") as f:
        written = 0
        counter = 0
        while written < size:
            piece = (seed + counter.to_bytes(8, "big") + block)[:min(MIB, size - written)]
            f.write(piece)
            md5.update(piece)
            written += len(piece)
            counter += 1
    return md5.hexdigest()


def file_md5(path: str | os.PathLike[str]) -> str:
    md5 = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(MIB):
            md5.update(chunk)
    return md5.hexdigest()


class S3Case(unittest.TestCase):
    """
    A test against the shared all-in-one's object store, as two users
    (C{alice} and C{bob}, in two projects); C{s3} is alice's boto3 client.
    """

    def setUp(self) -> None:
        self.cloud = shared()
        check_s3_answers(self.cloud)
        self.alice, self.bob = s3_users(self.cloud)
        self.s3 = self.alice.s3

    def bucket(self, prefix: str = "b", acl: str | None = None) -> str:
        """@return: a new bucket of alice's, removed after the test."""
        return self.alice.bucket(self, prefix, acl)

    def assertCode(self, code: str, call: Callable[..., Any], *args: Any,  # noqa: N802
                   **kwargs: Any) -> None:
        self.assertEqual(error_code(call, *args, **kwargs), code)
