"""
Where nova's objects live in the directory tree and what their entries hold.

The layout and schema are 2010 nova's::

    <base>
      ou=Users
        uid=<user>          inetOrgPerson + novaUser (accessKey, secretKey, isNovaAdmin)
      ou=Groups
        cn=cloudadmins      groupOfNames: global role groups (see roles.GLOBAL_GROUP_NAMES)
        cn=<project>        groupOfNames: owner = manager DN, member = user DNs
          cn=<role>         groupOfNames: the project's role group

DNs are built from parsed parts (never by pasting strings) and rendered with
ldaptor's RFC 4514 escaping; filters are built as ldaptor filter objects and
travel as BER, so no value is ever parsed as filter syntax.
"""

from __future__ import annotations

from typing import Any, Iterable

from ldaptor.protocols import pureldap
from ldaptor.protocols.ldap.distinguishedname import (
    DistinguishedName,
    LDAPAttributeTypeAndValue,
    RelativeDistinguishedName,
)

from nova.auth.models import Project, User
from nova.auth.roles import GLOBAL_GROUP_NAMES

USER_CLASSES = ("top", "person", "organizationalPerson", "inetOrgPerson", "novaUser")
GROUP_CLASSES = ("top", "groupOfNames")
OU_CLASSES = ("top", "organizationalUnit")


def rdn(attribute: str, value: str) -> RelativeDistinguishedName:
    """@return: the single-valued RDN C{attribute=value} (escaped when rendered)."""
    return RelativeDistinguishedName(attributeTypesAndValues=[
        LDAPAttributeTypeAndValue(attributeType=attribute, value=value)])


def child_dn(parent: DistinguishedName, attribute: str, value: str) -> DistinguishedName:
    """@return: the DN of C{attribute=value} directly below C{parent}."""
    return DistinguishedName(listOfRDNs=(rdn(attribute, value),) + tuple(parent.split()))


def equals(attribute: str, value: str) -> pureldap.LDAPFilter_equalityMatch:
    """@return: the filter C{(attribute=value)}, with C{value} taken literally."""
    return pureldap.LDAPFilter_equalityMatch(
        attributeDesc=pureldap.LDAPAttributeDescription(attribute),
        assertionValue=pureldap.LDAPAssertionValue(value))


def all_of(*filters: Any) -> pureldap.LDAPFilter_and:
    """@return: the conjunction of C{filters}."""
    return pureldap.LDAPFilter_and(list(filters))


def text(value: str | bytes) -> str:
    """@return: an attribute value as text (remote servers hand out bytes)."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


def values(entry: Any, attribute: str) -> list[str]:
    """@return: all values of C{attribute} in C{entry}, as text; C{[]} when absent."""
    return [text(v) for v in entry.get(attribute, ())]


def first(entry: Any, attribute: str, default: str = "") -> str:
    """@return: the (single) value of C{attribute}, or C{default}."""
    found = values(entry, attribute)
    return sorted(found)[0] if found else default


def add_value(entry: Any, attribute: str, value: str) -> None:
    """
    Add C{value} to C{attribute} (which exists), as bytes when the entry holds
    bytes: ldaptor sorts values and cannot compare text with bytes.
    """
    existing = entry[attribute]
    if any(isinstance(v, bytes) for v in existing):
        existing.add(value.encode("utf-8"))
    else:
        existing.add(value)


class DirectoryLayout:
    """
    The DNs of everything nova keeps below one base DN.

    @ivar base: the base DN (e.g. C{dc=nova,dc=local}).
    @ivar users: C{ou=Users,<base>}.
    @ivar groups: C{ou=Groups,<base>}.
    """

    def __init__(self, base: DistinguishedName | str) -> None:
        self.base = base if isinstance(base, DistinguishedName) else DistinguishedName(base)
        self.users = child_dn(self.base, "ou", "Users")
        self.groups = child_dn(self.base, "ou", "Groups")

    def user_dn(self, uid: str) -> DistinguishedName:
        """@return: C{uid=<uid>,ou=Users,<base>}."""
        return child_dn(self.users, "uid", uid)

    def project_dn(self, project_id: str) -> DistinguishedName:
        """@return: C{cn=<project>,ou=Groups,<base>}."""
        return child_dn(self.groups, "cn", project_id)

    def role_dn(self, role: str, project_id: str | None = None) -> DistinguishedName:
        """@return: the DN of the group holding C{role} globally or in C{project_id}."""
        if project_id is None:
            return child_dn(self.groups, "cn", GLOBAL_GROUP_NAMES[role])
        return child_dn(self.project_dn(project_id), "cn", role)

    def role_of_group(self, group_dn: DistinguishedName) -> str | None:
        """@return: the role a global role group's DN stands for, if it is one."""
        if group_dn.up() != self.groups:
            return None
        name = group_dn.split()[0].split()[0].value.lower()
        for role, group in GLOBAL_GROUP_NAMES.items():
            if group.lower() == name:
                return role
        return None

    def uid_of(self, dn: str | bytes | DistinguishedName) -> str | None:
        """@return: the uid a member DN names, or C{None} when it is not a nova user."""
        try:
            parsed = dn if isinstance(dn, DistinguishedName) else DistinguishedName(text(dn))
        except Exception:
            # a member value nova did not write (and cannot parse) names no nova user
            return None
        parts = parsed.split()
        if len(parts) < 1 or parsed.up() != self.users:
            return None
        pairs = parts[0].split()
        if len(pairs) != 1 or pairs[0].attributeType.lower() != "uid":
            return None
        return pairs[0].value


def user_attributes(uid: str, access: str, secret: str, admin: bool) -> dict[str, list[str]]:
    """@return: the attributes of a new user entry."""
    return {
        "objectClass": list(USER_CLASSES),
        "uid": [uid],
        "cn": [uid],
        "sn": [uid],
        "accessKey": [access],
        "secretKey": [secret],
        "isNovaAdmin": [ldap_bool(admin)],
    }


def group_attributes(name: str, description: str, members: Iterable[DistinguishedName],
                     owner: DistinguishedName | None = None) -> dict[str, list[str]]:
    """@return: the attributes of a new C{groupOfNames} (at least one member)."""
    attributes = {
        "objectClass": list(GROUP_CLASSES),
        "cn": [name],
        "description": [description],
        "member": sorted({m.getText() for m in members}),
    }
    if owner is not None:
        attributes["owner"] = [owner.getText()]
    return attributes


def ldap_bool(flag: bool) -> str:
    """@return: C{flag} in LDAP Boolean syntax."""
    return "TRUE" if flag else "FALSE"


def user_from_entry(entry: Any) -> User:
    """@return: the L{User} a C{novaUser} entry describes."""
    uid = first(entry, "uid") or entry.dn.split()[0].split()[0].value
    return User(
        id=uid,
        name=first(entry, "cn", uid),
        access=first(entry, "accessKey"),
        secret=first(entry, "secretKey"),
        admin=first(entry, "isNovaAdmin").upper() == "TRUE",
    )


def project_from_entry(entry: Any, layout: DirectoryLayout) -> Project:
    """@return: the L{Project} a project group entry describes."""
    pid = first(entry, "cn") or entry.dn.split()[0].split()[0].value
    members = sorted({uid for uid in (layout.uid_of(m) for m in values(entry, "member"))
                      if uid is not None})
    return Project(
        id=pid,
        name=pid,
        description=first(entry, "description", pid),
        project_manager_id=layout.uid_of(first(entry, "owner")) or "",
        member_ids=tuple(members),
    )
