"""Shared by the rollup tests: writing points at store level, and raw vs rollup answers."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from tsapi.formats.aggregations import parse_aggregation
from tsapi.formats.intervals import parse_interval
from tsapi.formats.validation import PointBatch
from tsapi.services.query.request import QueryRequest
from tsapi.services.query.rollup_choice import choose_level
from tsapi.store.buckets import BucketQuery, fetch_buckets
from tsapi.store.catalog import SeriesCache, get_metric
from tsapi.store.engine import detect_storage
from tsapi.store.queries import Selection
from tsapi.store.rollup_reads import fetch_rollup_buckets
from tsapi.store.writer import write_batch

EXACT = {"count", "min", "max", "first", "last"}


class Store:
    """One backend's engine, written to and read from below the HTTP layer."""

    def __init__(self, url: str):
        self.engine = sa.create_engine(url, connect_args={"options": "-c timezone=UTC"})
        self.storage = detect_storage(self.engine)
        self.cache = SeriesCache()

    def write(self, points: list[tuple[datetime, str, float, str]]) -> None:
        """(time, metric, value, device) each."""
        write_tagged(self, [(time, metric, value, {"device": device})
                            for time, metric, value, device in points])

    def answers(self, metric: str, agg: str, interval: str | None, tz: str | None,
                group_by: tuple[str, ...], start: datetime, end: datetime):
        """(raw rows, rollup rows, whether a rollup answered, level name or None)."""
        request = QueryRequest((metric,), start, end, aggregation=parse_aggregation(agg),
                               interval=parse_interval(interval) if interval else None,
                               timezone=tz, group_by=group_by)
        with self.engine.connect().execution_options(isolation_level="REPEATABLE READ") as c:
            found = get_metric(c, metric)
            if found is None:
                return [], [], False, None
            level = choose_level(request, [found])
            q = BucketQuery(Selection(found), start, end, request.aggregation,
                            request.interval, tz, group_by)
            raw = [tuple(r) for r in fetch_buckets(c, self.storage, q)]
            if level is None:
                return raw, raw, False, None
            rows, used = fetch_rollup_buckets(c, self.storage, q, level)
            return raw, [tuple(r) for r in rows], used, level.name

    def dispose(self) -> None:
        self.engine.dispose()


def write_tagged(store: Store, points) -> None:
    """(time, metric, value, tags as a dict) each."""
    batch = PointBatch()
    for time, metric, value, tags in points:
        batch.times.append(time)
        batch.metrics.append(metric)
        batch.values.append(value)
        batch.tags.append(tuple(sorted(tags.items())))
    write_batch(store.engine, batch, store.cache)


def close_enough(a, b, abs_tol: float = 0.0) -> bool:
    """Two answers (JSON or parsed CSV) alike but for floats within 1e-9 of each other, relative
    (or within abs_tol): a rollup's sum of parts may round otherwise than the raw sum."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close_enough(a[k], b[k], abs_tol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(
            close_enough(x, y, abs_tol) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=abs_tol)
    return a == b


def assert_same(agg: str, raw: list[tuple], rolled: list[tuple]) -> None:
    assert [r[:-1] for r in rolled] == [r[:-1] for r in raw]
    for a, b in zip(raw, rolled, strict=True):
        if agg in EXACT or a[-1] is None or b[-1] is None:
            assert a[-1] == b[-1], (a, b)
        else:
            assert math.isclose(a[-1], b[-1], rel_tol=1e-9, abs_tol=1e-9), (a, b)


BASE = datetime(2026, 3, 28, 20, 0, tzinfo=UTC)  # Europe's DST starts 01:00 UTC next day


def at(seconds: float) -> datetime:
    return BASE + timedelta(seconds=seconds)
