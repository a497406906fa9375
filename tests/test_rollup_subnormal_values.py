"""Subnormal values (5e-324, the smallest double) answer the same on the rollup path as on the
raw path. PostgreSQL's float8 operators raise "value out of range: underflow" when a product
or quotient of non-zero doubles rounds to zero, which the raw path's aggregates (computed in C
without that check) never meet, but the rollups' arithmetic did: the answer was a 422 where
the raw path answers. stddev combines its parts with PostgreSQL's own combine step
(migration 0006), which has no such check."""

from __future__ import annotations

from datetime import timedelta

import pytest
from one_statement_support import ANSWERED_FROM, body_for
from rollup_support import Store, at, write_tagged

from tsapi.store.rollup_refresh import refresh

TINY = [5e-324, -5e-324, 0.0, 1e-320]


@pytest.fixture
def store(make_app, database_urls, backend):
    store = Store(database_urls[backend])
    write_tagged(store, [(at(hour * 3600 + minute * 60), "temp",
                          TINY[(hour + minute) % len(TINY)], {"device": "a"})
                         for hour in range(6) for minute in (0, 20, 41)])
    refresh(store.engine, store.storage, timedelta(0), now=at(6 * 3600))
    yield store
    store.dispose()


@pytest.mark.parametrize("aggregation", ["avg", "stddev"])
@pytest.mark.parametrize("interval", ["1h", "2h"])
def test_subnormal_values_answer_on_the_rollup_path_as_on_the_raw_path(store, make_app,
                                                                       aggregation, interval):
    rolled = make_app(REDIS_URL=None, TSAPI_MAX_CACHED_BYTES=0).test_client()
    raw = make_app(REDIS_URL=None, TSAPI_ROLLUPS="off", TSAPI_MAX_CACHED_BYTES=0).test_client()
    body = body_for(0, 6 * 3600, aggregation=aggregation, interval=interval)
    expected = raw.post("/query", json=body)
    assert expected.status_code == 200
    answer = rolled.post("/query", json=body)
    assert answer.status_code == 200, answer.get_json()
    assert answer.headers[ANSWERED_FROM].startswith("rollup")
    assert answer.get_data() == expected.get_data()
