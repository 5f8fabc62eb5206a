"""
Small operations on ldaptor entries that work the same on every
C{IConnectedLDAPEntry}: the in-memory tree answers some calls at once and
others with Deferreds, a remote server always with Deferreds and with bytes.
The LDAP driver is built from these; they know nothing of users or projects.
"""

from __future__ import annotations

import functools
from typing import Any, Awaitable, Callable, TypeVar

from ldaptor.protocols.ldap import ldaperrors
from ldaptor.protocols.ldap.distinguishedname import DistinguishedName
from ldaptor.protocols.ldap.ldapclient import LDAPClientConnectionLostException
from ldaptor.protocols.ldap.ldapsyntax import DNNotPresentError
from twisted.internet import defer, error as neterror

from nova.auth import errors
from nova.auth import ldaplayout as L
from nova.exception import NovaError

T = TypeVar("T")

_UNAVAILABLE = (neterror.ConnectError, neterror.ConnectionLost, neterror.ConnectionDone,
                defer.CancelledError, LDAPClientConnectionLostException)


async def settle(result: Any) -> Any:
    """@return: C{result}, awaited when it is a Deferred (ldaptor mixes both)."""
    if isinstance(result, defer.Deferred):
        return await result
    return result


def directory_call(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """
    Decorate a coroutine so that what the LDAP layer raises leaves it as nova
    errors: L{errors.DirectoryUnavailable} for a lost or unreachable server,
    L{errors.DirectoryError} for any other LDAP failure.
    """

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return await fn(*args, **kwargs)
        except NovaError:
            raise
        except _UNAVAILABLE as e:
            raise errors.DirectoryUnavailable(f"The LDAP directory is unavailable: {e}") from e
        except (ldaperrors.LDAPException, DNNotPresentError) as e:
            raise errors.DirectoryError(f"Unexpected LDAP error: {e}") from e

    return wrapper


async def find(base: Any, dn: DistinguishedName) -> Any:
    """@return: the entry at C{dn} with all its attributes, or C{None}."""
    try:
        entry = await base.lookup(dn)
        await entry.fetch()
    except (ldaperrors.LDAPNoSuchObject, DNNotPresentError):
        return None
    return entry


async def search(under: Any, scope: int, *filters: Any) -> list[Any]:
    """@return: the entries below C{under} (in C{scope}) matching all C{filters}."""
    try:
        return list(await under.search(filterObject=L.all_of(*filters), scope=scope))
    except ldaperrors.LDAPNoSuchObject:
        return []


async def ensure_ou(base: Any, dn: DistinguishedName, name: str) -> Any:
    """@return: the organizational unit C{ou=name} below C{base}, created if missing."""
    found = await find(base, dn)
    if found is not None:
        return found
    try:
        await settle(base.addChild(
            L.rdn("ou", name), {"objectClass": list(L.OU_CLASSES), "ou": [name]}))
    except ldaperrors.LDAPEntryAlreadyExists:
        pass  # another process created it first: fine
    return await find(base, dn)


def replace_values(entry: Any, attribute: str, new_values: list[str]) -> None:
    """Replace an attribute's values, under the key object the entry already uses."""
    key: Any = attribute
    for existing in entry.keys():
        if L.text(existing).lower() == attribute.lower():
            key = existing
            break
    entry[key] = new_values


def member_value(group: Any, dn: DistinguishedName) -> Any:
    """@return: the C{member} value of C{group} naming C{dn}, as stored; or C{None}."""
    for value in group.get("member", ()):
        try:
            if DistinguishedName(L.text(value)) == dn:
                return value
        except Exception:
            continue  # a value nova did not write; it is not this member
    return None


async def add_member(group: Any, dn: DistinguishedName) -> None:
    """Add C{dn} to C{group}'s members and commit."""
    L.add_value(group, "member", dn.getText())
    await settle(group.commit())


async def remove_member(group: Any, dn: DistinguishedName, delete_if_empty: bool) -> None:
    """
    Remove C{dn} from C{group} and commit. A C{groupOfNames} cannot be empty:
    a group left without members is deleted, or, if not C{delete_if_empty},
    the removal is refused.

    @raise errors.DependencyViolation: C{dn} is the last member and the group must stay.
    """
    value = member_value(group, dn)
    if value is None:
        return
    if len(group.get("member", ())) <= 1:
        if not delete_if_empty:
            raise errors.DependencyViolation(
                f"{group.dn.getText()} would be left without members")
        await settle(group.delete())
        return
    try:
        group["member"].remove(value)
        await settle(group.commit())
    except ldaperrors.LDAPObjectClassViolation:
        # someone else emptied the group meanwhile: the server refuses an
        # empty groupOfNames, so drop the group as 2010 nova did
        if not delete_if_empty:
            raise
        group.undo()
        await settle(group.delete())
