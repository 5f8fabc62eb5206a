"""The seam between the auth manager and where users, projects and roles are stored."""

from __future__ import annotations

from zope.interface import Interface


class IAuthDriver(Interface):
    """
    Stores users, projects and role grants. Every method is a coroutine.

    Errors are those of L{nova.auth.errors}; malformed ids raise
    L{nova.exception.InvalidParameterValue}; an unreachable store raises
    L{nova.auth.errors.DirectoryUnavailable}.
    """

    async def get_user(uid):
        """@return: the L{nova.auth.models.User}. @raise UserNotFound: no such user."""

    async def get_user_by_access_key(access):
        """@return: the user with that access key. @raise AccessKeyNotFound: none has it."""

    async def list_users():
        """@return: all users, sorted by id."""

    async def create_user(name, access, secret, admin=False):
        """@return: the new user. @raise UserExists, AccessKeyExists: taken."""

    async def delete_user(uid):
        """Delete the user and their memberships. @raise DependencyViolation: manages a project."""

    async def modify_user(uid, access=None, secret=None, admin=None):
        """@return: the changed user; C{None} arguments are left as they are."""

    async def get_project(project_id):
        """@return: the L{nova.auth.models.Project}. @raise ProjectNotFound: no such project."""

    async def list_projects(uid=None):
        """@return: all projects, or those C{uid} is a member of, sorted by id."""

    async def create_project(name, manager_uid, description=None, member_uids=None):
        """@return: the new project (the manager is a member). @raise ProjectExists: taken."""

    async def modify_project(project_id, manager_uid=None, description=None):
        """@return: the changed project."""

    async def delete_project(project_id):
        """Delete the project and its role groups."""

    async def add_to_project(uid, project_id):
        """@raise AlreadyProjectMember: already a member."""

    async def remove_from_project(uid, project_id):
        """Also drops the project roles. @raise DependencyViolation: the manager."""

    async def add_role(uid, role, project_id=None):
        """Grant C{role} globally or in a project. @raise RoleExists: already held."""

    async def remove_role(uid, role, project_id=None):
        """@raise RoleNotFound: not held there."""

    async def has_role(uid, role, project_id=None):
        """@return: whether C{role} is stored for the user exactly there."""

    async def list_roles(uid, project_id=None):
        """@return: the roles stored for the user there (tuple, L{roles.ALL_ROLES} order)."""
