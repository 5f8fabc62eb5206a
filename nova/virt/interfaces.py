"""
The virt driver seam: the one interface the compute manager drives.

Every method is a coroutine function (C{async def}); none blocks the
reactor. Guests are named by L{InstanceSpec.name}. A driver keeps no state
of its own that the hypervisor does not also hold, so a restarted compute
service finds its guests again with L{IVirtDriver.list_instances}.

Errors (all in L{nova.virt.errors}): L{InstanceNotFound} for an unknown
name, L{InstanceExists} when spawning a name that exists,
L{InvalidInstanceState} when the power state forbids the operation,
L{DeviceInUse}/L{DeviceNotFound} for volumes, L{VirtError} (or
L{HypervisorUnavailable}) for the hypervisor's own failures.
"""

from __future__ import annotations

from zope.interface import Interface


class IVirtDriver(Interface):
    """Runs guests on one host."""

    async def init_host():
        """
        Connect to the hypervisor and check the host. Call once, before
        anything else.

        @raise HypervisorUnavailable: when the hypervisor cannot be reached.
        """

    async def close():
        """Release the hypervisor connection; guests keep running."""

    async def list_instances():
        """
        @return: the names (C{list} of C{str}) of every guest defined on the
            host, running or not, including guests nova did not create.
        """

    async def spawn(spec):
        """
        Define the guest and start it.

        @param spec: an L{InstanceSpec}; its files must exist (except the
            console log, which the hypervisor creates).
        @return: the guest's L{InstanceInfo} once it runs.
        @raise InstanceExists: when a guest of that name exists; the
            existing guest is left alone.
        @raise VirtError: when the hypervisor refuses; nothing is left
            defined.
        """

    async def destroy(name):
        """
        Stop the guest at once (no graceful shutdown) and remove its
        definition. The guest's files are the caller's. Idempotent: an
        unknown name is not an error.

        @param name: the guest name.
        """

    async def reboot(name):
        """
        Hard-reboot a running guest (its hypervisor process is restarted,
        as 2010 nova did).

        @raise InstanceNotFound: for an unknown name.
        @raise InvalidInstanceState: when the guest is not running.
        """

    async def power_off(name):
        """
        Stop the guest, keeping its definition. Idempotent on a stopped guest.

        @raise InstanceNotFound: for an unknown name.
        """

    async def power_on(name):
        """
        Start a stopped guest. Idempotent on a running guest.

        @raise InstanceNotFound: for an unknown name.
        """

    async def get_info(name):
        """
        @return: the guest's L{InstanceInfo}.
        @raise InstanceNotFound: for an unknown name.
        """

    async def get_console_output(name, max_bytes=65536):
        """
        @param max_bytes: how much of the end of the log to return.
        @return: the last C{max_bytes} of the guest's serial console log
            (C{bytes}; empty when nothing was written yet).
        @raise InstanceNotFound: for an unknown name.
        """

    async def attach_volume(name, device, source):
        """
        Hot-plug a disk into a running guest.

        @param device: the guest device name, C{vdb}..C{vdz}.
        @param source: a L{VolumeSource}.
        @raise InstanceNotFound: for an unknown name.
        @raise InvalidInstanceState: when the guest is not running.
        @raise DeviceInUse: when a disk is already at C{device}.
        """

    async def detach_volume(name, device):
        """
        Unplug the disk at C{device}; returns once the guest has released it.

        @raise InstanceNotFound: for an unknown name.
        @raise DeviceNotFound: when no disk is at C{device}.
        @raise VirtError: the guest did not release it in time (it may
            still do so later).
        """

    async def list_volumes(name):
        """
        @return: C{dict} mapping each hot-plugged device name to its
            L{VolumeSource} (the root disk C{vda} is not listed).
        @raise InstanceNotFound: for an unknown name.
        """

    async def capacity():
        """@return: the host's L{HostCapacity}."""
