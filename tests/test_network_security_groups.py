"""
Security groups: the records (L{IngressRule}, L{SecurityGroup}) and
L{SecurityGroupRepository}, against the in-memory datastore and against
Redis at 127.0.0.1:6379: the default group, create/delete with the in-use
checks, rules all or nothing, membership, and the races between a delete and
a launch or a rule naming the group.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from twisted.trial import unittest

from nova.datastore import keys
from nova.datastore.errors import CorruptRecord
from nova.datastore.interfaces import IDatastore
from nova.exception import InvalidParameterValue
from nova.network.security_group_records import (
    IngressRule, InvalidGroupDuplicate, InvalidGroupIdMalformed, InvalidGroupInUse,
    InvalidGroupNotFound, InvalidGroupReserved, InvalidPermissionDuplicate,
    InvalidPermissionNotFound, InvalidSecurityGroupRule, SecurityGroup, parse_cidr,
    parse_owner)
from nova.network.security_groups import SecurityGroupRepository
from tests.test_datastore_contract import MemoryHarness, RedisHarness, run
from tests.test_datastore_repositories import RepositoryMixin


def tcp(port: int, cidr: str = "10.0.0.0/24") -> IngressRule:
    return IngressRule(protocol="tcp", from_port=port, to_port=port, cidr=cidr)


def from_group(project: str, name: str, protocol: str = "tcp", port: int = 22) -> IngressRule:
    low, high = (-1, -1) if protocol == "icmp" else (port, port)
    return IngressRule(protocol=protocol, from_port=low, to_port=high,
                       source_project=project, source_name=name)


class _HookedStore:
    """
    A datastore whose next transaction, once its function has read and
    queued its writes, runs C{hook} (another caller's whole change) before
    its EXEC: the interleaving that the WATCHed keys must catch.
    """

    def __init__(self, store: IDatastore, hook: Callable[[], Awaitable[Any]]) -> None:
        self._store = store
        self._hook: Callable[[], Awaitable[Any]] | None = hook

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def transact(self, watch_keys: list[str], fn: Callable[[Any], Awaitable[Any]],
                       retries: int = 20) -> Any:
        async def hooked(txn: Any) -> Any:
            result = await fn(txn)
            hook, self._hook = self._hook, None
            if hook is not None:
                await hook()
            return result

        return await self._store.transact(watch_keys, hooked, retries)


class RecordTests(unittest.TestCase):

    def test_rule_checks(self) -> None:
        IngressRule(protocol="icmp", from_port=8, to_port=-1, cidr="0.0.0.0/0")
        IngressRule(protocol="udp", from_port=0, to_port=65535, cidr="1.2.3.4/32")
        bad: list[dict[str, Any]] = [
            dict(protocol="gre", from_port=1, to_port=1, cidr="0.0.0.0/0"),
            dict(protocol="tcp", from_port=80, to_port=79, cidr="0.0.0.0/0"),
            dict(protocol="tcp", from_port=1, to_port=65536, cidr="0.0.0.0/0"),
            dict(protocol="icmp", from_port=-1, to_port=0, cidr="0.0.0.0/0"),
            dict(protocol="icmp", from_port=256, to_port=-1, cidr="0.0.0.0/0"),
            dict(protocol="tcp", from_port=True, to_port=2, cidr="0.0.0.0/0"),
            dict(protocol="tcp", from_port=1, to_port=2),  # no source
            dict(protocol="tcp", from_port=1, to_port=2, cidr="0.0.0.0/0",
                 source_project="p", source_name="g"),  # two sources
            dict(protocol="tcp", from_port=1, to_port=2, cidr="10.0.0.1/24"),
            dict(protocol="tcp", from_port=1, to_port=2, source_name="g"),  # no owner
        ]
        for fields in bad:
            with self.assertRaises(InvalidSecurityGroupRule, msg=repr(fields)) as caught:
                IngressRule(**fields)
            self.assertIsInstance(caught.exception, InvalidParameterValue)

    def test_source_group_id_is_not_identity(self) -> None:
        a = from_group("p", "web")
        b = IngressRule(protocol="tcp", from_port=22, to_port=22, source_project="p",
                        source_name="web", source_group_id="sg-0000abcd")
        self.assertEqual(a, b)
        self.assertEqual(hash(a), hash(b))

    def test_json_round_trip(self) -> None:
        group = SecurityGroup(group_id="sg-0123abcd", project_id="p", name="web",
                              description="d", user_id="u", created_at=5.0,
                              rules=[tcp(22), from_group("q", "db")])
        back = SecurityGroup.from_json(group.to_json())
        self.assertEqual(back, group)
        self.assertIsInstance(back.rules, tuple)
        self.assertEqual(back.sources(), {("q", "db")})
        with self.assertRaises(CorruptRecord):
            SecurityGroup.from_json(group.to_json().replace("10.0.0.0/24", "10.0.0.9/24"))

    def test_parse_cidr_masks_host_bits(self) -> None:
        self.assertEqual(parse_cidr("10.0.0.5/24"), "10.0.0.0/24")
        self.assertEqual(parse_cidr("0.0.0.0/0"), "0.0.0.0/0")
        for text in ("10.0.0.5", "10.0.0.0/33", "::/0", "x/8", "10.0.0.0/24/1", ""):
            with self.assertRaises(InvalidSecurityGroupRule, msg=text):
                parse_cidr(text)

    def test_parse_owner(self) -> None:
        self.assertEqual(parse_owner("proj"), "proj")
        self.assertEqual(parse_owner("alice:proj"), "proj")
        with self.assertRaises(InvalidSecurityGroupRule):
            parse_owner("alice:")


class SecurityGroupRepositoryMixin(RepositoryMixin):
    assertIn: Any
    assertNotIn: Any

    def repo(self, store: IDatastore | None = None) -> SecurityGroupRepository:
        return SecurityGroupRepository(store or self.store, self.clock)

    async def test_default_group(self) -> None:
        repo = self.repo()
        self.clock.advance(100)
        made = await repo.ensure_default("p", "alice")
        self.assertEqual((made.name, made.description, made.rules, made.user_id,
                          made.created_at), ("default", "default", (), "alice", 100.0))
        self.assertRegex(made.group_id, r"^sg-[0-9a-f]{8}$")  # type: ignore[attr-defined]
        self.assertEqual(await repo.ensure_default("p", "bob"), made)
        self.assertEqual(await repo.list("p"), [made])
        self.assertEqual(await repo.get(None, group_id=made.group_id), made)

    async def test_concurrent_first_uses_make_one_default(self) -> None:
        repo = self.repo(self.interleaving())
        made = await self.settle([run(repo.ensure_default("p", f"u{n}")) for n in range(8)])
        self.assertEqual(len({g.group_id for g in made}), 1)
        self.assertEqual(len(await self.repo().list("p")), 1)

    async def test_create_and_names(self) -> None:
        repo = self.repo()
        web = await repo.create("p", "alice", "web", "web servers")
        self.assertEqual((web.name, web.description, web.project_id), ("web", "web servers", "p"))
        e = await self.assertFails(InvalidGroupDuplicate, repo.create("p", "bob", "web", "x"))
        self.assertEqual(e.code, "InvalidGroup.Duplicate")  # type: ignore[attr-defined]
        # "default" always exists
        await self.assertFails(InvalidGroupDuplicate, repo.create("p", "bob", "default", "x"))
        for name, description in [("", "d"), ("x" * 256, "d"), ("caf\u00e9", "d"),
                                  ("sg-123", "d"), ("ok", ""), ("ok", "\n")]:
            e = await self.assertFails(InvalidSecurityGroupRule,
                                       repo.create("p", "alice", name, description))
            self.assertEqual(e.code, "InvalidParameterValue")  # type: ignore[attr-defined]
        other = await repo.create("q", "carol", "web", "same name, other project")
        self.assertNotEqual(other.group_id, web.group_id)  # type: ignore[attr-defined]
        self.assertEqual([g.name for g in await repo.list("p")], ["default", "web"])
        self.assertEqual([(g.project_id, g.name) for g in await repo.list(None)],
                         [("p", "default"), ("p", "web"), ("q", "web")])

    async def test_get(self) -> None:
        repo = self.repo()
        web = await repo.create("p", "alice", "web", "w")
        db = await repo.create("p", "alice", "db", "d")
        self.assertEqual(await repo.get("p", "web"), web)
        self.assertEqual(await repo.get("p", group_id=db.group_id), db)
        e = await self.assertFails(InvalidGroupNotFound, repo.get("q", group_id=db.group_id))
        self.assertEqual(e.code, "InvalidGroup.NotFound")  # type: ignore[attr-defined]
        await self.assertFails(InvalidGroupNotFound, repo.get("p", "db", group_id=web.group_id))
        await self.assertFails(InvalidGroupNotFound, repo.get("p", "nope"))
        await self.assertFails(InvalidGroupNotFound, repo.get(None, group_id="sg-00000000"))
        e = await self.assertFails(InvalidGroupIdMalformed, repo.get("p", group_id="web"))
        self.assertEqual(e.code, "InvalidGroupId.Malformed")  # type: ignore[attr-defined]
        self.assertEqual(await repo.get_by_names("p", ["web", "db", "web"]), [web, db])
        e = await self.assertFails(InvalidGroupNotFound,
                                   repo.get_by_names("p", ["web", "gone", "db"]))
        self.assertIn("'gone'", str(e))

    async def test_rules_all_or_nothing(self) -> None:
        repo = self.repo()
        await repo.create("p", "alice", "web", "w")
        stored = await repo.authorize("p", "web", [tcp(22), tcp(80, "0.0.0.0/0")])
        self.assertEqual(stored.rules, (tcp(22), tcp(80, "0.0.0.0/0")))
        e = await self.assertFails(InvalidPermissionDuplicate,
                                   repo.authorize("p", "web", [tcp(443), tcp(22)]))
        self.assertEqual(e.code, "InvalidPermission.Duplicate")  # type: ignore[attr-defined]
        # a rule twice in one request: EC2 says InvalidParameterValue
        e = await self.assertFails(InvalidSecurityGroupRule,
                                   repo.authorize("p", "web", [tcp(443), tcp(443)]))
        self.assertIn("multiple times", str(e))
        await self.assertFails(InvalidGroupNotFound,
                               repo.authorize("p", "web", [tcp(443), from_group("p", "nope")]))
        await self.assertFails(InvalidGroupNotFound, repo.authorize("p", "nope", [tcp(1)]))
        self.assertEqual((await repo.get("p", "web")).rules, stored.rules)  # nothing added

        e = await self.assertFails(InvalidPermissionNotFound,
                                   repo.revoke("p", "web", [tcp(22), tcp(23)]))
        self.assertEqual(e.code, "InvalidPermission.NotFound")  # type: ignore[attr-defined]
        self.assertEqual((await repo.get("p", "web")).rules, stored.rules)  # nothing removed
        after = await repo.revoke("p", "web", [tcp(22)])
        self.assertEqual(after.rules, (tcp(80, "0.0.0.0/0"),))
        # the undo forms skip what is (not) there
        again = await repo.authorize("p", "web", [tcp(80, "0.0.0.0/0"), tcp(22)],
                                     ignore_existing=True)
        self.assertEqual(again.rules, (tcp(80, "0.0.0.0/0"), tcp(22)))
        gone = await repo.revoke("p", "web", [tcp(22), tcp(23)], ignore_missing=True)
        self.assertEqual(gone.rules, (tcp(80, "0.0.0.0/0"),))

    async def test_source_groups_and_referrers(self) -> None:
        repo = self.repo()
        web = await repo.create("p", "alice", "web", "w")
        db = await repo.create("q", "bob", "db", "another project's group")
        stored = await repo.authorize("q", "db", [from_group("p", "web", port=5432),
                                                  from_group("p", "web", "icmp")])
        self.assertEqual({r.source_group_id for r in stored.rules}, {web.group_id})
        db_key = keys.security_group("q", "db")
        self.assertEqual(await self.store.smembers(keys.security_group_referrers("p", "web")),
                         {db_key})
        e = await self.assertFails(InvalidGroupInUse, repo.delete("p", "web"))
        self.assertEqual(e.code, "InvalidGroup.InUse")  # type: ignore[attr-defined]
        self.assertIn("q/db", str(e))
        # one of two rules naming it goes: still referred to
        await repo.revoke("q", "db", [from_group("p", "web", port=5432)])
        await self.assertFails(InvalidGroupInUse, repo.delete("p", "web"))
        await repo.revoke("q", "db", [from_group("p", "web", "icmp")])
        self.assertFalse(await self.store.exists(keys.security_group_referrers("p", "web")))
        self.assertEqual((await repo.delete("p", "web")).group_id, web.group_id)
        # a group naming itself can go; one naming others stops referring to them
        await repo.create("p", "alice", "self", "s")
        await repo.authorize("p", "self", [from_group("p", "self"), from_group("q", "db")])
        await repo.delete("p", name="self")
        self.assertFalse(await self.store.exists(keys.security_group_referrers("q", "db")))
        await repo.delete("q", group_id=db.group_id)

    async def test_delete(self) -> None:
        repo = self.repo()
        default = await repo.ensure_default("p", "alice")
        e = await self.assertFails(InvalidGroupReserved, repo.delete("p", "default"))
        self.assertEqual(e.code, "InvalidGroup.Reserved")  # type: ignore[attr-defined]
        await self.assertFails(InvalidGroupReserved, repo.delete(None, group_id=default.group_id))
        web = await repo.create("p", "alice", "web", "w")
        await self.assertFails(InvalidGroupNotFound, repo.delete("q", group_id=web.group_id))
        await self.assertFails(InvalidGroupNotFound, repo.delete("p", "nope"))
        await repo.bind_instance("p", ["web", "default"], "i-1")
        e = await self.assertFails(InvalidGroupInUse, repo.delete("p", "web"))
        self.assertIn("i-1", str(e))
        await repo.unbind_instance("p", ["web", "default", "gone"], "i-1")
        await repo.delete(None, group_id=web.group_id)  # an admin, by id
        await self.assertFails(InvalidGroupNotFound, repo.get("p", "web"))
        self.assertEqual(await repo.list("p"), [default])
        self.assertEqual(await repo.list(None), [default])
        for key in (keys.security_group_id(web.group_id), keys.security_group("p", "web"),
                    keys.security_group_members("p", "web")):
            self.assertFalse(await self.store.exists(key), key)
        # the name is free again, with a new id
        again = await repo.create("p", "alice", "web", "w2")
        self.assertNotEqual(again.group_id, web.group_id)  # type: ignore[attr-defined]

    async def test_bind(self) -> None:
        repo = self.repo()
        await repo.create("p", "alice", "web", "w")
        # the default group is made by a launch into it
        bound = await repo.bind_instance("p", ["default", "web"], "i-1", user_id="alice")
        self.assertEqual([g.name for g in bound], ["default", "web"])
        await repo.bind_instance("p", ["web"], "i-2")
        self.assertEqual(await repo.members("p", "web"), {"i-1", "i-2"})
        self.assertEqual(await repo.members("p", "default"), {"i-1"})
        e = await self.assertFails(InvalidGroupNotFound,
                                   repo.bind_instance("p", ["web", "nope"], "i-3"))
        self.assertIn("'nope'", str(e))
        self.assertEqual(await repo.members("p", "web"), {"i-1", "i-2"})  # nothing written
        await repo.unbind_instance("p", ["web"], "i-1")
        self.assertEqual(await repo.members("p", "web"), {"i-2"})
        self.assertEqual(await repo.members("p", "nope"), set())

    def hooked(self, hook: Callable[[], Awaitable[Any]]) -> SecurityGroupRepository:
        """@return: a repository whose next transaction runs C{hook} between its reads and EXEC."""
        return self.repo(_HookedStore(self.store, hook))  # type: ignore[arg-type]

    async def test_launch_during_delete(self) -> None:
        """A bind commits after the delete read the members: the delete is refused."""
        repo = self.repo()
        await repo.create("p", "alice", "web", "w")
        e = await self.assertFails(InvalidGroupInUse, self.hooked(
            lambda: repo.bind_instance("p", ["web"], "i-1")).delete("p", "web"))
        self.assertIn("i-1", str(e))
        self.assertEqual(await repo.members("p", "web"), {"i-1"})
        await repo.get("p", "web")

    async def test_delete_during_launch(self) -> None:
        """A delete commits after the bind read the group: the bind is refused."""
        repo = self.repo()
        await repo.create("p", "alice", "web", "w")
        await self.assertFails(InvalidGroupNotFound, self.hooked(
            lambda: repo.delete("p", "web")).bind_instance("p", ["web"], "i-1"))
        self.assertEqual(await repo.members("p", "web"), set())  # no instance in a gone group

    async def test_rule_during_delete(self) -> None:
        repo = self.repo()
        await repo.create("p", "alice", "src", "x")
        await repo.create("p", "alice", "dst", "x")
        await self.assertFails(InvalidGroupInUse, self.hooked(
            lambda: repo.authorize("p", "dst", [from_group("p", "src")])).delete("p", "src"))
        self.assertEqual(len((await repo.get("p", "dst")).rules), 1)
        await repo.get("p", "src")

    async def test_delete_during_rule(self) -> None:
        repo = self.repo()
        await repo.create("p", "alice", "src", "x")
        await repo.create("p", "alice", "dst", "x")
        await self.assertFails(InvalidGroupNotFound, self.hooked(
            lambda: repo.delete("p", "src")).authorize("p", "dst", [from_group("p", "src")]))
        self.assertEqual((await repo.get("p", "dst")).rules, ())
        self.assertFalse(await self.store.exists(keys.security_group_referrers("p", "src")))

    async def test_corrupt_record(self) -> None:
        await self.store.set(keys.security_group("p", "bad"), '{"rules": 3}')
        await self.assertFails(CorruptRecord, self.repo().get("p", "bad"))


class MemorySecurityGroupRepositoryTests(MemoryHarness, SecurityGroupRepositoryMixin,
                                         unittest.TestCase):
    """In memory."""


class RedisSecurityGroupRepositoryTests(RedisHarness, SecurityGroupRepositoryMixin,
                                        unittest.TestCase):
    """Against Redis."""
