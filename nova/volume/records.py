"""
The volume records kept in the datastore: L{Volume} and L{Snapshot}, frozen
attrs classes stored as JSON through L{nova.datastore.records.Record}; their
ids; the volume errors with their EC2 codes (ids malformed or naming nothing,
quota, zone, attachment; the state errors are in L{nova.volume.states}); and
the device names AttachVolume accepts.

Device names. A guest sees its volumes as virtio disks, C{vdb} to C{vdz}
(C{vda} is its root disk). AttachVolume accepts C{/dev/vdX}, and the names
EC2 users are used to, C{/dev/sdX} and C{/dev/xvdX}, for X in b..z; all three
spellings of one letter are the same guest disk (L{guest_device}). The record
keeps the name as the user gave it (DescribeVolumes shows it back).
"""

from __future__ import annotations

import json
import re
import secrets
import types
from typing import Any, Mapping

import attr

from nova.datastore.records import Record, _int, _number, _str
from nova.exception import ClientError, InvalidParameterValue, NotFound
from nova.volume import states

#: the ids nova makes: C{vol-} and 17 hex digits
VOLUME_ID = re.compile(r"vol-[0-9a-f]{17}\Z")
#: the ids nova makes: C{snap-} and 17 hex digits
SNAPSHOT_ID = re.compile(r"snap-[0-9a-f]{17}\Z")
#: what is a well-formed id (EC2's older 8-digit form too): not found, not malformed
_VOLUME_ID_FORM = re.compile(r"vol-(?:[0-9a-f]{8}|[0-9a-f]{17})\Z")
_SNAPSHOT_ID_FORM = re.compile(r"snap-(?:[0-9a-f]{8}|[0-9a-f]{17})\Z")

#: EC2's bounds on a volume's size, in GiB
MIN_SIZE, MAX_SIZE = 1, 16384

_DEVICE = re.compile(r"/dev/(?:vd|sd|xvd)([b-z])\Z")
_PROGRESS = re.compile(r"(?:100|[1-9]?[0-9])%\Z")
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")


class InvalidVolumeNotFound(NotFound):
    """No such volume (or not the caller's)."""

    code = "InvalidVolume.NotFound"


class InvalidVolumeIDMalformed(InvalidParameterValue):
    """A string that is not a volume id."""

    code = "InvalidVolumeID.Malformed"


class InvalidSnapshotNotFound(NotFound):
    """No such snapshot (or not visible to the caller)."""

    code = "InvalidSnapshot.NotFound"


class InvalidSnapshotIDMalformed(InvalidParameterValue):
    """A string that is not a snapshot id."""

    code = "InvalidSnapshotID.Malformed"


class VolumeLimitExceeded(ClientError):
    """The project's quota of volumes or gigabytes does not allow this volume."""

    code = "VolumeLimitExceeded"


class InvalidVolumeZoneMismatch(ClientError):
    """The volume and the instance are in different availability zones."""

    code = "InvalidVolume.ZoneMismatch"


class InvalidAttachmentNotFound(ClientError):
    """The volume is not attached to that instance (or at that device)."""

    code = "InvalidAttachment.NotFound"


def new_volume_id() -> str:
    """@return: a fresh EC2-style volume id, C{vol-} and 17 hex digits."""
    return "vol-" + secrets.token_hex(9)[:17]


def new_snapshot_id() -> str:
    """@return: a fresh EC2-style snapshot id, C{snap-} and 17 hex digits."""
    return "snap-" + secrets.token_hex(9)[:17]


def check_volume_id(volume_id: Any) -> str:
    """
    @return: C{volume_id}.
    @raise InvalidVolumeIDMalformed: it is not shaped like a volume id.
    """
    if not isinstance(volume_id, str) or not _VOLUME_ID_FORM.match(volume_id):
        raise InvalidVolumeIDMalformed(f'Invalid id: "{volume_id}" (expecting "vol-...")')
    return volume_id


def check_snapshot_id(snapshot_id: Any) -> str:
    """
    @return: C{snapshot_id}.
    @raise InvalidSnapshotIDMalformed: it is not shaped like a snapshot id.
    """
    if not isinstance(snapshot_id, str) or not _SNAPSHOT_ID_FORM.match(snapshot_id):
        raise InvalidSnapshotIDMalformed(f'Invalid id: "{snapshot_id}" (expecting "snap-...")')
    return snapshot_id


def check_size(size: Any) -> int:
    """
    @param size: GiB.
    @return: C{size}.
    @raise InvalidParameterValue: not an int in L{MIN_SIZE}..L{MAX_SIZE}.
    """
    if isinstance(size, bool) or not isinstance(size, int):
        raise InvalidParameterValue(f"Invalid value '{size}' for Size: expected an integer")
    if size < MIN_SIZE:
        raise InvalidParameterValue(f"Volume of {size}GiB is too small; minimum is "
                                    f"{MIN_SIZE}GiB.")
    if size > MAX_SIZE:
        raise InvalidParameterValue(f"Volume of {size}GiB is too large; maximum is "
                                    f"{MAX_SIZE}GiB.")
    return size


def guest_device(device: Any) -> str:
    """
    @param device: a device name as AttachVolume takes it (C{/dev/vdf},
        C{/dev/sdf} or C{/dev/xvdf}).
    @return: the disk the guest sees (C{vdf}): the libvirt target name.
    @raise InvalidParameterValue: any other name (C{/dev/vda}, the root disk,
        included).
    """
    match = _DEVICE.match(device) if isinstance(device, str) else None
    if match is None:
        raise InvalidParameterValue(f"Value ({device}) for parameter device is invalid. "
                                    f"{device} is not a valid EBS device name.")
    return "vd" + match.group(1)


def _opt_str() -> Any:
    return attr.validators.optional(_str())


def _opt_number(value: Any) -> float | None:
    return None if value is None else _number(value)


def _opt_int() -> Any:
    check = _int()

    def optional(inst: Any, attribute: Any, value: Any) -> None:
        if value is not None:
            check(inst, attribute, value)
    return optional


def _matches(pattern: re.Pattern[str]) -> Any:
    return [_str(), attr.validators.matches_re(pattern)]


def _size(_inst: Any, attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) \
            or not MIN_SIZE <= value <= MAX_SIZE:
        raise ValueError(f"{attribute.name} must be an int in {MIN_SIZE}..{MAX_SIZE}, "
                         f"not {value!r}")


def _export(value: Any) -> types.MappingProxyType[str, Any] | None:
    # opaque to everyone but the export driver: kept as a private JSON copy,
    # so a record cannot be changed through the dict it was built from
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"export must be a mapping or None, not {type(value).__name__}")
    try:
        copied = json.loads(json.dumps(dict(value), allow_nan=False))
    except (TypeError, ValueError) as e:
        raise TypeError(f"export must be JSON-safe: {e}") from None
    return types.MappingProxyType(copied)


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class Volume(Record):
    """
    One block volume, as DescribeVolumes shows it.

    @ivar size: GiB.
    @ivar status: L{states.VOLUME_STATUSES}.
    @ivar status_reason: why it is in C{error}, or C{None}.
    @ivar snapshot_id: the snapshot it was made from, or C{None}.
    @ivar host: the volume host that holds it; C{None} until scheduled.
    @ivar export: how a compute host reaches it (the export driver's
        connection info, opaque here), or C{None} until exported.
    @ivar instance_id: the instance it is attached (or being attached) to.
    @ivar device: the device name AttachVolume was given (see
        L{guest_device}).
    @ivar attach_status: L{states.ATTACH_STATUSES}; C{detached} unless in-use.
    @ivar attach_time: when the attachment was asked for.
    @ivar created_at: seconds since the epoch; with C{updated_at}.
    """

    volume_id: str = attr.ib(validator=_matches(VOLUME_ID))
    project_id: str = attr.ib(validator=_str())
    user_id: str = attr.ib(validator=_str())
    size: int = attr.ib(validator=_size)
    availability_zone: str = attr.ib(validator=_str())
    status: str = attr.ib(default=states.CREATING,
                          validator=attr.validators.in_(states.VOLUME_STATUSES))
    status_reason: str | None = attr.ib(default=None, validator=_opt_str())
    snapshot_id: str | None = attr.ib(default=None, validator=_opt_str())
    host: str | None = attr.ib(default=None, validator=_opt_str())
    export: types.MappingProxyType[str, Any] | None = attr.ib(default=None, converter=_export,
                                                              hash=False)
    instance_id: str | None = attr.ib(default=None, validator=_opt_str())
    device: str | None = attr.ib(default=None, validator=_opt_str())
    attach_status: str = attr.ib(default=states.DETACHED,
                                 validator=attr.validators.in_(states.ATTACH_STATUSES))
    attach_time: float | None = attr.ib(default=None, converter=_opt_number)
    display_name: str | None = attr.ib(default=None, validator=_opt_str())
    display_description: str | None = attr.ib(default=None, validator=_opt_str())
    created_at: float = attr.ib(converter=_number)
    updated_at: float = attr.ib(converter=_number)

    def __attrs_post_init__(self) -> None:
        # the two state fields and the attachment fields move together: a
        # record that breaks this was half-written by someone, and is refused
        in_use = self.status == states.IN_USE
        attached = self.attach_status != states.DETACHED
        if in_use != attached:
            raise ValueError(f"status {self.status!r} with attach_status "
                             f"{self.attach_status!r}")
        if attached and (self.instance_id is None or self.device is None):
            raise ValueError("an attachment needs instance_id and device")
        if not attached and (self.instance_id is not None or self.device is not None):
            raise ValueError("a detached volume has no instance_id or device")

    @property
    def guest_device(self) -> str | None:
        """@return: the disk name the guest sees (C{vdf}), or C{None} when detached."""
        return None if self.device is None else guest_device(self.device)


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class Snapshot(Record):
    """
    A point-in-time copy of a volume, kept in the object store once complete.

    @ivar volume_size: the volume's size when the snapshot was taken, GiB
        (the smallest volume it can be restored to).
    @ivar host: the volume host that takes it (the volume's host then).
    @ivar status: L{states.SNAPSHOT_STATUSES}.
    @ivar progress: C{"0%"} .. C{"100%"}.
    @ivar bucket: the object store bucket holding the data, once stored.
    @ivar object_key: the object's key in C{bucket}.
    @ivar checksum: SHA-256 (hex) of the volume's raw bytes, as
        L{nova.volume.snapshots.upload_snapshot} reports it (C{stored.sha256});
        a restore checks the bytes against it.
    @ivar raw_size: the volume's raw size in bytes (C{stored.size}).
    @ivar stored_size: the stored object's size in bytes (C{stored.stored_bytes}).
    @ivar created_at: when it was asked for (EC2's C{startTime}).
    @ivar completed_at: when it reached C{completed}, or C{None}.
    """

    snapshot_id: str = attr.ib(validator=_matches(SNAPSHOT_ID))
    volume_id: str = attr.ib(validator=_matches(VOLUME_ID))
    project_id: str = attr.ib(validator=_str())
    user_id: str = attr.ib(validator=_str())
    volume_size: int = attr.ib(validator=_size)
    host: str | None = attr.ib(default=None, validator=_opt_str())
    status: str = attr.ib(default=states.PENDING,
                          validator=attr.validators.in_(states.SNAPSHOT_STATUSES))
    status_reason: str | None = attr.ib(default=None, validator=_opt_str())
    progress: str = attr.ib(default="0%", validator=_matches(_PROGRESS))
    description: str = attr.ib(default="", validator=_str())
    bucket: str | None = attr.ib(default=None, validator=_opt_str())
    object_key: str | None = attr.ib(default=None, validator=_opt_str())
    checksum: str | None = attr.ib(
        default=None,
        validator=attr.validators.optional(attr.validators.and_(*_matches(_SHA256))))
    raw_size: int | None = attr.ib(default=None, validator=_opt_int())
    stored_size: int | None = attr.ib(default=None, validator=_opt_int())
    created_at: float = attr.ib(converter=_number)
    updated_at: float = attr.ib(converter=_number)
    completed_at: float | None = attr.ib(default=None, converter=_opt_number)

    @property
    def started_at(self) -> float:
        """@return: EC2's C{startTime}: when the snapshot was asked for."""
        return self.created_at

    @property
    def location(self) -> str | None:
        """@return: C{bucket/key} of the stored data, or C{None}."""
        if self.bucket is None or self.object_key is None:
            return None
        return f"{self.bucket}/{self.object_key}"
