"""Request bodies of ingest: JSON or NDJSON, plain or gzip-compressed, size-capped."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from typing import Any, NamedTuple

import orjson
from flask import current_app, request

from tsapi.csv_points import csv_points
from tsapi.errors import ApiError, InvalidInput, PayloadTooLarge, field_error

NDJSON_TYPES = {"application/x-ndjson", "application/ndjson", "application/jsonl"}
CSV_TYPES = {"text/csv", "application/csv"}

# Re-reads the body with the standard parser, which keeps integers exact.
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
        return PointsBody(_ndjson(raw, orjson.loads), lambda: _ndjson(raw, json.loads))
    if request.mimetype in CSV_TYPES:
        points, lines = csv_points(raw)  # integers are already exact
        return PointsBody(points, lambda: points, lines)
    return PointsBody(_json_data(raw), lambda: json.loads(raw)["data"])


def _json_data(raw: bytes) -> list[Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # orjson refuses numbers beyond a double (1e999) and NaN/Infinity; the standard
        # parser reads them as non-finite floats, so the validator can name the point.
        try:
            body = json.loads(raw)
        except ValueError:
            raise ApiError(f"Request body is not valid JSON: {exc}", status=400) from None
    if not isinstance(body, dict) or "data" not in body:
        raise InvalidInput(
            "Request body must be an object with a 'data' list of points",
            errors=[field_error("data", "is required")],
        )
    return body["data"]


def _ndjson(raw: bytes, loads: Callable[[bytes], Any]) -> list[Any]:
    """One point object per line; blank lines are skipped. Errors name the line."""
    points, errors = [], []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            points.append(loads(line))
        except ValueError:
            try:
                points.append(json.loads(line))  # 1e999, NaN: let the validator name them
            except ValueError as exc:
                errors.append(field_error(f"line {number}", f"is not valid JSON: {exc}"))
    if errors:
        raise InvalidInput(f"{len(errors)} NDJSON line(s) are not valid JSON; nothing was "
                           f"stored. First: {errors[0]['field']}", errors=errors[:1000])
    return points
