#!/usr/bin/env python3
"""
A TCP reachability probe for the network benchmarks: when does a port of
many guests start (or stop) taking connections, seen from inside a host
namespace.

Run as a script (standard library only) it is the probe process: started
once inside the namespace (L{TcpProbe} does that with C{ip netns exec}), it
reads one JSON command a line on stdin, answers C{{"started": t}} as soon as
it is probing, then C{{"results": ...}} when done. Times are
C{time.monotonic()}, the same clock in every process of the machine, so the
benchmark compares them with its own.

Each target gets a fresh attempt every C{interval} seconds, several in
flight at once, so a dropped SYN (iptables DROP: the kernel would only
retransmit after 1 s) does not hold the measurement up. An attempt is
either a real connection (L{probe}: non-blocking connect, closed with a
reset at once, SO_LINGER 0) or a bare SYN from a raw socket (L{syn_probe}:
the guest's kernel answers, its server never sees a connection).

- C{want_open}: the target's time is when its first connection completed
  (the first SYN-ACK came back);
- otherwise: the target's time is when the first attempt that never got an
  answer (within C{attempt_timeout}) sent its SYN: the rule was in place by
  then. C{late_opens} counts answers to attempts launched after that one
  (the change did not hold steadily).
"""

from __future__ import annotations

import errno
import json
import os
import resource
import selectors
import socket
import struct
import subprocess
import sys
import time
from typing import Any

_RESET = struct.pack("ii", 1, 0)


def probe(targets: list[str], port: int, want_open: bool, interval: float,
          attempt_timeout: float, deadline: float) -> dict[str, Any]:
    """
    Probe C{targets} until each is open (or closed), or C{deadline} seconds pass.

    @return: C{{"times": {target: t}, "launched": {target: t}, "attempts": n,
        "late_opens": n, "missing": [targets]}}.
    """
    selector = selectors.DefaultSelector()
    pending: dict[socket.socket, tuple[str, float]] = {}
    times: dict[str, float] = {}
    launched_at: dict[str, float] = {}
    last_open: dict[str, float] = {}
    late_opens = 0
    attempts = 0
    now = time.monotonic()
    end = now + deadline
    next_launch = {target: now for target in targets}
    remaining = set(targets)

    def drop(target: str) -> None:
        for sock, (owner, _) in list(pending.items()):
            if owner == target:
                selector.unregister(sock)
                sock.close()
                del pending[sock]

    while remaining and now < end:
        for target in sorted(remaining):
            if now >= next_launch[target]:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setblocking(False)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
                code = sock.connect_ex((target, port))
                attempts += 1
                if code not in (0, errno.EINPROGRESS):
                    sock.close()  # e.g. no route yet: try again at the next tick
                else:
                    pending[sock] = (target, now)
                    selector.register(sock, selectors.EVENT_WRITE)
                next_launch[target] = now + interval
        wake = min([next_launch[t] for t in remaining]
                   + [began + attempt_timeout for _, began in pending.values()])
        events = selector.select(max(0.0, wake - time.monotonic()))
        now = time.monotonic()
        for key, _ in events:
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if sock not in pending:
                continue  # closed by drop() for an earlier event of this batch
            target, began = pending.pop(sock)
            selector.unregister(sock)
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            sock.close()
            if error != 0:
                continue  # refused or unreachable: neither open nor a silent drop
            last_open[target] = max(last_open.get(target, 0.0), began)
            if want_open and target in remaining:
                times[target], launched_at[target] = now, began
                remaining.discard(target)
                drop(target)
        for sock, (target, began) in sorted(pending.items(), key=lambda i: i[1][1]):
            if sock not in pending or began + attempt_timeout > now:
                continue
            # its SYN got no answer: dropped (a retransmission would only
            # come after 1 s and blur the time, so the attempt ends here)
            selector.unregister(sock)
            sock.close()
            del pending[sock]
            if not want_open and target in remaining:
                times[target] = launched_at[target] = began
                if last_open.get(target, 0.0) > began:
                    late_opens += 1
                remaining.discard(target)
                drop(target)
    for target in list(remaining):
        drop(target)
    selector.close()
    return {"times": times, "launched": launched_at, "attempts": attempts,
            "late_opens": late_opens, "missing": sorted(remaining)}


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _syn(source: str, target: str, sport: int, dport: int, seq: int) -> bytes:
    """@return: a TCP SYN segment (no options) from C{source} to C{target}."""
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = (socket.inet_aton(source) + socket.inet_aton(target)
              + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(header)))
    return header[:16] + struct.pack("!H", _checksum(pseudo + header)) + header[18:]


def syn_probe(targets: list[str], port: int, want_open: bool, interval: float,
              attempt_timeout: float, deadline: float) -> dict[str, Any]:
    """
    Like L{probe}, but each attempt is a bare SYN from a raw socket: the
    kernel resets the half-open connection itself when the SYN-ACK comes,
    so the guest's server never accepts (dropbear would fork a process for
    every probe, and the first one would hold up that guest's first SSH
    login: see docs/performance.md).

    - C{want_open}: the target's time is when the first SYN-ACK came back.
    - otherwise: the time is when the first SYN went that got no answer: a
      SYN the host's own filter drops (OUTPUT) fails at once with EPERM,
      one dropped further on gets no answer within C{attempt_timeout}. A
      RST (nothing listening) is an answer: the filter let the SYN through.

    @return: as L{probe}'s.
    """
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    raw.setblocking(False)
    sources = {}
    for target in targets:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as route:
            route.connect((target, port))
            sources[target] = route.getsockname()[0]
    # ports above the kernel's ephemeral range: no socket of ours owns them
    next_port = 61000
    pending: dict[tuple[str, int], tuple[int, float]] = {}
    times: dict[str, float] = {}
    last_open: dict[str, float] = {}
    late_opens = attempts = 0
    now = time.monotonic()
    end = now + deadline
    next_launch = {target: now for target in targets}
    remaining = set(targets)
    selector = selectors.DefaultSelector()
    selector.register(raw, selectors.EVENT_READ)

    def done(target: str, at: float) -> None:
        nonlocal late_opens
        times[target] = at
        if not want_open and last_open.get(target, 0.0) > at:
            late_opens += 1
        remaining.discard(target)
        for other in [k for k in pending if k[0] == target]:
            del pending[other]

    while remaining and now < end:
        for target in sorted(remaining):
            if now < next_launch[target]:
                continue
            sport = next_port
            next_port = 61000 + (next_port - 61000 + 1) % 4000
            seq = int.from_bytes(os.urandom(4), "big")
            attempts += 1
            next_launch[target] = now + interval
            try:
                raw.sendto(_syn(sources[target], target, sport, port, seq), (target, 0))
            except PermissionError:
                # the host's filter dropped it on the way out
                if not want_open:
                    done(target, now)
                continue
            except OSError:
                continue  # e.g. the address does not answer ARP yet
            pending[(target, sport)] = (seq, now)
        if not remaining:
            break
        wake = min([next_launch[t] for t in remaining]
                   + [began + attempt_timeout for _, began in pending.values()])
        selector.select(max(0.0, wake - time.monotonic()))
        now = time.monotonic()
        while True:
            try:
                packet = raw.recv(65535)
            except BlockingIOError:
                break
            ihl = (packet[0] & 0x0F) * 4
            source = socket.inet_ntoa(packet[12:16])
            sport, dport, _, ack = struct.unpack("!HHII", packet[ihl:ihl + 12])
            flags = packet[ihl + 13]
            sent = pending.get((source, dport))
            if sport != port or sent is None or not flags & 0x10 or ack != (sent[0] + 1) % 2**32:
                continue
            del pending[(source, dport)]
            last_open[source] = max(last_open.get(source, 0.0), sent[1])
            if want_open and flags & 0x12 == 0x12 and source in remaining:
                done(source, now)  # SYN-ACK: something listens and the filter allows
        for key, (_, began) in sorted(pending.items(), key=lambda i: i[1][1]):
            if began + attempt_timeout > now or key not in pending:
                continue
            del pending[key]
            if not want_open and key[0] in remaining:
                done(key[0], began)
    selector.close()
    raw.close()
    return {"times": times, "launched": dict(times), "attempts": attempts,
            "late_opens": late_opens, "missing": sorted(remaining)}


def _serve() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    for line in sys.stdin:
        command = json.loads(line)
        print(json.dumps({"started": time.monotonic()}), flush=True)
        if command.get("syn"):
            result = syn_probe(command["targets"], command["port"], command["want_open"],
                               command["interval"], command["attempt_timeout"],
                               command["deadline"])
        else:
            result = probe(command["targets"], command["port"], command["want_open"],
                           command["interval"], command["attempt_timeout"],
                           command["deadline"])
        print(json.dumps({"results": result}), flush=True)


class TcpProbe:
    """
    The benchmark's side: one probe process inside C{netns}.

    @param netns: the host namespace the guests' addresses live in.
    """

    def __init__(self, netns: str) -> None:
        self._process = subprocess.Popen(
            ["ip", "netns", "exec", netns, sys.executable, os.path.abspath(__file__)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def start(self, targets: list[str], port: int, want_open: bool, interval: float = 0.02,
              attempt_timeout: float = 0.5, deadline: float = 60.0,
              syn: bool = False) -> float:
        """
        Start probing; return once the probe runs.

        @param syn: bare SYNs (L{syn_probe}) instead of connections (L{probe}).
        @return: the probe's C{time.monotonic()} when it started.
        """
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps({
            "targets": targets, "port": port, "want_open": want_open, "interval": interval,
            "attempt_timeout": attempt_timeout, "deadline": deadline, "syn": syn}) + "\n")
        self._process.stdin.flush()
        return float(json.loads(self._read())["started"])

    def finish(self) -> dict[str, Any]:
        """@return: the results of the probe L{start} began (see L{probe})."""
        return dict(json.loads(self._read())["results"])

    def _read(self) -> str:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the probe exited ({self._process.poll()})")
        return line

    def close(self) -> None:
        """End the probe process (idempotent)."""
        if self._process.poll() is None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


if __name__ == "__main__":
    _serve()
