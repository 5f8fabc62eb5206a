#!/usr/bin/env python3
"""
Benchmark: the compute control plane alone (fake driver, all-in-one).

1. Launch rate: C clients send RunInstances (MaxCount=1 each) until N
   instances exist; the clock stops when the last of them is `running`
   (API, quota transaction, scheduler, compute node, state update: the whole
   path but the hypervisor). Target: >= 50 launches/s for 500 instances.
2. DescribeInstances with 1,000 instances in the project: latency of a signed
   request until the whole XML is received, R repetitions. Target: p50 <= 50 ms.

    .venv/bin/python bench/compute_control_plane.py [--instances 500] [--clients 8]
"""

from __future__ import annotations

import argparse
import collections
import http.client
import os
import re
import statistics
import sys
import threading
import time
from urllib.parse import urlencode

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.figures import percentile  # noqa: E402

from nova.auth.signer import sign_ec2_v2  # noqa: E402
from tests.support.allinone import AllInOne  # noqa: E402
from tests.support.images import raw_disk  # noqa: E402
from tests.support.s3 import S3User  # noqa: E402

TARGET_LAUNCHES = 50.0
TARGET_DESCRIBE_MS = 50.0


class Signed:
    """A keep-alive connection sending SigV2-signed EC2 Query requests."""

    def __init__(self, port: int, access: str, secret: str) -> None:
        self.host = f"127.0.0.1:{port}"
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.access, self.secret = access, secret

    def call(self, action: str, **params: str) -> bytes:
        query = urlencode(sign_ec2_v2({"Action": action, "Version": "2016-11-15", **params},
                                      self.access, self.secret, "GET", self.host,
                                      "/services/Cloud"))
        self.conn.request("GET", "/services/Cloud?" + query)
        response = self.conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{action}: HTTP {response.status}: {body[:300]!r}")
        return body


def register_image(user: S3User) -> str:
    user.s3.create_bucket(Bucket="bench-images")
    user.s3.put_object(Bucket="bench-images", Key="disk.img", Body=raw_disk())
    ec2 = user.boto3()
    image_id = ec2.register_image(ImageLocation="bench-images/disk.img",
                                  Name="bench disk")["ImageId"]
    while ec2.describe_images(ImageIds=[image_id])["Images"][0]["State"] != "available":
        time.sleep(0.05)
    return image_id


def count_running(client: Signed) -> int:
    return client.call("DescribeInstances", **{
        "Filter.1.Name": "instance-state-name", "Filter.1.Value.1": "running"}
    ).count(b"<instanceId>")


def launch_rate(cloud: AllInOne, user: S3User, image_id: str, total: int,
                clients: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    left = [total]

    def worker() -> None:
        client = Signed(cloud.ec2_port, user.access, user.secret)
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            began = time.perf_counter()
            try:
                client.call("RunInstances", ImageId=image_id, MinCount="1", MaxCount="1",
                            InstanceType="m1.tiny")
            except Exception as e:
                failures.append(str(e))
                return
            with lock:
                latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise SystemExit(f"{len(failures)} RunInstances failed, e.g. {failures[0]}")
    watcher = Signed(cloud.ec2_port, user.access, user.secret)
    deadline = time.monotonic() + 120
    while (running := count_running(watcher)) < total:
        if time.monotonic() > deadline:
            body = watcher.call("DescribeInstances").decode()
            names = re.findall(r"<instanceState><code>\d+</code><name>([a-z-]+)</name>", body)
            reasons = set(re.findall(r"<stateReason><code>([^<]*)</code>", body))
            raise SystemExit(f"only {running} of {total} instances running after 120 s: "
                             f"{collections.Counter(names)}, reasons {reasons}")
        time.sleep(0.02)
    return time.perf_counter() - began, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--describe-instances", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    cloud = AllInOne()
    cloud.start()
    try:
        user = S3User(cloud)
        for name in ("instances", "cores"):
            cloud.nova_manage("project", "quota", user.project, name, "100000")
        cloud.nova_manage("project", "quota", user.project, "ram_mb", "100000000")
        image_id = register_image(user)
        elapsed, latencies = launch_rate(cloud, user, image_id, args.instances, args.clients)
        rate = args.instances / elapsed
        more = args.describe_instances - args.instances
        if more > 0:
            launch_rate(cloud, user, image_id, more, args.clients)
        client = Signed(cloud.ec2_port, user.access, user.secret)
        times = []
        for _ in range(args.repeat):
            began = time.perf_counter()
            body = client.call("DescribeInstances")
            times.append(time.perf_counter() - began)
            assert body.count(b"<instanceId>") == max(args.describe_instances, args.instances)
    finally:
        cloud.stop()
        cloud.remove()
    print(f"compute control plane (fake driver, all-in-one), {os.cpu_count()} CPUs shared "
          "by clients and server")
    print(f"  launch: {args.instances} instances from {args.clients} clients, RunInstances "
          f"to all running in {elapsed:.2f} s = {rate:,.1f} launches/s "
          f"(target >= {TARGET_LAUNCHES:.0f}: {'met' if rate >= TARGET_LAUNCHES else 'NOT met'})")
    print(f"          RunInstances latency p50 {percentile(latencies, 50) * 1000:.1f} ms, "
          f"p99 {percentile(latencies, 99) * 1000:.1f} ms")
    p50 = percentile(times, 50) * 1000
    print(f"  DescribeInstances, {max(args.describe_instances, args.instances)} instances, "
          f"{args.repeat} requests: p50 {p50:.1f} ms, p90 {percentile(times, 90) * 1000:.1f} ms, "
          f"mean {statistics.fmean(times) * 1000:.1f} ms "
          f"(target p50 <= {TARGET_DESCRIBE_MS:.0f} ms: "
          f"{'met' if p50 <= TARGET_DESCRIBE_MS else 'NOT met'})")


if __name__ == "__main__":
    main()
