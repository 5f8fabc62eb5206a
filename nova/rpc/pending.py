"""
The caller's side of calls: waiting for replies, timeouts, and failing calls
whose reply can no longer come. Shared by every transport.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from nova.exception import NovaError, RPCTimeout
from nova.rpc.envelope import MalformedMessage, Reply, decode_reply, failure_to_exception


class PendingCalls:
    """
    The calls of one transport that wait for a reply.

    A call is finished by exactly one of: its reply (L{reply_received}), its
    timeout, L{fail_all}, or its caller cancelling the Deferred. Whatever comes
    later for it (a late reply) is dropped.
    """

    log = Logger()

    def __init__(self, reactor: IReactorTime) -> None:
        """@param reactor: schedules the timeouts."""
        self._reactor = reactor
        self._calls: dict[str, tuple[defer.Deferred[Any], IDelayedCall]] = {}
        # msg_ids: a random prefix per transport, then a counter: unique and cheap.
        self._prefix = uuid.uuid4().hex[:12]
        self._counter = itertools.count(1)

    def __len__(self) -> int:
        return len(self._calls)

    def new_id(self) -> str:
        """@return: a msg_id not used before by this transport."""
        return f"{self._prefix}.{next(self._counter)}"

    def add(self, msg_id: str, description: str, timeout: float) -> defer.Deferred[Any]:
        """
        Wait for the reply to C{msg_id}.

        @param description: names the call in the timeout message (C{topic.method}).
        @param timeout: seconds before the Deferred fails with L{RPCTimeout}.
        @return: a Deferred firing with the result.
        """
        def cancel(d: defer.Deferred[Any]) -> None:
            entry = self._calls.pop(msg_id, None)
            if entry is not None and entry[1].active():
                entry[1].cancel()

        d: defer.Deferred[Any] = defer.Deferred(cancel)
        delayed = self._reactor.callLater(timeout, self._timed_out, msg_id, description, timeout)
        self._calls[msg_id] = (d, delayed)
        return d

    def _timed_out(self, msg_id: str, description: str, timeout: float) -> None:
        entry = self._calls.pop(msg_id, None)
        if entry is not None:
            entry[0].errback(RPCTimeout(f"no reply from {description} within {timeout:g}s"))

    def fail(self, msg_id: str, error: Exception) -> None:
        """Fail one call (its request could not be sent)."""
        entry = self._calls.pop(msg_id, None)
        if entry is not None:
            if entry[1].active():
                entry[1].cancel()
            entry[0].errback(error)

    def fail_all(self, error: NovaError) -> None:
        """Fail every pending call with C{error} (the replies cannot come any more)."""
        calls, self._calls = self._calls, {}
        for d, delayed in calls.values():
            if delayed.active():
                delayed.cancel()
            d.errback(error)

    def reply_received(self, body: bytes | str) -> None:
        """
        Finish the call a reply answers. Malformed replies are logged and
        dropped; replies to unknown (timed out) calls are dropped quietly.
        """
        try:
            reply: Reply = decode_reply(body)
        except MalformedMessage as e:
            self.log.warn("dropping malformed RPC reply: {error}", error=e)
            return
        entry = self._calls.pop(reply.msg_id, None)
        if entry is None:
            self.log.debug("dropping reply to unknown or finished call {msg_id}",
                           msg_id=reply.msg_id)
            return
        d, delayed = entry
        if delayed.active():
            delayed.cancel()
        if reply.failure is not None:
            d.errback(failure_to_exception(reply.failure))
        else:
            d.callback(reply.result)
