"""A JSON ingest body read one point at a time: `{"data": [point, point, ...]}` as it streams.

Large bodies come here instead of a whole-document parse (see formats.bodies), so memory
follows the points kept, not the bytes sent: each element of `data` is decoded on its own
by the standard library's C scanner, checked (size, nesting, repeated keys, surrogates) and
reduced to the members a point has, and reading stops as soon as the batch is over its limit.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator
from typing import Any

from tsapi.errors import BadRequest, InvalidInput, PayloadTooLarge, field_error
from tsapi.formats import strict_json

_WHITESPACE = " \t\r\n"


class JsonPointStream:
    """Reads the points of a JSON body from decoded text chunks, at most `max_points`."""

    def __init__(self, chunks: Iterable[bytes], max_points: int):
        self._chunks: Iterator[bytes] = iter(chunks)
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._scanner = strict_json.exact_decoder()
        self._buf = ""
        self._pos = 0
        self._done = False
        self.max_points = max_points

    # -- buffer ----------------------------------------------------------------------------
    def _more(self) -> bool:
        """Append the next chunk of text; False at the end of the body."""
        if self._done:
            return False
        chunk = next(self._chunks, None)
        try:
            text = self._decoder.decode(chunk or b"", final=chunk is None)
        except UnicodeDecodeError as exc:
            raise BadRequest(f"Request body is not valid JSON: not UTF-8 ({exc.reason})") from None
        if chunk is None:
            self._done = True
        self._buf = self._buf[self._pos:] + text
        self._pos = 0
        return True

    def _peek(self) -> str:
        """The next character that is not whitespace ('' at the end of the body)."""
        while True:
            buf, pos = self._buf, self._pos
            while pos < len(buf) and buf[pos] in _WHITESPACE:
                pos += 1
            self._pos = pos
            if pos < len(buf):
                return buf[pos]
            if not self._more():
                return ""

    def _expect(self, chars: str) -> str:
        c = self._peek()
        if not c or c not in chars:
            found = f"'{c}'" if c else "the end of the body"
            raise BadRequest(f"Request body is not valid JSON: expected one of {chars!r}, "
                             f"found {found}")
        self._pos += 1
        return c

    def _value(self) -> Any:
        """Decode one complete value, reading more text while it is cut off by the buffer."""
        self._peek()
        while True:
            start = self._pos
            try:
                value, end = self._scanner.raw_decode(self._buf, start)
            except json.JSONDecodeError as exc:
                if self._cut_off(exc) and self._room_for_more(start):
                    continue
                raise strict_json.as_problem(exc) from None
            except strict_json.JsonLimit as exc:
                raise strict_json.as_problem(exc) from None
            except RecursionError:
                raise strict_json.too_deep() from None
            if end == len(self._buf) and self._room_for_more(start):
                continue  # a number may go on in the next chunk
            self._pos = end
            return value, self._buf[start:end]

    def _cut_off(self, exc: json.JSONDecodeError) -> bool:
        """Whether the error may only mean that the value goes on after the buffer."""
        return exc.pos >= len(self._buf) - 6 or exc.msg.startswith("Unterminated string")

    def _room_for_more(self, start: int) -> bool:
        if len(self._buf) - start > strict_json.MAX_VALUE_CHARS:
            raise PayloadTooLarge(
                f"A point (or another member of the body) is longer than "
                f"{strict_json.MAX_VALUE_CHARS} characters")
        return self._more()

    # -- document --------------------------------------------------------------------------
    def points(self) -> list[Any]:
        """The points of `data`, each reduced to the members of a point."""
        if self._peek() != "{":
            value, _ = self._value()
            raise _not_an_object()
        self._pos += 1
        data: Any = _MISSING
        seen: set[str] = set()
        if self._peek() == "}":
            self._pos += 1
        else:
            while True:
                key, _ = self._value()
                if not isinstance(key, str):
                    raise BadRequest("Request body is not valid JSON: a key must be a string")
                if key in seen:
                    raise strict_json.repeated_key_problem(strict_json.RepeatedKey(key))
                seen.add(key)
                self._expect(":")
                if key == "data" and self._peek() == "[":
                    data = self._array()
                else:
                    value, _ = self._value()
                    if key == "data":
                        data = value
                if self._expect(",}") == "}":
                    break
        if self._peek():
            raise BadRequest("Request body is not valid JSON: text after the object")
        if data is _MISSING:
            raise _not_an_object()
        return data

    def _array(self) -> list[Any]:
        self._pos += 1
        points: list[Any] = []
        if self._peek() == "]":
            self._pos += 1
            return points
        while True:
            value, text = self._value()
            points.append(strict_json.read_point(value, text))
            if len(points) > self.max_points:
                raise too_many_points(self.max_points)
            if self._expect(",]") == "]":
                return points


_MISSING = object()


def _not_an_object() -> InvalidInput:
    return InvalidInput("Request body must be an object with a 'data' list of points",
                        errors=[field_error("data", "is required")])


def too_many_points(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"Batch has more than {limit} points; the limit is {limit} per "
                           "request", errors=[field_error("data", f"more than {limit} points")])
