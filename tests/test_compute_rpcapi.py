"""The typed RPC clients of the compute node and the scheduler: what goes on the wire."""

from __future__ import annotations

from typing import Any

from twisted.trial import unittest

from nova.compute.rpcapi import ComputeAPI
from nova.context import RequestContext
from nova.scheduler.rpcapi import SchedulerAPI

CTX = RequestContext(user_id="alice", project_id="proj")


class RecordingTransport:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str, dict[str, Any]]] = []

    async def cast(self, topic: str, method: str, args: dict[str, Any],
                   context: Any = None) -> None:
        self.sent.append(("cast", topic, method, args))

    async def call(self, topic: str, method: str, args: dict[str, Any],
                   context: Any = None, timeout: Any = None) -> str:
        self.sent.append(("call", topic, method, args))
        return "b3V0cHV0"


class RpcApiTests(unittest.TestCase):

    async def test_compute_messages_go_to_the_host_queue(self) -> None:
        rpc = RecordingTransport()
        api = ComputeAPI(rpc)
        for name in ("run_instance", "terminate_instance", "reboot_instance",
                     "stop_instance", "start_instance"):
            await getattr(api, name)(CTX, "h1", "i-0123456789abcdef0")
        self.assertEqual(await api.get_console_output(CTX, "h1", "i-0123456789abcdef0"),
                         "b3V0cHV0")
        self.assertEqual({(kind, topic) for kind, topic, _, _ in rpc.sent[:-1]},
                         {("cast", "compute.h1")})
        self.assertEqual(rpc.sent[-1], ("call", "compute.h1", "get_console_output",
                                        {"instance_id": "i-0123456789abcdef0"}))
        self.assertEqual([m for _, _, m, _ in rpc.sent[:-1]],
                         ["run_instance", "terminate_instance", "reboot_instance",
                          "stop_instance", "start_instance"])

    async def test_scheduler_message(self) -> None:
        rpc = RecordingTransport()
        await SchedulerAPI(rpc).run_instance(CTX, "i-0123456789abcdef0", "nova", "h2")
        self.assertEqual(rpc.sent, [("cast", "scheduler", "run_instance", {
            "instance_id": "i-0123456789abcdef0", "zone": "nova", "forced_host": "h2"})])
