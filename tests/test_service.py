"""
The base service: topics consumed, heartbeats written, periodic tasks run,
all driven by a Clock over the in-process bus and the in-memory datastore.
"""

from __future__ import annotations

from typing import Any, Sequence

from twisted.internet import defer, task
from twisted.trial import unittest

from nova.context import RequestContext
from nova.datastore.memory import MemoryDatastore
from nova.datastore.repositories import ServiceRepository
from nova.rpc.dispatcher import expose
from nova.rpc.local import LocalBroker
from nova.service import Manager, NovaService

NOW = 1_700_000_000.0


class EchoManager(Manager):
    binary = "nova-echo"

    def __init__(self, host: str, clock: Any) -> None:
        super().__init__(host, clock)
        self.ticks = 0
        self.fail_next_tick = False

    @expose
    async def echo(self, context: RequestContext, value: str) -> dict[str, Any]:
        return {"value": value, "host": self.host, "user": context.user_id}

    def capacity(self) -> dict[str, Any]:
        return {"vcpus": 4, "vcpus_used": 1}

    def periodic_tasks(self) -> Sequence[Any]:
        return [self.tick]

    async def tick(self) -> None:
        self.ticks += 1
        if self.fail_next_tick:
            self.fail_next_tick = False
            raise RuntimeError("a periodic task failed")


class NovaServiceTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.clock.advance(NOW)
        self.store = MemoryDatastore(self.clock)
        self.services = ServiceRepository(self.store, self.clock)
        self.broker = LocalBroker(self.clock)
        self.broker.start()
        self.manager = EchoManager("host1", self.clock)
        self.service = NovaService(manager=self.manager, topic="echo", zone="z1",
                                   rpc=self.broker, services=self.services, clock=self.clock,
                                   report_interval=10, periodic_interval=60)

    def run_until(self, d: defer.Deferred[Any]) -> Any:
        # deliveries happen on later reactor turns: turn the clock until done
        for _ in range(100):
            if d.called:
                break
            self.clock.advance(0)
        return self.successResultOf(d)

    def test_heartbeat(self) -> None:
        self.service.startService()
        self.addCleanup(self.service.stopService)
        record = self.run_until(defer.Deferred.fromCoroutine(self.services.get("host1",
                                                                               "nova-echo")))
        self.assertEqual((record.zone, record.topic, dict(record.capacity)),
                         ("z1", "echo", {"vcpus": 4, "vcpus_used": 1}))
        self.assertEqual(record.updated_at, NOW)
        self.clock.advance(10)
        record = self.run_until(defer.Deferred.fromCoroutine(self.services.get("host1",
                                                                               "nova-echo")))
        self.assertEqual(record.updated_at, NOW + 10)
        self.assertTrue(self.services.is_up(record, 60))
        self.run_until(self.service.stopService())  # the heartbeat stops with the service
        self.clock.advance(61)
        record = self.run_until(defer.Deferred.fromCoroutine(self.services.get("host1",
                                                                               "nova-echo")))
        self.assertEqual(record.updated_at, NOW + 10)
        self.assertFalse(self.services.is_up(record, 60))

    def test_no_heartbeat_before_the_topics_are_consumed(self) -> None:
        """A heartbeat makes the scheduler pick the host: its queues must be there first."""
        gate: defer.Deferred[None] = defer.Deferred()

        class SlowBus:
            async def consume(self, topic: str, dispatcher: Any) -> Any:
                await gate
                return await broker_consumer(topic, dispatcher)

        broker_consumer = self.broker.consume
        service = NovaService(manager=EchoManager("host3", self.clock), topic="echo", zone="z1",
                              rpc=SlowBus(), services=self.services, clock=self.clock,
                              report_interval=10, periodic_interval=60)
        service.startService()
        self.addCleanup(service.stopService)
        self.clock.advance(25)  # the timer ticked three times
        missing = defer.Deferred.fromCoroutine(self.services.get("host3", "nova-echo"))
        self.assertEqual(self.failureResultOf(missing).type.__name__, "ServiceNotFound")
        gate.callback(None)
        record = self.run_until(defer.Deferred.fromCoroutine(self.services.get("host3",
                                                                               "nova-echo")))
        self.assertEqual(record.updated_at, NOW + 25)  # at once, not at the next tick

    def test_calls_reach_topic_and_host_topic(self) -> None:
        self.service.startService()
        self.addCleanup(self.service.stopService)
        self.run_until(defer.Deferred.fromCoroutine(self.service.whenReady()))
        context = RequestContext(user_id="alice", project_id="p")
        for topic in ("echo", "echo.host1"):
            reply = self.run_until(self.broker.call(topic, "echo", {"value": topic}, context))
            self.assertEqual(reply, {"value": topic, "host": "host1", "user": "alice"})
        ping = self.run_until(self.broker.call("echo.host1", "ping", {}))
        self.assertEqual((ping["host"], ping["binary"]), ("host1", "nova-echo"))

    def test_periodic_tasks_survive_failures(self) -> None:
        self.service.startService()
        self.addCleanup(self.service.stopService)
        self.clock.advance(0)
        self.assertEqual(self.manager.ticks, 1)
        self.manager.fail_next_tick = True
        self.clock.advance(60)
        self.assertEqual(self.manager.ticks, 2)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.clock.advance(60)
        self.assertEqual(self.manager.ticks, 3)

    def test_stop_stops_consuming(self) -> None:
        self.service.startService()
        self.run_until(defer.Deferred.fromCoroutine(self.service.whenReady()))
        self.run_until(self.service.stopService())
        call = self.broker.call("echo", "echo", {"value": "x"}, timeout=5)
        self.clock.advance(6)
        self.assertEqual(self.failureResultOf(call).type.__name__, "RPCTimeout")

    def test_ready_only_once_consuming(self) -> None:
        """A process must not say it is up before its topics are consumed, nor when that failed."""
        self.service.startService()
        self.addCleanup(self.service.stopService)
        self.assertIsNone(self.run_until(defer.Deferred.fromCoroutine(self.service.whenReady())))

        stopped = LocalBroker(self.clock)  # never started: consume fails
        failing = NovaService(manager=EchoManager("host2", self.clock), topic="echo", zone="z1",
                              rpc=stopped, services=self.services, clock=self.clock,
                              report_interval=10, periodic_interval=60)
        failing.startService()
        ready = defer.Deferred.fromCoroutine(failing.whenReady())
        self.clock.advance(0)
        self.assertEqual(self.failureResultOf(ready).type.__name__, "NotConnected")
        failing.stopService()
