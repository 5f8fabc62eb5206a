"""
The auth manager: the one facade the API, the admin API and nova-manage use
for users, projects, roles and request authentication.

It adds to the driver what 2010 nova's C{AuthManager} added: generated keys,
the C{access:project} convention, the role rules of L{nova.auth.roles}, and a
short memo of lookups, because every API request authenticates ("these read
calls are memoized within controllers for short periods of time"). The memo
lives a few seconds (by the injected clock) and is dropped by any change made
through this manager; changes made elsewhere (another process, nova-manage)
show within that time.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable, Hashable, Iterable

import attr
from twisted.logger import Logger

from nova.auth import errors
from nova.auth.interfaces import IAuthDriver
from nova.auth.models import Project, User
from nova.auth.roles import ALL_ROLES, GLOBAL_ROLES, PROJECTMANAGER, SUPERUSER_ROLES
from nova.context import RequestContext
from nova.exception import AuthFailure, InvalidParameterValue, NotFound

log = Logger()

_AUTH_FAILED = "AWS was not able to validate the provided access credentials"


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class Credentials:
    """
    Who an access key stands for, in which project, with which powers.

    @ivar user: the authenticated user (its C{secret} checks the signature).
    @ivar project: the project the request acts in.
    @ivar roles: the roles effectively held there (L{AuthManager.roles_in}).
    @ivar is_superuser: the admin flag or the cloudadmin role.
    """

    user: User
    project: Project
    roles: tuple[str, ...]
    is_superuser: bool

    def to_context(self, request_id: str | None = None) -> RequestContext:
        """@return: the L{RequestContext} of a request made with these credentials."""
        extra = {"request_id": request_id} if request_id else {}
        return RequestContext(user_id=self.user.id, project_id=self.project.id,
                              is_admin=self.is_superuser, roles=self.roles, **extra)


class _Memo:
    """A small time-limited memo; C{clock.seconds()} tells the time."""

    _MAX = 10_000

    def __init__(self, clock: Any, ttl: float) -> None:
        self._clock = clock
        self._ttl = ttl
        self._items: dict[Hashable, tuple[float, Any]] = {}

    def get(self, key: Hashable) -> Any:
        found = self._items.get(key)
        if found is None:
            return None
        if found[0] <= self._clock.seconds():
            del self._items[key]
            return None
        return found[1]

    def put(self, key: Hashable, value: Any) -> None:
        if self._ttl <= 0:
            return
        now = self._clock.seconds()
        if len(self._items) >= self._MAX:
            self._items = {k: v for k, v in self._items.items() if v[0] > now}
            if len(self._items) >= self._MAX:
                self._items.clear()
        self._items[key] = (now + self._ttl, value)

    def clear(self) -> None:
        self._items.clear()


def _uid(user: User | str) -> str:
    return user.id if isinstance(user, User) else user


def _pid(project: Project | str) -> str:
    return project.id if isinstance(project, Project) else project


def _new_key() -> str:
    return str(uuid.uuid4())


class AuthManager:
    """
    Users, projects, roles and authentication over an L{IAuthDriver}.

    Arguments naming a user or a project take the id or the record.

    @param driver: where users, projects and roles are kept.
    @param clock: C{IReactorTime}; dates the memo.
    @param cache_ttl: seconds a lookup is remembered (0: never).
    @param new_key: makes access and secret keys that are not given.
    """

    def __init__(self, driver: IAuthDriver, clock: Any, cache_ttl: float = 5.0,
                 new_key: Callable[[], str] = _new_key) -> None:
        self._driver = driver
        self._memo = _Memo(clock, cache_ttl)
        self._new_key = new_key

    def invalidate(self) -> None:
        """Forget every memoised lookup."""
        self._memo.clear()

    async def _change(self, operation: Any) -> Any:
        try:
            return await operation
        finally:
            self._memo.clear()

    # -- users ------------------------------------------------------------

    async def get_user(self, uid: str) -> User:
        """@raise errors.UserNotFound: no such user."""
        return await self._driver.get_user(uid)

    async def get_user_by_access_key(self, access: str) -> User:
        """@raise errors.AccessKeyNotFound: no user has it."""
        return await self._driver.get_user_by_access_key(access)

    async def list_users(self) -> list[User]:
        """@return: all users, sorted by id."""
        return await self._driver.list_users()

    async def create_user(self, name: str, access: str | None = None, secret: str | None = None,
                          admin: bool = False) -> User:
        """
        Create a user; missing keys are random UUIDs, as in 2010 nova.

        @raise errors.UserExists, errors.AccessKeyExists: taken.
        """
        return await self._change(self._driver.create_user(
            name, access or self._new_key(), secret or self._new_key(), admin))

    async def delete_user(self, user: User | str) -> None:
        """@raise errors.DependencyViolation: the user still manages a project."""
        await self._change(self._driver.delete_user(_uid(user)))

    async def modify_user(self, user: User | str, access: str | None = None,
                          secret: str | None = None, admin: bool | None = None) -> User:
        """@return: the changed user; C{None} arguments are left as they are."""
        return await self._change(self._driver.modify_user(_uid(user), access, secret, admin))

    # -- projects ---------------------------------------------------------

    async def get_project(self, project: str) -> Project:
        """@raise errors.ProjectNotFound: no such project."""
        return await self._driver.get_project(project)

    async def list_projects(self, user: User | str | None = None) -> list[Project]:
        """@return: all projects, or those C{user} is a member of."""
        return await self._driver.list_projects(None if user is None else _uid(user))

    async def create_project(self, name: str, manager: User | str,
                             description: str | None = None,
                             members: Iterable[User | str] | None = None) -> Project:
        """Create a project; its manager is made a member. @raise errors.ProjectExists: taken."""
        return await self._change(self._driver.create_project(
            name, _uid(manager), description, [_uid(m) for m in members or ()]))

    async def modify_project(self, project: Project | str, manager: User | str | None = None,
                             description: str | None = None) -> Project:
        """@return: the project with a new manager (made a member) or description."""
        return await self._change(self._driver.modify_project(
            _pid(project), None if manager is None else _uid(manager), description))

    async def delete_project(self, project: Project | str) -> None:
        """Delete a project and its role groups."""
        await self._change(self._driver.delete_project(_pid(project)))

    async def add_to_project(self, user: User | str, project: Project | str) -> None:
        """@raise errors.AlreadyProjectMember: already a member."""
        await self._change(self._driver.add_to_project(_uid(user), _pid(project)))

    async def remove_from_project(self, user: User | str, project: Project | str) -> None:
        """Remove a member and their project roles. @raise errors.DependencyViolation: the manager."""
        await self._change(self._driver.remove_from_project(_uid(user), _pid(project)))

    async def is_project_member(self, user: User | str, project: Project | str) -> bool:
        """@return: whether C{user} is a member of C{project}."""
        found = project if isinstance(project, Project) else await self.get_project(project)
        return found.has_member(_uid(user))

    async def is_project_manager(self, user: User | str, project: Project | str) -> bool:
        """@return: whether C{user} manages C{project}."""
        found = project if isinstance(project, Project) else await self.get_project(project)
        return found.is_manager(_uid(user))

    # -- roles ------------------------------------------------------------

    async def add_role(self, user: User | str, role: str,
                       project: Project | str | None = None) -> None:
        """Grant C{role} globally, or in C{project}. @raise errors.RoleExists: held already."""
        await self._change(self._driver.add_role(
            _uid(user), role, None if project is None else _pid(project)))

    async def remove_role(self, user: User | str, role: str,
                          project: Project | str | None = None) -> None:
        """@raise errors.RoleNotFound: not held there."""
        await self._change(self._driver.remove_role(
            _uid(user), role, None if project is None else _pid(project)))

    async def get_roles(self, user: User | str,
                        project: Project | str | None = None) -> tuple[str, ...]:
        """@return: the roles granted to C{user} exactly there (not the effective ones)."""
        return await self._driver.list_roles(_uid(user), None if project is None else _pid(project))

    async def roles_in(self, user: User | str, project: Project | str) -> tuple[str, ...]:
        """
        The roles a user effectively holds in a project, by 2010 nova's rules:
        global roles (cloudadmin, itsec) count everywhere; another role counts
        only when held both globally and in the project; projectmanager means
        managing the project.

        @return: role names in L{ALL_ROLES} order.
        """
        uid, pid = _uid(user), _pid(project)
        key = ("roles", uid.lower(), pid.lower())
        cached = self._memo.get(key)
        if cached is not None:
            return cached
        held_globally = set(await self._driver.list_roles(uid))
        held_here = set(await self._driver.list_roles(uid, pid))
        effective = {r for r in held_globally if r in GLOBAL_ROLES}
        effective |= held_globally & held_here
        if PROJECTMANAGER in held_here:
            effective.add(PROJECTMANAGER)
        result = tuple(r for r in ALL_ROLES if r in effective)
        self._memo.put(key, result)
        return result

    async def has_role(self, user: User | str, role: str,
                       project: Project | str | None = None) -> bool:
        """
        @return: whether C{user} holds C{role}: globally when C{project} is
            C{None}, else effectively in C{project} (see L{roles_in}).
        """
        if project is not None:
            return role in await self.roles_in(user, project)
        if role == PROJECTMANAGER:
            raise InvalidParameterValue("projectmanager is only held in a project")
        return role in await self._driver.list_roles(_uid(user))

    async def is_superuser(self, user: User | str) -> bool:
        """@return: whether C{user} has the admin flag or a superuser role (cloudadmin)."""
        record = user if isinstance(user, User) else await self.get_user(user)
        if record.admin:
            return True
        key = ("superuser", record.id.lower())
        cached = self._memo.get(key)
        if cached is not None:
            return cached
        result = bool(SUPERUSER_ROLES & set(await self._driver.list_roles(record.id)))
        self._memo.put(key, result)
        return result

    # -- authentication ---------------------------------------------------

    async def authenticate_access_key(self, access: str) -> tuple[User, Project]:
        """
        Find who sends C{AWSAccessKeyId=access} and in which project.

        @param access: C{accesskey:project}, or a bare C{accesskey} meaning the
            project named like the user (2010 nova's convention).
        @return: the user (whose secret checks the signature) and the project.
        @raise AuthFailure: unknown or malformed key, no such project, or the
            user is neither a superuser nor a member of the project.
        """
        credentials = await self.credentials_for(access)
        return credentials.user, credentials.project

    async def credentials_for(self, access: str) -> Credentials:
        """
        As L{authenticate_access_key}, with the roles held and the superuser
        flag; memoised for a few seconds.

        @raise AuthFailure: see L{authenticate_access_key}.
        """
        key = ("credentials", access)
        cached = self._memo.get(key)
        if cached is not None:
            return cached
        access_key, _, project_id = access.partition(":")
        try:
            user = await self._driver.get_user_by_access_key(access_key)
            project = await self._driver.get_project(project_id or user.name)
        except (NotFound, InvalidParameterValue) as e:
            # one answer for every reason: an access key alone must not reveal
            # which users or projects exist; the log keeps the reason
            log.info("authentication failed for {access!r}: {reason}", access=access, reason=e)
            raise AuthFailure(_AUTH_FAILED) from None
        superuser = await self.is_superuser(user)
        if not superuser and not project.has_member(user.id):
            log.info("authentication failed: {user} is not a member of {project}",
                     user=user.id, project=project.id)
            raise AuthFailure(_AUTH_FAILED)
        roles = await self.roles_in(user, project)
        credentials = Credentials(user=user, project=project, roles=roles,
                                  is_superuser=superuser)
        self._memo.put(key, credentials)
        return credentials


__all__ = ["AuthManager", "Credentials", "errors"]
