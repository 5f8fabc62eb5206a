"""
An incremental decoder of S3's C{aws-chunked} bodies.

C{x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD} (and its
C{-TRAILER} variant, and C{STREAMING-UNSIGNED-PAYLOAD-TRAILER}) frames the
object's data as::

    <hex size>;chunk-signature=<64 hex>\\r\\n
    <size bytes of data>\\r\\n
    ...
    0;chunk-signature=<64 hex>\\r\\n
    [x-amz-checksum-crc32:<base64>\\r\\n]       (trailer variants)
    [x-amz-trailer-signature:<64 hex>\\r\\n]    (signed trailer)
    \\r\\n

The decoder takes the body as it arrives, hands the data on as it comes
(so nothing is held whole), checks each chunk's signature when the chunk
ends, and counts the decoded bytes against C{x-amz-decoded-content-length}.
A bad signature stops everything: the caller must then abandon what it wrote.
"""

from __future__ import annotations

import hashlib
from typing import Callable

from nova.auth.signer import ChunkSigner, SignatureMismatch
from nova.objectstore.errors import EntityTooLarge, IncompleteBody
from nova.objectstore.http.errors import InvalidChunkSizeError

#: longest chunk header or trailer line accepted (a signed one is ~90 bytes)
MAX_LINE = 4096
_SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


class AwsChunkedDecoder:
    """
    Decodes one C{aws-chunked} body.

    @ivar decoded: data bytes handed on so far.
    @ivar trailers: the trailing headers (lower-case names), once done.
    """

    def __init__(self, sink: Callable[[bytes], None], signer: ChunkSigner | None,
                 decoded_length: int | None, max_size: int) -> None:
        """
        @param sink: receives the decoded data, piece by piece.
        @param signer: checks the chunk signatures (C{None}: unsigned chunks,
            C{STREAMING-UNSIGNED-PAYLOAD-TRAILER}).
        @param decoded_length: the announced C{x-amz-decoded-content-length}.
        @param max_size: the largest body accepted.
        """
        self._sink = sink
        self._signer = signer
        self._expected = decoded_length
        self._max = max_size if decoded_length is None else min(max_size, decoded_length)
        self._state = _SIZE
        self._line = bytearray()
        self._remaining = 0
        self._chunk_hash = hashlib.sha256()
        self._chunk_signature = ""
        self._trailer_lines: list[tuple[str, str]] = []
        self.decoded = 0
        self.trailers: dict[str, str] = {}

    @property
    def done(self) -> bool:
        """@return: whether the final chunk and the trailers were read."""
        return self._state == _DONE

    def feed(self, data: bytes) -> None:
        """
        Decode the next piece of the body.

        @raise SignatureMismatch: a chunk's (or the trailer's) signature is wrong.
        @raise InvalidChunkSizeError: the framing is broken.
        @raise EntityTooLarge: more data than announced or allowed.
        """
        view = memoryview(data)
        while view:
            if self._state == _DATA:
                take = min(self._remaining, len(view))
                piece = bytes(view[:take])
                view = view[take:]
                self._remaining -= take
                if self._signer is not None:
                    self._chunk_hash.update(piece)
                self._sink(piece)
                if not self._remaining:
                    self._state = _DATA_END
            elif self._state == _DONE:
                raise InvalidChunkSizeError("Data after the final chunk of an aws-chunked body.")
            else:
                window = bytes(view[:MAX_LINE + 2])
                end = window.find(b"\n")
                if end == -1:
                    self._line += window
                    view = view[len(window):]
                    if len(self._line) > MAX_LINE + 2:
                        raise InvalidChunkSizeError("An aws-chunked header line is too long.")
                    continue
                self._line += window[:end + 1]
                view = view[end + 1:]
                if len(self._line) > MAX_LINE + 2:
                    raise InvalidChunkSizeError("An aws-chunked header line is too long.")
                line = bytes(self._line)
                self._line = bytearray()
                if not line.endswith(b"\r\n"):
                    raise InvalidChunkSizeError("aws-chunked lines must end with CRLF.")
                self._line_received(line[:-2].decode("latin-1"))

    def _line_received(self, line: str) -> None:
        if self._state == _DATA_END:
            if line:
                raise InvalidChunkSizeError("A chunk of an aws-chunked body is longer than "
                                            "its announced size.")
            self._end_chunk()
            self._state = _SIZE
        elif self._state == _SIZE:
            self._start_chunk(line)
        elif self._state == _TRAILER:
            if not line:
                self._end_trailers()
                self._state = _DONE
                return
            name, sep, value = line.partition(":")
            if not sep:
                raise InvalidChunkSizeError("A malformed trailing header.")
            self._trailer_lines.append((name.strip().lower(), value.strip()))

    def _start_chunk(self, line: str) -> None:
        size_text, _, extension = line.partition(";")
        try:
            size = int(size_text.strip(), 16)
        except ValueError:
            raise InvalidChunkSizeError("A malformed aws-chunked chunk size.") from None
        if size < 0:
            raise InvalidChunkSizeError("A malformed aws-chunked chunk size.")
        signature = ""
        for item in extension.split(";"):
            name, _, value = item.partition("=")
            if name.strip() == "chunk-signature":
                signature = value.strip()
        if self._signer is not None and not signature:
            raise SignatureMismatch("An aws-chunked chunk has no chunk-signature.")
        if self.decoded + size > self._max:
            raise EntityTooLarge("The aws-chunked body is larger than announced or allowed.")
        self.decoded += size
        self._chunk_signature = signature
        self._chunk_hash = hashlib.sha256()
        if size:
            self._remaining = size
            self._state = _DATA
        else:
            self._end_chunk()
            self._state = _TRAILER

    def _end_chunk(self) -> None:
        if self._signer is not None:
            self._signer.verify_chunk(self._chunk_hash.hexdigest(), self._chunk_signature)

    def _end_trailers(self) -> None:
        signature = None
        canonical = []
        for name, value in self._trailer_lines:
            if name == "x-amz-trailer-signature":
                signature = value
            else:
                canonical.append(f"{name}:{value}\n")
                self.trailers[name] = value
        if self._signer is not None and self.trailers:
            if signature is None:
                raise SignatureMismatch("The trailing headers are not signed.")
            digest = hashlib.sha256("".join(canonical).encode("utf-8")).hexdigest()
            self._signer.verify_trailer(digest, signature)

    def finish(self) -> None:
        """
        The body has ended.

        @raise IncompleteBody: before the final chunk, or with fewer data
            bytes than C{x-amz-decoded-content-length} announced.
        """
        if self._state != _DONE:
            raise IncompleteBody("The aws-chunked body ended before its final chunk.")
        if self._expected is not None and self.decoded != self._expected:
            raise IncompleteBody(
                f"You did not provide the number of bytes specified by the "
                f"x-amz-decoded-content-length header ({self.decoded} of {self._expected}).")


__all__ = ["AwsChunkedDecoder", "MAX_LINE"]
