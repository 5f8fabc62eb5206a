"""
The admin API (C{/services/Admin}), as 2010 nova's C{adminclient} spoke it:
users, projects, roles, certificates and hosts. Superusers only (the role
table says so for every action here).
"""

from __future__ import annotations

import base64
from typing import Any, Awaitable, Callable

from nova.api.ec2.params import Params
from nova.api.ec2.xmlrender import format_timestamp
from nova.auth import roles
from nova.auth.credentials import Endpoints, credentials_zip
from nova.auth.manager import AuthManager
from nova.auth.models import Project, User
from nova.context import RequestContext
from nova.crypto import CertificateAuthority
from nova.datastore.repositories import ServiceRepository
from nova.exception import InvalidParameterValue

ThreadRunner = Callable[..., Awaitable[Any]]


def user_dict(user: User, credentials: bytes | None = None) -> dict[str, Any]:
    """@return: a user as the admin API shows it (the secret included: admins only)."""
    return {"username": user.id, "accesskey": user.access, "secretkey": user.secret,
            "isAdmin": user.admin,
            "file": base64.b64encode(credentials).decode("ascii") if credentials else None}


def project_dict(project: Project) -> dict[str, Any]:
    """@return: a project as the admin API shows it."""
    return {"projectname": project.id, "description": project.description,
            "projectManagerId": project.project_manager_id,
            "memberIds": [{"member": m} for m in project.member_ids]}


def _operation(params: Params) -> str:
    operation = params.require("Operation")
    if operation not in ("add", "remove"):
        raise InvalidParameterValue(f"Operation must be add or remove, not {operation!r}")
    return operation


class AdminController:
    """
    @param auth: the user manager.
    @param ca: signs user certificates.
    @param services: for DescribeHosts.
    @param endpoints: written into generated credentials.
    @param run_in_thread: runs key generation and signing off the reactor.
    @param down_time: seconds after which a silent service counts as down.
    """

    def __init__(self, auth: AuthManager, ca: CertificateAuthority, services: ServiceRepository,
                 endpoints: Endpoints, run_in_thread: ThreadRunner, down_time: float) -> None:
        self._auth = auth
        self._ca = ca
        self._services = services
        self._endpoints = endpoints
        self._run_in_thread = run_in_thread
        self._down_time = down_time

    def actions(self) -> dict[str, Callable[[RequestContext, Params], Awaitable[dict[str, Any]]]]:
        """@return: the admin API's action table."""
        return {
            "DescribeUser": self.describe_user,
            "DescribeUsers": self.describe_users,
            "RegisterUser": self.register_user,
            "DeregisterUser": self.deregister_user,
            "DescribeProject": self.describe_project,
            "DescribeProjects": self.describe_projects,
            "RegisterProject": self.register_project,
            "DeregisterProject": self.deregister_project,
            "DescribeProjectMembers": self.describe_project_members,
            "ModifyProjectMember": self.modify_project_member,
            "DescribeRoles": self.describe_roles,
            "DescribeUserRoles": self.describe_user_roles,
            "ModifyUserRole": self.modify_user_role,
            "GenerateX509ForUser": self.generate_x509_for_user,
            "DescribeHosts": self.describe_hosts,
        }

    async def describe_user(self, context: RequestContext, params: Params) -> dict[str, Any]:
        return user_dict(await self._auth.get_user(params.require("Name")))

    async def describe_users(self, context: RequestContext, params: Params) -> dict[str, Any]:
        return {"userSet": [user_dict(u) for u in await self._auth.list_users()]}

    async def register_user(self, context: RequestContext, params: Params) -> dict[str, Any]:
        user = await self._auth.create_user(params.require("Name"),
                                            admin=params.get_bool("IsAdmin"))
        return user_dict(user)

    async def deregister_user(self, context: RequestContext, params: Params) -> dict[str, Any]:
        await self._auth.delete_user(params.require("Name"))
        return {"return": True}

    async def describe_project(self, context: RequestContext, params: Params) -> dict[str, Any]:
        return project_dict(await self._auth.get_project(params.require("Name")))

    async def describe_projects(self, context: RequestContext, params: Params) -> dict[str, Any]:
        projects = await self._auth.list_projects(params.get("User"))
        return {"projectSet": [project_dict(p) for p in projects]}

    async def register_project(self, context: RequestContext, params: Params) -> dict[str, Any]:
        project = await self._auth.create_project(
            params.require("Name"), params.require("ManagerUser"),
            description=params.get("Description"), members=params.get_list("MemberUsers"))
        return project_dict(project)

    async def deregister_project(self, context: RequestContext, params: Params) -> dict[str, Any]:
        await self._auth.delete_project(params.require("Name"))
        return {"return": True}

    async def describe_project_members(self, context: RequestContext,
                                       params: Params) -> dict[str, Any]:
        project = await self._auth.get_project(params.require("Name"))
        return {"members": [{"member": m} for m in project.member_ids]}

    async def modify_project_member(self, context: RequestContext,
                                    params: Params) -> dict[str, Any]:
        user, project = params.require("User"), params.require("Project")
        if _operation(params) == "add":
            await self._auth.add_to_project(user, project)
        else:
            await self._auth.remove_from_project(user, project)
        return {"return": True}

    async def describe_roles(self, context: RequestContext, params: Params) -> dict[str, Any]:
        project_roles = params.get_bool("ProjectRoles", default=True)
        names = [r for r in sorted(roles.ASSIGNABLE_ROLES)
                 if project_roles or r in roles.GLOBAL_ROLES]
        return {"roles": [{"role": r} for r in names]}

    async def describe_user_roles(self, context: RequestContext, params: Params) -> dict[str, Any]:
        held = await self._auth.get_roles(params.require("User"), params.get("Project"))
        return {"roles": [{"role": r} for r in held]}

    async def modify_user_role(self, context: RequestContext, params: Params) -> dict[str, Any]:
        user, role, project = params.require("User"), params.require("Role"), params.get("Project")
        if _operation(params) == "add":
            await self._auth.add_role(user, role, project)
        else:
            await self._auth.remove_role(user, role, project)
        return {"return": True}

    async def generate_x509_for_user(self, context: RequestContext,
                                     params: Params) -> dict[str, Any]:
        """A new certificate for the user, delivered inside a credentials zip."""
        user = await self._auth.get_user(params.require("Name"))
        project = await self._auth.get_project(params.get("Project") or user.id)
        zipped = await self.credentials(user, project)
        return user_dict(user, zipped)

    async def credentials(self, user: User, project: Project) -> bytes:
        """@return: a fresh credentials zip for C{user} in C{project}."""
        key_pem, cert_pem = await self._run_in_thread(
            self._ca.issue_user_certificate, user.id, project.id)
        return credentials_zip(user, project, self._endpoints, key_pem, cert_pem,
                               self._ca.ca_cert_pem)

    async def describe_hosts(self, context: RequestContext, params: Params) -> dict[str, Any]:
        hosts: dict[str, list[dict[str, Any]]] = {}
        for service in await self._services.list():
            hosts.setdefault(service.host, []).append({
                "binary": service.binary, "topic": service.topic, "zone": service.zone,
                "up": self._services.is_up(service, self._down_time),
                "disabled": service.disabled, "updatedAt": format_timestamp(service.updated_at),
                "capacity": dict(service.capacity) or None,
            })
        return {"hostSet": [{"name": host, "serviceSet": sorted(svcs, key=lambda s: s["binary"])}
                            for host, svcs in sorted(hosts.items())]}
