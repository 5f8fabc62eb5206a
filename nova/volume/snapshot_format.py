"""
The encoding of a volume snapshot as one object-store object ("nova
snapshot, version 1"; docs/snapshots.md describes it byte by byte).

A volume is cut into blocks (1 MiB by default); each block becomes one
record: a single byte for an all-zero block (sparse volumes are mostly
zeros), else the block compressed with zlib, or the block as it is when
compression would not make it smaller. A header names the format, the block
size and the raw size; a trailer repeats the raw size and carries the
SHA-256 of the raw volume bytes, so a stream that is cut short or altered is
recognised without anything else.

Both halves are blocking and incremental, made to run in a worker thread one
piece at a time: L{SnapshotEncoder} reads a file and hands out the encoded
stream in parts of a fixed size, L{SnapshotDecoder} is fed the stream in
pieces of any size and writes the blocks it decodes through a callback.
Neither ever holds more than one part (or one fed piece) plus one record.
"""

from __future__ import annotations

import errno
import hashlib
import os
import struct
import zlib
from typing import Any, Callable

import attr

from nova.exception import NovaError

MAGIC = b"NOVASNAP"
VERSION = 1
#: magic, version, flags (none yet: must be 0), block size, raw size
HEADER = struct.Struct(">8sHHIQ")
#: a record's payload length
LENGTH = struct.Struct(">I")
#: after the end marker: the raw size again and the SHA-256 of the raw bytes
TRAILER = struct.Struct(">Q32s")
ZERO, ZLIB, RAW, END = 0x00, 0x01, 0x02, 0xFF
MIB = 1024 * 1024
DEFAULT_BLOCK_SIZE = MIB
MIN_BLOCK_SIZE, MAX_BLOCK_SIZE = 4096, 16 * MIB
#: zlib's fastest level: volumes are large, and most of their bytes are zeros
#: that never reach zlib; level 6 gains little on the rest
COMPRESSION_LEVEL = 1
#: compress this much of a block first; when it does not shrink below
#: L{_PROBE_RATIO} the block is stored as it is (random or encrypted data
#: compresses at ~60 MB/s to nothing gained)
_PROBE = 64 * 1024
_PROBE_RATIO = 0.9


class SnapshotError(NovaError):
    """A volume snapshot could not be stored or restored."""


class SnapshotCorrupt(SnapshotError):
    """A stored snapshot does not decode, or its checksum is not the expected one."""


def max_record_size(block_size: int) -> int:
    """@return: the largest record a block of C{block_size} bytes can become."""
    return 1 + LENGTH.size + block_size


def max_encoded_size(raw_size: int, block_size: int = DEFAULT_BLOCK_SIZE) -> int:
    """@return: the longest stream a volume of C{raw_size} bytes can encode to."""
    blocks = -(-raw_size // block_size)
    return HEADER.size + blocks * max_record_size(block_size) + 1 + TRAILER.size


@attr.s(frozen=True, auto_attribs=True)
class SnapshotHeader:
    """What a stream's header says: its block size and the raw volume size."""

    block_size: int
    raw_size: int


def _check_block_size(block_size: int) -> None:
    if not MIN_BLOCK_SIZE <= block_size <= MAX_BLOCK_SIZE:
        raise ValueError(f"block size {block_size} is not within "
                         f"{MIN_BLOCK_SIZE}..{MAX_BLOCK_SIZE}")


class SnapshotEncoder:
    """
    Encodes an open file of C{size} bytes, handing the stream out in parts of
    exactly C{part_size} bytes (the last one shorter). Blocking: call
    L{next_part} in a worker thread, one call at a time.

    @ivar fd: the file descriptor read (the caller closes it).
    @ivar sha256: the hex SHA-256 of the raw bytes, once the last part is out.
    @ivar high_water: the most bytes the part buffer ever held (never more
        than C{part_size + max_record_size(block_size)}).
    """

    def __init__(self, fd: int, size: int, part_size: int,
                 block_size: int = DEFAULT_BLOCK_SIZE) -> None:
        """
        @param fd: a file descriptor open for reading (read with C{pread}:
            its position is not used); the caller closes it.
        @param size: how many bytes of it make the volume.
        @param part_size: the length of every part but the last.
        """
        _check_block_size(block_size)
        if part_size < 1:
            raise ValueError(f"bad part size {part_size}")
        self.fd, self.size, self.part_size, self.block_size = fd, size, part_size, block_size
        self._zero = bytes(block_size)
        self._hash = hashlib.sha256()
        self._buffer = bytearray(HEADER.pack(MAGIC, VERSION, 0, block_size, size))
        self._offset = 0
        self._next_data = 0  # no data before this offset (a hole), as SEEK_DATA said
        self._seek_data = True
        self._ended = False
        self.sha256: str | None = None
        self.high_water = len(self._buffer)
        self.zero_blocks = self.compressed_blocks = self.raw_blocks = 0

    def next_part(self) -> bytes | None:
        """
        Blocking: encode until a part is full (or the stream ends).

        @return: the next part, or C{None} when the whole stream was handed out.
        @raise SnapshotError: the file ended before C{size} bytes.
        @raise OSError: it could not be read.
        """
        while len(self._buffer) < self.part_size and not self._ended:
            self._encode_next()
            self.high_water = max(self.high_water, len(self._buffer))
        if not self._buffer:
            return None
        with memoryview(self._buffer) as view:  # one copy: not a slice, then bytes of it
            part = bytes(view[:self.part_size])
        del self._buffer[:self.part_size]
        return part

    def _encode_next(self) -> None:
        if self._offset >= self.size:
            self._check_length()  # a hole at the end was not a shrunk file
            digest = self._hash.digest()
            self._buffer.append(END)
            self._buffer += TRAILER.pack(self.size, digest)
            self.sha256 = digest.hex()
            self._ended = True
            return
        length = min(self.block_size, self.size - self._offset)
        if self._in_hole(self._offset, length):
            self._hash.update(memoryview(self._zero)[:length])
            self._buffer.append(ZERO)
            self.zero_blocks += 1
        else:
            self._encode_block(self._read(self._offset, length))
        self._offset += length

    def _encode_block(self, block: bytes) -> None:
        self._hash.update(block)
        if block == (self._zero if len(block) == self.block_size else bytes(len(block))):
            self._buffer.append(ZERO)
            self.zero_blocks += 1
            return
        packed = None
        if len(zlib.compress(block[:_PROBE], COMPRESSION_LEVEL)) < _PROBE_RATIO * min(
                _PROBE, len(block)):
            packed = zlib.compress(block, COMPRESSION_LEVEL)
        if packed is not None and len(packed) < len(block):
            self._buffer.append(ZLIB)
            self._buffer += LENGTH.pack(len(packed))
            self._buffer += packed
            self.compressed_blocks += 1
        else:
            self._buffer.append(RAW)
            self._buffer += LENGTH.pack(len(block))
            self._buffer += block
            self.raw_blocks += 1

    def _in_hole(self, offset: int, length: int) -> bool:
        """@return: whether the file has no data in this range (it reads as zeros)."""
        if not self._seek_data:
            return False
        if offset >= self._next_data:
            try:
                self._next_data = os.lseek(self.fd, offset, os.SEEK_DATA)
            except OSError as e:
                if e.errno != errno.ENXIO:  # the filesystem cannot tell: read everything
                    self._seek_data = False
                    return False
                # no data from here to the end of the file: holes, if the file
                # still reaches the volume's end (ENXIO also says "past the end")
                self._check_length()
                self._next_data = self.size
        return self._next_data >= offset + length

    def _check_length(self) -> None:
        end = os.lseek(self.fd, 0, os.SEEK_END)
        if end < self.size:
            raise SnapshotError(f"the volume is {end} bytes, not {self.size}: "
                                "it changed while it was read")

    def _read(self, offset: int, length: int) -> bytes:
        pieces, got = [], 0
        while got < length:
            piece = os.pread(self.fd, length - got, offset + got)
            if not piece:
                raise SnapshotError(f"the volume ends at {offset + got} bytes, "
                                    f"not {self.size}: it changed while it was read")
            pieces.append(piece)
            got += len(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)


class SnapshotDecoder:
    """
    Decodes a stream fed in pieces of any size. Blocking (zlib, hashing and
    the writes): call L{feed} and L{finish} in a worker thread, one at a time.

    @ivar header: the stream's header once its bytes have arrived.
    """

    def __init__(self, open_target: Callable[[SnapshotHeader], Any],
                 write: Callable[[int, bytes], None]) -> None:
        """
        @param open_target: called once with the header, before any block
            is written (where to check the target's size and open it).
        @param write: called with the offset and the bytes of every block
            that is not all zeros; zero blocks are left to the target (a
            new sparse file reads as zeros).
        """
        self._open_target, self._write = open_target, write
        self._buffer = bytearray()
        self._hash = hashlib.sha256()
        self._offset = 0
        self._ended = False
        self.header: SnapshotHeader | None = None
        self.sha256: str | None = None

    def feed(self, data: bytes) -> None:
        """
        Blocking: decode what C{data} completes.

        @raise SnapshotCorrupt: the stream is not a valid snapshot.
        """
        if self._ended and data:
            raise SnapshotCorrupt("bytes follow the snapshot's trailer")
        self._buffer += data
        position = 0
        if self.header is None:
            if len(self._buffer) < HEADER.size:
                return
            self.header = self._parse_header(bytes(self._buffer[:HEADER.size]))
            self._zero = bytes(self.header.block_size)
            position = HEADER.size
            self._open_target(self.header)
        while not self._ended:
            used = self._record(position)
            if used == 0:
                break
            position += used
        del self._buffer[:position]
        if self._ended and self._buffer:
            raise SnapshotCorrupt("bytes follow the snapshot's trailer")

    def finish(self) -> str:
        """
        @return: the hex SHA-256 of the raw bytes (the trailer's, checked).
        @raise SnapshotCorrupt: the stream ended before its trailer.
        """
        if not self._ended or self.sha256 is None:
            raise SnapshotCorrupt("the snapshot ends early: no trailer")
        return self.sha256

    @staticmethod
    def _parse_header(raw: bytes) -> SnapshotHeader:
        magic, version, flags, block_size, raw_size = HEADER.unpack(raw)
        if magic != MAGIC:
            raise SnapshotCorrupt("not a nova snapshot (bad magic)")
        if version != VERSION:
            raise SnapshotCorrupt(f"snapshot format version {version} is not known")
        if flags != 0 or not MIN_BLOCK_SIZE <= block_size <= MAX_BLOCK_SIZE \
                or raw_size >= 1 << 63:
            raise SnapshotCorrupt("the snapshot's header is not valid")
        return SnapshotHeader(block_size=block_size, raw_size=raw_size)

    def _record(self, at: int) -> int:
        """@return: the bytes the record at C{at} used, or 0 when it is not all here."""
        assert self.header is not None
        buf = self._buffer
        if at >= len(buf):
            return 0
        kind = buf[at]
        if kind == END:
            if len(buf) - at < 1 + TRAILER.size:
                return 0
            self._end(*TRAILER.unpack_from(buf, at + 1))
            return 1 + TRAILER.size
        length = min(self.header.block_size, self.header.raw_size - self._offset)
        if length <= 0:
            raise SnapshotCorrupt(f"a block record past the snapshot's end ({kind:#x})")
        if kind == ZERO:
            self._hash.update(memoryview(self._zero)[:length])
            self._offset += length
            return 1
        if kind not in (ZLIB, RAW):
            raise SnapshotCorrupt(f"unknown record type {kind:#x} at {self._offset}")
        if len(buf) - at < 1 + LENGTH.size:
            return 0
        (size,) = LENGTH.unpack_from(buf, at + 1)
        if size == 0 or size > max_record_size(self.header.block_size):
            raise SnapshotCorrupt(f"a record of {size} bytes at {self._offset}")
        start = at + 1 + LENGTH.size
        if len(buf) - start < size:
            return 0
        payload = bytes(buf[start:start + size])
        block = payload if kind == RAW else self._inflate(payload, length)
        if len(block) != length:
            raise SnapshotCorrupt(f"the block at {self._offset} is {len(block)} bytes, "
                                  f"not {length}")
        self._hash.update(block)
        self._write(self._offset, block)
        self._offset += length
        return 1 + LENGTH.size + size

    def _inflate(self, payload: bytes, length: int) -> bytes:
        inflater = zlib.decompressobj()
        try:
            # never more than the block: a forged record cannot blow up memory
            block = inflater.decompress(payload, length + 1)
        except zlib.error as e:
            raise SnapshotCorrupt(f"the block at {self._offset} does not inflate: {e}") from None
        if not inflater.eof or inflater.unused_data or inflater.unconsumed_tail:
            raise SnapshotCorrupt(f"the block at {self._offset} is not one zlib stream")
        return block

    def _end(self, raw_size: int, digest: bytes) -> None:
        assert self.header is not None
        if raw_size != self.header.raw_size or self._offset != raw_size:
            raise SnapshotCorrupt(f"the snapshot ends at {self._offset} bytes of "
                                  f"{self.header.raw_size} (trailer: {raw_size})")
        if digest != self._hash.digest():
            raise SnapshotCorrupt("the snapshot's bytes do not match its own checksum")
        self.sha256 = digest.hex()
        self._ended = True


__all__ = ["DEFAULT_BLOCK_SIZE", "MAGIC", "SnapshotCorrupt", "SnapshotDecoder",
           "SnapshotEncoder", "SnapshotError", "SnapshotHeader", "VERSION", "max_encoded_size",
           "max_record_size"]
