"""
The frozen records kept in the datastore.

Each record is stored as one JSON string under its key (L{nova.datastore.keys}),
not as a Redis hash, because:

 - a hash holds strings only: ints, floats, booleans and the nested
   C{Service.capacity} would need a conversion per field, and a JSON document
   keeps their types;
 - records are read and replaced whole, in transactions that WATCH the one
   record key, so a single GET/SET is all that is needed;
 - fields added later simply appear in the document: L{Record.from_dict}
   ignores fields it does not know, so an older process can read a newer
   record (rolling upgrades).

Changing a record means building a new one (C{attr.evolve}) and writing it.
"""

from __future__ import annotations

import json
import re
import secrets
import types
import functools
from typing import Any, Mapping, Type, TypeVar

import attr

from nova.datastore.errors import CorruptRecord

R = TypeVar("R", bound="Record")

_KEY_PAIR_ID = re.compile(r"key-[0-9a-f]{17}\Z")
KEY_TYPES = ("rsa", "ed25519")


@functools.lru_cache(maxsize=None)
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in attr.fields(cls))


class Record:
    """
    Base of the stored records (attrs classes): conversion to and from JSON.
    """

    def to_dict(self) -> dict[str, Any]:
        """@return: the fields as JSON-safe plain types."""
        return attr.asdict(self, value_serializer=_plain)  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: Type[R], data: Mapping[str, Any]) -> R:
        """
        @param data: what L{to_dict} returned (unknown fields are ignored).
        @raise CorruptRecord: a field is missing or has the wrong type.
        """
        if not isinstance(data, Mapping):
            raise CorruptRecord(f"{cls.__name__}: expected an object, got {type(data).__name__}")
        names = _field_names(cls)
        try:
            return cls(**{k: v for k, v in data.items() if k in names})
        except (TypeError, ValueError) as e:
            raise CorruptRecord(f"{cls.__name__}: {e}") from None

    def to_json(self) -> str:
        """@return: the record as stored."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_json(cls: Type[R], text: str) -> R:
        """
        @raise CorruptRecord: not JSON, or not a valid record.
        """
        try:
            data = json.loads(text)
        except ValueError as e:
            raise CorruptRecord(f"{cls.__name__}: not JSON: {e}") from None
        return cls.from_dict(data)


def _plain(_inst: Any, _field: Any, value: Any) -> Any:
    if isinstance(value, types.MappingProxyType):
        return dict(value)
    return value


def _number(value: Any) -> float:
    # JSON gives an int for a whole float written by another encoder
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _freeze_figures(value: Any) -> types.MappingProxyType[str, int | float]:
    if not isinstance(value, Mapping):
        raise TypeError(f"capacity must be a mapping, got {type(value).__name__}")
    for k, v in value.items():
        if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"capacity figures are str: number, not {k!r}: {v!r}")
    return types.MappingProxyType(dict(value))


def _str() -> Any:
    return attr.validators.instance_of(str)


def _int() -> Any:
    def check(_inst: Any, attribute: Any, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{attribute.name} must be an int, not {value!r}")
    return check


def state_reason(value: Any) -> tuple[str, str] | None:
    """
    Converter for EC2 C{stateReason} fields: C{(code, message)} or C{None}
    (JSON brings the pair back as a list).

    @raise TypeError: anything else.
    """
    if value is None:
        return None
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, str) for v in value)):
        raise TypeError(f"state_reason must be (code, message), not {value!r}")
    return (value[0], value[1])


def new_key_pair_id() -> str:
    """@return: a fresh EC2-style key pair id, C{key-} and 17 hex digits."""
    return "key-" + secrets.token_hex(9)[:17]


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class KeyPair(Record):
    """
    An SSH key pair registered in a project (EC2 CreateKeyPair); the private
    half is given to the user once and never stored.

    @ivar fingerprint: as EC2 shows it (MD5 of the DER public key for RSA
        keys it generated, SHA-256 for ed25519).
    @ivar public_key: the OpenSSH one-line public key.
    @ivar created_at: seconds since the epoch.
    """

    project_id: str = attr.ib(validator=_str())
    name: str = attr.ib(validator=_str())
    user_id: str = attr.ib(validator=_str())
    fingerprint: str = attr.ib(validator=_str())
    public_key: str = attr.ib(validator=_str())
    key_type: str = attr.ib(validator=attr.validators.in_(KEY_TYPES))
    created_at: float = attr.ib(converter=_number)
    key_pair_id: str = attr.ib(validator=[_str(), attr.validators.matches_re(_KEY_PAIR_ID)])


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class Service(Record):
    """
    A running nova service (compute, network, volume, scheduler) as last
    reported by its heartbeat.

    @ivar topic: the RPC topic it consumes (C{compute} ...).
    @ivar zone: its availability zone.
    @ivar updated_at: time of the last heartbeat, seconds since the epoch.
    @ivar report_count: heartbeats so far.
    @ivar capacity: figures the scheduler uses, e.g. C{vcpus}, C{memory_mb},
        C{disk_gb} and C{vcpus_used}, C{memory_mb_used}, C{disk_gb_used};
        read-only (a mapping proxy).
    @ivar disabled: set by an admin; a disabled service gets no new work.
    @ivar started_at: when this run of the service started.
    """

    host: str = attr.ib(validator=_str())
    binary: str = attr.ib(validator=_str())
    topic: str = attr.ib(validator=_str())
    zone: str = attr.ib(validator=_str())
    updated_at: float = attr.ib(converter=_number)
    report_count: int = attr.ib(validator=_int())
    capacity: types.MappingProxyType[str, int | float] = attr.ib(
        factory=dict, converter=_freeze_figures, hash=False)
    disabled: bool = attr.ib(default=False, validator=attr.validators.instance_of(bool))
    started_at: float = attr.ib(converter=_number)
