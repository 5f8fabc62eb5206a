"""
End to end: real guests of the tiny image under TCG (KVM where the host has
it), on a compute host that is a network namespace with its own libvirtd,
driven through the EC2 API with boto3 and boto 2.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from twisted.trial import unittest

from tests.support.allinone import ROOT
from tests.support.clients import Tenant, credentials_env
from tests.support.images import raw_disk
from tests.support.guests import (MARKER, console_of, e2e_cloud, remove_netns, state_of,
                                  tiny_ami, virsh_list, wait_for, wait_marker, wait_state)

_cloud = None


def cloud():
    """@return: the e2e all-in-one shared by this module's tests."""
    global _cloud
    if _cloud is None:
        import atexit
        made = e2e_cloud()
        try:
            made.start(timeout=300)
        except BaseException:
            remove_netns(made.netns)
            made.remove()
            raise

        def stop() -> None:
            made.stop()
            remove_netns(made.netns)
            made.remove()
        atexit.register(stop)
        _cloud = made
    return _cloud


def _require_machine() -> None:
    for program in ("qemu-system-x86_64", "libvirtd", "qemu-img"):
        if shutil.which(program) is None and shutil.which(program, path="/usr/sbin") is None:
            raise unittest.SkipTest(f"{program} is not installed: no real guests here")


class GuestTests(unittest.TestCase):

    def setUp(self) -> None:
        _require_machine()
        self.cloud = cloud()
        self.tenant = Tenant(self.cloud)
        self.addCleanup(self.tenant.remove)
        self.ec2 = self.tenant.boto3()
        self.ami = tiny_ami(self.cloud)

    def launch(self, count: int = 1) -> list[str]:
        reservation = self.ec2.run_instances(ImageId=self.ami, MinCount=count, MaxCount=count,
                                             InstanceType="m1.tiny")
        ids = [i["InstanceId"] for i in reservation["Instances"]]
        self.addCleanup(self._terminate, ids)
        return ids

    def _terminate(self, ids: list[str]) -> None:
        self.ec2.terminate_instances(InstanceIds=ids)
        for instance_id in ids:
            wait_state(self.ec2, instance_id, "terminated")

    def test_run_reboot_stop_start_terminate(self) -> None:
        [instance_id] = self.launch()
        wait_state(self.ec2, instance_id, "running")
        wait_marker(self.ec2, instance_id)
        self.assertIn(instance_id, virsh_list(self.cloud))

        self.ec2.reboot_instances(InstanceIds=[instance_id])
        wait_marker(self.ec2, instance_id, count=2)
        self.assertEqual(state_of(self.ec2, instance_id), "running")

        self.ec2.stop_instances(InstanceIds=[instance_id])
        wait_state(self.ec2, instance_id, "stopped")
        self.ec2.start_instances(InstanceIds=[instance_id])
        wait_state(self.ec2, instance_id, "running")
        wait_marker(self.ec2, instance_id, count=3)

        self.ec2.terminate_instances(InstanceIds=[instance_id])
        wait_state(self.ec2, instance_id, "terminated")
        self.assertNotIn(instance_id, virsh_list(self.cloud))
        self.assertFalse((self.cloud.state_dir / "instances" / instance_id).exists())

    def test_ten_at_once(self) -> None:
        ids = self.launch(10)
        for instance_id in ids:
            wait_marker(self.ec2, instance_id, timeout=300)
            # the guest may print its marker before nova records it running
            wait_state(self.ec2, instance_id, "running")
        self.ec2.terminate_instances(InstanceIds=ids)
        for instance_id in ids:
            wait_state(self.ec2, instance_id, "terminated")
        self.assertEqual(set(ids) & set(virsh_list(self.cloud)), set())

    def test_boto2(self) -> None:
        conn = self.tenant.boto2()
        reservation = conn.run_instances(self.ami, instance_type="m1.tiny")
        [instance] = reservation.instances
        self.addCleanup(self._terminate, [instance.id])
        wait_for(lambda: MARKER in (conn.get_console_output(instance.id).output or b"")
                 .decode("utf-8", "replace"), 120, "marker via boto 2")
        # the marker may come before nova records the instance running
        wait_for(lambda: instance.update() == "running", 60, "running via boto 2")
        conn.terminate_instances([instance.id])
        wait_for(lambda: instance.update() == "terminated", 60, "terminated via boto 2")

    def test_console_before_boot_is_empty_or_partial(self) -> None:
        [instance_id] = self.launch()
        text = console_of(self.ec2, instance_id)
        self.assertIsInstance(text, str)
        wait_marker(self.ec2, instance_id)


class BundleTests(unittest.TestCase):
    """A disk bundled with nova-bundle-image, registered, and booted."""

    def test_bundle_registered_and_booted(self) -> None:
        _require_machine()
        the_cloud = cloud()
        tenant = Tenant(the_cloud)
        self.addCleanup(tenant.remove)
        folder = Path(self.mktemp()).resolve()
        env = credentials_env(the_cloud, tenant, folder / "creds")
        disk = folder / "disk.img"
        disk.write_bytes(raw_disk(4 * 1024 * 1024))
        ec2 = tenant.boto3()
        tiny = ec2.describe_images(ImageIds=[tiny_ami(the_cloud)])["Images"][0]
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "EC2_"))}
        environ.update(env)
        result = subprocess.run(
            [str(ROOT / "bin" / "nova-bundle-image"), "-i", str(disk), "--name", "bundled disk",
             "--kernel-id", tiny["KernelId"], "--ramdisk-id", tiny["RamdiskId"]],
            env=environ, capture_output=True, text=True, timeout=300)
        self.assertEqual(result.returncode, 0, result.stderr)
        image_id = result.stdout.split("\t")[1].strip()
        self.addCleanup(ec2.deregister_image, ImageId=image_id)

        def available() -> bool:
            image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
            self.assertNotEqual(image["State"], "failed", image.get("StateReason"))
            return image["State"] == "available"
        wait_for(available, 120, f"{image_id} available")
        [instance] = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1,
                                       InstanceType="m1.tiny")["Instances"]
        instance_id = instance["InstanceId"]
        self.assertEqual((instance["KernelId"], instance["RamdiskId"]),
                         (tiny["KernelId"], tiny["RamdiskId"]))
        wait_marker(ec2, instance_id)
        ec2.terminate_instances(InstanceIds=[instance_id])
        wait_state(ec2, instance_id, "terminated")


def guest_ssh(netns: str, key: Path, address: str, command: str) -> str:
    """@return: C{command}'s output in the guest, over SSH from its host namespace."""
    def attempt() -> str | None:
        done = subprocess.run(
            ["ip", "netns", "exec", netns, "ssh", "-i", str(key), "-o", "BatchMode=yes",
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "ConnectTimeout=3", "-o", "LogLevel=ERROR", f"root@{address}", command],
            capture_output=True, text=True, timeout=60)
        return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None
    return wait_for(attempt, 60, f"ssh {address} {command!r}", interval=0.5)


class RestartTests(unittest.TestCase):
    """nova restarted under running guests adopts them, their network untouched."""

    def test_restart_adopts_running_guests(self) -> None:
        _require_machine()
        first = e2e_cloud(keep_guests=True)
        self.addCleanup(first.remove)
        self.addCleanup(remove_netns, first.netns)
        first.start(timeout=300)
        self.addCleanup(first.stop)
        env = first.admin_env()
        from tests.support.clients import boto3_ec2
        ec2 = boto3_ec2(first.ec2_url, env["EC2_ACCESS_KEY"], env["EC2_SECRET_KEY"])
        key = first.base / "restart-key.pem"
        key.write_text(ec2.create_key_pair(KeyName="restart")["KeyMaterial"])
        key.chmod(0o600)
        ec2.authorize_security_group_ingress(GroupName="default", IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
            "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        ami = tiny_ami(first)
        [instance] = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, KeyName="restart",
                                       InstanceType="m1.tiny")["Instances"]
        instance_id = instance["InstanceId"]
        wait_marker(ec2, instance_id)
        [reservation] = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        address = reservation["Instances"][0]["PrivateIpAddress"]
        boot_id = guest_ssh(first.netns, key, address, "cat /proc/sys/kernel/random/boot_id")
        first.stop()
        first.start(timeout=300)
        self.assertEqual(state_of(ec2, instance_id), "running")
        self.assertIn(MARKER, console_of(ec2, instance_id))
        self.assertIn(instance_id, virsh_list(first))
        # the same boot, still reachable by its address, its filter rebuilt
        self.assertEqual(guest_ssh(first.netns, key, address,
                                   "cat /proc/sys/kernel/random/boot_id"), boot_id)
        ec2.terminate_instances(InstanceIds=[instance_id])
        wait_state(ec2, instance_id, "terminated")
        self.assertNotIn(instance_id, virsh_list(first))
