"""Ingest bodies read from bytes: gzip within a size cap, then JSON, NDJSON or CSV points."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any, NamedTuple

from tsapi.errors import (
    BadRequest,
    InvalidInput,
    PayloadTooLarge,
    TsapiError,
    UnsupportedMediaType,
    field_error,
)
from tsapi.formats import strict_json
from tsapi.formats.csv_points import csv_points

NDJSON_TYPES = {"application/x-ndjson", "application/ndjson", "application/jsonl"}
CSV_TYPES = {"text/csv", "application/csv"}

# Re-reads the body with the exact parser, which keeps integers exact.
Reparse = Callable[[], list[Any]]


class PointsBody(NamedTuple):
    points: list[Any]
    reparse: Reparse
    lines: list[int] | None = None  # each point's line, for bodies whose errors name lines


def decode_content(raw: bytes, encoding: str | None, limit: int) -> bytes:
    """The body as sent, decompressed when its Content-Encoding is gzip, at most limit bytes."""
    encoding = (encoding or "identity").lower()
    if encoding == "identity":
        return raw
    if encoding not in ("gzip", "x-gzip"):
        raise UnsupportedMediaType(f"Content-Encoding '{encoding}' is not supported; use gzip")
    # Decompress at most limit + 1 bytes: a small bomb cannot make us allocate gigabytes.
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise BadRequest(f"Request body is not valid gzip: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"Decompressed body exceeds {limit} bytes")
    if not inflater.eof:
        raise BadRequest("Request body is truncated gzip")
    return out


def parse_points(raw: bytes, mimetype: str) -> PointsBody:
    """The raw point objects of a body of this media type, and how to re-read them exactly."""
    if mimetype in NDJSON_TYPES:
        points = _ndjson(raw, strict_json.loads)
        strict_json.ensure_unique_keys(raw, strict_json.point_members(points),
                                       lambda: _ndjson(raw, strict_json.loads_exactly))
        return PointsBody(points, lambda: _ndjson(raw, strict_json.loads_exactly))
    if mimetype in CSV_TYPES:
        points, lines = csv_points(raw)  # integers are already exact
        return PointsBody(points, lambda: points, lines)
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
    return PointsBody(data, lambda: strict_json.loads_exactly(raw)["data"])


def _ndjson(raw: bytes, loads: Callable[[bytes], Any]) -> list[Any]:
    """One point object per line; blank lines are skipped. Errors name the line."""
    points, errors = [], []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            points.append(loads(line))
        except TsapiError as exc:
            errors.append(field_error(f"line {number}", exc.detail))
    if errors:
        raise InvalidInput(f"{len(errors)} NDJSON line(s) are not valid JSON; nothing was "
                           f"stored. First: {errors[0]['field']}", errors=errors[:1000])
    return points
