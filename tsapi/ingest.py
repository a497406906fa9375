"""Ingest: from a request body to stored points, all or nothing."""

from __future__ import annotations

from typing import Any

import orjson
from flask import current_app, request

from tsapi.cache import CATALOG, response_cache
from tsapi.errors import ApiError, InvalidInput, PayloadTooLarge, field_error
from tsapi.store import database
from tsapi.store.writer import WriteResult, write_batch
from tsapi.validation import validate_points


def read_points_body() -> list[Any]:
    """The list of raw point objects in the request body ({"data": [...]})."""
    raw = request.get_data(cache=False)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(f"Request body is not valid JSON: {exc}", status=400) from None
    if not isinstance(body, dict) or "data" not in body:
        raise InvalidInput(
            "Request body must be an object with a 'data' list of points",
            errors=[field_error("data", "is required")],
        )
    return body["data"]


def ingest_points(data: Any) -> WriteResult | None:
    """Validate and store a batch; None for an empty batch, which changes nothing."""
    limit = current_app.config["TSAPI_MAX_BATCH_POINTS"]
    if isinstance(data, list) and len(data) > limit:
        raise PayloadTooLarge(
            f"Batch has {len(data)} points; the limit is {limit} per request",
            errors=[field_error("data", f"more than {limit} points")],
        )
    batch = validate_points(data)
    if not batch:
        return None
    db = database()
    result = write_batch(db.engine, batch, db.series_cache)
    changed = list(result.metric_names) + ([CATALOG] if result.catalog_changed else [])
    response_cache().bump(changed)
    return result
