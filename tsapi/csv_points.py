"""CSV ingest bodies: a `time,metric,value[,tag…]` header, then one point per row.

Values that look like numbers are numbers (integers kept exact), anything else is a string;
times are ISO-8601 or Unix seconds; each extra column is a tag, an empty cell leaving it out.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from tsapi.errors import InvalidInput, field_error

HEADER = ("time", "metric", "value")
_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(nan|inf|infinity)", re.I)


def csv_points(raw: bytes) -> tuple[list[dict[str, Any]], list[int]]:
    """The rows as point objects for the validator, and each row's line number."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise _bad(line, "is not valid UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    points: list[dict[str, Any]] = []
    lines: list[int] = []
    tag_keys: list[str] | None = None
    last_line = 0
    try:
        for row in reader:
            line, last_line = last_line + 1, reader.line_num
            if not row or row == [""]:
                continue
            if tag_keys is None:
                tag_keys = _tag_keys(row, line)
                continue
            if len(row) != len(tag_keys) + 3:
                raise _bad(line, f"has {len(row)} cells; the header has {len(tag_keys) + 3}")
            time, metric, value, *tags = row
            point: dict[str, Any] = {"metric": metric, "value": _number(value)}
            if time:  # else the validator reports it as required
                point["time"] = _number(time)
            if tag_keys:
                point["tags"] = {k: v for k, v in zip(tag_keys, tags, strict=True) if v}
            points.append(point)
            lines.append(line)
    except csv.Error as exc:
        raise _bad(reader.line_num, f"is not valid CSV: {exc}") from None
    if tag_keys is None:
        raise _bad(1, "must be the header time,metric,value[,tag…]")
    return points, lines


def _tag_keys(header: list[str], line: int) -> list[str]:
    names = [name.strip() for name in header]
    if tuple(name.lower() for name in names[:3]) != HEADER:
        raise _bad(line, "must be the header time,metric,value[,tag…]")
    keys = names[3:]
    if any(not key for key in keys) or len(set(keys)) != len(keys):
        raise _bad(line, "tag columns need distinct, non-empty names")
    return keys


def _number(cell: str) -> Any:
    """A number when the cell looks like one (so NaN reaches the validator), else the text."""
    if not cell:
        return None
    stripped = cell.strip()
    if _INTEGER.fullmatch(stripped):
        return int(stripped)
    if _NUMBER.fullmatch(stripped):
        return float(stripped)
    return cell


def _bad(line: int, message: str) -> InvalidInput:
    return InvalidInput(f"line {line} {message}; nothing was stored",
                        errors=[field_error(f"line {line}", message, line=line)])
