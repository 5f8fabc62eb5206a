"""
The errors of the user directory: users, projects and roles.

They subclass the shared L{nova.exception} classes, so the API and RPC
boundaries render them without knowing this module; the codes follow EC2's
C{Invalid<Thing>.NotFound} / C{Invalid<Thing>.Duplicate} style.
"""

from __future__ import annotations

from nova.exception import ClientError, Duplicate, NotFound, NovaError


class UserNotFound(NotFound):
    """No user has that id."""

    code = "InvalidUser.NotFound"


class AccessKeyNotFound(NotFound):
    """No user has that access key."""

    code = "InvalidAccessKeyId"
    status = 403


class ProjectNotFound(NotFound):
    """No project has that id."""

    code = "InvalidProject.NotFound"


class NotProjectMember(NotFound):
    """The user is not a member of the project."""

    code = "InvalidProjectMember.NotFound"


class RoleNotFound(NotFound):
    """The user does not hold that role there."""

    code = "InvalidRole.NotFound"


class UserExists(Duplicate):
    """A user with that id already exists."""

    code = "InvalidUser.Duplicate"


class AccessKeyExists(Duplicate):
    """Another user already has that access key."""

    code = "InvalidAccessKey.Duplicate"


class ProjectExists(Duplicate):
    """A project with that id already exists."""

    code = "InvalidProject.Duplicate"


class AlreadyProjectMember(Duplicate):
    """The user is already a member of the project."""

    code = "InvalidProjectMember.Duplicate"


class RoleExists(Duplicate):
    """The user already holds that role there."""

    code = "InvalidRole.Duplicate"


class DependencyViolation(ClientError):
    """
    The change would leave the directory inconsistent, e.g. removing a
    project's manager from it, or deleting a user who still manages a project.
    """

    code = "DependencyViolation"


class DirectoryUnavailable(NovaError):
    """The LDAP directory cannot be reached (or its file cannot be written)."""

    code = "ServiceUnavailable"
    status = 503


class DirectoryError(NovaError):
    """The LDAP directory answered in a way nova did not expect."""

    code = "InternalError"
    status = 500
