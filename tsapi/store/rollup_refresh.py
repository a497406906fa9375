"""Materializing rollups: closed buckets past each level's watermark, and logged changes.

Every step is one bounded transaction holding a transaction-level advisory lock, so two
refreshers take turns and never see each other's half-done work. Within a step the
invalidations are read before the points are: a write that commits later keeps its own
log entry, so nothing is lost between reading the log and deleting what was read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    Connection,
    Engine,
    case,
    delete,
    func,
    insert,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert

from tsapi.config import ROLLUP_LEVELS, RollupLevel
from tsapi.formats.intervals import BucketInterval
from tsapi.store.buckets import bucket_expression
from tsapi.store.engine import StorageInfo
from tsapi.store.rollup_log import LOCK_KEY
from tsapi.store.rollup_windows import (
    TS,
    ceil_to,
    floor_to,
    later,
    level_windows,
    window_arrays,
)
from tsapi.store.schema import (
    MATERIALIZABLE,
    UNMATERIALIZED,
    metrics,
    points,
    rollup_invalidations,
    rollup_tables,
    rollup_watermarks,
    series,
)

# Why buckets whose values are all within MATERIALIZABLE (1e130) can never overflow: with
# n < 9.3e18 points (count is a bigint), |sum| < 9.3e148; PostgreSQL's sum-of-squares update
# (Youngs-Cramer, used by avg and var_samp) squares x*n - sum, less than 2*n*1e130 = 1.9e149
# in magnitude: less than 3.5e298 (doubles end at 1.8e308), and M2 < 8*n*1e260 < 7.5e279;
# readers' Chan combination stays as far below. One value beyond (up to 1.8e308) could make
# a sum or its squares overflow, failing the statement for every series.
ROLLUP_COLUMNS = ("series_id", "bucket", "count", "sum", "min", "max", "first_time",
                  "first_value", "last_time", "last_value", "mean", "m2")


@dataclass(frozen=True)
class Budget:
    """What one transaction may take on: so many hours of buckets, so many log entries."""

    span: timedelta = timedelta(days=1)
    invalidations: int = 2000


@dataclass
class RefreshReport:
    steps: int = 0
    invalidations: int = 0
    watermarks: dict[str, datetime | None] = field(default_factory=dict)


def _aggregates(storage: StorageInfo, level: RollupLevel, windows):
    """Per window (sid, lo, hi) and bucket of the level: the rollup row of its points."""
    value, time = points.c.value_num, points.c.time
    interval = BucketInterval(micros=level.seconds * 1_000_000)
    bucket = bucket_expression(storage, interval, time).label("bucket")
    if storage.timescaledb:
        first, last = func.first(value, time), func.last(value, time)
    else:
        first = func.array_agg(aggregate_order_by(value, time))[1]
        last = func.array_agg(aggregate_order_by(value, time.desc()))[1]
    n = func.count()
    # Aggregates see every point whatever CASE surrounds them: the arithmetic ones only
    # the small values (a bucket with any other is a marker row, its sums unused).
    small = func.abs(value) <= MATERIALIZABLE
    per_bucket = (
        select(
            bucket, n.label("count"), func.sum(value).filter(small).label("sum"),
            func.min(value).label("min"), func.max(value).label("max"),
            func.min(time).label("first_time"), first.label("first_value"),
            func.max(time).label("last_time"), last.label("last_value"),
            func.avg(value).filter(small).label("mean"),
            # var_samp is PostgreSQL's stable (Youngs-Cramer) update; times n-1 it is M2.
            (func.var_samp(value).filter(small) * (n - 1)).label("m2"),
            func.max(func.abs(value)).label("magnitude"),
        )
        .where(points.c.series_id == windows.c.sid, time >= windows.c.lo, time < windows.c.hi)
        .group_by(bucket)
        .lateral("agg")
    )
    ok = per_bucket.c.magnitude <= MATERIALIZABLE
    cols = {c: per_bucket.c[c] for c in ROLLUP_COLUMNS[1:]}
    cols["count"] = case((ok, cols["count"]), else_=UNMATERIALIZED)
    for c in ("sum", "mean", "m2"):
        cols[c] = case((ok, func.coalesce(cols[c], 0.0)), else_=0.0)
    return select(windows.c.sid, *[cols[c].label(c) for c in ROLLUP_COLUMNS[1:]]).select_from(
        windows.join(per_bucket, true()))


def _rematerialize(conn: Connection, storage: StorageInfo, level: RollupLevel, windows) -> None:
    table = rollup_tables[level.name]
    conn.execute(delete(table).where(table.c.series_id == windows.c.sid,
                                     table.c.bucket >= windows.c.lo,
                                     table.c.bucket < windows.c.hi))
    conn.execute(insert(table).from_select(list(ROLLUP_COLUMNS),
                                           _aggregates(storage, level, windows)))


def _all_numeric_series(lo: datetime, hi: datetime, metric_id: int | None = None):
    stmt = (select(series.c.id.label("sid"), literal(lo, TS).label("lo"),
                   literal(hi, TS).label("hi"))
            .join(metrics, metrics.c.id == series.c.metric_id)
            .where(metrics.c.value_type == "number"))
    if metric_id is not None:
        stmt = stmt.where(metrics.c.id == metric_id)
    return stmt.subquery("win")


def _begin_step(conn: Connection) -> dict[str, datetime | None]:
    """Take the refresh lock, lift the request time limit, and read the watermarks."""
    conn.execute(select(func.set_config("statement_timeout", "0", True)))
    conn.execute(select(func.pg_advisory_xact_lock(LOCK_KEY)))
    conn.execute(pg_insert(rollup_watermarks).values(
        [{"level": lv.name} for lv in ROLLUP_LEVELS]).on_conflict_do_nothing())
    rows = conn.execute(select(rollup_watermarks.c.level, rollup_watermarks.c.materialized_until))
    return {r.level: r.materialized_until for r in rows}


def _consume_invalidations(conn: Connection, storage: StorageInfo, marks, budget: Budget) -> int:
    log = rollup_invalidations
    rows = conn.execute(select(log.c.id, log.c.series_id, log.c.lo, log.c.hi)
                        .order_by(log.c.id).limit(budget.invalidations)).all()
    if not rows:
        return 0
    spans = [(r.series_id, r.lo, r.hi) for r in rows]
    for level in ROLLUP_LEVELS:
        mark = marks.get(level.name)
        if mark is None:
            continue  # nothing materialized yet: the watermark's advance reads the points
        windows = level_windows(spans, level, None, mark)
        if windows:
            _rematerialize(conn, storage, level, window_arrays(windows))
    conn.execute(delete(log).where(log.c.id.in_([r.id for r in rows])))
    return len(rows)


def _advance(conn: Connection, storage: StorageInfo, level: RollupLevel,
             mark: datetime | None, target: datetime, budget: Budget) -> bool:
    """Materialize from the watermark towards target; True if target is not reached yet."""
    if mark is None:
        first = conn.execute(select(func.min(metrics.c.first_seen))
                             .where(metrics.c.value_type == "number")).scalar()
        mark = floor_to(first, level) if first is not None else target
    if mark < target:
        # Skip a stretch without points (a pause in ingest, or data that starts late) in
        # one step rather than a day per transaction.
        nxt = _next_point_time(conn, mark)
        mark = target if nxt is None else max(mark, min(floor_to(nxt, level), target))
    new_mark = min(target, max(mark, ceil_to(later(mark, budget.span), level)))
    if new_mark > mark:
        _rematerialize(conn, storage, level, _all_numeric_series(mark, new_mark))
    conn.execute(update(rollup_watermarks).where(rollup_watermarks.c.level == level.name)
                 .values(materialized_until=max(mark, new_mark), refreshed_at=func.now()))
    return new_mark < target


def _next_point_time(conn: Connection, after: datetime) -> datetime | None:
    """The earliest numeric point at or after `after`: one index probe per series."""
    per_series = (select(func.min(points.c.time))
                  .where(points.c.series_id == series.c.id, points.c.time >= after)
                  .scalar_subquery())
    return conn.execute(select(func.min(per_series))
                        .select_from(series.join(metrics, metrics.c.id == series.c.metric_id))
                        .where(metrics.c.value_type == "number")).scalar()


def refresh_step(engine: Engine, storage: StorageInfo, now: datetime, lag: timedelta,
                 budget: Budget, report: RefreshReport) -> bool:
    """One transaction of refreshing; True if more work is waiting."""
    with engine.begin() as conn:
        marks = _begin_step(conn)
        consumed = _consume_invalidations(conn, storage, marks, budget)
        more = consumed == budget.invalidations
        for level in ROLLUP_LEVELS:
            target = floor_to(now - lag, level)
            more |= _advance(conn, storage, level, marks.get(level.name), target, budget)
    report.steps += 1
    report.invalidations += consumed
    return more


def refresh(engine: Engine, storage: StorageInfo, lag: timedelta, *, now: datetime | None = None,
            budget: Budget = Budget()) -> RefreshReport:
    """Refresh until caught up with `now - lag` and the log is drained (as of the start)."""
    now = now or datetime.now(UTC)
    report = RefreshReport()
    while refresh_step(engine, storage, now, lag, budget, report):
        pass
    report.watermarks = watermarks(engine)
    return report


def watermarks(engine: Engine) -> dict[str, datetime | None]:
    with engine.connect() as conn:
        rows = conn.execute(select(rollup_watermarks.c.level,
                                   rollup_watermarks.c.materialized_until))
        return {r.level: r.materialized_until for r in rows}


def forget_all(engine: Engine) -> None:
    """Drop every rollup row and watermark: the next refresh materializes from the start."""
    with engine.begin() as conn:
        _begin_step(conn)
        for table in rollup_tables.values():
            conn.execute(delete(table))
        conn.execute(update(rollup_watermarks).values(materialized_until=None))
        conn.execute(delete(rollup_invalidations))


def rebuild_metric(engine: Engine, storage: StorageInfo, metric_id: int,
                   budget: Budget = Budget()) -> int:
    """Materialize one metric's buckets below the watermarks again, a day per transaction
    up to its last point, the rest (rows only, no points) in one; returns the transactions."""
    steps = 0
    for level in ROLLUP_LEVELS:
        start = None
        while True:
            with engine.begin() as conn:
                mark = _begin_step(conn).get(level.name)
                if start is None:
                    first, last = conn.execute(select(metrics.c.first_seen, metrics.c.last_seen)
                                               .where(metrics.c.id == metric_id)).one()
                    if first is None or mark is None:
                        break
                    start = floor_to(first, level)
                if start >= mark:
                    break
                stop = min(mark, ceil_to(later(start, budget.span), level))
                if stop > last:
                    stop = mark
                _rematerialize(conn, storage, level, _all_numeric_series(start, stop, metric_id))
                steps += 1
                start = stop
    return steps
