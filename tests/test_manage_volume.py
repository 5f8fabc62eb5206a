"""
C{nova-manage volume list|delete|reattach}, against Redis at 127.0.0.1:6379
(under a key prefix of each test's own) with the in-process bus standing in
for RabbitMQ: a real nova-volume manager (in-memory storage and exports)
answers on C{volume.vol1}, a recording compute host on C{compute.c1}.

Also the pieces they added elsewhere: L{VolumeRepository.remove_abandoned}
(in memory and on Redis), C{ComputeManager.reattach_volume} and
C{ComputeAPI.reattach_volume}. The last class runs C{bin/nova-manage} itself
for the wiring, the output and the exit codes.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from typing import Any

from twisted.internet import task, utils
from twisted.trial import unittest

from nova.compute.manager import ComputeManager
from nova.compute.quota import QuotaRepository
from nova.compute.repository import InstanceRepository, InvalidInstanceIDNotFound
from nova.compute.rpcapi import ComputeAPI
from nova.config import NovaConfig, RpcConfig
from nova.context import RequestContext
from nova.datastore import keys
from nova.datastore.interfaces import IDatastore
from nova.datastore.memory import MemoryDatastore
from nova.datastore.records import Service
from nova.datastore.repositories import ServiceRepository
from nova.rpc import Dispatcher, expose
from nova.rpc.local import LocalBroker
from nova.server import NovaServer
from nova.cmd.manage_volume import DeleteFailed, HostUnavailable, VolumeCommands, VolumeRefused
from nova.volume import states
from nova.volume.backing import MemoryBacking
from nova.volume.exports.fake import FakeExportDriver
from nova.volume.exports.interface import ExportInUse
from nova.volume.manager import VolumeManager
from nova.volume.records import InvalidVolumeNotFound, Volume
from nova.volume.repository import SnapshotRepository, VolumeRepository
from tests.support.allinone import ROOT
from tests.support.compute import run_now
from tests.test_compute_records import a_launch
from tests.test_datastore_contract import MemoryHarness, RedisHarness
from tests.test_volume_records import a_volume

CTX = RequestContext.system()


async def no_store_client() -> Any:
    raise AssertionError("no snapshot work in these tests")


class RecordingCompute:
    """A compute host's manager as far as reattach goes: it records what it is asked."""

    def __init__(self) -> None:
        self.reattached: list[tuple[str, str]] = []

    @expose
    async def reattach_volume(self, context: RequestContext, instance_id: str,
                              volume_id: str) -> bool:
        self.reattached.append((instance_id, volume_id))
        return len(self.reattached) == 1  # plugged the first time, present after


class CloudMixin:
    """Volumes, instances and heartbeats in C{self.store}, and ways to make them."""

    store: IDatastore
    clock: task.Clock
    made = 0

    def repositories(self) -> None:
        self.quotas = QuotaRepository(self.store)
        self.volumes = VolumeRepository(self.store, self.clock, self.quotas)
        self.instances = InstanceRepository(self.store, self.clock, self.quotas)

    async def heartbeat(self, host: str, binary: str, live: bool = True) -> None:
        """Report C{binary} on C{host}: just now (live), or at the epoch (down)."""
        from twisted.internet import reactor

        clock = reactor if live else task.Clock()
        await ServiceRepository(self.store, clock).heartbeat(Service(
            host=host, binary=binary, topic=binary.split("-")[1], zone="nova",
            updated_at=0, report_count=0, started_at=0))

    async def creating(self, host: str | None = None, size: int = 10,
                       project_id: str = "proj") -> Volume:
        """@return: a new C{creating} volume (made after the ones before: lists keep order)."""
        self.made += 1
        volume = await self.volumes.create(a_volume(size=size, project_id=project_id,
                                                    created_at=1000.0 + self.made))
        if host is not None:
            volume = await self.volumes.update(volume.volume_id, host=host)
        return volume

    async def available(self, host: str = "vol1") -> Volume:
        volume = await self.creating(host)
        _, after = await self.volumes.transition(volume.volume_id, "created",
                                                 export={"kind": "nbd"})
        return after

    async def attached(self, compute_host: str = "c1") -> tuple[Volume, str]:
        """@return: an available volume attached to a new running instance on C{compute_host}."""
        [made] = (await self.instances.create_reservation(*a_launch(1))).instances
        await self.instances.transition(made.instance_id, "spawned", host=compute_host)
        volume = await self.available()
        await self.volumes.attach(volume.volume_id, made.instance_id, "/dev/vdc")
        _, after = await self.volumes.transition(volume.volume_id, "attached")
        return after, made.instance_id

    async def usage(self) -> tuple[int, int]:
        used = await self.quotas.get_usage("proj")
        return used["volumes"], used["gigabytes"]


class ManageVolumeTests(RedisHarness, CloudMixin, unittest.TestCase):
    """The commands in process, on Redis, with hosts on the in-process bus."""

    async def setUp(self) -> None:
        from twisted.internet import reactor

        await RedisHarness.setUp(self)
        self.repositories()
        self.broker = LocalBroker(reactor)
        self.admin_bus = await self.endpoint()
        # nova-volume of host vol1: the real manager, storage and exports in memory
        self.backing = MemoryBacking()
        self.exports = FakeExportDriver("nbd")
        self.volume_host = VolumeManager(
            "vol1", reactor, volumes=self.volumes,
            snapshots=SnapshotRepository(self.store, self.clock), backing=self.backing,
            exports=self.exports, store_client=no_store_client, copy_in_use=None,
            scratch_dir=self.mktemp(), run_in_thread=run_now)
        await (await self.endpoint()).consume("volume.vol1", Dispatcher(self.volume_host))
        self.compute_host = RecordingCompute()
        await (await self.endpoint()).consume("compute.c1", Dispatcher(self.compute_host))
        self.out = io.StringIO()
        self.commands = self.make_commands(rpc=self.admin_bus)

    async def endpoint(self) -> Any:
        transport = self.broker.connect()
        await transport.start()
        self.addCleanup(transport.stop)
        return transport

    def make_commands(self, rpc: Any, transport: str = "amqp",
                      timeout: float = 30) -> VolumeCommands:
        from twisted.internet import reactor

        config = NovaConfig(rpc=RpcConfig(transport=transport))
        server = NovaServer(reactor, config, datastore=self.store, rpc=rpc)
        return VolumeCommands(server, self.out, timeout=timeout, poll_interval=0.01)

    async def run_command(self, command: str, **args: Any) -> str:
        self.out.seek(0)
        self.out.truncate()
        await self.commands.run(argparse.Namespace(command=command, **args))
        return self.out.getvalue()

    # -- list ----------------------------------------------------------------------

    async def test_list(self) -> None:
        self.assertEqual(await self.run_command("list", project=None),
                         "id\tproject\tsize_gb\tstatus\tattach_status\tinstance\tdevice\thost\n")
        waiting = await self.creating()
        volume, iid = await self.attached()
        other = await self.creating(project_id="other", size=2)
        rows = [line.split("\t") for line in
                (await self.run_command("list", project=None)).splitlines()[1:]]
        self.assertEqual(rows, [
            [waiting.volume_id, "proj", "10", "creating", "detached", "-", "-", "-"],
            [volume.volume_id, "proj", "10", "in-use", "attached", iid, "/dev/vdc", "vol1"],
            [other.volume_id, "other", "2", "creating", "detached", "-", "-", "-"]])
        rows = (await self.run_command("list", project="other")).splitlines()[1:]
        self.assertEqual([r.split("\t")[0] for r in rows], [other.volume_id])

    # -- delete through a live host ----------------------------------------------------

    async def test_delete_available_through_its_live_host(self) -> None:
        await self.heartbeat("vol1", "nova-volume")
        created = await self.creating("vol1")
        await self.volume_host.create_volume(CTX, created.volume_id)  # storage and export
        self.assertTrue(await self.backing.exists(created.volume_id))
        self.assertEqual(await self.usage(), (1, 10))

        out = await self.run_command("delete", volume_id=created.volume_id)

        self.assertEqual(out, f"deleted {created.volume_id} on host vol1\n")
        with self.assertRaises(InvalidVolumeNotFound):
            await self.volumes.get(created.volume_id)
        self.assertFalse(await self.backing.exists(created.volume_id))
        self.assertEqual(self.exports.exported, {})
        self.assertEqual(await self.usage(), (0, 0))

    async def test_delete_that_the_host_fails(self) -> None:
        await self.heartbeat("vol1", "nova-volume")
        created = await self.creating("vol1")
        await self.volume_host.create_volume(CTX, created.volume_id)
        self.exports.in_use.add(created.volume_id)  # unexport refuses
        with self.assertRaises(DeleteFailed) as caught:
            await self.run_command("delete", volume_id=created.volume_id)
        self.assertEqual(len(self.flushLoggedErrors(ExportInUse)), 1)
        self.assertIn("could not delete", caught.exception.message)
        volume = await self.volumes.get(created.volume_id)
        self.assertEqual(volume.status, states.ERROR)
        self.assertIn("delete failed", volume.status_reason or "")

    async def test_delete_stuck_deleting_is_asked_again(self) -> None:
        await self.heartbeat("vol1", "nova-volume")
        volume = await self.available()
        await self.volumes.transition(volume.volume_id, "delete")  # its cast was lost
        self.assertIn("deleted", await self.run_command("delete", volume_id=volume.volume_id))
        with self.assertRaises(InvalidVolumeNotFound):
            await self.volumes.get(volume.volume_id)

    async def test_a_host_that_never_answers(self) -> None:
        await self.heartbeat("vol3", "nova-volume")  # up, but nothing consumes its queue
        volume = await self.available("vol3")
        self.commands = self.make_commands(self.admin_bus, timeout=0.05)
        with self.assertRaises(DeleteFailed) as caught:
            await self.run_command("delete", volume_id=volume.volume_id)
        self.assertIn("has not deleted", caught.exception.message)
        self.assertEqual((await self.volumes.get(volume.volume_id)).status, states.DELETING)

    async def test_creating_on_a_live_host_is_refused(self) -> None:
        await self.heartbeat("vol1", "nova-volume")
        volume = await self.creating("vol1")
        with self.assertRaises(VolumeRefused) as caught:
            await self.run_command("delete", volume_id=volume.volume_id)
        self.assertIn("still 'creating' on host vol1", caught.exception.message)
        self.assertEqual((await self.volumes.get(volume.volume_id)).status, states.CREATING)

    async def test_no_bus_to_reach_a_live_host(self) -> None:
        """An in-process bus cannot be reached: refused, and the volume is left as it was."""
        await self.heartbeat("vol1", "nova-volume")
        volume = await self.available()
        self.commands = self.make_commands(rpc=None, transport="local")
        with self.assertRaises(HostUnavailable) as caught:
            await self.run_command("delete", volume_id=volume.volume_id)
        self.assertIn("transport = local", caught.exception.message)
        self.assertEqual(await self.volumes.get(volume.volume_id), volume)

    # -- delete without a host -------------------------------------------------------

    async def test_delete_stuck_creating_on_a_dead_host(self) -> None:
        await self.heartbeat("vol2", "nova-volume", live=False)
        volume = await self.creating("vol2", size=7)
        self.assertEqual(await self.usage(), (1, 7))

        out = await self.run_command("delete", volume_id=volume.volume_id)

        self.assertIn(f"deleted the record of {volume.volume_id}", out)
        self.assertIn("warning: nova-volume on host vol2 has not reported for", out)
        self.assertIn("clean it up by hand on vol2", out)
        with self.assertRaises(InvalidVolumeNotFound):
            await self.volumes.get(volume.volume_id)
        self.assertEqual(await self.usage(), (0, 0))
        self.assertEqual(await self.volumes.on_host("vol2"), [])
        self.assertEqual(await self.volumes.list(), [])

    async def test_delete_on_a_host_gone_for_good_and_never_scheduled(self) -> None:
        failed = await self.creating("retired")
        await self.volumes.transition(failed.volume_id, "create_failed")
        out = await self.run_command("delete", volume_id=failed.volume_id)
        self.assertIn("warning: nova-volume on host retired has never reported", out)
        unscheduled = await self.creating()
        out = await self.run_command("delete", volume_id=unscheduled.volume_id)
        self.assertEqual(out, f"deleted {unscheduled.volume_id}: it never reached a volume "
                              "host, nothing to clean up\n")
        self.assertEqual(await self.volumes.list(), [])
        self.assertEqual(await self.usage(), (0, 0))

    # -- refusals --------------------------------------------------------------------

    async def test_in_use_is_refused(self) -> None:
        await self.heartbeat("vol1", "nova-volume", live=False)
        volume, iid = await self.attached()
        with self.assertRaises(VolumeRefused) as caught:
            await self.run_command("delete", volume_id=volume.volume_id)
        self.assertIn(f"attached to instance {iid} at /dev/vdc", caught.exception.message)
        self.assertIn("detach it first, or terminate the instance", caught.exception.message)
        self.assertEqual(await self.volumes.get(volume.volume_id), volume)
        self.assertEqual(await self.usage(), (1, 10))

    async def test_unknown_volume(self) -> None:
        for command in ("delete", "reattach"):
            with self.assertRaises(InvalidVolumeNotFound):
                await self.run_command(command, volume_id="vol-0123456789abcdef0")

    # -- reattach -----------------------------------------------------------------------

    async def test_reattach_asks_the_instances_host(self) -> None:
        await self.heartbeat("c1", "nova-compute")
        volume, iid = await self.attached()
        out = await self.run_command("reattach", volume_id=volume.volume_id)
        self.assertEqual(out, f"reattached {volume.volume_id} to {iid} at /dev/vdc on host c1\n")
        out = await self.run_command("reattach", volume_id=volume.volume_id)
        self.assertEqual(out, f"{iid} on host c1 has {volume.volume_id} at /dev/vdc already\n")
        self.assertEqual(self.compute_host.reattached, [(iid, volume.volume_id)] * 2)
        self.assertEqual(await self.volumes.get(volume.volume_id), volume)

    async def test_reattach_refusals(self) -> None:
        volume = await self.available()
        with self.assertRaises(VolumeRefused) as caught:
            await self.run_command("reattach", volume_id=volume.volume_id)
        self.assertEqual(caught.exception.message, f"volume {volume.volume_id} is not attached "
                                                   "to an instance (it is 'available')")
        attached, iid = await self.attached()
        await self.volumes.transition(attached.volume_id, "detach", instance_id=iid)
        with self.assertRaises(VolumeRefused) as caught:
            await self.run_command("reattach", volume_id=attached.volume_id)
        self.assertIn("is detaching", caught.exception.message)
        await self.volumes.transition(attached.volume_id, "detach_failed")
        await self.heartbeat("c1", "nova-compute", live=False)
        with self.assertRaises(HostUnavailable) as caught:
            await self.run_command("reattach", volume_id=attached.volume_id)
        self.assertIn("nova-compute on host c1 has not reported", caught.exception.message)
        self.assertEqual(self.compute_host.reattached, [])


class RemoveAbandonedMixin(CloudMixin):
    """L{VolumeRepository.remove_abandoned}: one transaction, or nothing."""

    async def test_removes_record_indexes_and_usage(self) -> None:
        self.repositories()
        volume = await self.creating("vol9", size=3)
        kept = await self.creating("vol9", size=4)
        removed = await self.volumes.remove_abandoned(volume.volume_id, "vol9")
        self.assertEqual(removed, volume)
        self.assertIsNone(await self.store.get(keys.volume(volume.volume_id)))
        self.assertEqual(await self.volumes.on_host("vol9"), [kept])
        self.assertEqual(await self.volumes.list("proj"), [kept])
        self.assertEqual(await self.usage(), (1, 4))
        with self.assertRaises(InvalidVolumeNotFound):
            await self.volumes.remove_abandoned(volume.volume_id, "vol9")

    async def test_refuses_attached_and_moved_volumes(self) -> None:
        self.repositories()
        volume, _ = await self.attached()
        with self.assertRaises(states.VolumeInUse):
            await self.volumes.remove_abandoned(volume.volume_id, "vol1")
        other = await self.creating("vol2")
        with self.assertRaises(states.IncorrectState):
            await self.volumes.remove_abandoned(other.volume_id, "vol1")
        with self.assertRaises(states.IncorrectState):
            await self.volumes.remove_abandoned(other.volume_id, None)
        self.assertEqual(len(await self.volumes.list()), 2)
        self.assertEqual(await self.usage(), (2, 20))


class MemoryRemoveAbandonedTests(MemoryHarness, RemoveAbandonedMixin, unittest.TestCase):
    pass


class RedisRemoveAbandonedTests(RedisHarness, RemoveAbandonedMixin, unittest.TestCase):
    pass


class _Plugging:
    """The compute host's volume half, as far as the manager's reattach uses it."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    async def reattach(self, instance_id: str, volume_id: str) -> bool:
        self.asked.append((instance_id, volume_id))
        return True


class ComputeReattachTests(unittest.TestCase):
    """C{ComputeManager.reattach_volume} and its client, in memory."""

    async def test_manager_plugs_only_its_own_instances(self) -> None:
        clock = task.Clock()
        instances = InstanceRepository(MemoryDatastore(clock), clock)
        [mine] = (await instances.create_reservation(*a_launch(1))).instances
        await instances.transition(mine.instance_id, "spawned", host="host1")
        [theirs] = (await instances.create_reservation(*a_launch(1))).instances
        await instances.transition(theirs.instance_id, "spawned", host="host2")
        plugging = _Plugging()
        # only the instances and the volume half take part in a reattach
        manager = ComputeManager("host1", clock, driver=None, instances=instances, images=None,
                                 image_cache=None, disks=None, instances_dir=self.mktemp(),
                                 run_in_thread=run_now, kernel_cmdline="", networking=None,
                                 volumes=plugging)  # type: ignore[arg-type]
        vid = "vol-0123456789abcdef0"
        self.assertIs(await manager.reattach_volume(CTX, mine.instance_id, vid), True)
        with self.assertRaises(InvalidInstanceIDNotFound):
            await manager.reattach_volume(CTX, theirs.instance_id, vid)
        self.assertEqual(plugging.asked, [(mine.instance_id, vid)])

    async def test_client_calls_the_host_queue(self) -> None:
        sent: list[tuple[Any, ...]] = []

        class Recording:
            async def call(self, topic: str, method: str, args: dict[str, Any],
                           context: Any = None, timeout: Any = None) -> bool:
                sent.append((topic, method, args, timeout))
                return False

        plugged = await ComputeAPI(Recording()).reattach_volume(CTX, "h1", "i-1", "vol-1",
                                                                timeout=5)
        self.assertIs(plugged, False)
        self.assertEqual(sent, [("compute.h1", "reattach_volume",
                                 {"instance_id": "i-1", "volume_id": "vol-1"}, 5)])


class NovaManageVolumeTests(RedisHarness, CloudMixin, unittest.TestCase):
    """C{bin/nova-manage volume ...} as an administrator runs it (no bus needed here)."""

    async def setUp(self) -> None:
        await RedisHarness.setUp(self)
        self.repositories()
        self.state = os.path.abspath(self.mktemp())
        os.makedirs(self.state)
        self.config = os.path.join(self.state, "nova.conf")
        with open(self.config, "w") as f:
            f.write(f"[nova]\nstate_dir = {self.state}\n\n[redis]\nhost = 127.0.0.1\n"
                    f"port = {self.store_port()}\nprefix = {self.prefix}\nspawn = false\n")

    @staticmethod
    def store_port() -> int:
        from tests.test_datastore_contract import REDIS_PORT

        return REDIS_PORT

    async def manage(self, *args: str, status: int = 0) -> str:
        from twisted.internet import reactor

        env = {k: v for k, v in os.environ.items() if k != "NOVA_CONFIG"}
        env["NOVA_STATE_DIR"] = self.state
        out, err, code = await utils.getProcessOutputAndValue(
            sys.executable, [str(ROOT / "bin" / "nova-manage"), "--config", self.config,
                             *args], env=env, path=self.state, reactor=reactor)
        self.assertEqual(code, status, f"nova-manage {' '.join(args)}: {out!r} {err!r}")
        if status:
            self.assertEqual(len(err.decode().strip().splitlines()), 1, err)
            return err.decode()
        return out.decode()

    async def test_commands_and_exit_codes(self) -> None:
        await self.heartbeat("vol2", "nova-volume", live=False)
        volume, iid = await self.attached()
        stuck = await self.creating("vol2", size=5)
        lines = (await self.manage("volume", "list", "proj")).splitlines()
        self.assertEqual(lines[0].split("\t")[:3], ["id", "project", "size_gb"])
        self.assertEqual([line.split("\t")[0] for line in lines[1:]],
                         [volume.volume_id, stuck.volume_id])

        self.assertIn("detach it first",
                      await self.manage("volume", "delete", volume.volume_id, status=1))
        self.assertIn("does not exist",
                      await self.manage("volume", "delete", "vol-0123456789abcdef0", status=1))
        self.assertIn("Invalid id: \"vol-x\"",
                      await self.manage("volume", "delete", "vol-x", status=2))
        self.assertIn("Invalid id", await self.manage("volume", "reattach", "i-1", status=2))
        self.assertIn("not attached",
                      await self.manage("volume", "reattach", stuck.volume_id, status=1))

        out = await self.manage("volume", "delete", stuck.volume_id)
        self.assertIn("warning: nova-volume on host vol2", out)
        self.assertEqual([v.volume_id for v in await self.volumes.list()], [volume.volume_id])
        self.assertEqual(await self.usage(), (1, 10))
