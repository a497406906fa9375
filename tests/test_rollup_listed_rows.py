"""A long range of one series' level buckets is answered from its values alone (the times
spelled in Python): the same bytes as the statement that spells every row, with or without
missing buckets, at either level, for every aggregation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from one_statement_support import ANSWERED_FROM, body_for
from rollup_support import Store, at, write_tagged

from tsapi.formats.regular_rows import regular_rows
from tsapi.store import rollup_aligned
from tsapi.store.rollup_refresh import refresh

# Values whose JSON spelling differs between PostgreSQL and the JSON encoder in every way
# json_float handles: whole numbers, exponents small and large, the ranges where only one of
# them writes an exponent, negative zero.
VALUES = [21.648059714095375, 42.0, -0.0, 1e-05, 1.5e-05, 0.0001, 1e15, 1.5e15, 1e16,
          123456789012345.6, 1e-07, 1e22, -2.5e-06, 0.30000000000000004, -7.0, 3.25]
MISSING_HOURS = {3, 7, 29}  # no point: no rollup row
AGGREGATIONS = ["count", "sum", "avg", "min", "max", "first", "last", "stddev"]


@pytest.fixture
def store(make_app, database_urls, backend):
    store = Store(database_urls[backend])
    points = []
    for hour in range(50):
        if hour in MISSING_HOURS:
            continue
        for minute in (0, 20, 41):
            value = VALUES[(hour + minute) % len(VALUES)] if minute else VALUES[hour % 16]
            points.append((at(hour * 3600 + minute * 60), "temp", value, {"device": "a"}))
    write_tagged(store, points)
    refresh(store.engine, store.storage, timedelta(0), now=at(50 * 3600))
    yield store
    store.dispose()


def _answers(make_app, monkeypatch, bodies):
    """(answer, header, rows spelled in Python) per body: through the statement that spells
    every row (every range prepared), then through the listed one (no range short)."""
    client = make_app(REDIS_URL=None, TSAPI_MAX_CACHED_BYTES=0).test_client()
    spelled: list[int] = []  # rows spelled in Python, per call

    def counted(*args):
        spelled.append(len(args[2]))
        return regular_rows(*args)

    monkeypatch.setattr(rollup_aligned, "regular_rows", counted)
    out = {}
    for prepared in (10**6, 0):
        monkeypatch.setattr(rollup_aligned, "PREPARED_BUCKETS", prepared)
        for n, body in enumerate(bodies):
            client.post("/query", json=body)  # the metric is known from here on
            spelled.clear()
            answer = client.post("/query", json=body)
            assert answer.status_code == 200, answer.get_json()
            out[prepared, n] = (answer.get_data(), answer.headers[ANSWERED_FROM], spelled[:])
    return [(out[10**6, n], out[0, n]) for n in range(len(bodies))]


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_hourly_buckets_read_as_values_give_the_same_bytes(store, make_app, monkeypatch,
                                                           aggregation):
    bodies = [body_for(0, 50 * 3600, aggregation=aggregation),          # missing hours
              body_for(8 * 3600, 29 * 3600, aggregation=aggregation),   # none missing
              body_for(30 * 3600, 49 * 3600, aggregation=aggregation,   # across midnight
                       tags={"device": "a"})]
    for (spelled, via_db, none), (listed, via_values, rows) in _answers(
            make_app, monkeypatch, bodies):
        assert via_db == via_values == "rollup-1h"
        assert listed == spelled
        assert not none and rows == [listed.count(b'"time"')]  # spelled in Python


def test_minute_buckets_read_as_values_give_the_same_bytes(store, make_app, monkeypatch):
    bodies = [body_for(2 * 3600, 5 * 3600, aggregation="max", interval="1m"),
              body_for(9 * 3600, 10 * 3600, aggregation="avg", interval="1m")]
    for (spelled, via_db, none), (listed, via_values, rows) in _answers(
            make_app, monkeypatch, bodies):
        assert via_db == via_values == "rollup-1m"
        assert listed == spelled
        assert not none and rows == [listed.count(b'"time"')]


def test_a_range_with_nothing_rolled_up_still_says_raw(store, make_app, monkeypatch):
    bodies = [body_for(3 * 3600, 4 * 3600, aggregation="max")]  # the missing hour only
    for (spelled, via_db, _), (listed, via_values, _) in _answers(make_app, monkeypatch,
                                                                  bodies):
        assert spelled == listed == b"[]"
        assert via_db == via_values == "raw"


def test_a_wrong_guess_over_a_long_range_is_answered_the_usual_way(store, make_app,
                                                                    monkeypatch):
    """An invalidated hour, or a second series where one was guessed: the listed statement
    says so (it raises nothing) and the answer is the raw path's."""
    monkeypatch.setattr(rollup_aligned, "PREPARED_BUCKETS", 0)
    rolled = make_app(REDIS_URL=None, TSAPI_MAX_CACHED_BYTES=0).test_client()
    raw = make_app(REDIS_URL=None, TSAPI_ROLLUPS="off", TSAPI_MAX_CACHED_BYTES=0).test_client()
    body = body_for(0, 50 * 3600, aggregation="max")
    rolled.post("/query", json=body)  # the metric is known from here on
    write_tagged(store, [(at(10 * 3600 + 5), "temp", 1000.0, {"device": "a"})])
    assert rolled.post("/query", json=body).get_data() == raw.post("/query", json=body).get_data()
    write_tagged(store, [(at(12 * 3600 + 5), "temp", -1000.0, {"device": "b"})])
    refresh(store.engine, store.storage, timedelta(0), now=at(50 * 3600))
    answer = rolled.post("/query", json=body)
    assert answer.get_data() == raw.post("/query", json=body).get_data()
    assert b"-1000.0" not in answer.get_data() and b"1000.0" in answer.get_data()
    assert answer.headers[ANSWERED_FROM] == "rollup-1h"
