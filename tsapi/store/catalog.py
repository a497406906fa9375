"""Metrics and series: resolving names and tag sets to ids in bulk, and listing metrics."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import BigInteger, Connection, Text, and_, bindparam, cast, func, select
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert

from tsapi.store.schema import metrics, series

TagKey = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Metric:
    id: int
    name: str
    value_type: str


class RetryableConflict(Exception):
    """A concurrent change (a metric deleted mid-batch) means the transaction must be redone."""


def lock_metrics(conn: Connection, wanted: dict[str, str]) -> dict[str, Metric]:
    """Resolve metric names to ids, creating missing ones with the given value type.

    The rows are locked FOR KEY SHARE until commit: concurrent ingests of the same metric
    proceed together, but a deletion of the metric waits for them, so no point is ever
    written under a metric that is being deleted.
    """
    names = sorted(wanted)
    found = _select_locked(conn, names)
    missing = [n for n in names if n not in found]
    if missing:
        # Sorted, so that concurrent batches creating the same metrics cannot deadlock.
        conn.execute(
            pg_insert(metrics)
            .values([{"name": n, "value_type": wanted[n]} for n in missing])
            .on_conflict_do_nothing(index_elements=["name"])
        )
        found.update(_select_locked(conn, missing))
        if len(found) != len(names):
            raise RetryableConflict("a metric was deleted while the batch was being written")
    return found


def _select_locked(conn: Connection, names: list[str]) -> dict[str, Metric]:
    rows = conn.execute(
        select(metrics.c.id, metrics.c.name, metrics.c.value_type)
        .where(metrics.c.name.in_(names))
        .order_by(metrics.c.id)
        .with_for_update(key_share=True, read=True)
    )
    return {r.name: Metric(r.id, r.name, r.value_type) for r in rows}


class SeriesCache:
    """(metric id, tag set) → series id, per process.

    It can never hand out a wrong id: ids come from identity columns and are never reused,
    and a series row is only deleted with its metric, whose id then never appears again.
    """

    def __init__(self, max_entries: int = 1_000_000):
        self._ids: dict[tuple[int, TagKey], int] = {}
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, key: tuple[int, TagKey]) -> int | None:
        return self._ids.get(key)

    def update(self, found: dict[tuple[int, TagKey], int]) -> None:
        with self._lock:
            if len(self._ids) + len(found) > self._max:
                self._ids.clear()  # crude but safe: a miss only costs one lookup
            self._ids.update(found)

    def clear(self) -> None:
        with self._lock:
            self._ids.clear()


class MetricCache:
    """Metric name → Metric (id, value type), per process, so a small write needs no lookup.

    An entry can go stale only by its metric being deleted (a type never changes under an id,
    and ids are never reused): the writer locks the cached ids in its one statement and, when
    one is gone, starts over without the cache (RetryableConflict). A rollup read answered
    from a cached id (tsapi.services.query.one_statement) finds no series under a deleted
    metric's id, and looks the name up again.
    """

    def __init__(self, max_entries: int = 100_000):
        self._metrics: dict[str, Metric] = {}
        self._max = max_entries
        self._lock = threading.Lock()

    def get_all(self, names: Iterable[str]) -> dict[str, Metric] | None:
        """Every name's Metric, or None if any one is not cached."""
        found = {}
        for name in names:
            metric = self._metrics.get(name)
            if metric is None:
                return None
            found[name] = metric
        return found

    def update(self, found: dict[str, Metric]) -> None:
        with self._lock:
            if len(self._metrics) + len(found) > self._max:
                self._metrics.clear()
            self._metrics.update(found)

    def discard(self, name: str) -> None:
        with self._lock:
            self._metrics.pop(name, None)

    def clear(self) -> None:
        with self._lock:
            self._metrics.clear()


# (metric_id, tags) rows from two parallel array parameters, metric_ids and tag_sets.
_KEYS = func.unnest(
    bindparam("metric_ids", type_=ARRAY(BigInteger)),
    cast(bindparam("tag_sets", type_=ARRAY(Text)), ARRAY(JSONB)),
).table_valued("metric_id", "tags").render_derived(name="series_keys")


def resolve_series(
    conn: Connection, keys: Iterable[tuple[int, TagKey]], cache: SeriesCache
) -> tuple[dict[tuple[int, TagKey], int], dict[tuple[int, TagKey], int]]:
    """Map every (metric id, tag set) to its series id, creating the missing series.

    Returns (all ids, the ids looked up now). The caller puts the latter into the cache only
    after its transaction commits: a rolled-back series row must never be remembered.
    """
    resolved: dict[tuple[int, TagKey], int] = {}
    unknown = []
    for key in keys:
        sid = cache.get(key)
        if sid is None:
            unknown.append(key)
        else:
            resolved[key] = sid
    if not unknown:
        return resolved, {}
    unknown.sort()
    # The keys travel as two array parameters, unnested into rows: one statement of constant
    # size whatever the batch (a VALUES list or an IN list of 8,000 row values makes
    # PostgreSQL recurse past its stack depth limit), joined on the unique index.
    params = {"metric_ids": [mid for mid, _ in unknown],
              "tag_sets": [json.dumps(dict(tags)) for _, tags in unknown]}
    conn.execute(
        pg_insert(series)
        .from_select(["metric_id", "tags"], select(_KEYS.c.metric_id, _KEYS.c.tags))
        .on_conflict_do_nothing(index_elements=["metric_id", "tags"]),
        params,
    )
    found = {}
    result = conn.execute(
        select(series.c.id, series.c.metric_id, series.c.tags).select_from(series.join(
            _KEYS, and_(series.c.metric_id == _KEYS.c.metric_id, series.c.tags == _KEYS.c.tags))),
        params,
    )
    for sid, mid, tags in result:
        found[(mid, tuple(sorted(tags.items())))] = sid
    if len(found) != len(unknown):
        raise RetryableConflict("a series vanished while the batch was being written")
    resolved.update(found)
    return resolved, found


def get_metric(conn: Connection, name: str) -> Metric | None:
    row = conn.execute(
        select(metrics.c.id, metrics.c.name, metrics.c.value_type).where(metrics.c.name == name)
    ).first()
    return Metric(row.id, row.name, row.value_type) if row else None


def metric_types(conn: Connection, names: list[str]) -> dict[str, str]:
    rows = conn.execute(
        select(metrics.c.name, metrics.c.value_type).where(metrics.c.name.in_(names))
    )
    return {r.name: r.value_type for r in rows}
