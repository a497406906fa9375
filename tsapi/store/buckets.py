"""Time-bucketed aggregates: time_bucket on TimescaleDB, the same arithmetic on plain PG."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    INTEGER,
    Connection,
    DateTime,
    Select,
    bindparam,
    case,
    cast,
    distinct,
    extract,
    func,
    literal,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import INTERVAL, aggregate_order_by
from sqlalchemy.sql import ColumnElement

from tsapi.formats.aggregations import Aggregation
from tsapi.formats.intervals import BucketInterval
from tsapi.store.engine import StorageInfo
from tsapi.store.queries import Selection, group_columns, latest_per_series, points_in_range
from tsapi.store.rollup_combine import SIGNED_ZERO_FREE, unsigned_zero
from tsapi.store.schema import points

# time_bucket's default origin (a Monday); date_bin uses the same so that both kinds of
# database put bucket edges in the same places.
BUCKET_ORIGIN = datetime.fromisoformat("2000-01-03T00:00:00")
MONTH_ORIGIN_YEAR = 2000
TS = DateTime(timezone=True)


@dataclass(frozen=True)
class BucketQuery:
    selection: Selection
    start: datetime
    end: datetime
    aggregation: Aggregation
    interval: BucketInterval | None = None
    timezone: str | None = None
    group_by: tuple[str, ...] = ()


def bucket_expression(
    storage: StorageInfo,
    interval: BucketInterval,
    time_col: ColumnElement,
    timezone: str | None = None,
) -> ColumnElement:
    """The bucket start for each point, as TimescaleDB's time_bucket computes it."""
    width = cast(bindparam("bucket_width", str(interval)), INTERVAL)
    if storage.timescaledb:
        if timezone:
            return func.time_bucket(width, time_col, bindparam("bucket_tz", timezone))
        return func.time_bucket(width, time_col)
    zone = bindparam("bucket_tz", timezone or "UTC")
    local = func.timezone(zone, time_col)  # wall-clock time in the zone, as timestamp
    if not interval.is_monthly:
        origin = bindparam("bucket_origin", BUCKET_ORIGIN, type_=DateTime(timezone=False))
        return func.timezone(zone, func.date_bin(width, local, origin))
    # date_bin cannot bin by months: truncate to the month, then step back to the bucket's
    # first month, counting months from January 2000 as time_bucket does.
    index = (extract("year", local) - MONTH_ORIGIN_YEAR) * 12 + extract("month", local) - 1
    n = bindparam("bucket_months", interval.months)
    offset = cast(func.mod(func.mod(cast(index, INTEGER), n) + n, n), INTEGER)
    return func.timezone(zone, func.date_trunc("month", local) - func.make_interval(0, offset))


def _aggregate(q: BucketQuery, value, time_col, storage: StorageInfo):
    agg = q.aggregation
    name = agg.name
    if agg.percentile is not None:
        return func.percentile_cont(agg.percentile).within_group(value)
    if agg.picks_a_point or name == "delta":  # delta: last minus first
        # Points of several series may share the earliest (latest) time of a group: first
        # takes the smallest of their values, last the largest, on both backends and on the
        # rollup path alike (rollup_combine), never whichever the scan meets first.
        key = tuple_(time_col, value)
        first = (func.first(value, key) if storage.timescaledb
                 else func.array_agg(aggregate_order_by(value, time_col, value))[1])
        last = (func.last(value, key) if storage.timescaledb
                else func.array_agg(aggregate_order_by(value, time_col.desc(), value.desc()))[1])
        return {"first": first, "last": last, "delta": last - first}[name]
    simple = {
        "avg": func.avg, "sum": func.sum, "min": func.min, "max": func.max,
        "count": func.count, "stddev": func.stddev_samp,
    }
    if name in simple:
        return simple[name](value)
    if name == "median":
        return func.percentile_cont(0.5).within_group(value)
    if name == "count_distinct":
        return func.count(distinct(value))
    raise ValueError(f"unknown aggregation {name}")  # the schema's allowlist prevents this


def bucket_statement(storage: StorageInfo, q: BucketQuery) -> Select:
    """Rows of (bucket start, *group values, value), ordered by groups then time."""
    sel = q.selection
    groups = group_columns(q.group_by)
    if q.aggregation.is_counter:
        return _counter_statement(storage, q, groups)
    src = _source(q, sel.value_column, groups)
    value = _aggregate(q, src.c.value, src.c.time, storage)
    if q.aggregation.name in SIGNED_ZERO_FREE and sel.metric.value_type != "string":
        value = unsigned_zero(value)  # as the rollup path's (tsapi.store.rollup_combine)
    return _grouped(storage, q, src, value)


def _source(q: BucketQuery, value: ColumnElement, groups: list[ColumnElement]):
    """The points in range of the selected series: (time, value, *group values)."""
    return points_in_range(q.selection, q.start, q.end, [points.c.time, value.label("value")],
                           groups).subquery("src")


def _grouped(storage: StorageInfo, q: BucketQuery, src, value) -> Select:
    group_cols = [src.c[f"g{i}"] for i in range(len(q.group_by))]
    if q.interval is None:
        # One row per group for the whole range, stamped with its start.
        bucket = literal(q.start, TS).label("bucket")
        stmt = select(bucket, *group_cols, value.label("value")).having(func.count() > 0)
        if group_cols:
            stmt = stmt.group_by(*group_cols)
        return stmt.order_by(*[g.asc().nulls_first() for g in group_cols])
    bucket = bucket_expression(storage, q.interval, src.c.time, q.timezone).label("bucket")
    return (
        select(bucket, *group_cols, value.label("value"))
        .group_by(*group_cols, bucket)
        .order_by(*[g.asc().nulls_first() for g in group_cols], bucket)
    )


def _counter_statement(storage: StorageInfo, q: BucketQuery, groups) -> Select:
    """rate / increase: per series, each step from the previous point; a drop is a reset,
    after which the counter counted up from zero to its new value."""
    previous = func.lag(points.c.value_num).over(
        partition_by=points.c.series_id, order_by=points.c.time)
    step = case(
        (previous.is_(None), None),
        (points.c.value_num < previous, points.c.value_num),
        else_=points.c.value_num - previous,
    )
    src = _source(q, step, groups)
    increase = func.sum(src.c.value)
    if q.aggregation.name == "increase":
        return _grouped(storage, q, src, increase)
    if q.interval is None:
        seconds = (q.end - q.start).total_seconds()
        return _grouped(storage, q, src, increase / literal(seconds))
    # Per second of the bucket's own length (months and DST days differ in length).
    stmt = _grouped(storage, q, src, increase)
    inner = stmt.subquery("inc")
    width = cast(bindparam("bucket_width", str(q.interval)), INTERVAL)
    length = extract("epoch", (inner.c.bucket + width) - inner.c.bucket)
    others = [c for c in inner.c if c.key not in ("bucket", "value")]
    return select(inner.c.bucket, *others, (inner.c.value / length).label("value")).order_by(
        *[c.asc().nulls_first() for c in others], inner.c.bucket)


def fetch_buckets(conn: Connection, storage: StorageInfo, q: BucketQuery) -> list:
    return conn.execute(bucket_statement(storage, q)).all()


def bucket_starts(conn: Connection, storage: StorageInfo, q: BucketQuery) -> list[datetime]:
    """Every bucket start in [start, end), computed by the same function as the buckets."""
    assert q.interval is not None
    width = cast(bindparam("bucket_width", str(q.interval)), INTERVAL)
    first = bucket_expression(storage, q.interval, literal(q.start, TS), q.timezone)
    last = bucket_expression(storage, q.interval, literal(q.end, TS) - func.make_interval(
        0, 0, 0, 0, 0, 0, 0.000001), q.timezone)
    stmt = select(func.generate_series(first, last, width))
    return [r[0] for r in conn.execute(stmt)]


def last_before(conn: Connection, q: BucketQuery) -> dict[tuple, tuple[datetime, float]]:
    """Per group, the latest point before the range: the seed of previous/linear fill."""
    latest = latest_per_series(q.selection, *group_columns(q.group_by),
                               before=q.start).subquery("latest_before")
    # Read as UTC wall-clock time: rendered in the query's zone, a seed of year 1 (or 9999)
    # could be year 0 (or 10000), which the driver cannot read.
    stmt = select(func.timezone("UTC", latest.c.time), *list(latest.c)[1:])
    seeds: dict[tuple, tuple[datetime, float]] = {}
    for row in conn.execute(stmt):
        key, time = tuple(row[2:]), row[0].replace(tzinfo=UTC)
        if key not in seeds or time > seeds[key][0]:
            seeds[key] = (time, row[1])
    return seeds
