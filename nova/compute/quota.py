"""
Per-project quotas on instances, cores and RAM, elastic IPs, volumes and
their gigabytes, as in 2010 nova (C{nova/quota.py}): defaults, per-project
overrides kept in the datastore, and the RunInstances check (how many of
MinCount..MaxCount fit).

What a project uses is a hash (L{keys.quota_usage}) that the instance
repository updates in the same transaction as the instance records, so the
check and the launch are one atomic step: two concurrent launches cannot both
spend the same headroom. The volume repository (L{nova.volume.repository})
keeps C{volumes} and C{gigabytes} in the same hash, the same way.
"""

from __future__ import annotations

import types
from typing import Mapping

from nova.compute.instance_types import InstanceType
from nova.datastore import keys
from nova.datastore.interfaces import IDatastore, ITransaction
from nova.exception import ClientError, InvalidParameterValue

#: the quotas every project has unless overridden (C{floating_ips} is
#: enforced by L{nova.network.floating_ips}, which reads the same overrides;
#: C{volumes} and C{gigabytes} by L{nova.volume.repository})
DEFAULT_QUOTAS: types.MappingProxyType[str, int] = types.MappingProxyType({
    "instances": 10, "cores": 20, "ram_mb": 51200, "floating_ips": 10,
    "volumes": 10, "gigabytes": 1000,
})

QUOTA_NAMES = tuple(DEFAULT_QUOTAS)


class InstanceLimitExceeded(ClientError):
    """The project's quota does not allow MinCount more instances."""

    code = "InstanceLimitExceeded"


def usage_of(instance_type: InstanceType, count: int = 1) -> dict[str, int]:
    """@return: what C{count} instances of a type count against the quotas."""
    return {"instances": count, "cores": instance_type.vcpus * count,
            "ram_mb": instance_type.memory_mb * count}


def how_many_fit(limits: Mapping[str, int], used: Mapping[str, int],
                 instance_type: InstanceType, min_count: int, max_count: int) -> int:
    """
    RunInstances' rule: launch as many as fit, up to C{max_count}.

    @param limits: the project's quotas (L{QuotaRepository.get_quotas}).
    @param used: what it uses now (missing names count as 0).
    @return: how many to launch, between C{min_count} and C{max_count}.
    @raise InstanceLimitExceeded: fewer than C{min_count} fit.
    @raise InvalidParameterValue: counts out of order or below 1.
    """
    if min_count < 1 or max_count < min_count:
        raise InvalidParameterValue(
            f"Invalid counts: MinCount {min_count}, MaxCount {max_count}")
    fit = max_count
    for name, per_instance in usage_of(instance_type).items():
        if per_instance <= 0:
            continue
        headroom = limits[name] - used.get(name, 0)
        fit = min(fit, max(headroom, 0) // per_instance)
    if fit < min_count:
        raise InstanceLimitExceeded(
            f"Your quota allows for {fit} more {instance_type.name} instance(s). "
            f"You requested at least {min_count}.")
    return fit


def _ints(raw: Mapping[str, str]) -> dict[str, int]:
    return {k: int(v) for k, v in raw.items() if k in QUOTA_NAMES}


class QuotaRepository:
    """Quota overrides and usage of every project."""

    def __init__(self, store: IDatastore,
                 defaults: Mapping[str, int] = DEFAULT_QUOTAS) -> None:
        """
        @param store: where overrides and usage live.
        @param defaults: the quotas of a project without overrides (every
            name of L{QUOTA_NAMES}).
        """
        missing = set(QUOTA_NAMES) - set(defaults)
        if missing:
            raise ValueError(f"default quotas lack {sorted(missing)}")
        self._store = store
        self._defaults = dict(defaults)

    def _merge(self, overrides: Mapping[str, str]) -> dict[str, int]:
        merged = dict(self._defaults)
        merged.update(_ints(overrides))
        return merged

    async def get_quotas(self, project_id: str) -> dict[str, int]:
        """@return: the project's quotas: defaults, with its overrides applied."""
        return self._merge(await self._store.hgetall(keys.quota(project_id)))

    async def set_quota(self, project_id: str, name: str, value: int | None) -> dict[str, int]:
        """
        Override one quota of a project (C{nova-manage project quota}).

        @param value: a non-negative int, or C{None} to return to the default.
        @return: the project's quotas after the change.
        @raise InvalidParameterValue: an unknown name or a bad value.
        """
        if name not in QUOTA_NAMES:
            raise InvalidParameterValue(
                f"Invalid quota '{name}': expected one of {', '.join(QUOTA_NAMES)}")
        if value is None:
            await self._store.hdel(keys.quota(project_id), name)
        else:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidParameterValue(
                    f"Invalid value '{value}' for quota {name}: expected an integer >= 0")
            await self._store.hset(keys.quota(project_id), {name: str(value)})
        return await self.get_quotas(project_id)

    async def get_usage(self, project_id: str) -> dict[str, int]:
        """@return: what the project's non-terminated instances use (every name)."""
        used = dict.fromkeys(QUOTA_NAMES, 0)
        used.update(_ints(await self._store.hgetall(keys.quota_usage(project_id))))
        return used

    # -- inside the instance repository's transactions --------------------------

    def watch_keys(self, project_id: str) -> list[str]:
        """@return: the keys a transaction that checks the quota must WATCH."""
        return [keys.quota(project_id), keys.quota_usage(project_id)]

    async def read(self, txn: ITransaction, project_id: str
                   ) -> tuple[dict[str, int], dict[str, int]]:
        """
        @param txn: a transaction watching L{watch_keys}.
        @return: the project's quotas and usage, as that transaction sees them.
        """
        limits = self._merge(await txn.hgetall(keys.quota(project_id)))
        used = dict.fromkeys(QUOTA_NAMES, 0)
        used.update(_ints(await txn.hgetall(keys.quota_usage(project_id))))
        return limits, used

    @staticmethod
    def write_usage(txn: ITransaction, project_id: str, used: Mapping[str, int]) -> None:
        """Queue the new usage of a project (the caller read it in C{txn})."""
        txn.hset(keys.quota_usage(project_id), {k: str(v) for k, v in used.items()})
