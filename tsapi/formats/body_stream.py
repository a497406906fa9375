"""Bodies as streams of byte chunks: decompressed and size-limited as they arrive.

A body is never held whole before its limits are checked: gzip is inflated a chunk at a time
and the decompressed total is counted as it grows, so a 47 KB bomb stops at the limit instead
of expanding to gigabytes, and parsers read from the same stream (see formats.bodies).
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterable, Iterator

from tsapi.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType, field_error

CHUNK_BYTES = 64 * 1024


def inflate(chunks: Iterable[bytes], encoding: str | None, limit: int) -> Iterator[bytes]:
    """The body as sent, decompressed when its Content-Encoding is gzip; at most limit bytes."""
    encoding = (encoding or "identity").lower()
    if encoding == "identity":
        return _capped(chunks, limit)
    if encoding not in ("gzip", "x-gzip"):
        raise UnsupportedMediaType(
            f"Content-Encoding '{encoding}' is not supported; use gzip",
            errors=[field_error("Content-Encoding", f"'{encoding}' is not supported; use gzip")])
    return _capped(_gunzip(chunks), limit)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"Decompressed body exceeds {limit} bytes",
                           errors=[field_error("body", f"is over {limit} bytes decompressed")])


def _capped(chunks: Iterable[bytes], limit: int) -> Iterator[bytes]:
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise _too_large(limit)
        yield chunk


def _gunzip(chunks: Iterable[bytes]) -> Iterator[bytes]:
    # A gzip body may be several members back to back (RFC 1952, 2.2: `cat a.gz b.gz`, or a
    # compressor that flushes members): each is inflated in turn, as gzip itself does, so no
    # point in a later one is acknowledged and dropped. Bytes after a member that do not
    # start another are no gzip: refused like a damaged stream, not ignored.
    inflater = zlib.decompressobj(wbits=31)
    for chunk in chunks:
        data = chunk
        while data:
            if inflater.eof:
                inflater = zlib.decompressobj(wbits=31)
            # Never more than CHUNK_BYTES out per call: the output of a bomb is as small as ours.
            try:
                out = inflater.decompress(data, CHUNK_BYTES)
            except zlib.error as exc:
                raise BadRequest(f"Request body is not valid gzip: {exc}",
                                 errors=[field_error("body", "is not valid gzip")]) from None
            data = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
            if out:
                yield out
    if not inflater.eof:
        raise BadRequest("Request body is truncated gzip",
                         errors=[field_error("body", "is truncated gzip")])


class ChunkFile(io.RawIOBase):
    """A read-only file over an iterator of byte chunks, for io.BufferedReader/TextIOWrapper."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = iter(chunks)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n
