"""
Waiting for something only a look can tell (a device to appear, a process to
end, a disk to leave a guest): look, and look again after a pause on the
given clock, up to a timeout. Never blocks the reactor; tests drive it with
a L{twisted.internet.task.Clock}.
"""

from __future__ import annotations

import inspect
from typing import Any, Awaitable, Callable

from twisted.internet import task

__all__ = ["poll_until"]


async def poll_until(clock: Any, done: Callable[[], bool | Awaitable[bool]], *,
                     timeout: float, interval: float) -> bool:
    """
    @param clock: an C{IReactorTime} (the pauses are on it).
    @param done: C{() -> bool} (or an awaitable of one): whether the wait is over.
    @param timeout: seconds of pauses after which it gives up.
    @param interval: seconds between two looks.
    @return: C{True} once C{done()} said so; C{False} when it still did
        not after C{timeout} seconds (one last look is made then).
    """
    waited = 0.0
    while True:
        answer = done()
        if inspect.isawaitable(answer):
            answer = await answer
        if answer:
            return True
        if waited >= timeout:
            return False
        await task.deferLater(clock, interval, lambda: None)
        waited += interval
