"""
L{SecurityGroupRepository}: the security groups of every project, their
ingress rules, and which instances are in them.

Each mutation is one datastore transaction (WATCH, read, MULTI, write,
EXEC), so that nothing is half-written and concurrent callers cannot break
the two invariants the API promises:

 - a group is never deleted while an instance is bound to it: binding
   watches the group's record and writes its member set; deleting watches
   the member set and deletes the record, so of a concurrent launch and
   delete one fails;
 - a group is never deleted while another group's rule names it as source:
   authorizing such a rule watches the source's record and writes its
   referrer set; deleting watches the referrer set.

The key layout is in L{nova.datastore.keys} (section "security groups") and
C{docs/security-groups.md}.
"""

from __future__ import annotations

import builtins
from typing import Iterable, Sequence

import attr
from twisted.internet.interfaces import IReactorTime

from nova.datastore import keys
from nova.datastore.interfaces import IDatastore, ITransaction
from nova.network.security_group_records import (
    DEFAULT_GROUP, IngressRule, InvalidGroupDuplicate, InvalidGroupInUse,
    InvalidGroupNotFound, InvalidGroupReserved, InvalidPermissionDuplicate,
    InvalidPermissionNotFound, SecurityGroup, check_description, check_group_id,
    check_group_name, dedupe, describe_rule, new_group_id)

#: how many instance ids or group names an InUse message lists
_SHOWN = 5


def _listing(items: Iterable[str]) -> str:
    ordered = sorted(items)
    more = f" and {len(ordered) - _SHOWN} more" if len(ordered) > _SHOWN else ""
    return ", ".join(ordered[:_SHOWN]) + more


def _not_found(name: str) -> InvalidGroupNotFound:
    return InvalidGroupNotFound(f"The security group '{name}' does not exist")


def _name_of_key(key: str) -> str:
    # security_group:<project>:<name>, each part encoded by keys.part
    _, project, name = key.split(":", 2)
    return f"{keys.unpart(project)}/{keys.unpart(name)}"


class SecurityGroupRepository:
    """The security groups of the cloud."""

    def __init__(self, store: IDatastore, clock: IReactorTime) -> None:
        """
        @param store: where groups live.
        @param clock: stamps new groups.
        """
        self._store = store
        self._clock = clock

    # -- creating ----------------------------------------------------------------

    async def _queue_new(self, txn: ITransaction, project_id: str, name: str,
                         description: str, user_id: str | None) -> SecurityGroup:
        """Queue the writes of a new group (the caller checked that the name is free)."""
        while True:
            group_id = new_group_id()
            id_key = keys.security_group_id(group_id)
            # 32 random bits: a clash is rare, but the id key says for sure
            await txn.watch(id_key)
            if not await txn.exists(id_key):
                break
        record = SecurityGroup(group_id=group_id, project_id=project_id, name=name,
                               description=description, user_id=user_id,
                               created_at=self._clock.seconds())
        key = keys.security_group(project_id, name)
        txn.set(key, record.to_json())
        txn.set(id_key, key)
        txn.sadd(keys.security_groups(), key)
        txn.sadd(keys.security_groups_of_project(project_id), key)
        return record

    async def ensure_default(self, project_id: str, user_id: str | None) -> SecurityGroup:
        """
        The project's C{default} group, made on first use (no rules: as in
        EC2-Classic of 2010, nothing reaches an instance until a rule says so).
        Idempotent; of concurrent first calls one writes and the others read.

        @param user_id: who is recorded as its creator, if it is made now.
        @return: the group.
        """
        _check_project(project_id)
        key = keys.security_group(project_id, DEFAULT_GROUP)
        raw = await self._store.get(key)
        if raw is not None:  # the common case: no transaction
            return SecurityGroup.from_json(raw)

        async def make(txn: ITransaction) -> SecurityGroup:
            raw = await txn.get(key)
            if raw is not None:
                return SecurityGroup.from_json(raw)
            return await self._queue_new(txn, project_id, DEFAULT_GROUP, DEFAULT_GROUP, user_id)

        return await self._store.transact([key], make)

    async def create(self, project_id: str, user_id: str | None, name: str,
                     description: str) -> SecurityGroup:
        """
        Create a group without rules (CreateSecurityGroup).

        @return: the group as stored.
        @raise InvalidGroupDuplicate: the project has a group of that name
            (C{default} always counts as existing, as in EC2).
        @raise nova.network.security_group_records.InvalidSecurityGroupRule:
            a malformed name or description (InvalidParameterValue).
        """
        _check_project(project_id)
        check_group_name(name)
        check_description(description)
        if name == DEFAULT_GROUP:
            await self.ensure_default(project_id, user_id)
            raise InvalidGroupDuplicate(f"The security group '{name}' already exists")
        key = keys.security_group(project_id, name)

        async def create(txn: ITransaction) -> SecurityGroup:
            if await txn.exists(key):
                raise InvalidGroupDuplicate(f"The security group '{name}' already exists")
            return await self._queue_new(txn, project_id, name, description, user_id)

        return await self._store.transact([key], create)

    # -- reading -----------------------------------------------------------------

    async def _key_of_id(self, group_id: str) -> str:
        key = await self._store.get(keys.security_group_id(check_group_id(group_id)))
        if key is None:
            raise InvalidGroupNotFound(f"The security group ID '{group_id}' does not exist")
        return key

    async def get(self, project_id: str | None, name: str | None = None,
                  group_id: str | None = None) -> SecurityGroup:
        """
        One group, by name (in C{project_id}) or by id.

        @param project_id: the caller's project; C{None}: an admin, who may
            name any group by id (a name needs a project).
        @raise InvalidGroupNotFound: no such group in the project.
        @raise nova.network.security_group_records.InvalidGroupIdMalformed:
            C{group_id} is not C{sg-...}.
        @raise ValueError: neither a name nor an id, or a name without project.
        """
        if group_id is not None:
            raw = await self._store.get(await self._key_of_id(group_id))
            found = None if raw is None else SecurityGroup.from_json(raw)
            if found is None or (project_id is not None and found.project_id != project_id) \
                    or (name is not None and found.name != name):
                raise InvalidGroupNotFound(
                    f"The security group ID '{group_id}' does not exist")
            return found
        if name is None or project_id is None:
            raise ValueError("get() needs a group id, or a project and a name")
        raw = await self._store.get(keys.security_group(project_id, name))
        if raw is None:
            raise _not_found(name)
        return SecurityGroup.from_json(raw)

    async def get_by_names(self, project_id: str,
                           names: Sequence[str]) -> builtins.list[SecurityGroup]:
        """
        @return: the project's groups of these names, in the order given
            (each once).
        @raise InvalidGroupNotFound: naming the first missing.
        """
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return []
        values = await self._store.mget(*[keys.security_group(project_id, n) for n in wanted])
        for name, raw in zip(wanted, values):
            if raw is None:
                raise _not_found(name)
        return [SecurityGroup.from_json(raw) for raw in values if raw is not None]

    async def list(self, project_id: str | None) -> builtins.list[SecurityGroup]:
        """
        @param project_id: a project; C{None}: every group (an admin).
        @return: the groups, sorted by project then name.
        """
        index = keys.security_groups() if project_id is None \
            else keys.security_groups_of_project(project_id)
        members = sorted(await self._store.smembers(index))
        if not members:
            return []
        found = [SecurityGroup.from_json(v) for v in await self._store.mget(*members)
                 if v is not None]
        return sorted(found, key=lambda g: (g.project_id, g.name))

    async def members(self, project_id: str, name: str) -> set[str]:
        """@return: the ids of the instances bound to a group."""
        return set(await self._store.smembers(keys.security_group_members(project_id, name)))

    # -- deleting ----------------------------------------------------------------

    async def delete(self, project_id: str | None, name: str | None = None,
                     group_id: str | None = None) -> SecurityGroup:
        """
        Delete a group (DeleteSecurityGroup), by name or id.

        @param project_id: the caller's project (C{None}: an admin, by id).
        @return: the group as it was.
        @raise InvalidGroupNotFound: no such group.
        @raise InvalidGroupReserved: it is the C{default} group.
        @raise InvalidGroupInUse: an instance is bound to it, or another
            group's rule names it as source.
        """
        group = await self.get(project_id, name=name, group_id=group_id)
        if group.name == DEFAULT_GROUP:
            raise InvalidGroupReserved("The security group 'default' is reserved: it "
                                       "cannot be deleted (its rules can be changed)")
        key = keys.security_group(group.project_id, group.name)
        members_key = keys.security_group_members(group.project_id, group.name)
        referrers_key = keys.security_group_referrers(group.project_id, group.name)

        async def delete(txn: ITransaction) -> SecurityGroup:
            raw = await txn.get(key)
            current = None if raw is None else SecurityGroup.from_json(raw)
            if current is None or current.group_id != group.group_id:
                raise _not_found(group.name)  # deleted (and maybe re-made) meanwhile
            bound = await txn.smembers(members_key)
            if bound:
                raise InvalidGroupInUse(
                    f"The security group '{group.name}' ({group.group_id}) is in use by "
                    f"instances: {_listing(bound)}")
            referrers = await txn.smembers(referrers_key) - {key}
            if referrers:
                raise InvalidGroupInUse(
                    f"The security group '{group.name}' ({group.group_id}) is the source of "
                    f"rules of groups: {_listing(_name_of_key(k) for k in referrers)}")
            txn.delete(key, keys.security_group_id(current.group_id), members_key,
                       referrers_key)
            txn.srem(keys.security_groups(), key)
            txn.srem(keys.security_groups_of_project(current.project_id), key)
            for source in current.sources():
                txn.srem(keys.security_group_referrers(*source), key)
            return current

        return await self._store.transact([key, members_key, referrers_key], delete)

    # -- rules -------------------------------------------------------------------

    async def authorize(self, project_id: str, group: str, rules: Sequence[IngressRule], *,
                        ignore_existing: bool = False) -> SecurityGroup:
        """
        Add ingress rules to a group, all or none.

        @param group: the group's name in C{project_id}.
        @param rules: the rules; a source group is named by C{(project, name)}
            and must exist (its id is filled in here).
        @param ignore_existing: skip rules already there rather than refuse
            (for undoing a revoke).
        @return: the group as stored.
        @raise InvalidGroupNotFound: the group or a source group does not exist.
        @raise InvalidPermissionDuplicate: a rule is already in the group.
        @raise nova.network.security_group_records.InvalidSecurityGroupRule:
            a rule appears twice in C{rules} (InvalidParameterValue, as EC2).
        """
        wanted = dedupe(rules)
        key = keys.security_group(project_id, group)
        sources = sorted({r.source for r in wanted if r.source is not None})
        source_keys = [keys.security_group(*s) for s in sources]

        async def authorize(txn: ITransaction) -> SecurityGroup:
            current = await _load(txn, key, group)
            ids: dict[tuple[str, str], str] = {}
            if source_keys:
                for source, raw in zip(sources, await txn.mget(*source_keys)):
                    if raw is None:
                        raise InvalidGroupNotFound(
                            f"The source security group '{source[1]}' of project "
                            f"'{source[0]}' does not exist")
                    ids[source] = SecurityGroup.from_json(raw).group_id
            added = []
            for rule in wanted:
                if rule in current.rules:
                    if ignore_existing:
                        continue
                    raise InvalidPermissionDuplicate(
                        f"The permission '{describe_rule(rule)}' has already been authorized "
                        f"in the security group '{group}'")
                if rule.source is not None:
                    rule = attr.evolve(rule, source_group_id=ids[rule.source])
                added.append(rule)
            new = attr.evolve(current, rules=current.rules + tuple(added))
            txn.set(key, new.to_json())
            for source in {r.source for r in added if r.source is not None}:
                txn.sadd(keys.security_group_referrers(*source), key)
            return new

        return await self._store.transact([key, *source_keys], authorize)

    async def revoke(self, project_id: str, group: str, rules: Sequence[IngressRule], *,
                     ignore_missing: bool = False) -> SecurityGroup:
        """
        Remove ingress rules from a group, all or none.

        @param group: the group's name in C{project_id}.
        @param ignore_missing: skip rules that are not there rather than refuse
            (for undoing an authorize).
        @return: the group as stored.
        @raise InvalidGroupNotFound: no such group.
        @raise InvalidPermissionNotFound: a rule is not in the group.
        """
        wanted = dedupe(rules)
        key = keys.security_group(project_id, group)

        async def revoke(txn: ITransaction) -> SecurityGroup:
            current = await _load(txn, key, group)
            missing = [r for r in wanted if r not in current.rules]
            if missing and not ignore_missing:
                raise InvalidPermissionNotFound(
                    f"The specified rule '{describe_rule(missing[0])}' does not exist in the "
                    f"security group '{group}'")
            kept = tuple(r for r in current.rules if r not in wanted)
            new = attr.evolve(current, rules=kept)
            txn.set(key, new.to_json())
            for source in current.sources() - new.sources():
                txn.srem(keys.security_group_referrers(*source), key)
            return new

        return await self._store.transact([key], revoke)

    # -- membership --------------------------------------------------------------

    async def bind_instance(self, project_id: str, names: Sequence[str], instance_id: str, *,
                            user_id: str | None = None) -> builtins.list[SecurityGroup]:
        """
        Record that an instance is in groups (RunInstances). The groups must
        exist when the transaction commits: a group deleted concurrently makes
        the bind fail, never leaves an instance in a deleted group. The
        C{default} group is made if the project has none yet.

        @param user_id: the creator recorded if C{default} is made now.
        @return: the groups, in the order of C{names}.
        @raise InvalidGroupNotFound: a group does not exist (nothing is written).
        """
        _check_project(project_id)
        wanted = list(dict.fromkeys(names))
        group_keys = [keys.security_group(project_id, n) for n in wanted]

        async def bind(txn: ITransaction) -> builtins.list[SecurityGroup]:
            found = []
            for name, raw in zip(wanted, await txn.mget(*group_keys) if group_keys else []):
                if raw is not None:
                    found.append(SecurityGroup.from_json(raw))
                elif name == DEFAULT_GROUP:
                    found.append(await self._queue_new(txn, project_id, DEFAULT_GROUP,
                                                       DEFAULT_GROUP, user_id))
                else:
                    raise _not_found(name)
            for name in wanted:
                txn.sadd(keys.security_group_members(project_id, name), instance_id)
            return found

        return await self._store.transact(group_keys, bind)

    async def unbind_instance(self, project_id: str, names: Sequence[str],
                              instance_id: str) -> None:
        """
        Forget an instance's membership (it terminated). Groups that are gone
        are ignored.
        """
        wanted = list(dict.fromkeys(names))

        async def unbind(txn: ITransaction) -> None:
            for name in wanted:
                txn.srem(keys.security_group_members(project_id, name), instance_id)

        await self._store.transact([], unbind)


async def _load(txn: ITransaction, key: str, name: str) -> SecurityGroup:
    raw = await txn.get(key)
    if raw is None:
        raise _not_found(name)
    return SecurityGroup.from_json(raw)


def _check_project(project_id: str) -> None:
    if not isinstance(project_id, str) or not project_id:
        raise ValueError(f"invalid project id {project_id!r}")


__all__ = ["SecurityGroupRepository", "SecurityGroup", "IngressRule", "DEFAULT_GROUP"]
