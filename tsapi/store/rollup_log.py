"""The rollup invalidation log (what writes and deletions record, in their own transaction),
and what is pending: the log's length and each level's watermark."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY

from tsapi.config import ROLLUP_LEVELS
from tsapi.store.schema import (
    metrics,
    rollup_invalidations,
    rollup_tables,
    rollup_watermarks,
    series,
)

TS = DateTime(timezone=True)
# pg_advisory_xact_lock key: any constant no other tsapi lock uses ("tsapiRU" in ASCII).
# Refresh steps hold it, and so does deleting a metric, so no step materializes rows for
# series deleted under it.
LOCK_KEY = 0x74_73_61_70_69_52_55

# Three arrays, one row per series: a CTE a write statement carries along (the log costs
# no round trip of its own), compiled once whatever the number of series.
LOG_SPANS = insert(rollup_invalidations).from_select(
    ["series_id", "lo", "hi"],
    select(
        func.unnest(
            cast(bindparam("log_sids"), ARRAY(BigInteger)),
            cast(bindparam("log_los"), ARRAY(TS)),
            cast(bindparam("log_his"), ARRAY(TS)),
        ).table_valued("sid", "lo", "hi").render_derived(name="span")
    ),
).cte("logged")


def log_span_params(spans: dict[int, list[datetime]]) -> dict[str, list]:
    """LOG_SPANS' parameters: each series' points in [lo, hi] (both included) changed."""
    return {"log_sids": list(spans), "log_los": [lo for lo, _ in spans.values()],
            "log_his": [hi for _, hi in spans.values()]}


def log_cut(conn: Connection, cut: datetime, *, only: list[int] | None = None,
            excluding: list[int] | None = None) -> None:
    """Retention: every numeric series of the metrics that may lose points before `cut`
    has changed from its metric's first point up to the cut."""
    stmt = (
        select(series.c.id, metrics.c.first_seen, literal(cut, TS))
        .join(metrics, metrics.c.id == series.c.metric_id)
        .where(metrics.c.value_type == "number", metrics.c.first_seen < cut)
    )
    if only is not None:
        stmt = stmt.where(metrics.c.id.in_(only))
    if excluding:
        stmt = stmt.where(metrics.c.id.not_in(excluding))
    conn.execute(insert(rollup_invalidations).from_select(["series_id", "lo", "hi"], stmt))


def forget_metric(conn: Connection, metric_id: int) -> None:
    """A deleted metric's rollup rows and pending invalidations go with its series."""
    conn.execute(select(func.pg_advisory_xact_lock(LOCK_KEY)))
    ids = select(series.c.id).where(series.c.metric_id == metric_id).scalar_subquery()
    for table in rollup_tables.values():
        conn.execute(delete(table).where(table.c.series_id.in_(ids)))
    conn.execute(delete(rollup_invalidations).where(rollup_invalidations.c.series_id.in_(ids)))


@dataclass(frozen=True)
class RollupStatus:
    watermarks: dict[str, datetime | None]
    lag_seconds: dict[str, float | None]  # now minus the watermark
    pending_invalidations: int
    oldest_pending_seconds: float | None


def rollup_status(conn: Connection) -> RollupStatus:
    now = conn.execute(select(func.now())).scalar()
    marks = {r.level: r.materialized_until for r in conn.execute(
        select(rollup_watermarks.c.level, rollup_watermarks.c.materialized_until))}
    marks = {lv.name: marks.get(lv.name) for lv in ROLLUP_LEVELS}
    log = rollup_invalidations
    pending, oldest = conn.execute(select(func.count(), func.min(log.c.logged_at))).one()
    return RollupStatus(
        marks,
        {k: (now - v).total_seconds() if v else None for k, v in marks.items()},
        pending,
        (now - oldest).total_seconds() if oldest else None,
    )
