"""
Bind directories over system paths in a private mount namespace, then
exec a program: how a host's libvirtd gets private C{/run/libvirt},
C{/var/lib/libvirt}, C{/etc/libvirt}... while the rest of the file system
stays shared.

Run as a script (stdlib only, so C{python -I path/to/mountexec.py} needs
no C{PYTHONPATH})::

    mountexec.py --bind SRC DST [--bind SRC DST ...] -- PROGRAM [ARG ...]

It unshares the mount namespace (C{ip netns exec} has already done so,
but this script must not depend on it), makes every mount private so that
nothing propagates back to the host, bind-mounts each C{SRC} over its
C{DST} (both must exist), and execs C{PROGRAM}: the pid stays the same, so
its parent signals the program itself. Linux and root only.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

CLONE_NEWNS = 0x00020000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18

USAGE = "usage: mountexec.py --bind SRC DST [--bind SRC DST ...] -- PROGRAM [ARG ...]"


def parse(argv: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """
    @param argv: the arguments after the script name.
    @return: the C{(source, target)} pairs and the program's argv.
    @raise ValueError: when they do not follow L{USAGE}, or a path is not absolute.
    """
    binds: list[tuple[str, str]] = []
    i = 0
    while i < len(argv) and argv[i] == "--bind":
        if i + 2 >= len(argv):
            raise ValueError("--bind needs a source and a target")
        source, target = argv[i + 1], argv[i + 2]
        if not (source.startswith("/") and target.startswith("/")):
            raise ValueError(f"bind paths must be absolute: {source!r} {target!r}")
        binds.append((source, target))
        i += 3
    if i >= len(argv) or argv[i] != "--" or i + 1 >= len(argv):
        raise ValueError(USAGE)
    return binds, argv[i + 1:]


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def main(argv: list[str]) -> int:
    """
    Do the mounts and exec the program; returns only on failure.

    @return: the exit status to use when something failed (2: usage, 1: system).
    """
    try:
        binds, program = parse(argv)
    except ValueError as e:
        print(f"mountexec: {e}", file=sys.stderr)
        return 2
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                           ctypes.c_ulong, ctypes.c_void_p]
    try:
        _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        # Private everywhere: our binds must never show up in the host's namespace.
        _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None),
               "making / private")
        for source, target in binds:
            _check(libc.mount(os.fsencode(source), os.fsencode(target), None,
                              MS_BIND, None), f"bind {source} on {target}")
        os.execvp(program[0], program)
    except OSError as e:
        print(f"mountexec: {e}", file=sys.stderr)
        return 1
    return 1  # not reached: execvp returns only by raising


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
