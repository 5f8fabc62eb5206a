"""
The lease script's side of the DHCP event socket (standard library only:
dnsmasq starts the script once per event, so it imports little).

C{bin/nova-dhcpbridge add|old|del MAC IP [HOSTNAME]} first sends the event
as one JSON line to the unix socket named by C{$NOVA_DHCPBRIDGE_SOCKET}
(nova-network's L{nova.network.dhcp_events.DhcpEventServer}) and waits
for a one-line answer: C{ok} once nova-network has handled it, C{error
<why>} otherwise. Only when that fails (no socket, nobody listening, an
error, no answer within the timeout) does it append the event to the file
C{$NOVA_DHCPBRIDGE_EVENTS} (L{nova.cmd.dhcpbridge}), which nova-network
replays at start, so nothing is lost while it is down. C{init} and the
events nova does not follow go to L{nova.cmd.dhcpbridge} as before.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from typing import Mapping, Sequence, TextIO

from nova.cmd import dhcpbridge
from nova.cmd.dhcpbridge import make_event
from nova.utils.validate import InvalidIdentifier

__all__ = ["SOCKET_ENV", "ACK", "DEFAULT_TIMEOUT", "MAX_LINE", "DeliveryFailed",
           "check_socket_path", "make_event", "send_event", "main"]

#: The environment variable naming nova-network's event socket.
SOCKET_ENV = "NOVA_DHCPBRIDGE_SOCKET"
#: The answer to an event nova-network handled.
ACK = b"ok"
#: Seconds the script waits for the answer.
DEFAULT_TIMEOUT = 2.0
#: The longest line either side sends.
MAX_LINE = 4096
# sockaddr_un.sun_path is 108 bytes, with the terminating NUL.
_MAX_SOCKET_PATH = 107


class DeliveryFailed(Exception):
    """nova-network did not acknowledge the event."""


def check_socket_path(path: str) -> str:
    """
    Check a unix socket path for the lease events.

    @param path: absolute, at most 107 bytes, no NUL or newline.
    @return: C{path} unchanged.
    @raise InvalidIdentifier: otherwise.
    """
    if not isinstance(path, str) or not path.startswith("/") or any(
            c in path for c in "\0\n\r") or len(path.encode()) > _MAX_SOCKET_PATH:
        raise InvalidIdentifier(f"invalid unix socket path {path!r}: absolute, at most"
                                f" {_MAX_SOCKET_PATH} bytes, no control characters")
    return path


def send_event(path: str, event: Mapping[str, object],
               timeout: float = DEFAULT_TIMEOUT) -> None:
    """
    Send one event to nova-network and wait for its acknowledgement.

    @param path: the unix socket.
    @param event: the event (JSON-serialisable).
    @param timeout: seconds for the whole exchange.
    @raise OSError: when the socket cannot be reached or times out.
    @raise DeliveryFailed: when nova-network answers an error, or nothing.
    """
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(check_socket_path(path))
        sock.sendall(json.dumps(event, sort_keys=True).encode() + b"\n")
        answer = b""
        while b"\n" not in answer and len(answer) < MAX_LINE:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            chunk = sock.recv(MAX_LINE)
            if not chunk:
                break
            answer += chunk
    line = answer.split(b"\n", 1)[0].strip()
    if line != ACK:
        raise DeliveryFailed(line.decode("utf-8", "replace") or "no answer")


def main(argv: Sequence[str], environ: Mapping[str, str] | None = None,
         stdout: TextIO | None = None, stderr: TextIO | None = None,
         now: float | None = None, timeout: float = DEFAULT_TIMEOUT) -> int:
    """
    Run the lease script: the socket first, else L{nova.cmd.dhcpbridge.main}.

    @param argv: the arguments after the program name.
    @param environ: the environment (default: the process's).
    @param stdout: where C{init} prints leases.
    @param stderr: where problems are reported (dnsmasq logs them).
    @param now: the current time (tests).
    @param timeout: seconds to wait for nova-network.
    @return: always 0, so that dnsmasq carries on.
    """
    environ = os.environ if environ is None else environ
    stderr = sys.stderr if stderr is None else stderr
    now = time.time() if now is None else now
    path = environ.get(SOCKET_ENV)
    if path and len(argv) >= 3 and argv[0] in dhcpbridge.ACTIONS:
        try:
            event = make_event(argv[0], argv[1], argv[2], argv[3] if len(argv) > 3 else None,
                               environ, now)
        except ValueError:
            pass  # reported by the file path below, which refuses it too
        else:
            try:
                send_event(path, event, timeout)
                return 0
            except (OSError, DeliveryFailed) as e:
                stderr.write(f"nova-dhcpbridge: nova-network at {path} did not take the"
                             f" event ({type(e).__name__}: {e}): recording it in the file\n")
    return dhcpbridge.main(argv, environ, stdout, stderr, now)
