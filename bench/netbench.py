"""
What the network benchmarks share: an all-in-one whose compute and network
host is a fresh namespace (as tests/test_e2e_network.py runs it), torn down
whatever happens; a tenant with the C{netadmin} role in it; how busy the
machine's CPUs are (TCG guests share them with everything measured).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from tests.support.allinone import AllInOne
from tests.support.clients import Tenant
from tests.support.guests import e2e_cloud, remove_netns, state_of


@contextlib.contextmanager
def guest_cloud() -> Iterator[AllInOne]:
    """
    @return: (a context manager giving) a started all-in-one whose host is
        the namespace C{cloud.netns}, with the tiny image registered. On the
        way out, even on an error or Ctrl-C, the cloud stops (its guests
        with it), everything left in the namespace is killed, the namespace
        and the cloud's files are removed.
    """
    cloud = e2e_cloud()
    try:
        cloud.start(timeout=300)
        yield cloud
    finally:
        # a second Ctrl-C must not cut the clean-up short
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            cloud.stop()
            remove_netns(cloud.netns)  # type: ignore[attr-defined]
            cloud.remove()
        finally:
            signal.signal(signal.SIGINT, previous)


def boot_files(cloud: AllInOne) -> tuple[str, str]:
    """
    @return: the tiny image's kernel and initramfs as the compute host cached
        them (after a first launch), for a bare qemu boot; the same choice
        as bench/compute_boot.py's (which makes it inline in its main).
    """
    base = cloud.state_dir / "instances" / "_base"
    files = sorted(base.iterdir(), key=lambda p: p.stat().st_size)
    # the cache holds the raw disk (smallest), the initramfs, the kernel (largest)
    return str(files[-1]), str(files[-2])


def accelerator(cloud: AllInOne) -> str:
    """@return: C{kvm} or C{tcg}, as the compute node chose (its log says)."""
    return "kvm" if "domain type kvm" in cloud.log_path.read_text() else "tcg"


class NetProject:
    """
    A tenant with the C{netadmin} role (it may change security groups), its
    EC2 client, and optionally a key pair in a private file. Both go with
    the cloud (L{guest_cloud}).

    @ivar ec2: its boto3 EC2 client.
    @ivar key: the key pair's private key file, or C{None}.
    """

    def __init__(self, cloud: AllInOne, key_pair: bool = False,
                 instances_quota: int | None = None) -> None:
        self.cloud = cloud
        self.tenant = Tenant(cloud, role="netadmin")
        self.ec2: Any = self.tenant.boto3()
        # in the cloud's own directory: it goes when the cloud is removed
        self.folder = Path(tempfile.mkdtemp(prefix="bench-key-", dir=cloud.base))
        self.key: Path | None = None
        self.key_name: str | None = None
        if key_pair:
            made = self.ec2.create_key_pair(KeyName="bench")
            self.key_name = "bench"
            self.key = self.folder / "key.pem"
            self.key.write_text(made["KeyMaterial"])
            self.key.chmod(0o600)
        if instances_quota is not None:
            for name in ("instances", "cores"):
                cloud.nova_manage("project", "quota", self.tenant.project, name,
                                  str(instances_quota))

    def ssh_rule(self, port: int = 22) -> dict[str, Any]:
        return {"GroupName": "default", "IpPermissions": [{
            "IpProtocol": "tcp", "FromPort": port, "ToPort": port,
            "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]}

    def ssh(self, address: str, command: str = "true",
            connect_timeout: int = 1) -> subprocess.CompletedProcess[str]:
        """Run C{command} in the guest at C{address} over SSH from the host namespace."""
        assert self.key is not None
        return subprocess.run(
            ["ip", "netns", "exec", self.cloud.netns,  # type: ignore[attr-defined]
             "ssh", "-i", str(self.key), "-o", "BatchMode=yes",
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", f"ConnectTimeout={connect_timeout}", "-o", "LogLevel=ERROR",
             f"root@{address}", command], capture_output=True, text=True, timeout=30)

    def terminate(self, ids: list[str], timeout: float = 120) -> None:
        """Terminate C{ids} and wait until they are all C{terminated}."""
        self.ec2.terminate_instances(InstanceIds=ids)
        deadline = time.monotonic() + timeout
        for instance_id in ids:
            while state_of(self.ec2, instance_id) != "terminated":
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{instance_id} not terminated after {timeout} s")
                time.sleep(0.1)


def busy_cpu() -> tuple[int, int]:
    """@return: the machine's busy and total CPU time so far (clock ticks, /proc/stat)."""
    with open("/proc/stat") as stat:
        ticks = [int(v) for v in stat.readline().split()[1:]]
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)  # idle, iowait


def wait_quiet(below: float = 0.3, timeout: float = 120) -> float:
    """
    Wait until the machine's CPUs were less than C{below} busy for a second.

    @return: the seconds waited.
    """
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        before = busy_cpu()
        time.sleep(1)
        after = busy_cpu()
        if (after[0] - before[0]) / max(1, after[1] - before[1]) < below:
            break
    return time.monotonic() - began


def kill_children(needle: str) -> None:
    """Kill (SIGKILL) and reap this process's children whose command line holds C{needle}."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if parent == os.getpid() and needle in command:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                os.waitpid(int(entry.name), 0)
            except (ProcessLookupError, ChildProcessError):
                pass
