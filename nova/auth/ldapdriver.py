"""
Users, projects and roles kept in an LDAP directory.

L{LdapDriver} is written only against ldaptor's C{IConnectedLDAPEntry}: it is
handed the base entry of the tree and does everything through C{lookup},
C{fetch}, C{search}, C{addChild}, C{commit} and C{delete}. The same code thus
runs on the embedded, LDIF-persisted tree (L{nova.auth.directory.EmbeddedDirectory})
and on a remote OpenLDAP server (L{nova.auth.directory.connect_remote}); it
never knows which. The layout is described in L{nova.auth.ldaplayout}.

C{groupOfNames} requires at least one C{member}, so, as in 2010 nova: a
project always keeps its manager as a member (the manager cannot be removed
from it, nor deleted while managing it); a role group is created when the
first user is given the role and deleted when the last one loses it.

Writes from one driver are serialised (one lock), so that check-then-write
sequences (is this access key free?) do not interleave within a process.
"""

from __future__ import annotations

from typing import Any

import attr
from ldaptor.protocols import pureldap
from ldaptor.protocols.ldap import ldaperrors
from ldaptor.protocols.ldap.distinguishedname import DistinguishedName
from twisted.internet import defer
from zope.interface import implementer

from nova.auth import errors
from nova.auth import ldapentries as E
from nova.auth import ldaplayout as L
from nova.auth.interfaces import IAuthDriver
from nova.auth.models import (
    Project, User, validate_access_key, validate_description, validate_id, validate_secret)
from nova.auth.roles import (
    ALL_ROLES, ASSIGNABLE_ROLES, GLOBAL_GROUP_NAMES, PROJECTMANAGER, validate_role)
from nova.exception import InvalidParameterValue

_SINGLE = pureldap.LDAP_SCOPE_singleLevel
_SUBTREE = pureldap.LDAP_SCOPE_wholeSubtree
#: the global role groups live in ou=Groups beside the projects
_RESERVED_PROJECT_IDS = frozenset(name.lower() for name in GLOBAL_GROUP_NAMES.values())


@implementer(IAuthDriver)
class LdapDriver:
    """
    Users, projects and roles over any ldaptor C{IConnectedLDAPEntry}.

    @param base: the base entry (e.g. C{dc=nova,dc=local}); C{ou=Users} and
        C{ou=Groups} are created below it when missing.
    """

    def __init__(self, base: Any) -> None:
        self._base = base
        self._layout = L.DirectoryLayout(base.dn)
        self._write_lock = defer.DeferredLock()
        self._users_ou: Any = None
        self._groups_ou: Any = None

    # -- plumbing ---------------------------------------------------------

    async def _ready(self) -> None:
        if self._groups_ou is not None:
            return
        users = await E.ensure_ou(self._base, self._layout.users, "Users")
        groups = await E.ensure_ou(self._base, self._layout.groups, "Groups")
        self._users_ou, self._groups_ou = users, groups

    async def _find(self, dn: DistinguishedName) -> Any:
        return await E.find(self._base, dn)

    async def _user_entry(self, uid: str) -> Any:
        entry = await self._find(self._layout.user_dn(validate_id(uid, "user id")))
        if entry is None:
            raise errors.UserNotFound(f"The user {uid!r} does not exist")
        return entry

    async def _project_entry(self, project_id: str) -> Any:
        validate_id(project_id, "project id")
        entry = None
        if project_id.lower() not in _RESERVED_PROJECT_IDS:
            entry = await self._find(self._layout.project_dn(project_id))
        if entry is None or not L.values(entry, "owner"):
            raise errors.ProjectNotFound(f"The project {project_id!r} does not exist")
        return entry

    def _has_member(self, group: Any, dn: DistinguishedName) -> bool:
        return E.member_value(group, dn) is not None

    async def _new_group(self, parent: Any, name: str, description: str,
                         members: list[DistinguishedName],
                         owner: DistinguishedName | None = None) -> None:
        await E.settle(parent.addChild(
            L.rdn("cn", name), L.group_attributes(name, description, members, owner)))

    # -- users ------------------------------------------------------------

    @E.directory_call
    async def get_user(self, uid: str) -> User:
        """@raise errors.UserNotFound: no such user."""
        await self._ready()
        return L.user_from_entry(await self._user_entry(uid))

    @E.directory_call
    async def get_user_by_access_key(self, access: str) -> User:
        """@raise errors.AccessKeyNotFound: no user has C{access} (compared exactly)."""
        validate_access_key(access)
        await self._ready()
        found = [e for e in await E.search(
                     self._users_ou, _SINGLE, L.equals("objectClass", "novaUser"),
                     L.equals("accessKey", access))
                 if L.first(e, "accessKey") == access]
        if not found:
            raise errors.AccessKeyNotFound("The access key is not known")
        if len(found) > 1:
            raise errors.DirectoryError("Several users share one access key")
        return L.user_from_entry(found[0])

    @E.directory_call
    async def list_users(self) -> list[User]:
        """@return: every user, sorted by id."""
        await self._ready()
        entries = await E.search(self._users_ou, _SINGLE, L.equals("objectClass", "novaUser"))
        return sorted((L.user_from_entry(e) for e in entries), key=lambda u: u.id)

    async def _check_access_key_free(self, access: str, owner: str | None) -> None:
        # the schema matches access keys case-insensitively: so must uniqueness
        for entry in await E.search(self._users_ou, _SINGLE,
                                        L.equals("accessKey", access)):
            if owner is None or L.first(entry, "uid").lower() != owner.lower():
                raise errors.AccessKeyExists("Another user already has that access key")

    @E.directory_call
    async def create_user(self, name: str, access: str, secret: str, admin: bool = False) -> User:
        """
        @raise errors.UserExists: the id is taken.
        @raise errors.AccessKeyExists: the access key is taken.
        @raise InvalidParameterValue: a malformed name or key.
        """
        validate_id(name, "user id")
        validate_access_key(access)
        validate_secret(secret)
        async with self._write_lock:
            await self._ready()
            if await self._find(self._layout.user_dn(name)) is not None:
                raise errors.UserExists(f"The user {name!r} already exists")
            await self._check_access_key_free(access, None)
            try:
                await E.settle(self._users_ou.addChild(
                    L.rdn("uid", name), L.user_attributes(name, access, secret, bool(admin))))
            except ldaperrors.LDAPEntryAlreadyExists:
                raise errors.UserExists(f"The user {name!r} already exists") from None
        return User(id=name, name=name, access=access, secret=secret, admin=bool(admin))

    @E.directory_call
    async def delete_user(self, uid: str) -> None:
        """
        Delete a user, after taking them out of every project and role.

        @raise errors.UserNotFound: no such user.
        @raise errors.DependencyViolation: the user still manages a project.
        """
        async with self._write_lock:
            await self._ready()
            entry = await self._user_entry(uid)
            dn = self._layout.user_dn(uid)
            managed = await E.search(self._groups_ou, _SINGLE,
                                         L.equals("owner", dn.getText()))
            if managed:
                names = ", ".join(sorted(L.first(e, "cn") for e in managed))
                raise errors.DependencyViolation(
                    f"The user {uid!r} manages {names}: delete or reassign first")
            groups = await E.search(self._groups_ou, _SUBTREE,
                                        L.equals("member", dn.getText()))
            # deepest first: project role groups before anything else
            for group in sorted(groups, key=lambda g: -len(g.dn.split())):
                is_project = bool(L.values(group, "owner"))
                await E.remove_member(group, dn, delete_if_empty=not is_project)
            await E.settle(entry.delete())

    @E.directory_call
    async def modify_user(self, uid: str, access: str | None = None, secret: str | None = None,
                          admin: bool | None = None) -> User:
        """
        Change a user's keys or admin flag; C{None} leaves a field as it is.

        @raise errors.UserNotFound: no such user.
        @raise errors.AccessKeyExists: the new access key is taken.
        """
        if access is not None:
            validate_access_key(access)
        if secret is not None:
            validate_secret(secret)
        async with self._write_lock:
            await self._ready()
            entry = await self._user_entry(uid)
            user = L.user_from_entry(entry)
            changes: dict[str, Any] = {}
            if access is not None and access != user.access:
                await self._check_access_key_free(access, user.id)
                changes["access"] = access
            if secret is not None:
                changes["secret"] = secret
            if admin is not None:
                changes["admin"] = bool(admin)
            if not changes:
                return user
            for field, attribute in (("access", "accessKey"), ("secret", "secretKey"),
                                     ("admin", "isNovaAdmin")):
                if field in changes:
                    value = changes[field]
                    E.replace_values(entry, attribute,
                             [L.ldap_bool(value) if field == "admin" else value])
            await E.settle(entry.commit())
            return _evolve_user(user, changes)

    # -- projects ---------------------------------------------------------

    @E.directory_call
    async def get_project(self, project_id: str) -> Project:
        """@raise errors.ProjectNotFound: no such project."""
        await self._ready()
        return L.project_from_entry(await self._project_entry(project_id), self._layout)

    @E.directory_call
    async def list_projects(self, uid: str | None = None) -> list[Project]:
        """@return: every project (or those C{uid} is a member of), sorted by id."""
        await self._ready()
        filters = [L.equals("objectClass", "groupOfNames"),
                   pureldap.LDAPFilter_present("owner")]
        if uid is not None:
            filters.append(L.equals("member", self._layout.user_dn(
                validate_id(uid, "user id")).getText()))
        entries = await E.search(self._groups_ou, _SINGLE, *filters)
        projects = (L.project_from_entry(e, self._layout) for e in entries)
        return sorted((p for p in projects if p.id.lower() not in _RESERVED_PROJECT_IDS),
                      key=lambda p: p.id)

    @E.directory_call
    async def create_project(self, name: str, manager_uid: str, description: str | None = None,
                             member_uids: tuple[str, ...] | list[str] | None = None) -> Project:
        """
        Create a project; the manager is always made a member.

        @raise errors.ProjectExists: the id is taken.
        @raise errors.UserNotFound: the manager or a member does not exist.
        @raise InvalidParameterValue: a malformed or reserved id.
        """
        validate_id(name, "project id")
        if name.lower() in _RESERVED_PROJECT_IDS:
            raise InvalidParameterValue(f"The project id {name!r} is reserved")
        description = validate_description(description or name)
        uids = [validate_id(u, "user id") for u in (member_uids or ())]
        async with self._write_lock:
            await self._ready()
            if await self._find(self._layout.project_dn(name)) is not None:
                raise errors.ProjectExists(f"The project {name!r} already exists")
            manager = L.user_from_entry(await self._user_entry(manager_uid))
            members = {manager.id.lower(): manager.id}
            for uid in uids:
                user = L.user_from_entry(await self._user_entry(uid))
                members.setdefault(user.id.lower(), user.id)
            member_dns = [self._layout.user_dn(u) for u in members.values()]
            try:
                await self._new_group(self._groups_ou, name, description, member_dns,
                                      owner=self._layout.user_dn(manager.id))
            except ldaperrors.LDAPEntryAlreadyExists:
                raise errors.ProjectExists(f"The project {name!r} already exists") from None
        return Project(id=name, name=name, description=description,
                       project_manager_id=manager.id, member_ids=tuple(sorted(members.values())))

    @E.directory_call
    async def modify_project(self, project_id: str, manager_uid: str | None = None,
                             description: str | None = None) -> Project:
        """
        Change a project's manager (who becomes a member) or description.

        @raise errors.ProjectNotFound: no such project.
        @raise errors.UserNotFound: the new manager does not exist.
        """
        if description is not None:
            validate_description(description)
        async with self._write_lock:
            await self._ready()
            entry = await self._project_entry(project_id)
            if manager_uid is not None:
                manager = L.user_from_entry(await self._user_entry(manager_uid))
                manager_dn = self._layout.user_dn(manager.id)
                E.replace_values(entry, "owner", [manager_dn.getText()])
                if not self._has_member(entry, manager_dn):
                    L.add_value(entry, "member", manager_dn.getText())
            if description is not None:
                E.replace_values(entry, "description", [description])
            await E.settle(entry.commit())
            return L.project_from_entry(entry, self._layout)

    @E.directory_call
    async def delete_project(self, project_id: str) -> None:
        """Delete a project and its role groups. @raise errors.ProjectNotFound: no such project."""
        async with self._write_lock:
            await self._ready()
            entry = await self._project_entry(project_id)
            for group in await E.search(entry, _SINGLE, pureldap.LDAPFilterMatchAll):
                await E.settle(group.delete())
            await E.settle(entry.delete())

    @E.directory_call
    async def add_to_project(self, uid: str, project_id: str) -> None:
        """
        @raise errors.UserNotFound: no such user.
        @raise errors.ProjectNotFound: no such project.
        @raise errors.AlreadyProjectMember: the user is a member already.
        """
        async with self._write_lock:
            await self._ready()
            user = L.user_from_entry(await self._user_entry(uid))
            entry = await self._project_entry(project_id)
            dn = self._layout.user_dn(user.id)
            if self._has_member(entry, dn):
                raise errors.AlreadyProjectMember(
                    f"The user {uid!r} is already a member of {project_id!r}")
            await E.add_member(entry, dn)

    @E.directory_call
    async def remove_from_project(self, uid: str, project_id: str) -> None:
        """
        Remove a member, and the roles they held in the project.

        @raise errors.ProjectNotFound: no such project.
        @raise errors.NotProjectMember: the user is not a member.
        @raise errors.DependencyViolation: the user is the project's manager.
        """
        validate_id(uid, "user id")
        async with self._write_lock:
            await self._ready()
            entry = await self._project_entry(project_id)
            dn = self._layout.user_dn(uid)
            if not self._has_member(entry, dn):
                raise errors.NotProjectMember(
                    f"The user {uid!r} is not a member of {project_id!r}")
            if L.project_from_entry(entry, self._layout).is_manager(uid):
                raise errors.DependencyViolation(
                    f"The user {uid!r} manages {project_id!r}: assign another manager first")
            for group in await E.search(entry, _SINGLE, L.equals("member", dn.getText())):
                await E.remove_member(group, dn, delete_if_empty=True)
            await E.remove_member(entry, dn, delete_if_empty=False)

    # -- roles ------------------------------------------------------------

    @E.directory_call
    async def add_role(self, uid: str, role: str, project_id: str | None = None) -> None:
        """
        Grant a role globally, or in a project the user is a member of.

        @raise errors.RoleExists: the user holds it there already.
        @raise errors.NotProjectMember: the user is not a member of the project.
        @raise InvalidParameterValue: an unknown role, or a global-only role
            given with a project.
        """
        validate_role(role, project_scoped=project_id is not None)
        async with self._write_lock:
            await self._ready()
            user = L.user_from_entry(await self._user_entry(uid))
            dn = self._layout.user_dn(user.id)
            parent, where = self._groups_ou, "globally"
            if project_id is not None:
                parent, where = await self._project_entry(project_id), f"in {project_id!r}"
                if not self._has_member(parent, dn):
                    raise errors.NotProjectMember(
                        f"The user {uid!r} is not a member of {project_id!r}")
            group = await self._find(self._layout.role_dn(role, project_id))
            if group is None:
                name = GLOBAL_GROUP_NAMES[role] if project_id is None else role
                await self._new_group(parent, name, f"nova {role} role {where}", [dn])
            elif self._has_member(group, dn):
                raise errors.RoleExists(f"The user {uid!r} already holds {role} {where}")
            else:
                await E.add_member(group, dn)

    @E.directory_call
    async def remove_role(self, uid: str, role: str, project_id: str | None = None) -> None:
        """@raise errors.RoleNotFound: the user does not hold the role there."""
        validate_role(role, project_scoped=project_id is not None)
        validate_id(uid, "user id")
        async with self._write_lock:
            await self._ready()
            if project_id is not None:
                await self._project_entry(project_id)
            dn = self._layout.user_dn(uid)
            group = await self._find(self._layout.role_dn(role, project_id))
            if group is None or not self._has_member(group, dn):
                raise errors.RoleNotFound(f"The user {uid!r} does not hold {role} there")
            await E.remove_member(group, dn, delete_if_empty=True)

    @E.directory_call
    async def has_role(self, uid: str, role: str, project_id: str | None = None) -> bool:
        """
        @return: whether the user holds C{role} exactly there (globally, or in
            C{project_id}); C{projectmanager} means managing C{project_id}.
        """
        return role in await self.list_roles(uid, project_id)

    @E.directory_call
    async def list_roles(self, uid: str, project_id: str | None = None) -> tuple[str, ...]:
        """
        @return: the roles stored for the user globally, or in C{project_id}
            (plus C{projectmanager} when they manage it), in L{ALL_ROLES} order.
        """
        validate_id(uid, "user id")
        await self._ready()
        dn = self._layout.user_dn(uid)
        held: set[str] = set()
        if project_id is None:
            for group in await E.search(self._groups_ou, _SINGLE,
                                            L.equals("member", dn.getText())):
                role = self._layout.role_of_group(group.dn)
                if role is not None:
                    held.add(role)
        else:
            entry = await self._project_entry(project_id)
            if L.project_from_entry(entry, self._layout).is_manager(uid):
                held.add(PROJECTMANAGER)
            for group in await E.search(entry, _SINGLE, L.equals("member", dn.getText())):
                name = L.first(group, "cn").lower()
                if name in ASSIGNABLE_ROLES:
                    held.add(name)
        return tuple(r for r in ALL_ROLES if r in held)


def _evolve_user(user: User, changes: dict[str, Any]) -> User:
    return attr.evolve(user, **changes)
