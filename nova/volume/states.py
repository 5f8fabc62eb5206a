"""
Volume and snapshot states, and the actions allowed in each.

A volume has two state fields, as EC2 shows them: its C{status} (creating,
available, in-use, deleting, error) and, while it is in use, the state of its
attachment (attaching, attached, detaching; C{detached} otherwise).
Transitions are data (L{VOLUME_TRANSITIONS}, L{SNAPSHOT_TRANSITIONS});
L{nova.volume.repository} applies them in a transaction that reads the
current state, so two concurrent actions on one volume cannot both pass.

Actions whose names are EC2 verbs (C{attach}, C{detach}, C{force_detach},
C{delete}) are the API's; the others are what the scheduler and the volume
and compute hosts report once their work is done or has failed.
"""

from __future__ import annotations

import types
from typing import Iterable

import attr

from nova.exception import ClientError

# -- volume status (EC2 volume state) ---------------------------------------
CREATING = "creating"
AVAILABLE = "available"
IN_USE = "in-use"
DELETING = "deleting"
ERROR = "error"
VOLUME_STATUSES = frozenset({CREATING, AVAILABLE, IN_USE, DELETING, ERROR})

# -- attachment status --------------------------------------------------------
ATTACHING = "attaching"
ATTACHED = "attached"
DETACHING = "detaching"
DETACHED = "detached"
ATTACH_STATUSES = frozenset({ATTACHING, ATTACHED, DETACHING, DETACHED})

# -- snapshot status -------------------------------------------------------------
PENDING = "pending"
COMPLETED = "completed"
SNAPSHOT_DELETING = "deleting"
SNAPSHOT_ERROR = "error"
SNAPSHOT_STATUSES = frozenset({PENDING, COMPLETED, SNAPSHOT_DELETING, SNAPSHOT_ERROR})

#: a volume's (status, attach_status)
VolumeState = tuple[str, str]


class IncorrectState(ClientError):
    """The volume or snapshot is not in a state that allows the action."""

    code = "IncorrectState"


class VolumeInUse(ClientError):
    """The volume is attached to an instance (or being attached or detached)."""

    code = "VolumeInUse"


def _states(*pairs: VolumeState) -> frozenset[VolumeState]:
    return frozenset(pairs)


_IN_USE_ANY = _states((IN_USE, ATTACHING), (IN_USE, ATTACHED), (IN_USE, DETACHING))


@attr.s(frozen=True, auto_attribs=True)
class VolumeTransition:
    """
    What an action does to a volume.

    @ivar allowed_from: (status, attach_status) pairs from which it moves
        the volume to C{to}.
    @ivar to: the (status, attach_status) it moves to.
    @ivar noop_from: pairs where it succeeds and changes nothing (a host
        reporting twice, a DeleteVolume repeated).
    @ivar verb: for the error message ("... cannot be I{verb}").
    @ivar in_use_error: refused while in use, it is L{VolumeInUse} (EC2's code
        for attaching or deleting an attached volume), not L{IncorrectState}.
    """

    allowed_from: frozenset[VolumeState]
    to: VolumeState
    noop_from: frozenset[VolumeState]
    verb: str
    in_use_error: bool = False


#: action name to its L{VolumeTransition}
VOLUME_TRANSITIONS: types.MappingProxyType[str, VolumeTransition] = types.MappingProxyType({
    # EC2 actions
    "attach": VolumeTransition(_states((AVAILABLE, DETACHED)), (IN_USE, ATTACHING),
                               frozenset(), "attached", in_use_error=True),
    "detach": VolumeTransition(_states((IN_USE, ATTACHED)), (IN_USE, DETACHING),
                               _states((IN_USE, DETACHING)), "detached"),
    # DetachVolume with Force: also an attachment stuck attaching or detaching
    "force_detach": VolumeTransition(_IN_USE_ANY, (IN_USE, DETACHING), frozenset(),
                                     "detached"),
    "delete": VolumeTransition(_states((AVAILABLE, DETACHED), (ERROR, DETACHED)),
                               (DELETING, DETACHED), _states((DELETING, DETACHED)),
                               "deleted", in_use_error=True),
    # scheduler and volume host
    "created": VolumeTransition(_states((CREATING, DETACHED)), (AVAILABLE, DETACHED),
                                _states((AVAILABLE, DETACHED)), "marked available"),
    "create_failed": VolumeTransition(_states((CREATING, DETACHED)), (ERROR, DETACHED),
                                      _states((ERROR, DETACHED)), "marked failed"),
    "delete_failed": VolumeTransition(_states((DELETING, DETACHED)), (ERROR, DETACHED),
                                      _states((ERROR, DETACHED)), "marked failed"),
    # compute host
    "attached": VolumeTransition(_states((IN_USE, ATTACHING)), (IN_USE, ATTACHED),
                                 _states((IN_USE, ATTACHED)), "marked attached"),
    "attach_failed": VolumeTransition(_states((IN_USE, ATTACHING)), (AVAILABLE, DETACHED),
                                      _states((AVAILABLE, DETACHED)), "marked detached"),
    "detached": VolumeTransition(_IN_USE_ANY, (AVAILABLE, DETACHED),
                                 _states((AVAILABLE, DETACHED)), "marked detached"),
    "detach_failed": VolumeTransition(_states((IN_USE, DETACHING)), (IN_USE, ATTACHED),
                                      _states((IN_USE, ATTACHED)), "marked attached"),
})


def _describe(status: str, attach_status: str) -> str:
    if status == IN_USE:
        return f"'{status}' ({attach_status})"
    return f"'{status}'"


def check_volume_transition(volume_id: str, status: str, attach_status: str, action: str,
                            instance_id: str | None = None) -> VolumeState | None:
    """
    @param volume_id: for the error message.
    @param status: the volume's current status.
    @param attach_status: its current attachment status.
    @param action: a key of L{VOLUME_TRANSITIONS}.
    @param instance_id: the instance it is attached to, for the message.
    @return: the new (status, attach_status), or C{None} when the action
        changes nothing.
    @raise VolumeInUse: attach or delete of a volume in use.
    @raise IncorrectState: any other action not allowed now.
    @raise KeyError: an unknown action (a programming error).
    """
    t = VOLUME_TRANSITIONS[action]
    current = (status, attach_status)
    if current in t.noop_from:
        return None
    if current in t.allowed_from:
        return t.to
    if t.in_use_error and status == IN_USE:
        if action == "attach":
            raise VolumeInUse(f"{volume_id} is already attached to an instance")
        raise VolumeInUse(f"Volume {volume_id} is currently attached to {instance_id}")
    if action == "attach":
        # AWS's own wording
        raise IncorrectState(f"{volume_id} is not 'available'.")
    if action == "detach" and current == (IN_USE, ATTACHING):
        raise IncorrectState(f"Volume '{volume_id}' is still attaching; "
                             "use Force to detach it")
    if action in ("detach", "force_detach"):
        raise IncorrectState(f"Volume '{volume_id}' is in the '{status}' state.")
    raise IncorrectState(f"The volume '{volume_id}' is {_describe(status, attach_status)} "
                         f"and cannot be {t.verb}.")


@attr.s(frozen=True, auto_attribs=True)
class SnapshotTransition:
    """What an action does to a snapshot (see L{VolumeTransition})."""

    allowed_from: frozenset[str]
    to: str
    noop_from: frozenset[str]
    verb: str


#: action name to its L{SnapshotTransition}: C{delete} is the API's, the rest
#: the volume host's
SNAPSHOT_TRANSITIONS: types.MappingProxyType[str, SnapshotTransition] = \
    types.MappingProxyType({
        "delete": SnapshotTransition(frozenset({COMPLETED, SNAPSHOT_ERROR}), SNAPSHOT_DELETING,
                                     frozenset({SNAPSHOT_DELETING}), "deleted"),
        "completed": SnapshotTransition(frozenset({PENDING}), COMPLETED,
                                        frozenset({COMPLETED}), "marked completed"),
        "failed": SnapshotTransition(frozenset({PENDING}), SNAPSHOT_ERROR,
                                     frozenset({SNAPSHOT_ERROR}), "marked failed"),
        "delete_failed": SnapshotTransition(frozenset({SNAPSHOT_DELETING}), SNAPSHOT_ERROR,
                                            frozenset({SNAPSHOT_ERROR}), "marked failed"),
    })


def check_snapshot_transition(snapshot_id: str, status: str, action: str) -> str | None:
    """
    @param action: a key of L{SNAPSHOT_TRANSITIONS}.
    @return: the new status, or C{None} when the action changes nothing.
    @raise IncorrectState: not allowed now.
    @raise KeyError: an unknown action.
    """
    t = SNAPSHOT_TRANSITIONS[action]
    if status in t.noop_from:
        return None
    if status not in t.allowed_from:
        raise IncorrectState(f"The snapshot '{snapshot_id}' is '{status}' and cannot be "
                             f"{t.verb}.")
    return t.to


#: the volume states a snapshot may be taken in (EC2: an in-use volume too)
SNAPSHOTTABLE: frozenset[str] = frozenset({AVAILABLE, IN_USE})


def reachable_volume_states() -> Iterable[VolumeState]:
    """@return: every (status, attach_status) pair a volume can be in."""
    return sorted(_states((CREATING, DETACHED), (AVAILABLE, DETACHED), (DELETING, DETACHED),
                          (ERROR, DETACHED)) | _IN_USE_ANY)
