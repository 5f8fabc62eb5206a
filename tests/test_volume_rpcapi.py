"""
The typed RPC clients the volume actions use: L{VolumeAPI} and the volume
methods of L{ComputeAPI}: what goes on the wire, to which topic.
"""

from __future__ import annotations

from typing import Any

from twisted.trial import unittest

from nova.compute.rpcapi import ComputeAPI
from nova.context import RequestContext
from nova.volume.rpcapi import VolumeAPI, host_topic

CTX = RequestContext(user_id="alice", project_id="proj")
VOL = "vol-0123456789abcdef0"
SNAP = "snap-0123456789abcdef0"
INST = "i-0123456789abcdef0"


class RecordingTransport:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any], Any]] = []

    async def cast(self, topic: str, method: str, args: dict[str, Any],
                   context: Any = None) -> None:
        self.sent.append((topic, method, args, context))

    async def call(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("the volume clients only cast")


class VolumeRpcApiTests(unittest.TestCase):

    async def test_volume_api(self) -> None:
        rpc = RecordingTransport()
        api = VolumeAPI(rpc)
        await api.create_volume(CTX, VOL)
        await api.delete_volume(CTX, "v1", VOL)
        await api.create_snapshot(CTX, "v1", SNAP)
        await api.delete_snapshot(CTX, "v2", SNAP)
        await api.delete_snapshot(CTX, None, SNAP)
        self.assertEqual([(t, m, a) for t, m, a, _ in rpc.sent], [
            ("scheduler", "create_volume", {"volume_id": VOL}),
            ("volume.v1", "delete_volume", {"volume_id": VOL}),
            ("volume.v1", "create_snapshot", {"snapshot_id": SNAP}),
            ("volume.v2", "delete_snapshot", {"snapshot_id": SNAP}),
            ("volume", "delete_snapshot", {"snapshot_id": SNAP}),  # any volume host
        ])
        self.assertTrue(all(c is CTX for _, _, _, c in rpc.sent))
        self.assertEqual(host_topic("h"), "volume.h")

    async def test_compute_volume_methods(self) -> None:
        rpc = RecordingTransport()
        api = ComputeAPI(rpc)
        await api.attach_volume(CTX, "c1", INST, VOL, "vdf")
        await api.detach_volume(CTX, "c1", INST, VOL)
        await api.detach_volume(CTX, "c1", INST, VOL, force=True)
        self.assertEqual([(t, m, a) for t, m, a, _ in rpc.sent], [
            ("compute.c1", "attach_volume",
             {"instance_id": INST, "volume_id": VOL, "device": "vdf"}),
            ("compute.c1", "detach_volume",
             {"instance_id": INST, "volume_id": VOL, "force": False}),
            ("compute.c1", "detach_volume",
             {"instance_id": INST, "volume_id": VOL, "force": True}),
        ])
