"""
nova-scheduler: picks the compute host of each new instance (topic
C{scheduler}) and hands the instance to it.

Heartbeats report what each host uses, but only every few seconds; ten
launches in one second would all see the same figures and land on one host.
So the scheduler remembers what it placed since each host's last heartbeat
(its I{claims}) and counts those too: a claim ends once a heartbeat newer
than it has reported the host's own figures.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Sequence

import attr
from twisted.logger import Logger

from nova.compute import states
from nova.compute.repository import InstanceRepository
from nova.compute.rpcapi import TOPIC as COMPUTE_TOPIC, ComputeAPI
from nova.context import RequestContext
from nova.datastore.records import Service
from nova.datastore.repositories import ServiceRepository
from nova.rpc.dispatcher import expose
from nova.scheduler.hosts import POLICIES, Demand, NoValidHost
from nova.service import Manager
from nova.volume import states as volume_states
from nova.volume.rpcapi import TOPIC as VOLUME_TOPIC

log = Logger()


class _Claims:
    """What this scheduler placed on each host that no heartbeat reflects yet."""

    def __init__(self) -> None:
        self._by_host: dict[str, list[tuple[float, int, int]]] = {}

    def add(self, host: str, when: float, demand: Demand) -> None:
        self._by_host.setdefault(host, []).append((when, demand.vcpus, demand.memory_mb))

    def apply(self, service: Service) -> Service:
        """@return: C{service} with its unreported claims added to the used figures."""
        pending = [c for c in self._by_host.get(service.host, ()) if c[0] >= service.updated_at]
        self._by_host[service.host] = pending
        if not pending:
            return service
        capacity = dict(service.capacity)
        capacity["vcpus_used"] = capacity.get("vcpus_used", 0) + sum(c[1] for c in pending)
        capacity["memory_mb_used"] = (capacity.get("memory_mb_used", 0)
                                      + sum(c[2] for c in pending))
        return attr.evolve(service, capacity=capacity)


def overcommitted(service: Service, cpu_ratio: float, ram_ratio: float) -> Service:
    """
    @return: C{service} with what its host may hand out: its vCPUs and memory
        times the allocation ratios (guests rarely use all they are given;
        2010 nova allowed 16 instance cores per host whatever it had).
    """
    capacity = dict(service.capacity)
    capacity["vcpus"] = capacity.get("vcpus", 0) * cpu_ratio
    capacity["memory_mb"] = capacity.get("memory_mb", 0) * ram_ratio
    return attr.evolve(service, capacity=capacity)


class SchedulerManager(Manager):
    """
    @param instances: the instance records.
    @param services: the heartbeats.
    @param compute: sends the chosen host its work.
    @param clock: the reactor's time.
    @param policy: C{simple} or C{chance} (L{nova.scheduler.hosts.POLICIES}).
    @param down_time: seconds after which a silent host gets no work.
    @param rng: for the chance policy.
    @param cpu_ratio: vCPUs handed out per host CPU.
    @param ram_ratio: guest memory handed out per MiB of host memory.
    @param volumes: the volume records (L{nova.volume.repository.VolumeRepository}).
    @param volume_api: sends the chosen volume host its work.
    """

    binary = "nova-scheduler"

    def __init__(self, host: str, clock: Any, *, instances: InstanceRepository,
                 services: ServiceRepository, compute: ComputeAPI, policy: str = "simple",
                 down_time: float = 60.0, rng: random.Random | None = None,
                 cpu_ratio: float = 1.0, ram_ratio: float = 1.0,
                 volumes: Any = None, volume_api: Any = None) -> None:
        super().__init__(host, clock)
        if policy not in POLICIES:
            raise ValueError(f"unknown scheduler policy {policy!r}: "
                             f"expected one of {', '.join(sorted(POLICIES))}")
        self._instances = instances
        self._services = services
        self._compute = compute
        self._choose: Callable[..., Service] = POLICIES[policy]
        self._down_time = down_time
        self._rng = rng or random.Random()
        self._claims = _Claims()
        self._cpu_ratio = cpu_ratio
        self._ram_ratio = ram_ratio
        self._volumes = volumes
        self._volume_api = volume_api

    async def _compute_hosts(self) -> Sequence[Service]:
        return [self._claims.apply(overcommitted(s, self._cpu_ratio, self._ram_ratio))
                for s in await self._services.list() if s.topic == COMPUTE_TOPIC]

    @expose
    async def run_instance(self, context: RequestContext, instance_id: str,
                           zone: str | None = None,
                           forced_host: str | None = None) -> str | None:
        """
        Choose a host for a pending instance, record it, and cast the spawn
        to that host. With no host that fits, the instance ends C{terminated}
        with C{Server.InsufficientInstanceCapacity} as its stateReason.

        @return: the chosen host, or C{None} when there was none (or the
            instance is no longer pending).
        """
        instance = await self._instances.get(instance_id)
        if instance.state != states.PENDING or instance.host is not None:
            log.info("not scheduling {id}: it is {state} on {host}", id=instance_id,
                     state=instance.state, host=instance.host)
            return None
        demand = Demand(vcpus=instance.vcpus, memory_mb=instance.memory_mb,
                        zone=zone, forced_host=forced_host)
        now = self._clock.seconds()
        try:
            chosen = self._choose(await self._compute_hosts(), demand, now, self._down_time,
                                  self._rng)
        except NoValidHost as e:
            log.warn("no host for {id}: {why}", id=instance_id, why=e)
            await self._instances.transition(instance_id, "destroyed",
                                             state_reason=states.INSUFFICIENT_CAPACITY)
            return None
        self._claims.add(chosen.host, now, demand)
        await self._instances.update(instance_id, host=chosen.host,
                                     availability_zone=chosen.zone)
        await self._compute.run_instance(context, chosen.host, instance_id)
        return chosen.host

    @expose
    async def create_volume(self, context: RequestContext, volume_id: str) -> str | None:
        """
        Choose the volume host of a new volume: a live nova-volume of the
        volume's zone holding the fewest gigabytes (2010's SimpleScheduler),
        record it and cast the creation there. With none, the volume ends in
        C{error} saying so.

        @return: the chosen host, or C{None}.
        """
        volume = await self._volumes.get(volume_id)
        if volume.status != volume_states.CREATING or volume.host is not None:
            log.info("not scheduling {id}: it is {status} on {host}", id=volume_id,
                     status=volume.status, host=volume.host)
            return None
        live = [s for s in await self._services.list()
                if s.topic == VOLUME_TOPIC and not s.disabled
                and self._services.is_up(s, self._down_time)
                and s.zone == volume.availability_zone]
        if not live:
            log.warn("no volume host for {id} in zone {zone}", id=volume_id,
                     zone=volume.availability_zone)
            await self._volumes.transition(volume_id, "create_failed",
                                           status_reason="no volume host is available")
            return None
        held: dict[str, int] = {s.host: 0 for s in live}
        for other in await self._volumes.list():
            if other.host in held:
                held[other.host] += other.size
        chosen = min(live, key=lambda s: (held[s.host], s.host))
        await self._volumes.update(volume_id, host=chosen.host)
        await self._volume_api.create_volume_on(context, chosen.host, volume_id)
        log.info("{id} ({size} GiB) goes to volume host {host}", id=volume_id,
                 size=volume.size, host=chosen.host)
        return chosen.host
