"""
L{InstanceRepository}: instances and reservations in the datastore.

Layout (key names in L{nova.datastore.keys}): one JSON record per instance and
per reservation; sorted sets of instance keys by creation time (all, and per
project) that give DescribeInstances its stable order and paging; a set per
compute host; a sorted set of terminated instances by termination time (what
L{InstanceRepository.purge_terminated} walks); a client-token key per
(project, ClientToken); the project's quota usage hash. Every write that
touches a record and its indexes is one C{transact}. Listings read an index
then fetch the records with one MGET, never one GET each.

Terminated instances stay visible for L{TERMINATED_VISIBLE_SECONDS} (reads
hide them after that even before a purge has run).
"""

from __future__ import annotations

import builtins
import re
from typing import Any, Callable, Iterable, Mapping, Sequence

import attr
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from nova.compute import instance_types, states
from nova.compute.quota import QUOTA_NAMES, QuotaRepository, how_many_fit, usage_of
from nova.compute.records import INSTANCE_ID, Instance, Reservation
from nova.datastore import keys
from nova.datastore.interfaces import IDatastore, ITransaction
from nova.exception import InvalidParameterValue, NotFound
from nova.utils.filters import wildcard
from nova.utils.paging import decode_token, encode_token

#: how long a terminated instance stays visible (EC2: about an hour)
TERMINATED_VISIBLE_SECONDS = 3600.0

#: how many decoded records a repository keeps (a few MB at most)
DECODED_CACHE_SIZE = 20_000

_FIXED = frozenset({"instance_id", "reservation_id", "project_id", "created_at"})


class InvalidInstanceIDNotFound(NotFound):
    """No such instance (or it was terminated more than an hour ago)."""

    code = "InvalidInstanceID.NotFound"


class InvalidInstanceIDMalformed(InvalidParameterValue):
    """A string that is not an instance id."""

    code = "InvalidInstanceID.Malformed"


#: DescribeInstances filter name to the record value it matches
FILTERS: Mapping[str, Callable[[Instance], str | None]] = {
    "instance-state-name": lambda i: i.state,
    "instance-state-code": lambda i: str(i.state_code),
    "instance-id": lambda i: i.instance_id,
    "image-id": lambda i: i.image_id,
    "key-name": lambda i: i.key_name,
    "reservation-id": lambda i: i.reservation_id,
    "instance-type": lambda i: i.instance_type,
    "availability-zone": lambda i: i.availability_zone,
}


def _compile_filters(filters: Mapping[str, Iterable[str]] | None
                     ) -> list[tuple[Callable[[Instance], str | None], list[re.Pattern[str]]]]:
    compiled = []
    for name, values in (filters or {}).items():
        getter = FILTERS.get(name)
        if getter is None:
            raise InvalidParameterValue(f"The filter '{name}' is invalid")
        if isinstance(values, str):
            values = [values]
        compiled.append((getter, [wildcard(v) for v in values]))
    return compiled


def _matches(instance: Instance, compiled: Sequence[tuple[Callable[[Instance], str | None],
                                                            list[re.Pattern[str]]]]) -> bool:
    for getter, patterns in compiled:
        value = getter(instance)
        if value is None or not any(p.match(value) for p in patterns):
            return False
    return True


@attr.s(frozen=True, auto_attribs=True)
class LaunchResult:
    """
    What L{InstanceRepository.create_reservation} stored.

    @ivar replayed: C{True} when a ClientToken matched an earlier launch, whose
        reservation and instances these are (nothing new was written).
    """

    reservation: Reservation
    instances: tuple[Instance, ...]
    replayed: bool = False


@attr.s(frozen=True, auto_attribs=True)
class Page:
    """
    One page of a listing.

    @ivar next_token: pass it back for the next page; C{None} on the last one.
    """

    instances: tuple[Instance, ...]
    next_token: str | None = None


def _usage(instance: Instance) -> dict[str, int]:
    if instance.state == states.TERMINATED:
        return dict.fromkeys(QUOTA_NAMES, 0)
    return usage_of(instance_types.get(instance.instance_type))


class _UsageDelta:
    """Changes to projects' quota usage, applied at the end of one transaction."""

    def __init__(self) -> None:
        self._delta: dict[str, dict[str, int]] = {}

    def add(self, project_id: str, amounts: Mapping[str, int], sign: int = 1) -> None:
        mine = self._delta.setdefault(project_id, dict.fromkeys(QUOTA_NAMES, 0))
        for name, amount in amounts.items():
            mine[name] += sign * amount

    def change(self, old: Instance | None, new: Instance | None) -> None:
        if old is not None:
            self.add(old.project_id, _usage(old), -1)
        if new is not None:
            self.add(new.project_id, _usage(new))

    async def apply(self, txn: ITransaction, quotas: QuotaRepository) -> None:
        for project_id, delta in self._delta.items():
            if not any(delta.values()):
                continue
            await txn.watch(*quotas.watch_keys(project_id))
            _limits, used = await quotas.read(txn, project_id)
            quotas.write_usage(txn, project_id,
                               {k: max(used[k] + delta[k], 0) for k in QUOTA_NAMES})


class InstanceRepository:
    """The instances and reservations of every project."""

    def __init__(self, store: IDatastore, clock: IReactorTime,
                 quotas: QuotaRepository | None = None) -> None:
        """
        @param store: where records live.
        @param clock: stamps records and decides what is expired.
        @param quotas: the quotas launches are checked against (defaults when
            C{None}).
        """
        self._store = store
        self._clock = clock
        self.quotas = quotas if quotas is not None else QuotaRepository(store)
        self._launch_locks: dict[str, defer.DeferredLock] = {}
        self._decoded: dict[str, Instance] = {}

    def _decode(self, raw: str) -> Instance:
        """
        @return: the record stored as C{raw}. Listings decode the same
            unchanged records again and again: the same text gives the same
            (immutable) record object, from a bounded cache.
        """
        found = self._decoded.get(raw)
        if found is None:
            found = Instance.from_json(raw)
            if len(self._decoded) >= DECODED_CACHE_SIZE:
                del self._decoded[next(iter(self._decoded))]  # the oldest entry
            self._decoded[raw] = found
        return found

    # -- writes ---------------------------------------------------------------

    async def create_reservation(self, reservation: Reservation,
                                 instances: Sequence[Instance],
                                 min_count: int | None = None) -> LaunchResult:
        """
        Launch: check the quota and write the reservation, its instances and
        every index in one transaction. As many instances as fit are written,
        taken in order from C{instances} (MaxCount of them); the reservation
        keeps their ids only.

        With C{reservation.client_token} set and an earlier launch of the
        project with that token still stored, that launch is returned instead
        (of two concurrent launches with one token, one writes and the other
        gets its result).

        @param instances: the MaxCount instance records, launch index order,
            of one instance type; their ids are C{reservation.instance_ids}.
        @param min_count: fewest acceptable (default: all of C{instances}).
        @raise nova.compute.quota.InstanceLimitExceeded: fewer than
            C{min_count} fit in the quota.
        """
        instances = list(instances)
        if not instances or tuple(i.instance_id for i in instances) != reservation.instance_ids:
            raise ValueError("the instances must be those the reservation names, in order")
        if len({(i.project_id, i.reservation_id, i.instance_type) for i in instances}) != 1 \
                or instances[0].project_id != reservation.project_id \
                or instances[0].reservation_id != reservation.reservation_id:
            raise ValueError("a reservation's instances share project, reservation and type")
        project = reservation.project_id
        token = reservation.client_token
        token_key = keys.instance_client_token(project, token) if token is not None else None
        itype = instance_types.get(instances[0].instance_type)
        low = len(instances) if min_count is None else min_count

        async def launch(txn: ITransaction) -> LaunchResult:
            if token_key is not None:
                earlier = await self._replay(txn, await txn.get(token_key))
                if earlier is not None:
                    return earlier
            limits, used = await self.quotas.read(txn, project)
            n = how_many_fit(limits, used, itype, low, len(instances))
            chosen = instances[:n]
            stored = attr.evolve(reservation,
                                 instance_ids=tuple(i.instance_id for i in chosen))
            for inst in chosen:
                self._write_indexes(txn, None, inst)
            txn.set(keys.reservation(stored.reservation_id), stored.to_json())
            if token_key is not None:
                txn.set(token_key, stored.reservation_id)
            delta = _UsageDelta()
            for inst in chosen:
                delta.change(None, inst)
            await delta.apply(txn, self.quotas)
            return LaunchResult(stored, tuple(chosen))

        watch = self.quotas.watch_keys(project) + ([token_key] if token_key else [])
        # Launches of one project all watch its quota keys: run this process's
        # one at a time, so that a burst does not retry itself to exhaustion;
        # other processes still meet at the WATCH, which keeps it correct.
        lock = self._launch_locks.setdefault(project, defer.DeferredLock())
        await lock.acquire()
        try:
            return await self._store.transact(watch, launch)
        finally:
            lock.release()
            if not lock.locked and not lock.waiting:
                self._launch_locks.pop(project, None)

    async def _replay(self, txn: ITransaction, reservation_id: str | None
                      ) -> LaunchResult | None:
        if reservation_id is None:
            return None
        raw = await txn.get(keys.reservation(reservation_id))
        if raw is None:
            return None
        earlier = Reservation.from_json(raw)
        values = await txn.mget(*[keys.instance(i) for i in earlier.instance_ids])
        found = tuple(Instance.from_json(v) for v in values if v is not None)
        return LaunchResult(earlier, found, replayed=True)

    def _write_indexes(self, txn: ITransaction, old: Instance | None, new: Instance) -> None:
        key = keys.instance(new.instance_id)
        txn.set(key, new.to_json())
        if old is None:
            txn.zadd(keys.instances_by_time(), {key: new.created_at})
            txn.zadd(keys.instances_of_project(new.project_id), {key: new.created_at})
        if old is not None and old.host is not None and old.host != new.host:
            txn.srem(keys.instances_on_host(old.host), key)
        if new.host is not None and (old is None or old.host != new.host):
            txn.sadd(keys.instances_on_host(new.host), key)
        if new.terminated_at is not None and new.state == states.TERMINATED:
            txn.zadd(keys.instances_terminated(), {key: new.terminated_at})
            # a terminated instance no longer keeps its groups in use
            for group in new.security_groups:
                txn.srem(keys.security_group_members(new.project_id, group), new.instance_id)
        elif old is not None and old.state == states.TERMINATED:
            txn.zrem(keys.instances_terminated(), key)

    def _evolve(self, old: Instance, changes: Mapping[str, Any]) -> Instance:
        fixed = _FIXED & set(changes)
        if fixed:
            raise ValueError(f"cannot change {sorted(fixed)} of an instance")
        now = self._clock.seconds()
        new = attr.evolve(old, **changes, updated_at=now)
        if new.state == states.TERMINATED and new.terminated_at is None:
            new = attr.evolve(new, terminated_at=now)
        if new.state == states.RUNNING and new.launched_at is None:
            new = attr.evolve(new, launched_at=now)
        return new

    async def update(self, instance_id: str, **changes: Any) -> Instance:
        """
        Change fields of an instance, atomically against every other writer
        (optimistic concurrency: a conflicting write makes this run again on
        the new record). C{updated_at} becomes now; reaching C{terminated}
        sets C{terminated_at}, reaching C{running} the first time sets
        C{launched_at}. Indexes and quota usage follow.

        @param changes: record fields and their new values (not the id,
            reservation, project or creation time).
        @return: the record as stored.
        @raise InvalidInstanceIDNotFound: no such instance.
        """
        instance_id = self._check_id(instance_id)
        key = keys.instance(instance_id)

        async def change(txn: ITransaction) -> Instance:
            old = self._visible(await txn.get(key), instance_id)
            new = self._evolve(old, changes)
            await self._write_change(txn, old, new)
            return new

        return await self._store.transact([key], change)

    async def update_if(self, instance_id: str, expected_state: str, /,
                        **changes: Any) -> Instance | None:
        """
        L{update}, only while the record is still in C{expected_state} (checked in
        the same transaction): for a writer that decided from a record it
        read earlier, such as the compute node's reconcile.

        @return: the record as stored, or C{None} when its state had
            changed (nothing written).
        @raise InvalidInstanceIDNotFound: no such instance.
        """
        instance_id = self._check_id(instance_id)
        key = keys.instance(instance_id)

        async def change(txn: ITransaction) -> Instance | None:
            old = self._visible(await txn.get(key), instance_id)
            if old.state != expected_state:
                return None
            new = self._evolve(old, changes)
            await self._write_change(txn, old, new)
            return new

        return await self._store.transact([key], change)

    async def transition(self, instance_id: str, action: str,
                         **changes: Any) -> tuple[Instance, Instance]:
        """
        Apply an action of L{states.TRANSITIONS} (reboot, stop, start,
        terminate; spawned, powered_off, destroyed from the compute node),
        checked against the current state in the same transaction.

        @param changes: more fields to set with the new state (C{state_reason},
            C{host} ...); ignored when the action changes nothing.
        @return: the record before and after (the same record when the action
            changes nothing, e.g. stopping a stopped instance).
        @raise nova.compute.states.IncorrectInstanceState: not allowed now.
        @raise InvalidInstanceIDNotFound: no such instance.
        """
        instance_id = self._check_id(instance_id)
        key = keys.instance(instance_id)
        if action not in states.TRANSITIONS:
            raise ValueError(f"unknown action {action!r}")

        async def move(txn: ITransaction) -> tuple[Instance, Instance]:
            old = self._visible(await txn.get(key), instance_id)
            target = states.check_transition(instance_id, old.state, action)
            if target is None:
                return old, old
            new = self._evolve(old, {**changes, "state": target})
            await self._write_change(txn, old, new)
            return old, new

        return await self._store.transact([key], move)

    async def _write_change(self, txn: ITransaction, old: Instance, new: Instance) -> None:
        self._write_indexes(txn, old, new)
        delta = _UsageDelta()
        delta.change(old, new)
        await delta.apply(txn, self.quotas)

    async def delete(self, instance_id: str) -> bool:
        """
        Remove an instance at once, with its indexes (its reservation too when
        it was the last one); a non-terminated instance gives back its quota.

        @return: whether it existed.
        """
        key = keys.instance(self._check_id(instance_id))

        async def remove(txn: ITransaction) -> bool:
            raw = await txn.get(key)
            if raw is None:
                return False
            await self._remove(txn, [Instance.from_json(raw)])
            return True

        return await self._store.transact([key], remove)

    async def purge_terminated(self, now: float | None = None) -> int:
        """
        Remove the instances terminated more than an hour before C{now}
        (a periodic task of the API service).

        @param now: default: the clock's time.
        @return: how many instances were removed.
        """
        now = self._clock.seconds() if now is None else now
        cutoff = now - TERMINATED_VISIBLE_SECONDS
        index = keys.instances_terminated()
        members = await self._store.zrangebyscore(index, "-inf", f"({cutoff!r}")
        if not members:
            return 0

        async def purge(txn: ITransaction) -> int:
            values = await txn.mget(*members)
            doomed = []
            for member, raw in zip(members, values):
                inst = None if raw is None else Instance.from_json(raw)
                if inst is None or inst.state != states.TERMINATED:
                    txn.zrem(index, member)  # a stale index entry
                elif inst.terminated_at is not None and inst.terminated_at < cutoff:
                    doomed.append(inst)
            await self._remove(txn, doomed)
            return len(doomed)

        return await self._store.transact(list(members), purge)

    async def _remove(self, txn: ITransaction, doomed: Sequence[Instance]) -> None:
        delta = _UsageDelta()
        gone = {i.instance_id for i in doomed}
        for inst in doomed:
            key = keys.instance(inst.instance_id)
            txn.delete(key)
            txn.zrem(keys.instances_by_time(), key)
            txn.zrem(keys.instances_of_project(inst.project_id), key)
            txn.zrem(keys.instances_terminated(), key)
            if inst.host is not None:
                txn.srem(keys.instances_on_host(inst.host), key)
            delta.change(inst, None)
        # a reservation goes with its last instance, and its client token with it
        rkeys = sorted({keys.reservation(i.reservation_id) for i in doomed})
        if rkeys:
            await txn.watch(*rkeys)
            for raw in await txn.mget(*rkeys):
                if raw is None:
                    continue
                res = Reservation.from_json(raw)
                others = [keys.instance(i) for i in res.instance_ids if i not in gone]
                if others:
                    await txn.watch(*others)
                    if any(v is not None for v in await txn.mget(*others)):
                        continue
                txn.delete(keys.reservation(res.reservation_id))
                if res.client_token is not None:
                    tkey = keys.instance_client_token(res.project_id, res.client_token)
                    await txn.watch(tkey)
                    if await txn.get(tkey) == res.reservation_id:
                        txn.delete(tkey)
        await delta.apply(txn, self.quotas)

    # -- reads ----------------------------------------------------------------

    def _check_id(self, instance_id: str) -> str:
        if not isinstance(instance_id, str) or not INSTANCE_ID.match(instance_id):
            raise InvalidInstanceIDMalformed(f'Invalid id: "{instance_id}"')
        return instance_id

    def _is_visible(self, inst: Instance) -> bool:
        return (inst.terminated_at is None
                or self._clock.seconds() - inst.terminated_at <= TERMINATED_VISIBLE_SECONDS)

    def _visible(self, raw: str | None, instance_id: str) -> Instance:
        inst = None if raw is None else self._decode(raw)
        if inst is None or not self._is_visible(inst):
            raise InvalidInstanceIDNotFound(f"The instance ID '{instance_id}' does not exist")
        return inst

    async def get(self, instance_id: str) -> Instance:
        """
        @raise InvalidInstanceIDMalformed: not an instance id.
        @raise InvalidInstanceIDNotFound: no such instance (or terminated
            more than an hour ago).
        """
        instance_id = self._check_id(instance_id)
        return self._visible(await self._store.get(keys.instance(instance_id)), instance_id)

    async def get_many(self, instance_ids: Sequence[str]) -> builtins.list[Instance]:
        """
        Several instances in one round trip (DescribeInstances with ids,
        TerminateInstances ...).

        @return: the records, in the order of C{instance_ids} (duplicates once).
        @raise InvalidInstanceIDNotFound: one of them does not exist (the
            message names the first missing).
        """
        wanted = list(dict.fromkeys(self._check_id(i) for i in instance_ids))
        if not wanted:
            return []
        values = await self._store.mget(*[keys.instance(i) for i in wanted])
        return [self._visible(raw, i) for i, raw in zip(wanted, values)]

    async def get_reservation(self, reservation_id: str) -> Reservation | None:
        """@return: a reservation record, or C{None} once its instances are gone."""
        raw = await self._store.get(keys.reservation(reservation_id))
        return None if raw is None else Reservation.from_json(raw)

    async def list(self, project_id: str | None = None,
                   filters: Mapping[str, Iterable[str]] | None = None,
                   max_results: int | None = None,
                   next_token: str | None = None) -> Page:
        """
        DescribeInstances: a project's instances (every project's for
        C{None}), oldest first (ties by id), filtered, a page at a time.

        @param filters: filter name (L{FILTERS}) to values, EC2 wildcards
            allowed; values of one filter are OR-ed, filters AND-ed.
        @param max_results: page size (all when C{None}).
        @param next_token: the L{Page.next_token} of the previous page.
        @raise InvalidParameterValue: an unknown filter or a bad max_results.
        @raise nova.utils.paging.InvalidPaginationToken: a token that is not one of ours.
        """
        compiled = _compile_filters(filters)
        if max_results is not None and (isinstance(max_results, bool)
                                        or not isinstance(max_results, int)
                                        or max_results < 1):
            raise InvalidParameterValue(f"Invalid value '{max_results}' for MaxResults")
        after = decode_token(next_token) if next_token is not None else None
        index = keys.instances_by_time() if project_id is None \
            else keys.instances_of_project(project_id)
        entries = sorted(((s, m) for m, s in await self._store.zrangebyscore_withscores(index)))
        if after is not None:
            entries = [e for e in entries if e > after]
        exact = self._exact_ids(filters)
        if exact is not None:
            entries = [e for e in entries if e[1] in exact]
        limit = len(entries) if max_results is None else max_results
        found: builtins.list[tuple[float, str, Instance]] = []
        chunk = max(limit + 1, 1000)
        start = 0
        while start < len(entries) and len(found) <= limit:
            part = entries[start:start + chunk]
            start += chunk
            for (score, member), raw in zip(part, await self._store.mget(*[m for _, m in part])):
                if raw is None:
                    continue
                inst = self._decode(raw)
                if self._is_visible(inst) and _matches(inst, compiled):
                    found.append((score, member, inst))
        page = found[:limit]
        token = None
        if len(found) > limit and page:
            token = encode_token(page[-1][0], page[-1][1])
        return Page(tuple(i for _, _, i in page), token)

    @staticmethod
    def _exact_ids(filters: Mapping[str, Iterable[str]] | None) -> set[str] | None:
        values = (filters or {}).get("instance-id")
        if values is None:
            return None
        values = [values] if isinstance(values, str) else list(values)
        if any(("*" in v or "?" in v or "\\" in v) for v in values):
            return None
        return {keys.instance(v) for v in values if INSTANCE_ID.match(v)}

    async def on_host(self, host: str) -> builtins.list[Instance]:
        """@return: the instances placed on a compute host, oldest first."""
        members = sorted(await self._store.smembers(keys.instances_on_host(host)))
        if not members:
            return []
        found = [self._decode(v) for v in await self._store.mget(*members)
                 if v is not None]
        return sorted(found, key=lambda i: (i.created_at, i.instance_id))
