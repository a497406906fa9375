"""Rollup upkeep as use cases: refresh once, keep refreshing, rebuild, and report status."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from tsapi.errors import metric_not_found
from tsapi.services.runtime import Runtime
from tsapi.store.catalog import get_metric
from tsapi.store.rollup_log import RollupStatus, rollup_status
from tsapi.store.rollup_refresh import RefreshReport, forget_all, rebuild_metric, refresh

log = logging.getLogger(__name__)


def refresh_rollups(rt: Runtime, lag: timedelta) -> RefreshReport:
    """Materialize closed buckets older than `lag` and consume every logged change."""
    return refresh(rt.db.engine, rt.db.storage, lag)


def run_refresher(rt: Runtime, lag: timedelta, pause: float, stop: threading.Event) -> None:
    """Refresh, sleep `pause` seconds, repeat until `stop` is set. A failed round (the
    database restarting, say) is logged and retried after the pause."""
    while not stop.is_set():
        try:
            report = refresh_rollups(rt, lag)
            if report.invalidations or report.steps > 1:
                log.info("rollups refreshed: %d transactions, %d invalidations consumed",
                         report.steps, report.invalidations)
        except Exception:  # a long-running loop must outlive one bad round
            log.exception("rollup refresh failed; retrying in %.0f s", pause)
        stop.wait(pause)


def rebuild_rollups(rt: Runtime, lag: timedelta, metric: str | None = None) -> RefreshReport:
    """Materialize everything again: all levels from scratch, or one metric's buckets."""
    if metric is None:
        forget_all(rt.db.engine)
        return refresh_rollups(rt, lag)
    with rt.db.engine.connect() as conn:
        found = get_metric(conn, metric)
    if found is None:
        raise metric_not_found(metric)
    report = RefreshReport()
    report.steps = rebuild_metric(rt.db.engine, rt.db.storage, found.id)
    return report


def rollups_status(rt: Runtime) -> RollupStatus:
    with rt.db.engine.connect() as conn:
        return rollup_status(conn)
