"""Retention: delete points older than a cut, globally or per metric, then expire caches."""

from __future__ import annotations

from datetime import datetime

from tsapi.services.response_cache import CATALOG
from tsapi.services.runtime import Runtime
from tsapi.store.lifecycle import RetentionReport, apply_retention


def apply_retention_policy(rt: Runtime, cut: datetime | None,
                           per_metric: dict[str, datetime]) -> RetentionReport:
    """Delete old points (`cut` for every metric not in per_metric) in one transaction.

    Each affected metric's first/last seen is recomputed; a metric left without points keeps
    its name and type.
    """
    report = apply_retention(rt.db.engine.begin, rt.db.storage, cut, per_metric)
    rt.db.acknowledge_write()
    if report.recomputed:
        rt.cache.bump([*report.recomputed, CATALOG])
    return report
