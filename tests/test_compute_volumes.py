"""
The compute host's side of volumes, over the in-memory world: hot-plug of
an exported volume into a running guest, unplug, failures recorded, and a
terminated instance's volumes released.
"""

from __future__ import annotations

import os

from twisted.trial import unittest

from nova.compute.volumes import UnsupportedExport, volume_source
from nova.context import RequestContext
from nova.virt.errors import VirtError
from nova.virt.records import VolumeSource
from nova.volume.records import Volume, new_volume_id
from tests.support.compute import ComputeWorld
from tests.test_compute_records import a_launch

CTX = RequestContext.system()
NBD = {"kind": "nbd", "socket": "/run/nova-test/nbd.sock", "export": "vol-x"}


class VolumeSourceTests(unittest.TestCase):

    def test_nbd(self) -> None:
        self.assertEqual(volume_source(NBD), VolumeSource(kind="nbd",
                                                          path="/run/nova-test/nbd.sock",
                                                          export="vol-x"))

    def test_unsupported(self) -> None:
        self.assertRaises(UnsupportedExport, volume_source, None)
        self.assertRaises(UnsupportedExport, volume_source,
                          {"kind": "iscsi", "portal": "192.0.2.1:3260"})


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
        self.assertEqual((await self.world.volumes.get(vid)).status, "available")

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
