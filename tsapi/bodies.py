"""Request bodies of ingest: JSON or NDJSON, plain or gzip-compressed, size-capped."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any, NamedTuple

from flask import current_app, request

from tsapi import strict_json
from tsapi.csv_points import csv_points
from tsapi.errors import ApiError, InvalidInput, PayloadTooLarge, field_error

NDJSON_TYPES = {"application/x-ndjson", "application/ndjson", "application/jsonl"}
CSV_TYPES = {"text/csv", "application/csv"}

# Re-reads the body with the exact parser, which keeps integers exact.
Reparse = Callable[[], list[Any]]


class PointsBody(NamedTuple):
    points: list[Any]
    reparse: Reparse
    lines: list[int] | None = None  # each point's line, for bodies whose errors name lines


def body_bytes() -> bytes:
    """The request body, decompressed when sent with Content-Encoding: gzip."""
    raw = request.get_data(cache=False)
    encoding = (request.headers.get("Content-Encoding") or "identity").lower()
    if encoding == "identity":
        return raw
    if encoding not in ("gzip", "x-gzip"):
        raise ApiError(f"Content-Encoding '{encoding}' is not supported; use gzip",
                       status=415)
    limit = current_app.config["TSAPI_MAX_BODY_BYTES"]
    # Decompress at most limit + 1 bytes: a small bomb cannot make us allocate gigabytes.
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise ApiError(f"Request body is not valid gzip: {exc}", status=400) from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"Decompressed body exceeds {limit} bytes")
    if not inflater.eof:
        raise ApiError("Request body is truncated gzip", status=400)
    return out


def read_points_body() -> PointsBody:
    """The raw point objects of the body, and how to re-read them exactly."""
    raw = body_bytes()
    if request.mimetype in NDJSON_TYPES:
        points = _ndjson(raw, strict_json.loads)
        strict_json.ensure_unique_keys(raw, strict_json.point_members(points),
                                       lambda: _ndjson(raw, strict_json.loads_exactly))
        return PointsBody(points, lambda: _ndjson(raw, strict_json.loads_exactly))
    if request.mimetype in CSV_TYPES:
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
        except ApiError as exc:
            errors.append(field_error(f"line {number}", exc.detail))
    if errors:
        raise InvalidInput(f"{len(errors)} NDJSON line(s) are not valid JSON; nothing was "
                           f"stored. First: {errors[0]['field']}", errors=errors[:1000])
    return points
