"""
The JSON envelopes that travel on the bus.

A request is C{{"method", "args", "context", "msg_id", "reply_to"}}; a cast has
C{msg_id} and C{reply_to} set to C{null}. A reply is C{{"msg_id", "result"}} or
C{{"msg_id", "failure": {"type", "message", "code", "status"}}}.

Every transport encodes and decodes through this module, so the in-process
broker and AMQP accept and refuse exactly the same things: a value JSON cannot
carry fails at the sender with L{MessageEncodingError}, and a malformed message
fails at the receiver with L{MalformedMessage}.
"""

from __future__ import annotations

import json
import re
from typing import Any

import attr

from nova.context import RequestContext
from nova.exception import NovaError, RemoteError
from nova.rpc.errors import InvalidTopic, MalformedMessage, MessageEncodingError

# Exact-match routing keys only: '*' and '#' are wildcards in a topic exchange,
# and queue names starting with 'amq.' are reserved by the broker.
_TOPIC = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@\-]{0,199}$")

_encoder = json.JSONEncoder(allow_nan=False, separators=(",", ":"))
_decoder = json.JSONDecoder()


def check_topic(topic: object) -> str:
    """
    Check that C{topic} can name a queue and a routing key.

    @param topic: the topic, e.g. C{compute} or C{compute.host1}.
    @return: C{topic}.
    @raise InvalidTopic: it is empty, too long, reserved or has a wildcard.
    """
    if not isinstance(topic, str) or not _TOPIC.match(topic) or topic.startswith("amq."):
        raise InvalidTopic(f"invalid RPC topic {topic!r}")
    return topic


@attr.s(frozen=True, auto_attribs=True, slots=True)
class Request:
    """
    A call or cast as it travels.

    @ivar method: the name of the exposed method.
    @ivar args: its keyword arguments.
    @ivar context: the caller's L{nova.context.RequestContext} as a dict, or C{None}.
    @ivar msg_id: the call's id, C{None} for a cast.
    @ivar reply_to: the queue the reply goes to, C{None} for a cast.
    """

    method: str
    args: dict[str, Any]
    context: dict[str, Any] | None = None
    msg_id: str | None = None
    reply_to: str | None = None


@attr.s(frozen=True, auto_attribs=True, slots=True)
class Reply:
    """
    The answer to a call: a result, or a failure dict (see L{failure_to_dict}).
    """

    msg_id: str
    result: Any = None
    failure: dict[str, Any] | None = None


def _dumps(payload: dict[str, Any], what: str) -> bytes:
    try:
        return _encoder.encode(payload).encode("ascii")
    except (TypeError, ValueError, RecursionError) as e:
        raise MessageEncodingError(f"{what} cannot be encoded as JSON: {e}") from None


def _loads(body: bytes | str) -> Any:
    try:
        text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
        return _decoder.decode(text)
    except (ValueError, RecursionError) as e:
        # UnicodeDecodeError is a ValueError
        raise MalformedMessage(f"message is not valid JSON: {e}") from None


def encode_request(request: Request) -> bytes:
    """
    @return: the wire form of C{request}.
    @raise MessageEncodingError: its arguments or context are not JSON-serialisable.
    """
    return _dumps(
        {
            "method": request.method,
            "args": request.args,
            "context": request.context,
            "msg_id": request.msg_id,
            "reply_to": request.reply_to,
        },
        f"arguments of {request.method!r}",
    )


def _address(value: object) -> str | None:
    """A msg_id or reply_to that can be used: a short, non-empty string."""
    if isinstance(value, str) and 0 < len(value) <= 255:
        return value
    return None


def _optional_address(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and _address(value) is None:
        raise MalformedMessage(f"request field {key!r} must be a short string or null")
    return value


def request_body(topic: str, method: str, args: dict[str, Any],
                 context: RequestContext | None, msg_id: str | None,
                 reply_to: str | None) -> bytes:
    """
    The wire form of a call (with C{msg_id} and C{reply_to}) or a cast (without).

    @raise InvalidTopic: C{topic} is not a valid topic.
    @raise MessageEncodingError: C{args} cannot be sent as JSON.
    """
    check_topic(topic)
    return encode_request(Request(
        method=method, args=args, context=context.to_dict() if context else None,
        msg_id=msg_id, reply_to=reply_to if msg_id else None))


def decode_request(body: bytes | str) -> Request:
    """
    Parse a request.

    @return: the L{Request}.
    @raise MalformedMessage: C{body} is not a request envelope. When the
        envelope still names a reply queue and a msg_id, the exception carries
        them as C{msg_id} and C{reply_to} so that the caller can be told.
    """
    data = _loads(body)
    if not isinstance(data, dict):
        raise MalformedMessage("request is not a JSON object")
    msg_id, reply_to = _address(data.get("msg_id")), _address(data.get("reply_to"))
    try:
        method = data.get("method")
        if not isinstance(method, str) or not method:
            raise MalformedMessage("request has no method name")
        args = data.get("args", {})
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise MalformedMessage("request args must be a JSON object")
        context = data.get("context")
        if context is not None and not isinstance(context, dict):
            raise MalformedMessage("request context must be a JSON object or null")
        return Request(
            method=method,
            args=args,
            context=context,
            msg_id=_optional_address(data, "msg_id"),
            reply_to=_optional_address(data, "reply_to"),
        )
    except MalformedMessage as e:
        e.msg_id, e.reply_to = msg_id, reply_to  # type: ignore[attr-defined]
        raise


def encode_reply(reply: Reply) -> bytes:
    """
    @return: the wire form of C{reply}.
    @raise MessageEncodingError: its result is not JSON-serialisable.
    """
    if reply.failure is not None:
        return _dumps({"msg_id": reply.msg_id, "failure": reply.failure}, "failure")
    return _dumps({"msg_id": reply.msg_id, "result": reply.result}, "result")


def decode_reply(body: bytes | str) -> Reply:
    """
    Parse a reply.

    @return: the L{Reply}.
    @raise MalformedMessage: C{body} is not a reply envelope.
    """
    data = _loads(body)
    if not isinstance(data, dict) or not isinstance(data.get("msg_id"), str):
        raise MalformedMessage("reply is not a JSON object with a msg_id")
    if "failure" in data:
        failure = data["failure"]
        if not isinstance(failure, dict):
            raise MalformedMessage("reply failure must be a JSON object")
        return Reply(msg_id=data["msg_id"], failure=failure)
    if "result" not in data:
        raise MalformedMessage("reply has neither result nor failure")
    return Reply(msg_id=data["msg_id"], result=data["result"])


def failure_to_dict(error: BaseException) -> dict[str, Any]:
    """
    The structured form of an error raised by a remote method.

    A L{NovaError} keeps its code and status; any other exception is reported
    with code C{InternalError} and status 500 (the dispatcher has logged its
    traceback on the server).

    @return: C{{"type", "message", "code", "status"}}.
    """
    if isinstance(error, RemoteError):
        # A call that failed further down the chain: keep the original type.
        return {"type": error.remote_type, "message": error.message,
                "code": error.code, "status": error.status}
    if isinstance(error, NovaError):
        return {"type": type(error).__name__, "message": error.message,
                "code": error.code, "status": error.status}
    return {"type": type(error).__name__, "message": str(error),
            "code": "InternalError", "status": 500}


def failure_to_exception(failure: dict[str, Any]) -> RemoteError:
    """
    @param failure: a failure dict from a reply (possibly from a peer that sent junk).
    @return: the L{RemoteError} the caller raises.
    """
    remote_type = failure.get("type")
    message = failure.get("message")
    code = failure.get("code")
    status = failure.get("status")
    return RemoteError(
        remote_type if isinstance(remote_type, str) else "UnknownError",
        message if isinstance(message, str) else repr(message),
        code if isinstance(code, str) else None,
        status if isinstance(status, int) and not isinstance(status, bool) else None,
    )
