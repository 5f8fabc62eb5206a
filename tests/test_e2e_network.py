"""
End to end networking: real guests of the tiny image on their projects'
networks in a host namespace (bridges, VXLAN, dnsmasq, iptables, the
metadata proxy), driven through the EC2 API; SSH and ping run from inside
the host namespace, from inside guests, and from an "outside" namespace
that stands for the world beyond the elastic IPs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

from twisted.trial import unittest

from tests.support.clients import Tenant
from tests.support.guests import (console_of, e2e_cloud, remove_netns, tiny_ami, wait_for,
                                  wait_marker, wait_state)

#: the "outside" link: the host namespace's public side and the outside namespace
PUBLIC_HOST, PUBLIC_OUTSIDE = "198.51.100.1", "198.51.100.2"
FLOATING = "203.0.113.16/28"

_world: dict[str, Any] = {}


def _ip(*argv: str, netns: str | None = None) -> None:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    subprocess.run([*prefix, "ip", *argv], check=True, capture_output=True)


def make_outside(host_ns: str, outside_ns: str) -> None:
    """A host namespace (made before nova starts) joined by a veth to an outside one."""
    subprocess.run(["ip", "netns", "add", host_ns], check=True, capture_output=True)
    subprocess.run(["ip", "netns", "add", outside_ns], check=True, capture_output=True)
    _ip("link", "add", "novapub0", "netns", host_ns, "type", "veth", "peer", "name",
        "outside0", "netns", outside_ns)
    _ip("addr", "add", f"{PUBLIC_HOST}/24", "dev", "novapub0", netns=host_ns)
    _ip("link", "set", "novapub0", "up", netns=host_ns)
    _ip("link", "set", "lo", "up", netns=outside_ns)
    _ip("addr", "add", f"{PUBLIC_OUTSIDE}/24", "dev", "outside0", netns=outside_ns)
    _ip("link", "set", "outside0", "up", netns=outside_ns)
    _ip("route", "add", FLOATING, "via", PUBLIC_HOST, netns=outside_ns)


def world() -> dict[str, Any]:
    """@return: the cloud (and outside namespace) shared by this module's tests."""
    if not _world:
        import atexit
        cloud = e2e_cloud(network=f"public_interface = novapub0\nfloating_range = {FLOATING}\n")
        outside = "nova-out-" + uuid.uuid4().hex[:8]
        try:
            make_outside(cloud.netns, outside)  # type: ignore[attr-defined]
            cloud.start(timeout=300)
        except BaseException:
            remove_netns(outside)
            remove_netns(cloud.netns)  # type: ignore[attr-defined]
            cloud.remove()
            raise

        def stop() -> None:
            cloud.stop()
            remove_netns(cloud.netns)  # type: ignore[attr-defined]
            remove_netns(outside)
            cloud.remove()
        atexit.register(stop)
        _world.update(cloud=cloud, outside=outside)
    return _world


def _require_machine() -> None:
    for program in ("qemu-system-x86_64", "libvirtd", "qemu-img", "dnsmasq", "ssh"):
        if shutil.which(program) is None and shutil.which(program, path="/usr/sbin") is None:
            raise unittest.SkipTest(f"{program} is not installed: no real guests here")
    if os.geteuid() != 0:
        raise unittest.SkipTest("guest networking needs root (namespaces, iptables)")


class Project:
    """A tenant with a key pair written to a private file, and its guests."""

    def __init__(self, test: unittest.TestCase, cloud: Any) -> None:
        self.tenant = Tenant(cloud, role="netadmin")
        test.addCleanup(self.tenant.remove)
        self.ec2: Any = self.tenant.boto3()
        self.folder = Path(tempfile.mkdtemp(prefix="nova-e2e-key-"))
        test.addCleanup(shutil.rmtree, self.folder, True)
        made = self.ec2.create_key_pair(KeyName="e2e")
        self.key = self.folder / "key.pem"
        self.key.write_text(made["KeyMaterial"])
        self.key.chmod(0o600)
        self.test = test
        self.cloud = cloud

    def launch(self, count: int = 1, user_data: str = "") -> list[str]:
        reservation = self.ec2.run_instances(
            ImageId=tiny_ami(self.cloud), MinCount=count, MaxCount=count,
            InstanceType="m1.tiny", KeyName="e2e", UserData=user_data)
        ids = [i["InstanceId"] for i in reservation["Instances"]]
        self.test.addCleanup(self.terminate, ids)
        for instance_id in ids:
            wait_marker(self.ec2, instance_id, timeout=180)
        return ids

    def terminate(self, ids: list[str]) -> None:
        self.ec2.terminate_instances(InstanceIds=ids)
        for instance_id in ids:
            wait_state(self.ec2, instance_id, "terminated")

    def private_ip(self, instance_id: str) -> str:
        [reservation] = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        return reservation["Instances"][0]["PrivateIpAddress"]

    def open_ssh(self) -> None:
        self.ec2.authorize_security_group_ingress(
            GroupName="default", IpPermissions=[{
                "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])

    def ssh(self, address: str, command: str, netns: str | None = None,
            timeout: int = 3) -> subprocess.CompletedProcess[str]:
        """Run C{command} in the guest at C{address} over SSH from C{netns} (the host's)."""
        netns = netns or self.cloud.netns
        return subprocess.run(
            ["ip", "netns", "exec", netns, "ssh", "-i", str(self.key), "-o", "BatchMode=yes",
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", f"ConnectTimeout={timeout}", "-o", "LogLevel=ERROR",
             f"root@{address}", command], capture_output=True, text=True, timeout=60)

    def ssh_ok(self, address: str, command: str, netns: str | None = None) -> str:
        """@return: C{command}'s output once SSH to C{address} works (the guest is up)."""
        def attempt() -> str | None:
            done = self.ssh(address, command, netns)
            return done.stdout if done.returncode == 0 else None
        return wait_for(attempt, 60, f"ssh {address} {command!r}", interval=0.5)


class NetworkTests(unittest.TestCase):

    def setUp(self) -> None:
        _require_machine()
        self.world = world()
        self.cloud = self.world["cloud"]

    def test_dhcp_metadata_and_ssh_with_the_key_pair(self) -> None:
        """
        Each guest gets its address by DHCP and reads its own metadata and
        user-data (and no other's); SSH with the key pair works once port
        22 is authorized and not before.
        """
        project = Project(self, self.cloud)
        first, second = project.launch(2, user_data="#!/bin/sh\necho USERDATA-RAN\n")
        addresses = {i: project.private_ip(i) for i in (first, second)}
        for instance_id, address in addresses.items():
            self.assertTrue(address.startswith("10.20."), address)
            text = console_of(project.ec2, instance_id)
            self.assertIn(f"instance-id={instance_id} address={address}", text)
            self.assertIn("USERDATA-RAN", text)

        refused = project.ssh(addresses[first], "true")
        self.assertNotEqual(refused.returncode, 0, "ssh worked before port 22 was authorized")

        project.open_ssh()
        for instance_id, address in addresses.items():
            seen = project.ssh_ok(
                address, "wget -q -O - http://169.254.169.254/latest/meta-data/instance-id")
            self.assertEqual(seen, instance_id)
            key = project.ssh_ok(address, "wget -q -O - http://169.254.169.254/latest/"
                                          "meta-data/public-keys/0/openssh-key")
            self.assertTrue(key.startswith("ssh-rsa "), key)
            data = project.ssh_ok(address, "wget -q -O - http://169.254.169.254/latest/user-data")
            self.assertIn("USERDATA-RAN", data)
            local = project.ssh_ok(
                address, "wget -q -O - http://169.254.169.254/latest/meta-data/local-ipv4")
            self.assertEqual(local, address)

        # the second guest stops (its address stays allocated, its metadata
        # served); the first takes its address and asks as the second: the
        # host drops what the first's tap sends with another source address
        project.ec2.stop_instances(InstanceIds=[second])
        wait_state(project.ec2, second, "stopped")
        gateway = addresses[second].rsplit(".", 1)[0] + ".1"
        first_mac = project.ssh_ok(addresses[first], "cat /sys/class/net/eth0/address")
        spoof = project.ssh(addresses[first], (
            f"ip addr add {addresses[second]}/32 dev eth0 && "
            f"ip route replace 169.254.169.254 via {gateway} dev eth0 src {addresses[second]} "
            f"&& arping -U -c 2 -I eth0 -s {addresses[second]} {addresses[second]} >/dev/null "
            "; timeout 15 wget -q -O - http://169.254.169.254/latest/meta-data/instance-id; "
            "echo END"), timeout=10)
        self.assertEqual(spoof.returncode, 0, spoof.stderr)
        self.assertNotIn(second, spoof.stdout)
        self.assertTrue(spoof.stdout.strip().endswith("END"), spoof.stdout)
        # nor did its ARP claiming the second's address teach the host
        # (the frames' check; proven with a control in test_network_host_real)
        neighbour = subprocess.run(
            ["ip", "netns", "exec", self.cloud.netns, "ip", "neigh", "show",  # type: ignore
             addresses[second]], capture_output=True, text=True, check=True).stdout
        self.assertNotIn(first_mac.strip(), neighbour)

    def test_projects_are_isolated(self) -> None:
        """Two guests of one project reach each other; a guest of another reaches neither."""
        alpha, beta = Project(self, self.cloud), Project(self, self.cloud)
        a1, a2 = alpha.launch(2)
        [b1] = beta.launch(1)
        alpha.open_ssh()
        beta.open_ssh()
        ip_a1, ip_a2, ip_b1 = alpha.private_ip(a1), alpha.private_ip(a2), beta.private_ip(b1)
        self.assertNotEqual(ip_a1.rsplit(".", 1)[0], ip_b1.rsplit(".", 1)[0])
        # up to 5 tries: one echo (with its ARP) may take longer than 2 s
        # between two TCG guests on a loaded host
        ping = ("for try in 1 2 3 4 5; do ping -c 1 -W 2 {} >/dev/null && echo REACHED && "
                "exit 0; done; echo UNREACHABLE")
        self.assertEqual(alpha.ssh_ok(ip_a1, ping.format(ip_a2)).strip(), "REACHED")
        self.assertEqual(alpha.ssh_ok(ip_a2, ping.format(ip_a1)).strip(), "REACHED")
        self.assertEqual(beta.ssh_ok(ip_b1, ping.format(ip_a1)).strip(), "UNREACHABLE")
        self.assertEqual(beta.ssh_ok(ip_b1, ping.format(ip_a2)).strip(), "UNREACHABLE")

    def test_elastic_ip_from_outside(self) -> None:
        """An elastic IP makes a guest reachable from outside; disassociation stops that."""
        project = Project(self, self.cloud)
        [instance_id] = project.launch(1)
        project.open_ssh()
        address = project.ec2.allocate_address(Domain="standard")["PublicIp"]
        self.addCleanup(project.ec2.release_address, PublicIp=address)
        project.ec2.associate_address(PublicIp=address, InstanceId=instance_id)
        [reservation] = project.ec2.describe_instances(
            InstanceIds=[instance_id])["Reservations"]
        self.assertEqual(reservation["Instances"][0].get("PublicIpAddress"), address)
        outside = self.world["outside"]
        seen = project.ssh_ok(address, "wget -q -O - http://169.254.169.254/latest/"
                                       "meta-data/public-ipv4", netns=outside)
        self.assertEqual(seen, address)
        project.ec2.disassociate_address(PublicIp=address)
        self.assertNotEqual(project.ssh(address, "true", netns=outside).returncode, 0)

    def test_terminate_removes_what_it_made(self) -> None:
        """A terminated instance leaves no filter chain, DHCP entry or NAT behind."""
        project = Project(self, self.cloud)
        [instance_id] = project.launch(1)
        address = project.private_ip(instance_id)
        elastic = project.ec2.allocate_address()["PublicIp"]
        project.ec2.associate_address(PublicIp=elastic, InstanceId=instance_id)
        netns = self.cloud.netns

        def host_state() -> str:
            saved = [subprocess.run(["ip", "netns", "exec", netns, *save, "-t", t],
                                    capture_output=True, text=True, check=True).stdout
                     for save, t in ((["iptables-save"], "filter"), (["iptables-save"], "nat"),
                                     (["ebtables-save"], "filter"))]
            hosts = [p.read_text() for p in
                     (self.cloud.state_dir / "hosts" / netns / "network").glob("*/hosts")]
            return "\n".join(saved + hosts)

        before = host_state()
        self.assertEqual(before.count(f":nova-{instance_id} "), 2)  # iptables' and ebtables'
        self.assertIn(f"nova-{instance_id}", before)
        self.assertIn(f"nova-fdnat-{elastic}", before)
        self.assertIn(f",{address}\n", before)
        project.terminate([instance_id])
        after = host_state()
        self.assertNotIn(instance_id, after)
        self.assertNotIn(elastic, after)
        self.assertNotIn(f",{address}\n", after)
        # the address stays the project's until released
        [held] = project.ec2.describe_addresses(PublicIps=[elastic])["Addresses"]
        self.assertEqual(held.get("InstanceId", ""), "")
        project.ec2.release_address(PublicIp=elastic)
