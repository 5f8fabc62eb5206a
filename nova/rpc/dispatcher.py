"""
Which methods of a manager can be called over RPC, and calling them.

Only methods marked with L{expose} are callable. The L{Dispatcher} builds its
table once, when it is made, from the target's class; a name that arrives on
the wire is only ever looked up in that table, never with C{getattr}, so a
message cannot reach a private method, an attribute or an unexposed helper.

The dispatcher is also the RPC error boundary on the server side: a
L{NovaError} travels back as it is, while any other exception is logged here
with its traceback and travels back as an C{InternalError}.
"""

from __future__ import annotations

import inspect
from typing import Any, Awaitable, Callable, TypeVar

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from nova.context import RequestContext
from nova.exception import NovaError
from nova.rpc.errors import InvalidArguments, UnknownMethod
from nova.rpc.interfaces import IDispatcher

_MARK = "__nova_rpc_exposed__"

F = TypeVar("F", bound=Callable[..., Any])


def expose(method: F) -> F:
    """
    Mark a manager method as callable over RPC.

    The method is called as C{method(context, **args)}, where C{context} is a
    L{RequestContext}; it may be a plain function or an C{async def}, and it
    returns something JSON can carry.

    @param method: the function to mark.
    @return: C{method} itself.
    """
    setattr(method, _MARK, True)
    return method


def is_exposed(method: object) -> bool:
    """@return: whether C{method} (or the function under it) was marked with L{expose}."""
    return bool(getattr(getattr(method, "__func__", method), _MARK, False))


def _check_signature(name: str, bound: Callable[..., Any]) -> inspect.Signature:
    signature = inspect.signature(bound)
    params = list(signature.parameters.values())
    if not params or params[0].kind not in (inspect.Parameter.POSITIONAL_ONLY,
                                            inspect.Parameter.POSITIONAL_OR_KEYWORD):
        raise TypeError(f"exposed method {name!r} must take the request context first")
    return signature


@implementer(IDispatcher)
class Dispatcher:
    """
    Calls the exposed methods of one target object.

    @ivar target: the manager whose methods are called.
    @ivar methods: the exposed names, sorted.
    """

    log = Logger()

    def __init__(self, target: object) -> None:
        """
        @param target: the object (a manager) to dispatch to.
        @raise TypeError: an exposed method does not take a context first.
        """
        self.target = target
        self._table: dict[str, tuple[Callable[..., Any], inspect.Signature]] = {}
        # Scan the class (not the instance) for the mark: instance attributes
        # can never become callable over the wire.
        for klass in reversed(type(target).__mro__):
            for name, member in vars(klass).items():
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                if callable(member) and getattr(member, _MARK, False):
                    bound = getattr(target, name)
                    self._table[name] = (bound, _check_signature(name, bound))
                elif name in self._table:
                    # A subclass overrode an exposed method without exposing it.
                    del self._table[name]
        self.methods = tuple(sorted(self._table))

    def __repr__(self) -> str:
        return f"<Dispatcher for {type(self.target).__name__}: {', '.join(self.methods)}>"

    def dispatch(self, method: str, args: dict[str, Any],
                 context: dict[str, Any] | None) -> defer.Deferred[Any]:
        """
        Call an exposed method.

        @param method: its name, as it came off the wire.
        @param args: its keyword arguments.
        @param context: the caller's context dict (see L{RequestContext.to_dict}),
            or C{None} for an anonymous, unprivileged context.
        @return: a Deferred firing with the method's result.
        @raise UnknownMethod: (in the Deferred) no exposed method has that name.
        @raise InvalidArguments: (in the Deferred) the argument names do not fit.
        """
        try:
            entry = self._table.get(method) if isinstance(method, str) else None
            if entry is None:
                raise UnknownMethod(
                    f"{type(self.target).__name__} has no RPC method {method!r}")
            bound, signature = entry
            ctx = RequestContext.from_dict(context)
            try:
                signature.bind(ctx, **args)
            except TypeError as e:
                raise InvalidArguments(f"{method}: {e}") from None
            result = bound(ctx, **args)
        except Exception as e:  # becomes the failed Deferred, logged there
            return self._failed(method, Failure(e))
        if inspect.isawaitable(result) and not isinstance(result, defer.Deferred):
            result = defer.Deferred.fromCoroutine(_await(result))
        if isinstance(result, defer.Deferred):
            return result.addErrback(self._log_failure, method)
        return defer.succeed(result)

    def _failed(self, method: str, failure: Failure) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = defer.fail(failure)
        return d.addErrback(self._log_failure, method)

    def _log_failure(self, failure: Failure, method: str) -> Failure:
        # NovaErrors are deliberate and reported to the caller as they are;
        # anything else is a bug on this side and deserves its traceback here.
        if not failure.check(NovaError):
            self.log.failure("RPC method {target}.{method} raised an unexpected error",
                             failure, target=type(self.target).__name__, method=method)
        return failure


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable
