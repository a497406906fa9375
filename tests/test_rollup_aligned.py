"""A rollup answer in one statement (coverage and rows together); same bytes as raw."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rollup_support import Store, at
from sqlalchemy import event

from tsapi.store.rollup_refresh import refresh

ANSWERED_FROM = "X-Tsapi-Answered-From"


@pytest.fixture
def clients(make_app, database_urls, backend):
    # No response cache: a write below HTTP bumps neither app's in-process cache, which
    # would keep serving both the answers from before it.
    rolled_app = make_app(REDIS_URL=None, TSAPI_MAX_CACHED_BYTES=0)
    raw = make_app(REDIS_URL=None, TSAPI_ROLLUPS="off", TSAPI_MAX_CACHED_BYTES=0).test_client()
    store = Store(database_urls[backend])
    yield rolled_app, raw, store
    store.dispose()


def _fill(store: Store, hours: int = 6) -> None:
    store.write([(at(minute * 60 + 7 + k * 0.000001), "temp", (minute * 7 + k * 3) % 41 / 4,
                  device) for minute in range(hours * 60) for k, device in enumerate("ab")])


def _body(start_h: int, end_h: int, **extra) -> dict:
    return {"metric": "temp", "start_time": at(start_h * 3600).isoformat(),
            "end_time": at(end_h * 3600).isoformat(), "aggregation": "avg", "interval": "1h",
            **extra}


def _statements(app) -> list[str]:
    seen: list[str] = []
    event.listen(app.extensions["tsapi"].db.engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: seen.append(statement))
    return seen


@pytest.mark.parametrize("edges", [(0, 0), (30, 0), (0, -30), (90, 1800)])
def test_a_range_reads_coverage_and_rows_in_one_statement(clients, edges):
    """On the level's boundaries or off them (the edges are read raw in the same one)."""
    rolled_app, raw, store = clients
    _fill(store)
    refresh(store.engine, store.storage, timedelta(0), now=at(6 * 3600))
    seen = _statements(rolled_app)
    rolled = rolled_app.test_client()
    for extra in ({"tags": {"device": "a"}}, {}, {"group_by": ["device"]}):
        body = _body(1, 5, **extra, start_time=at(3600 + edges[0]).isoformat(),
                     end_time=at(5 * 3600 + edges[1]).isoformat())
        seen.clear()
        answer = rolled.post("/query", json=body)
        assert answer.headers[ANSWERED_FROM] == "rollup-1h"
        assert answer.get_data() == raw.post("/query", json=body).get_data(), body
        # Hourly buckets of the whole hours of one series are its rollup rows as they are;
        # that (cheapest) statement is guessed without group_by, and when two series are
        # selected instead the usual two statements follow (three in all).
        expected = 3 if edges == (0, 0) and not extra else 1
        assert len([s for s in seen if "rollups_1h" in s or "rollup_watermarks" in s]) == expected


def test_a_wrong_guess_is_answered_through_coverage_as_raw_points_are(clients):
    """The one-statement answer guesses the range materialized and valid; an invalidated
    hour, two series where one was guessed, or a changed value of the same shape must still
    give the raw path's bytes."""
    rolled_app, raw, store = clients
    rolled = rolled_app.test_client()
    _fill(store)
    refresh(store.engine, store.storage, timedelta(0), now=at(6 * 3600))
    shifted = {"start_time": at(3600 + 30).isoformat(), "end_time": at(4 * 3600 + 5).isoformat()}
    bodies = [_body(1, 5), _body(1, 5, tags={"device": "b"}), _body(0, 3, aggregation="max"),
              _body(0, 0, **shifted), _body(0, 0, aggregation="last", **shifted),
              _body(2, 4, group_by=["device"]), _body(0, 6, interval="2h"),
              _body(0, 6, interval="1h", aggregation="first", tags={"device": "a"}),
              _body(1, 5, timezone="Europe/Berlin")]
    for body in bodies:
        a, b = rolled.post("/query", json=body), raw.post("/query", json=body)
        assert a.headers[ANSWERED_FROM] == "rollup-1h", body
        assert a.get_data() == b.get_data(), body
    store.write([(at(2 * 3600 + 30), "temp", 1000.0, "a")])  # invalidates 02:00 of device a
    for body in bodies:
        a, b = rolled.post("/query", json=body), raw.post("/query", json=body)
        assert a.get_data() == b.get_data(), body


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_a_materialized_range_without_points_says_raw(clients, fmt):
    """No bucket to answer: nothing was read from a rollup to give it, and the raw path
    says raw for the same answer."""
    rolled_app, raw, store = clients
    rolled = rolled_app.test_client()
    _fill(store, hours=2)
    store.write([(at(9 * 3600 + 5), "temp", 1.0, "a")])
    refresh(store.engine, store.storage, timedelta(0), now=at(10 * 3600))
    for body in (_body(4, 8, format=fmt), _body(4, 8, format=fmt, fill="null"),
                 _body(3, 8, format=fmt, start_time=at(3 * 3600 + 60).isoformat())):
        a, b = rolled.post("/query", json=body), raw.post("/query", json=body)
        assert a.status_code == 200, a.get_json()
        assert a.get_data() == b.get_data(), body
        assert a.headers[ANSWERED_FROM] == b.headers[ANSWERED_FROM] == "raw", body
    # The same ranges with a point in them are answered from the rollup.
    a = rolled.post("/query", json=_body(4, 10, format=fmt))
    assert a.headers[ANSWERED_FROM] == "rollup-1h"


def test_statements_kept_per_shape_give_each_interval_and_grouping_its_own_answer(clients):
    """Kept statements are reused only where their structure fits: hourly buckets read as
    single rollup rows must not answer 2-hour buckets of the same shape, and a group holding
    several series (no device has a `site` tag) must combine their rows, not list each."""
    rolled_app, raw, store = clients
    rolled = rolled_app.test_client()
    _fill(store)
    refresh(store.engine, store.storage, timedelta(0), now=at(6 * 3600))
    bodies = [_body(0, 6, group_by=["device"], aggregation="sum"),
              _body(0, 6, group_by=["device"], aggregation="sum", interval="2h"),
              _body(0, 6, group_by=["device"], aggregation="sum", interval="1d"),
              _body(0, 6, group_by=["site"], aggregation="sum"),
              _body(0, 6, group_by=["site"], aggregation="max", interval="3h")]
    for body in bodies:
        a, b = rolled.post("/query", json=body), raw.post("/query", json=body)
        assert a.status_code == b.status_code == 200, a.get_json()
        assert a.headers[ANSWERED_FROM] == "rollup-1h"
        assert a.get_data() == b.get_data(), body
