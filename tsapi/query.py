"""Queries: from validated request arguments to result rows, cached and formatted."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
from flask import current_app

from tsapi.cache import response_cache
from tsapi.errors import ApiError, InvalidInput, NotFound, field_error
from tsapi.fill import fill_rows
from tsapi.formats import MIMETYPES, Rendered, render_rows, stream_rows
from tsapi.store import database
from tsapi.store.catalog import Metric, get_metric
from tsapi.store.queries import (
    BucketQuery,
    RawQuery,
    Selection,
    bucket_starts,
    fetch_buckets,
    last_before,
    raw_json,
    raw_key_at,
    stream_raw,
    use_timezone,
)

# Every raw row rendered by raw_json starts so; inside a JSON string the quote is escaped,
# so this cannot occur within a value.
ROW_START = ',{"time":'


def run_query(args: dict[str, Any], fmt: str) -> Rendered | Iterator[bytes]:
    """The response body (and headers) for a /query request, from the cache when fresh."""
    names = args["metrics"] if "metrics" in args else [args["metric"]]
    aggregation = args.get("aggregation")
    # Without an aggregation the old service returned raw points even when an interval was
    # given; keep that meaning.
    interval = args.get("interval") if aggregation else None
    if interval is not None:
        _check_bucket_count(args, interval)
    if fmt != "json" and aggregation is None:
        return _stream_export(args, names, fmt)

    cache = response_cache()
    key = _cache_key(args, names, fmt, cache)
    if key:
        hit = cache.get(key)
        if hit is not None:
            return Rendered(*hit)
    rendered = _compute(args, names, fmt)
    if key and len(rendered.body) <= current_app.config["TSAPI_MAX_CACHED_BYTES"]:
        cache.set(key, (rendered.body, rendered.mimetype, rendered.headers))
    return rendered


def _compute(args: dict[str, Any], names: list[str], fmt: str) -> Rendered:
    db = database()
    multi = "metrics" in args
    group_by = tuple(args.get("group_by") or ())
    rows: list[dict[str, Any]] = []
    with db.engine.connect() as conn:
        use_timezone(conn, args.get("timezone"))
        if args.get("aggregation") is None and fmt == "json":
            return _raw_json(conn, args, _resolve(conn, names, None), group_by, multi)
        for metric in _resolve(conn, names, args.get("aggregation")):
            selection = Selection(metric, args.get("tags") or {})
            for row in _buckets(conn, db.storage, args, selection, group_by):
                if multi:
                    row["metric"] = metric.name
                rows.append(row)
    return render_rows(rows, fmt, group_by, multi)


def _resolve(conn, names: list[str], aggregation) -> list[Metric]:
    metrics = []
    for name in names:
        metric = get_metric(conn, name)
        if metric is None:
            raise NotFound(f"Metric '{name}' not found")
        if aggregation and aggregation.numeric_only and metric.value_type != "number":
            raise ApiError(
                f"Aggregation '{aggregation.name}' is only supported for numeric metrics; "
                f"metric '{metric.name}' holds strings (use count, first, last or "
                "count_distinct)",
                status=400,
            )
        metrics.append(metric)
    return metrics


def _raw_json(conn, args, metrics: list[Metric], group_by, multi: bool) -> Rendered:
    """Raw rows as JSON, rendered by the database (see store.queries.raw_json)."""
    server_max = current_app.config["TSAPI_MAX_RAW_ROWS"]
    limit = min(args.get("limit") or server_max, server_max)
    after = _decode_cursor(args) if args.get("cursor") else None
    parts, headers = [], {}
    for metric in metrics:
        q = RawQuery(Selection(metric, args.get("tags") or {}), args["start_time"],
                     args["end_time"], args.get("order") == "desc", limit + 1, after, group_by)
        body, count = raw_json(conn, q, metric.name if multi else None)
        if count > limit:
            body = body[:body.rfind(ROW_START)]  # drop the extra row that showed the cut
            headers["X-Tsapi-Truncated"] = "true"
            if not group_by and not multi:
                time, series_id = raw_key_at(conn, q, limit - 1)
                headers["X-Tsapi-Next-Cursor"] = _encode_cursor(args, time, series_id)
            if (args.get("limit") or server_max) > server_max:
                headers["X-Tsapi-Limit"] = str(server_max)
        if body:
            parts.append(body)
    return Rendered(("[" + ",".join(parts) + "]").encode(), MIMETYPES["json"], headers)


def _buckets(conn, storage, args, selection: Selection, group_by) -> list[dict]:
    q = BucketQuery(selection, args["start_time"], args["end_time"], args["aggregation"],
                    args.get("interval") if args.get("aggregation") else None,
                    args.get("timezone"), group_by)
    found = [tuple(r) for r in fetch_buckets(conn, storage, q)]
    mode = args.get("fill", "none")
    if mode != "none" and q.interval is not None:
        seeds = last_before(conn, q) if mode in ("previous", "linear") else {}
        found = fill_rows(found, bucket_starts(conn, storage, q), mode, seeds)
    rows = []
    for r in found:
        row = {"time": r[0], "value": _number(r[-1])}
        if group_by:
            row["tags"] = dict(zip(group_by, r[1:-1], strict=True))
        rows.append(row)
    return rows


def _number(value):
    """percentile_cont and friends give Decimal or float; JSON wants plain numbers."""
    if value is None or isinstance(value, int | float | str):
        return value
    return float(value)


def _stream_export(args, names: list[str], fmt: str) -> Iterator[bytes]:
    """CSV/NDJSON raw export from a server-side cursor: memory stays flat at any size."""
    db = database()
    multi = "metrics" in args
    group_by = tuple(args.get("group_by") or ())
    with db.engine.connect() as conn:
        metrics = _resolve(conn, names, None)

    def generate():
        with db.engine.connect() as conn:
            use_timezone(conn, args.get("timezone"))
            first = True
            for metric in metrics:
                q = RawQuery(Selection(metric, args.get("tags") or {}), args["start_time"],
                             args["end_time"], args.get("order") == "desc", args.get("limit"),
                             _decode_cursor(args) if args.get("cursor") else None, group_by)
                rows = stream_raw(conn, q)
                yield from stream_rows(rows, fmt, group_by, metric.name if multi else None,
                                       header=first)
                first = False

    return generate()


# -- cursors --------------------------------------------------------------------------------
def _fingerprint(args: dict[str, Any]) -> str:
    """What a cursor belongs to: the same metrics, tags, range and order."""
    basis = orjson.dumps([args.get("metric"), args.get("metrics"), args.get("tags"),
                          args["start_time"], args["end_time"], args.get("order")],
                         option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(basis).hexdigest()[:16]


def _encode_cursor(args: dict[str, Any], time: datetime, series_id: int) -> str:
    raw = orjson.dumps({"t": time.astimezone(UTC).isoformat(), "s": series_id,
                        "q": _fingerprint(args)})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(args: dict[str, Any]) -> tuple[datetime, int]:
    text = args["cursor"]
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        data = orjson.loads(raw)
        time, series_id, fingerprint = datetime.fromisoformat(data["t"]), int(data["s"]), \
            data["q"]
    except (ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        raise InvalidInput("cursor is not a cursor this service issued",
                           errors=[field_error("cursor", "is malformed")]) from None
    if fingerprint != _fingerprint(args):
        raise InvalidInput(
            "cursor belongs to a different query (metrics, tags, range and order must match)",
            errors=[field_error("cursor", "does not match this query")])
    return time, series_id


# -- cache and limits -------------------------------------------------------------------------
def _cache_key(args: dict[str, Any], names: list[str], fmt: str, cache) -> str | None:
    """Keyed by the normalized request and each metric's generation; None: do not cache.

    Ingest bumps a metric's generation after it commits, so an entry can never outlive the
    data it was computed from. Ranges reaching into the future are not cached at all: the
    answer changes with every point that arrives.
    """
    if args["end_time"] > datetime.now(UTC):
        return None
    generations = cache.generations(names)
    if generations is None:
        return None
    normalized = orjson.dumps(
        {k: str(v) if k in ("interval", "aggregation") else v for k, v in args.items()},
        option=orjson.OPT_SORT_KEYS,
    )
    digest = hashlib.sha256(normalized + fmt.encode()).hexdigest()[:32]
    stamp = ".".join(map(str, generations))
    return f"query:{names[0]}:{stamp}:{digest}"


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
