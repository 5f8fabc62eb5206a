"""
EC2 instance states, the actions allowed in each, the stateReason values AWS
uses, and how a hypervisor's power state maps to an EC2 state.

Transitions are data (L{TRANSITIONS}); L{nova.compute.repository} applies them
in a transaction, so two concurrent actions on one instance cannot both pass
the check.
"""

from __future__ import annotations

import types

import attr

from nova.exception import ClientError
from nova.virt import power_state

PENDING = "pending"
RUNNING = "running"
SHUTTING_DOWN = "shutting-down"
TERMINATED = "terminated"
STOPPING = "stopping"
STOPPED = "stopped"

#: EC2 state name to C{instanceState.code}
CODES: types.MappingProxyType[str, int] = types.MappingProxyType({
    PENDING: 0, RUNNING: 16, SHUTTING_DOWN: 32, TERMINATED: 48, STOPPING: 64, STOPPED: 80,
})

ALL_STATES = frozenset(CODES)


def code(state: str) -> int:
    """
    @param state: an EC2 state name.
    @return: its EC2 code.
    @raise KeyError: not an EC2 state.
    """
    return CODES[state]


class IncorrectInstanceState(ClientError):
    """The instance is not in a state that allows the action."""

    code = "IncorrectInstanceState"


@attr.s(frozen=True, auto_attribs=True)
class Transition:
    """
    What an action does.

    @ivar allowed_from: states from which the action moves the instance to C{to}.
    @ivar to: the state it moves to.
    @ivar noop_from: states where the action succeeds and changes nothing
        (EC2: stopping a stopped instance, terminating a terminated one).
    @ivar verb: for the error message ("... from which it can be I{verb}").
    """

    allowed_from: frozenset[str]
    to: str
    noop_from: frozenset[str]
    verb: str


#: action name to its L{Transition}. The first four are EC2 actions; the rest
#: are what the compute node reports when work it was asked to do is done.
TRANSITIONS: types.MappingProxyType[str, Transition] = types.MappingProxyType({
    "reboot": Transition(frozenset({RUNNING}), RUNNING, frozenset(), "rebooted"),
    "stop": Transition(frozenset({RUNNING}), STOPPING, frozenset({STOPPING, STOPPED}),
                       "stopped"),
    "start": Transition(frozenset({STOPPED}), PENDING, frozenset({PENDING, RUNNING}),
                        "started"),
    "terminate": Transition(frozenset({PENDING, RUNNING, STOPPING, STOPPED}), SHUTTING_DOWN,
                            frozenset({SHUTTING_DOWN, TERMINATED}), "terminated"),
    # node side
    "spawned": Transition(frozenset({PENDING}), RUNNING, frozenset({RUNNING}), "marked running"),
    "powered_off": Transition(frozenset({STOPPING}), STOPPED, frozenset({STOPPED}),
                              "marked stopped"),
    "destroyed": Transition(frozenset({SHUTTING_DOWN, PENDING}), TERMINATED,
                            frozenset({TERMINATED}), "marked terminated"),
})


def check_transition(instance_id: str, state: str, action: str) -> str | None:
    """
    @param instance_id: for the error message.
    @param state: the instance's current EC2 state.
    @param action: a key of L{TRANSITIONS}.
    @return: the new state, or C{None} when the action changes nothing.
    @raise IncorrectInstanceState: the action is not allowed in C{state}.
    @raise KeyError: an unknown action (a programming error).
    """
    t = TRANSITIONS[action]
    if state in t.noop_from:
        return None
    if state not in t.allowed_from:
        raise IncorrectInstanceState(
            f"The instance '{instance_id}' is not in a state from which it can be {t.verb}.")
    return t.to


# -- stateReason (code, message) pairs, as AWS writes them ----------------------

def _reason(code_: str, text: str) -> tuple[str, str]:
    # AWS repeats the code at the start of the message
    return (code_, f"{code_}: {text}")


PENDING_REASON = ("pending", "pending")
USER_INITIATED_SHUTDOWN = _reason("Client.UserInitiatedShutdown", "User initiated shutdown")
INSTANCE_INITIATED_SHUTDOWN = _reason("Client.InstanceInitiatedShutdown",
                                      "Instance initiated shutdown")
CLIENT_INTERNAL_ERROR = _reason("Client.InternalError", "Client error on launch")
SERVER_INTERNAL_ERROR = _reason("Server.InternalError", "Internal error on launch")
INSUFFICIENT_CAPACITY = _reason("Server.InsufficientInstanceCapacity",
                                "Insufficient capacity to satisfy launch request")
SCHEDULED_STOP = _reason("Server.ScheduledStop", "Stopped due to scheduled retirement")
VOLUME_LIMIT_EXCEEDED = _reason("Client.VolumeLimitExceeded",
                                "Volume limit exceeded")


# -- power state (hypervisor) to EC2 state, for reconciliation -------------------

#: what an instance whose guest reports this power state is, in EC2 terms
#: (NOSTATE: the hypervisor does not know yet; not in the table)
POWER_TO_EC2: types.MappingProxyType[int, str] = types.MappingProxyType({
    power_state.RUNNING: RUNNING,
    power_state.BLOCKED: RUNNING,
    power_state.PAUSED: RUNNING,
    power_state.SHUTDOWN: STOPPING,
    power_state.SHUTOFF: STOPPED,
    power_state.CRASHED: STOPPED,
    power_state.SUSPENDED: STOPPED,
})


def reconciled_state(current: str, power: int | None) -> str | None:
    """
    The EC2 state a compute node should record after looking at its guest.

    The record wins while an action is in flight (pending, stopping,
    shutting-down: the node will report the outcome itself) and once it is
    terminated; otherwise the hypervisor wins.

    @param current: the EC2 state in the datastore.
    @param power: the guest's power state, or C{None} when the hypervisor has
        no such guest (it vanished).
    @return: the new EC2 state, or C{None} to leave the record alone.
    """
    if current in (TERMINATED, SHUTTING_DOWN, PENDING):
        return None
    if power is None:
        # a running or stopped guest vanished: nothing is left to run
        return None if current == STOPPED else STOPPED
    target = POWER_TO_EC2.get(power)
    if target is None:
        return None
    if current == STOPPING:
        return STOPPED if target == STOPPED else None
    return None if target == current else target
