"""
L{FileWriter}: a body streamed to a temporary file under C{tmp/}, hashed
(MD5 and SHA-256) as it arrives, then given its header (L{FileWriter.write_header},
a write into the page cache; the store then makes it durable and renames it
into place, many at a time) or sealed in a worker thread (header written,
fsync'd: L{FileWriter.seal_sync}, for multipart parts and oversized headers).

The store also fills writers itself, in a worker thread: the copy of an
object (L{FileWriter.copy_from}, hashed) and the assembly of a multipart
upload (L{FileWriter.splice_from}, a kernel copy, not hashed: the entity tag
of a multipart object is made from its parts' digests).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Callable

from zope.interface import implementer

from nova.objectstore import errors
from nova.objectstore.interfaces import IWriter
from nova.objectstore.store.layout import Layout, remove_quietly
from nova.objectstore.store.spares import create_temp
from nova.objectstore.store.objectfile import (DATA_OFFSET, encode_header, encode_header_page,
                                               header_json_length, needed_offset)

#: body bytes held in memory before they are written out: a few large writes
#: rather than many small ones, and a small body goes out with its header in
#: one write
_BUFFER = 256 * 1024

#: how much a copy in a worker thread reads at a time
COPY_CHUNK = 1024 * 1024


class WriterStateError(errors.S3Error):
    """A writer used after it was committed or aborted."""

    code = "InternalError"
    status = 500


def copy_range(src: int, dst: int, length: int, src_at: int, dst_at: int) -> None:
    """
    Copy C{length} bytes between two files at explicit offsets: a kernel copy
    where the filesystem has one, reads and writes otherwise. Blocking.

    @raise InvalidRequest: the source ends early.
    """
    done = 0
    fast = True
    while done < length:
        n = 0
        if fast:
            try:
                n = os.copy_file_range(src, dst, length - done, src_at + done, dst_at + done)
            except OSError:
                fast = False  # EXDEV, ENOSYS, EINVAL ...: copy by hand
        if not fast:
            chunk = os.pread(src, min(COPY_CHUNK, length - done), src_at + done)
            n = len(chunk)
            if n:
                os.pwrite(dst, chunk, dst_at + done)
        if n == 0:
            raise errors.InvalidRequest("a stored body is shorter than its header says")
        done += n


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    """Write all of C{data} at C{offset} (a short write is continued)."""
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


@implementer(IWriter)
class FileWriter:
    """
    An L{IWriter} on a temporary file. L{write} and L{abort} run on the
    reactor thread (a buffered append, an unlink handed to a worker); the
    methods named C{*_sync} and the copies run in a worker thread.

    @ivar bucket: the bucket the body is meant for.
    @ivar size: bytes written so far.
    @ivar path: the temporary file (it may change once, when sealing moves
        the body behind a header too big for the first page).
    """

    def __init__(self, layout: Layout, bucket: str, max_size: int,
                 discard: Callable[[Path], Any], temp: tuple[Path, int],
                 sha256: bool = True) -> None:
        """
        @param layout: where temporary files go.
        @param bucket: the bucket the body is meant for.
        @param max_size: the most bytes L{write} accepts in all.
        @param discard: removes a temporary file off the reactor thread
            (given the path; fire and forget).
        @param temp: an empty temporary file (path, descriptor open for
            reading and writing) that this writer now owns.
        @param sha256: whether to compute the SHA-256 of the body too.
        """
        self.bucket = bucket
        self.size = 0
        self._layout = layout
        self._max_size = max_size
        self._discard = discard
        self.path, self._fd = temp
        # the body bytes not yet written, and where they go in the file
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._written = DATA_OFFSET
        self._md5 = hashlib.md5()
        self._sha256 = hashlib.sha256() if sha256 else None
        self._hashed = True
        #: "open" (taking writes), "committing" (the store owns the file),
        #: "done" (renamed into place) or "aborted"
        self.state = "open"

    # -- IWriter -----------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """
        Append C{data} and update the digests.

        @raise EntityTooLarge: past the store's limit (the writer is aborted).
        @raise WriterStateError: committed or aborted already.
        """
        self._check_open()
        if self.size + len(data) > self._max_size:
            self.abort()
            raise errors.EntityTooLarge(
                f"the body is over the limit of {self._max_size} bytes")
        self._hold(data)
        self._md5.update(data)
        if self._sha256 is not None:
            self._sha256.update(data)
        self.size += len(data)

    def _hold(self, data: bytes) -> None:
        if not data:
            return
        self._pending.append(bytes(data))
        self._pending_size += len(data)
        if self._pending_size >= _BUFFER:
            self._flush()

    def _flush(self) -> None:
        """Write the held bytes at their place in the file."""
        if not self._pending:
            return
        data = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
        self._pending, self._pending_size = [], 0
        _pwrite_all(self._fd, data, self._written)
        self._written += len(data)

    def _close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            self._pending, self._pending_size = [], 0
            os.close(fd)

    def md5_hex(self) -> str:
        """@return: the hex MD5 of what was written."""
        return self._digest(self._md5).hexdigest()

    def md5_bytes(self) -> bytes:
        """@return: the raw MD5 of what was written."""
        return self._digest(self._md5).digest()

    def sha256_hex(self) -> str:
        """
        @return: the hex SHA-256 of what was written.
        @raise WriterStateError: the writer was made without SHA-256.
        """
        if self._sha256 is None:
            raise WriterStateError("this writer does not compute SHA-256 (sha256=False)")
        return self._digest(self._sha256).hexdigest()

    def sha256_or_none(self) -> str | None:
        """@return: the hex SHA-256 of what was written, if computed."""
        return None if self._sha256 is None or not self._hashed else self._sha256.hexdigest()

    def abort(self) -> None:
        """
        Discard the body. Idempotent; ignored once the store is committing
        the writer (the commit then either places the file or removes it).
        """
        if self.state != "open":
            return
        self.state = "aborted"
        self._close()  # nothing held is written
        self._discard(self.path)

    # -- for the store ---------------------------------------------------------------

    def _digest(self, h: Any) -> Any:
        if not self._hashed:
            raise WriterStateError("this body was assembled without digests")
        return h

    def _check_open(self) -> None:
        if self.state != "open":
            raise WriterStateError(f"the writer is {self.state}")

    def begin_commit(self) -> None:
        """
        Take the writer over for a commit: no more writes, no abort.

        @raise WriterStateError: it is not open (committed, aborted, too large).
        """
        self._check_open()
        self.state = "committing"

    def copy_from(self, fd: int, offset: int, length: int) -> None:
        """
        Append C{length} bytes of file C{fd} from C{offset}, hashing them.
        Blocking: run it in a worker thread.

        @raise EntityTooLarge: past the store's limit.
        """
        self._check_open()
        if self.size + length > self._max_size:
            raise errors.EntityTooLarge(f"the body is over the limit of {self._max_size} bytes")
        end = offset + length
        while offset < end:
            chunk = os.pread(fd, min(COPY_CHUNK, end - offset), offset)
            if not chunk:
                raise errors.InvalidRequest("the source object is shorter than its header says")
            self._hold(chunk)
            self._md5.update(chunk)
            if self._sha256 is not None:
                self._sha256.update(chunk)
            offset += len(chunk)
            self.size += len(chunk)

    def splice_from(self, fd: int, offset: int, length: int) -> None:
        """
        Append C{length} bytes of file C{fd} from C{offset} with a kernel copy,
        without digests. Blocking: run it in a worker thread.
        """
        self._check_open()
        self._flush()
        self._hashed = False
        copy_range(fd, self._fd, length, offset, DATA_OFFSET + self.size)
        self.size += length
        self._written = DATA_OFFSET + self.size

    def _write_page(self, page: bytes) -> None:
        """Write the header page at the front, and the body bytes still held."""
        if self._written == DATA_OFFSET:
            # nothing written yet (a small body): header and body in one write
            data = b"".join([page, *self._pending])
            self._pending, self._pending_size = [], 0
            _pwrite_all(self._fd, data, 0)
            self._written = len(data)
        else:
            self._flush()
            _pwrite_all(self._fd, page, 0)

    def write_header(self, header: dict[str, Any]) -> bool:
        """
        Write C{header} in front of the body and close the file, without
        making it durable (the store does that for many files at once:
        L{nova.objectstore.store.installer}). A small write into the page
        cache, on the calling thread, after L{begin_commit}.

        @return: C{False} when the header does not fit in front of the body
            (nothing was done: L{seal_sync} it in a worker thread instead).
        @raise OSError: the write failed.
        """
        page = encode_header_page(header)
        if page is None:
            return False
        self._write_page(page)
        self._close()
        return True

    def seal_sync(self, header: dict[str, Any]) -> Path:
        """
        Write C{header} in front of the body and make the file durable.
        Blocking: run it in a worker thread, after L{begin_commit}.

        @return: the sealed file, ready to be renamed into place.
        """
        page = encode_header_page(header)
        if page is not None:
            self._write_page(page)
            os.fdatasync(self._fd)
            self._close()
            return self.path
        self._flush()
        fd = self._fd
        length = header_json_length(header)
        # A header bigger than the page left for it: copy the body behind a
        # bigger one. Rare (kilobytes of user metadata), and off the reactor.
        offset = needed_offset(length)
        bigger, out = create_temp(self._layout)
        try:
            os.pwrite(out, encode_header(header, offset), 0)
            copy_range(fd, out, self.size, DATA_OFFSET, offset)
            os.ftruncate(out, offset + self.size)
            os.fdatasync(out)
        except BaseException:
            os.close(out)
            remove_quietly(bigger)
            raise
        os.close(out)
        self._close()
        remove_quietly(self.path)
        self.path = bigger
        return bigger

    def discard_sync(self) -> None:
        """Close and remove the temporary file (a failed commit). Blocking."""
        self.state = "aborted"
        self._close()
        remove_quietly(self.path)

    def committed(self) -> None:
        """Record that the file was renamed into place."""
        self.state = "done"
