"""The scheduler's RPC face as its callers (the cloud controller) see it."""

from __future__ import annotations

from typing import Any

from nova.context import RequestContext

TOPIC = "scheduler"


class SchedulerAPI:
    """
    Client of L{nova.scheduler.manager.SchedulerManager}.

    @param rpc: the process's L{nova.rpc.interfaces.IRPCTransport}.
    """

    def __init__(self, rpc: Any) -> None:
        self._rpc = rpc

    async def run_instance(self, context: RequestContext, instance_id: str,
                           zone: str | None = None, forced_host: str | None = None) -> None:
        """
        Choose a compute host for a pending instance and hand it over (a cast:
        the instance record tells how it went).

        @param zone: the availability zone asked for, or C{None} for any.
        @param forced_host: the host an admin named (C{zone:host}), or C{None}.
        """
        await self._rpc.cast(TOPIC, "run_instance",
                             {"instance_id": instance_id, "zone": zone,
                              "forced_host": forced_host}, context)
