"""The auth manager over the embedded directory: keys, authentication, roles, memo."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from twisted.internet.task import Clock
from twisted.trial import unittest
from zope.interface import implementer

from nova.auth import errors
from nova.auth.directory import EmbeddedDirectory
from nova.auth.interfaces import IAuthDriver
from nova.auth.ldapdriver import LdapDriver
from nova.auth.manager import AuthManager, Credentials
from nova.context import RequestContext
from nova.exception import AuthFailure, InvalidParameterValue


@implementer(IAuthDriver)
class CountingDriver:
    """Passes every call to a real driver, counting them by name."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver
        self.calls: dict[str, int] = {}
        self.fail_with: Exception | None = None

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.driver, name)

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            if self.fail_with is not None:
                raise self.fail_with
            return await method(*args, **kwargs)

        return counted

    def total(self) -> int:
        return sum(self.calls.values())


class AuthManagerTests(unittest.TestCase):
    async def setUp(self) -> None:
        directory = await EmbeddedDirectory.open(Path(self.mktemp()) / "d.ldif",
                                                 "dc=nova,dc=local")
        self.ldap = LdapDriver(directory.base)
        self.driver = CountingDriver(self.ldap)
        self.clock = Clock()
        self.auth = AuthManager(self.driver, self.clock, cache_ttl=5.0)
        self.alice = await self.auth.create_user("alice", "AKalice", "SKalice")
        self.bob = await self.auth.create_user("bob", "AKbob", "SKbob")
        self.web = await self.auth.create_project("web", self.alice, "web farm", [self.bob])

    # -- keys and records ---------------------------------------------------

    async def test_generated_keys_are_uuids(self) -> None:
        user = await self.auth.create_user("carol")
        for key in (user.access, user.secret):
            self.assertEqual(str(uuid.UUID(key)), key)
        self.assertNotEqual(user.access, user.secret)
        self.assertEqual(await self.auth.get_user_by_access_key(user.access), user)

    async def test_create_project_makes_the_manager_a_member(self) -> None:
        carol = await self.auth.create_user("carol")
        project = await self.auth.create_project("solo", carol)
        self.assertEqual(project.member_ids, ("carol",))
        self.assertTrue(await self.auth.is_project_manager("carol", "solo"))
        self.assertTrue(await self.auth.is_project_member(carol, project))
        self.assertFalse(await self.auth.is_project_member("alice", "solo"))
        self.assertEqual([p.id for p in await self.auth.list_projects("bob")], ["web"])

    # -- authentication -----------------------------------------------------

    async def test_access_key_with_project(self) -> None:
        user, project = await self.auth.authenticate_access_key("AKbob:web")
        self.assertEqual((user, project), (self.bob, self.web))
        self.assertEqual(user.secret, "SKbob")

    async def test_bare_access_key_means_the_project_named_like_the_user(self) -> None:
        with self.assertRaises(AuthFailure):
            await self.auth.authenticate_access_key("AKbob")
        await self.auth.create_project("bob", "bob")
        user, project = await self.auth.authenticate_access_key("AKbob")
        self.assertEqual((user.id, project.id), ("bob", "bob"))
        user, project = await self.auth.authenticate_access_key("AKbob:")
        self.assertEqual(project.id, "bob")

    async def test_failures_all_say_auth_failure(self) -> None:
        await self.auth.create_user("carol", "AKcarol", "SKcarol")
        for access in ("AKnobody:web", "AKnobody", "", ":web", "AK bob:web", "AKbob:nothere",
                       "AKbob:we b", "AKcarol:web", "akbob:web"):
            with self.assertRaises(AuthFailure, msg=access) as caught:
                await self.auth.authenticate_access_key(access)
            self.assertEqual((caught.exception.code, caught.exception.status),
                             ("AuthFailure", 401))

    async def test_admins_need_not_be_members(self) -> None:
        await self.auth.create_user("root", "AKroot", "SKroot", admin=True)
        user, project = await self.auth.authenticate_access_key("AKroot:web")
        self.assertEqual((user.id, project.id), ("root", "web"))
        await self.auth.create_user("cloud", "AKcloud", "SKcloud")
        await self.auth.add_role("cloud", "cloudadmin")
        self.assertEqual((await self.auth.authenticate_access_key("AKcloud:web"))[1], self.web)
        # itsec sees every project's roles, but acts only where it is a member
        await self.auth.create_user("sec", "AKsec", "SKsec")
        await self.auth.add_role("sec", "itsec")
        with self.assertRaises(AuthFailure):
            await self.auth.authenticate_access_key("AKsec:web")

    async def test_directory_trouble_is_not_an_auth_failure(self) -> None:
        self.driver.fail_with = errors.DirectoryUnavailable("slapd is down")
        with self.assertRaises(errors.DirectoryUnavailable):
            await self.auth.authenticate_access_key("AKbob:web")

    async def test_credentials(self) -> None:
        await self.auth.add_role("bob", "sysadmin")
        await self.auth.add_role("bob", "sysadmin", "web")
        credentials = await self.auth.credentials_for("AKbob:web")
        self.assertEqual(credentials, Credentials(user=self.bob, project=self.web,
                                                  roles=("sysadmin",), is_superuser=False))
        context = credentials.to_context("req-1")
        self.assertEqual(context, RequestContext(user_id="bob", project_id="web",
                                                 is_admin=False, roles=("sysadmin",),
                                                 request_id="req-1"))

    # -- roles --------------------------------------------------------------

    async def test_roles_in(self) -> None:
        self.assertEqual(await self.auth.roles_in(self.alice, self.web), ("projectmanager",))
        self.assertEqual(await self.auth.roles_in("bob", "web"), ())
        # a non-global role counts only when held both globally and in the project
        await self.auth.add_role("bob", "netadmin", "web")
        self.assertEqual(await self.auth.roles_in("bob", "web"), ())
        await self.auth.add_role("bob", "netadmin")
        await self.auth.add_role("bob", "developer")
        self.assertEqual(await self.auth.roles_in("bob", "web"), ("netadmin",))
        # global roles count everywhere
        await self.auth.add_role("bob", "itsec")
        self.assertEqual(await self.auth.roles_in("bob", "web"), ("itsec", "netadmin"))
        self.assertTrue(await self.auth.has_role("bob", "itsec", "web"))
        self.assertFalse(await self.auth.has_role("bob", "developer", "web"))
        self.assertTrue(await self.auth.has_role("bob", "developer"))
        self.assertEqual(await self.auth.get_roles("bob"), ("itsec", "netadmin", "developer"))
        self.assertEqual(await self.auth.get_roles("bob", "web"), ("netadmin",))
        with self.assertRaises(InvalidParameterValue):
            await self.auth.has_role("bob", "projectmanager")

    async def test_is_superuser(self) -> None:
        self.assertFalse(await self.auth.is_superuser(self.bob))
        await self.auth.add_role("bob", "cloudadmin")
        self.assertTrue(await self.auth.is_superuser("bob"))
        root = await self.auth.create_user("root", admin=True)
        self.assertTrue(await self.auth.is_superuser(root))
        await self.auth.add_role("alice", "itsec")
        self.assertFalse(await self.auth.is_superuser("alice"))

    # -- the memo -----------------------------------------------------------

    async def test_lookups_are_memoised_briefly(self) -> None:
        first = await self.auth.credentials_for("AKbob:web")
        calls = self.driver.total()
        self.assertEqual(await self.auth.credentials_for("AKbob:web"), first)
        self.assertEqual(await self.auth.roles_in(first.user, first.project), first.roles)
        self.assertEqual(await self.auth.is_superuser(first.user), False)
        self.assertEqual(self.driver.total(), calls)
        # a change made elsewhere (here: the driver itself) shows once the memo expires
        await self.ldap.remove_from_project("bob", "web")
        self.clock.advance(4.9)
        self.assertEqual(await self.auth.credentials_for("AKbob:web"), first)
        self.clock.advance(0.1)
        with self.assertRaises(AuthFailure):
            await self.auth.credentials_for("AKbob:web")

    async def test_changes_through_the_manager_drop_the_memo(self) -> None:
        await self.auth.authenticate_access_key("AKbob:web")
        await self.auth.remove_from_project("bob", "web")
        with self.assertRaises(AuthFailure):
            await self.auth.authenticate_access_key("AKbob:web")
        await self.auth.add_to_project("bob", "web")
        await self.auth.authenticate_access_key("AKbob:web")
        await self.auth.modify_user("bob", access="AKbob2")
        with self.assertRaises(AuthFailure):
            await self.auth.authenticate_access_key("AKbob:web")
        self.assertEqual((await self.auth.authenticate_access_key("AKbob2:web"))[0].access,
                         "AKbob2")

    async def test_a_failed_change_drops_the_memo_too(self) -> None:
        await self.auth.add_role("alice", "sysadmin")
        await self.auth.roles_in("bob", "web")
        with self.assertRaises(errors.RoleExists):
            await self.auth.add_role("alice", "sysadmin")
        before = self.driver.calls["list_roles"]
        await self.auth.roles_in("bob", "web")
        self.assertEqual(self.driver.calls["list_roles"], before + 2)

    async def test_no_memo_when_ttl_is_zero(self) -> None:
        auth = AuthManager(self.driver, self.clock, cache_ttl=0)
        await auth.credentials_for("AKbob:web")
        calls = self.driver.total()
        await auth.credentials_for("AKbob:web")
        self.assertGreater(self.driver.total(), calls)

    async def test_delete_and_modify(self) -> None:
        carol = await self.auth.create_user("carol")
        await self.auth.add_to_project(carol, "web")
        await self.auth.delete_user(carol)
        self.assertEqual((await self.auth.get_project("web")).member_ids, ("alice", "bob"))
        changed = await self.auth.modify_project("web", manager="bob", description="new")
        self.assertEqual((changed.project_manager_id, changed.description), ("bob", "new"))
        await self.auth.delete_project(changed)
        with self.assertRaises(errors.ProjectNotFound):
            await self.auth.get_project("web")
        self.assertEqual([u.id for u in await self.auth.list_users()], ["alice", "bob"])
