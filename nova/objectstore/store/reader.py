"""
Opening object and part files: L{ReadHandle} (an L{IReadHandle} on one open
file, so one consistent version) and the header reads the store does on the
reactor thread (an open, one page read and an fstat: small, as the page
cache usually holds them).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from zope.interface import implementer

from nova.objectstore.interfaces import IReadHandle, ObjectInfo
from nova.objectstore.store.objectfile import CorruptObjectFile, info_from_header, read_header


def open_file(path: Path) -> tuple[int, dict[str, Any], int] | None:
    """
    Open a file of the store and read its header.

    @return: C{(fd, header, data_offset)}, the caller owning C{fd}; C{None}
        when there is no such file.
    @raise CorruptObjectFile: the file is cut short or not in the store's format.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        header, data_offset, on_disk = read_header(fd)
        if on_disk != header.get("size"):
            raise CorruptObjectFile(f"the body holds {on_disk} bytes, its header says "
                                    f"{header.get('size')!r}")
    except BaseException:
        os.close(fd)
        raise
    return fd, header, data_offset


def read_info(path: Path) -> ObjectInfo | None:
    """@return: the L{ObjectInfo} in an object file's header, or C{None} when it is not there."""
    opened = open_file(path)
    if opened is None:
        return None
    fd, header, _ = opened
    os.close(fd)
    return info_from_header(header)


@implementer(IReadHandle)
class ReadHandle:
    """
    One version of an object, held open.

    @ivar info: the L{ObjectInfo} of this version.
    @ivar data_offset: where the body starts in the file.
    """

    def __init__(self, info: ObjectInfo, fd: int, data_offset: int) -> None:
        """
        @param info: what the file's header says.
        @param fd: the open file; this handle closes it.
        @param data_offset: where the body starts.
        """
        self.info = info
        self.data_offset = data_offset
        self._fd: int | None = fd

    @classmethod
    def open(cls, path: Path) -> "ReadHandle | None":
        """
        @return: a handle on the object file C{path}, or C{None} when it is not there.
        @raise CorruptObjectFile: the file is not a readable object.
        """
        opened = open_file(path)
        if opened is None:
            return None
        fd, header, data_offset = opened
        try:
            info = info_from_header(header)
        except CorruptObjectFile:
            os.close(fd)
            raise
        return cls(info, fd, data_offset)

    def fileno(self) -> int:
        """
        @return: the open file's descriptor (for C{os.sendfile} from C{data_offset}).
        @raise ValueError: the handle is closed.
        """
        if self._fd is None:
            raise ValueError("the read handle is closed")
        return self._fd

    def read(self, offset: int, length: int) -> bytes:
        """
        @return: up to C{length} bytes of the body from C{offset} (fewer at the
            end of the body; none past it). Blocking: keep reads small on the
            reactor thread.
        """
        if offset < 0 or length < 0:
            raise ValueError("offset and length must not be negative")
        length = min(length, self.info.size - offset)
        if length <= 0:
            return b""
        return os.pread(self.fileno(), length, self.data_offset + offset)

    def close(self) -> None:
        """Close the file. Idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> "ReadHandle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # a handle dropped without close() must not leak its descriptor
        self.close()
