#!/usr/bin/env python3
"""
Benchmark: the object store of a running all-in-one, on loopback.

Starts its own all-in-one (tests/support/allinone.py) on free loopback ports and,
in one run, measures and prints:

  - the machine's ceilings: a plain loopback TCP copy of SIZE bytes between two
    processes, and the disk's sequential write of SIZE bytes with fsync;
  - PUT and GET of one SIZE object (1 GiB by default), streamed from and to a
    file with raw sockets and large buffers (PUT: sendfile, UNSIGNED-PAYLOAD;
    GET: recv_into a 4 MiB buffer, written to a file), checked by MD5;
  - 4 KB PUT and then GET operations per second from C concurrent clients
    (separate processes, keep-alive connections, every request SigV4-signed),
    and the CPU time per operation of the server process (all its threads)
    and of the clients;
  - ListObjectsV2 over K keys (100,000): time per 1,000-key page and for the
    whole listing, after creating the keys with many concurrent small PUTs
    (the time that took is printed too).

Targets (issue 3): GET >= 1 GB/s, PUT >= half the disk's write-with-fsync,
4 KB PUT >= 1,500/s. Every file it makes is removed at the end.

    .venv/bin/python bench/objectstore.py [--size-mib 1024] [--clients 8]
        [--seconds 10] [--keys 100000] [--setup-clients 32]
        [--parts ceilings,large,small,listing]
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import multiprocessing
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.figures import percentile  # noqa: E402

from nova.auth.signer import (EMPTY_SHA256, UNSIGNED_PAYLOAD, aws_quote,  # noqa: E402
                              sign_v4_headers)
from tests.support.allinone import AllInOne  # noqa: E402
from tests.support.clients import Tenant  # noqa: E402

MIB = 1024 * 1024
BUFFER = 4 * MIB
NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def mb_s(size: int, seconds: float) -> str:
    return f"{size / seconds / 1e6:,.0f} MB/s"


class Signer:
    """Signs requests of one user for one endpoint (SigV4, region nova)."""

    def __init__(self, port: int, access: str, secret: str) -> None:
        self.port, self.access, self.secret = port, access, secret
        self.host = f"127.0.0.1:{port}"

    def headers(self, method: str, path: str, query: list[tuple[str, str]] | None = None,
                headers: dict[str, str] | None = None,
                payload: str = EMPTY_SHA256) -> dict[str, str]:
        headers = dict(headers or {})
        headers.update(sign_v4_headers(method, self.host, path, query or [], headers,
                                       self.access, self.secret, "nova", "s3",
                                       payload_sha256=payload))
        return headers


def request(conn: http.client.HTTPConnection, signer: Signer, method: str, path: str,
            query: list[tuple[str, str]] | None = None, body: bytes = b"") -> bytes:
    payload = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
    headers = signer.headers(method, path, query, payload=payload)
    target = path
    if query:
        target += "?" + "&".join(f"{aws_quote(n)}={aws_quote(v)}" for n, v in query)
    conn.request(method, target, body=body or None, headers=headers)
    response = conn.getresponse()
    data = response.read()
    if response.status not in (200, 204):
        raise SystemExit(f"{method} {target}: HTTP {response.status}: {data[:300]!r}")
    return data


# -- ceilings ---------------------------------------------------------------------------

def _receiver(listener: socket.socket, size: int) -> None:
    conn, _ = listener.accept()
    buf = bytearray(BUFFER)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = conn.recv_into(view)
        if not n:
            break
        got += n
    conn.sendall(b"k")
    conn.close()


def loopback_copy(size: int) -> float:
    """@return: seconds to push C{size} bytes through a loopback TCP connection."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    child = multiprocessing.Process(target=_receiver, args=(listener, size))
    child.start()
    block = os.urandom(BUFFER)
    with socket.create_connection(listener.getsockname()) as sock:
        began = time.perf_counter()
        sent = 0
        while sent < size:
            sock.sendall(block[:min(BUFFER, size - sent)])
            sent += min(BUFFER, size - sent)
        sock.recv(1)
        elapsed = time.perf_counter() - began
    child.join()
    listener.close()
    return elapsed


def disk_write_fsync(folder: str, size: int) -> float:
    """@return: seconds to write C{size} bytes sequentially to a new file and fsync it."""
    path = os.path.join(folder, "disk-test")
    block = os.urandom(BUFFER)
    try:
        began = time.perf_counter()
        with open(path, "wb", buffering=0) as f:
            written = 0
            while written < size:
                written += f.write(block[:min(BUFFER, size - written)])
            os.fsync(f.fileno())
        return time.perf_counter() - began
    finally:
        os.unlink(path)


# -- one large object -----------------------------------------------------------------

def make_file(path: str, size: int) -> str:
    block = os.urandom(MIB)
    md5 = hashlib.md5()
    with open(path, "wb") as f:
        for i in range(0, size, MIB):
            piece = (i.to_bytes(8, "big") + block)[:min(MIB, size - i)]
            f.write(piece)
            md5.update(piece)
    return md5.hexdigest()


def _read_head(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            raise SystemExit("the object store closed the connection")
        data += piece
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, rest


def _send_head(sock: socket.socket, method: str, path: str, headers: dict[str, str],
               host: str) -> None:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())


def put_file(signer: Signer, path: str, source: str) -> tuple[float, str]:
    size = os.path.getsize(source)
    headers = signer.headers("PUT", path, headers={"Content-Length": str(size)},
                             payload=UNSIGNED_PAYLOAD)
    with socket.create_connection(("127.0.0.1", signer.port)) as sock, open(source, "rb") as f:
        began = time.perf_counter()
        _send_head(sock, "PUT", path, headers, signer.host)
        sock.sendfile(f)
        status, answer, rest = _read_head(sock)
        elapsed = time.perf_counter() - began
    if status != 200:
        raise SystemExit(f"PUT {path}: HTTP {status} {rest[:300]!r}")
    return elapsed, answer.get("etag", "").strip('"')


def get_file(signer: Signer, path: str, target: str | None) -> tuple[float, int, str]:
    """GET to C{target} (or nowhere). @return: seconds, bytes, ETag."""
    headers = signer.headers("GET", path)
    buf = bytearray(BUFFER)
    view = memoryview(buf)
    out = open(target, "wb", buffering=0) if target else None
    try:
        with socket.create_connection(("127.0.0.1", signer.port)) as sock:
            began = time.perf_counter()
            _send_head(sock, "GET", path, headers, signer.host)
            status, answer, rest = _read_head(sock)
            if status != 200:
                raise SystemExit(f"GET {path}: HTTP {status} {rest[:300]!r}")
            length = int(answer["content-length"])
            if out:
                out.write(rest)
            got = len(rest)
            while got < length:
                n = sock.recv_into(view, min(BUFFER, length - got))
                if not n:
                    raise SystemExit(f"GET {path}: cut at {got} of {length} bytes")
                if out:
                    out.write(view[:n])
                got += n
            elapsed = time.perf_counter() - began
    finally:
        if out:
            out.close()
    return elapsed, got, answer.get("etag", "").strip('"')


def file_md5(path: str) -> str:
    md5 = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(BUFFER):
            md5.update(chunk)
    return md5.hexdigest()


# -- small objects ------------------------------------------------------------------

def _small_worker(port: int, access: str, secret: str, bucket: str, worker: int,
                  mode: str, seconds: float, count: int, existing: int, start_at: float,
                  results: "multiprocessing.Queue[tuple[int, list[float], float]]") -> None:
    signer = Signer(port, access, secret)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    body = os.urandom(4096)
    latencies: list[float] = []
    while time.time() < start_at:
        time.sleep(0.001)
    deadline = time.monotonic() + seconds
    cpu = time.process_time()
    n = 0
    while (time.monotonic() < deadline) if count == 0 else (n < count):
        key = f"/{bucket}/w{worker:02d}/k{n % existing if mode == 'GET' else n:07d}"
        began = time.perf_counter()
        if mode == "PUT":
            request(conn, signer, "PUT", key, body=body)
        else:
            request(conn, signer, "GET", key)
        latencies.append(time.perf_counter() - began)
        n += 1
    results.put((worker, latencies, time.process_time() - cpu))


def process_cpu(pid: int) -> float:
    """@return: the CPU seconds (user and system, all threads) process C{pid} used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: CPU seconds of the last run_small: the server process's, and its clients' in all
last_cpu: dict[str, float] = {}


def run_small(cloud: AllInOne, tenant: Tenant, bucket: str, mode: str, clients: int,
              seconds: float = 0.0, count: int = 0, existing: int = 1) -> list[list[float]]:
    """
    C{clients} processes doing 4 KB C{mode}s for C{seconds} (or C{count} each).
    Client I{i} PUTs C{w<i>/k<n>}; a GET reads the first C{existing} of its keys
    round and round. The CPU time of the server and the clients goes to L{last_cpu}.
    """
    results: multiprocessing.Queue[tuple[int, list[float], float]] = multiprocessing.Queue()
    start_at = time.time() + 0.5
    workers = [multiprocessing.Process(target=_small_worker, args=(
        cloud.s3_port, tenant.access, tenant.secret, bucket, i, mode, seconds, count,
        existing, start_at, results)) for i in range(clients)]
    for w in workers:
        w.start()
    while time.time() < start_at:
        time.sleep(0.001)
    server_pid = cloud.process.pid if cloud.process is not None else None
    server_cpu = process_cpu(server_pid) if server_pid else 0.0
    gathered, clients_cpu = {}, 0.0
    for _ in workers:
        worker, latencies, cpu = results.get(timeout=seconds + 600)
        gathered[worker] = latencies
        clients_cpu += cpu
    last_cpu["clients"] = clients_cpu
    if server_pid:
        last_cpu["server"] = process_cpu(server_pid) - server_cpu
    for w in workers:
        w.join()
        if w.exitcode != 0:
            raise SystemExit(f"a {mode} client failed")
    return [gathered[i] for i in range(clients)]


def report_small(mode: str, per_worker: list[list[float]], seconds: float) -> float:
    every = [x for w in per_worker for x in w]
    rate = len(every) / seconds
    print(f"  4 KB {mode}: {rate:,.0f} ops/s with {len(per_worker)} clients; latency p50 "
          f"{percentile(every, 50) * 1000:.2f} ms, p99 {percentile(every, 99) * 1000:.2f} ms")
    if every and "server" in last_cpu:
        # the server's figure includes whatever else the all-in-one did meanwhile (little)
        print(f"    CPU per operation: server {last_cpu['server'] / len(every) * 1000:.3f} ms "
              f"(all its threads), clients {last_cpu['clients'] / len(every) * 1000:.3f} ms")
    return rate


def list_all(signer: Signer, bucket: str) -> tuple[int, list[float], float]:
    conn = http.client.HTTPConnection("127.0.0.1", signer.port, timeout=120)
    token, keys, pages = None, 0, []
    began = time.perf_counter()
    while True:
        query = [("list-type", "2"), ("max-keys", "1000")]
        if token:
            query.append(("continuation-token", token))
        t = time.perf_counter()
        root = ElementTree.fromstring(request(conn, signer, "GET", f"/{bucket}", query))
        pages.append(time.perf_counter() - t)
        keys += int(root.findtext(NS + "KeyCount") or 0)
        token = root.findtext(NS + "NextContinuationToken")
        if root.findtext(NS + "IsTruncated") != "true":
            return keys, pages, time.perf_counter() - began


# -- the run --------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--setup-clients", type=int, default=32,
                        help="concurrent clients creating the keys to list")
    parser.add_argument("--parts", default="ceilings,large,small,listing",
                        help="which measurements to run (comma-separated)")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    size = args.size_mib * MIB

    cloud = AllInOne(host="bench-objectstore")
    cloud.start()
    work = tempfile.mkdtemp(prefix="nova-bench-", dir=cloud.base)
    try:
        tenant = Tenant(cloud)
        signer = Signer(cloud.s3_port, tenant.access, tenant.secret)
        conn = http.client.HTTPConnection("127.0.0.1", cloud.s3_port, timeout=60)
        for bucket in ("bench-large", "bench-small", "bench-list"):
            request(conn, signer, "PUT", f"/{bucket}")
        print(f"nova object store benchmark: {args.size_mib} MiB object, {args.clients} clients,"
              f" {args.keys:,} keys; state dir {cloud.state_dir}")

        disk = 0.0
        if "ceilings" in parts or "large" in parts:
            print("ceilings")
            loop = loopback_copy(size)
            print(f"  loopback TCP copy, {args.size_mib} MiB: {mb_s(size, loop)}")
            disk = disk_write_fsync(work, size)
            print(f"  disk sequential write + fsync, {args.size_mib} MiB: {mb_s(size, disk)}")
        if "large" in parts:
            large(signer, conn, work, size, args.size_mib, disk)
        if "small" in parts:
            small(cloud, tenant, args.clients, args.seconds)
        if "listing" in parts:
            listing(cloud, tenant, signer, args.keys, args.setup_clients)
    finally:
        cloud.stop()
        shutil.rmtree(work, ignore_errors=True)
        cloud.remove()


def large(signer: Signer, conn: http.client.HTTPConnection, work: str, size: int,
          size_mib: int, disk: float) -> None:
    """PUT and GET of one large object, checked by MD5."""
    print("one large object")
    source = os.path.join(work, "source")
    md5 = make_file(source, size)
    put, etag = put_file(signer, "/bench-large/object", source)
    os.unlink(source)
    print(f"  PUT {size_mib} MiB: {mb_s(size, put)}  (target >= {mb_s(size, disk * 2)},"
          f" half the disk's write+fsync)" + ("" if etag == md5 else "  ETAG MISMATCH"))
    target = os.path.join(work, "download")
    to_file, discarded, ok = [], [], True
    for _ in range(3):  # the median of three of each
        get, got, _ = get_file(signer, "/bench-large/object", target)
        ok = ok and got == size and file_md5(target) == md5
        os.unlink(target)
        to_file.append(get)
        discarded.append(get_file(signer, "/bench-large/object", None)[0])
    print(f"  GET {size_mib} MiB to a file: {mb_s(size, statistics.median(to_file))}"
          "  (target >= 1,000 MB/s; median of 3)" + ("" if ok else "  BODY MISMATCH"))
    print(f"  GET {size_mib} MiB, body discarded: "
          f"{mb_s(size, statistics.median(discarded))}  (median of 3)")
    request(conn, signer, "DELETE", "/bench-large/object")


def small(cloud: AllInOne, tenant: Tenant, clients: int, seconds: float) -> None:
    """4 KB PUTs, then GETs of what was PUT, from C{clients} processes."""
    print("small objects")
    puts = run_small(cloud, tenant, "bench-small", "PUT", clients, seconds)
    report_small("PUT", puts, seconds)
    print("    (target >= 1,500/s)")
    gets = run_small(cloud, tenant, "bench-small", "GET", clients, seconds,
                     existing=min(len(w) for w in puts))
    report_small("GET", gets, seconds)


def listing(cloud: AllInOne, tenant: Tenant, signer: Signer, keys_wanted: int,
            setup_clients: int) -> None:
    """Create C{keys_wanted} keys with concurrent small PUTs, then list them all."""
    print(f"listing {keys_wanted:,} keys")
    per_client = -(-keys_wanted // setup_clients)
    began = time.perf_counter()
    run_small(cloud, tenant, "bench-list", "PUT", setup_clients, count=per_client)
    setup = time.perf_counter() - began
    total_keys = per_client * setup_clients
    print(f"  setup: {total_keys:,} 4 KB PUTs from {setup_clients} clients in {setup:.1f} s"
          f" ({total_keys / setup:,.0f}/s)")
    keys, pages, whole = list_all(signer, "bench-list")
    print(f"  ListObjectsV2, 1,000 keys a page: {keys:,} keys in {len(pages)} pages, "
          f"{whole:.2f} s in all; a page: p50 {percentile(pages, 50) * 1000:.1f} ms, "
          f"p99 {percentile(pages, 99) * 1000:.1f} ms, mean "
          f"{statistics.mean(pages) * 1000:.1f} ms")
    if keys != total_keys:
        print(f"  LISTING MISMATCH: {keys} listed, {total_keys} written")


if __name__ == "__main__":
    main()
