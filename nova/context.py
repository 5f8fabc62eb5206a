"""The request context: who asks, on behalf of which project, with which roles."""

from __future__ import annotations

import uuid
from typing import Any

import attr


def new_request_id() -> str:
    """@return: a fresh request id, as EC2 prints them (a UUID)."""
    return str(uuid.uuid4())


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class RequestContext:
    """
    Carried with every API request and RPC message.

    @ivar user_id: the LDAP uid of the caller, or C{None} for the system itself.
    @ivar project_id: the project the request acts in.
    @ivar is_admin: the caller is a superuser (admin flag or cloudadmin role).
    @ivar roles: the roles the caller holds in C{project_id} (global ones included).
    """

    user_id: str | None = None
    project_id: str | None = None
    is_admin: bool = False
    roles: tuple[str, ...] = ()
    request_id: str = attr.Factory(new_request_id)

    @classmethod
    def system(cls) -> "RequestContext":
        """@return: the context nova's own services act in: an admin with no user."""
        return cls(is_admin=True)

    def to_dict(self) -> dict[str, Any]:
        """@return: a JSON-safe dict, the form the context travels in over RPC."""
        return {
            "user_id": self.user_id,
            "project_id": self.project_id,
            "is_admin": self.is_admin,
            "roles": list(self.roles),
            "request_id": self.request_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "RequestContext":
        """@return: the context a L{to_dict} result stands for."""
        data = data or {}
        return cls(
            user_id=data.get("user_id"),
            project_id=data.get("project_id"),
            is_admin=bool(data.get("is_admin", False)),
            roles=tuple(data.get("roles") or ()),
            request_id=data.get("request_id") or new_request_id(),
        )
