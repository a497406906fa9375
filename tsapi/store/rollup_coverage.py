"""Which level buckets of a query a rollup table can answer, and which points are read raw.

Read in one round trip: the level's watermark, the selected series, and the spans to read
raw (logged invalidations and buckets too large to combine) that overlap the range.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    cast,
    func,
    literal,
    literal_column,
    null,
    select,
    union_all,
)

from tsapi.config import RollupLevel
from tsapi.store.buckets import TS, BucketQuery
from tsapi.store.rollup_windows import (
    Window,
    ceil_to,
    floor_sql,
    floor_to,
    level_windows,
    merge_windows,
)
from tsapi.store.schema import (
    UNMATERIALIZED,
    rollup_invalidations,
    rollup_tables,
    rollup_watermarks,
    series,
)


@dataclass(frozen=True)
class Coverage:
    """For one query: which level buckets come from the rollup table, which points raw."""

    series_ids: list[int] | Any  # ids, or a subquery of them (rollup_aligned's guess)
    covered_from: datetime | Any  # the first whole level bucket in range (or a parameter)
    covered_until: datetime | Any  # the end of the last one below the watermark
    stale: list[Window]  # invalidated level buckets within the covered span
    raw: list  # disjoint per series: edges, head and stale buckets (under a guess: spans)


def coverage(conn: Connection, q: BucketQuery, level: RollupLevel) -> Coverage | None:
    """None when no whole, materialized level bucket lies in the query's range."""
    a, end = ceil_to(q.start, level), floor_to(q.end, level)
    if a >= end:
        return None
    rows = conn.execute(_coverage_inputs(q, level, a, end)).all()
    mark = next((lo for kind, _, lo, _ in rows if kind == 0), None)
    if mark is None:
        return None
    b = min(end, mark)
    if a >= b:
        return None
    sids = sorted(sid for kind, sid, _, _ in rows if kind == 1)
    if not sids:
        return None
    spans = [(sid, lo, hi) for kind, sid, lo, hi in rows if kind == 2 and lo < b]
    stale = level_windows(spans, level, a, b)
    raw = list(stale)
    for sid in sids:
        if q.start < a:
            raw.append((sid, q.start, a))
        if b < q.end:
            raw.append((sid, b, q.end))
    return Coverage(sids, a, b, stale, merge_windows(raw))


def _coverage_inputs(q: BucketQuery, level: RollupLevel, a: datetime, end: datetime):
    """What coverage needs in one round trip (three cost ~0.2 ms of a 1-day query): rows of
    (kind, series id, lo, hi). Kind 0: the level's watermark, in lo. Kind 1: a selected
    series. Kind 2: a span to read raw overlapping [a, end) — a logged invalidation, or a
    marker row (a bucket too large to combine). The watermark's bound is applied in Python.
    Logged spans come floored to the level's buckets, each distinct one once: level_windows
    would floor them anyway, and until a refresher consumes them, a series written to every
    few seconds logs a span per write (thousands per hour, 15 ms a query instead of 6)."""
    log, wm, r = rollup_invalidations, rollup_watermarks, rollup_tables[level.name]
    no_sid, no_time = cast(null(), BigInteger), cast(null(), TS)
    return union_all(
        select(literal(0).label("kind"), no_sid.label("sid"),
               wm.c.materialized_until.label("lo"), no_time.label("hi"))
        .where(wm.c.level == level.name),
        select(literal(1), series.c.id, no_time, no_time)
        .where(series.c.id.in_(q.selection.series_ids())),
        # Clamped to [a, end] (level_windows clips to it anyway): a batch that held a point
        # of year 1 or 9999 logs a span whose ends, rendered in the query's time zone, could
        # be years 0 or 10000, which the driver cannot read.
        select(literal(2), log.c.series_id, func.greatest(floor_sql(log.c.lo, level), a),
               func.least(floor_sql(log.c.hi, level), end)).distinct()
        .where(log.c.series_id.in_(q.selection.series_ids()), log.c.hi >= a, log.c.lo < end),
        select(literal(2), r.c.series_id, r.c.bucket, r.c.bucket).where(
            r.c.series_id.in_(q.selection.series_ids()), r.c.bucket >= a, r.c.bucket < end,
            # A constant, not a parameter: the partial index's predicate must match it.
            r.c.count == literal_column(str(UNMATERIALIZED))),
    )
