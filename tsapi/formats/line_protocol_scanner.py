"""Reading one line of line protocol: str splits for plain lines, a character scanner for
lines with escapes or quoted strings (which may span lines)."""

from __future__ import annotations

from tsapi.formats.line_protocol_values import (
    BadLine,
    FieldValue,
    Line,
    UnterminatedString,
    field_value,
    parse_timestamp,
)

# Which characters a backslash escapes, per element; before anything else it is literal.
# Names have no escaped backslash (InfluxDB's encoders leave their backslashes alone).
_MEASUREMENT_ESCAPES = frozenset(", ")
_KEY_ESCAPES = frozenset(",= ")
_STRING_ESCAPES = frozenset('"\\')


def fast_line(line: str, number: int, heads: dict) -> Line:
    parts = line.split(" ")
    if len(parts) > 3 or "" in parts:
        parts = [p for p in parts if p]
    if len(parts) == 2:
        head, fields = parts
        timestamp = None
    elif len(parts) == 3:
        head, fields, stamp = parts
        timestamp = parse_timestamp(stamp)
    else:
        raise BadLine("expected 'measurement[,tags] fields [timestamp]'" if len(parts) < 2
                   else "unexpected text after the timestamp")
    known = heads.get(head)
    if known is None:
        known = heads[head] = fast_head(head)
    out = []
    for item in fields.split(","):
        key, eq, raw = item.partition("=")
        if not key or not eq:
            raise BadLine(f"field '{item}' is not key=value")
        out.append((key, field_value(raw, key)))
    return Line(number, known[0], known[1], out, timestamp, line)


def fast_head(head: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    measurement, *items = head.split(",")
    if not measurement:
        raise BadLine("missing measurement")
    tags = []
    for item in items:
        key, eq, value = item.partition("=")
        if not key or not value or "=" in value:
            raise BadLine(f"tag '{item}' is not key=value")
        tags.append((key, value))
    _refuse_repeated_tags(tags)
    return measurement, tuple(tags)


def _refuse_repeated_tags(tags: list[tuple[str, str]]) -> None:
    # As InfluxDB 1.x refuses them ("duplicate tags"): which value names the series would be a
    # guess. A repeated field keeps its last value, as InfluxDB keeps it. Once per line, with
    # a set: comparing each tag with the earlier ones grew with the square of the tags, which
    # are counted against MAX_TAGS only after the line is read.
    if len(tags) < 2:
        return
    seen: set[str] = set()
    for key, _ in tags:
        if key in seen:
            raise BadLine(f"duplicate tag '{key}'")
        seen.add(key)


class QuotedLineScanner:
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
        except BadLine:
            self._finish_line()
            raise

    def _line(self) -> Line | None:
        self._skip_spaces()
        if self._at_line_end() or self._peek() == "#":
            self._finish_line()
            return None
        measurement = self._token(", ", _MEASUREMENT_ESCAPES)
        if not measurement:
            raise BadLine("missing measurement")
        tags = []
        while self._peek() == ",":
            self.pos += 1
            key = self._token("=, ", _KEY_ESCAPES)
            if self._peek() != "=" or not key:
                raise BadLine(f"tag '{key}' is not key=value")
            self.pos += 1
            value = self._token("=, ", _KEY_ESCAPES)
            if not value or self._peek() == "=":
                raise BadLine(f"tag '{key}' has no value")
            tags.append((key, value))
        _refuse_repeated_tags(tags)
        if self._peek() not in " ":
            raise BadLine("missing fields")
        self._skip_spaces()
        fields = [self._field()]
        while self._peek() == ",":
            self.pos += 1
            fields.append(self._field())
        timestamp = None
        if not self._at_line_end():
            if self._peek() not in " ":
                raise BadLine("expected a space after the fields")
            self._skip_spaces()
            if not self._at_line_end():
                raw = self._token(" ", frozenset())
                timestamp = parse_timestamp(raw)
                self._skip_spaces()
                if not self._at_line_end():
                    raise BadLine("unexpected text after the timestamp")
        self._finish_line()
        text = self.text[self.start:self.pos].rstrip("\r")
        return Line(self.number, measurement, tuple(tags), fields, timestamp, text)

    def _field(self) -> tuple[str, FieldValue]:
        key = self._token("=, ", _KEY_ESCAPES)
        if not key or self._peek() != "=":
            raise BadLine(f"field '{key}' is not key=value")
        self.pos += 1
        if self._peek() == '"':
            return key, self._string(key)
        raw = self._token(", ", frozenset())
        if '"' in raw or "\\" in raw:
            raise BadLine(f"field '{key}' has an invalid value '{raw[:64]}'")
        return key, field_value(raw, key)

    def _string(self, key: str) -> str:
        """A double-quoted string: \\" and \\\\ are escapes, other backslashes literal."""
        text = self.text
        self.pos += 1
        out = []
        while True:
            if self.pos >= len(text):
                raise UnterminatedString(f"field '{key}' has an unterminated string")
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
