"""Unit tests for L{nova.rpc.dispatcher}: what is callable, and how it is called."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.trial import unittest

from nova.context import RequestContext
from nova.exception import NotFound
from nova.rpc.dispatcher import Dispatcher, expose, is_exposed
from nova.rpc.errors import InvalidArguments, UnknownMethod


class Manager:
    def __init__(self) -> None:
        self.contexts: list[RequestContext] = []
        self.gate: defer.Deferred[int] = defer.Deferred()
        self.not_a_method = expose(lambda context: "instance attribute")

    @expose
    def add(self, context: RequestContext, a: int, b: int = 0) -> int:
        self.contexts.append(context)
        return a + b

    @expose
    async def wait(self, context: RequestContext) -> int:
        return await self.gate

    @expose
    def deferred(self, context: RequestContext) -> defer.Deferred[str]:
        return defer.succeed("from a Deferred")

    @expose
    def not_found(self, context: RequestContext) -> None:
        raise NotFound("no such volume vol-1")

    @expose
    def bug(self, context: RequestContext) -> None:
        raise KeyError("oops")

    @expose
    async def async_bug(self, context: RequestContext) -> None:
        raise ZeroDivisionError("async oops")

    def helper(self, context: RequestContext) -> str:
        return "not exposed"

    def _private(self, context: RequestContext) -> str:
        return "private"


class SubManager(Manager):
    @expose
    def extra(self, context: RequestContext) -> str:
        return "extra"

    def add(self, context: RequestContext, a: int, b: int = 0) -> int:  # type: ignore[override]
        """Overridden without @expose: no longer callable."""
        return 0


class DispatcherTests(unittest.TestCase):
    def setUp(self) -> None:
        self.manager = Manager()
        self.dispatcher = Dispatcher(self.manager)

    def dispatch(self, method: str, args: dict[str, Any] | None = None,
                 context: dict[str, Any] | None = None) -> defer.Deferred[Any]:
        return self.dispatcher.dispatch(method, args or {}, context)

    def test_table_holds_exposed_methods_only(self) -> None:
        self.assertEqual(self.dispatcher.methods,
                         ("add", "async_bug", "bug", "deferred", "not_found", "wait"))
        self.assertTrue(is_exposed(Manager.add))
        self.assertTrue(is_exposed(self.manager.add))
        self.assertFalse(is_exposed(Manager.helper))

    def test_subclass_table(self) -> None:
        methods = Dispatcher(SubManager()).methods
        self.assertIn("extra", methods)
        self.assertIn("wait", methods)
        self.assertNotIn("add", methods)

    def test_table_is_built_once(self) -> None:
        # A method exposed on the class after construction is not callable
        # through this dispatcher: names are never looked up on the wire.
        Manager.late = expose(lambda self, context: "late")  # type: ignore[attr-defined]
        self.addCleanup(delattr, Manager, "late")
        self.failureResultOf(self.dispatch("late"), UnknownMethod)
        self.assertEqual(self.successResultOf(Dispatcher(self.manager).dispatch("late", {}, None)),
                         "late")

    def test_calls_with_context_and_arguments(self) -> None:
        context = RequestContext(user_id="bob", project_id="p", roles=("developer",))
        result = self.successResultOf(self.dispatch("add", {"a": 2, "b": 3}, context.to_dict()))
        self.assertEqual(result, 5)
        self.assertEqual(self.manager.contexts, [context])

    def test_no_context_means_anonymous(self) -> None:
        self.successResultOf(self.dispatch("add", {"a": 1}))
        context = self.manager.contexts[0]
        self.assertEqual((context.user_id, context.project_id, context.is_admin, context.roles),
                         (None, None, False, ()))

    def test_async_method(self) -> None:
        d = self.dispatch("wait")
        self.assertNoResult(d)
        self.manager.gate.callback(7)
        self.assertEqual(self.successResultOf(d), 7)

    def test_method_returning_deferred(self) -> None:
        self.assertEqual(self.successResultOf(self.dispatch("deferred")), "from a Deferred")

    def test_unknown_and_unexposed_refused(self) -> None:
        for name in ("nope", "helper", "_private", "not_a_method", "__init__", "contexts",
                     "dispatch", ""):
            failure = self.failureResultOf(self.dispatch(name), UnknownMethod)
            self.assertEqual(failure.value.code, "InvalidAction")
            self.assertEqual(failure.value.status, 400)
            self.assertIn(repr(name), failure.value.message)

    def test_non_string_method_refused(self) -> None:
        self.failureResultOf(self.dispatcher.dispatch(["add"], {}, None), UnknownMethod)  # type: ignore[arg-type]

    def test_wrong_arguments(self) -> None:
        cases = {
            "missing": ({"b": 1}, "'a'"),
            "unexpected": ({"a": 1, "c": 2}, "'c'"),
            "context as argument": ({"a": 1, "context": {}}, "context"),
        }
        for label, (args, fragment) in cases.items():
            failure = self.failureResultOf(self.dispatch("add", args), InvalidArguments)
            self.assertIn("add", failure.value.message, label)
            self.assertIn(fragment, failure.value.message, label)
            self.assertEqual(failure.value.code, "InvalidParameterValue")
        self.assertEqual(self.manager.contexts, [])

    def test_nova_error_passes_through_unlogged(self) -> None:
        failure = self.failureResultOf(self.dispatch("not_found"), NotFound)
        self.assertEqual(failure.value.message, "no such volume vol-1")
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_unexpected_error_is_logged(self) -> None:
        self.failureResultOf(self.dispatch("bug"), KeyError)
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 1)

    def test_unexpected_async_error_is_logged(self) -> None:
        self.failureResultOf(self.dispatch("async_bug"), ZeroDivisionError)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_method_without_context_parameter_refused(self) -> None:
        class Bad:
            @expose
            def no_context(*args: Any) -> None:
                pass

        class Worse:
            @expose
            def nothing(self) -> None:
                pass

        self.assertRaises(TypeError, Dispatcher, Bad())
        self.assertRaises(TypeError, Dispatcher, Worse())
