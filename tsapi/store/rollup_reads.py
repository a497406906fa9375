"""Bucketed aggregates answered from rollups: materialized, still-valid level buckets from
the rollup table, everything else (the head past the watermark, invalidated buckets, edges
that do not fill a level bucket) from raw points, combined in one statement.

Both parts become partial aggregates of one shape (count, sum, min, max, first and last with
their times, and M2): a raw point is a partial of one. The combination is exact for
count, min, max, first and last; sum, avg and stddev differ from the raw path's only in the
order of float additions. Where points of different series share a time in one group,
first/last take the smallest/largest value of them, as the raw path does (store.buckets).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Double,
    Select,
    Text,
    and_,
    bindparam,
    case,
    cast,
    column,
    exists,
    func,
    literal,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by

from tsapi.config import RollupLevel
from tsapi.store.buckets import TS, BucketQuery, bucket_expression, fetch_buckets
from tsapi.store.engine import StorageInfo
from tsapi.store.queries import json_float, json_tags, json_time
from tsapi.store.rollup_combine import combined_value, single_value
from tsapi.store.rollup_coverage import Coverage, coverage
from tsapi.store.rollup_windows import Window, window_arrays
from tsapi.store.schema import (
    MATERIALIZABLE,
    UNMATERIALIZED,
    points,
    rollup_tables,
    series,
)

_BIGINT_ARRAY = ARRAY(BigInteger)
# What the rollup path can answer: every one of them combines exactly across buckets.
COMBINABLE = frozenset({"count", "sum", "avg", "min", "max", "first", "last", "stddev"})
# Where a value beyond MATERIALIZABLE is read raw, these may overflow on the raw path or not,
# depending on the points' number and order: such an answer is left to the raw path, and its
# statement combines only the small values (never raising; the answer is discarded).
ARITHMETIC = frozenset({"sum", "avg", "stddev"})


def fetch_rollup_buckets(conn: Connection, storage: StorageInfo, q: BucketQuery,
                         level: RollupLevel) -> tuple[list, bool]:
    """The same rows as buckets.fetch_buckets, and whether the rollup table answered any."""
    cover = coverage(conn, q, level)
    if cover is None:
        return fetch_buckets(conn, storage, q), False
    rows = conn.execute(rollup_statement(storage, q, level, cover)).all()
    if q.aggregation.name not in ARITHMETIC:
        return rows, True
    if all(r[-1] for r in rows):  # no value beyond MATERIALIZABLE in any group
        return [r[:-1] for r in rows], True
    return fetch_buckets(conn, storage, q), False


def rollup_json(conn: Connection, storage: StorageInfo, q: BucketQuery, level: RollupLevel,
                metric: str | None) -> str | None:
    """The answer's rows as JSON objects joined by commas, rendered by the
    database as the JSON encoder writes bucket rows (a year of hours leaves as one value, not
    8,760 rows made into Python objects); None when no rollup bucket can answer."""
    cover = coverage(conn, q, level)
    if cover is None:
        return None
    stmt = json_select(storage, q, rollup_statement(storage, q, level, cover),
                       literal(metric) if metric is not None else None)
    body, ok = conn.execute(stmt).one()
    return None if ok is False else (body or "")


def json_select(storage: StorageInfo, q: BucketQuery, statement: Select, metric) -> Select:
    """(the rows of `statement` as JSON objects joined by commas, whether every value was
    small enough to combine); `metric`, an expression, names the metric in each row."""
    answer = statement.order_by(None).subquery("answer")
    value_text = json_value(q, answer.c.value)
    # Interval buckets start on whole minutes, which to_json spells as Python does.
    time = (json_time(answer.c.bucket) if q.interval is None
            else cast(func.to_json(answer.c.bucket), Text))
    text = literal('{"time":') + time + literal(',"value":') + value_text
    groups = [answer.c[f"g{i}"] for i in range(len(q.group_by))]
    if groups:
        text = text + literal(',"tags":') + json_tags(list(zip(q.group_by, groups,
                                                               strict=True)))
    if metric is not None:
        text = text + literal(',"metric":') + cast(func.to_json(cast(metric, Text)), Text)
    order = [g.asc().nulls_first() for g in groups]
    ok = func.bool_and(answer.c.small) if q.aggregation.name in ARITHMETIC else literal(True)
    return select(func.string_agg(
        text + literal("}"), aggregate_order_by(literal(","), *order, answer.c.bucket)), ok)


def json_value(q: BucketQuery, value) -> ColumnElement:
    """An answer's value as JSON text, spelled as the JSON encoder spells it."""
    if q.aggregation.name == "count":
        return cast(value, Text)
    return func.coalesce(json_float(value), literal("null"))


PARTIAL = ("tkey", "sid", "n", "s", "mn", "mx", "ft", "fv", "lt", "lv", "m2")
# Up to this many distinct raw time windows each become a branch with constant bounds; more
# are read through one join over the windows' arrays, bounded by their overall span.
MAX_WINDOW_BRANCHES = 8


def _raw_points(windows: list[Window]):
    """Selects of the points in the windows, as partials of one point each. Every branch
    bounds time by constants: TimescaleDB then plans only the chunks they overlap (bounds
    known only at run time, from the arrays alone, have it plan every chunk of points:
    ~40 ms for a year of daily chunks, whatever the range asked)."""
    t, cols = points.c.time, _point_partial()
    by_span: dict[tuple[datetime, datetime], list[int]] = {}
    for sid, lo, hi in windows:
        by_span.setdefault((lo, hi), []).append(sid)
    if len(by_span) <= MAX_WINDOW_BRANCHES:
        return [select(*cols).where(
            points.c.series_id == func.any(bindparam(f"raw_sids{i}", sids, type_=_BIGINT_ARRAY)),
            t >= lo, t < hi)
            for i, ((lo, hi), sids) in enumerate(sorted(by_span.items()))]
    raw = window_arrays(windows, "rawwin")
    lo, hi = min(w[1] for w in windows), max(w[2] for w in windows)
    return [select(*cols).select_from(raw.join(points, and_(
        points.c.series_id == raw.c.sid, t >= raw.c.lo, t < raw.c.hi))).where(t >= lo, t < hi)]


def _point_partial(source=points):
    v, t = source.c.value_num, source.c.time
    return (t.label("tkey"), source.c.series_id.label("sid"), literal(1, BigInteger).label("n"),
            v.label("s"), v.label("mn"), v.label("mx"), t.label("ft"), v.label("fv"),
            t.label("lt"), v.label("lv"), literal(0.0, Double).label("m2"))


def _guessed_raw_points(cover: Coverage):
    """Under a guess, cover.raw holds spans (lo, hi) read for every selected series, through
    points_between: the statement's plan holds no chunk of points, and can be kept."""
    ids = func.array(cover.series_ids, type_=_BIGINT_ARRAY)  # ARRAY(SELECT ...)
    branches = []
    for i, (lo, hi) in enumerate(cover.raw):
        found = points_between(ids, lo, hi, f"edge{i}")
        # An empty edge (a range starting or ending on a boundary) calls nothing: a filter
        # on parameters alone is checked once, before the function would be called.
        branches.append(select(*_point_partial(found)).where(lo < hi))
    return branches


def points_between(series_ids, lo, hi, name: str):
    """The points (time, series_id, value_num) of `series_ids` (an array) in [lo, hi), read
    by migration 0007's function: its query is planned with each call's values, so that
    TimescaleDB plans only the chunks of points the range overlaps, even from a statement
    with a kept generic plan."""
    return func.tsapi_points_between(series_ids, lo, hi).table_valued(
        column("time", TS), column("series_id", BigInteger), column("value_num", Double),
    ).render_derived(name=name)


def _partials(q: BucketQuery, level: RollupLevel, cover: Coverage):
    """(tkey, sid, n, s, mn, mx, ft, fv, lt, lv, m2) from both sources."""
    r = rollup_tables[level.name]
    from_rollups = select(*(c.label(name) for c, name in zip((
        r.c.bucket, r.c.series_id, r.c.count, r.c.sum, r.c.min, r.c.max, r.c.first_time,
        r.c.first_value, r.c.last_time, r.c.last_value, r.c.m2), PARTIAL, strict=True)),
    ).where(
        _of_series(r, cover),
        r.c.bucket >= cover.covered_from,
        r.c.bucket < cover.covered_until,
    )
    if cover.stale:
        stale = window_arrays(cover.stale, "stale")
        from_rollups = from_rollups.where(~exists().where(
            stale.c.sid == r.c.series_id, r.c.bucket >= stale.c.lo, r.c.bucket < stale.c.hi))
    raw = (_raw_points(cover.raw) if isinstance(cover.series_ids, list)
           else _guessed_raw_points(cover))
    parts = [*raw, from_rollups]
    return (union_all(*parts) if len(parts) > 1 else parts[0]).subquery("parts")


def rollup_statement(storage: StorageInfo, q: BucketQuery, level: RollupLevel,
                     cover: Coverage) -> Select:
    """Rows of (bucket start, *group values, value), in the raw statement's order."""
    if _one_part_per_bucket(q, level, cover):
        return _direct_statement(q, level, cover)
    parts = _partials(q, level, cover)
    groups = [series.c.tags[key].astext.label(f"g{i}") for i, key in enumerate(q.group_by)]
    if q.interval is None:
        bucket = literal(q.start, TS)
    else:
        bucket = bucket_expression(storage, q.interval, parts.c.tkey, q.timezone)
    source = parts.join(series, series.c.id == parts.c.sid) if groups else parts
    arithmetic = q.aggregation.name in ARITHMETIC
    small = func.greatest(func.abs(parts.c.mn), func.abs(parts.c.mx)) <= MATERIALIZABLE
    sums = {c: case((small, parts.c[c]), else_=0.0) if arithmetic else parts.c[c]
            for c in ("s", "m2")}
    inner_cols = [bucket.label("bucket"), *groups, *[parts.c[c] for c in (
        "n", "mn", "mx", "ft", "fv", "lt", "lv")], *[v.label(c) for c, v in sums.items()],
        *([small.label("small")] if arithmetic else [])]
    inner = select(*inner_cols).select_from(source).subquery("partial")
    group_cols = [inner.c[f"g{i}"] for i in range(len(groups))]
    value = combined_value(q.aggregation.name, inner.c).label("value")
    flag = [func.bool_and(inner.c.small).label("small")] if arithmetic else []
    order = [g.asc().nulls_first() for g in group_cols]
    if q.interval is None:
        stmt = select(literal(q.start, TS).label("bucket"), *group_cols, value, *flag).having(
            func.sum(inner.c.n) > 0)
        if group_cols:
            stmt = stmt.group_by(*group_cols)
        return stmt.order_by(*order)
    return (select(inner.c.bucket, *group_cols, value, *flag)
            .group_by(*group_cols, inner.c.bucket).order_by(*order, inner.c.bucket))


def _of_series(r, cover: Coverage):
    """Rows of the covered series. Under a guess (a subquery of series) marker rows are left
    out too: when the guess is wrong the rows are discarded, but must not raise meanwhile."""
    if isinstance(cover.series_ids, list):
        return r.c.series_id == func.any(bindparam("cover_sids", cover.series_ids,
                                                   type_=_BIGINT_ARRAY))
    return and_(r.c.series_id.in_(cover.series_ids),
                r.c.count != literal_column(str(UNMATERIALIZED)))


def level_wide(q: BucketQuery, level: RollupLevel) -> bool:
    """Whether the query's buckets are exactly the level's."""
    return (q.interval is not None and not q.interval.is_monthly
            and q.interval.micros == level.seconds * 1_000_000)


def _one_part_per_bucket(q: BucketQuery, level: RollupLevel, cover: Coverage) -> bool:
    """Whether every answer bucket is one row of the rollup table: one series, buckets as
    wide as the level's, nothing to read raw (a subquery of series is guessed to hold one
    per answer group: rollup_aligned checks it in the same statement, and keys its kept
    statements by whether buckets are the level's own)."""
    one = len(cover.series_ids) == 1 if isinstance(cover.series_ids, list) else True
    return level_wide(q, level) and one and not cover.raw


def _direct_statement(q: BucketQuery, level: RollupLevel, cover: Coverage) -> Select:
    """The answer straight from the rollup rows, in index order: nothing to combine (a year
    of hours would otherwise be grouped and sorted once more)."""
    r = rollup_tables[level.name]
    groups = [series.c.tags[key].astext.label(f"g{i}") for i, key in enumerate(q.group_by)]
    source = r.join(series, series.c.id == r.c.series_id) if groups else r
    value = single_value(q.aggregation.name, r.c).label("value")
    # Rollup rows hold only values within MATERIALIZABLE.
    flag = [literal(True).label("small")] if q.aggregation.name in ARITHMETIC else []
    return (select(r.c.bucket.label("bucket"), *groups, value, *flag).select_from(source)
            .where(_of_series(r, cover), r.c.bucket >= cover.covered_from,
                   r.c.bucket < cover.covered_until)
            .order_by(r.c.bucket))
