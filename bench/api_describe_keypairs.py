#!/usr/bin/env python3
"""
Benchmark: signed DescribeKeyPairs against a running all-in-one, from
C concurrent clients (separate processes, each with a keep-alive connection).

Starts its own all-in-one (tests/support/allinone.py) on free loopback ports,
creates a project with 5 key pairs, then for D seconds each client sends
SigV2-signed GET requests (a new signature and timestamp each time, as a
real client does). Prints requests/s and latency percentiles next to the
target: >= 1,000 requests/s with 8 clients.

    .venv/bin/python bench/api_describe_keypairs.py [--clients 8] [--seconds 10]
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import statistics
import sys
import time
from urllib.parse import urlencode

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.figures import percentile  # noqa: E402

from nova.auth.signer import sign_ec2_v2  # noqa: E402
from tests.support.allinone import AllInOne  # noqa: E402
from tests.support.clients import Tenant  # noqa: E402

TARGET_RPS = 1000


def client(port: int, access: str, secret: str, seconds: float, start_at: float,
           results: "multiprocessing.Queue[list[float]]") -> None:
    host = f"127.0.0.1:{port}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies: list[float] = []
    while time.time() < start_at:
        time.sleep(0.001)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        query = urlencode(sign_ec2_v2({"Action": "DescribeKeyPairs", "Version": "2016-11-15"},
                                      access, secret, "GET", host, "/services/Cloud"))
        began = time.perf_counter()
        conn.request("GET", "/services/Cloud?" + query)
        response = conn.getresponse()
        body = response.read()
        latencies.append(time.perf_counter() - began)
        if response.status != 200:
            raise SystemExit(f"HTTP {response.status}: {body[:300]!r}")
    results.put(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    cloud = AllInOne()
    cloud.start()
    try:
        tenant = Tenant(cloud)
        ec2 = tenant.boto3()
        for i in range(5):
            ec2.create_key_pair(KeyName=f"bench-{i}")
        results: multiprocessing.Queue[list[float]] = multiprocessing.Queue()
        start_at = time.time() + 1.0
        workers = [multiprocessing.Process(target=client, args=(
            cloud.ec2_port, tenant.access, tenant.secret, args.seconds, start_at, results))
            for _ in range(args.clients)]
        for w in workers:
            w.start()
        latencies: list[float] = []
        for _ in workers:
            latencies.extend(results.get(timeout=args.seconds + 60))
        for w in workers:
            w.join()
    finally:
        cloud.stop()
        cloud.remove()
    rps = len(latencies) / args.seconds
    print(f"signed DescribeKeyPairs, {args.clients} clients, {args.seconds:.0f} s, "
          f"{os.cpu_count()} CPUs (clients and server share them)")
    print(f"  requests:   {len(latencies)}")
    print(f"  throughput: {rps:,.0f} requests/s  (target >= {TARGET_RPS:,}: "
          f"{'met' if rps >= TARGET_RPS else 'NOT met'})")
    print(f"  latency:    p50 {percentile(latencies, 50) * 1000:.2f} ms, "
          f"p90 {percentile(latencies, 90) * 1000:.2f} ms, "
          f"p99 {percentile(latencies, 99) * 1000:.2f} ms, "
          f"mean {statistics.fmean(latencies) * 1000:.2f} ms")


if __name__ == "__main__":
    main()
