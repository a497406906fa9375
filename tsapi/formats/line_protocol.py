"""InfluxDB line protocol: text to (measurement, tags, fields, timestamp) lines.

`measurement[,tag=value…] field=value[,field=value…] [timestamp]`, one point per line.
Lines without a backslash or a double quote (nearly all of them) take a fast path of str
splits; the others are scanned character by character, so escapes and quoted strings
(which may span lines) are read exactly.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator

from tsapi.errors import PayloadTooLarge
from tsapi.formats.line_protocol_scanner import QuotedLineScanner, fast_line
from tsapi.formats.line_protocol_values import BadLine, Line, LineError, UnterminatedString

__all__ = ["MAX_LINE_CHARS", "Line", "LineError", "LineReader", "parse", "scan"]


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
                scanner = QuotedLineScanner(text, pos, number)
                try:
                    parsed = scanner.line()
                except UnterminatedString as exc:
                    if not final:
                        self.number = number - 1
                        return pos
                    errors.append(LineError(number, str(exc), _shown(line.rstrip("\r"))))
                    parsed = None
                except BadLine as exc:
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
                parsed = fast_line(line, number, heads)
            except BadLine as exc:
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
