"""Helpers of the end-to-end tests that run real guests of the tiny image."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from typing import Any

from tests.support.allinone import AllInOne
from tests.support.s3 import wait_for

#: what the tiny image prints on its serial console once it is up
MARKER = "NOVA-TINY-READY"
#: the qemu capability cache shared by test runs (the first probe takes 8-12 s)
LIBVIRT_CACHE = os.environ.get("NOVA_TEST_LIBVIRT_CACHE", "/var/tmp/nova-libvirt-cache")


def e2e_cloud(keep_guests: bool = False, network: str = "",
              volume: str = "driver = nbd\n") -> AllInOne:
    """
    @param network: more C{[network]} settings (the network host is the
        compute host's namespace; project networks are cut from 10.20.0.0/16).
    @param keep_guests: leave the guests running when the cloud stops (to
        restart it under them); the caller then calls L{remove_netns}.
    @return: an all-in-one (not started) whose compute host is a fresh network
        namespace with its own libvirtd, and which registers the tiny image.
    """
    netns = "nova-e2e-" + uuid.uuid4().hex[:8]
    cloud = AllInOne(compute=("driver = libvirt\n"
                              f"host_netns = {netns}\n"
                              f"stop_guests_on_exit = {'false' if keep_guests else 'true'}\n"
                              f"libvirt_cache_dir = {LIBVIRT_CACHE}\n"),
                     network=("driver = linux\n"
                              f"host_netns = {netns}\n"
                              "fixed_range = 10.20.0.0/16\n"
                              "num_networks = 16\n"
                              "network_size = 256\n" + network),
                     # the volume host is the same namespace: its storage daemon
                     # goes with it
                     volume=f"host_netns = {netns}\n" + volume,
                     tiny_image=True, host="e2e-" + netns[-8:])
    cloud.netns = netns  # type: ignore[attr-defined]
    return cloud


def netns_pids(netns: str) -> list[int]:
    result = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
    return [int(p) for p in result.stdout.split()] if result.returncode == 0 else []


def remove_netns(netns: str) -> None:
    """Kill whatever still runs in a test's namespace and delete it (idempotent)."""
    for pid in netns_pids(netns):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while netns_pids(netns) and time.monotonic() < deadline:
        time.sleep(0.05)
    subprocess.run(["ip", "netns", "delete", netns], capture_output=True)


def tiny_ami(cloud: AllInOne) -> str:
    """@return: the ami id of the tiny image the cloud registered at its first start."""
    return (cloud.state_dir / "creds" / "tiny-ami").read_text().strip()


def console_of(ec2: Any, instance_id: str) -> str:
    """@return: the console text so far (boto3 decodes the base64)."""
    return ec2.get_console_output(InstanceId=instance_id).get("Output") or ""


def wait_marker(ec2: Any, instance_id: str, count: int = 1, timeout: float = 120) -> str:
    """Wait until the console shows the tiny image's marker C{count} times; @return: the text."""
    def enough() -> str:
        text = console_of(ec2, instance_id)
        return text if text.count(MARKER) >= count else ""
    return wait_for(enough, timeout, f"{count} marker(s) on {instance_id}'s console",
                    interval=0.25)


def state_of(ec2: Any, instance_id: str) -> str:
    [reservation] = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservation["Instances"][0]["State"]["Name"]


def wait_state(ec2: Any, instance_id: str, state: str, timeout: float = 60) -> None:
    wait_for(lambda: state_of(ec2, instance_id) == state, timeout,
             f"{instance_id} {state}", interval=0.25)


def virsh_list(cloud: AllInOne) -> list[str]:
    """@return: the names of every domain of the cloud's host libvirtd."""
    netns = cloud.netns  # type: ignore[attr-defined]
    socket = cloud.state_dir / "hosts" / netns / "sock" / "libvirt-sock"
    result = subprocess.run(["virsh", "-q", "-c", f"qemu+unix:///system?socket={socket}",
                             "list", "--all", "--name"], capture_output=True, text=True,
                            check=True)
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]
