#!/usr/bin/env python3
"""
Benchmark: RunInstances to the tiny image's console marker, next to a bare
qemu boot of the same kernel and initramfs measured in the same run (the
hypervisor's own floor).

Starts an all-in-one whose compute host is a network namespace with its own
libvirtd (tests/support/guests.py), which registers the tiny image. Then:

1. N sequential boots through nova (RunInstances, then GetConsoleOutput
   polled every 0.1 s until the marker shows) and N bare boots
   (qemu-system-x86_64 with the same kernel, initramfs, command line, RAM and
   accelerator; its serial file polled every 10 ms): p50 and p99 of each.
2. 10 concurrent launches (one RunInstances with MaxCount=10) until every
   console shows the marker, and 10 bare qemu started at once.

Targets: nova p50 <= 1.2x bare p50; 10 concurrent <= 1.2x bare.

    .venv/bin/python bench/compute_boot.py [--boots 20] [--concurrent 10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.figures import percentile  # noqa: E402

from tests.support.clients import boto3_ec2  # noqa: E402
from tests.support.guests import (MARKER, console_of, e2e_cloud, remove_netns,  # noqa: E402
                                  tiny_ami, wait_state)

CMDLINE = "root=/dev/vda1 console=ttyS0 no_timer_check quiet panic=-1"
TARGET_RATIO = 1.2


def nova_boots(ec2: Any, ami: str, count: int, concurrent: bool) -> tuple[list[float], float]:
    """@return: per-instance seconds to the marker, and the time until the last one."""
    began = time.perf_counter()
    if concurrent:
        reservation = ec2.run_instances(ImageId=ami, MinCount=count, MaxCount=count,
                                        InstanceType="m1.tiny")
        ids = [i["InstanceId"] for i in reservation["Instances"]]
    else:
        ids = []
    times: list[float] = []
    if concurrent:
        waiting = set(ids)
        while waiting:
            for instance_id in sorted(waiting):
                if MARKER in console_of(ec2, instance_id):
                    waiting.discard(instance_id)
                    times.append(time.perf_counter() - began)
            time.sleep(0.1)
        total = time.perf_counter() - began
        ec2.terminate_instances(InstanceIds=ids)
        for instance_id in ids:
            wait_state(ec2, instance_id, "terminated")
        return times, total
    for _ in range(count):
        start = time.perf_counter()
        [instance] = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1,
                                       InstanceType="m1.tiny")["Instances"]
        while MARKER not in console_of(ec2, instance["InstanceId"]):
            time.sleep(0.1)
        times.append(time.perf_counter() - start)
        ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
        # off the clock: the node's destroy would otherwise overlap the next spawn
        wait_state(ec2, instance["InstanceId"], "terminated")
    return times, time.perf_counter() - began


def bare_boots(kernel: str, initrd: str, count: int, concurrent: bool,
               accel: str) -> tuple[list[float], float]:
    """@return: per-boot seconds to the marker of bare qemu, and the time until the last."""
    work = Path(tempfile.mkdtemp(prefix="nova-bench-bare-"))
    times: list[float] = []
    overall = time.perf_counter()

    def start(i: int) -> tuple[subprocess.Popen[bytes], Path, float]:
        log = work / f"serial-{i}.log"
        argv = ["qemu-system-x86_64", "-accel", accel, "-machine", "pc", "-m", "512",
                "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none",
                "-kernel", kernel, "-initrd", initrd, "-append", CMDLINE,
                "-serial", f"file:{log}", "-nic", "none"]
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL), log, time.perf_counter()

    def wait(running: list[tuple[subprocess.Popen[bytes], Path, float]]) -> None:
        waiting = list(running)
        while waiting:
            for item in list(waiting):
                proc, log, began = item
                if log.exists() and MARKER.encode() in log.read_bytes():
                    times.append(time.perf_counter() - (overall if concurrent else began))
                    proc.kill()
                    proc.wait()
                    waiting.remove(item)
            time.sleep(0.01)

    try:
        if concurrent:
            wait([start(i) for i in range(count)])
        else:
            for i in range(count):
                wait([start(i)])
    finally:
        subprocess.run(["rm", "-rf", str(work)])
    return times, time.perf_counter() - overall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--boots", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=10)
    args = parser.parse_args()

    cloud = e2e_cloud()
    try:
        cloud.start(timeout=300)
        env = cloud.admin_env()
        ec2 = boto3_ec2(cloud.ec2_url, env["EC2_ACCESS_KEY"], env["EC2_SECRET_KEY"])
        ami = tiny_ami(cloud)
        # warm-up boot: fetches the images into the host's cache
        nova_boots(ec2, ami, 1, concurrent=False)
        base = cloud.state_dir / "instances" / "_base"
        files = sorted(base.iterdir(), key=lambda p: p.stat().st_size)
        # the cache holds the raw disk (smallest), the initramfs, the kernel (largest)
        initrd, kernel = str(files[-2]), str(files[-1])
        accel = "kvm" if "domain type kvm" in cloud.log_path.read_text() else "tcg"

        bare_seq, _ = bare_boots(kernel, initrd, args.boots, False, accel)
        nova_seq, _ = nova_boots(ec2, ami, args.boots, False)
        bare_con, bare_all = bare_boots(kernel, initrd, args.concurrent, True, accel)
        time.sleep(3)
        nova_con, nova_all = nova_boots(ec2, ami, args.concurrent, True)
    finally:
        cloud.stop()
        remove_netns(cloud.netns)
        cloud.remove()

    def line(name: str, values: list[float]) -> str:
        return (f"p50 {percentile(values, 50):.2f} s, p99 {percentile(values, 99):.2f} s, "
                f"min {min(values):.2f} s ({name}, {len(values)} boots)")

    ratio = percentile(nova_seq, 50) / percentile(bare_seq, 50)
    ratio_con = nova_all / bare_all
    overhead = percentile(nova_seq, 50) - percentile(bare_seq, 50)
    print(f"tiny image boot to console marker, accelerator {accel}, {os.cpu_count()} CPUs")
    print(f"  bare qemu:  {line('bare', bare_seq)}")
    print(f"  nova:       {line('RunInstances to marker via GetConsoleOutput', nova_seq)}")
    print(f"  ratio p50:  {ratio:.2f}x (target <= {TARGET_RATIO}x: "
          f"{'met' if ratio <= TARGET_RATIO else 'NOT met'}); nova's overhead {overhead:.2f} s")
    print(f"  {args.concurrent} concurrent: bare {bare_all:.2f} s, nova {nova_all:.2f} s "
          f"until the last marker = {ratio_con:.2f}x (target <= {TARGET_RATIO}x: "
          f"{'met' if ratio_con <= TARGET_RATIO else 'NOT met'})")
    print(f"  KVM projection: a bare KVM boot of this image plus nova's measured "
          f"{overhead:.2f} s overhead")


if __name__ == "__main__":
    main()
