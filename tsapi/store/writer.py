"""Writing a validated batch all or nothing: ids resolved, then stored in one transaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import NamedTuple

import psycopg2
from psycopg2 import errors as pg_errors
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from tsapi.formats.validation import PointBatch, batch_error
from tsapi.formats.value_types import NUMBER, STRING, type_conflicts, value_type
from tsapi.store.catalog import (
    Metric,
    MetricCache,
    RetryableConflict,
    SeriesCache,
    lock_metrics,
    resolve_series,
)
from tsapi.store.large_batch import store_large_batch
from tsapi.store.small_batch import SMALL_BATCH, store_small_batch, store_small_batch_alone

__all__ = ["SMALL_BATCH", "WriteResult", "write_batch"]

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class WriteResult:
    points: int
    rows_written: int
    catalog_changed: bool
    metric_names: tuple[str, ...]


def write_batch(engine: Engine, batch: PointBatch, cache: SeriesCache,
                metric_cache: MetricCache | None = None, *,
                log_for_rollups: bool = True) -> WriteResult:
    """Store a batch all-or-nothing; redo the transaction if a concurrent change demands it.

    log_for_rollups=False is for benchmarks only (the cost of the invalidation log): without
    the log, rollups could serve buckets this write changed.
    """
    metric_cache = metric_cache if metric_cache is not None else MetricCache(0)
    kinds = _metric_kinds(batch.metrics, batch.values)  # the batch's own: the same each attempt
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            cached = _from_caches(batch, kinds, cache, metric_cache)
            if cached is not None:
                # Every id came from the caches: the batch is the one statement of
                # store_small_batch, atomic by itself, run alone on its own connection.
                known, sid_of = cached
                rows, spans, series_spans, latest = _rows(batch, known, sid_of,
                                                          log_for_rollups)
                changed = store_small_batch_alone(engine, *rows, spans, known, series_spans)
                return WriteResult(len(batch), len(latest), changed, tuple(sorted(known)))
            with engine.connect() as conn:
                result, new_series, looked_up = _write(conn, batch, kinds, cache, metric_cache,
                                                       log_for_rollups)
                conn.commit()
            # Committed: these ids now exist for everyone.
            cache.update(new_series)
            if looked_up:
                metric_cache.update(looked_up)
            return result
        except RetryableConflict:
            if attempt == MAX_ATTEMPTS:
                raise
            cache.clear()
            metric_cache.clear()
        except (DBAPIError, psycopg2.Error) as exc:
            # Concurrent batches touching the same rows may deadlock despite ordered locking
            # (index pages, hypertable chunk creation); the database picks a victim: retry it.
            # COPY runs on the raw cursor, so its errors arrive as psycopg2's own.
            cause = getattr(exc, "orig", exc)
            if isinstance(cause, pg_errors.InvalidSqlStatementName):
                # A session lost the small batch's prepared statement while the pool kept it
                # (DISCARD ALL, DEALLOCATE): the pool's other sessions may have lost it too.
                # Sessions opened anew prepare it again (the pool's `info` starts empty).
                engine.dispose()
            if attempt == MAX_ATTEMPTS or not isinstance(
                cause, pg_errors.DeadlockDetected | pg_errors.SerializationFailure
                | pg_errors.InvalidSqlStatementName
            ):
                raise
            log.info("ingest retry %d after %s", attempt, type(cause).__name__)
    raise AssertionError("unreachable")


def _from_caches(batch: PointBatch, kinds: MetricKinds, cache: SeriesCache,
                 metric_cache: MetricCache) -> tuple[dict[str, Metric], dict] | None:
    """The batch's metrics and series ids, if it is small and the caches hold them all."""
    if len(batch) > SMALL_BATCH:
        return None  # a COPY locks the metrics first, always
    # A small batch of known metrics takes their ids from the cache: its one statement locks
    # them (and notices a deleted one). A type that differs from the cached one may mean the
    # metric was deleted and made anew: the database, which alone can refuse a batch, is
    # asked (as for a new series, whose metric is locked before the series row is made).
    known = metric_cache.get_all(kinds.first_is_text)
    if known is None or _suspects(kinds, known):
        return None
    sid_of = _cached_series(set(zip(batch.metrics, batch.tags, strict=True)), known, cache)
    return None if sid_of is None else (known, sid_of)


def _write(
    conn: Connection, batch: PointBatch, kinds: MetricKinds, cache: SeriesCache,
    metric_cache: MetricCache, log_for_rollups: bool = True,
) -> tuple[WriteResult, dict, dict[str, Metric]]:
    """The batch in `conn`'s transaction, its metrics locked and its series resolved first."""
    names, tag_sets = batch.metrics, batch.tags
    known = lock_metrics(conn, {n: STRING if t else NUMBER
                                for n, t in kinds.first_is_text.items()})
    suspect = _suspects(kinds, known)
    if suspect:
        _check_types(batch, known, suspect)
    pairs = set(zip(names, tag_sets, strict=True))
    series_ids, new_series = resolve_series(conn, {(known[m].id, t) for m, t in pairs}, cache)
    sid_of = {(m, t): series_ids[(known[m].id, t)] for m, t in pairs}
    rows, spans, series_spans, latest = _rows(batch, known, sid_of, log_for_rollups)
    if len(batch) <= SMALL_BATCH:
        changed = store_small_batch(conn, *rows, spans, known, series_spans)
    else:
        changed = store_large_batch(conn, latest, batch, spans, known, series_spans)
    result = WriteResult(len(batch), len(latest), changed, tuple(sorted(known)))
    return result, new_series, known


def _rows(batch: PointBatch, known: dict[str, Metric], sid_of: dict, log_for_rollups: bool
          ) -> tuple[tuple[list, list, list], dict, dict[int, list], dict]:
    """The points to store column-wise (series ids, times, values; the last of duplicates),
    each metric's span, each numeric series' span (for the rollups' log) and the latest
    index of each (series, time)."""
    names, values, times = batch.metrics, batch.values, batch.times
    sids = list(map(sid_of.__getitem__, zip(names, batch.tags, strict=True)))
    # Last value wins inside the batch too: a later duplicate replaces the earlier index
    # (and keeps the first one's place).
    latest = dict(zip(zip(sids, times, strict=True), range(len(sids)), strict=True))
    # Rollups: each numeric series' changed span, logged in the write's statement.
    series_spans: dict[int, list] = {}
    if log_for_rollups:
        numeric = {sid for (m, _), sid in sid_of.items() if known[m].value_type == NUMBER}
        series_spans = _spans(sids, times, numeric)
    if len(latest) == len(sids):  # no duplicates: the batch's own columns, in order
        rows = (sids, times, values)
    else:
        rows = ([sid for sid, _ in latest], [time for _, time in latest],
                [values[i] for i in latest.values()])
    return rows, _spans(names, times), series_spans, latest


class MetricKinds(NamedTuple):
    """Each metric's type as its first point gives it (True: text; that fixes a new metric's
    type), and which metrics mix types."""

    first_is_text: dict[str, bool]
    mixed: set[str]


def _metric_kinds(names: list[str], values: list) -> MetricKinds:
    texts = {name for name, value in zip(names, values, strict=True) if isinstance(value, str)}
    if not texts:  # the usual batch: numbers only
        return MetricKinds(dict.fromkeys(names, False), set())
    first_is_text: dict[str, bool] = {}
    mixed: set[str] = set()
    for name, value in zip(names, values, strict=True):
        is_text = isinstance(value, str)
        kind = first_is_text.setdefault(name, is_text)
        if kind is not is_text:
            mixed.add(name)
    return MetricKinds(first_is_text, mixed)


def _cached_series(pairs: set, known: dict[str, Metric], cache: SeriesCache) -> dict | None:
    """(metric, tags) → series id for every pair, or None if one is not cached."""
    sid_of = {}
    for pair in pairs:
        sid = cache.get((known[pair[0]].id, pair[1]))
        if sid is None:
            return None
        sid_of[pair] = sid
    return sid_of


def _suspects(kinds: MetricKinds, known: dict[str, Metric]) -> set[str]:
    """Metrics whose points may not all have the metric's type."""
    return kinds.mixed | {
        n for n, t in kinds.first_is_text.items() if (known[n].value_type == STRING) is not t
    }


def _spans(keys: list, times: list, wanted: set | None = None) -> dict:
    """Each key's [earliest, latest] time (only the wanted keys', if given)."""
    spans: dict = {}
    for key, time in zip(keys, times, strict=True):
        if wanted is not None and key not in wanted:
            continue
        span = spans.get(key)
        if span is None:
            spans[key] = [time, time]
        elif time < span[0]:
            span[0] = time
        elif time > span[1]:
            span[1] = time
    return spans


def _check_types(batch: PointBatch, known: dict[str, Metric], suspect: set[str]) -> None:
    points = (
        (i, name, value_type(value))
        for i, (name, value) in enumerate(zip(batch.metrics, batch.values, strict=True))
        if name in suspect
    )
    errors = type_conflicts(points, {name: known[name].value_type for name in suspect})
    if errors:
        raise batch_error(errors)
