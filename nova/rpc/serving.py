"""
The consumer's side: one received request, dispatched and answered. Shared by
every transport.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from nova.exception import NovaError
from nova.rpc.envelope import (
    MalformedMessage,
    Reply,
    Request,
    decode_request,
    encode_reply,
    failure_to_dict,
)
from nova.rpc.errors import MessageEncodingError
from nova.rpc.interfaces import IDispatcher

log = Logger(namespace="nova.rpc.serving")

#: sends a reply body to a reply queue; errors are its own business
SendReply = Callable[[str, bytes], Any]


def handle_request(body: bytes | str, topic: str, dispatcher: IDispatcher,
                   send_reply: SendReply) -> defer.Deferred[None]:
    """
    Decode a request, dispatch it, and send the reply if it is a call.

    A malformed request is answered with a failure when it still names a reply
    queue and a msg_id, and is otherwise logged and dropped.

    @param body: the message as received.
    @param topic: the topic it came from (for the logs).
    @param dispatcher: calls the method.
    @param send_reply: C{send_reply(reply_to, body)} publishes a reply.
    @return: a Deferred firing with C{None} once the request is handled; it
        never fails.
    """
    try:
        request = decode_request(body)
    except MalformedMessage as e:
        msg_id = getattr(e, "msg_id", None)
        reply_to = getattr(e, "reply_to", None)
        log.warn("malformed RPC request on {topic}: {error}", topic=topic, error=e)
        if msg_id and reply_to:
            _reply(send_reply, reply_to, Reply(msg_id=msg_id, failure=failure_to_dict(e)))
        return defer.succeed(None)
    d = dispatcher.dispatch(request.method, request.args, request.context)
    d.addCallbacks(_succeeded, _failed, callbackArgs=(request, topic, send_reply),
                   errbackArgs=(request, topic, send_reply))
    return d


def _succeeded(result: Any, request: Request, topic: str, send_reply: SendReply) -> None:
    if request.msg_id and request.reply_to:
        _reply(send_reply, request.reply_to, Reply(msg_id=request.msg_id, result=result))


def _failed(failure: Failure, request: Request, topic: str, send_reply: SendReply) -> None:
    if request.msg_id and request.reply_to:
        _reply(send_reply, request.reply_to,
               Reply(msg_id=request.msg_id, failure=failure_to_dict(failure.value)))
    elif failure.check(NovaError):
        # A cast has nobody to tell; the dispatcher logged non-Nova errors already.
        log.warn("RPC cast {topic}.{method} failed: {error}", topic=topic,
                 method=request.method, error=failure.value)


def _reply(send_reply: SendReply, reply_to: str, reply: Reply) -> None:
    try:
        body = encode_reply(reply)
    except MessageEncodingError as e:
        log.error("RPC result for {msg_id} cannot be sent: {error}", msg_id=reply.msg_id, error=e)
        body = encode_reply(Reply(msg_id=reply.msg_id, failure=failure_to_dict(e)))
    try:
        send_reply(reply_to, body)
    except NovaError as e:
        # The connection is gone: the caller's call fails on its side anyway.
        log.info("RPC reply {msg_id} not sent: {error}", msg_id=reply.msg_id, error=e)
