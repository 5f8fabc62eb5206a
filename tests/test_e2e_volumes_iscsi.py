"""
End to end iSCSI volumes: a cloud whose nova-volume exports over iSCSI
(tgtd, C{[volume] driver = iscsi}) hot-plugs a volume into a real guest of
the tiny image as a network disk that QEMU opens itself (libiscsi); the
guest writes a pattern, the volume is unplugged (QEMU logs out), the
pattern is in the backing file and the guest reads it back after a second
attach; deleting the volume removes its target.

The portal is 127.0.0.1 inside the cloud's host namespace: tgtd, libvirtd
and QEMU all run there, so no iSCSI traffic leaves the namespace the test
made. This cloud is its own (the NBD tests' cloud cannot change its export
driver) and starts in about as long as one guest takes to boot.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

from twisted.trial import unittest

from nova.virt.libvirt import domain_xml
from nova.virt.records import VolumeSource
from nova.volume.exports import tgt
from tests.support.allinone import AllInOne
from tests.support.guests import e2e_cloud, remove_netns, wait_for
from tests.test_e2e_network import Project, _require_machine
from tests.test_e2e_volumes import VolumeSteps

#: this run's tgtd control port ([volume] iscsi_control_port): its management
#: socket is a path shared by every namespace, so two runs must not share one
CONTROL_PORT = 1000 + os.getpid() % 30000
TGTD_RUN_DIR = Path("/var/run/tgtd")
PORTAL = "127.0.0.1"

_world: dict[str, Any] = {}


def _tgtadm_show(control_port: int = CONTROL_PORT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*_sbin("tgtadm"), "-C", str(control_port), "--lld", "iscsi",
                           "--mode", "target", "--op", "show"], capture_output=True, text=True)


def _sbin(program: str) -> list[str]:
    found = shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")
    return [found or program]


def _forget_tgtd_sockets() -> None:
    # a tgtd killed with its namespace leaves its socket files behind
    for name in (f"socket.{CONTROL_PORT}", f"socket.{CONTROL_PORT}.lock"):
        (TGTD_RUN_DIR / name).unlink(missing_ok=True)


def _require_iscsi() -> None:
    for program in ("tgtd", "tgtadm"):
        if not _sbin(program)[0].startswith("/"):
            raise unittest.SkipTest(f"{program} is not installed (tgt): no iSCSI exports here")
    formats = subprocess.run(["qemu-img", "--help"], capture_output=True, text=True).stdout
    if " iscsi" not in formats:
        raise unittest.SkipTest("QEMU has no iSCSI block driver (qemu-block-extra; run "
                                "tools/install-debian-packages)")


def world() -> AllInOne:
    """@return: the iSCSI cloud shared by this module's tests, started on first use."""
    if not _world:
        if _tgtadm_show().returncode == 0:
            raise AssertionError(
                f"a tgtd already answers on control port {CONTROL_PORT} "
                f"({TGTD_RUN_DIR}/socket.{CONTROL_PORT}): the all-in-one's iSCSI driver would "
                f"use it; stop it (tgtadm -C {CONTROL_PORT} --mode system --op delete) and run "
                "again")
        cloud = e2e_cloud(volume=f"driver = iscsi\niscsi_portal_address = {PORTAL}\n"
                                 f"iscsi_control_port = {CONTROL_PORT}\n")
        netns = cloud.netns  # type: ignore[attr-defined]

        def stop() -> None:
            cloud.stop()
            remove_netns(netns)  # tgtd goes with it
            _forget_tgtd_sockets()
            cloud.remove()
        try:
            cloud.start(timeout=300)
        except BaseException:
            stop()
            raise
        atexit.register(stop)
        _world["cloud"] = cloud
    return _world["cloud"]


class IscsiVolumeTests(VolumeSteps, unittest.TestCase):

    def setUp(self) -> None:
        _require_machine()
        _require_iscsi()
        self.cloud = world()
        self.project = Project(self, self.cloud)
        self.ec2 = self.project.ec2

    def target(self, volume_id: str) -> tgt.TgtTarget | None:
        """@return: the volume's target as tgtd shows it, or C{None}."""
        shown = _tgtadm_show()
        self.assertEqual(shown.returncode, 0, shown.stderr)
        name = tgt.iqn(volume_id)
        return next((t for t in tgt.parse_show(shown.stdout) if t.iqn == name), None)

    def test_attach_write_detach_read_delete(self) -> None:
        [instance_id] = self.project.launch(1)
        self.project.open_ssh()
        ip = self.project.private_ip(instance_id)
        pattern = f"NOVA-ISCSI-{uuid.uuid4().hex}"
        volume_id = self.volume(Size=1)
        backing = self.cloud.state_dir / "volumes" / "files" / f"{volume_id}.img"

        exported = self.target(volume_id)
        assert exported is not None, f"{volume_id} has no iSCSI target"
        self.assertEqual((exported.luns.get(1), exported.sessions), (str(backing), 0))

        self.attach(volume_id, instance_id, "/dev/vdb")
        # QEMU itself is the initiator: one session, from the host namespace
        self.assertEqual(self.target(volume_id).sessions, 1)  # type: ignore[union-attr]
        # and libvirt's own XML of the live guest reads back as what nova attached
        self.assertEqual(domain_xml.parse_volumes(self.domain_xml(instance_id)),
                         {"vdb": VolumeSource(kind="iscsi", host=PORTAL, port=3260,
                                              iqn=tgt.iqn(volume_id), lun=1)})
        self.assertEqual(self.project.ssh_ok(ip, "test -b /dev/vdb && echo yes").strip(), "yes")
        self.project.ssh_ok(ip, f"printf {pattern} > /dev/vdb && sync && echo ok")
        self.detach(volume_id)
        # libvirt may report the detach done before the guest has let go of the
        # disk: the disk must leave the guest, however long the guest takes
        gone = self.project.ssh_ok(ip, "test ! -b /dev/vdb && echo gone")
        self.assertEqual(gone.strip(), "gone")
        wait_for(lambda: self.target(volume_id).sessions == 0,  # type: ignore[union-attr]
                 30, f"QEMU logged out of {volume_id}'s target", interval=0.25)
        with open(backing, "rb") as f:
            self.assertEqual(f.read(len(pattern)).decode(), pattern)

        # a second attach, at another device name: the guest's kernel names
        # its one added disk vdb whatever the device asked for (as on EC2)
        self.attach(volume_id, instance_id, "/dev/vdc")
        # retried until the guest's kernel has found the hot-plugged disk
        read = self.project.ssh_ok(
            ip, f"d=$(ls /dev/vd[b-z] 2>/dev/null | head -1); test -b \"$d\" && "
                f"head -c {len(pattern)} $d")
        self.assertEqual(read, pattern)
        self.detach(volume_id)

        # deleted: the record, the target and the backing file go
        self.ec2.delete_volume(VolumeId=volume_id)
        wait_for(lambda: not self.exists(volume_id), 60, f"{volume_id} deleted")
        self.assertIsNone(self.target(volume_id))
        self.assertFalse(os.path.exists(backing))

    def domain_xml(self, instance_id: str) -> str:
        """@return: the live XML of a guest, from the host namespace's libvirtd."""
        netns = self.cloud.netns  # type: ignore[attr-defined]
        socket = self.cloud.state_dir / "hosts" / netns / "sock" / "libvirt-sock"
        return subprocess.run(["virsh", "-q", "-c", f"qemu+unix:///system?socket={socket}",
                               "dumpxml", instance_id], capture_output=True, text=True,
                              check=True).stdout

