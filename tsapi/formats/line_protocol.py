"""InfluxDB line protocol: text to (measurement, tags, fields, timestamp) lines.

`measurement[,tag=value…] field=value[,field=value…] [timestamp]`, one point per line.
Lines without a backslash or a double quote (nearly all of them) take a fast path of str
splits; the others are scanned character by character, so escapes and quoted strings
(which may span lines) are read exactly.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from tsapi.errors import PayloadTooLarge

FieldValue = float | int | bool | str

TRUE = frozenset(("t", "T", "true", "True", "TRUE"))
FALSE = frozenset(("f", "F", "false", "False", "FALSE"))
# Which characters a backslash escapes, per element; before anything else it is literal.
# Names have no escaped backslash (InfluxDB's encoders leave their backslashes alone).
_MEASUREMENT_ESCAPES = frozenset(", ")
_KEY_ESCAPES = frozenset(",= ")
_STRING_ESCAPES = frozenset('"\\')


class Line(NamedTuple):
    number: int
    measurement: str
    tags: tuple[tuple[str, str], ...]  # in the order written; duplicates: the last wins
    fields: list[tuple[str, FieldValue]]
    timestamp: int | None
    text: str  # the line as sent, for error messages


@dataclass(frozen=True)
class LineError:
    number: int
    reason: str
    text: str

    def __str__(self) -> str:
        shown = self.text if len(self.text) <= 80 else self.text[:77] + "..."
        return f"line {self.number}: {self.reason}: '{shown}'"


class _Bad(ValueError):
    """A line is malformed; the message says why."""


class _Unterminated(_Bad):
    """A quoted string reaches the end of the text (it may go on in text still to come)."""


def parse(text: str) -> tuple[list[Line], list[LineError]]:
    """Every well-formed line, and every malformed one with its number and reason."""
    errors: list[LineError] = []
    lines = list(scan(text, errors))
    return lines, errors


def scan(text: str, errors: list[LineError], max_lines: int | None = None) -> Iterator[Line]:
    """The well-formed lines of text one at a time (see LineReader)."""
    return LineReader(errors, max_lines).lines([text])


# A longer line is refused: a point's line is at most a 65,536-character string field, escaped,
# and tags. Pieces are re-scanned only while a line is unfinished, so this also bounds the work.
MAX_LINE_CHARS = 1024 * 1024


class LineReader:
    """Line protocol read from pieces of text as they arrive.

    Lines are yielded one at a time, each malformed one added to `errors`: a reader can stop
    early (at the batch limit) without parsing the rest, and more than max_lines lines of
    points (good or bad) is PayloadTooLarge. A line whose quoted string goes on in the next
    piece is read again once more text has come.
    """

    def __init__(self, errors: list[LineError], max_lines: int | None = None):
        self.errors = errors
        self.max_lines = max_lines
        self.heads: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {}
        self.number = 0
        self.yielded = 0

    def lines(self, pieces: Iterable[str]) -> Iterator[Line]:
        carry = ""
        in_string = False  # carry ends inside a quoted string: only a quote can end it
        for piece in pieces:
            if in_string and '"' not in piece:
                carry += piece
            else:
                text = carry + piece
                cut = text.rfind("\n") + 1
                if cut == 0:
                    carry = text
                else:
                    rest = yield from self._scan(text[:cut], final=False)
                    in_string = rest is not None
                    carry = text[rest if in_string else cut:]
            if len(carry) > MAX_LINE_CHARS:
                raise PayloadTooLarge(f"line {self.number + 1} is longer than "
                                      f"{MAX_LINE_CHARS} characters")
        if carry:
            yield from self._scan(carry, final=True)

    def _scan(self, text: str, final: bool) -> Generator[Line, None, int | None]:
        """The lines of text; when not final, stops at a line whose quoted string reaches
        the end of text and returns where that line starts."""
        errors, heads, max_lines = self.errors, self.heads, self.max_lines
        pos, number, size = 0, self.number, len(text)
        while pos < size:
            if max_lines is not None and self.yielded + len(errors) > max_lines:
                raise PayloadTooLarge(f"Body has more than {max_lines} lines of points; the "
                                      f"limit is {max_lines} points per request")
            number += 1
            end = text.find("\n", pos)
            if end < 0:
                end = size
            line = text[pos:end]
            if '"' in line or "\\" in line:
                scanner = _Scanner(text, pos, number)
                try:
                    parsed = scanner.line()
                except _Unterminated as exc:
                    if not final:
                        self.number = number - 1
                        return pos
                    errors.append(LineError(number, str(exc), _shown(line.rstrip("\r"))))
                    parsed = None
                except _Bad as exc:
                    errors.append(LineError(number, str(exc), _shown(line.rstrip("\r"))))
                    parsed = None
                # A quoted string may hold newlines: go on after the line's real end.
                end = scanner.pos
                number += text.count("\n", pos, end)
                pos = end + 1
                if parsed is not None:
                    self.yielded += 1
                    self.number = number
                    yield parsed
                continue
            pos = end + 1
            line = line.strip()
            if not line or line[0] == "#":
                continue
            try:
                parsed = _fast_line(line, number, heads)
            except _Bad as exc:
                errors.append(LineError(number, str(exc), _shown(line)))
                continue
            self.yielded += 1
            self.number = number
            yield parsed
        self.number = number
        return None


def _shown(text: str) -> str:
    """As much of a bad line as its error shows: a body of long bad lines stays small."""
    return text if len(text) <= 81 else text[:81]


def _fast_line(line: str, number: int, heads: dict) -> Line:
    parts = line.split(" ")
    if len(parts) > 3 or "" in parts:
        parts = [p for p in parts if p]
    if len(parts) == 2:
        head, fields = parts
        timestamp = None
    elif len(parts) == 3:
        head, fields, stamp = parts
        timestamp = _timestamp(stamp)
    else:
        raise _Bad("expected 'measurement[,tags] fields [timestamp]'" if len(parts) < 2
                   else "unexpected text after the timestamp")
    known = heads.get(head)
    if known is None:
        known = heads[head] = _fast_head(head)
    out = []
    for item in fields.split(","):
        key, eq, raw = item.partition("=")
        if not key or not eq:
            raise _Bad(f"field '{item}' is not key=value")
        out.append((key, field_value(raw, key)))
    return Line(number, known[0], known[1], out, timestamp, line)


def _fast_head(head: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    measurement, *items = head.split(",")
    if not measurement:
        raise _Bad("missing measurement")
    tags = []
    for item in items:
        key, eq, value = item.partition("=")
        if not key or not value or "=" in value:
            raise _Bad(f"tag '{item}' is not key=value")
        tags.append((key, value))
    return measurement, tuple(tags)


def field_value(raw: str, key: str) -> FieldValue:
    """A field value without quotes: float, integer (i), unsigned (u) or boolean."""
    if not raw:
        raise _Bad(f"field '{key}' has no value")
    last = raw[-1]
    try:
        if last == "i" or last == "u":
            digits = raw[:-1]
            if "_" in digits or not digits or digits[0] == "+":
                raise ValueError
            number = int(digits)
            if last == "u" and (number < 0 or digits[0] == "-"):
                raise _Bad(f"field '{key}' is unsigned but negative")
            return number
        if raw in TRUE:
            return True
        if raw in FALSE:
            return False
        if "_" in raw or raw[0] == "+":
            raise ValueError
        value = float(raw)
    except _Bad:
        raise
    except ValueError:
        raise _Bad(f"field '{key}' has an invalid value '{raw[:64]}'") from None
    if not math.isfinite(value):
        raise _Bad(f"field '{key}' has an invalid value '{raw[:64]}'")
    return value


def _timestamp(raw: str) -> int:
    if "_" in raw or raw[0] == "+":
        raise _Bad(f"invalid timestamp '{raw[:64]}'")
    try:
        return int(raw)
    except ValueError:
        raise _Bad(f"invalid timestamp '{raw[:64]}'") from None


class _Scanner:
    """Reads one line from `pos`, honouring escapes and quoted strings."""

    def __init__(self, text: str, pos: int, number: int):
        self.text = text
        self.pos = self.start = pos
        self.number = number

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else "\n"

    def _skip_spaces(self) -> None:
        while self._peek() == " ":
            self.pos += 1

    def _at_line_end(self) -> bool:
        c = self._peek()
        return c == "\n" or (c == "\r" and self.text[self.pos + 1:self.pos + 2] in ("", "\n"))

    def _finish_line(self) -> None:
        """Move past the rest of the line after an error, so the next line is read."""
        end = self.text.find("\n", self.pos)
        self.pos = len(self.text) if end < 0 else end

    def _token(self, stops: str, escapes: frozenset[str]) -> str:
        """Characters up to an unescaped stop character (or the line's end)."""
        out = []
        text = self.text
        while True:
            c = self._peek()
            if c in stops or c == "\n" or (c == "\r" and self._at_line_end()):
                return "".join(out)
            if c == "\\" and self.pos + 1 < len(text) and text[self.pos + 1] in escapes:
                out.append(text[self.pos + 1])
                self.pos += 2
                continue
            out.append(c)
            self.pos += 1

    def line(self) -> Line | None:
        try:
            return self._line()
        except _Bad:
            self._finish_line()
            raise

    def _line(self) -> Line | None:
        self._skip_spaces()
        if self._at_line_end() or self._peek() == "#":
            self._finish_line()
            return None
        measurement = self._token(", ", _MEASUREMENT_ESCAPES)
        if not measurement:
            raise _Bad("missing measurement")
        tags = []
        while self._peek() == ",":
            self.pos += 1
            key = self._token("=, ", _KEY_ESCAPES)
            if self._peek() != "=" or not key:
                raise _Bad(f"tag '{key}' is not key=value")
            self.pos += 1
            value = self._token("=, ", _KEY_ESCAPES)
            if not value or self._peek() == "=":
                raise _Bad(f"tag '{key}' has no value")
            tags.append((key, value))
        if self._peek() not in " ":
            raise _Bad("missing fields")
        self._skip_spaces()
        fields = [self._field()]
        while self._peek() == ",":
            self.pos += 1
            fields.append(self._field())
        timestamp = None
        if not self._at_line_end():
            if self._peek() not in " ":
                raise _Bad("expected a space after the fields")
            self._skip_spaces()
            if not self._at_line_end():
                raw = self._token(" ", frozenset())
                timestamp = _timestamp(raw)
                self._skip_spaces()
                if not self._at_line_end():
                    raise _Bad("unexpected text after the timestamp")
        self._finish_line()
        text = self.text[self.start:self.pos].rstrip("\r")
        return Line(self.number, measurement, tuple(tags), fields, timestamp, text)

    def _field(self) -> tuple[str, FieldValue]:
        key = self._token("=, ", _KEY_ESCAPES)
        if not key or self._peek() != "=":
            raise _Bad(f"field '{key}' is not key=value")
        self.pos += 1
        if self._peek() == '"':
            return key, self._string(key)
        raw = self._token(", ", frozenset())
        if '"' in raw or "\\" in raw:
            raise _Bad(f"field '{key}' has an invalid value '{raw[:64]}'")
        return key, field_value(raw, key)

    def _string(self, key: str) -> str:
        """A double-quoted string: \\" and \\\\ are escapes, other backslashes literal."""
        text = self.text
        self.pos += 1
        out = []
        while True:
            if self.pos >= len(text):
                raise _Unterminated(f"field '{key}' has an unterminated string")
            c = text[self.pos]
            if c == '"':
                self.pos += 1
                return "".join(out)
            if c == "\\" and self.pos + 1 < len(text) and text[self.pos + 1] in _STRING_ESCAPES:
                out.append(text[self.pos + 1])
                self.pos += 2
                continue
            out.append(c)
            self.pos += 1
