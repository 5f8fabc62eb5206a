"""
The base of every nova component run by twistd.

A L{NovaService} consumes its RPC topics (C{topic} and C{topic.<host>}) with
its manager's exposed methods, reports a heartbeat to the datastore every
few seconds (binary, host, zone, updated_at, capacity), and runs its periodic
tasks. twistd starts and stops it like any other service.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Sequence

from twisted.application.internet import TimerService
from twisted.application.service import MultiService
from twisted.internet import defer
from twisted.logger import Logger

from nova.context import RequestContext
from nova.datastore.records import Service
from nova.datastore.repositories import ServiceRepository
from nova.rpc.dispatcher import Dispatcher, expose

log = Logger()

PeriodicTask = Callable[[], Awaitable[Any]]


class Manager:
    """
    The RPC face of a component: methods marked L{expose} are what other
    components may call. Subclasses add their own.

    @ivar host: the host this manager runs on.
    """

    binary = "nova-service"

    def __init__(self, host: str, clock: Any) -> None:
        self.host = host
        self._clock = clock
        self._started = clock.seconds()

    @expose
    def ping(self, context: RequestContext) -> dict[str, Any]:
        """@return: who answered and since when it runs: a liveness probe over RPC."""
        return {"host": self.host, "binary": self.binary, "started_at": self._started,
                "time": self._clock.seconds()}

    def capacity(self) -> dict[str, Any]:
        """@return: what this service offers, reported with every heartbeat."""
        return {}

    def periodic_tasks(self) -> Sequence[PeriodicTask]:
        """@return: the coroutine functions to run every periodic interval."""
        return ()


class NovaService(MultiService):
    """
    A component: its manager on the bus, its heartbeat, its periodic tasks.

    @param topic: the RPC topic (C{None} for a service that takes no RPC).
    @param rpc: the L{nova.rpc.interfaces.IRPCTransport}, already started by
        the time this service starts.
    @param services: where heartbeats go.
    @param clock: the reactor's time (a L{task.Clock} in tests).
    """

    def __init__(self, *, manager: Manager, topic: str | None, zone: str, rpc: Any,
                 services: ServiceRepository, clock: Any, report_interval: float,
                 periodic_interval: float) -> None:
        super().__init__()
        self.manager = manager
        self.topic = topic
        self.zone = zone
        self._rpc = rpc
        self._services = services
        self._clock = clock
        self._consumers: list[Any] = []
        self._started_at = clock.seconds()
        self._report_count = 0
        heartbeat = TimerService(report_interval, self._report_state)
        heartbeat.clock = clock
        heartbeat.setServiceParent(self)
        periodic = TimerService(periodic_interval, self._run_periodic_tasks)
        periodic.clock = clock
        periodic.setServiceParent(self)
        self._consuming: defer.Deferred[None] | None = None

    @property
    def binary(self) -> str:
        return self.manager.binary

    def startService(self) -> None:
        if self.topic is not None:
            self._consuming = defer.Deferred.fromCoroutine(self._consume())
            # the first heartbeat once the topics are consumed: a heartbeat
            # makes the scheduler pick this host, and a cast to a topic not
            # yet bound would be lost
            self._consuming.addCallback(lambda _: self._report_state())
        super().startService()

    async def _consume(self) -> None:
        dispatcher = Dispatcher(self.manager)
        for topic in (self.topic, f"{self.topic}.{self.manager.host}"):
            self._consumers.append(await self._rpc.consume(topic, dispatcher))

    def stopService(self) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        if self._consuming is not None:
            await self._consuming
        for consumer in self._consumers:
            await consumer.stop()
        self._consumers.clear()
        await super().stopService()

    async def whenReady(self) -> None:  # noqa: N802 (the process awaits every child's)
        """
        Return once the topics are consumed: only then may the process say it is up.

        @raise Exception: consuming failed (the process then fails to start).
        """
        if self._consuming is None:
            return
        d: defer.Deferred[None] = defer.Deferred()
        self._consuming.addBoth(lambda r: (d.callback(r), None)[1])
        await d

    def _report_state(self) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(self.report_state())

    async def report_state(self) -> None:
        """
        Write this service's heartbeat; a datastore outage is logged, not
        fatal. Nothing before its topics are consumed (or when that failed).
        """
        if self._consuming is not None and (not self._consuming.called
                                            or not self._consumers):
            return
        try:
            # inside: a capacity the record refuses must be logged, not end the timer
            record = Service(host=self.manager.host, binary=self.binary,
                             topic=self.topic or "", zone=self.zone,
                             updated_at=self._clock.seconds(), report_count=self._report_count,
                             capacity=self.manager.capacity(), disabled=False,
                             started_at=self._started_at)
            await self._services.heartbeat(record)
            self._report_count += 1
        except Exception as e:
            log.warn("{binary} on {host}: heartbeat failed: {error}", binary=self.binary,
                     host=self.manager.host, error=e)

    def _run_periodic_tasks(self) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(self._periodic())

    async def _periodic(self) -> None:
        for task in self.manager.periodic_tasks():
            try:
                await task()
            except Exception:
                log.failure("{binary}: periodic task {task} failed", binary=self.binary,
                            task=getattr(task, "__name__", task))
