"""Queries: from validated request arguments to result rows."""

from __future__ import annotations

from typing import Any

from flask import current_app

from tsapi import aggregations
from tsapi.errors import ApiError, InvalidInput, NotFound, field_error
from tsapi.store import database
from tsapi.store.catalog import get_metric
from tsapi.store.queries import PointQuery, fetch_points


def run_query(args: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of {"time", "value"} ordered by time, for the request's metric and range."""
    db = database()
    aggregation = args.get("aggregation")
    # Without an aggregation the old service returned raw points even when an interval was
    # given; keep that meaning.
    interval = args.get("interval") if aggregation else None
    if interval is not None:
        _check_bucket_count(args, interval)
    with db.engine.connect() as conn:
        metric = get_metric(conn, args["metric"])
        if metric is None:
            raise NotFound(f"Metric '{args['metric']}' not found")
        if aggregation and aggregation not in aggregations.ANY_TYPE and (
            metric.value_type != "number"
        ):
            raise ApiError(
                f"Aggregation '{aggregation}' is only supported for numeric metrics; "
                f"metric '{metric.name}' holds strings (use count)",
                status=400,
            )
        q = PointQuery(metric, args["start_time"], args["end_time"], aggregation, interval)
        rows = fetch_points(conn, db.storage, q)
    return [{"time": t, "value": v} for t, v in rows]


def _check_bucket_count(args: dict[str, Any], interval) -> None:
    limit = current_app.config["TSAPI_MAX_QUERY_BUCKETS"]
    span = (args["end_time"] - args["start_time"]).total_seconds()
    buckets = span / interval.approx_seconds()
    if buckets > limit:
        raise InvalidInput(
            f"The range holds about {int(buckets)} buckets of {interval}; the limit is "
            f"{limit}: use a longer interval or a shorter range",
            errors=[field_error("interval", f"more than {limit} buckets in the range")],
        )
