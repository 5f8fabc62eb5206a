"""
The metadata service's HTTP face: the tree 2010 nova served (and cloud-init
and the tiny image read), rendered from an L{InstanceMetadata}.

    /                                   the versions, one a line
    /<version>/                         meta-data/ and (when there is some) user-data
    /<version>/user-data                the decoded bytes, application/octet-stream
    /<version>/meta-data/               the keys; directories end in "/"
    /<version>/meta-data/<key>[/...]    a value, or a directory's listing

Every text answer is C{text/plain} without a trailing newline, as EC2's.
Directories answer with or without their trailing slash. Only GET and HEAD
(405 otherwise). Anything unknown, and any caller that is not an instance,
gets 404: never another instance's data.

Who is asking is decided by an C{identify} function given to
L{MetadataResource}: L{peer_address} (the TCP listener: the connection's
source, any C{X-Forwarded-For} ignored) or L{forwarded_address} (the unix
socket the network hosts' proxies use: their C{X-Forwarded-For}, trusted
there only).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Mapping, Protocol, Union

import attr
from twisted.web import resource, server

from nova.api.http import bounded_request_factory, respond
from nova.api.metadata.data import InstanceMetadata, canonical_address
from nova.exception import ClientError

#: the versions 2010 nova served, in its order
VERSIONS = ("1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10", "2007-12-15",
            "2008-02-01", "2008-09-01", "2009-04-04", "latest")

TEXT = "text/plain"
BINARY = "application/octet-stream"

#: what a request to the metadata service may carry as a body (none is expected)
MAX_REQUEST_BODY = 16 * 1024


class BadForwardedFor(ClientError):
    """A proxied request without exactly one IPv4 address in C{X-Forwarded-For}."""


class MetadataLookup(Protocol):
    """What the resource reads metadata from (L{nova.api.metadata.data.MetadataSource})."""

    def for_address(self, address: str) -> Awaitable[InstanceMetadata | None]:
        ...  # pragma: no cover


@attr.s(frozen=True, auto_attribs=True)
class Directory:
    """
    A listed node of the tree.

    @ivar entries: child name to child, in listing order.
    @ivar labels: how a child is listed when not by its name (C{public-keys/}
        lists C{0=<key name>}).
    """

    entries: Mapping[str, "Node"]
    labels: Mapping[str, str] = attr.Factory(dict)

    def listing(self) -> str:
        """@return: one line per child; directories end in C{/} unless labelled."""
        lines = []
        for name, child in self.entries.items():
            label = self.labels.get(name)
            if label is None:
                label = name + "/" if isinstance(child, Directory) else name
            lines.append(label)
        return "\n".join(lines)


#: a directory, a text value or (user-data) bytes
Node = Union[Directory, str, bytes]


def meta_data_tree(md: InstanceMetadata) -> Directory:
    """@return: C{meta-data/} of one instance."""
    keys: dict[str, Node] = {
        "ami-id": md.image_id,
        "ami-launch-index": str(md.launch_index),
        "ami-manifest-path": md.manifest_path,
        "block-device-mapping": Directory(dict(md.block_devices)),
        "hostname": md.hostname,
        "instance-action": "none",
        "instance-id": md.instance_id,
        "instance-type": md.instance_type,
        "local-hostname": md.hostname,
        "local-ipv4": md.local_ipv4,
        "placement": Directory({"availability-zone": md.availability_zone}),
        "reservation-id": md.reservation_id,
        "security-groups": "\n".join(md.security_groups),
    }
    if md.kernel_id:
        keys["kernel-id"] = md.kernel_id
    if md.ramdisk_id:
        keys["ramdisk-id"] = md.ramdisk_id
    if md.public_ipv4:
        # no DNS serves a public name here: the address is its own name
        keys["public-hostname"] = md.public_ipv4
        keys["public-ipv4"] = md.public_ipv4
    if md.public_keys:
        keys["public-keys"] = Directory(
            {str(i): Directory({"openssh-key": key}) for i, (_, key) in enumerate(md.public_keys)},
            {str(i): f"{i}={name}" for i, (name, _) in enumerate(md.public_keys)})
    return Directory(dict(sorted(keys.items())))


def version_tree(md: InstanceMetadata) -> Directory:
    """@return: what C{/<version>/} holds for one instance."""
    entries: dict[str, Node] = {"meta-data": meta_data_tree(md)}
    if md.user_data is not None:
        entries["user-data"] = md.user_data
    return Directory(entries)


def lookup(root: Directory, segments: list[str]) -> Node | None:
    """
    @param segments: the path below C{root}; a last empty segment is a
        trailing slash (allowed on directories and values alike).
    @return: the node, or C{None} when there is none.
    """
    if segments and segments[-1] == "":
        segments = segments[:-1]
    node: Node = root
    for segment in segments:
        if not isinstance(node, Directory) or segment not in node.entries:
            return None
        node = node.entries[segment]
    return node


def peer_address(request: server.Request) -> str | None:
    """@return: the TCP peer's IPv4 address (what the TCP listener trusts), or C{None}."""
    host = getattr(request.getClientAddress(), "host", None)
    return canonical_address(host) if isinstance(host, str) else None


def forwarded_address(request: server.Request) -> str:
    """
    @return: the address a network host's proxy put in C{X-Forwarded-For}
        (what the unix socket trusts).
    @raise BadForwardedFor: no such header, several, or not one IPv4 address.
    """
    values = request.requestHeaders.getRawHeaders(b"x-forwarded-for") or []
    if len(values) != 1:
        raise BadForwardedFor("a proxied request needs exactly one X-Forwarded-For")
    address = canonical_address(values[0].decode("latin-1"))
    if address is None or "," in values[0].decode("latin-1"):
        raise BadForwardedFor("X-Forwarded-For must be one IPv4 address")
    return address


class MetadataResource(resource.Resource):
    """
    The whole metadata tree, answering for whichever instance C{identify}
    says is asking.
    """

    isLeaf = True

    def __init__(self, source: MetadataLookup,
                 identify: Callable[[server.Request], str | None]) -> None:
        """
        @param source: reads an instance's metadata by address.
        @param identify: the caller's address (or C{None}: unknown); may
            raise a L{ClientError} (400) for a malformed claim.
        """
        super().__init__()
        self._source = source
        self._identify = identify

    def render(self, request: server.Request) -> Any:
        if request.method not in (b"GET", b"HEAD"):
            request.setResponseCode(405)
            request.setHeader(b"allow", b"GET, HEAD")
            request.setHeader(b"content-type", TEXT.encode())
            return b"Method Not Allowed"
        return respond(request, lambda: self.answer(request))

    async def answer(self, request: server.Request) -> tuple[int, bytes, str]:
        """@return: C{(status, body, content type)} for C{request}."""
        try:
            segments = [s.decode("utf-8") for s in request.postpath]
        except UnicodeDecodeError:
            return _not_found()
        if segments in ([], [""]):
            return 200, "\n".join(VERSIONS).encode(), TEXT
        if segments[0] not in VERSIONS:
            return _not_found()
        try:
            address = self._identify(request)
        except ClientError as e:
            return 400, str(e).encode(), TEXT
        found = await self._source.for_address(address) if address is not None else None
        if found is None:
            return _not_found()
        node = lookup(version_tree(found), segments[1:])
        if node is None:
            return _not_found()
        if isinstance(node, Directory):
            return 200, node.listing().encode(), TEXT
        if isinstance(node, bytes):
            return 200, node, BINARY
        return 200, node.encode(), TEXT


def _not_found() -> tuple[int, bytes, str]:
    return 404, b"Not Found", TEXT


def metadata_site(root: MetadataResource, reactor: Any) -> server.Site:
    """@return: a quiet site serving C{root}, refusing request bodies over 16 KiB."""
    site = server.Site(root, reactor=reactor)
    site.requestFactory = bounded_request_factory(MAX_REQUEST_BODY)
    site.noisy = False
    return site


__all__ = ["VERSIONS", "Directory", "MetadataResource", "BadForwardedFor", "forwarded_address",
           "peer_address", "lookup", "meta_data_tree", "version_tree", "metadata_site"]
