#!/usr/bin/env python3
"""
Benchmark: volumes over NBD (issue 6).

Starts an all-in-one whose compute, network and volume host is a fresh
namespace (bench/netbench.py), one tiny-image guest reachable over SSH, and
one volume. Then:

1. AttachVolume until the disk is visible in the guest (``/sys/block/vdX``
   polled over one SSH session every 20 ms), N times (detached between):
   p50 and p99.
2. Sequential write and read inside the guest over NBD (busybox ``dd`` of
   64 MiB, the write with ``conv=fsync``, the read after dropping the
   guest's page cache; timed from the host, less an empty round trip, since
   the tiny image's dd prints no figures), against the same ``dd`` on the
   volume host's backing file in the same run (host page cache dropped too).
   Target: the guest's throughput >= 70% of the host's.

    .venv/bin/python bench/volume_attach.py [--attaches 10] [--mib 64]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.figures import percentile  # noqa: E402
from bench.netbench import NetProject, accelerator, guest_cloud, wait_quiet  # noqa: E402

from tests.support.guests import tiny_ami, wait_for, wait_state  # noqa: E402

TARGET_RATIO = 0.70


def volume_state(ec2: Any, volume_id: str) -> tuple[str, str]:
    [volume] = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"]
    attachments = volume.get("Attachments") or [{}]
    return volume["State"], attachments[0].get("State", "detached")


def wait_volume(ec2: Any, volume_id: str, state: tuple[str, str]) -> None:
    wait_for(lambda: volume_state(ec2, volume_id) == state, 60, f"{volume_id} {state}",
             interval=0.05)


def guest_shell(project: NetProject, address: str) -> subprocess.Popen[str]:
    """One SSH session to the guest that runs commands read from its stdin."""
    assert project.key is not None
    return subprocess.Popen(
        ["ip", "netns", "exec", project.cloud.netns,  # type: ignore[attr-defined]
         "ssh", "-i", str(project.key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", f"root@{address}",
         "sh"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)


def run_in(shell: subprocess.Popen[str], command: str) -> str:
    """@return: C{command}'s output in the guest's session (up to its END line)."""
    assert shell.stdin is not None and shell.stdout is not None
    shell.stdin.write(f"{command}; echo END\n")
    shell.stdin.flush()
    lines = []
    for line in shell.stdout:
        if line.strip() == "END":
            return "".join(lines)
        lines.append(line)
    raise RuntimeError("the guest's shell ended")


def timed_in(shell: subprocess.Popen[str], command: str) -> float:
    """
    @return: seconds C{command} took in the guest, timed from the host (the
        tiny image's busybox dd prints no figures) less one empty round trip.
    """
    began = time.perf_counter()
    run_in(shell, "true")
    round_trip = time.perf_counter() - began
    began = time.perf_counter()
    run_in(shell, command)
    return time.perf_counter() - began - round_trip


def host_dd(netns: str, argv: list[str]) -> float:
    """@return: seconds busybox dd took on the volume host."""
    began = time.perf_counter()
    subprocess.run(["ip", "netns", "exec", netns, "busybox", "dd", *argv],
                   capture_output=True, text=True, check=True)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attaches", type=int, default=10)
    parser.add_argument("--mib", type=int, default=64)
    args = parser.parse_args()
    with guest_cloud() as cloud:
        project = NetProject(cloud, key_pair=True)
        ec2 = project.ec2
        ec2.authorize_security_group_ingress(**project.ssh_rule())
        [instance] = ec2.run_instances(ImageId=tiny_ami(cloud), MinCount=1, MaxCount=1,
                                       InstanceType="m1.tiny",
                                       KeyName=project.key_name)["Instances"]
        instance_id = instance["InstanceId"]
        wait_state(ec2, instance_id, "running", timeout=120)
        [reservation] = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        address = reservation["Instances"][0]["PrivateIpAddress"]
        wait_for(lambda: project.ssh(address).returncode == 0, 120, "ssh", interval=0.2)
        volume_id = ec2.create_volume(Size=1, AvailabilityZone="nova")["VolumeId"]
        wait_volume(ec2, volume_id, ("available", "detached"))
        shell = guest_shell(project, address)
        wait_quiet()

        attach_times = []
        for _ in range(args.attaches):
            began = time.perf_counter()
            ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device="/dev/vdb")
            while "yes" not in run_in(shell, "test -e /sys/block/vdb && echo yes"):
                time.sleep(0.02)
            attach_times.append(time.perf_counter() - began)
            wait_volume(ec2, volume_id, ("in-use", "attached"))
            ec2.detach_volume(VolumeId=volume_id)
            wait_volume(ec2, volume_id, ("available", "detached"))
            while "gone" not in run_in(shell, "test -e /sys/block/vdb || echo gone"):
                time.sleep(0.02)

        ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device="/dev/vdb")
        while "yes" not in run_in(shell, "test -e /sys/block/vdb && echo yes"):
            time.sleep(0.02)
        mib = args.mib
        guest_write = timed_in(shell, f"dd if=/dev/zero of=/dev/vdb bs=1M count={mib} "
                                      "conv=fsync 2>/dev/null")
        run_in(shell, "echo 3 > /proc/sys/vm/drop_caches")
        guest_read = timed_in(shell, f"dd if=/dev/vdb of=/dev/null bs=1M count={mib} "
                                     "2>/dev/null")
        backing = cloud.state_dir / "volumes" / "files" / f"{volume_id}.img"
        netns = cloud.netns  # type: ignore[attr-defined]
        host_write = host_dd(netns, ["if=/dev/zero", f"of={backing}", "bs=1M",
                                     f"count={mib}", "conv=fsync,notrunc"])
        subprocess.run(["sh", "-c", "sync; echo 3 > /proc/sys/vm/drop_caches"], check=True)
        host_read = host_dd(netns, [f"if={backing}", "of=/dev/null", "bs=1M", f"count={mib}"])
        shell.terminate()

        print(f"volumes over NBD, guest under {accelerator(cloud)}, 1 GiB volume, {mib} MiB")
        print(f"  AttachVolume -> disk visible in the guest: p50 "
              f"{percentile(attach_times, 50):.2f} s, p99 {percentile(attach_times, 99):.2f} s"
              f" ({len(attach_times)} attaches)")
        for what, guest, host in (("write", guest_write, host_write),
                                  ("read", guest_read, host_read)):
            ratio = host / guest
            print(f"  sequential {what}: guest {mib / guest:.0f} MiB/s, host file "
                  f"{mib / host:.0f} MiB/s: {ratio:.0%} of the host "
                  f"(target >= {TARGET_RATIO:.0%}: {'met' if ratio >= TARGET_RATIO else 'NOT met'})")


if __name__ == "__main__":
    main()
