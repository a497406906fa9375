"""Ingest bodies read as they stream: JSON, NDJSON or CSV points, within the batch limit.

The point limit is counted while the body is read, and every reader holds one point's text
at a time (a small JSON body is parsed whole, which is faster and as bounded): a body over
the limit is refused when its first extra point arrives, not after all of it is parsed.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from tsapi.errors import InvalidInput, PayloadTooLarge, TsapiError, field_error
from tsapi.formats import strict_json
from tsapi.formats.body_stream import CHUNK_BYTES, ChunkFile
from tsapi.formats.csv_points import csv_points
from tsapi.formats.json_stream import JsonPointStream, too_many_points
from tsapi.formats.validation import WIDE_INT

NDJSON_TYPES = {"application/x-ndjson", "application/ndjson", "application/jsonl"}
CSV_TYPES = {"text/csv", "application/csv"}
# JSON bodies up to this size are parsed whole by orjson (about ten bytes of objects per byte
# of text); larger ones are read a point at a time.
WHOLE_JSON_BYTES = 8 * 1024 * 1024
MAX_REPORTED_LINES = 1000
_WHITESPACE = b" \t\r\n"

# Re-reads the body with the exact parser, which keeps integers exact.
Reparse = Callable[[], list[Any]]


class PointsBody(NamedTuple):
    points: list[Any]
    reparse: Reparse | None  # None: the points were read exactly already
    lines: list[int] | None = None  # each point's line, for bodies whose errors name lines


def parse_points(chunks: Iterable[bytes], mimetype: str, max_points: int) -> PointsBody:
    """The raw point objects of a body of this media type, read from its (decompressed)
    chunks; PayloadTooLarge as soon as there are more than max_points."""
    if mimetype in NDJSON_TYPES:
        return PointsBody(_ndjson(chunks, max_points), None)
    if mimetype in CSV_TYPES:
        points, lines = csv_points(chunks, max_points)  # integers are already exact
        return PointsBody(points, None, lines)
    chunks = iter(chunks)
    head = bytearray()
    for chunk in chunks:
        head += chunk
        if len(head) > WHOLE_JSON_BYTES:
            rest = itertools.chain((bytes(head),), chunks)
            del head
            return PointsBody(JsonPointStream(rest, max_points).points(), None)
    return _whole_json(bytes(head))


def _whole_json(raw: bytes) -> PointsBody:
    body = strict_json.loads(raw)
    if not isinstance(body, dict) or "data" not in body:
        raise InvalidInput(
            "Request body must be an object with a 'data' list of points",
            errors=[field_error("data", "is required")],
        )
    data = body["data"]
    members = strict_json.point_members(data) if isinstance(data, list) else None
    if members is not None:
        members += len(body)
    strict_json.ensure_unique_keys(raw, members, lambda: strict_json.loads_exactly(raw))
    if isinstance(data, list):
        strict_json.check_depth(data)
    return PointsBody(data, lambda: strict_json.loads_exactly(raw)["data"])


def _ndjson(chunks: Iterable[bytes], max_points: int) -> list[Any]:
    """One point object per line; blank lines are skipped. Errors name the line."""
    reader = io.BufferedReader(ChunkFile(chunks), CHUNK_BYTES)
    points: list[Any] = []
    errors: list[dict[str, Any]] = []
    bad_lines = number = 0
    while physical := reader.readline(strict_json.MAX_VALUE_CHARS + 1):
        if len(physical) > strict_json.MAX_VALUE_CHARS:
            raise PayloadTooLarge(f"line {number + 1} is longer than "
                                  f"{strict_json.MAX_VALUE_CHARS} bytes; nothing was stored")
        for line in physical.splitlines():
            number += 1
            if not line.strip():
                continue
            try:
                points.append(_ndjson_point(line))
            except InvalidInput:
                raise  # a repeated key: the whole body is refused, as in a JSON body
            except TsapiError as exc:
                bad_lines += 1
                if len(errors) < MAX_REPORTED_LINES:
                    errors.append(field_error(f"line {number}", exc.detail))
                continue
            if len(points) + bad_lines > max_points:
                raise too_many_points(max_points)
    if errors:
        raise InvalidInput(f"{bad_lines} NDJSON line(s) are not valid JSON; nothing was "
                           f"stored. First: {errors[0]['field']}", errors=errors)
    return points


def _ndjson_point(line: bytes) -> Any:
    """One line's point, read exactly and checked like a point of a JSON body."""
    point = strict_json.loads(line)
    members = strict_json.point_members([point])
    exact = members is None or line.translate(None, _WHITESPACE).count(b'":') != members
    if not exact and point.__class__ is dict:
        value = point.get("value")
        # orjson reads integers wider than 64 bits as floats: such a line is read again.
        exact = value.__class__ is float and not -WIDE_INT < value < WIDE_INT
    if exact:
        point = strict_json.loads_exactly(line)  # also raises for a repeated key
    return strict_json.reduce_point(point)
