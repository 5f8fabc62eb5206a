"""
One EC2 Query request, from raw HTTP to XML: parse the parameters, check the
signature against the caller's secret key, check the caller's role for the
action, run the action and render its result or its error.

This module knows nothing of twisted.web (see L{nova.api.ec2.resource}), so it
is tested with plain values.
"""

from __future__ import annotations

import hashlib
from typing import Any, Awaitable, Callable, Mapping
from urllib.parse import parse_qsl

import attr
from twisted.logger import Logger

from nova.api.ec2.actions import EC2_ACTIONS
from nova.api.ec2.params import Params
from nova.api.ec2.xmlrender import render_error, render_response
from nova.auth import roles, signer
from nova.context import RequestContext, new_request_id
from nova.exception import (ClientError, InvalidParameterValue, MissingParameter, NotAuthorized,
                            NovaError, UnsupportedOperation)

log = Logger()

#: an action: C{(context, params) -> awaitable response body}
Action = Callable[[RequestContext, Params], Awaitable[dict[str, Any]]]

#: parameters that belong to the protocol, not to the action
_PROTOCOL_PARAMS = frozenset((
    "Action", "Version", "AWSAccessKeyId", "Signature", "SignatureMethod", "SignatureVersion",
    "Timestamp", "Expires", "SecurityToken",
))


class MalformedQueryString(ClientError):
    """The query string is not valid."""

    code = "MalformedQueryString"


class InvalidAction(ClientError):
    """The action is not valid for this web service."""

    code = "InvalidAction"


class RequestTooLarge(ClientError):
    """The request body is larger than this API accepts."""

    code = "RequestEntityTooLarge"
    status = 413


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class HttpRequest:
    """
    The parts of an HTTP request the EC2 API looks at.

    @ivar path: the request path as sent, still percent-encoded.
    @ivar query: the raw query string (without C{?}).
    @ivar headers: lower-case header names to values.
    @ivar body_too_large: the body was over the limit and was not kept.
    """

    method: str
    host: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes = b""
    body_too_large: bool = False


def parse_pairs(text: str, where: str) -> list[tuple[str, str]]:
    """
    @return: the name/value pairs of a query string or form body.
    @raise MalformedQueryString: it cannot be parsed or is not UTF-8.
    """
    if not text:
        return []
    try:
        return parse_qsl(text, keep_blank_values=True, strict_parsing=True,
                         encoding="utf-8", errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise MalformedQueryString(f"The {where} is malformed") from None


def request_pairs(request: HttpRequest) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """@return: the query's pairs and the form body's pairs."""
    query = parse_pairs(request.query, "query string")
    form: list[tuple[str, str]] = []
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if request.method == "POST" and content_type == "application/x-www-form-urlencoded":
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedQueryString("The request body is not UTF-8") from None
        form = parse_pairs(text, "request body")
    return query, form


def _single_valued(pairs: list[tuple[str, str]]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise InvalidParameterValue(f"The parameter {name} was given more than once")
        params[name] = value
    return params


class Ec2Handler:
    """
    Serves one EC2-style endpoint (C{/services/Cloud} or C{/services/Admin}).

    @param auth: the L{nova.auth.manager.AuthManager} that knows users and keys.
    @param actions: action name to the coroutine function that performs it.
    @param clock: gives C{seconds()} for the signature time checks.
    @param max_skew: how far a request's timestamp may be from ours.
    @param known_actions: names that are real actions but not implemented here;
        they answer C{UnsupportedOperation} rather than C{InvalidAction}.
    """

    def __init__(self, auth: Any, actions: Mapping[str, Action], clock: Any,
                 max_skew: float, known_actions: frozenset[str] = EC2_ACTIONS) -> None:
        self._auth = auth
        self._actions = dict(actions)
        self._clock = clock
        self._max_skew = max_skew
        self._known = known_actions

    async def handle(self, request: HttpRequest) -> tuple[int, bytes]:
        """@return: the HTTP status and the XML body for C{request}."""
        request_id = new_request_id()
        action = "?"
        try:
            if request.body_too_large:
                raise RequestTooLarge()
            query, form = request_pairs(request)
            params = _single_valued(query + form)
            context = await self._authenticate(request, query, form, params, request_id)
            action = params.get("Action") or ""
            if not action:
                raise MissingParameter("The request must contain the parameter Action")
            perform = self._actions.get(action)
            if perform is None:
                if action in self._known:
                    raise UnsupportedOperation(f"The action {action} is not supported by this cloud")
                raise InvalidAction(f"The action {action} is not valid for this web service.")
            if not roles.is_authorized(action, context.roles, context.is_admin):
                raise NotAuthorized(
                    f"You are not authorized to perform this operation ({action}).")
            action_params = Params({k: v for k, v in params.items()
                                    if k not in _PROTOCOL_PARAMS and not k.startswith("X-Amz-")})
            body = await perform(context, action_params)
            return 200, render_response(action, request_id, body, params.get("Version"))
        except NovaError as e:
            if e.status >= 500:
                log.error("{action} failed: {error}", action=action, error=e)
            return e.status, render_error(e.code, e.message, request_id)
        except Exception:
            log.failure("unexpected error in {action} (request {request_id})",
                        action=action, request_id=request_id)
            return 500, render_error("InternalError",
                                     "An internal error has occurred", request_id)

    async def _authenticate(self, request: HttpRequest, query: list[tuple[str, str]],
                            form: list[tuple[str, str]], params: dict[str, str],
                            request_id: str) -> RequestContext:
        signed = signer.SignedRequest(
            method=request.method,
            host=request.headers.get("host", request.host),
            path=request.path,
            query=query,
            headers=dict(request.headers),
            payload_sha256=hashlib.sha256(request.body).hexdigest(),
            body_params=form,
        )
        claimed = signer.identify_ec2(signed)
        credentials = await self._auth.credentials_for(claimed.access_key)
        signer.verify(signed, claimed, credentials.user.secret, now=self._clock.seconds(),
                      max_skew=self._max_skew)
        return credentials.to_context(request_id)
