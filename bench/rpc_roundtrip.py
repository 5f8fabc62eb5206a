#!/usr/bin/env python
"""
RPC round-trip benchmark: call latency (sequential) and throughput (with
several calls outstanding) over the local broker and over AMQP (RabbitMQ on
loopback).

    .venv/bin/python bench/rpc_roundtrip.py [--transport local|amqp|both]
        [--calls N] [--concurrency C] [--server process|inline]

With C{--server process} (the default) the consumer runs in a child process,
as a real service would; C{inline} runs both ends in this process. The run is
bounded by C{--calls} and by C{--max-seconds}; it talks to 127.0.0.1 only
(C{NOVA_TEST_AMQP_PORT} overrides the port) and deletes what it declared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted.internet import defer, protocol, task  # noqa: E402

from nova.config import RpcConfig  # noqa: E402
from nova.context import RequestContext  # noqa: E402
from nova.rpc.dispatcher import Dispatcher, expose  # noqa: E402

#: the targets the figures are printed next to (AMQP)
TARGET_P50_MS = 2.0
TARGET_CALLS_PER_S = 2000.0


class EchoManager:
    """The remote end: returns what it is given."""

    @expose
    def echo(self, context: RequestContext, value: Any) -> Any:
        return value


def amqp_config(exchange: str) -> RpcConfig:
    return RpcConfig(transport="amqp", amqp_host="127.0.0.1",
                     amqp_port=int(os.environ.get("NOVA_TEST_AMQP_PORT", "5672")),
                     exchange=exchange, call_timeout=10.0)


def make_transport(reactor: Any, kind: str, exchange: str, broker: Any = None) -> Any:
    if kind == "local":
        return broker.connect()
    from nova.rpc.amqp import AMQPTransport
    return AMQPTransport(reactor, amqp_config(exchange))


class ServerProcess(protocol.ProcessProtocol):
    """The consumer, in a child process: says READY on stdout, exits when stdin closes."""

    def __init__(self) -> None:
        self.ready: defer.Deferred[None] = defer.Deferred()
        self.ended: defer.Deferred[None] = defer.Deferred()
        self.output = b""

    def outReceived(self, data: bytes) -> None:
        self.output += data
        if b"READY" in self.output and not self.ready.called:
            self.ready.callback(None)

    def errReceived(self, data: bytes) -> None:
        sys.stderr.write(data.decode(errors="replace"))

    def processEnded(self, reason: Any) -> None:
        if not self.ready.called:
            self.ready.errback(RuntimeError(f"server process ended: {self.output!r}"))
        self.ended.callback(None)


async def serve(reactor: Any, exchange: str, topic: str) -> None:
    """The child process's side of C{--server process}."""
    from twisted.internet import stdio

    transport = make_transport(reactor, "amqp", exchange)
    await transport.start()
    await transport.consume(topic, Dispatcher(EchoManager()))
    done: defer.Deferred[None] = defer.Deferred()

    class Stdin(protocol.Protocol):
        def connectionLost(self, reason: Any) -> None:
            done.callback(None)

    stdio.StandardIO(Stdin(), reactor=reactor)
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    await done
    await transport.stop()


async def measure(reactor: Any, client: Any, topic: str, calls: int, concurrency: int,
                  deadline: float) -> dict[str, float]:
    ctx = RequestContext.system()
    payload = {"value": {"instance_id": "i-00000001", "state": "running"}}
    for _ in range(min(200, calls)):  # warm-up, and a check that answers are right
        if await client.call(topic, "echo", payload, ctx) != payload["value"]:
            raise AssertionError("wrong answer from the echo server")
    latencies = []
    for _ in range(calls):
        if time.monotonic() > deadline:
            break
        t0 = time.perf_counter()
        await client.call(topic, "echo", payload, ctx)
        latencies.append(time.perf_counter() - t0)
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000

    remaining = calls
    done = 0

    async def worker() -> None:
        nonlocal remaining, done
        while remaining > 0 and time.monotonic() < deadline:
            remaining -= 1
            if await client.call(topic, "echo", payload, ctx) != payload["value"]:
                raise AssertionError("wrong answer from the echo server")
            done += 1

    t0 = time.perf_counter()
    await defer.gatherResults([defer.Deferred.fromCoroutine(worker())
                               for _ in range(concurrency)], consumeErrors=True)
    elapsed = time.perf_counter() - t0
    return {"p50_ms": p50, "p99_ms": p99, "sequential": len(latencies),
            "rate": done / elapsed, "concurrent": done}


async def run_one(reactor: Any, kind: str, args: argparse.Namespace) -> dict[str, float]:
    from nova.rpc.local import LocalBroker

    exchange = f"nova-bench-{uuid.uuid4().hex[:8]}"
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    broker = LocalBroker(reactor) if kind == "local" else None
    client = make_transport(reactor, kind, exchange, broker)
    await client.start()
    child = None
    server = None
    try:
        if kind == "amqp" and args.server == "process":
            child = ServerProcess()
            reactor.spawnProcess(
                child, sys.executable,
                [sys.executable, os.path.abspath(__file__), "--serve", exchange, topic],
                env=os.environ.copy())
            await child.ready
        else:
            server = make_transport(reactor, kind, exchange, broker)
            await server.start()
            await server.consume(topic, Dispatcher(EchoManager()))
        deadline = time.monotonic() + args.max_seconds
        return await measure(reactor, client, topic, args.calls, args.concurrency, deadline)
    finally:
        if child is not None:
            child_transport = child.transport
            child_transport.closeStdin()
            await child.ended
        if server is not None:
            await server.stop()
        if kind == "amqp":
            await client.delete_topic(topic)
            await client.delete_exchange()
        await client.stop()


def report(kind: str, where: str, r: dict[str, float], concurrency: int) -> None:
    print(f"{kind:5} ({where}): sequential {int(r['sequential'])} calls: "
          f"p50 {r['p50_ms']:.3f} ms, p99 {r['p99_ms']:.3f} ms")
    print(f"{'':5}  {concurrency} outstanding, {int(r['concurrent'])} calls: "
          f"{r['rate']:.0f} calls/s")
    if kind == "amqp":
        ok_lat = "meets" if r["p50_ms"] <= TARGET_P50_MS else "MISSES"
        ok_rate = "meets" if r["rate"] >= TARGET_CALLS_PER_S else "MISSES"
        print(f"{'':5}  target p50 <= {TARGET_P50_MS:g} ms: {ok_lat}; "
              f"target >= {TARGET_CALLS_PER_S:.0f} calls/s: {ok_rate}")


async def main(reactor: Any, args: argparse.Namespace) -> None:
    kinds = ["local", "amqp"] if args.transport == "both" else [args.transport]
    for kind in kinds:
        where = "one process" if kind == "local" or args.server == "inline" else "server in a child process"
        result = await run_one(reactor, kind, args)
        report(kind, where, result, args.concurrency)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transport", choices=("local", "amqp", "both"), default="both")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--server", choices=("process", "inline"), default="process")
    parser.add_argument("--max-seconds", type=float, default=60.0,
                        help="stop measuring after this long, whatever --calls says")
    parser.add_argument("--serve", nargs=2, metavar=("EXCHANGE", "TOPIC"),
                        help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    options = parse(sys.argv[1:])
    if options.serve:
        task.react(lambda r: defer.Deferred.fromCoroutine(serve(r, *options.serve)))
    else:
        task.react(lambda r: defer.Deferred.fromCoroutine(main(r, options)))
