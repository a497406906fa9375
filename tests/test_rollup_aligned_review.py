"""Review of the one-statement rollup answer: requests whose bytes must equal the raw path's."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rollup_support import Store, at

from tsapi.formats.validation import PointBatch
from tsapi.store.rollup_refresh import refresh
from tsapi.store.writer import write_batch

ANSWERED_FROM = "X-Tsapi-Answered-From"


@pytest.fixture
def clients(make_app, database_urls, backend):
    rolled = make_app(REDIS_URL=None).test_client()
    raw = make_app(REDIS_URL=None, TSAPI_ROLLUPS="off").test_client()
    store = Store(database_urls[backend])
    yield rolled, raw, store
    store.dispose()


def _write(store: Store, points) -> None:
    """(time, metric, value, tags as a dict) each."""
    batch = PointBatch()
    for time, metric, value, tags in points:
        batch.times.append(time)
        batch.metrics.append(metric)
        batch.values.append(value)
        batch.tags.append(tuple(sorted(tags.items())))
    write_batch(store.engine, batch, store.cache)


def _body(start_s: float, end_s: float, **extra) -> dict:
    return {"metric": "temp", "start_time": at(start_s).isoformat(),
            "end_time": at(end_s).isoformat(), "aggregation": "avg", "interval": "1h", **extra}


def _same_bytes(rolled, raw, body) -> str:
    a, b = rolled.post("/query", json=body), raw.post("/query", json=body)
    assert a.status_code == b.status_code == 200, (body, a.get_data(), b.get_data())
    assert a.get_data() == b.get_data(), body
    return a.headers[ANSWERED_FROM]


@pytest.mark.parametrize("aggregation", ["count", "sum", "min", "max", "first", "last"])
def test_group_by_with_several_series_in_a_group_on_whole_level_buckets(clients, aggregation):
    """group_by over hourly buckets of whole hours: a group of two series (device a, two
    sensors) and a group of series without the tag are each one row per bucket."""
    rolled, raw, store = clients
    points = []
    for minute in range(3 * 60):
        for k, tags in enumerate([{"device": "a", "sensor": "1"}, {"device": "a", "sensor": "2"},
                                  {"device": "b"}, {"sensor": "9"}, {"sensor": "8"}]):
            points.append((at(minute * 60 + 5 + k), "temp", float((minute * 7 + k) % 13), tags))
    _write(store, points)
    refresh(store.engine, store.storage, timedelta(0), now=at(4 * 3600))
    for group_by in (["device"], ["sensor"], ["device", "sensor"], ["missing"]):
        body = _body(0, 3 * 3600, aggregation=aggregation, group_by=group_by)
        assert _same_bytes(rolled, raw, body) == "rollup-1h", body
