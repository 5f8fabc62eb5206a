"""
A writer for the cpio "newc" format the Linux kernel unpacks as an initramfs.

Written here rather than piping to cpio(1) so the archive is reproducible
(fixed owners and mtimes, sorted entries) and the build needs no host tool.
"""

from __future__ import annotations

import stat
from typing import BinaryIO, Iterable

import attrs

_TRAILER = "TRAILER!!!"


@attrs.frozen
class Entry:
    """
    One member of the archive.

    @ivar path: path inside the archive, without a leading slash.
    @ivar mode: full st_mode (type bits and permissions).
    @ivar data: file contents, or the link target for a symlink; empty for a
        directory.
    """

    path: str
    mode: int
    data: bytes = b""


def directory(path: str, perms: int = 0o755) -> Entry:
    """
    @return: a directory entry.
    """
    return Entry(path, stat.S_IFDIR | perms)


def regular(path: str, data: bytes, perms: int = 0o644) -> Entry:
    """
    @return: a regular file entry.
    """
    return Entry(path, stat.S_IFREG | perms, data)


def symlink(path: str, target: str) -> Entry:
    """
    @return: a symbolic link entry pointing at C{target}.
    """
    return Entry(path, stat.S_IFLNK | 0o777, target.encode())


def _pad(n: int) -> bytes:
    return b"\0" * ((4 - n % 4) % 4)


def _header(ino: int, mode: int, nlink: int, size: int, namesize: int) -> bytes:
    # magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor,
    # rdevmajor, rdevminor, namesize, check: 13 fields of 8 hex digits.
    fields = (ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, namesize, 0)
    return b"070701" + b"".join(b"%08X" % f for f in fields)


def _record(ino: int, entry: Entry) -> bytes:
    name = entry.path.lstrip("/").encode() + b"\0"
    nlink = 2 if stat.S_ISDIR(entry.mode) else 1
    head = _header(ino, entry.mode, nlink, len(entry.data), len(name)) + name
    return head + _pad(len(head)) + entry.data + _pad(len(entry.data))


def write_newc(entries: Iterable[Entry], out: BinaryIO) -> None:
    """
    Write C{entries} as a newc archive, parents before children.

    @param entries: archive members; duplicates by path are an error.
    @param out: binary stream to write to.
    @raise ValueError: two entries share a path.
    """
    by_path: dict[str, Entry] = {}
    for entry in entries:
        key = entry.path.strip("/")
        if key in by_path:
            raise ValueError(f"duplicate cpio entry {key!r}")
        by_path[key] = entry
    # Sorting puts "a" before "a/b", so directories precede their contents.
    for ino, key in enumerate(sorted(by_path), start=1):
        out.write(_record(ino, by_path[key]))
    out.write(_record(0, Entry(_TRAILER, 0)))
