"""
nova-volume's RPC face as its callers (the cloud controller) see it: typed
methods, never raw method names (DESIGN.md, "Seams").

A new volume goes to the scheduler (topic C{scheduler}), which picks a
volume host and hands it on to C{volume.<host>}. Everything that touches a
volume's or a snapshot's storage goes to C{volume.<host>}, the host that
holds it; a snapshot whose host is unknown (it never got one) goes to any
volume host (C{volume}): its data, if any, is in the shared object store.
All of these are casts: the API has already moved the record and the
worker reports the outcome in it.

L{VolumeCasts} and L{VolumeComputeCasts} are what the EC2 volume controller
needs of its two clients (test doubles implement them).
"""

from __future__ import annotations

from typing import Any, Protocol

from nova.context import RequestContext

TOPIC = "volume"
SCHEDULER_TOPIC = "scheduler"


def host_topic(host: str) -> str:
    """@return: the queue of one volume host."""
    return f"{TOPIC}.{host}"


def _topic(host: str | None) -> str:
    return TOPIC if host is None else host_topic(host)


class VolumeCasts(Protocol):
    """What the EC2 volume controller asks of nova-volume (L{VolumeAPI})."""

    async def create_volume(self, context: RequestContext, volume_id: str) -> None: ...

    async def delete_volume(self, context: RequestContext, host: str,
                            volume_id: str) -> None: ...

    async def create_snapshot(self, context: RequestContext, host: str,
                              snapshot_id: str) -> None: ...

    async def delete_snapshot(self, context: RequestContext, host: str | None,
                              snapshot_id: str) -> None: ...


class VolumeComputeCasts(Protocol):
    """What the EC2 volume controller asks of the compute hosts (L{nova.compute.rpcapi})."""

    async def attach_volume(self, context: RequestContext, host: str, instance_id: str,
                            volume_id: str, device: str) -> None: ...

    async def detach_volume(self, context: RequestContext, host: str, instance_id: str,
                            volume_id: str, force: bool = False) -> None: ...


class VolumeAPI:
    """
    Client of nova-volume's manager (and of the scheduler's C{create_volume}).

    @param rpc: the process's L{nova.rpc.interfaces.IRPCTransport}.
    """

    def __init__(self, rpc: Any) -> None:
        self._rpc = rpc

    async def create_volume(self, context: RequestContext, volume_id: str) -> None:
        """
        Have the scheduler choose a volume host for a C{creating} volume (in
        the record's zone) and cast C{create_volume} to it; the host reports
        C{created} or C{create_failed}.
        """
        await self._rpc.cast(SCHEDULER_TOPIC, "create_volume", {"volume_id": volume_id},
                             context)

    async def create_volume_on(self, context: RequestContext, host: str,
                               volume_id: str) -> None:
        """The scheduler's hand-off: C{host} makes the volume and exports it."""
        await self._rpc.cast(host_topic(host), "create_volume", {"volume_id": volume_id},
                             context)

    async def delete_volume(self, context: RequestContext, host: str, volume_id: str) -> None:
        """
        Have C{host} remove the export and storage of a C{deleting} volume,
        then its record (or report C{delete_failed}).
        """
        await self._rpc.cast(host_topic(host), "delete_volume", {"volume_id": volume_id},
                             context)

    async def create_snapshot(self, context: RequestContext, host: str,
                              snapshot_id: str) -> None:
        """
        Have C{host} copy a C{pending} snapshot's volume to the object store;
        it reports progress, then C{completed} or C{failed}.
        """
        await self._rpc.cast(host_topic(host), "create_snapshot",
                             {"snapshot_id": snapshot_id}, context)

    async def delete_snapshot(self, context: RequestContext, host: str | None,
                              snapshot_id: str) -> None:
        """
        Have a volume host (C{host}, or any for C{None}) remove a
        C{deleting} snapshot's stored object, then its record.
        """
        await self._rpc.cast(_topic(host), "delete_snapshot", {"snapshot_id": snapshot_id},
                             context)
