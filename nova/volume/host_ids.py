"""
Checked identifiers for the volume host's commands (backing stores, exports).

Everything that goes into an argv list, a QMP command or a file name on the
volume host passes through one of these first: a volume id, a volume group
name, a directory of nova's, a socket path, a number. Each accepts only the
exact shape the tools accept, returns it, and raises
L{nova.utils.validate.InvalidIdentifier} (a client error and a
L{ValueError}) otherwise, so that no value can smuggle an option (a leading
C{-}), a second token, or a C{,} into a QEMU option string.
"""

from __future__ import annotations

import os
import re

from nova.utils.validate import InvalidIdentifier

__all__ = [
    "InvalidIdentifier",
    "VOLUME_ID",
    "volume_id",
    "volume_group",
    "host_path",
    "unix_socket_path",
    "bounded_int",
]

#: the ids nova makes: C{vol-} and 17 hex digits
VOLUME_ID = re.compile(r"vol-[0-9a-f]{17}")

# LVM: letters, digits and "+_.-", not starting with "-" (lvm(8) "VALID NAMES").
_VG = re.compile(r"[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}")
# Paths nova hands to qemu, tgtd and vblade: no blanks, no commas (QEMU's
# option syntax), no shell or option characters; absolute and normalised.
_PATH = re.compile(r"/(?:[A-Za-z0-9_.+-]+/?)*")
#: sun_path is 108 bytes, one of them the terminating NUL
UNIX_PATH_MAX = 107


def volume_id(value: object) -> str:
    """
    Check a volume id.

    @param value: C{vol-} and 17 lower-case hex digits.
    @return: C{value} unchanged.
    @raise InvalidIdentifier: for anything else.
    """
    if not isinstance(value, str) or VOLUME_ID.fullmatch(value) is None:
        raise InvalidIdentifier(f"invalid volume id {value!r}: expected vol- and 17 hex digits")
    return value


def volume_group(value: object) -> str:
    """
    Check an LVM volume group name.

    @param value: 1-127 characters of C{[A-Za-z0-9+_.-]}, not starting with
        C{-}, and neither C{.} nor C{..}.
    @return: C{value} unchanged.
    @raise InvalidIdentifier: for anything else.
    """
    if not isinstance(value, str) or _VG.fullmatch(value) is None or value in (".", ".."):
        raise InvalidIdentifier(f"invalid volume group name {value!r}")
    return value


def host_path(value: object, *, under: str | None = None) -> str:
    """
    Check a path that a host command receives (a backing file, a device, a
    state directory).

    @param value: an absolute path of C{[A-Za-z0-9_.+-]} components, with
        no C{.} or C{..} component and no doubled or trailing slash.
    @param under: when given, C{value} must lie strictly inside this
        directory.
    @return: C{value} unchanged.
    @raise InvalidIdentifier: for anything else.
    """
    if not isinstance(value, str) or _PATH.fullmatch(value) is None \
            or os.path.normpath(value) != value:
        raise InvalidIdentifier(
            f"invalid path {value!r}: expected an absolute, normalised path of"
            " [A-Za-z0-9_.+-] components")
    if under is not None:
        base = host_path(under)
        if os.path.commonpath([base, value]) != base or value == base:
            raise InvalidIdentifier(f"path {value!r} is not inside {base!r}")
    return value


def unix_socket_path(value: object) -> str:
    """
    Check the path of a unix socket nova creates or connects to.

    @param value: as for L{host_path}, and at most 107 bytes long.
    @return: C{value} unchanged.
    @raise InvalidIdentifier: for anything else.
    """
    path = host_path(value)
    if len(path.encode()) > UNIX_PATH_MAX:
        raise InvalidIdentifier(
            f"unix socket path {path!r} is longer than {UNIX_PATH_MAX} bytes;"
            " choose a shorter state directory")
    return path


def bounded_int(what: str, value: object, low: int, high: int) -> int:
    """
    Check an integer argument (a size, a tid, a shelf, a slot, a port).

    @param what: its name, for the message.
    @param value: an C{int} (not a C{bool}) in C{low..high}.
    @return: C{value} unchanged.
    @raise InvalidIdentifier: for anything else.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidIdentifier(f"{what} must be an integer, not {type(value).__name__}")
    if not low <= value <= high:
        raise InvalidIdentifier(f"invalid {what} {value}: must be {low}-{high}")
    return value
