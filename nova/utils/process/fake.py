"""
L{FakeProcessRunner}: an in-memory L{IProcessRunner} for unit tests of managers.

It runs nothing. It records every call and answers from a table of canned
results keyed by argv prefix; a command that matches no entry succeeds with
empty output. It applies the same argument checks as the real runner and
raises the same errors, so a manager tested against it behaves the same
against real commands. Typical use::

    runner = FakeProcessRunner()
    runner.add_result(["ip", "link", "show", "br100"], exit_code=1,
                      stderr=b'Device "br100" does not exist.\\n')
    await manager.ensure_bridge("br100")
    self.assertEqual(runner.commands(), [
        ("ip", "link", "show", "br100"),
        ("ip", "link", "add", "br100", "type", "bridge"),
    ])

Matching: among the entries whose prefix starts the argv (and whose
namespace matches, when the entry names one), the longest prefix wins; of
equally long ones, the one added last. An entry added with C{times=n} is
used n times and then forgotten, which scripts "fails once, then works".
"""

from __future__ import annotations

import inspect
from typing import Any, Awaitable, Callable, Mapping, Sequence, Union

import attr
from zope.interface import implementer

from nova.utils.process.interface import (
    DEFAULT_TIMEOUT,
    CommandFailed,
    CommandNotFound,
    CommandTimedOut,
    IProcessRunner,
    ProcessResult,
    check_argv,
    check_env,
    check_netns,
    check_timeout,
)

__all__ = ["FakeProcessRunner", "RecordedCall", "Reply"]


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class RecordedCall:
    """
    One call the fake received (after its arguments passed the checks).

    @ivar argv: the command.
    @ivar netns: the namespace it was to run in, or C{None}.
    @ivar input: the bytes for its stdin, or C{None}.
    @ivar env: its environment, or C{None} for the runner's own.
    @ivar timeout: its timeout in seconds.
    @ivar check: whether a non-zero status was to raise.
    """

    argv: tuple[str, ...]
    netns: str | None = None
    input: bytes | None = None
    env: dict[str, str] | None = None
    timeout: float = DEFAULT_TIMEOUT
    check: bool = True


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class Reply:
    """A canned outcome: an exit status and output, a time-out, or a missing program."""

    exit_code: int = 0
    stdout: bytes = b""
    stderr: bytes = b""
    timed_out: bool = False
    not_found: bool = False


Handler = Callable[[RecordedCall], Union[Reply, Awaitable[Reply]]]

_ANY = object()


@attr.s(auto_attribs=True)
class _Entry:
    prefix: tuple[str, ...]
    netns: Any
    answer: Reply | Handler
    times: int | None
    order: int


@implementer(IProcessRunner)
class FakeProcessRunner:
    """
    Records commands and answers them from canned results.

    @ivar calls: every L{RecordedCall}, in order.
    """

    def __init__(self) -> None:
        self.calls: list[RecordedCall] = []
        self._entries: list[_Entry] = []
        self._order = 0

    def _add(self, prefix: Sequence[str], answer: Reply | Handler, netns: Any,
             times: int | None) -> None:
        key = check_argv(prefix)
        if netns is not _ANY:
            check_netns(netns)
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1, not {times}")
        self._order += 1
        self._entries.append(_Entry(key, netns, answer, times, self._order))

    def add_result(self, prefix: Sequence[str], *, exit_code: int = 0, stdout: bytes = b"",
                   stderr: bytes = b"", netns: Any = _ANY, times: int | None = None) -> None:
        """
        Answer commands starting with C{prefix} with this status and output.

        @param prefix: the leading argv items to match (at least one).
        @param exit_code: the status to report (negative: killed by that signal).
        @param stdout: the output to report.
        @param stderr: the error output to report.
        @param netns: match only calls in this namespace (C{None}: only calls
            outside any); by default calls anywhere.
        @param times: use the entry this many times, then drop it; by
            default for ever.
        """
        self._add(prefix, Reply(exit_code=exit_code, stdout=stdout, stderr=stderr),
                  netns, times)

    def add_timeout(self, prefix: Sequence[str], *, netns: Any = _ANY,
                    times: int | None = None) -> None:
        """
        Make commands starting with C{prefix} raise L{CommandTimedOut} at once.

        @param prefix: as for L{add_result}.
        @param netns: as for L{add_result}.
        @param times: as for L{add_result}.
        """
        self._add(prefix, Reply(timed_out=True), netns, times)

    def add_missing(self, program: str, *, times: int | None = None) -> None:
        """
        Make commands running C{program} raise L{CommandNotFound}.

        @param program: the C{argv[0]} that is not installed.
        @param times: as for L{add_result}.
        """
        self._add([program], Reply(not_found=True), _ANY, times)

    def add_handler(self, prefix: Sequence[str], handler: Handler, *, netns: Any = _ANY,
                    times: int | None = None) -> None:
        """
        Compute the answer for commands starting with C{prefix}.

        @param prefix: as for L{add_result}.
        @param handler: called with the L{RecordedCall}; returns a L{Reply}
            (or an awaitable of one), e.g. to echo C{call.input} like C{cat}.
        @param netns: as for L{add_result}.
        @param times: as for L{add_result}.
        """
        self._add(prefix, handler, netns, times)

    def commands(self, netns: Any = _ANY) -> list[tuple[str, ...]]:
        """
        The argv of every call so far, in order.

        @param netns: only calls in this namespace (C{None}: outside any);
            by default all.
        @return: a list of argv tuples.
        """
        return [c.argv for c in self.calls if netns is _ANY or c.netns == netns]

    def calls_matching(self, prefix: Sequence[str]) -> list[RecordedCall]:
        """
        The calls whose argv starts with C{prefix}.

        @param prefix: the leading argv items.
        @return: the matching L{RecordedCall}s, in order.
        """
        key = tuple(prefix)
        return [c for c in self.calls if c.argv[:len(key)] == key]

    def _lookup(self, call: RecordedCall) -> Reply | Handler:
        best: _Entry | None = None
        for entry in self._entries:
            if call.argv[:len(entry.prefix)] != entry.prefix:
                continue
            if entry.netns is not _ANY and entry.netns != call.netns:
                continue
            if best is None or (len(entry.prefix), entry.order) > (len(best.prefix), best.order):
                best = entry
        if best is None:
            return Reply()
        if best.times is not None:
            best.times -= 1
            if best.times == 0:
                self._entries.remove(best)
        return best.answer

    async def run(self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT,
                  input: bytes | None = None, env: Mapping[str, str] | None = None,
                  check: bool = True, netns: str | None = None) -> ProcessResult:
        """
        Record the call and answer it from the table; see L{IProcessRunner.run}.
        """
        args = check_argv(argv)
        clean_env = check_env(env)
        timeout = check_timeout(timeout)
        netns = check_netns(netns)
        if input is not None and not isinstance(input, bytes):
            raise TypeError(f"input must be bytes, not {type(input).__name__}")
        call = RecordedCall(argv=args, netns=netns, input=input, env=clean_env,
                            timeout=timeout, check=check)
        self.calls.append(call)
        answer = self._lookup(call)
        if isinstance(answer, Reply):
            reply = answer
        else:
            produced = answer(call)
            reply = await produced if inspect.isawaitable(produced) else produced
        if reply.not_found:
            raise CommandNotFound(args[0], args, netns, "(fake)")
        if reply.timed_out:
            raise CommandTimedOut(args, netns, timeout, stdout=reply.stdout,
                                  stderr=reply.stderr, detail="fake")
        result = ProcessResult(argv=args, exit_code=reply.exit_code, stdout=reply.stdout,
                               stderr=reply.stderr, netns=netns)
        if check and result.exit_code != 0:
            raise CommandFailed(result)
        return result
