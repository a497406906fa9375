"""What is stored: metric details, tag keys and values, the latest point of each series."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from tsapi.store.catalog import Metric
from tsapi.store.queries import Selection, latest_per_series
from tsapi.store.schema import metrics, points, series


def list_metrics(conn: Connection, prefix: str | None = None, limit: int | None = None):
    stmt = select(
        metrics.c.name, metrics.c.first_seen, metrics.c.last_seen, metrics.c.value_type
    ).order_by(metrics.c.name)
    if prefix:
        # startswith escapes % and _ in the prefix: it is matched literally.
        stmt = stmt.where(metrics.c.name.startswith(prefix, autoescape=True))
    if limit:
        stmt = stmt.limit(limit)
    return [
        {"name": r.name, "first_seen": r.first_seen, "last_seen": r.last_seen,
         "value_type": r.value_type}
        for r in conn.execute(stmt)
    ]


def metric_details(conn: Connection, metric: Metric) -> dict:
    row = conn.execute(
        select(metrics.c.first_seen, metrics.c.last_seen).where(metrics.c.id == metric.id)
    ).one()
    series_ids = select(series.c.id).where(series.c.metric_id == metric.id).scalar_subquery()
    point_count = conn.execute(
        select(func.count()).select_from(points).where(points.c.series_id.in_(series_ids))
    ).scalar_one()
    series_count = conn.execute(
        select(func.count()).select_from(series).where(series.c.metric_id == metric.id)
    ).scalar_one()
    keys = func.jsonb_object_keys(series.c.tags).label("key")
    tag_keys = [r[0] for r in conn.execute(
        select(keys).where(series.c.metric_id == metric.id).distinct().order_by(keys))]
    return {
        "name": metric.name,
        "value_type": metric.value_type,
        "first_seen": row.first_seen,
        "last_seen": row.last_seen,
        "point_count": point_count,
        "series_count": series_count,
        "tag_keys": tag_keys,
    }


def tag_values(conn: Connection, metric: Metric, key: str) -> list[str]:
    value = series.c.tags[key].astext
    stmt = (
        select(value)
        .where(series.c.metric_id == metric.id, series.c.tags.has_key(key))
        .distinct()
        .order_by(value)
    )
    return [r[0] for r in conn.execute(stmt)]


def latest_points(conn: Connection, selection: Selection) -> list[dict]:
    """The newest point of every matching series, one index probe per series."""
    stmt = latest_per_series(selection, series.c.tags)
    stmt = stmt.order_by(stmt.selected_columns.time.desc(), series.c.id)
    return [{"time": r.time, "value": r.value, "tags": r.tags} for r in conn.execute(stmt)]


def series_tag_sets(conn: Connection, metric: Metric, limit: int) -> list[dict[str, str]]:
    """The tag sets of a metric's series (at most `limit`, in a stable order)."""
    stmt = (select(series.c.tags).where(series.c.metric_id == metric.id)
            .order_by(series.c.id).limit(limit))
    return [dict(r[0] or {}) for r in conn.execute(stmt)]
