"""
Choosing a host: the scheduling policies as pure functions over the
services' heartbeats (L{nova.datastore.records.Service}).

Two policies, as in 2010 nova: I{chance} (any live, enabled host of the
topic that has room) and I{simple} (the least loaded such host, by vCPUs
then memory in use, from the capacity each heartbeat reports). An admin may
force a host with C{Placement.AvailabilityZone=zone:host}; a host whose
heartbeat is stale, or that is disabled, gets no work either way.
"""

from __future__ import annotations

import random
from typing import Iterable, Sequence

import attr

from nova.datastore.records import Service
from nova.exception import ClientError, NotAuthorized


class NoValidHost(ClientError):
    """No live host has room for the request."""

    code = "InsufficientInstanceCapacity"
    status = 503


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class Demand:
    """
    What the new work needs.

    @ivar zone: the availability zone asked for, or C{None} for any.
    @ivar forced_host: a host an admin named (C{zone:host}), or C{None}.
    """

    vcpus: int
    memory_mb: int
    disk_gb: int = 0
    zone: str | None = None
    forced_host: str | None = None


def parse_placement(zone: str | None, is_admin: bool) -> tuple[str | None, str | None]:
    """
    Split C{Placement.AvailabilityZone}: C{zone} or, for admins, C{zone:host}.

    @return: the zone (or C{None}) and the forced host (or C{None}).
    @raise NotAuthorized: a non-admin named a host.
    """
    if not zone:
        return None, None
    name, sep, host = zone.partition(":")
    if not sep:
        return name, None
    if not is_admin:
        raise NotAuthorized("Only administrators may place an instance on a given host")
    return name or None, host or None


def _free(service: Service, name: str) -> float:
    capacity = service.capacity
    return float(capacity.get(name, 0)) - float(capacity.get(f"{name}_used", 0))


def fits(service: Service, demand: Demand) -> bool:
    """@return: whether C{service}'s host has room for C{demand}, by its last heartbeat."""
    return (_free(service, "vcpus") >= demand.vcpus
            and _free(service, "memory_mb") >= demand.memory_mb
            and (demand.disk_gb == 0 or _free(service, "disk_gb") >= demand.disk_gb))


def candidates(services: Iterable[Service], demand: Demand, now: float,
               down_time: float) -> list[Service]:
    """@return: the live, enabled services in the right zone (and host) with room."""
    found = []
    for service in services:
        if service.disabled or now - service.updated_at > down_time:
            continue
        if demand.zone is not None and service.zone != demand.zone:
            continue
        if demand.forced_host is not None and service.host != demand.forced_host:
            continue
        if fits(service, demand):
            found.append(service)
    return found


def _none_left(demand: Demand) -> NoValidHost:
    where = f" on host {demand.forced_host}" if demand.forced_host else (
        f" in zone {demand.zone}" if demand.zone else "")
    return NoValidHost(f"No live host has room for {demand.vcpus} vCPUs and "
                       f"{demand.memory_mb} MiB{where}")


def chance(services: Sequence[Service], demand: Demand, now: float, down_time: float,
           rng: random.Random) -> Service:
    """
    @return: a random live host with room.
    @raise NoValidHost: there is none.
    """
    found = candidates(services, demand, now, down_time)
    if not found:
        raise _none_left(demand)
    return rng.choice(sorted(found, key=lambda s: s.host))


def simple(services: Sequence[Service], demand: Demand, now: float, down_time: float,
           rng: random.Random | None = None) -> Service:
    """
    @return: the least loaded live host with room: fewest vCPUs in use, then
        least memory in use, then the name (so the choice is deterministic).
    @raise NoValidHost: there is none.
    """
    found = candidates(services, demand, now, down_time)
    if not found:
        raise _none_left(demand)
    return min(found, key=lambda s: (float(s.capacity.get("vcpus_used", 0)),
                                     float(s.capacity.get("memory_mb_used", 0)), s.host))


POLICIES = {"chance": chance, "simple": simple}
