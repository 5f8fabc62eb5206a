"""
Launch permission of images (EC2 Modify/Describe/ResetImageAttribute with
C{launchPermission}), as pure functions of an L{Image} record.

An image may be launched (and seen) by its owner's project, by every project
when it is public (launch permission for group C{all}), by the projects its
launch permission names, and by admins. Only the owner (or an admin) may read
or change the permission; another project that can see the image gets
C{AuthFailure}, one that cannot gets C{InvalidAMIID.NotFound}, as in AWS.

L{modify} and L{reset} return new records; store them with
L{nova.image.repository.ImageRepository.change}, which runs them inside a
transaction::

    await repo.change(image_id, lambda image: permissions.modify(
        image, project_id, is_admin, "add", groups=["all"]))
"""

from __future__ import annotations

import re
from typing import Any, Iterable

import attr

from nova.exception import AuthFailure, InvalidParameterValue, MissingParameter
from nova.image.records import (Image, InvalidAMIIDNotFound, InvalidAMIIDUnavailable,
                                 string_list)

ADD = "add"
REMOVE = "remove"
OPERATIONS = frozenset({ADD, REMOVE})
#: the only launch permission group EC2 has
GROUP_ALL = "all"

#: a project id as a launch permission user: no blanks, no control characters
_USER = re.compile(r"[^\s\x00-\x1f\x7f]{1,255}\Z")


class InvalidAMIAttributeItemValue(InvalidParameterValue):
    """A launch permission group or user id that is not valid."""

    code = "InvalidAMIAttributeItemValue"


class ImageAuthFailure(AuthFailure):
    """The caller may see the image but not read or change its permissions."""


def can_launch(image: Image, project_id: str, is_admin: bool) -> bool:
    """
    @return: whether C{project_id} may launch (and see) C{image}.
    """
    return (is_admin or image.is_public or image.owner_project_id == project_id
            or project_id in image.launch_permission_users)


def check_launchable(image: Image, project_id: str, is_admin: bool) -> Image:
    """
    What RunInstances checks of its image, kernel and ramdisk.

    @return: C{image}.
    @raise InvalidAMIIDNotFound: the project may not launch it (AWS does not
        reveal that it exists).
    @raise InvalidAMIIDUnavailable: not available (pending, failed ...).
    """
    if not can_launch(image, project_id, is_admin):
        raise InvalidAMIIDNotFound(f"The image id '[{image.image_id}]' does not exist")
    if not image.is_available:
        raise InvalidAMIIDUnavailable(
            f"The image '{image.image_id}' is {image.state} and cannot be launched")
    return image


def check_owner(image: Image, project_id: str, is_admin: bool) -> Image:
    """
    What DeregisterImage and the attribute actions check.

    @return: C{image}.
    @raise InvalidAMIIDNotFound: the project may not even see it.
    @raise ImageAuthFailure: it may see it, but it is another project's.
    """
    if is_admin or image.owner_project_id == project_id:
        return image
    if can_launch(image, project_id, is_admin):
        raise ImageAuthFailure(f"Not authorized for image:{image.image_id}")
    raise InvalidAMIIDNotFound(f"The image id '[{image.image_id}]' does not exist")


def _items(what: str, values: Iterable[str] | None) -> list[str]:
    return string_list(values, lambda v: InvalidAMIAttributeItemValue(
        f"Invalid attribute item value \"{v!r}\" for {what} item type."))


def modify(image: Image, project_id: str, is_admin: bool, operation: str,
           groups: Iterable[str] | None = (), user_ids: Iterable[str] | None = ()) -> Image:
    """
    ModifyImageAttribute C{launchPermission}: add or remove group C{all}
    (the public flag) and project ids. Removing what is not there, or adding
    what is, changes nothing (as in AWS).

    @param operation: C{add} or C{remove}.
    @param groups: only C{all}.
    @param user_ids: project ids.
    @return: the new record.
    @raise InvalidParameterValue: an unknown operation.
    @raise MissingParameter: neither a group nor a user.
    @raise InvalidAMIAttributeItemValue: a group other than C{all}, or a
        malformed user id.
    @raise ImageAuthFailure: another project's image.
    @raise InvalidAMIIDNotFound: an image the project may not see.
    """
    check_owner(image, project_id, is_admin)
    if operation not in OPERATIONS:
        raise InvalidParameterValue(
            f"Invalid value '{operation}' for OperationType: expected add or remove")
    group_list = _items("group", groups)
    users = _items("userId", user_ids)
    if not group_list and not users:
        raise MissingParameter("No launch permission group or user id was given")
    for g in group_list:
        if g != GROUP_ALL:
            raise InvalidAMIAttributeItemValue(
                f"Invalid attribute item value \"{g}\" for group item type.")
    for u in users:
        if not _USER.match(u):
            raise InvalidAMIAttributeItemValue(
                f"Invalid attribute item value \"{u}\" for userId item type.")
    changes: dict[str, Any] = {}
    if group_list:
        changes["is_public"] = operation == ADD
    if users:
        current = set(image.launch_permission_users)
        changes["launch_permission_users"] = (
            current | set(users) if operation == ADD else current - set(users))
    return attr.evolve(image, **changes)


def reset(image: Image, project_id: str, is_admin: bool) -> Image:
    """
    ResetImageAttribute C{launchPermission}: private, no users.

    @return: the new record.
    @raise ImageAuthFailure: another project's image.
    @raise InvalidAMIIDNotFound: an image the project may not see.
    """
    check_owner(image, project_id, is_admin)
    return attr.evolve(image, is_public=False, launch_permission_users=())


def describe(image: Image, project_id: str, is_admin: bool) -> dict[str, Any]:
    """
    DescribeImageAttribute C{launchPermission}, in the response's shape.

    @return: C{{"imageId": ..., "launchPermission": [{"group": "all"},
        {"userId": ...}, ...]}}, the group first, then users sorted.
    @raise ImageAuthFailure: another project's image.
    @raise InvalidAMIIDNotFound: an image the project may not see.
    """
    check_owner(image, project_id, is_admin)
    items: list[dict[str, str]] = [{"group": GROUP_ALL}] if image.is_public else []
    items.extend({"userId": u} for u in image.launch_permission_users)
    return {"imageId": image.image_id, "launchPermission": items}
