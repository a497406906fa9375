"""Removing data: deleting a metric with everything under it, and retention cuts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, delete, func, select, text, update

from tsapi.store.engine import StorageInfo
from tsapi.store.rollup_log import forget_metric, log_cut
from tsapi.store.schema import metrics, points, series


def delete_metric(conn: Connection, name: str) -> bool:
    """Delete a metric, its series and its points; False if there is no such metric.

    The metric row is locked FOR UPDATE first: that waits for ingests holding it FOR KEY
    SHARE to commit, and makes later ones wait, so none can write points under it meanwhile.
    """
    metric_id = conn.execute(
        select(metrics.c.id).where(metrics.c.name == name).with_for_update()
    ).scalar()
    if metric_id is None:
        return False
    forget_metric(conn, metric_id)
    series_ids = select(series.c.id).where(series.c.metric_id == metric_id).scalar_subquery()
    conn.execute(delete(points).where(points.c.series_id.in_(series_ids)))
    conn.execute(delete(series).where(series.c.metric_id == metric_id))
    conn.execute(delete(metrics).where(metrics.c.id == metric_id))
    return True


@dataclass
class RetentionReport:
    chunks_dropped: list[str] = field(default_factory=list)
    rows_deleted: dict[str, int] = field(default_factory=dict)  # "*" is every other metric
    recomputed: list[str] = field(default_factory=list)


def _metric_ids(conn: Connection, names: list[str]) -> dict[str, int]:
    rows = conn.execute(select(metrics.c.name, metrics.c.id).where(metrics.c.name.in_(names)))
    return {r.name: r.id for r in rows}


def _series_of(metric_ids: list[int]):
    return select(series.c.id).where(series.c.metric_id.in_(metric_ids))


def drop_old_chunks(conn: Connection, cut: datetime) -> list[str]:
    """TimescaleDB: drop the points chunks that lie entirely before cut (no row deletes)."""
    rows = conn.execute(
        text("SELECT drop_chunks('points', older_than => :cut)"), {"cut": cut}
    )
    return [r[0] for r in rows]


def delete_points_before(
    conn: Connection, cut: datetime, *, only: list[int] | None = None,
    excluding: list[int] | None = None,
) -> int:
    """Delete the points older than cut, of some metrics' series or of all but some."""
    log_cut(conn, cut, only=only, excluding=excluding)  # rollups of what goes are stale
    stmt = delete(points).where(points.c.time < cut)
    if only is not None:
        stmt = stmt.where(points.c.series_id.in_(_series_of(only)))
    if excluding:
        stmt = stmt.where(points.c.series_id.not_in(_series_of(excluding)))
    return conn.execute(stmt).rowcount


def recompute_seen(conn: Connection, metric_ids: list[int]) -> list[str]:
    """Set first_seen/last_seen to the exact min/max of the points left (NULL when none).

    The rows are locked FOR UPDATE, in id order, so no ingest widens them meanwhile.
    """
    if not metric_ids:
        return []
    conn.execute(
        select(metrics.c.id).where(metrics.c.id.in_(metric_ids))
        .order_by(metrics.c.id).with_for_update()
    ).all()
    rows = conn.execute(
        update(metrics)
        .where(metrics.c.id.in_(metric_ids))
        .values(first_seen=_metric_extreme(func.min), last_seen=_metric_extreme(func.max))
        .returning(metrics.c.name)
    )
    return sorted(r.name for r in rows)


def _metric_extreme(aggregate):
    """min/max time of the metric being updated: per series first, so that each series
    is one probe of the (series_id, time) index rather than a scan of all its points."""
    per_series = (
        select(aggregate(points.c.time)).where(points.c.series_id == series.c.id)
        .scalar_subquery()
    )
    return (
        select(aggregate(per_series)).where(series.c.metric_id == metrics.c.id)
        .scalar_subquery()
    )


def metrics_seen_before(conn: Connection, cut: datetime, *, only: list[int] | None = None,
                        excluding: list[int] | None = None) -> list[int]:
    """Metrics that may hold points older than cut: only those can lose points to it."""
    stmt = select(metrics.c.id).where(metrics.c.first_seen < cut)
    if only is not None:
        stmt = stmt.where(metrics.c.id.in_(only))
    if excluding:
        stmt = stmt.where(metrics.c.id.not_in(excluding))
    return list(conn.execute(stmt).scalars())


def apply_retention(
    conn_factory, storage: StorageInfo, cut: datetime | None, per_metric: dict[str, datetime]
) -> RetentionReport:
    """Remove points older than cut (all metrics without an override) and older than each
    override's own cut; then recompute first/last seen of the metrics that lost points.

    On TimescaleDB whole chunks older than every cut are dropped, which is cheap; the rest
    (partial chunks, per-metric cuts, plain PostgreSQL) is deleted row by row.
    """
    report = RetentionReport()
    with conn_factory() as conn:
        # A maintenance job, not a request: deleting months of rows may take longer than the
        # request time limit (TSAPI_DB_STATEMENT_TIMEOUT_MS) the engine sets on sessions.
        conn.execute(select(func.set_config("statement_timeout", "0", True)))
        ids = _metric_ids(conn, sorted(per_metric))
        overridden = list(ids.values())
        affected = set()
        if cut is not None:
            affected.update(metrics_seen_before(conn, cut, excluding=overridden))
        for name, metric_cut in per_metric.items():
            if name in ids:
                affected.update(metrics_seen_before(conn, metric_cut, only=[ids[name]]))
        cuts = [c for c in [cut, *per_metric.values()] if c is not None]
        # Every metric loses what is older than the earliest cut, so those chunks can go
        # whole; only the global cut applies to metrics that are not named.
        if storage.hypertable and cut is not None and cuts:
            report.chunks_dropped = drop_old_chunks(conn, min(cuts))
        if cut is not None:
            report.rows_deleted["*"] = delete_points_before(conn, cut, excluding=overridden)
        for name, metric_cut in sorted(per_metric.items()):
            if name in ids:
                report.rows_deleted[name] = delete_points_before(
                    conn, metric_cut, only=[ids[name]])
    with conn_factory() as conn:
        report.recomputed = recompute_seen(conn, sorted(affected))
    return report
