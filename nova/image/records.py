"""
The image record (L{Image}), image ids, states, and the image errors that
carry EC2 codes. Pure: no datastore.

Ids: C{ami-} (machine), C{aki-} (kernel) or C{ari-} (ramdisk), then 17 hex
digits for new ids; ids with 8 hex digits (the 2010 and pre-2016 AWS form)
are well-formed too, so that an old id answers C{InvalidAMIID.NotFound}
rather than C{Malformed}, as AWS does.
"""

from __future__ import annotations

import re
import secrets
from typing import Any, Callable, Iterable

import attr

from nova.datastore.records import Record, _number, _str, state_reason
from nova.exception import ClientError, InvalidParameterValue, NotFound

MACHINE = "machine"
KERNEL = "kernel"
RAMDISK = "ramdisk"

#: image type to the prefix of its ids
PREFIXES = {MACHINE: "ami", KERNEL: "aki", RAMDISK: "ari"}
IMAGE_TYPES = frozenset(PREFIXES)

#: any image id, of any type
IMAGE_ID = re.compile(r"(ami|aki|ari)-([0-9a-f]{8}|[0-9a-f]{17})\Z")

PENDING = "pending"
DECRYPTING = "decrypting"
UNTARRING = "untarring"
AVAILABLE = "available"
FAILED = "failed"
#: the states an image goes through (2010: info.json's states); a
#: deregistered image is deleted, not kept in a state
STATES = frozenset({PENDING, DECRYPTING, UNTARRING, AVAILABLE, FAILED})
#: state to the states an image may move to from it: forward only, and to
#: C{failed} from any unfinished state, so a late worker cannot bring a
#: failed image back; staying in a state is allowed (to record size, checksum)
NEXT_STATES = {
    PENDING: frozenset({PENDING, DECRYPTING, UNTARRING, AVAILABLE, FAILED}),
    DECRYPTING: frozenset({DECRYPTING, UNTARRING, AVAILABLE, FAILED}),
    UNTARRING: frozenset({UNTARRING, AVAILABLE, FAILED}),
    AVAILABLE: frozenset({AVAILABLE}),
    FAILED: frozenset({FAILED}),
}

ARCHITECTURES = frozenset({"x86_64", "i386"})
DISK_FORMATS = frozenset({"raw", "qcow2", "aki", "ari", "bundle"})
#: disk formats each image type may have (C{bundle} until the bundle is unpacked)
_FORMATS_OF_TYPE = {
    MACHINE: frozenset({"raw", "qcow2", "bundle"}),
    KERNEL: frozenset({"aki", "bundle"}),
    RAMDISK: frozenset({"ari", "bundle"}),
}

#: AWS: 3 to 128 characters of letters, digits, ( ) [ ] space . / - ' @ _
_NAME = re.compile(r"[A-Za-z0-9()\[\] ./\-'@_]{3,128}\Z")
MAX_DESCRIPTION = 255
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")


class InvalidAMIIDMalformed(InvalidParameterValue, ValueError):
    """A string that is not an image id."""

    code = "InvalidAMIID.Malformed"


class InvalidAMIIDNotFound(NotFound):
    """No such image, or one the caller may not see."""

    code = "InvalidAMIID.NotFound"


class InvalidAMIIDUnavailable(ClientError):
    """The image exists but is not available (pending, failed ...)."""

    code = "InvalidAMIID.Unavailable"


class InvalidAMINameMalformed(InvalidParameterValue, ValueError):
    """An image name or description AWS would not accept."""

    code = "InvalidAMIName.Malformed"


class IncorrectImageState(ClientError):
    """The image is not in a state that allows the change."""

    code = "IncorrectState"


def new_image_id(image_type: str) -> str:
    """
    @param image_type: C{machine}, C{kernel} or C{ramdisk}.
    @return: a fresh id with the type's prefix and 17 hex digits.
    @raise ValueError: an unknown image type.
    """
    if image_type not in PREFIXES:
        raise ValueError(f"unknown image type {image_type!r}")
    return f"{PREFIXES[image_type]}-{secrets.token_hex(9)[:17]}"


def check_image_id(image_id: object, image_type: str | None = None) -> str:
    """
    @param image_type: when given, the id must have this type's prefix.
    @return: C{image_id}, a well-formed image id.
    @raise InvalidAMIIDMalformed: it is not one.
    """
    if not isinstance(image_id, str) or not IMAGE_ID.match(image_id) or (
            image_type is not None and not image_id.startswith(PREFIXES[image_type] + "-")):
        raise InvalidAMIIDMalformed(f'Invalid id: "{image_id}"')
    return image_id


def type_of_id(image_id: str) -> str:
    """
    @return: the image type an id's prefix names.
    @raise InvalidAMIIDMalformed: not an image id.
    """
    prefix = check_image_id(image_id).split("-", 1)[0]
    return next(t for t, p in PREFIXES.items() if p == prefix)


def check_name(name: object) -> str:
    """
    @return: C{name}, an image name AWS accepts.
    @raise InvalidAMINameMalformed: too short, too long, or a character AWS refuses.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidAMINameMalformed(
            f"AMI names must be between 3 and 128 characters long, and may contain letters, "
            f"numbers, '(', ')', '.', '-', '/', '[', ']', ' ', \"'\", '@' and '_': {name!r}")
    return name


def check_description(description: object) -> str:
    """
    @return: C{description}, at most 255 characters.
    @raise InvalidAMINameMalformed: not text, or too long.
    """
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise InvalidAMINameMalformed(
            f"The description must be text of at most {MAX_DESCRIPTION} characters")
    return description


def check_location(location: object) -> str:
    """
    @return: C{location}, C{bucket/key} with both parts non-empty.
    @raise InvalidParameterValue: anything else.
    """
    if isinstance(location, str):
        bucket, _, key = location.partition("/")
        if bucket and key:
            return location
    raise InvalidParameterValue(
        f"Invalid image location {location!r}: expected bucket/key of the manifest or image")


def _users(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        raise TypeError(f"launch_permission_users must be a list of str, not {value!r}")
    for v in value:
        if not isinstance(v, str) or not v:
            raise TypeError(f"launch_permission_users must be non-empty str, not {v!r}")
    return tuple(sorted(set(value)))


def _opt(check: Any) -> Any:
    def validate(_inst: Any, attribute: Any, value: Any) -> None:
        if value is not None:
            check(_inst, attribute, value)
    return validate


def _image_id(inst: Any, _attribute: Any, value: Any) -> None:
    check_image_id(value)


def _image_type(inst: "Image", _attribute: Any, value: Any) -> None:
    if value not in IMAGE_TYPES:
        raise ValueError(f"image_type must be one of {sorted(IMAGE_TYPES)}, not {value!r}")
    check_image_id(inst.image_id, value)


def _location(_inst: Any, _attribute: Any, value: Any) -> None:
    try:
        check_location(value)
    except InvalidParameterValue as e:
        raise ValueError(str(e)) from None


def _kernel(inst: "Image", attribute: Any, value: Any) -> None:
    if inst.image_type != MACHINE:
        raise ValueError(f"only machine images have a default {attribute.name}")
    check_image_id(value, KERNEL if attribute.name == "kernel_id" else RAMDISK)


def _disk_format(inst: "Image", _attribute: Any, value: Any) -> None:
    if value not in _FORMATS_OF_TYPE.get(inst.image_type, frozenset()):
        raise ValueError(f"a {inst.image_type} image cannot have disk format {value!r}")


def _size(_inst: Any, _attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"size must be a non-negative int, not {value!r}")


def _checksum(_inst: Any, _attribute: Any, value: Any) -> None:
    if not isinstance(value, str) or not _SHA256.match(value):
        raise ValueError(f"checksum must be a lowercase hex SHA-256, not {value!r}")


def _name(_inst: Any, _attribute: Any, value: Any) -> None:
    check_name(value)


def _description(_inst: Any, _attribute: Any, value: Any) -> None:
    check_description(value)


def string_list(values: Iterable[str] | str | None,
                invalid: Callable[[object], Exception]) -> list[str]:
    """
    @param values: a list of strings, one string, or C{None} (none).
    @param invalid: makes the error for a value that is not a string.
    @return: the strings as a list.
    """
    if values is None:
        return []
    out = [values] if isinstance(values, str) else list(values)
    for value in out:
        if not isinstance(value, str):
            raise invalid(value)
    return out


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class Image(Record):
    """
    A registered image (EC2 DescribeImages). Its data lives in the object
    store at C{image_location}.

    @ivar image_location: C{bucket/key} of the manifest (bundles) or of the
        single disk object (raw, qcow2, aki, ari).
    @ivar image_type: C{machine}, C{kernel} or C{ramdisk}; the id's prefix
        (ami, aki, ari) follows it.
    @ivar state: one of L{STATES}.
    @ivar state_reason: EC2 stateReason as C{(code, message)}, or C{None}.
    @ivar owner_project_id: the project that registered it.
    @ivar is_public: launch permission for group C{all}.
    @ivar launch_permission_users: the other projects that may launch it
        (sorted, without duplicates).
    @ivar kernel_id: the default kernel (C{aki-}) of a machine image, or C{None}.
    @ivar ramdisk_id: the default ramdisk (C{ari-}) of a machine image, or C{None}.
    @ivar disk_format: C{raw}, C{qcow2}, C{aki}, C{ari}, or C{bundle} until
        the bundle has been unpacked.
    @ivar size: bytes of the stored disk data, once known.
    @ivar checksum: lowercase hex SHA-256 of the stored disk data, once known.
    @ivar data_location: C{bucket/key} in the object store of the exact bytes
        to boot (nova's own immutable copy, C{nova-images/<image id>}), once
        the image is available; C{None} before (and in records written
        before the field existed).
    @ivar created_at: seconds since the epoch.
    """

    image_id: str = attr.ib(validator=_image_id)
    image_location: str = attr.ib(validator=_location)
    image_type: str = attr.ib(validator=_image_type)
    state: str = attr.ib(default=PENDING, validator=attr.validators.in_(STATES))
    state_reason: tuple[str, str] | None = attr.ib(default=None, converter=state_reason)
    owner_project_id: str = attr.ib(validator=_str())
    is_public: bool = attr.ib(default=False, validator=attr.validators.instance_of(bool))
    launch_permission_users: tuple[str, ...] = attr.ib(default=(), converter=_users)
    architecture: str = attr.ib(default="x86_64", validator=attr.validators.in_(ARCHITECTURES))
    kernel_id: str | None = attr.ib(default=None, validator=_opt(_kernel))
    ramdisk_id: str | None = attr.ib(default=None, validator=_opt(_kernel))
    disk_format: str = attr.ib(validator=_disk_format)
    root_device_name: str = attr.ib(default="/dev/sda1", validator=_str())
    size: int | None = attr.ib(default=None, validator=_opt(_size))
    checksum: str | None = attr.ib(default=None, validator=_opt(_checksum))
    name: str | None = attr.ib(default=None, validator=_opt(_name))
    description: str | None = attr.ib(default=None, validator=_opt(_description))
    data_location: str | None = attr.ib(default=None, validator=_opt(_location))
    created_at: float = attr.ib(converter=_number)

    @property
    def is_available(self) -> bool:
        """@return: whether instances may be launched from it now."""
        return self.state == AVAILABLE
