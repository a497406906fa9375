"""CSV ingest bodies: a header naming time, metric and value (any order), then one point a row.

Values that look like numbers are numbers (integers kept exact), anything else is a string;
times are ISO-8601 or Unix seconds; each other column is a tag, an empty cell leaving it out.
So `time,metric,value,room` files load, and so do /query's CSV exports (`metric,room,time,value`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from typing import Any

from tsapi.errors import InvalidInput, PayloadTooLarge, field_error
from tsapi.formats.body_stream import ChunkFile

HEADER = ("time", "metric", "value")
# ASCII digits only, as JSON and line protocol read numbers: `\d`, int() and float() also
# take '١٢٣' or '１２' (any Unicode decimal digit), which would be stored as 123 and 12.
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(nan|inf|infinity)",
                     re.I)
_OTHER_DIGITS = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def csv_points(chunks: Iterable[bytes], max_points: int
               ) -> tuple[list[dict[str, Any]], list[int]]:
    """The rows as point objects for the validator, and each row's line number; read as the
    body streams, PayloadTooLarge as soon as there are more than max_points rows."""
    # Bytes that are not UTF-8 become lone surrogates, found line by line (_utf8_lines).
    text = io.TextIOWrapper(io.BufferedReader(ChunkFile(chunks)), encoding="utf-8-sig",
                            errors="surrogateescape", newline="")
    reader = csv.reader(_utf8_lines(text), strict=True)
    points: list[dict[str, Any]] = []
    lines: list[int] = []
    columns: tuple[int, int, int, list[tuple[int, str]]] | None = None
    last_line = 0
    try:
        for row in reader:
            line, last_line = last_line + 1, reader.line_num
            if not row or row == [""]:
                continue
            if columns is None:
                columns = _columns(row, line)
                width = len(row)
                continue
            if len(row) != width:
                raise _bad(line, f"has {len(row)} cells; the header has {width}")
            at_time, at_metric, at_value, tag_columns = columns
            point: dict[str, Any] = {"metric": row[at_metric],
                                     "value": _number(row[at_value], line, "value")}
            if row[at_time]:  # else the validator reports it as required
                point["time"] = _number(row[at_time], line, "time")
            if tag_columns:
                point["tags"] = {key: row[i] for i, key in tag_columns if row[i]}
            points.append(point)
            lines.append(line)
            if len(points) > max_points:
                raise PayloadTooLarge(
                    f"Body has more than {max_points} rows; the limit is {max_points} per "
                    "request", errors=[field_error("data", f"more than {max_points} points")])
    except csv.Error as exc:
        raise _bad(reader.line_num, f"is not valid CSV: {exc}") from None
    if columns is None:
        raise _bad(1, _HEADER_NEEDED)
    return points, lines


_NOT_UTF8 = re.compile("[\udc80-\udcff]")


def _utf8_lines(text: Iterable[str]) -> Iterator[str]:
    """The lines of text, refusing the first that held bytes that are not UTF-8."""
    for number, line in enumerate(text, start=1):
        if not line.isascii() and _NOT_UTF8.search(line):
            raise _bad(number, "is not valid UTF-8")
        yield line


_HEADER_NEEDED = "must be a header naming the columns time, metric and value, and any tags"


def _columns(header: list[str], line: int) -> tuple[int, int, int, list[tuple[int, str]]]:
    """Where time, metric and value are, and the other columns as (index, tag key)."""
    names = [name.strip() for name in header]
    lowered = [name.lower() for name in names]
    if any(lowered.count(column) != 1 for column in HEADER):
        raise _bad(line, _HEADER_NEEDED)
    at_time, at_metric, at_value = (lowered.index(column) for column in HEADER)
    tags = [(i, name) for i, name in enumerate(names) if i not in (at_time, at_metric, at_value)]
    keys = [key for _, key in tags]
    if any(not key for key in keys) or len(set(keys)) != len(keys):
        raise _bad(line, "tag columns need distinct, non-empty names")
    return at_time, at_metric, at_value, tags


def _number(cell: str, line: int, column: str) -> Any:
    """A number when the cell looks like one (so NaN reaches the validator), else the text;
    refused when it would be a number but for digits other than ASCII 0-9."""
    if not cell:
        return None
    stripped = cell.strip()
    if not stripped.isascii() and _OTHER_DIGITS.fullmatch(stripped):
        message = (f"is written with digits other than ASCII 0-9 ({stripped[:32]!r}); "
                   "numbers are ASCII digits only")
        raise InvalidInput(f"line {line} {column} {message}; nothing was stored",
                           errors=[field_error(f"line {line} {column}", message, line=line)])
    if _INTEGER.fullmatch(stripped):
        try:
            return int(stripped)
        except ValueError:  # beyond Python's 4,300-digit limit: the validator refuses inf
            return float(stripped)
    if _NUMBER.fullmatch(stripped):
        return float(stripped)
    return cell


def _bad(line: int, message: str) -> InvalidInput:
    return InvalidInput(f"line {line} {message}; nothing was stored",
                        errors=[field_error(f"line {line}", message, line=line)])
