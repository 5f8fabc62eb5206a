"""
Roles, and which roles may perform which API action.

As in 2010 nova: C{cloudadmin}, C{itsec}, C{sysadmin}, C{netadmin} and
C{developer} are stored as LDAP groups; C{projectmanager} is implicit (it means
"is the project's manager"). C{cloudadmin} and C{itsec} are global: holding
them anywhere means holding them in every project. Any other role counts in a
project only when the user holds it both globally and in that project.
Superusers (the user's admin flag, or C{cloudadmin}) may do everything.

The action table is data (L{ACTION_ROLES}); L{is_authorized} reads it.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from nova.exception import InvalidParameterValue

CLOUDADMIN = "cloudadmin"
ITSEC = "itsec"
SYSADMIN = "sysadmin"
NETADMIN = "netadmin"
DEVELOPER = "developer"
PROJECTMANAGER = "projectmanager"

#: every role name, in the order roles are reported
ALL_ROLES: tuple[str, ...] = (CLOUDADMIN, ITSEC, SYSADMIN, NETADMIN, DEVELOPER, PROJECTMANAGER)
#: the roles stored as group membership (C{projectmanager} is derived)
ASSIGNABLE_ROLES: frozenset[str] = frozenset(ALL_ROLES) - {PROJECTMANAGER}
#: held anywhere means held in every project; they cannot be given per project
GLOBAL_ROLES: frozenset[str] = frozenset({CLOUDADMIN, ITSEC})
#: holders bypass every authorization check
SUPERUSER_ROLES: frozenset[str] = frozenset({CLOUDADMIN})

#: the C{cn} of each role's group: global groups are C{cn=<this>,ou=Groups,<base>}
#: (2010 nova's flag defaults); per-project groups are
#: C{cn=<role>,cn=<project>,ou=Groups,<base>}
GLOBAL_GROUP_NAMES: Mapping[str, str] = {
    CLOUDADMIN: "cloudadmins",
    ITSEC: "itsec",
    SYSADMIN: "sysadmins",
    NETADMIN: "netadmins",
    DEVELOPER: "developers",
}

#: in L{ACTION_ROLES}: any authenticated member of the project
ALL = "all"
#: in L{ACTION_ROLES}: nobody but superusers
NONE = "none"

_EVERYONE = (ALL,)
_NETWORK = (NETADMIN,)
_OPERATORS = (PROJECTMANAGER, SYSADMIN)
_SUPERUSER = (NONE,)

_EC2_ACTIONS: dict[str, tuple[str, ...]] = {
    # reading is open to every member of the project
    "DescribeAvailabilityZones": _EVERYONE,
    "DescribeRegions": _EVERYONE,
    "DescribeInstances": _EVERYONE,
    "DescribeInstanceAttribute": _EVERYONE,
    "DescribeVolumes": _EVERYONE,
    "DescribeSnapshots": _EVERYONE,
    "DescribeImages": _EVERYONE,
    "DescribeImageAttribute": _EVERYONE,
    "DescribeKeyPairs": _EVERYONE,
    "DescribeSecurityGroups": _EVERYONE,
    "DescribeAddresses": _EVERYONE,
    "DescribeTags": _EVERYONE,
    # key pairs belong to the user
    "CreateKeyPair": _EVERYONE,
    "ImportKeyPair": _EVERYONE,
    "DeleteKeyPair": _EVERYONE,
    # security groups and addresses: network administrators
    "CreateSecurityGroup": _NETWORK,
    "DeleteSecurityGroup": _NETWORK,
    "AuthorizeSecurityGroupIngress": _NETWORK,
    "RevokeSecurityGroupIngress": _NETWORK,
    "AllocateAddress": _NETWORK,
    "ReleaseAddress": _NETWORK,
    "AssociateAddress": _NETWORK,
    "DisassociateAddress": _NETWORK,
    # instances, console, volumes, images: the manager or a system administrator
    "RunInstances": _OPERATORS,
    "TerminateInstances": _OPERATORS,
    "RebootInstances": _OPERATORS,
    "StartInstances": _OPERATORS,
    "StopInstances": _OPERATORS,
    "UpdateInstance": _OPERATORS,
    "ModifyInstanceAttribute": _OPERATORS,
    "GetConsoleOutput": _OPERATORS,
    "CreateVolume": _OPERATORS,
    "DeleteVolume": _OPERATORS,
    "AttachVolume": _OPERATORS,
    "DetachVolume": _OPERATORS,
    "UpdateVolume": _OPERATORS,
    "CreateSnapshot": _OPERATORS,
    "DeleteSnapshot": _OPERATORS,
    "RegisterImage": _OPERATORS,
    "DeregisterImage": _OPERATORS,
    "ModifyImageAttribute": _OPERATORS,
    "ResetImageAttribute": _OPERATORS,
    "UpdateImage": _OPERATORS,
    "CreateTags": _OPERATORS,
    "DeleteTags": _OPERATORS,
}

#: the admin API (C{/services/Admin}): superusers only, listed for the record
_ADMIN_ACTIONS: dict[str, tuple[str, ...]] = {
    name: _SUPERUSER
    for name in (
        "DescribeUser", "DescribeUsers", "RegisterUser", "DeregisterUser",
        "ModifyUser", "GenerateX509ForUser",
        "DescribeRoles", "DescribeUserRoles", "ModifyUserRole",
        "DescribeProject", "DescribeProjects", "RegisterProject", "ModifyProject",
        "DeregisterProject", "DescribeProjectMembers", "ModifyProjectMember",
        "DescribeHosts", "DescribeHost", "DescribeServices",
    )
}

#: action name -> the roles allowed to perform it (L{ALL}: everyone; L{NONE}:
#: superusers only). Actions not listed are superuser-only.
ACTION_ROLES: Mapping[str, tuple[str, ...]] = {**_EC2_ACTIONS, **_ADMIN_ACTIONS}


def allowed_roles(action: str) -> tuple[str, ...]:
    """@return: the roles that may perform C{action}; C{(NONE,)} when unlisted."""
    return ACTION_ROLES.get(action, _SUPERUSER)


def is_authorized(action: str, user_roles: Iterable[str], is_superuser: bool) -> bool:
    """
    Decide whether a caller may perform an action.

    @param action: the API action name, e.g. C{RunInstances}.
    @param user_roles: the roles the caller effectively holds in the project
        of the request (see L{nova.auth.manager.AuthManager.roles_in}).
    @param is_superuser: the caller has the admin flag or the cloudadmin role.
    @return: C{True} when allowed. Superusers are always allowed; unknown
        actions are allowed to superusers only.
    """
    if is_superuser:
        return True
    allowed = allowed_roles(action)
    if ALL in allowed:
        return True
    held = set(user_roles)
    return any(role in held for role in allowed if role != NONE)


def validate_role(role: object, project_scoped: bool) -> str:
    """
    Check that a role can be stored (granted or revoked).

    @param role: the role name.
    @param project_scoped: the role is to be held in a project (not globally).
    @return: C{role}.
    @raise InvalidParameterValue: it is not an assignable role,
        or it is global-only and a project was named.
    """
    if role == PROJECTMANAGER:
        raise InvalidParameterValue(
            "projectmanager is not granted: it means being the project's manager")
    if not isinstance(role, str) or role not in ASSIGNABLE_ROLES:
        raise InvalidParameterValue(
            f"Unknown role {role!r}; roles are {', '.join(sorted(ASSIGNABLE_ROLES))}")
    if project_scoped and role in GLOBAL_ROLES:
        raise InvalidParameterValue(f"The {role} role is global only")
    return role
