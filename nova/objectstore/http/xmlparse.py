"""
The XML request bodies S3 takes: DeleteObjects' C{Delete},
CompleteMultipartUpload's part list, CreateBucket's configuration and an
C{AccessControlPolicy}. Namespaces are ignored (clients send them or not);
documents with a DOCTYPE are refused, so no entity is ever expanded.
"""

from __future__ import annotations

from xml.etree import ElementTree

from nova.objectstore.errors import InvalidArgument, MalformedACLError, MalformedXML
from nova.objectstore.http.errors import S3NotImplemented
from nova.objectstore.http.xmlrender import ALL_USERS, AUTHENTICATED_USERS, CANNED_GRANTS

#: most keys one DeleteObjects request may name (S3's limit)
MAX_DELETE_KEYS = 1000
_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_document(body: bytes, error: type = MalformedXML) -> ElementTree.Element:
    """
    @return: the root element of C{body}, with namespaces stripped from tags.
    @raise MalformedXML: (or C{error}) not well-formed, or it has a DOCTYPE.
    """
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise error("DOCTYPE and ENTITY declarations are not accepted.")
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        raise error() from None
    for element in root.iter():
        element.tag = _local(element.tag)
    return root


def _text(element: ElementTree.Element, name: str) -> str | None:
    child = element.find(name)
    if child is None:
        return None
    return child.text or ""


def parse_delete(body: bytes) -> tuple[bool, list[str]]:
    """
    @return: the quiet flag and the keys of a C{<Delete>} document.
    @raise MalformedXML: not a C{Delete} document, no keys, or more than
        L{MAX_DELETE_KEYS}.
    """
    root = parse_document(body)
    if root.tag != "Delete":
        raise MalformedXML()
    quiet = (_text(root, "Quiet") or "false").strip().lower() == "true"
    keys = []
    for entry in root.findall("Object"):
        key = _text(entry, "Key")
        if key is None:
            raise MalformedXML()
        keys.append(key)
    if not keys or len(keys) > MAX_DELETE_KEYS:
        raise MalformedXML()
    return quiet, keys


def parse_complete(body: bytes) -> list[tuple[int, str]]:
    """
    @return: the C{(part number, etag)} pairs of a C{CompleteMultipartUpload}
        document, in the order given, etags without quotes.
    @raise MalformedXML: not such a document, or without parts.
    @raise InvalidArgument: a part number that is not a number.
    """
    root = parse_document(body)
    if root.tag != "CompleteMultipartUpload":
        raise MalformedXML()
    parts = []
    for entry in root.findall("Part"):
        number, etag = _text(entry, "PartNumber"), _text(entry, "ETag")
        if number is None or etag is None:
            raise MalformedXML()
        try:
            part_number = int(number.strip())
        except ValueError:
            raise InvalidArgument("Part number must be an integer between 1 and 10000, "
                                  "inclusive") from None
        parts.append((part_number, etag.strip().strip('"')))
    if not parts:
        raise MalformedXML("The XML you provided was not well-formed or did not validate "
                           "against our published schema: no parts.")
    return parts


def parse_create_bucket(body: bytes) -> str | None:
    """
    @return: the C{LocationConstraint} of a C{CreateBucketConfiguration}
        (C{None} when the body is empty or has none).
    @raise MalformedXML: not such a document.
    """
    if not body.strip():
        return None
    root = parse_document(body)
    if root.tag != "CreateBucketConfiguration":
        raise MalformedXML()
    constraint = _text(root, "LocationConstraint")
    return constraint.strip() if constraint is not None else None


def parse_acl(body: bytes, owner_id: str) -> str:
    """
    Read an C{AccessControlPolicy} that says what a canned ACL says.

    @param owner_id: the resource owner's canonical id.
    @return: the canned ACL it is equivalent to.
    @raise MalformedACLError: not such a document.
    @raise S3NotImplemented: grants that no canned ACL makes (to other
        accounts, or without the owner's FULL_CONTROL).
    """
    root = parse_document(body, MalformedACLError)
    if root.tag != "AccessControlPolicy" or root.find("AccessControlList") is None:
        raise MalformedACLError()
    owner_seen = False
    groups: set[tuple[str, str]] = set()
    for grant in root.find("AccessControlList").findall("Grant"):  # type: ignore[union-attr]
        grantee, permission = grant.find("Grantee"), _text(grant, "Permission")
        if grantee is None or permission is None:
            raise MalformedACLError()
        permission = permission.strip()
        kind = grantee.get(_XSI_TYPE) or grantee.get("type") or ""
        uri = (_text(grantee, "URI") or "").strip()
        user_id = (_text(grantee, "ID") or "").strip()
        if kind == "Group" or uri:
            if uri not in (ALL_USERS, AUTHENTICATED_USERS):
                raise S3NotImplemented(f"Grants to the group {uri!r} are not supported.")
            groups.add((uri, permission))
        elif user_id == owner_id and permission == "FULL_CONTROL":
            owner_seen = True
        else:
            raise S3NotImplemented("Only canned ACLs are supported: grants to other accounts "
                                   "are not.")
    if not owner_seen:
        raise S3NotImplemented("Only canned ACLs are supported: the owner must keep "
                               "FULL_CONTROL.")
    for name, grants in CANNED_GRANTS.items():
        if set(grants) == groups:
            return name
    raise S3NotImplemented("Only canned ACLs are supported: these grants match none.")


__all__ = ["MAX_DELETE_KEYS", "parse_acl", "parse_complete", "parse_create_bucket",
           "parse_delete", "parse_document"]
