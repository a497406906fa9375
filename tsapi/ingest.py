"""Ingest: from a request body to stored points, all or nothing."""

from __future__ import annotations

import json
from typing import Any

import orjson
from flask import current_app, request

from tsapi.cache import CATALOG, response_cache
from tsapi.errors import ApiError, InvalidInput, PayloadTooLarge, field_error
from tsapi.store import database
from tsapi.store.catalog import metric_types
from tsapi.store.writer import WriteResult, write_batch
from tsapi.validation import MAX_REPORTED_ERRORS, batch_error, validate_points


def read_points_body() -> tuple[list[Any], bytes]:
    """The list of raw point objects in the request body ({"data": [...]}), and the body."""
    raw = request.get_data(cache=False)
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
    return body["data"], raw


def ingest_points(data: Any, raw: bytes | None = None) -> WriteResult | None:
    """Validate and store a batch; None for an empty batch, which changes nothing."""
    limit = current_app.config["TSAPI_MAX_BATCH_POINTS"]
    if isinstance(data, list) and len(data) > limit:
        raise PayloadTooLarge(
            f"Batch has {len(data)} points; the limit is {limit} per request",
            errors=[field_error("data", f"more than {limit} points")],
        )
    try:
        batch = validate_points(data)
        if batch.maybe_wide_integer and raw is not None:
            # Rare: re-read with the standard parser, which keeps integers exact, so that
            # 18446744073709551616 is refused instead of stored as 1.8446744073709552e19.
            data = json.loads(raw)["data"]
            batch = validate_points(data)
    except InvalidInput as exc:
        raise _with_type_conflicts(exc, data) from None
    if not batch:
        return None
    db = database()
    result = write_batch(db.engine, batch, db.series_cache)
    changed = list(result.metric_names) + ([CATALOG] if result.catalog_changed else [])
    response_cache().bump(changed)
    return result


def _value_kind(point: Any) -> tuple[str, str] | None:
    """(metric, "number" | "string") of a point whose metric and value are well formed."""
    if not isinstance(point, dict) or not isinstance(point.get("metric"), str):
        return None
    value = point.get("value")
    if isinstance(value, str):
        return point["metric"], "string"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return point["metric"], "number"
    return None


def _with_type_conflicts(exc: InvalidInput, data: Any) -> InvalidInput:
    """Add type mismatches to a rejected batch's errors, so one answer lists every problem.

    The writer checks types against the database only for batches that pass validation;
    a batch that already failed is checked here, read-only, as the writer would.
    """
    if not isinstance(data, list) or not exc.errors or len(exc.errors) >= MAX_REPORTED_ERRORS:
        return exc
    kinds = [_value_kind(p) for p in data]
    names = sorted({k[0] for k in kinds if k})
    if not names:
        return exc
    with database().engine.connect() as conn:
        expected = metric_types(conn, names)
    flagged = {e["field"] for e in exc.errors}
    errors = list(exc.errors)
    for i, kind in enumerate(kinds):
        if kind is None:
            continue
        name, actual = kind
        want = expected.setdefault(name, actual)  # a new metric: its first point decides
        field = f"data[{i}].value"
        if actual != want and field not in flagged:
            errors.append(field_error(
                field, f"metric '{name}' holds {want} values; got a {actual}", index=i))
    errors.sort(key=lambda e: e.get("index", -1))
    return batch_error(errors)
