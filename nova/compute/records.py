"""
The compute records kept in the datastore: L{Reservation} (one RunInstances
call) and L{Instance}. Both are frozen attrs classes stored as JSON, through
the shared L{nova.datastore.records.Record} base.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from typing import Any

import attr

from nova.compute import instance_types, states
from nova.datastore.records import Record, _int, _number, _str, state_reason
from nova.exception import InvalidParameterValue

INSTANCE_ID = re.compile(r"i-[0-9a-f]{17}\Z")
RESERVATION_ID = re.compile(r"r-[0-9a-f]{17}\Z")

#: EC2's limit on user data, counted after base64 decoding
MAX_USER_DATA = 16 * 1024


class InvalidUserData(InvalidParameterValue, ValueError):
    """User data that is not base64, or longer than 16 KiB decoded."""


def new_instance_id() -> str:
    """@return: a fresh EC2-style instance id, C{i-} and 17 hex digits."""
    return "i-" + secrets.token_hex(9)[:17]


def new_reservation_id() -> str:
    """@return: a fresh EC2-style reservation id, C{r-} and 17 hex digits."""
    return "r-" + secrets.token_hex(9)[:17]


def new_mac_address() -> str:
    """@return: a random locally administered unicast MAC (02:16:3e:xx:xx:xx)."""
    return "02:16:3e:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3))


def check_user_data(text: str) -> str:
    """
    @param text: user data as the API carries it (base64).
    @return: C{text}.
    @raise InvalidUserData: not base64, or over L{MAX_USER_DATA} bytes decoded.
    """
    if not isinstance(text, str):
        raise InvalidUserData(f"Invalid value for UserData: expected text, got {text!r}")
    try:
        decoded = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise InvalidUserData("Invalid BASE64 encoding of user data.") from None
    if len(decoded) > MAX_USER_DATA:
        raise InvalidUserData(f"User data is limited to {MAX_USER_DATA} bytes")
    return text


def _strs(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise TypeError(f"expected a list of str, got {value!r}")
    for v in value:
        if not isinstance(v, str):
            raise TypeError(f"expected a list of str, got {value!r}")
    return tuple(value)


def _opt_number(value: Any) -> float | None:
    return None if value is None else _number(value)


def _opt_str() -> Any:
    return attr.validators.optional(_str())


def _matches(pattern: re.Pattern[str]) -> Any:
    return [_str(), attr.validators.matches_re(pattern)]


def _user_data(_inst: Any, _attribute: Any, value: str) -> None:
    check_user_data(value)


def _instance_type(_inst: Any, _attribute: Any, value: str) -> None:
    if value not in instance_types.INSTANCE_TYPES:
        raise ValueError(f"unknown instance type {value!r}")


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class Reservation(Record):
    """
    One RunInstances call: the instances it launched, as a group.

    @ivar instance_ids: in launch index order.
    @ivar client_token: the request's ClientToken, or C{None}.
    @ivar created_at: seconds since the epoch.
    """

    reservation_id: str = attr.ib(validator=_matches(RESERVATION_ID))
    project_id: str = attr.ib(validator=_str())
    user_id: str = attr.ib(validator=_str())
    instance_ids: tuple[str, ...] = attr.ib(converter=_strs)
    security_groups: tuple[str, ...] = attr.ib(converter=_strs, default=("default",))
    client_token: str | None = attr.ib(default=None, validator=_opt_str())
    created_at: float = attr.ib(converter=_number)


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class Instance(Record):
    """
    One instance, as DescribeInstances shows it.

    @ivar state: an EC2 state name (L{nova.compute.states}).
    @ivar state_reason: EC2 stateReason as C{(code, message)}, or C{None}.
    @ivar user_data: base64 text (empty for none), at most 16 KiB decoded.
    @ivar host: the compute host, C{None} until scheduled.
    @ivar power_state: the last power state the host reported
        (L{nova.virt.power_state}).
    @ivar launched_at: when it first ran, or C{None}.
    @ivar terminated_at: when it reached C{terminated}, or C{None}; it stays
        visible for an hour after.
    @ivar created_at: seconds since the epoch; with C{updated_at}.
    """

    instance_id: str = attr.ib(validator=_matches(INSTANCE_ID))
    reservation_id: str = attr.ib(validator=_matches(RESERVATION_ID))
    project_id: str = attr.ib(validator=_str())
    user_id: str = attr.ib(validator=_str())
    image_id: str = attr.ib(validator=_str())
    kernel_id: str | None = attr.ib(default=None, validator=_opt_str())
    ramdisk_id: str | None = attr.ib(default=None, validator=_opt_str())
    instance_type: str = attr.ib(validator=[_str(), _instance_type])
    key_name: str | None = attr.ib(default=None, validator=_opt_str())
    user_data: str = attr.ib(default="", validator=[_str(), _user_data])
    security_groups: tuple[str, ...] = attr.ib(converter=_strs, default=("default",))
    #: the groups' ids (C{sg-...}), in the order of C{security_groups}
    security_group_ids: tuple[str, ...] = attr.ib(converter=_strs, default=())
    availability_zone: str = attr.ib(default="nova", validator=_str())
    host: str | None = attr.ib(default=None, validator=_opt_str())
    launch_index: int = attr.ib(default=0, validator=_int())
    state: str = attr.ib(default=states.PENDING,
                         validator=attr.validators.in_(states.ALL_STATES))
    state_reason: tuple[str, str] | None = attr.ib(default=None, converter=state_reason)
    private_ip: str | None = attr.ib(default=None, validator=_opt_str())
    public_ip: str | None = attr.ib(default=None, validator=_opt_str())
    mac_address: str = attr.ib(validator=_str())
    launched_at: float | None = attr.ib(default=None, converter=_opt_number)
    terminated_at: float | None = attr.ib(default=None, converter=_opt_number)
    client_token: str | None = attr.ib(default=None, validator=_opt_str())
    created_at: float = attr.ib(converter=_number)
    updated_at: float = attr.ib(converter=_number)
    power_state: int = attr.ib(default=0, validator=_int())

    @property
    def state_code(self) -> int:
        """@return: the EC2 C{instanceState.code}."""
        return states.code(self.state)

    @property
    def vcpus(self) -> int:
        """@return: the virtual CPUs of its instance type."""
        return instance_types.get(self.instance_type).vcpus

    @property
    def memory_mb(self) -> int:
        """@return: the RAM of its instance type, in MiB."""
        return instance_types.get(self.instance_type).memory_mb
