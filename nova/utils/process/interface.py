"""
The host command seam: L{IProcessRunner}, its result and its errors.

Managers build argv lists (C{["ip", "link", "set", name, "up"]}) and hand
them to a runner; they never build command strings. The checks every runner
applies to its arguments live here too, so that the real runner and the fake
refuse exactly the same calls.
"""

from __future__ import annotations

import math
import shlex
from typing import Mapping, Sequence

import attr
from zope.interface import Interface

from nova.exception import ProcessError
from nova.utils.validate import netns_name

__all__ = [
    "IProcessRunner",
    "ProcessResult",
    "CommandNotFound",
    "CommandFailed",
    "CommandTimedOut",
    "OutputTooLarge",
    "DEFAULT_TIMEOUT",
    "STDERR_TAIL",
    "check_argv",
    "check_env",
    "check_timeout",
    "check_netns",
    "describe",
]

#: Seconds a command may run when the caller does not say.
DEFAULT_TIMEOUT = 30.0

#: How many bytes of stderr an error message quotes (the end, where tools
#: print the reason they failed).
STDERR_TAIL = 2048


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class ProcessResult:
    """
    What a finished command produced.

    @ivar argv: the command as the caller gave it (without the C{ip netns
        exec} prefix and before C{argv[0]} was resolved to a path).
    @ivar exit_code: the exit status; minus the signal number when the
        process was killed by a signal (as L{subprocess} reports it).
    @ivar stdout: everything the command wrote to its standard output.
    @ivar stderr: everything it wrote to its standard error.
    @ivar netns: the network namespace it ran in, or C{None} for the
        runner's own.
    """

    argv: tuple[str, ...]
    exit_code: int
    stdout: bytes = b""
    stderr: bytes = b""
    netns: str | None = None


def describe(argv: Sequence[str], netns: str | None = None) -> str:
    """
    Spell a command the way an operator would type it, for messages and logs.

    @param argv: the command.
    @param netns: the namespace it runs in, if any.
    @return: a shell-quoted line (only ever displayed, never executed).
    """
    line = shlex.join(argv)
    return f"{line} (in netns {netns})" if netns is not None else line


def _tail(data: bytes, limit: int = STDERR_TAIL) -> str:
    text = data[-limit:].decode("utf-8", "replace").strip()
    return ("..." + text) if len(data) > limit else text


class _CommandError(ProcessError):
    """Common part of the errors about one command."""

    def __init__(self, message: str, argv: Sequence[str], netns: str | None,
                 stdout: bytes = b"", stderr: bytes = b"") -> None:
        super().__init__(message)
        self.argv = tuple(argv)
        self.netns = netns
        self.stdout = stdout
        self.stderr = stderr


class CommandNotFound(_CommandError):
    """The program named by C{argv[0]} is not an executable file on the search path."""

    def __init__(self, program: str, argv: Sequence[str], netns: str | None,
                 search_path: str) -> None:
        where = "" if "/" in program else f" in PATH {search_path!r}"
        super().__init__(f"command not found: {program!r} (no executable file{where})",
                         argv, netns)
        self.program = program


class CommandFailed(_CommandError):
    """
    A command exited with a non-zero status (raised when C{check=True}).

    @ivar result: the full L{ProcessResult}.
    @ivar exit_code: its exit status (negative: killed by that signal).
    """

    def __init__(self, result: ProcessResult) -> None:
        if result.exit_code < 0:
            how = f"was killed by signal {-result.exit_code}"
        else:
            how = f"exited with status {result.exit_code}"
        message = f"{describe(result.argv, result.netns)} {how}"
        tail = _tail(result.stderr)
        if tail:
            message += f": {tail}"
        super().__init__(message, result.argv, result.netns, result.stdout, result.stderr)
        self.result = result
        self.exit_code = result.exit_code


class CommandTimedOut(_CommandError):
    """
    A command did not finish within its timeout and was stopped.

    @ivar timeout: the timeout it had, in seconds.
    @ivar signal: the signal that finally ended it (C{None} if it had
        already exited but left its output pipes open to a background child).
    @ivar stdout: what it had written to stdout by then.
    @ivar stderr: what it had written to stderr by then.
    """

    def __init__(self, argv: Sequence[str], netns: str | None, timeout: float,
                 signal: int | None = None, stdout: bytes = b"", stderr: bytes = b"",
                 detail: str = "") -> None:
        message = f"{describe(argv, netns)} timed out after {timeout:g} s"
        if detail:
            message += f" ({detail})"
        tail = _tail(stderr)
        if tail:
            message += f": {tail}"
        super().__init__(message, argv, netns, stdout, stderr)
        self.timeout = timeout
        self.signal = signal


class OutputTooLarge(_CommandError):
    """A command wrote more output than the runner keeps; it was stopped."""

    def __init__(self, argv: Sequence[str], netns: str | None, stream: str,
                 limit: int) -> None:
        super().__init__(
            f"{describe(argv, netns)} wrote more than {limit} bytes to {stream};"
            " stopped it", argv, netns)
        self.stream = stream
        self.limit = limit


def check_argv(argv: Sequence[str]) -> tuple[str, ...]:
    """
    Refuse anything that is not a non-empty sequence of NUL-free strings.

    @param argv: the command.
    @return: it, as a tuple.
    @raise TypeError: when C{argv} is a string or bytes (a command line, not an
        argv list) or holds a non-string.
    @raise ValueError: when it is empty, C{argv[0]} is empty, or an argument
        holds a NUL byte (execve would silently cut it there).
    """
    if isinstance(argv, (str, bytes, bytearray)):
        raise TypeError("argv must be a sequence of strings, not a single string")
    args = tuple(argv)
    if not args:
        raise ValueError("argv must not be empty")
    for i, arg in enumerate(args):
        if not isinstance(arg, str):
            raise TypeError(f"argv[{i}] must be str, not {type(arg).__name__}: {arg!r}")
        if "\0" in arg:
            raise ValueError(f"argv[{i}] contains a NUL byte: {arg!r}")
    if not args[0]:
        raise ValueError("argv[0] must not be empty")
    return args


def check_env(env: Mapping[str, str] | None) -> dict[str, str] | None:
    """
    Refuse environment entries that execve cannot carry faithfully.

    @param env: names to values, or C{None}.
    @return: a copy as a plain dict, or C{None}.
    @raise TypeError: for a non-string name or value.
    @raise ValueError: for an empty name, a name with C{=}, or a NUL anywhere.
    """
    if env is None:
        return None
    clean: dict[str, str] = {}
    for key, value in env.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"environment entries must be str: {key!r}={value!r}")
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise ValueError(f"invalid environment entry {key!r}={value!r}")
        clean[key] = value
    return clean


def check_timeout(timeout: float) -> float:
    """
    Refuse timeouts that would not bound the command.

    @param timeout: seconds.
    @return: it, as a float.
    @raise TypeError: for a non-number.
    @raise ValueError: for zero, negative, infinite or NaN values.
    """
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, not {timeout!r}")
    if not (timeout > 0 and math.isfinite(timeout)):
        raise ValueError(f"timeout must be a positive finite number, not {timeout!r}")
    return float(timeout)


def check_netns(netns: str | None) -> str | None:
    """
    Validate an optional network namespace name.

    @raise nova.utils.validate.InvalidIdentifier: (a L{ValueError}) for a bad name.
    """
    return None if netns is None else netns_name(netns)


class IProcessRunner(Interface):
    """
    Runs host commands: no shell, validated arguments, a timeout on each.
    """

    def run(argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT,
            input: bytes | None = None, env: Mapping[str, str] | None = None,
            check: bool = True, netns: str | None = None) -> ProcessResult:
        """
        Run one command to completion (an C{async} method).

        @param argv: the program and its arguments; C{argv[0]} is looked up
            on the search path unless it contains a C{/}.
        @param timeout: seconds before the command is stopped (SIGTERM, then
            SIGKILL after a grace period).
        @param input: bytes written to its standard input, which is then
            closed; with C{None} stdin is closed at once.
        @param env: its whole environment; C{None} passes the runner's own.
        @param check: raise L{CommandFailed} on a non-zero exit status.
        @param netns: run it inside this network namespace (through
            C{ip netns exec}).
        @return: the L{ProcessResult}.
        @raise TypeError: for a non-string argument or environment entry.
        @raise ValueError: for an empty argv, a NUL byte, a bad timeout, or
            a bad namespace name.
        @raise CommandNotFound: when the program cannot be found.
        @raise CommandFailed: when C{check} is true and the status is non-zero.
        @raise CommandTimedOut: when the timeout expired (whatever C{check}).
        @raise OutputTooLarge: when the output exceeded the runner's limit.
        """
