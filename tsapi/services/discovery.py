"""Discovery: the metric list (cached), one metric's details, tag values, latest points."""

from __future__ import annotations

from typing import Any

import orjson

from tsapi.errors import metric_not_found
from tsapi.services.response_cache import CATALOG
from tsapi.services.runtime import Runtime
from tsapi.store.catalog import Metric, get_metric
from tsapi.store.discovery import (
    latest_points,
    list_metrics,
    metric_details,
    series_tag_sets,
    tag_values,
)
from tsapi.store.queries import Selection


def metric_list_body(rt: Runtime, prefix: str | None = None, limit: int | None = None) -> bytes:
    """GET /metrics as JSON bytes, cached under the catalog generation.

    A `limit` is rounded up to a power of two for the lookup and the cache, and the answer
    cut to it: however many distinct limits clients send, a prefix has at most 18 entries,
    and none larger than TSAPI_MAX_CACHED_BYTES.
    """
    fetched = None if limit is None else 1 << (limit - 1).bit_length()
    body = _metric_list_rounded(rt, prefix, fetched)
    if limit is not None and limit != fetched:
        metrics = orjson.loads(body)
        if len(metrics) > limit:
            body = orjson.dumps(metrics[:limit])
    return body


def _metric_list_rounded(rt: Runtime, prefix: str | None, limit: int | None) -> bytes:
    cache = rt.cache
    args = orjson.dumps([prefix, limit]).decode()
    key, body = cache.lookup(
        [CATALOG], lambda generation: f"metrics:list:{'.'.join(map(str, generation))}:{args}")
    if body is not None:
        return body
    with rt.db.reader().connect() as conn:
        body = orjson.dumps(list_metrics(conn, prefix, limit))
    if key and len(body) <= rt.limits.max_cached_bytes:
        cache.set(key, body)
    return body


def _metric(conn, name: str) -> Metric:
    metric = get_metric(conn, name)
    if metric is None:
        raise metric_not_found(name)
    return metric


def describe_metric(rt: Runtime, name: str) -> dict[str, Any]:
    with rt.db.reader().connect() as conn:
        return metric_details(conn, _metric(conn, name))


def metric_tag_values(rt: Runtime, name: str, key: str) -> dict[str, Any]:
    with rt.db.reader().connect() as conn:
        values = tag_values(conn, _metric(conn, name), key)
    return {"metric": name, "key": key, "values": values}


def latest(rt: Runtime, name: str, tags: dict[str, str]) -> list[dict[str, Any]]:
    with rt.db.reader().connect() as conn:
        return latest_points(conn, Selection(_metric(conn, name), tags))


def metric_catalog(rt: Runtime, prefix: str | None = None) -> list[dict[str, Any]]:
    """Every metric (name, value_type, first/last seen), optionally by name prefix."""
    return orjson.loads(metric_list_body(rt, prefix))


def metric_series(rt: Runtime, name: str, limit: int) -> list[dict[str, str]] | None:
    """The tag sets of a metric's series (None for an unknown metric), at most `limit`."""
    with rt.db.engine.connect() as conn:
        metric = get_metric(conn, name)
        return None if metric is None else series_tag_sets(conn, metric, limit)
