"""
The LDAP driver's contract, run against every directory it works on:

 - the embedded ldaptor tree persisted as LDIF (in a temporary directory);
 - that tree served by ldaptor's LDAP server and reached through the remote
   client, as the machine's other nova processes reach it;
 - a real OpenLDAP slapd, private to this test run (see L{tests.slapd}), each
   test under a base entry of its own, removed afterwards.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from ldaptor.protocols import pureldap
from ldaptor.protocols.ldap import ldaperrors
from ldaptor.interfaces import IConnectedLDAPEntry
from ldaptor.protocols.ldap.ldapserver import LDAPServer
from twisted.internet import protocol, reactor
from twisted.python import components
from twisted.trial import unittest

from nova.auth import errors
from nova.auth.directory import EmbeddedDirectory, connect_remote
from nova.auth.ldapdriver import LdapDriver
from nova.auth.ldaplayout import DirectoryLayout, rdn
from nova.config import ConfigError
from nova.exception import InvalidParameterValue
from tests.slapd import SlapdError, shared_slapd

#: ids that must never reach a DN or a filter
BAD_IDS = ["", " ", "a b", "a,b", "a=b", "a+b", "a*", "(a)", "a)(uid=*", "a\\b", "a;b",
           "a\"b", "a<b", "#a", "-a", ".a", "_a", "a/b", "a:b", "../etc", "a\n", "a\x00",
           "é", "a" * 65, "uid=x,ou=Users", "$(reboot)", "`id`"]
TRICKY_TEXT = "*)(uid=*))(|(cn=* \\ , = + < > ; \" # é, done "


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class DriverContractMixin:
    """
    The driver's behaviour. Subclasses define C{make_base()}, returning a
    clean base C{IConnectedLDAPEntry} and arranging its cleanup.
    """

    async def make_base(self) -> Any:
        raise NotImplementedError()

    async def setUp(self) -> None:
        self.base = await self.make_base()
        self.driver = LdapDriver(self.base)

    async def user(self, prefix: str = "user", admin: bool = False) -> str:
        name = _name(prefix)
        await self.driver.create_user(name, _name("AK"), _name("SK"), admin)
        return name

    async def project(self, manager: str, *members: str) -> str:
        name = _name("proj")
        await self.driver.create_project(name, manager, None, list(members))
        return name

    # -- users --------------------------------------------------------------

    async def test_create_and_get_user(self) -> None:
        user = await self.driver.create_user("alice", "AKalice", "SK/alice+=", True)
        self.assertEqual((user.id, user.name, user.access, user.secret, user.admin),
                         ("alice", "alice", "AKalice", "SK/alice+=", True))
        self.assertEqual(await self.driver.get_user("alice"), user)
        self.assertEqual(await self.driver.get_user_by_access_key("AKalice"), user)
        bob = await self.driver.create_user("bob", "AKbob", "SKbob")
        self.assertFalse(bob.admin)
        self.assertEqual(await self.driver.list_users(), [user, bob])

    async def test_layout_is_created(self) -> None:
        await self.driver.list_users()
        layout = DirectoryLayout(self.base.dn)
        for dn in (layout.users, layout.groups):
            entry = await self.base.lookup(dn)
            self.assertEqual(entry.dn, dn)

    async def test_duplicate_user(self) -> None:
        await self.driver.create_user("carol", "AK1", "SK1")
        for name in ("carol", "CAROL"):
            with self.assertRaises(errors.UserExists):
                await self.driver.create_user(name, _name("AK"), "SK2")
        self.assertEqual([u.id for u in await self.driver.list_users()], ["carol"])

    async def test_duplicate_access_key(self) -> None:
        await self.driver.create_user("dave", "AKshared", "SK1")
        for key in ("AKshared", "akSHARED"):
            with self.assertRaises(errors.AccessKeyExists):
                await self.driver.create_user("erin", key, "SK2")
        with self.assertRaises(errors.UserNotFound):
            await self.driver.get_user("erin")

    async def test_missing_user(self) -> None:
        await self.driver.create_user("frank", "AKfrank", "SK")
        with self.assertRaises(errors.UserNotFound):
            await self.driver.get_user("nobody")
        with self.assertRaises(errors.AccessKeyNotFound):
            await self.driver.get_user_by_access_key("AKnobody")
        # the schema matches case-insensitively; the driver insists on the exact key
        with self.assertRaises(errors.AccessKeyNotFound):
            await self.driver.get_user_by_access_key("akfrank")
        for call in (self.driver.delete_user("nobody"),
                     self.driver.modify_user("nobody", secret="x"),
                     self.driver.add_role("nobody", "sysadmin")):
            with self.assertRaises(errors.UserNotFound):
                await call

    async def test_modify_user(self) -> None:
        await self.driver.create_user("gina", "AKgina", "SKgina")
        await self.driver.create_user("hank", "AKhank", "SKhank")
        changed = await self.driver.modify_user("gina", access="AKgina2", secret="SK2",
                                                admin=True)
        self.assertEqual((changed.access, changed.secret, changed.admin),
                         ("AKgina2", "SK2", True))
        self.assertEqual(await self.driver.get_user("gina"), changed)
        self.assertEqual(await self.driver.get_user_by_access_key("AKgina2"), changed)
        with self.assertRaises(errors.AccessKeyNotFound):
            await self.driver.get_user_by_access_key("AKgina")
        self.assertEqual(await self.driver.modify_user("gina"), changed)
        self.assertFalse((await self.driver.modify_user("gina", admin=False)).admin)
        with self.assertRaises(errors.AccessKeyExists):
            await self.driver.modify_user("gina", access="AKhank")
        self.assertEqual((await self.driver.get_user("gina")).access, "AKgina2")

    async def test_bad_ids_are_rejected(self) -> None:
        await self.driver.create_user("ivan", "AKivan", "SK")
        await self.driver.create_project("ivans", "ivan")
        for bad in BAD_IDS:
            with self.assertRaises(InvalidParameterValue, msg=repr(bad)):
                await self.driver.create_user(bad, _name("AK"), "SK")
            with self.assertRaises(InvalidParameterValue, msg=repr(bad)):
                await self.driver.get_user(bad)
            with self.assertRaises(InvalidParameterValue, msg=repr(bad)):
                await self.driver.create_project(bad, "ivan")
            with self.assertRaises(InvalidParameterValue, msg=repr(bad)):
                await self.driver.add_to_project(bad, "ivans")
        for key in ("", "AK:proj", "AK/x", "AK x", "AK*", "AK)(uid=*"):
            with self.assertRaises(InvalidParameterValue, msg=repr(key)):
                await self.driver.create_user(_name("u"), key, "SK")
            with self.assertRaises(InvalidParameterValue, msg=repr(key)):
                await self.driver.get_user_by_access_key(key)
        for secret in ("", "a b", "a\n", "x" * 129):
            with self.assertRaises(InvalidParameterValue):
                await self.driver.create_user(_name("u"), _name("AK"), secret)
        self.assertEqual([u.id for u in await self.driver.list_users()], ["ivan"])

    async def test_metacharacters_in_values_are_escaped(self) -> None:
        await self.driver.create_user("judy", "AKjudy", "SK(*)\\,=+<>;#\"")
        project = await self.driver.create_project("judys", "judy", TRICKY_TEXT)
        self.assertEqual(project.description, TRICKY_TEXT)
        self.assertEqual((await self.driver.get_project("judys")).description, TRICKY_TEXT)
        self.assertEqual((await self.driver.get_user("judy")).secret, "SK(*)\\,=+<>;#\"")

    # -- projects -----------------------------------------------------------

    async def test_create_project(self) -> None:
        manager, member = await self.user("mgr"), await self.user("mem")
        other = await self.user("other")
        project = await self.driver.create_project("web", manager, "The web farm", [member])
        self.assertEqual(project.id, "web")
        self.assertEqual(project.description, "The web farm")
        self.assertEqual(project.project_manager_id, manager)
        self.assertEqual(project.member_ids, tuple(sorted([manager, member])))
        self.assertEqual(await self.driver.get_project("web"), project)
        plain = await self.driver.create_project("plain", other)
        self.assertEqual((plain.description, plain.member_ids), ("plain", (other,)))
        self.assertEqual([p.id for p in await self.driver.list_projects()], ["plain", "web"])
        self.assertEqual([p.id for p in await self.driver.list_projects(member)], ["web"])
        self.assertEqual([p.id for p in await self.driver.list_projects(other)], ["plain"])

    async def test_create_project_errors(self) -> None:
        manager = await self.user("mgr")
        await self.driver.create_project("dup", manager)
        for name in ("dup", "DUP"):
            with self.assertRaises(errors.ProjectExists):
                await self.driver.create_project(name, manager)
        with self.assertRaises(errors.UserNotFound):
            await self.driver.create_project("nomgr", "nobody")
        with self.assertRaises(errors.UserNotFound):
            await self.driver.create_project("nomember", manager, None, ["nobody"])
        for reserved in ("cloudadmins", "Sysadmins", "itsec", "netadmins", "developers"):
            with self.assertRaises(InvalidParameterValue):
                await self.driver.create_project(reserved, manager)
        self.assertEqual([p.id for p in await self.driver.list_projects()], ["dup"])

    async def test_missing_project(self) -> None:
        user = await self.user()
        # a global role group lives in ou=Groups too: it is not a project
        await self.driver.add_role(user, "cloudadmin")
        for pid in ("nothere", "cloudadmins"):
            with self.assertRaises(errors.ProjectNotFound):
                await self.driver.get_project(pid)
            for call in (self.driver.add_to_project(user, pid),
                         self.driver.remove_from_project(user, pid),
                         self.driver.delete_project(pid),
                         self.driver.add_role(user, "sysadmin", pid),
                         self.driver.list_roles(user, pid)):
                with self.assertRaises(errors.ProjectNotFound):
                    await call
        self.assertEqual(await self.driver.list_projects(), [])

    async def test_membership(self) -> None:
        manager, user = await self.user("mgr"), await self.user()
        pid = await self.project(manager)
        await self.driver.add_to_project(user, pid)
        self.assertTrue((await self.driver.get_project(pid)).has_member(user))
        with self.assertRaises(errors.AlreadyProjectMember):
            await self.driver.add_to_project(user, pid)
        await self.driver.remove_from_project(user, pid)
        self.assertEqual((await self.driver.get_project(pid)).member_ids, (manager,))
        with self.assertRaises(errors.NotProjectMember):
            await self.driver.remove_from_project(user, pid)
        with self.assertRaises(errors.DependencyViolation):
            await self.driver.remove_from_project(manager, pid)
        with self.assertRaises(errors.UserNotFound):
            await self.driver.add_to_project("nobody", pid)

    async def test_modify_project(self) -> None:
        first, second = await self.user("first"), await self.user("second")
        pid = await self.project(first)
        changed = await self.driver.modify_project(pid, manager_uid=second,
                                                   description="new " + TRICKY_TEXT)
        self.assertEqual(changed.project_manager_id, second)
        self.assertEqual(changed.member_ids, tuple(sorted([first, second])))
        self.assertEqual(await self.driver.get_project(pid), changed)
        # the old manager may now leave
        await self.driver.remove_from_project(first, pid)
        self.assertEqual((await self.driver.get_project(pid)).member_ids, (second,))
        with self.assertRaises(errors.UserNotFound):
            await self.driver.modify_project(pid, manager_uid="nobody")
        with self.assertRaises(errors.ProjectNotFound):
            await self.driver.modify_project("nothere", description="x")

    async def test_delete_project_removes_its_roles(self) -> None:
        manager, user = await self.user("mgr"), await self.user()
        pid = await self.project(manager, user)
        await self.driver.add_role(user, "sysadmin", pid)
        await self.driver.add_role(user, "netadmin", pid)
        await self.driver.add_role(user, "sysadmin")
        await self.driver.delete_project(pid)
        with self.assertRaises(errors.ProjectNotFound):
            await self.driver.get_project(pid)
        self.assertEqual(await self.driver.list_projects(), [])
        self.assertEqual(await self.driver.list_roles(user), ("sysadmin",))
        await self.driver.create_project(pid, manager, None, [user])
        self.assertEqual(await self.driver.list_roles(user, pid), ())

    # -- roles --------------------------------------------------------------

    async def test_global_roles(self) -> None:
        alice, bob = await self.user("a"), await self.user("b")
        await self.driver.add_role(alice, "sysadmin")
        await self.driver.add_role(alice, "cloudadmin")
        await self.driver.add_role(bob, "sysadmin")
        self.assertEqual(await self.driver.list_roles(alice), ("cloudadmin", "sysadmin"))
        self.assertTrue(await self.driver.has_role(alice, "cloudadmin"))
        self.assertFalse(await self.driver.has_role(bob, "cloudadmin"))
        with self.assertRaises(errors.RoleExists):
            await self.driver.add_role(alice, "sysadmin")
        await self.driver.remove_role(alice, "sysadmin")
        self.assertEqual(await self.driver.list_roles(alice), ("cloudadmin",))
        self.assertEqual(await self.driver.list_roles(bob), ("sysadmin",))
        with self.assertRaises(errors.RoleNotFound):
            await self.driver.remove_role(alice, "sysadmin")
        # the last member leaving deletes the group; granting again recreates it
        await self.driver.remove_role(bob, "sysadmin")
        with self.assertRaises(errors.RoleNotFound):
            await self.driver.remove_role(bob, "sysadmin")
        await self.driver.add_role(bob, "sysadmin")
        self.assertEqual(await self.driver.list_roles(bob), ("sysadmin",))

    async def test_project_roles(self) -> None:
        manager, user, outsider = await self.user("m"), await self.user("u"), await self.user("o")
        pid = await self.project(manager, user)
        await self.driver.add_role(user, "netadmin", pid)
        await self.driver.add_role(user, "developer", pid)
        self.assertEqual(await self.driver.list_roles(user, pid), ("netadmin", "developer"))
        self.assertEqual(await self.driver.list_roles(user), ())
        self.assertEqual(await self.driver.list_roles(manager, pid), ("projectmanager",))
        self.assertTrue(await self.driver.has_role(manager, "projectmanager", pid))
        self.assertFalse(await self.driver.has_role(manager, "projectmanager"))
        with self.assertRaises(errors.RoleExists):
            await self.driver.add_role(user, "netadmin", pid)
        with self.assertRaises(errors.NotProjectMember):
            await self.driver.add_role(outsider, "netadmin", pid)
        await self.driver.remove_role(user, "netadmin", pid)
        self.assertEqual(await self.driver.list_roles(user, pid), ("developer",))
        with self.assertRaises(errors.RoleNotFound):
            await self.driver.remove_role(user, "netadmin", pid)

    async def test_invalid_roles(self) -> None:
        user = await self.user()
        pid = await self.project(user)
        calls = [self.driver.add_role(user, "root"), self.driver.add_role(user, ""),
                 self.driver.add_role(user, "projectmanager", pid),
                 self.driver.add_role(user, "cloudadmin", pid),
                 self.driver.add_role(user, "itsec", pid),
                 self.driver.remove_role(user, "sysadmins")]
        for call in calls:
            with self.assertRaises(InvalidParameterValue):
                await call
        self.assertEqual(await self.driver.list_roles(user, pid), ("projectmanager",))

    async def test_leaving_a_project_drops_its_roles(self) -> None:
        manager, user = await self.user("m"), await self.user("u")
        pid = await self.project(manager, user)
        await self.driver.add_role(user, "sysadmin", pid)
        await self.driver.add_role(manager, "sysadmin", pid)
        await self.driver.remove_from_project(user, pid)
        await self.driver.add_to_project(user, pid)
        self.assertEqual(await self.driver.list_roles(user, pid), ())
        self.assertEqual(await self.driver.list_roles(manager, pid),
                         ("sysadmin", "projectmanager"))

    async def test_delete_user_cascades(self) -> None:
        manager, user, other = await self.user("m"), await self.user("u"), await self.user("o")
        pid = await self.project(manager, user, other)
        await self.driver.add_role(user, "sysadmin")
        await self.driver.add_role(user, "itsec")
        await self.driver.add_role(other, "sysadmin")
        await self.driver.add_role(user, "netadmin", pid)
        await self.driver.add_role(other, "netadmin", pid)
        await self.driver.delete_user(user)
        with self.assertRaises(errors.UserNotFound):
            await self.driver.get_user(user)
        self.assertEqual((await self.driver.get_project(pid)).member_ids,
                         tuple(sorted([manager, other])))
        self.assertEqual(await self.driver.list_roles(other), ("sysadmin",))
        self.assertEqual(await self.driver.list_roles(other, pid), ("netadmin",))
        # a user of the same name starts with nothing
        await self.driver.create_user(user, _name("AK"), "SK")
        self.assertEqual(await self.driver.list_roles(user), ())
        self.assertEqual(await self.driver.list_projects(user), [])

    async def test_manager_cannot_be_deleted(self) -> None:
        manager, deputy = await self.user("m"), await self.user("d")
        pid = await self.project(manager, deputy)
        with self.assertRaises(errors.DependencyViolation):
            await self.driver.delete_user(manager)
        self.assertEqual((await self.driver.get_user(manager)).id, manager)
        await self.driver.modify_project(pid, manager_uid=deputy)
        await self.driver.delete_user(manager)
        self.assertEqual((await self.driver.get_project(pid)).member_ids, (deputy,))


class EmbeddedDirectoryContractTests(DriverContractMixin, unittest.TestCase):
    """The contract on the embedded, LDIF-persisted tree."""

    async def make_base(self) -> Any:
        self.path = Path(self.mktemp()) / "directory.ldif"
        self.directory = await EmbeddedDirectory.open(self.path, "dc=nova,dc=local")
        return self.directory.base

    async def test_a_second_directory_sees_the_data(self) -> None:
        user = await self.user("persist")
        pid = await self.project(user)
        await self.driver.add_role(user, "sysadmin")
        await self.driver.add_role(user, "sysadmin", pid)
        await self.directory.close()
        again = LdapDriver((await EmbeddedDirectory.open(self.path, "dc=nova,dc=local")).base)
        self.assertEqual(await again.list_users(), await self.driver.list_users())
        self.assertEqual(await again.get_project(pid), await self.driver.get_project(pid))
        self.assertEqual(await again.list_roles(user, pid), ("sysadmin", "projectmanager"))
        self.assertEqual(await again.list_roles(user), ("sysadmin",))


class ServedTree(protocol.ServerFactory):
    """ldaptor's own LDAP server over one in-memory tree (no access control)."""

    protocol = LDAPServer
    noisy = False

    def __init__(self, root: Any) -> None:
        self.root = root


components.registerAdapter(lambda factory: factory.root, ServedTree, IConnectedLDAPEntry)


class ServedEmbeddedContractTests(DriverContractMixin, unittest.TestCase):
    """
    The contract on the embedded tree served by ldaptor's LDAP server and used
    through the remote client: how the machine's other nova processes share it.
    """

    async def make_base(self) -> Any:
        path = Path(self.mktemp()) / "directory.ldif"
        self.directory = await EmbeddedDirectory.open(path, "dc=nova,dc=local")
        port = reactor.listenTCP(0, ServedTree(self.directory.base), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        remote = await connect_remote(reactor, f"ldap://127.0.0.1:{port.getHost().port}",
                                      "", "", "dc=nova,dc=local")
        self.addCleanup(remote.close)
        self.path = path
        return remote.base

    async def test_what_clients_write_is_stored_once_and_as_text(self) -> None:
        manager, user = await self.user("m"), await self.user("u")
        pid = await self.project(manager)
        await self.driver.add_to_project(user, pid)
        await self.driver.modify_project(pid, description="changed")
        await self.driver.modify_user(user, secret="SKnew")
        again = LdapDriver((await EmbeddedDirectory.open(self.path, "dc=nova,dc=local")).base)
        project = await again.get_project(pid)
        self.assertEqual((project.description, project.member_ids),
                         ("changed", tuple(sorted([manager, user]))))
        self.assertEqual((await again.get_user(user)).secret, "SKnew")
        data = self.path.read_bytes()
        self.assertEqual(data.count(b"description: changed"), 1)
        self.assertEqual(data.count(b"secretKey: SKnew"), 1)


class SlapdContractTests(DriverContractMixin, unittest.TestCase):
    """The contract on a real OpenLDAP server (started by the tests themselves)."""

    async def make_base(self) -> Any:
        try:
            self.slapd = shared_slapd()
        except SlapdError as e:
            self.fail(f"cannot start the private slapd these tests need: {e}")
        top = await self.connect(self.slapd.suffix)
        base_rdn = f"dc={uuid.uuid4().hex[:12]}"
        await top.base.addChild(rdn("dc", base_rdn[3:]), {
            "objectClass": ["dcObject", "organization"], "o": [base_rdn]})
        self.addCleanup(self.remove_subtree, top.base, f"{base_rdn},{self.slapd.suffix}")
        remote = await self.connect(f"{base_rdn},{self.slapd.suffix}")
        return remote.base

    async def connect(self, base_dn: str) -> Any:
        remote = await connect_remote(reactor, self.slapd.url, self.slapd.root_dn,
                                      self.slapd.password, base_dn, timeout=10)
        self.addCleanup(remote.close)
        return remote

    async def remove_subtree(self, top: Any, dn: str) -> None:
        entry = await top.lookup(dn)
        found = await entry.search(filterObject=pureldap.LDAPFilterMatchAll)
        for each in sorted(found, key=lambda e: -len(e.dn.split())):
            await each.delete()

    async def test_wrong_password(self) -> None:
        with self.assertRaises(errors.DirectoryUnavailable):
            await connect_remote(reactor, self.slapd.url, self.slapd.root_dn, "wrong",
                                 self.slapd.suffix)

    async def test_missing_base(self) -> None:
        with self.assertRaises(errors.DirectoryError):
            await connect_remote(reactor, self.slapd.url, self.slapd.root_dn,
                                 self.slapd.password, f"dc=missing,{self.slapd.suffix}")

    async def test_unreachable_server(self) -> None:
        from tests.slapd import _free_port

        with self.assertRaises(errors.DirectoryUnavailable):
            await connect_remote(reactor, f"ldap://127.0.0.1:{_free_port()}",
                                 self.slapd.root_dn, self.slapd.password, self.slapd.suffix)

    async def test_bad_url(self) -> None:
        for url in ("ldaps://127.0.0.1", "http://x", "ldap://", "ldap://h:notaport"):
            with self.assertRaises(ConfigError, msg=url):
                await connect_remote(reactor, url, "", "", self.slapd.suffix)

    async def test_reconnects_after_the_connection_drops(self) -> None:
        await self.driver.create_user("kim", "AKkim", "SK")
        client = self.base.client._client
        client.transport.loseConnection()
        await client.lost
        self.assertEqual((await self.driver.get_user("kim")).access, "AKkim")

    async def test_server_rejects_nothing_the_driver_writes(self) -> None:
        # the server checks the schema (groupOfNames needs a member, booleans,
        # required attributes); had any write been refused, this would raise
        manager, user = await self.user("m", admin=True), await self.user("u")
        pid = await self.project(manager, user)
        await self.driver.add_role(user, "developer", pid)
        await self.driver.modify_user(user, admin=True)
        users = await self.base.search(filterObject=pureldap.LDAPFilter_equalityMatch(
            attributeDesc=pureldap.LDAPAttributeDescription("isNovaAdmin"),
            assertionValue=pureldap.LDAPAssertionValue("TRUE")))
        self.assertEqual(sorted(e.dn.split()[0].split()[0].value for e in users),
                         sorted([manager, user]))
        with self.assertRaises(ldaperrors.LDAPObjectClassViolation):
            group = await self.base.lookup(DirectoryLayout(self.base.dn).role_dn("developer", pid))
            await group.fetch()
            group["member"].clear()
            await group.commit()


class SilentServer(protocol.Protocol):
    """Accepts LDAP connections and never answers."""


class RemoteClientTests(unittest.TestCase):
    """The remote client's deadline, against a server that never answers."""

    async def test_a_silent_server_is_reported_unavailable(self) -> None:
        port = reactor.listenTCP(0, protocol.Factory.forProtocol(SilentServer),
                                 interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        url = f"ldap://127.0.0.1:{port.getHost().port}"
        # the bind times out; anonymously, the first search does
        for bind_dn in ("cn=admin,dc=nova,dc=test", ""):
            with self.assertRaises(errors.DirectoryUnavailable, msg=bind_dn):
                await connect_remote(reactor, url, bind_dn, "pw", "dc=nova,dc=test",
                                     timeout=0.2)
