#!/usr/bin/env python3
"""
Benchmark: volumes over NBD (issue 6).

Starts an all-in-one whose compute, network and volume host is a fresh
namespace (bench/netbench.py), one tiny-image guest reachable over SSH, and
one volume. Then:

1. AttachVolume until the disk is visible in the guest (``/sys/block/vdX``
   polled over one SSH session every 20 ms), N times (detached between):
   p50 and p99.
2. Sequential write and read of the first M MiB inside the guest over NBD
   (busybox ``dd``, 1 MiB blocks; timed from the host less an empty round
   trip, since the tiny image's dd prints no figures) against the same
   ``dd`` on the volume host's backing file, in two modes: ``buffered``
   (writes end with ``conv=fsync``) and ``direct`` (O_DIRECT, the page
   caches bypassed). Page caches (guest and host) are dropped before every
   read, so both sides read from the host's disk. Target: the guest over
   NBD >= 70% of the host.

   The control: the same guest tests on a sparse file of the same host
   filesystem attached as a local virtio disk (libvirt directly, no NBD).
   Under TCG the guest's kernel is emulated; what the export costs is the
   gap between the NBD disk and this local disk, not the gap to the host.

    .venv/bin/python bench/volume_attach.py [--attaches 10] [--mib 256] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.figures import percentile  # noqa: E402
from bench.netbench import NetProject, accelerator, guest_cloud, wait_quiet  # noqa: E402

from tests.support.allinone import AllInOne  # noqa: E402
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


#: dd's flags per mode, the same in the guest and on the host: (write, read)
MODES = {"buffered": (["conv=fsync,notrunc"], []),
         "direct": (["oflag=direct", "conv=notrunc"], ["iflag=direct"])}


def host_dd(netns: str, argv: list[str]) -> float:
    """@return: seconds busybox dd took on the volume host."""
    began = time.perf_counter()
    subprocess.run(["ip", "netns", "exec", netns, "busybox", "dd", *argv],
                   capture_output=True, text=True, check=True)
    return time.perf_counter() - began


def drop_host_caches() -> None:
    subprocess.run(["sh", "-c", "sync; echo 3 > /proc/sys/vm/drop_caches"], check=True)


def attach_local_disk(cloud: AllInOne, instance_id: str, path: Path) -> None:
    """Attach C{path} to the guest as a plain virtio disk (the control), by libvirt."""
    netns = cloud.netns  # type: ignore[attr-defined]
    socket = cloud.state_dir / "hosts" / netns / "sock" / "libvirt-sock"
    xml = path.with_suffix(".xml")
    xml.write_text(f"<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
                   f"<source file='{path}'/><target dev='vdc' bus='virtio'/></disk>")
    subprocess.run(["virsh", "-q", "-c", f"qemu+unix:///system?socket={socket}",
                    "attach-device", instance_id, str(xml), "--live"],
                   capture_output=True, text=True, check=True)


def attach_times(ec2: Any, shell: subprocess.Popen[str], instance_id: str, volume_id: str,
                 count: int) -> list[float]:
    """@return: seconds from AttachVolume to /sys/block/vdb in the guest, C{count} times."""
    times = []
    for _ in range(count):
        began = time.perf_counter()
        ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device="/dev/vdb")
        while "yes" not in run_in(shell, "test -e /sys/block/vdb && echo yes"):
            time.sleep(0.02)
        times.append(time.perf_counter() - began)
        wait_volume(ec2, volume_id, ("in-use", "attached"))
        ec2.detach_volume(VolumeId=volume_id)
        wait_volume(ec2, volume_id, ("available", "detached"))
        while "gone" not in run_in(shell, "test -e /sys/block/vdb || echo gone"):
            time.sleep(0.02)
    return times


def throughput(shell: subprocess.Popen[str], netns: str, backing: Path, mib: int,
               rounds: int) -> dict[tuple[str, str], dict[str, float]]:
    """
    @return: (C{write}|C{read}, mode) to the median seconds of C{nbd} (the
        guest's /dev/vdb), C{local} (the guest's /dev/vdc) and C{host}.
    """
    samples: dict[tuple[str, str], dict[str, list[float]]] = {}
    for _ in range(rounds):
        for mode, (write_flags, read_flags) in MODES.items():
            writes = samples.setdefault(("write", mode), {})
            reads = samples.setdefault(("read", mode), {})
            for where, device in (("nbd", "/dev/vdb"), ("local", "/dev/vdc")):
                writes.setdefault(where, []).append(timed_in(
                    shell, f"dd if=/dev/zero of={device} bs=1M count={mib} "
                           f"{' '.join(write_flags)} 2>/dev/null"))
            writes.setdefault("host", []).append(host_dd(netns, [
                "if=/dev/zero", f"of={backing}", "bs=1M", f"count={mib}", *write_flags]))
            for where, device in (("nbd", "/dev/vdb"), ("local", "/dev/vdc")):
                drop_host_caches()
                run_in(shell, "echo 3 > /proc/sys/vm/drop_caches")
                reads.setdefault(where, []).append(timed_in(
                    shell, f"dd if={device} of=/dev/null bs=1M count={mib} "
                           f"{' '.join(read_flags)} 2>/dev/null"))
            drop_host_caches()
            reads.setdefault("host", []).append(host_dd(netns, [
                f"if={backing}", "of=/dev/null", "bs=1M", f"count={mib}", *read_flags]))
    return {key: {where: statistics.median(times) for where, times in found.items()}
            for key, found in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attaches", type=int, default=10)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
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
        attaches = attach_times(ec2, shell, instance_id, volume_id, args.attaches)

        ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device="/dev/vdb")
        while "yes" not in run_in(shell, "test -e /sys/block/vdb && echo yes"):
            time.sleep(0.02)
        local = cloud.state_dir / "bench-local-disk.img"
        with local.open("wb") as f:
            f.truncate(1 << 30)
        attach_local_disk(cloud, instance_id, local)
        while "yes" not in run_in(shell, "test -e /sys/block/vdc && echo yes"):
            time.sleep(0.02)
        backing = cloud.state_dir / "volumes" / "files" / f"{volume_id}.img"
        wait_quiet()
        figures = throughput(shell, cloud.netns, backing, args.mib,  # type: ignore[attr-defined]
                             args.rounds)
        shell.terminate()

        mib = args.mib
        print(f"volumes over NBD, guest under {accelerator(cloud)}, 1 GiB volume, {mib} MiB, "
              f"median of {args.rounds}")
        print(f"  AttachVolume -> disk visible in the guest: p50 "
              f"{percentile(attaches, 50):.2f} s, p99 {percentile(attaches, 99):.2f} s"
              f" ({len(attaches)} attaches)")
        for (what, mode), seconds in figures.items():
            ratio = seconds["host"] / seconds["nbd"]
            print(f"  {what} {mode}: guest NBD {mib / seconds['nbd']:.0f} MiB/s, guest local "
                  f"disk {mib / seconds['local']:.0f} MiB/s, host file "
                  f"{mib / seconds['host']:.0f} MiB/s: NBD {ratio:.0%} of the host "
                  f"(target >= {TARGET_RATIO:.0%}: {'met' if ratio >= TARGET_RATIO else 'NOT met'})"
                  f", {seconds['local'] / seconds['nbd']:.0%} of the local disk")


if __name__ == "__main__":
    main()
