"""Running a plan: the store executes its statements, formats.rendering shapes the rows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from sqlalchemy import Connection

from tsapi.errors import metric_not_found
from tsapi.formats.fill import fill_rows
from tsapi.formats.rendering import (
    Rendered,
    bucket_row,
    json_array,
    raw_row,
    render_rows,
    stream_rows,
    without_last_json_row,
)
from tsapi.services.query.cursor import PageCursor, encode_cursor
from tsapi.services.query.planner import (
    BucketPlan,
    ExportPlan,
    Plan,
    RawPagePlan,
    RollupPlan,
    check_aggregable,
)
from tsapi.services.query.request import QueryRequest
from tsapi.store.buckets import bucket_starts, fetch_buckets, last_before
from tsapi.store.catalog import Metric, MetricCache, get_metric
from tsapi.store.engine import Database, StorageInfo
from tsapi.store.queries import (
    RawQuery,
    raw_json,
    raw_key_at,
    raw_statement,
    series_group_count,
    stream_raw,
    use_timezone,
)
from tsapi.store.rollup_aligned import GUESS_WRONG, aligned, aligned_json
from tsapi.store.rollup_reads import fetch_rollup_buckets, rollup_json

# How a bucket answer was computed: rollup-1m or rollup-1h when that level's table was read
# and the answer holds at least one bucket; raw otherwise. An answer without buckets (no
# points in range) says raw on either path: nothing was read from a rollup to give it.
ANSWERED_FROM = "X-Tsapi-Answered-From"


def resolve_metrics(conn: Connection, request: QueryRequest,
                    cache: MetricCache | None = None) -> list[Metric]:
    """The request's metrics, in its order: NotFound for an unknown one, BadRequest for one
    its aggregation cannot take. What is found (or not) is remembered in `cache`."""
    metrics = []
    for name in request.metrics:
        metric = get_metric(conn, name)
        if metric is None:
            if cache is not None:
                cache.discard(name)
            raise metric_not_found(name)
        if cache is not None:
            cache.update({name: metric})
        check_aggregable(request.aggregation, metric)
        metrics.append(metric)
    return metrics


def series_groups(conn: Connection, plan: BucketPlan) -> list[int]:
    """Per query of the plan, the series groups its answer can hold (one count in the
    catalog per distinct metric; 1 without group_by, which needs no count)."""
    counts: dict[int, int] = {}
    result = []
    for q in plan.queries:
        if not q.group_by:
            result.append(1)
            continue
        metric_id = q.selection.metric.id
        if metric_id not in counts:
            counts[metric_id] = series_group_count(conn, q.selection, q.group_by)
        result.append(counts[metric_id])
    return result


def execute(conn: Connection, storage: StorageInfo, plan: Plan, guess: bool = True) -> Rendered:
    """The rendered answer of a page or bucket plan, all statements on `conn` (an export
    streams through stream_export instead); without `guess`, a rollup answer reads its
    coverage first (rollup_aligned's guess was found wrong already)."""
    use_timezone(conn, plan.output.timezone)
    match plan:
        case RawPagePlan():
            return _raw_page(conn, plan)
        case BucketPlan():
            return _buckets(plan, lambda q: (fetch_buckets(conn, storage, q), False),
                            conn, storage, "raw")
        case RollupPlan():
            level = plan.level
            if plan.output.fmt == "json" and plan.buckets.fill == "none":
                return _rollup_json(plan.buckets, conn, storage, level, guess)
            return _buckets(plan.buckets,
                            lambda q: fetch_rollup_buckets(conn, storage, q, level),
                            conn, storage, f"rollup-{level.name}")
    raise TypeError(f"{type(plan).__name__} is not answered in one piece")


def _raw_page(conn: Connection, plan: RawPagePlan) -> Rendered:
    """A result cut at the page size says so (X-Tsapi-Truncated) and, without group_by,
    carries X-Tsapi-Next-Cursor: every point comes exactly once across pages."""
    out, start = plan.output, plan.start
    as_json = out.fmt == "json"
    parts, headers, remaining = [], {}, plan.page_size
    for i in range(start.metric_index, len(plan.queries)):
        # One row more than fits tells whether the page is cut here.
        after = start.after if i == start.metric_index else None
        q = replace(plan.queries[i], limit=remaining + 1, after=after)
        label = out.label(q.selection.metric)
        # JSON is rendered by the database; CSV and NDJSON pages from Python rows.
        payload, count = raw_json(conn, q, label) if as_json else _raw_rows(conn, q, label)
        if count > remaining:
            if remaining:
                parts.append(without_last_json_row(payload) if as_json else payload[:-1])
                next_page = PageCursor(i, raw_key_at(conn, q, remaining - 1))
            else:
                next_page = PageCursor(i, None)
            headers["X-Tsapi-Truncated"] = "true"
            if plan.issues_cursor:
                headers["X-Tsapi-Next-Cursor"] = encode_cursor(plan.request, next_page)
            if plan.capped_at is not None:
                headers["X-Tsapi-Limit"] = str(plan.capped_at)
            break
        parts.append(payload)
        remaining -= count
    if as_json:
        rendered = json_array(parts)
    else:
        rows = [row for part in parts for row in part]
        rendered = render_rows(rows, out.fmt, out.group_by, out.multi)
    rendered.headers.update(headers)
    return rendered


def _raw_rows(conn: Connection, q: RawQuery, label: str | None) -> tuple[list[dict], int]:
    rows = [raw_row(r, q.group_by, label) for r in conn.execute(raw_statement(q))]
    return rows, len(rows)


def _buckets(plan: BucketPlan, fetch, conn: Connection, storage: StorageInfo,
             source: str) -> Rendered:
    """`fetch(query)` gives a query's rows and whether a rollup table answered them; the
    answer says how in X-Tsapi-Answered-From (the source when any did, else raw)."""
    out = plan.output
    rows, used = [], False
    for q in plan.queries:
        found, from_rollup = fetch(q)
        found = [tuple(r) for r in found]
        used |= from_rollup and bool(found)
        if plan.fill != "none":
            seeds = last_before(conn, q) if plan.seeded else {}
            found = fill_rows(found, bucket_starts(conn, storage, q), plan.fill, seeds)
        label = out.label(q.selection.metric)
        rows.extend(bucket_row(r, out.group_by, label) for r in found)
    rendered = render_rows(rows, out.fmt, out.group_by, out.multi)
    rendered.headers[ANSWERED_FROM] = source if used else "raw"
    return rendered


def _rollup_json(plan: BucketPlan, conn: Connection, storage: StorageInfo, level,
                 guess: bool) -> Rendered:
    """A JSON answer without fill, rendered by the database wherever a rollup answers (long
    ranges have many buckets), else from rows as _buckets renders them."""
    out = plan.output
    parts, used = [], False
    for q in plan.queries:
        label = out.label(q.selection.metric)
        # A range on the level's boundaries: coverage and rows in one round trip.
        found = (aligned_json(conn, storage, q, level, label) if guess and aligned(q, level)
                 else GUESS_WRONG)
        if found is GUESS_WRONG:
            found = rollup_json(conn, storage, q, level, label)
        if found is None:
            rows = [bucket_row(r, out.group_by, label) for r in fetch_buckets(conn, storage, q)]
            body = render_rows(rows, "json", out.group_by, out.multi).body
            parts.append(body[1:-1].decode())
        else:
            parts.append(found)
            used |= bool(found)
    rendered = json_array(parts)
    rendered.headers[ANSWERED_FROM] = f"rollup-{level.name}" if used else "raw"
    return rendered


def stream_export(db: Database, plan: ExportPlan) -> Iterator[bytes]:
    """The export's chunks, read from a server-side cursor as the response is sent."""
    out = plan.output

    def generate():
        with db.reader().connect() as conn:
            use_timezone(conn, out.timezone)
            for i, q in enumerate(plan.queries):
                yield from stream_rows(stream_raw(conn, q), out.fmt, out.group_by,
                                       out.label(q.selection.metric), header=i == 0)

    return generate()
