"""Queries: from validated request arguments to result rows, cached and formatted."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from tsapi.errors import BadRequest, InvalidInput, field_error, metric_not_found
from tsapi.formats import aggregations
from tsapi.formats.fill import fill_rows
from tsapi.formats.rendering import MIMETYPES, Rendered, render_rows, stream_rows
from tsapi.services.runtime import Runtime
from tsapi.store.buckets import BucketQuery, bucket_starts, fetch_buckets, last_before
from tsapi.store.catalog import Metric, get_metric
from tsapi.store.queries import (
    RawQuery,
    Selection,
    raw_json,
    raw_key_at,
    raw_statement,
    stream_raw,
    use_timezone,
)

# Every raw row rendered by raw_json starts so; inside a JSON string the quote is escaped,
# so this cannot occur within a value.
ROW_START = ',{"time":'


def run_query(rt: Runtime, args: dict[str, Any], fmt: str) -> Rendered | Iterator[bytes]:
    """The response body (and headers) for a /query request, from the cache when fresh."""
    names = args["metrics"] if "metrics" in args else [args["metric"]]
    aggregation = args.get("aggregation")
    # Without an aggregation the old service returned raw points even when an interval was
    # given; keep that meaning.
    interval = args.get("interval") if aggregation else None
    if interval is not None:
        _check_bucket_count(args, interval, rt.limits.max_query_buckets)
    if fmt != "json" and aggregation is None and not ({"limit", "cursor"} & set(args)):
        return _stream_export(rt, args, names, fmt)

    cache = rt.cache
    key = _cache_key(args, names, fmt, cache)
    if key:
        hit = cache.get(key)
        if hit is not None:
            return Rendered(*hit)
    rendered = _compute(rt, args, names, fmt)
    if key and len(rendered.body) <= rt.limits.max_cached_bytes:
        cache.set(key, (rendered.body, rendered.mimetype, rendered.headers))
    return rendered


def _compute(rt: Runtime, args: dict[str, Any], names: list[str], fmt: str) -> Rendered:
    db = rt.db
    multi = "metrics" in args
    group_by = tuple(args.get("group_by") or ())
    rows: list[dict[str, Any]] = []
    # One snapshot for all of a request's statements: a page and the cursor after it, or
    # buckets and their fill seeds, must not see different data.
    with db.reader().connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        use_timezone(conn, args.get("timezone"))
        if args.get("aggregation") is None:
            return _raw_page(conn, args, _resolve(conn, names, None), group_by, multi, fmt,
                            rt.limits.max_raw_rows)
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
            raise metric_not_found(name)
        if aggregation and aggregation.numeric_only and metric.value_type != "number":
            raise BadRequest(
                f"Aggregation '{aggregation.name}' is only supported for numeric metrics; "
                f"metric '{metric.name}' holds strings (use count, first, last or "
                "count_distinct)"
            )
        metrics.append(metric)
    return metrics


@dataclass(frozen=True)
class PageCursor:
    """Where the next page starts: a metric (by position), and a row key within it."""

    metric_index: int
    after: tuple[datetime, int] | None  # None: from the metric's first row


def _raw_page(conn, args, metrics: list[Metric], group_by, multi: bool, fmt: str,
              server_max: int) -> Rendered:
    """Raw rows up to the limit (the request's or the server's), across metrics in order.

    A result cut by the limit says so (X-Tsapi-Truncated) and, without group_by, carries
    X-Tsapi-Next-Cursor: every point comes exactly once across pages.
    """
    limit = min(args.get("limit") or server_max, server_max)
    cursor = _decode_cursor(args) if "cursor" in args else PageCursor(0, None)
    as_json = fmt == "json"
    parts, headers, remaining = [], {}, limit
    for i in range(cursor.metric_index, len(metrics)):
        metric = metrics[i]
        after = cursor.after if i == cursor.metric_index else None
        q = RawQuery(Selection(metric, args.get("tags") or {}), args["start_time"],
                     args["end_time"], args.get("order") == "desc", remaining + 1, after,
                     group_by)
        name = metric.name if multi else None
        # JSON is rendered by the database; CSV and NDJSON pages from Python rows.
        payload, count = raw_json(conn, q, name) if as_json else _raw_rows(conn, q, name)
        if count > remaining:
            if remaining:
                payload = payload[:payload.rfind(ROW_START)] if as_json else payload[:-1]
                parts.append(payload)
                next_cursor = PageCursor(i, raw_key_at(conn, q, remaining - 1))
            else:
                next_cursor = PageCursor(i, None)
            headers["X-Tsapi-Truncated"] = "true"
            if not group_by:
                headers["X-Tsapi-Next-Cursor"] = _encode_cursor(args, next_cursor)
            if (args.get("limit") or server_max) > server_max:
                headers["X-Tsapi-Limit"] = str(server_max)
            break
        parts.append(payload)
        remaining -= count
    if as_json:
        body = ("[" + ",".join(p for p in parts if p) + "]").encode()
        return Rendered(body, MIMETYPES["json"], headers)
    rendered = render_rows([row for part in parts for row in part], fmt, group_by, multi)
    rendered.headers.update(headers)
    return rendered


def _raw_rows(conn, q: RawQuery, metric: str | None) -> tuple[list[dict], int]:
    rows = []
    for r in conn.execute(raw_statement(q)):
        row = {"time": r[0], "value": r[1]}
        if q.group_by:
            row["tags"] = dict(zip(q.group_by, r[3:], strict=True))
        if metric is not None:
            row["metric"] = metric
        rows.append(row)
    return rows, len(rows)


def _buckets(conn, storage, args, selection: Selection, group_by) -> list[dict]:
    q = BucketQuery(selection, args["start_time"], args["end_time"], args["aggregation"],
                    args.get("interval") if args.get("aggregation") else None,
                    args.get("timezone"), group_by)
    mode = args.get("fill", "none")
    aggregation = q.aggregation
    text_results = selection.metric.value_type == "string" and aggregation.name in (
        "first", "last")
    if text_results and mode in ("zero", "linear"):
        raise BadRequest(f"fill '{mode}' needs numbers; '{aggregation.name}' of metric "
                       f"'{selection.metric.name}' gives strings (use null or previous)")
    found = [tuple(r) for r in fetch_buckets(conn, storage, q)]
    if mode != "none" and q.interval is not None:
        # A point's own value only stands in for a bucket whose aggregate is such a value
        # (an average, a percentile, a first...), never for a count, a sum or a rate.
        seeded = mode in ("previous", "linear") and aggregations.keeps_values(aggregation)
        seeds = last_before(conn, q) if seeded else {}
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


def _stream_export(rt: Runtime, args, names: list[str], fmt: str) -> Iterator[bytes]:
    """CSV/NDJSON raw export from a server-side cursor: memory stays flat at any size."""
    db = rt.db
    multi = "metrics" in args
    group_by = tuple(args.get("group_by") or ())
    with db.reader().connect() as conn:
        metrics = _resolve(conn, names, None)

    def generate():
        with db.reader().connect() as conn:
            use_timezone(conn, args.get("timezone"))
            first = True
            for metric in metrics:
                q = RawQuery(Selection(metric, args.get("tags") or {}), args["start_time"],
                             args["end_time"], args.get("order") == "desc", None, None,
                             group_by)
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


def _encode_cursor(args: dict[str, Any], cursor: PageCursor) -> str:
    after = cursor.after
    raw = orjson.dumps({
        "m": cursor.metric_index,
        "t": after[0].astimezone(UTC).isoformat() if after else None,
        "s": after[1] if after else None,
        "q": _fingerprint(args),
    })
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(args: dict[str, Any]) -> PageCursor:
    text = args["cursor"]
    try:
        data = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        index, fingerprint = int(data["m"]), data["q"]
        after = None
        if data["t"] is not None:
            after = (datetime.fromisoformat(data["t"]), int(data["s"]))
        names = args["metrics"] if "metrics" in args else [args["metric"]]
        if not 0 <= index < len(names):
            raise ValueError(index)
    except (ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        raise InvalidInput("cursor is not a cursor this service issued",
                           errors=[field_error("cursor", "is malformed")]) from None
    if fingerprint != _fingerprint(args):
        raise InvalidInput(
            "cursor belongs to a different query (metrics, tags, range and order must match)",
            errors=[field_error("cursor", "does not match this query")])
    return PageCursor(index, after)


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


def _check_bucket_count(args: dict[str, Any], interval, limit: int) -> None:
    # Buckets are aligned to 2000: a long one can start years before start_time.
    if interval.approx_seconds() * 2 > (args["start_time"] - datetime(1, 1, 3, tzinfo=UTC)) \
            .total_seconds():
        raise InvalidInput(
            f"Buckets of {interval} would start before year 1; use a shorter interval",
            errors=[field_error("interval", "reaches before year 1 from this start_time")])
    span = (args["end_time"] - args["start_time"]).total_seconds()
    buckets = span / interval.approx_seconds()
    if buckets > limit:
        raise InvalidInput(
            f"The range holds about {int(buckets)} buckets of {interval}; the limit is "
            f"{limit}: use a longer interval or a shorter range",
            errors=[field_error("interval", f"more than {limit} buckets in the range")],
        )
