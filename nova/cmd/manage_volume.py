"""
C{nova-manage volume}: the cloud's volumes as an administrator sees them, and
the two repairs 2011 nova's script had.

    nova-manage volume list [PROJECT]
    nova-manage volume delete VOLUME_ID
    nova-manage volume reattach VOLUME_ID

C{delete} is the administrator's force delete, for a volume stuck
C{creating}, C{deleting} or C{error} because its volume host died or is gone
for good (any detached volume, in fact). An attached volume is refused:
detach it, or terminate its instance. When the volume's host is up (a
C{nova-volume} heartbeat within C{[service] service_down_time}, the rule the
scheduler uses) that host deletes it, as DeleteVolume would have it do, and
the command waits for the outcome. When the host is down, or the volume never
got one, only the record goes (with its quota usage, in one transaction): the
storage on that host must then be removed by hand, because nova-volume does
not remove storage it has no record of when it starts again.

C{reattach} asks the compute host of the instance a volume is recorded
attached to to plug it in again at its recorded device (a host that lost
its guests' volumes, e.g. in a restart), and waits for it.

Both need the cloud's Redis; asking a host needs its message bus too
(C{[rpc] transport = amqp}: an in-process bus cannot be reached from here).
"""

from __future__ import annotations

import argparse
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from twisted.internet import task

from nova.compute import states as instance_states
from nova.compute.rpcapi import ComputeAPI
from nova.context import RequestContext
from nova.datastore.errors import ServiceNotFound
from nova.exception import NovaError
from nova.rpc import make_transport
from nova.volume import states
from nova.volume.records import InvalidVolumeIDMalformed, InvalidVolumeNotFound, check_volume_id
from nova.volume.rpcapi import VolumeAPI

#: the services whose heartbeats say whether a host can be asked
VOLUME_BINARY = "nova-volume"
COMPUTE_BINARY = "nova-compute"


class VolumeRefused(NovaError):
    """The volume is not in a state the command can act on."""

    code = "IncorrectState"


class HostUnavailable(NovaError):
    """The host that must do the work is down, or cannot be reached from here."""

    code = "Unavailable"


class DeleteFailed(NovaError):
    """The volume host reported the delete failed, or did not finish it in time."""


def volume_id_arg(text: str) -> str:
    """
    @return: C{text}, a well-formed volume id (an argparse C{type}).
    @raise argparse.ArgumentTypeError: it is not one (a usage error: exit 2).
    """
    try:
        return check_volume_id(text)
    except InvalidVolumeIDMalformed as e:
        raise argparse.ArgumentTypeError(e.message) from None


def add_parser(categories: Any) -> None:
    """Add the C{volume} category to C{nova-manage}'s subparsers."""
    volume = categories.add_parser("volume", help="volumes (needs the cloud's Redis; delete "
                                   "and reattach may ask a host over the bus)"
                                   ).add_subparsers(dest="command", required=True)
    volume.add_parser("list", help="list volumes").add_argument("project", nargs="?")
    volume.add_parser("delete", help="force-delete a detached volume, e.g. one stuck because "
                      "its host died").add_argument("volume_id", type=volume_id_arg)
    volume.add_parser("reattach", help="plug an attached volume into its guest again").\
        add_argument("volume_id", type=volume_id_arg)


def _show(value: Any) -> str:
    return "-" if value is None else str(value)


class VolumeCommands:
    """
    The C{volume} commands, over a L{nova.server.NovaServer} (its datastore;
    its bus when given one, else an AMQP connection of their own).

    @param server: the process's object graph.
    @param out: where results and warnings are printed.
    @param timeout: seconds to wait for a host (default: C{[rpc] call_timeout}).
    @param poll_interval: seconds between two looks at a volume being deleted.
    """

    def __init__(self, server: Any, out: Any, *, timeout: float | None = None,
                 poll_interval: float = 0.5) -> None:
        self.server = server
        self.out = out
        self.timeout = server.config.rpc.call_timeout if timeout is None else timeout
        self.poll_interval = poll_interval

    def _print(self, text: str) -> None:
        self.out.write(text + "\n")

    async def run(self, args: argparse.Namespace) -> int:
        """
        @return: the exit status (0).
        @raise NovaError: the command failed (exit status 1).
        """
        await self.server.open_datastore()
        await getattr(self, f"volume_{args.command}")(args)
        return 0

    @property
    def _volumes(self) -> Any:
        return self.server.volumes

    # -- what is up --------------------------------------------------------------

    async def _down(self, host: str, binary: str) -> str | None:
        """@return: C{None} when C{binary} on C{host} is up, else why it is not."""
        try:
            service = await self.server.services.get(host, binary)
        except ServiceNotFound:
            return "has never reported"
        down_time = self.server.config.service.service_down_time
        if self.server.services.is_up(service, down_time):
            return None
        silent = self.server.reactor.seconds() - service.updated_at
        return f"has not reported for {silent:.0f} s (down after {down_time:g} s)"

    @asynccontextmanager
    async def _bus(self, host: str) -> AsyncIterator[Any]:
        """The server's bus, or a connection of this command's own, closed after it."""
        if self.server.rpc is not None:
            yield self.server.rpc
            return
        config = self.server.config.rpc
        if config.transport != "amqp":
            raise HostUnavailable(
                f"host {host} is up but cannot be reached from nova-manage: the cloud's bus "
                f"is in-process ([rpc] transport = {config.transport}); use the EC2 API, or "
                "stop the cloud and run this again")
        transport = make_transport(self.server.reactor, config)
        await transport.start()
        try:
            yield transport
        finally:
            await transport.stop()

    # -- list ----------------------------------------------------------------------

    async def volume_list(self, args: argparse.Namespace) -> None:
        """One line per volume (of the project, or every project), oldest first."""
        self._print("\t".join(("id", "project", "size_gb", "status", "attach_status",
                               "instance", "device", "host")))
        for v in await self._volumes.list(args.project):
            self._print("\t".join(_show(x) for x in (
                v.volume_id, v.project_id, v.size, v.status, v.attach_status, v.instance_id,
                v.device, v.host)))

    # -- delete ----------------------------------------------------------------------

    async def volume_delete(self, args: argparse.Namespace) -> None:
        """
        Delete a detached volume: through its host when that is up, else
        the record only (with a warning about the storage left on the host).

        @raise VolumeRefused: it is attached, or still being made by a live host.
        @raise HostUnavailable: its host is up but cannot be reached from here.
        @raise DeleteFailed: the host failed, or did not finish in time.
        """
        volume = await self._volumes.get(args.volume_id)
        vid, host = volume.volume_id, volume.host
        if volume.status == states.IN_USE:
            raise VolumeRefused(
                f"volume {vid} is attached to instance {volume.instance_id} at "
                f"{volume.device} ({volume.attach_status}): detach it first, or terminate "
                "the instance")
        if host is None:
            await self._volumes.remove_abandoned(vid, None)
            self._print(f"deleted {vid}: it never reached a volume host, nothing to clean up")
            return
        down = await self._down(host, VOLUME_BINARY)
        if down is not None:
            await self._volumes.remove_abandoned(vid, host)
            self._print(f"deleted the record of {vid} ({volume.size} GiB of project "
                        f"{volume.project_id}, was '{volume.status}')")
            self._print(
                f"warning: nova-volume on host {host} {down}: the storage of {vid} there "
                f"(its backing file {vid}.img or logical volume {vid}, and any export of it) "
                "is not removed, and nova-volume will not remove it when it starts again: "
                f"clean it up by hand on {host}")
            return
        if volume.status == states.CREATING:
            raise VolumeRefused(
                f"volume {vid} is still 'creating' on host {host}, which is up: wait until it "
                f"is 'available' or 'error'; if it never gets there, stop nova-volume on {host} "
                "and run this again once the host counts as down")
        async with self._bus(host) as rpc:
            before, after = await self._volumes.transition(vid, "delete")
            try:
                await VolumeAPI(rpc).delete_volume(RequestContext.system(), host, vid)
            except BaseException:
                if after is not before:
                    await self._volumes.restore(after, before)
                raise
            await self._await_removal(vid, host)
        self._print(f"deleted {vid} on host {host}")

    async def _await_removal(self, volume_id: str, host: str) -> None:
        """
        Wait until the volume host has removed the record (done) or moved it
        to C{error} (failed).

        @raise DeleteFailed: it failed, or did not finish within the timeout.
        """
        clock = self.server.reactor
        deadline = clock.seconds() + self.timeout
        while True:
            try:
                volume = await self._volumes.get(volume_id)
            except InvalidVolumeNotFound:
                return
            if volume.status != states.DELETING:
                raise DeleteFailed(
                    f"host {host} could not delete {volume_id}, now '{volume.status}': "
                    f"{volume.status_reason or 'no reason given'}")
            if clock.seconds() >= deadline:
                raise DeleteFailed(
                    f"host {host} has not deleted {volume_id} within {self.timeout:g} s; it is "
                    "still 'deleting' (the host may yet finish: see nova-manage volume list)")
            await task.deferLater(clock, self.poll_interval, lambda: None)

    # -- reattach -------------------------------------------------------------------

    async def volume_reattach(self, args: argparse.Namespace) -> None:
        """
        Have the compute host of the volume's instance plug it in again.

        @raise VolumeRefused: it is not attached (or the attachment is moving),
            or its instance has no guest.
        @raise HostUnavailable: the compute host is down or cannot be reached.
        """
        volume = await self._volumes.get(args.volume_id)
        vid, iid = volume.volume_id, volume.instance_id
        if volume.attach_status == states.DETACHED:
            raise VolumeRefused(f"volume {vid} is not attached to an instance (it is "
                                f"'{volume.status}')")
        if volume.attach_status != states.ATTACHED:
            raise VolumeRefused(f"volume {vid} is {volume.attach_status} (instance {iid}): "
                                "wait for that to finish, or detach it with Force")
        instance = await self.server.instances.get(iid)
        if instance.state == instance_states.TERMINATED or instance.host is None:
            raise VolumeRefused(f"instance {iid} of volume {vid} has no guest (it is "
                                f"'{instance.state}')")
        host = instance.host
        down = await self._down(host, COMPUTE_BINARY)
        if down is not None:
            raise HostUnavailable(f"nova-compute on host {host} {down}: start it, then run "
                                  "this again")
        async with self._bus(host) as rpc:
            plugged = await ComputeAPI(rpc).reattach_volume(RequestContext.system(), host, iid,
                                                            vid, timeout=self.timeout)
        if plugged:
            self._print(f"reattached {vid} to {iid} at {volume.device} on host {host}")
        else:
            self._print(f"{iid} on host {host} has {vid} at {volume.device} already")
