"""
The records of the user directory and the rules their names follow.

Identifiers end up in LDAP distinguished names, in search filters, in Redis
keys and in file names, so they are held to a conservative alphabet here,
before anything else sees them; the LDAP layer escapes them anyway.
"""

from __future__ import annotations

import re

import attr

from nova.exception import InvalidParameterValue

#: user and project ids: a letter or digit, then letters, digits, C{_ . -}
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: access keys also travel as C{access:project} and inside SigV4 credential
#: scopes (C{access/date/region/...}), so C{:} and C{/} must never appear
_ACCESS_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
#: secret keys: printable ASCII without blanks
_SECRET = re.compile(r"[\x21-\x7e]{1,128}")
_MAX_DESCRIPTION = 255


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class User:
    """
    A user of the cloud.

    @ivar id: the LDAP C{uid}; also the name of the user's default project.
    @ivar name: the display name (LDAP C{cn}); equal to C{id} for users nova creates.
    @ivar access: the access key (C{AWSAccessKeyId}).
    @ivar secret: the secret key requests are signed with.
    @ivar admin: the user is a cloud administrator (C{isNovaAdmin}).
    """

    id: str
    name: str
    access: str
    secret: str = attr.ib(repr=False)
    admin: bool = False


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class Project:
    """
    A project: the unit that owns instances, volumes, addresses and quotas.

    @ivar id: the LDAP C{cn}.
    @ivar name: equal to C{id} for projects nova creates.
    @ivar description: free text.
    @ivar project_manager_id: the uid of the project's manager (C{owner}).
    @ivar member_ids: the uids of the members, sorted; the manager is always one.
    """

    id: str
    name: str
    description: str
    project_manager_id: str
    member_ids: tuple[str, ...] = ()

    def has_member(self, uid: str) -> bool:
        """@return: whether C{uid} is a member (ids compare case-insensitively, as in LDAP)."""
        wanted = uid.lower()
        return any(member.lower() == wanted for member in self.member_ids)

    def is_manager(self, uid: str) -> bool:
        """@return: whether C{uid} manages this project."""
        return self.project_manager_id.lower() == uid.lower()


def validate_id(value: object, what: str = "id") -> str:
    """
    Check a user or project id.

    @param value: the candidate.
    @param what: how to name it in the error (C{"user id"}, C{"project id"}).
    @return: C{value}, unchanged.
    @raise InvalidParameterValue: it is not 1-64 characters of
        C{A-Z a-z 0-9 _ . -} starting with a letter or digit.
    """
    if not isinstance(value, str) or _ID.fullmatch(value) is None:
        raise InvalidParameterValue(
            f"Invalid {what} {value!r}: use 1-64 letters, digits, '_', '.' or '-',"
            " starting with a letter or digit")
    return value


def validate_access_key(value: object) -> str:
    """
    @return: C{value}, a well-formed access key.
    @raise InvalidParameterValue: it is empty, too long, or has characters
        other than C{A-Z a-z 0-9 _ . -}.
    """
    if not isinstance(value, str) or _ACCESS_KEY.fullmatch(value) is None:
        raise InvalidParameterValue(
            f"Invalid access key {value!r}: use 1-128 letters, digits, '_', '.' or '-'")
    return value


def validate_secret(value: object) -> str:
    """
    @return: C{value}, a well-formed secret key.
    @raise InvalidParameterValue: it is empty, longer than 128 characters, or
        not printable ASCII without blanks.
    """
    if not isinstance(value, str) or _SECRET.fullmatch(value) is None:
        raise InvalidParameterValue(
            "Invalid secret key: use 1-128 printable ASCII characters without blanks")
    return value


def validate_description(value: object) -> str:
    """
    @return: C{value}, a description LDAP accepts (non-empty, no NUL, at most
        255 characters).
    @raise InvalidParameterValue: otherwise.
    """
    if (not isinstance(value, str) or not value or "\0" in value
            or len(value) > _MAX_DESCRIPTION):
        raise InvalidParameterValue(
            f"Invalid description: use 1-{_MAX_DESCRIPTION} characters without NUL")
    return value
