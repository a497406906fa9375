"""Reading points back: raw ranges and time-bucketed aggregates, on TimescaleDB or plain PG."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    INTEGER,
    Connection,
    DateTime,
    bindparam,
    cast,
    extract,
    func,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import INTERVAL
from sqlalchemy.sql import ColumnElement

from tsapi.intervals import BucketInterval
from tsapi.store.catalog import Metric
from tsapi.store.engine import StorageInfo
from tsapi.store.schema import points, series

# time_bucket's default origin for timestamptz (a Monday); date_bin uses the same so that
# both kinds of database put bucket edges in the same places.
BUCKET_ORIGIN = datetime.fromisoformat("2000-01-03T00:00:00+00:00")
MONTH_ORIGIN_YEAR = 2000

_AGGREGATES = {
    "avg": func.avg,
    "sum": func.sum,
    "min": func.min,
    "max": func.max,
    "count": func.count,
}


@dataclass(frozen=True)
class PointQuery:
    metric: Metric
    start: datetime
    end: datetime
    aggregation: str | None = None
    interval: BucketInterval | None = None


def bucket_expression(
    storage: StorageInfo, interval: BucketInterval, time_col: ColumnElement
) -> ColumnElement:
    """The bucket start for each point, as time_bucket would compute it."""
    width = cast(bindparam("bucket_width", str(interval)), INTERVAL)
    if storage.timescaledb:
        return func.time_bucket(width, time_col)
    if not interval.is_monthly:
        origin = bindparam("bucket_origin", BUCKET_ORIGIN, type_=DateTime(timezone=True))
        return func.date_bin(width, time_col, origin)
    # date_bin cannot bin by months: truncate to the month in UTC, then step back to the
    # bucket's first month, counting months from January 2000 as time_bucket does.
    utc = literal("UTC")
    month = func.date_trunc("month", time_col, utc)
    local = func.timezone(utc, time_col)
    index = (
        (extract("year", local) - MONTH_ORIGIN_YEAR) * 12 + extract("month", local) - 1
    )
    n = bindparam("bucket_months", interval.months)
    offset = cast(func.mod(func.mod(cast(index, INTEGER), n) + n, n), INTEGER)
    return month - func.make_interval(0, offset)


def _series_of(metric: Metric):
    return select(series.c.id).where(series.c.metric_id == metric.id).scalar_subquery()


def _in_range(q: PointQuery):
    return (
        points.c.series_id.in_(_series_of(q.metric)),
        points.c.time >= q.start,
        points.c.time < q.end,
    )


def fetch_points(conn: Connection, storage: StorageInfo, q: PointQuery) -> list[tuple]:
    """Rows of (time, value), ordered by time."""
    value_col = points.c.value_text if q.metric.value_type == "string" else points.c.value_num
    if q.aggregation is None:
        stmt = (
            select(points.c.time, value_col)
            .where(*_in_range(q))
            .order_by(points.c.time, points.c.series_id)
        )
        return conn.execute(stmt).all()
    aggregate = _AGGREGATES[q.aggregation](value_col)
    if q.interval is None:
        # One row for the whole range, stamped with its start; none if the range is empty.
        stmt = (
            select(literal(q.start, DateTime(timezone=True)), aggregate)
            .where(*_in_range(q))
            .having(func.count() > 0)
        )
        return conn.execute(stmt).all()
    bucket = bucket_expression(storage, q.interval, points.c.time).label("bucket")
    stmt = (
        select(bucket, aggregate)
        .where(*_in_range(q))
        .group_by(bucket)
        .order_by(bucket)
    )
    return conn.execute(stmt).all()
