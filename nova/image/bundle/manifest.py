"""
The bundle manifest (format version 2007-10-10, as euca2ools and the EC2 AMI
tools write it): parsing into a frozen L{Manifest}.

The signature covers the text of C{<machine_configuration>...</machine_configuration>}
immediately followed by C{<image>...</image>} exactly as they appear in the
file (found the way euca2ools finds them: the first occurrence of each tag).
Every field of those two elements is read from that signed text itself, not
from a second parse of the whole document, so what nova acts on is always
what the user signed.
"""

from __future__ import annotations

import posixpath
import re
import xml.etree.ElementTree as ET

import attr

from nova.image.bundle.errors import ManifestSyntaxError

#: The manifest format this module reads and writes.
MANIFEST_VERSION = "2007-10-10"
#: A manifest larger than this is refused unread (real ones are a few KiB).
MAX_MANIFEST_BYTES = 1024 * 1024
#: At most this many parts (10 MiB each: 100 GiB).
MAX_PARTS = 10000
IMAGE_TYPES = ("machine", "kernel", "ramdisk")

_HEX40 = re.compile(r"[0-9a-fA-F]{40}\Z")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+\Z")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}\Z")
_ARCH = re.compile(r"[A-Za-z0-9_]{1,32}\Z")
_MAX_PART_NAME = 255


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class Manifest:
    """
    A parsed bundle manifest.

    @ivar version: the format version (C{"2007-10-10"}).
    @ivar bundler_name: the tool that made the bundle (may be empty).
    @ivar bundler_version: its version (may be empty).
    @ivar bundler_release: its release (may be empty).
    @ivar architecture: C{machine_configuration/architecture}, e.g. C{"x86_64"}.
    @ivar kernel_id: C{machine_configuration/kernel_id}, or C{None}.
    @ivar ramdisk_id: C{machine_configuration/ramdisk_id}, or C{None}.
    @ivar image_name: C{image/name}: the file name the image had when bundled.
    @ivar user: C{image/user} (euca2ools' C{--user}; nova does not use it).
    @ivar image_type: C{"machine"}, C{"kernel"} or C{"ramdisk"}.
    @ivar digest: lower-case hex SHA-1 from C{image/digest}: of the tar stream
        (euca2ools 1.2 and later, the EC2 AMI tools) or, from older
        euca2ools, of the image file itself; L{unbundle} accepts either.
    @ivar size: C{image/size}: the image file's size in bytes.
    @ivar bundled_size: C{image/bundled_size}: the encrypted size, the sum
        of the parts' sizes.
    @ivar ec2_encrypted_key: hex of the RSA-encrypted (for the cloud) hex AES key.
    @ivar ec2_encrypted_iv: likewise for the IV.
    @ivar user_encrypted_key: hex of the key encrypted for the user.
    @ivar user_encrypted_iv: likewise for the IV.
    @ivar parts: C{(filename, sha1_hex)} in order; each filename is one key
        segment, resolved beside the manifest (L{part_keys}).
    @ivar signature: lower-case hex of the RSA-SHA1 signature.
    @ivar signed_text: the exact bytes the signature covers.
    """

    version: str = MANIFEST_VERSION
    bundler_name: str = ""
    bundler_version: str = ""
    bundler_release: str = ""
    architecture: str = "x86_64"
    kernel_id: str | None = None
    ramdisk_id: str | None = None
    image_name: str
    user: str = ""
    image_type: str = "machine"
    digest: str
    size: int
    bundled_size: int
    ec2_encrypted_key: str
    ec2_encrypted_iv: str
    user_encrypted_key: str
    user_encrypted_iv: str
    parts: tuple[tuple[str, str], ...]
    signature: str = ""
    signed_text: bytes = b""


def check_part_name(name: str) -> str:
    """
    Check that a part's file name is one safe key segment.

    @param name: the name from C{<filename>}.
    @return: C{name}.
    @raise ManifestSyntaxError: empty, longer than 255 bytes, not printable,
        or holding C{/}, C{\\}, C{..}, a NUL or a leading dot.
    """
    if (not name or len(name.encode("utf-8", "replace")) > _MAX_PART_NAME
            or not name.isprintable() or "/" in name or "\\" in name
            or ".." in name or "\0" in name or name.startswith(".")):
        raise ManifestSyntaxError(
            f"unsafe part file name {name!r}: a part is named by one key segment"
            " beside the manifest (no '/', '\\', '..', leading '.' or control"
            " characters, at most 255 bytes)")
    return name


def part_keys(manifest: Manifest, manifest_key: str) -> list[str]:
    """
    The object keys of a bundle's parts: each part lies beside the manifest,
    under the same key prefix (euca2ools uploads them together).

    @param manifest: the parsed manifest.
    @param manifest_key: the manifest's key in its bucket, e.g.
        C{"images/ubuntu.img.manifest.xml"} (without the bucket).
    @return: the parts' keys, in order.
    """
    folder = posixpath.dirname(manifest_key)
    return [f"{folder}/{name}" if folder else name for name, _ in manifest.parts]


def _fail(message: str) -> ManifestSyntaxError:
    return ManifestSyntaxError(f"malformed manifest: {message}")


def _one(parent: ET.Element, path: str, required: bool = True) -> ET.Element | None:
    found = parent.findall(path)
    if len(found) > 1:
        raise _fail(f"more than one <{path}>")
    if not found:
        if required:
            raise _fail(f"missing <{path}>")
        return None
    return found[0]


def _text(parent: ET.Element, path: str, required: bool = True) -> str | None:
    elem = _one(parent, path, required)
    if elem is None:
        return None
    if len(elem):
        raise _fail(f"<{path}> must hold text only")
    text = (elem.text or "").strip()
    if not text and required:
        raise _fail(f"<{path}> is empty")
    return text or None


def _hex(parent: ET.Element, path: str, pattern: re.Pattern[str] = _HEX) -> str:
    value = _text(parent, path)
    assert value is not None
    if not pattern.match(value):
        raise _fail(f"<{path}> is not hexadecimal of the expected length")
    return value.lower()


def _int(parent: ET.Element, path: str) -> int:
    value = _text(parent, path)
    assert value is not None
    if not value.isdigit() or len(value) > 18:
        raise _fail(f"<{path}> is not a byte count: {value!r}")
    return int(value)


def _element_span(data: bytes, tag: bytes) -> bytes:
    # euca2ools' own rule: first opening tag to first closing tag.
    start = data.find(b"<" + tag + b">")
    end = data.find(b"</" + tag + b">")
    if start < 0 or end < start:
        raise _fail(f"no <{tag.decode()}> element to verify")
    return data[start:end + len(tag) + 3]


def _parse_xml(data: bytes, what: str) -> ET.Element:
    try:
        return ET.fromstring(data)
    except ET.ParseError as problem:
        raise _fail(f"{what} is not well-formed XML ({problem})") from None


def _parts(image: ET.Element) -> tuple[tuple[str, str], ...]:
    container = _one(image, "parts")
    assert container is not None
    elems = container.findall("part")
    if not elems:
        raise _fail("<parts> lists no part")
    if len(elems) > MAX_PARTS:
        raise _fail(f"more than {MAX_PARTS} parts")
    count = container.get("count")
    if count is not None and count.strip() != str(len(elems)):
        raise _fail(f"<parts count={count!r}> but {len(elems)} <part> elements")
    indexed: dict[int, tuple[str, str]] = {}
    for position, elem in enumerate(elems):
        index_text = elem.get("index", str(position)).strip()
        if not index_text.isdigit() or int(index_text) in indexed:
            raise _fail(f"bad or repeated part index {index_text!r}")
        name = _text(elem, "filename")
        assert name is not None
        indexed[int(index_text)] = (check_part_name(name),
                                    _hex(elem, "digest", _HEX40))
    if sorted(indexed) != list(range(len(elems))):
        raise _fail("part indexes are not 0 to count-1")
    names = [name for name, _ in indexed.values()]
    if len(set(names)) != len(names):
        raise _fail("two parts have the same file name")
    return tuple(indexed[index] for index in range(len(elems)))


def parse_manifest(data: bytes) -> Manifest:
    """
    Parse a bundle manifest.

    @param data: the manifest file's bytes (UTF-8 XML).
    @return: the manifest; nothing is verified cryptographically yet
        (L{nova.image.bundle.verify}).
    @raise ManifestSyntaxError: too large, not UTF-8, not well-formed, a
        DTD, a missing or repeated field, a bad value, an unsafe part name.
    """
    if not isinstance(data, bytes):
        raise TypeError("parse_manifest wants the manifest's bytes")
    if len(data) > MAX_MANIFEST_BYTES:
        raise _fail(f"larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise _fail("not UTF-8 text") from None
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise _fail("a document type declaration is not allowed")
    root = _parse_xml(data, "the manifest")
    if root.tag != "manifest":
        raise _fail(f"the root element is <{root.tag}>, not <manifest>")
    version = _text(root, "version")
    if version != MANIFEST_VERSION:
        raise _fail(f"version {version!r} is not supported (only {MANIFEST_VERSION})")
    signature = _hex(root, "signature")
    bundler = _one(root, "bundler", required=False)
    signed_text = _element_span(data, b"machine_configuration") + _element_span(data, b"image")
    signed = _parse_xml(b"<signed>" + signed_text + b"</signed>", "the signed text")
    if [child.tag for child in signed] != ["machine_configuration", "image"]:
        raise _fail("<machine_configuration> and <image> must be siblings, in that order")
    machine, image = signed[0], signed[1]
    architecture = _text(machine, "architecture")
    assert architecture is not None
    if not _ARCH.match(architecture):
        raise _fail(f"bad architecture {architecture!r}")
    ids = {}
    for field in ("kernel_id", "ramdisk_id"):
        value = _text(machine, field, required=False)
        if value is not None and not _ID.match(value):
            raise _fail(f"bad {field} {value!r}")
        ids[field] = value
    image_type = _text(image, "type", required=False) or "machine"
    if image_type not in IMAGE_TYPES:
        raise _fail(f"image type {image_type!r} is not one of {', '.join(IMAGE_TYPES)}")
    digest_elem = _one(image, "digest")
    assert digest_elem is not None
    if digest_elem.get("algorithm", "SHA1").upper() not in ("SHA1", "SHA-1"):
        raise _fail("the image digest must be SHA1")
    name = _text(image, "name")
    assert name is not None
    return Manifest(
        version=version,
        bundler_name=(_text(bundler, "name", False) or "") if bundler is not None else "",
        bundler_version=(_text(bundler, "version", False) or "") if bundler is not None else "",
        bundler_release=(_text(bundler, "release", False) or "") if bundler is not None else "",
        architecture=architecture, kernel_id=ids["kernel_id"], ramdisk_id=ids["ramdisk_id"],
        image_name=name, user=_text(image, "user", required=False) or "",
        image_type=image_type, digest=_hex(image, "digest", _HEX40),
        size=_int(image, "size"), bundled_size=_int(image, "bundled_size"),
        ec2_encrypted_key=_hex(image, "ec2_encrypted_key"),
        ec2_encrypted_iv=_hex(image, "ec2_encrypted_iv"),
        user_encrypted_key=_hex(image, "user_encrypted_key"),
        user_encrypted_iv=_hex(image, "user_encrypted_iv"),
        parts=_parts(image), signature=signature, signed_text=signed_text)
