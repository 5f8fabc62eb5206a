"""
The compute node's RPC face as its callers see it: typed methods, never raw
method names (DESIGN.md, "Seams"). Work goes to C{compute.<host>}, the queue
of the one node that holds (or is to hold) the instance.
"""

from __future__ import annotations

from typing import Any

from nova.context import RequestContext

TOPIC = "compute"


def host_topic(host: str) -> str:
    """@return: the queue of one compute node."""
    return f"{TOPIC}.{host}"


class ComputeAPI:
    """
    Client of L{nova.compute.manager.ComputeManager}.

    Actions that change an instance are casts: the API has already moved the
    record (stopping, shutting-down ...) and the node reports the outcome in
    the record. What the caller waits for (the console, a security group
    refresh, a volume's reattach) is a call.

    @param rpc: the process's L{nova.rpc.interfaces.IRPCTransport}.
    """

    def __init__(self, rpc: Any) -> None:
        self._rpc = rpc

    async def _cast(self, context: RequestContext, host: str, method: str,
                    instance_id: str) -> None:
        await self._rpc.cast(host_topic(host), method, {"instance_id": instance_id}, context)

    async def run_instance(self, context: RequestContext, host: str, instance_id: str) -> None:
        """Spawn a scheduled instance on C{host}."""
        await self._cast(context, host, "run_instance", instance_id)

    async def terminate_instance(self, context: RequestContext, host: str,
                                 instance_id: str) -> None:
        """Destroy the guest and its disk; the record ends C{terminated}."""
        await self._cast(context, host, "terminate_instance", instance_id)

    async def reboot_instance(self, context: RequestContext, host: str,
                              instance_id: str) -> None:
        """Hard-reboot the guest."""
        await self._cast(context, host, "reboot_instance", instance_id)

    async def stop_instance(self, context: RequestContext, host: str, instance_id: str) -> None:
        """Power the guest off, keeping its disk; the record ends C{stopped}."""
        await self._cast(context, host, "stop_instance", instance_id)

    async def start_instance(self, context: RequestContext, host: str,
                             instance_id: str) -> None:
        """Power a stopped guest on; the record ends C{running}."""
        await self._cast(context, host, "start_instance", instance_id)

    async def get_console_output(self, context: RequestContext, host: str,
                                 instance_id: str) -> str:
        """@return: the tail of the guest's serial console, base64-encoded."""
        return await self._rpc.call(host_topic(host), "get_console_output",
                                    {"instance_id": instance_id}, context)

    async def attach_volume(self, context: RequestContext, host: str, instance_id: str,
                            volume_id: str, device: str) -> None:
        """
        Connect a volume the API moved to C{attaching} and plug it into the
        guest; the node reports C{attached} or C{attach_failed} on the volume.

        @param device: the disk the guest sees (C{vdb} .. C{vdz}, from
            L{nova.volume.records.guest_device}).
        """
        await self._rpc.cast(host_topic(host), "attach_volume",
                             {"instance_id": instance_id, "volume_id": volume_id,
                              "device": device}, context)

    async def detach_volume(self, context: RequestContext, host: str, instance_id: str,
                            volume_id: str, force: bool = False) -> None:
        """
        Unplug a volume the API moved to C{detaching} and disconnect it; the
        node reports C{detached} or C{detach_failed} on the volume.

        @param force: DetachVolume's Force: detach even an attachment that
            never completed, and report C{detached} whatever the guest says.
        """
        await self._rpc.cast(host_topic(host), "detach_volume",
                             {"instance_id": instance_id, "volume_id": volume_id,
                              "force": bool(force)}, context)

    async def reattach_volume(self, context: RequestContext, host: str, instance_id: str,
                              volume_id: str, timeout: float | None = None) -> bool:
        """
        Have C{host} plug a volume recorded attached to the instance into its
        guest again, at the recorded device; returns once done.

        @return: whether it had to be plugged (C{False}: the guest had it).
        """
        return await self._rpc.call(host_topic(host), "reattach_volume",
                                    {"instance_id": instance_id, "volume_id": volume_id},
                                    context, timeout=timeout)

    async def refresh_security_groups(self, context: RequestContext, host: str,
                                      timeout: float | None = None) -> int:
        """
        Make C{host} rewrite its instances' filter chains from the security
        groups as stored now; returns once applied.

        @return: how many chains it wrote.
        """
        return await self._rpc.call(host_topic(host), "refresh_security_groups", {}, context,
                                    timeout=timeout)
