"""
Functional: the object store never loses or half-writes an object.

A client that disconnects in the middle of a body leaves nothing behind; and
an all-in-one killed with SIGKILL during a stream of PUTs comes back with
every key either absent or complete, with the right ETag and body (and every
PUT it acknowledged before dying present).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import random
import signal
import socket
import threading

from twisted.trial import unittest

from nova.auth.signer import UNSIGNED_PAYLOAD, sign_v4_headers
from tests.support.allinone import AllInOne
from tests.support.s3 import (MIB, REGION, S3Case, S3User, check_s3_answers, leftovers,
                              objectstore_tmp, signed_request, url_path, wait_for)


def start_put(port: int, user: S3User, path: str, length: int,
              query: str = "") -> socket.socket:
    """Open a connection and send the headers of a PUT of C{length} bytes."""
    host = f"127.0.0.1:{port}"
    pairs = [tuple(p.split("=", 1)) for p in query.split("&")] if query else []
    headers = {"Content-Length": str(length)}
    headers.update(sign_v4_headers("PUT", host, path, pairs, headers, user.access, user.secret,
                                   REGION, "s3", payload_sha256=UNSIGNED_PAYLOAD))
    target = path + (f"?{query}" if query else "")
    head = [f"PUT {target} HTTP/1.1", f"Host: {host}"] + [f"{k}: {v}" for k, v in headers.items()]
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    return sock


class DisconnectTests(S3Case):
    """A body cut short: no object, no part, no temporary file left."""

    def abandon(self, path: str, query: str = "") -> None:
        sock = start_put(self.cloud.s3_port, self.alice, path, 8 * MIB, query)
        try:
            sock.sendall(os.urandom(MIB))
            # the body is being streamed to a temporary file...
            wait_for(lambda: leftovers(self.cloud) != [], what="a temporary file appears in "
                     f"{objectstore_tmp(self.cloud)}")
        finally:
            sock.close()
        # ...which goes away once the store sees the client is gone
        wait_for(lambda: leftovers(self.cloud) == [],
                 what=f"{objectstore_tmp(self.cloud)} is empty again")

    def test_put_object(self) -> None:
        b = self.bucket()
        self.abandon(url_path(b, "cut"))
        self.assertCode("404", self.s3.head_object, Bucket=b, Key="cut")
        self.assertNotIn("Contents", self.s3.list_objects_v2(Bucket=b))
        # the store still works, for that very key
        self.s3.put_object(Bucket=b, Key="cut", Body=b"whole")
        self.assertEqual(self.s3.get_object(Bucket=b, Key="cut")["Body"].read(), b"whole")

    def test_upload_part(self) -> None:
        b = self.bucket()
        upload = self.s3.create_multipart_upload(Bucket=b, Key="mp")["UploadId"]
        self.abandon(url_path(b, "mp"), f"partNumber=1&uploadId={upload}")
        self.assertNotIn("Parts", self.s3.list_parts(Bucket=b, Key="mp", UploadId=upload))


def body_of(index: int) -> bytes:
    """The known content of key C{index}: 64 KiB to 3 MiB, distinct."""
    rng = random.Random(index)
    return rng.randbytes(rng.randint(64 * 1024, 3 * MIB))


class _Writer(threading.Thread):
    """PUTs keys C{first}, C{first + step}, ... until the server goes away."""

    def __init__(self, port: int, user: S3User, bucket: str, first: int, step: int) -> None:
        super().__init__(daemon=True)
        self.port, self.user, self.bucket = port, user, bucket
        self.first, self.step = first, step
        self.attempted: list[int] = []
        self.acknowledged: list[int] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        index = self.first
        while True:
            self.attempted.append(index)
            try:
                answer = signed_request(self.port, self.user.access, self.user.secret, "PUT",
                                        url_path(self.bucket, f"key-{index:05d}"),
                                        body=body_of(index))
            except (OSError, http.client.HTTPException):
                return  # the server died under us: expected
            if answer.status != 200:
                self.error = AssertionError(f"PUT key-{index:05d}: {answer.status} "
                                            f"{answer.body[:300]!r}")
                return
            self.acknowledged.append(index)
            index += self.step


class CrashTests(unittest.TestCase):
    """kill -9 during a stream of PUTs, restart on the same state directory."""

    WRITERS = 3

    def setUp(self) -> None:
        self.cloud = AllInOne(host="functional-crash")
        self.addCleanup(self.cloud.remove)
        self.addCleanup(self.cloud.stop)
        self.cloud.start()
        check_s3_answers(self.cloud)
        self.user = S3User(self.cloud)
        self.bucket = f"crash-{os.urandom(6).hex()}"
        self.user.s3.create_bucket(Bucket=self.bucket)

    def kill_mid_stream(self) -> list[_Writer]:
        port = self.cloud.s3_port
        writers = [_Writer(port, self.user, self.bucket, i, self.WRITERS)
                   for i in range(self.WRITERS)]
        # one more client is surely in the middle of a body when the kill comes
        stalled = start_put(port, self.user, url_path(self.bucket, "stalled"), 4 * MIB)
        stalled.sendall(b"x" * MIB)
        for w in writers:
            w.start()
        wait_for(lambda: sum(len(w.acknowledged) for w in writers) >= 40, timeout=120,
                 what="40 PUTs acknowledged")
        assert self.cloud.process is not None
        os.kill(self.cloud.process.pid, signal.SIGKILL)
        self.cloud.process.wait()
        for w in writers:
            w.join(60)
            self.assertFalse(w.is_alive(), "a writer hangs after the kill")
            if w.error is not None:
                raise w.error
        stalled.close()
        return writers

    def restart(self) -> None:
        # the killed process's redis-server gets SIGTERM (pdeathsig), saves
        # its append-only file and exits: wait until its port is free
        def redis_gone() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.cloud.redis_port)) != 0

        wait_for(redis_gone, timeout=30, what="the old redis-server exits")
        self.cloud.novarc_path.unlink(missing_ok=True)
        self.cloud.start()
        check_s3_answers(self.cloud)

    def test_kill_during_puts(self) -> None:
        writers = self.kill_mid_stream()
        attempted = sorted(i for w in writers for i in w.attempted)
        acknowledged = {i for w in writers for i in w.acknowledged}
        self.restart()
        s3 = self.user.s3
        present = []
        for index in attempted:
            key = f"key-{index:05d}"
            body = body_of(index)
            answer = signed_request(self.cloud.s3_port, self.user.access, self.user.secret,
                                    "GET", url_path(self.bucket, key))
            if answer.status == 404:
                continue  # absent: allowed for a PUT the server never acknowledged
            self.assertEqual(answer.status, 200, f"{key}: {answer.body[:300]!r}")
            self.assertEqual(answer.headers["etag"], f'"{hashlib.md5(body).hexdigest()}"', key)
            self.assertEqual(len(answer.body), len(body), key)
            self.assertTrue(answer.body == body, f"{key}: the body is not the one PUT")
            present.append(index)
        self.assertEqual(sorted(acknowledged - set(present)), [],
                         "acknowledged PUTs lost by the crash")
        listed = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket) for o in page.get("Contents", [])]
        self.assertEqual(listed, [f"key-{i:05d}" for i in present],
                         "the listing disagrees with the objects")
        self.assertNotIn("stalled", listed)
        # leftovers of the interrupted writes are removed by the new start
        wait_for(lambda: leftovers(self.cloud) == [], what="no temporary files after restart")
        # and the store works as before
        s3.put_object(Bucket=self.bucket, Key="after", Body=b"after the crash")
        self.assertEqual(s3.get_object(Bucket=self.bucket, Key="after")["Body"].read(),
                         b"after the crash")
        self.assertGreaterEqual(len(present), 40)
