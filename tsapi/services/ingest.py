"""Ingest: from a request body to stored points, all or nothing."""

from __future__ import annotations

from typing import Any

from tsapi.errors import InvalidInput, PayloadTooLarge, field_error
from tsapi.formats.bodies import Reparse
from tsapi.formats.validation import (
    MAX_REPORTED_ERRORS,
    PointBatch,
    batch_error,
    check_metric_name,
    validate_points,
)
from tsapi.formats.value_types import type_conflicts, value_type
from tsapi.services.instruments import INGESTED_POINTS, REJECTED_POINTS
from tsapi.services.redis_riders import settle
from tsapi.services.response_cache import CATALOG
from tsapi.services.runtime import Runtime
from tsapi.store.catalog import metric_types
from tsapi.store.writer import WriteResult, write_batch


def ingest_points(rt: Runtime, data: Any, reparse: Reparse | None = None,
                  lines: list[int] | None = None) -> WriteResult | None:
    """Validate and store a batch; None for an empty batch, which changes nothing.

    With `lines` (each point's line in a text body), errors name lines, not indexes.
    """
    try:
        result = _ingest(rt, data, reparse)
    except (InvalidInput, PayloadTooLarge) as exc:
        REJECTED_POINTS.inc(len(data) if isinstance(data, list) else 0)
        if lines is None or not isinstance(exc, InvalidInput):
            raise
        raise naming_lines(exc, lines) from None
    if result:
        INGESTED_POINTS.inc(result.points)
    return result


def naming_lines(exc: InvalidInput, lines: list[int]) -> InvalidInput:
    """The same errors, naming each point by its line in the body instead of its index."""
    errors = []
    for error in exc.errors or []:
        index = error.get("index")
        if not isinstance(index, int) or not 0 <= index < len(lines):
            errors.append(error)
            continue
        prefix = f"data[{index}]"
        rest = error["field"].removeprefix(prefix).lstrip(".")
        line = lines[index]
        errors.append({**error, "field": f"line {line} {rest}".rstrip(), "line": line})
    return batch_error(errors) if errors else exc


def _ingest(rt: Runtime, data: Any, reparse: Reparse | None) -> WriteResult | None:
    limit = rt.limits.max_batch_points
    if isinstance(data, list) and len(data) > limit:
        raise PayloadTooLarge(
            f"Batch has {len(data)} points; the limit is {limit} per request",
            errors=[field_error("data", f"more than {limit} points")],
        )
    try:
        batch = validate_points(data)
        if batch.maybe_wide_integer and reparse is not None:
            # Rare: re-read with the standard parser, which keeps integers exact, so that
            # 18446744073709551616 is refused instead of stored as 1.8446744073709552e19.
            data = reparse()
            batch = validate_points(data)
    except InvalidInput as exc:
        raise _with_type_conflicts(rt, exc, data) from None
    return store_batch(rt, batch)


def store_batch(rt: Runtime, batch: PointBatch) -> WriteResult | None:
    """Store a validated batch and expire what it changes; None when the batch is empty."""
    # The rate limit's count, sent as the request started, is read now: a request over its
    # limit is refused here, before anything is stored (tsapi.services.redis_riders).
    settle()
    if not batch:
        return None
    result = write_batch(rt.db.engine, batch, rt.db.series_cache, rt.db.metric_cache)
    # Before the generations move: a reader that sees them also finds the write's position.
    rt.db.acknowledge_write()
    changed = list(result.metric_names) + ([CATALOG] if result.catalog_changed else [])
    rt.cache.bump(changed)
    return result


def _value_kind(point: Any) -> tuple[str, str] | None:
    """(metric, value type) of a point whose metric and value are well formed."""
    if not isinstance(point, dict) or check_metric_name(point.get("metric")) is not None:
        return None  # a malformed name (e.g. with NUL, which no query can carry) is not looked up
    kind = value_type(point.get("value"))
    return (point["metric"], kind) if kind else None


def _with_type_conflicts(rt: Runtime, exc: InvalidInput, data: Any) -> InvalidInput:
    """Add type mismatches to a rejected batch's errors, so one answer lists every problem.

    The writer checks types against the database only for batches that pass validation;
    a batch that already failed is checked here, read-only, by the writer's own rule.
    """
    if not isinstance(data, list) or not exc.errors or len(exc.errors) >= MAX_REPORTED_ERRORS:
        return exc
    kinds = [_value_kind(p) for p in data]
    names = sorted({k[0] for k in kinds if k})
    if not names:
        return exc
    settle()  # the rate limit before any database access (store_batch says why)
    with rt.db.engine.connect() as conn:
        expected = metric_types(conn, names)
    flagged = {e["field"] for e in exc.errors}
    conflicts = type_conflicts(((i, *kind) for i, kind in enumerate(kinds) if kind), expected)
    errors = list(exc.errors) + [e for e in conflicts if e["field"] not in flagged]
    errors.sort(key=lambda e: e.get("index", -1))
    return batch_error(errors)
