"""
The compute host's side of volumes, over the in-memory world: hot-plug of
an exported volume into a running guest, unplug, failures recorded, and a
terminated instance's volumes released.
"""

from __future__ import annotations

import os

from twisted.trial import unittest

from pathlib import Path

from nova.compute.aoe import AoeInitiator
from nova.compute.volumes import (ComputeVolumes, UnsupportedExport, VolumeNotAttached,
                                  volume_source)
from nova.context import RequestContext
from nova.virt.errors import VirtError
from nova.virt.records import VolumeSource
from nova.volume.records import Volume, new_volume_id
from tests.support.compute import ComputeWorld, run_now
from tests.test_compute_records import a_launch

CTX = RequestContext.system()
NBD = {"kind": "nbd", "socket": "/run/nova-test/nbd.sock", "export": "vol-x"}
IQN = "iqn.2010-10.org.openstack:vol-0123456789abcdef0"
ISCSI = {"kind": "iscsi", "portal": "192.0.2.1:3260", "iqn": IQN, "lun": 1}


class VolumeSourceTests(unittest.TestCase):

    def test_nbd(self) -> None:
        self.assertEqual(volume_source(NBD), VolumeSource(kind="nbd",
                                                          path="/run/nova-test/nbd.sock",
                                                          export="vol-x"))

    def test_iscsi(self) -> None:
        """The connection info of L{IscsiExportDriver} becomes a network disk."""
        self.assertEqual(volume_source(ISCSI),
                         VolumeSource(kind="iscsi", host="192.0.2.1", port=3260, iqn=IQN,
                                      lun=1))
        self.assertEqual(volume_source({**ISCSI, "portal": "10.0.0.5:3261", "lun": 0}),
                         VolumeSource(kind="iscsi", host="10.0.0.5", port=3261, iqn=IQN,
                                      lun=0))

    def test_malformed_iscsi(self) -> None:
        for bad in ({"portal": "192.0.2.1"}, {"portal": "192.0.2.1:"},
                    {"portal": ":3260"}, {"portal": "192.0.2.1:0"},
                    {"portal": "192.0.2.1:99999"}, {"portal": "storage.example:3260"},
                    {"portal": "[::1]:3260"}, {"portal": "192.0.2.1:32 60"},
                    {"portal": 3260}, {"iqn": "iqn.2010-10.org.openstack:vol-1/0"},
                    {"iqn": "IQN.2010-10.org.openstack:x"}, {"iqn": None},
                    {"lun": -1}, {"lun": "1"}, {"lun": None}):
            export = {**ISCSI, **bad}
            with self.assertRaises(UnsupportedExport, msg=repr(bad)) as caught:
                volume_source(export)
            self.assertIn("malformed iscsi export", str(caught.exception))
        for key in ("portal", "iqn", "lun"):
            export = {k: v for k, v in ISCSI.items() if k != key}
            self.assertRaises(UnsupportedExport, volume_source, export)

    def test_malformed_nbd(self) -> None:
        self.assertRaises(UnsupportedExport, volume_source, {"kind": "nbd", "export": "v"})
        self.assertRaises(UnsupportedExport, volume_source, {**NBD, "socket": "relative"})
        self.assertRaises(UnsupportedExport, volume_source, {**NBD, "socket": None})

    def test_unsupported(self) -> None:
        self.assertRaises(UnsupportedExport, volume_source, None)
        self.assertRaises(UnsupportedExport, volume_source, {})
        self.assertRaises(UnsupportedExport, volume_source, {"kind": "rbd", "name": "x"})

    def test_aoe_says_why(self) -> None:
        with self.assertRaises(UnsupportedExport) as caught:
            volume_source({"kind": "aoe", "shelf": 1, "slot": 3, "device": "/dev/etherd/e1.3"})
        self.assertIn("aoe kernel module", str(caught.exception))
        self.assertIn("/dev/etherd", str(caught.exception))


class ComputeVolumeTests(unittest.TestCase):

    def setUp(self) -> None:
        self.world = ComputeWorld(self.mktemp())
        os.makedirs(self.world.dir)
        self.manager = self.world.manager

    async def running(self) -> str:
        machine = await self.world.add_image(data=b"disk" * 100)
        reservation, [instance] = a_launch(1, image_id=machine.image_id,
                                           created_at=self.world.clock.seconds())
        await self.world.instances.create_reservation(reservation, [instance])
        await self.world.instances.update(instance.instance_id, host="host1")
        await self.manager.run_instance(CTX, instance.instance_id)
        return instance.instance_id

    async def volume(self, export: dict | None = None) -> str:
        now = self.world.clock.seconds()
        volume = Volume(volume_id=new_volume_id(), project_id="proj", user_id="alice",
                        size=1, availability_zone="nova", created_at=now, updated_at=now)
        await self.world.volumes.create(volume)
        await self.world.volumes.update(volume.volume_id, host="vol1",
                                        export=export if export is not None else NBD)
        await self.world.volumes.transition(volume.volume_id, "created")
        return volume.volume_id

    async def attached(self) -> tuple[str, str]:
        iid = await self.running()
        vid = await self.volume()
        await self.world.volumes.attach(vid, iid, "/dev/vdc")
        await self.manager.attach_volume(CTX, iid, vid, "vdc")
        return iid, vid

    async def test_attach_and_detach(self) -> None:
        iid, vid = await self.attached()
        self.assertEqual(await self.world.driver.list_volumes(iid),
                         {"vdc": volume_source(NBD)})
        volume = await self.world.volumes.get(vid)
        self.assertEqual((volume.status, volume.attach_status), ("in-use", "attached"))
        await self.world.volumes.transition(vid, "detach", instance_id=iid)
        await self.manager.detach_volume(CTX, iid, vid)
        self.assertEqual(await self.world.driver.list_volumes(iid), {})
        volume = await self.world.volumes.get(vid)
        self.assertEqual((volume.status, volume.attach_status, volume.instance_id),
                         ("available", "detached", None))

    async def test_iscsi_attach_and_detach(self) -> None:
        """The fake driver takes an iSCSI LUN the way it takes an NBD export."""
        iid = await self.running()
        vid = await self.volume(export=ISCSI)
        await self.world.volumes.attach(vid, iid, "/dev/vdb")
        await self.manager.attach_volume(CTX, iid, vid, "vdb")
        self.assertEqual(await self.world.driver.list_volumes(iid),
                         {"vdb": volume_source(ISCSI)})
        self.assertEqual((await self.world.volumes.get(vid)).status, "in-use")
        await self.world.volumes.transition(vid, "detach", instance_id=iid)
        await self.manager.detach_volume(CTX, iid, vid)
        self.assertEqual(await self.world.driver.list_volumes(iid), {})
        self.assertEqual((await self.world.volumes.get(vid)).status, "available")

    async def test_refused_attach_is_recorded(self) -> None:
        iid = await self.running()
        vid = await self.volume()
        await self.world.volumes.attach(vid, iid, "/dev/vdb")
        self.world.driver.fail_next("attach_volume", VirtError("no slot"))
        await self.manager.attach_volume(CTX, iid, vid, "vdb")
        self.assertEqual(len(self.flushLoggedErrors(VirtError)), 1)
        volume = await self.world.volumes.get(vid)
        self.assertEqual(volume.status, "available")
        self.assertIn("no slot", volume.status_reason)
        self.assertEqual(await self.world.driver.list_volumes(iid), {})

    async def test_unsupported_export_is_recorded(self) -> None:
        iid = await self.running()
        vid = await self.volume(export={"kind": "aoe", "shelf": 1, "slot": 1})
        await self.world.volumes.attach(vid, iid, "/dev/vdb")
        await self.manager.attach_volume(CTX, iid, vid, "vdb")
        self.assertEqual(len(self.flushLoggedErrors(UnsupportedExport)), 1)
        volume = await self.world.volumes.get(vid)
        self.assertEqual(volume.status, "available")
        self.assertIn("aoe kernel module", volume.status_reason)

    async def test_refused_detach_stays_attached_unless_forced(self) -> None:
        iid, vid = await self.attached()
        await self.world.volumes.transition(vid, "detach", instance_id=iid)
        self.world.driver.fail_next("detach_volume", VirtError("busy"))
        await self.manager.detach_volume(CTX, iid, vid)
        self.assertEqual(len(self.flushLoggedErrors(VirtError)), 1)
        self.assertEqual((await self.world.volumes.get(vid)).attach_status, "attached")
        await self.world.volumes.transition(vid, "force_detach", instance_id=iid)
        self.world.driver.fail_next("detach_volume", VirtError("busy"))
        await self.manager.detach_volume(CTX, iid, vid, force=True)
        self.assertEqual((await self.world.volumes.get(vid)).status, "available")

    async def test_terminate_releases_volumes(self) -> None:
        iid, vid = await self.attached()
        await self.world.instances.transition(iid, "terminate")
        await self.manager.terminate_instance(CTX, iid)
        volume = await self.world.volumes.get(vid)
        self.assertEqual((volume.status, volume.instance_id), ("available", None))

    async def test_not_attaching_is_left_alone(self) -> None:
        iid = await self.running()
        vid = await self.volume()
        await self.manager.attach_volume(CTX, iid, vid, "vdb")
        self.assertEqual(await self.world.driver.list_volumes(iid), {})
        self.assertEqual((await self.world.volumes.get(vid)).status, "available")

    async def test_reattach(self) -> None:
        """The guest lost its disk (a host restart): reattach plugs it back, once."""
        iid, vid = await self.attached()
        await self.world.driver.detach_volume(iid, "vdc")
        self.assertTrue(await self.manager.reattach_volume(CTX, iid, vid))
        self.assertEqual(await self.world.driver.list_volumes(iid),
                         {"vdc": volume_source(NBD)})
        self.assertFalse(await self.manager.reattach_volume(CTX, iid, vid))
        volume = await self.world.volumes.get(vid)
        self.assertEqual((volume.status, volume.attach_status), ("in-use", "attached"))

    async def test_reattach_refuses_a_volume_not_attached(self) -> None:
        iid = await self.running()
        vid = await self.volume()
        with self.assertRaises(VolumeNotAttached):
            await self.manager.reattach_volume(CTX, iid, vid)
        self.assertEqual(await self.world.driver.list_volumes(iid), {})

    async def test_aoe_attach_through_the_initiator(self) -> None:
        """An AoE export becomes the block device the host's aoe module made."""
        etherd, module = Path(self.mktemp()).absolute(), Path(self.mktemp()).absolute()
        etherd.mkdir()
        module.mkdir()
        (etherd / "e1.3").touch()
        volumes = ComputeVolumes(self.world.volumes, self.world.driver,
                                 aoe=AoeInitiator(self.world.clock, run_now, etherd_dir=etherd,
                                                  module_dir=module))
        iid = await self.running()
        vid = await self.volume(export={"kind": "aoe", "shelf": 1, "slot": 3,
                                        "device": "/dev/etherd/e1.3"})
        await self.world.volumes.attach(vid, iid, "/dev/vdb")
        await volumes.attach(iid, vid)
        self.assertEqual(await self.world.driver.list_volumes(iid),
                         {"vdb": VolumeSource(kind="block", path=str(etherd / "e1.3"))})
        self.assertEqual((await self.world.volumes.get(vid)).attach_status, "attached")

    async def test_volumes_stay_attached_across_stop_and_start(self) -> None:
        """As EBS volumes do: the started guest gets them again, at the same device."""
        iid, vid = await self.attached()
        await self.world.instances.transition(iid, "stop")
        await self.manager.stop_instance(CTX, iid)
        self.assertEqual(await self.world.driver.list_volumes(iid), {})  # gone with the stop
        self.assertEqual((await self.world.volumes.get(vid)).attach_status, "attached")
        await self.world.instances.transition(iid, "start")
        await self.manager.start_instance(CTX, iid)
        self.assertEqual((await self.world.instances.get(iid)).state, "running")
        self.assertEqual(await self.world.driver.list_volumes(iid),
                         {"vdc": volume_source(NBD)})

    async def test_a_volume_that_cannot_be_plugged_again_does_not_stop_the_start(self) -> None:
        iid, vid = await self.attached()
        await self.world.instances.transition(iid, "stop")
        await self.manager.stop_instance(CTX, iid)
        await self.world.volumes.update(vid, export={"kind": "nbd"})  # its export is broken
        await self.world.instances.transition(iid, "start")
        await self.manager.start_instance(CTX, iid)
        self.assertEqual(len(self.flushLoggedErrors(UnsupportedExport)), 1)
        self.assertEqual((await self.world.instances.get(iid)).state, "running")
        self.assertEqual((await self.world.volumes.get(vid)).attach_status, "attached")
