"""
Errors of the virt driver seam. Every driver raises these and only these
(plus L{TypeError}/L{ValueError} for malformed arguments).
"""

from __future__ import annotations

from nova.exception import ClientError, Duplicate, NotFound, NovaError


class VirtError(NovaError):
    """The hypervisor failed to do what was asked."""


class HypervisorUnavailable(VirtError):
    """The hypervisor connection could not be opened or was lost."""

    status = 503


class InstanceNotFound(NotFound):
    """No guest of that name exists on this host."""

    code = "InvalidInstanceID.NotFound"


class InstanceExists(Duplicate):
    """A guest of that name already exists on this host."""

    code = "InvalidInstanceID.Duplicate"


class InvalidInstanceState(ClientError):
    """The guest is not in a power state that allows this operation."""

    code = "IncorrectInstanceState"


class DeviceInUse(ClientError):
    """A disk is already attached to the guest at that device name."""

    code = "InvalidParameterValue"


class DeviceNotFound(NotFound):
    """No disk is attached to the guest at that device name."""

    code = "InvalidAttachment.NotFound"
