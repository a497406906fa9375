"""Rollups: always the raw path's answer, from rollup tables where they are valid."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rollup_support import Store, assert_same, at, close_enough

from tsapi.store.lifecycle import apply_retention
from tsapi.store.rollup_refresh import refresh

AGGREGATIONS = ("count", "sum", "avg", "min", "max", "first", "last", "stddev")


def _fill(store: Store, hours: int = 6) -> None:
    points = []
    for minute in range(hours * 60):
        for k, device in enumerate(("a", "b")):
            points.append((at(minute * 60 + 7 + k * 0.000001), "temp",
                           (minute * 7 + k * 3) % 41 / 4, device))
    store.write(points)


@pytest.mark.parametrize("agg", AGGREGATIONS)
def test_refreshed_rollups_answer_hourly_aggregates_as_raw_points_do(store, agg):
    _fill(store)
    refresh(store.engine, store.storage, timedelta(0), now=at(4 * 3600 + 100))
    for group_by in ((), ("device",)):
        raw, rolled, used, level = store.answers(
            "temp", agg, "1h", None, group_by, at(1234.5), at(5 * 3600 + 17))
        assert used and level == "1h"
        assert raw
        assert_same(agg, raw, rolled)


@pytest.mark.parametrize("agg", AGGREGATIONS)
def test_one_series_hourly_answers_read_straight_from_rollup_rows_equal_raw(store, agg):
    # One series, whole hours, all refreshed: every answer bucket is one rollup row.
    store.write([(at(minute * 60 + 7), "temp", (minute * 7) % 41 / 4, "a")
                 for minute in range(5 * 60) if minute % 60 != 59 or minute < 60])
    refresh(store.engine, store.storage, timedelta(0), now=at(6 * 3600))
    for tz in (None, "Europe/Berlin"):
        for group_by in ((), ("device",)):
            raw, rolled, used, level = store.answers("temp", agg, "1h", tz, group_by,
                                                     at(0), at(5 * 3600))
            assert used and level == "1h"
            assert len(raw) == 5
            assert_same(agg, raw, rolled)


def test_many_separately_invalidated_hours_still_answer_as_raw_points_do(store):
    _fill(store, hours=24)
    refresh(store.engine, store.storage, timedelta(0), now=at(25 * 3600))
    # One overwrite every other hour, each its own batch: a dozen stale windows apart.
    for hour in range(1, 24, 2):
        store.write([(at(hour * 3600 + 7), "temp", 100.0 + hour, "a")])
    for agg in ("avg", "max", "count", "stddev"):
        raw, rolled, used, level = store.answers("temp", agg, "1h", None, (), at(0.5),
                                                 at(24 * 3600))
        assert used and level == "1h"
        assert_same(agg, raw, rolled)


# --- property: whatever was written, overwritten, cut away and refreshed, the same answer --

WRITE = st.tuples(
    st.just("write"),
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 10 * 3600 - 1),
                       st.integers(-400, 400)), min_size=1, max_size=40),
)
REFRESH = st.tuples(st.just("refresh"), st.integers(0, 11 * 3600))
CUT = st.tuples(st.just("cut"), st.integers(0, 3 * 3600))
OPERATIONS = st.lists(st.one_of(WRITE, WRITE, REFRESH, REFRESH, CUT), min_size=1, max_size=8)
QUERY = st.tuples(
    st.sampled_from(AGGREGATIONS),
    st.sampled_from([None, "1m", "5m", "1h", "2h", "1d", "1mo"]),
    st.sampled_from([None, "UTC", "Europe/Berlin", "Asia/Kolkata", "America/St_Johns"]),
    st.sampled_from([(), ("device",)]),
    st.integers(0, 3 * 3600), st.integers(60, 10 * 3600),
)


def _apply(store: Store, operations) -> None:
    for op, arg in operations:
        if op == "write":
            # Each series' times are its own microsecond apart: no two series tie in time.
            store.write([(at(sec + k * 0.000001), "temp", value / 4, "ab"[k])
                         for k, sec, value in arg])
        elif op == "refresh":
            refresh(store.engine, store.storage, timedelta(0), now=at(arg))
        else:
            apply_retention(store.engine.begin, store.storage, at(arg), {})


@given(operations=OPERATIONS, queries=st.lists(QUERY, min_size=1, max_size=6))
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_rollup_answers_equal_raw_answers_whatever_was_written(store, operations, queries):
    with store.engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE points, series, metrics, rollups_1m, rollups_1h, "
                             "rollup_invalidations, rollup_watermarks"))
    store.cache.clear()
    _apply(store, operations)
    for agg, interval, tz, group_by, start, length in queries:
        raw, rolled, _, _ = store.answers("temp", agg, interval, tz, group_by,
                                          at(start + 0.25), at(start + length))
        assert_same(agg, raw, rolled)
    # Once everything is refreshed, the rollup tables answer whatever lines up.
    refresh(store.engine, store.storage, timedelta(0), now=at(11 * 3600))
    for agg, interval, tz, group_by, start, length in queries:
        raw, rolled, used, level = store.answers("temp", agg, interval, tz, group_by,
                                                 at(start + 0.25), at(start + length))
        assert_same(agg, raw, rolled)
        width = {"1m": 60, "1h": 3600}.get(level)
        if raw and width and (start + length) // width > (start + 0.25) // width + 1:
            assert used, (agg, interval, tz, start, length)


# --- through HTTP: the header, and a write after a refresh ---------------------------------


def _hourly(client, **extra):
    body = {"metric": "temp", "start_time": "2026-03-28T20:00:00Z",
            "end_time": "2026-03-29T02:00:00Z", "aggregation": "avg", "interval": "1h", **extra}
    response = client.post("/query", json=body)
    assert response.status_code == 200, response.get_json()
    return response


def test_a_point_written_after_a_refresh_is_in_the_very_next_answer(make_app, database_urls,
                                                                      backend):
    client = make_app().test_client()
    store = Store(database_urls[backend])
    try:
        _fill(store)
        assert _hourly(client).headers["X-Tsapi-Answered-From"] == "raw"  # nothing refreshed
        refresh(store.engine, store.storage, timedelta(0), now=at(6 * 3600))
        before = _hourly(client, group_by=["device"])
        assert before.headers["X-Tsapi-Answered-From"] == "rollup-1h"
        ingest = client.post("/ingest", json={"data": [
            {"time": "2026-03-28T21:30:00Z", "metric": "temp", "value": 1000,
             "tags": {"device": "a"}}]})
        assert ingest.status_code == 200
        after = _hourly(client, group_by=["device"])
        changed = [(b, a) for b, a in zip(before.get_json(), after.get_json(), strict=True)
                   if b != a]
        assert [a["time"] for _, a in changed] == ["2026-03-28T21:00:00+00:00"]
        assert changed[0][1]["tags"] == {"device": "a"}
        assert changed[0][1]["value"] > changed[0][0]["value"]
        # Invalidated, not yet refreshed: still the rollup path, with that hour read raw.
        assert after.headers["X-Tsapi-Answered-From"] == "rollup-1h"
    finally:
        store.dispose()


def test_rollups_off_answers_from_raw_points(make_app, database_urls, backend):
    client = make_app(TSAPI_ROLLUPS="off").test_client()
    store = Store(database_urls[backend])
    try:
        _fill(store, hours=2)
        refresh(store.engine, store.storage, timedelta(0), now=at(6 * 3600))
        assert _hourly(client).headers["X-Tsapi-Answered-From"] == "raw"
    finally:
        store.dispose()


def test_a_zone_offset_of_half_an_hour_uses_the_minute_level(make_app, database_urls, backend):
    client = make_app().test_client()
    store = Store(database_urls[backend])
    try:
        _fill(store, hours=3)
        refresh(store.engine, store.storage, timedelta(0), now=at(6 * 3600))
        answer = _hourly(client, timezone="Asia/Kolkata")
        assert answer.headers["X-Tsapi-Answered-From"] == "rollup-1m"
        answer = _hourly(client, timezone="Europe/Berlin")  # across its DST change
        assert answer.headers["X-Tsapi-Answered-From"] == "rollup-1h"
    finally:
        store.dispose()


# --- concurrency: two refreshers, four writers ---------------------------------------------


def test_two_refreshers_and_four_writers_lose_no_invalidation(store):
    _fill(store, hours=2)
    errors: list[BaseException] = []

    def guarded(work):
        def run():
            try:
                work()
            except BaseException as exc:  # reported below, with the thread's own error
                errors.append(exc)
        return run

    def writer(k: int):
        def work():
            rng = random.Random(k)
            for _ in range(15):
                store.write([(at(rng.randrange(0, 2 * 3600) + 0.5 + k * 0.000001), "temp",
                              rng.randrange(-100, 100) / 4, "ab"[k % 2]) for _ in range(50)])
        return work

    def refresher():
        for step in range(6):
            refresh(store.engine, store.storage, timedelta(0), now=at(1800 + step * 900))

    threads = [threading.Thread(target=guarded(writer(k))) for k in range(4)]
    threads += [threading.Thread(target=guarded(refresher)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    refresh(store.engine, store.storage, timedelta(0), now=at(2 * 3600))
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM rollup_invalidations")).scalar() == 0
    # Nothing pending: every bucket comes from the tables, so a lost invalidation would
    # leave a stale row that differs from the raw answer.
    for agg in AGGREGATIONS:
        raw, rolled, used, _ = store.answers("temp", agg, "1m", None, ("device",),
                                             at(0), at(2 * 3600))
        assert used
        assert_same(agg, raw, rolled)


# --- visible: /health and the Prometheus gauges --------------------------------------------


def test_health_and_gauges_show_refresh_lag_and_pending_invalidations(make_app, database_urls,
                                                                        backend):
    client = make_app().test_client()
    store = Store(database_urls[backend])
    try:
        _fill(store, hours=1)
        pending = client.get("/health").get_json()["rollups"]
        assert pending["pending_invalidations"] == 2  # one batch, two series
        assert pending["levels"]["1h"]["materialized_until"] is None
        refresh(store.engine, store.storage, timedelta(0), now=at(3 * 3600))
        done = client.get("/health").get_json()["rollups"]
        assert done["pending_invalidations"] == 0
        assert done["levels"]["1h"]["materialized_until"].startswith("2026-03-28T23:00:00")
        assert done["levels"]["1m"]["lag_seconds"] > 0
        scraped = client.get("/internal/metrics").get_data(as_text=True)
        assert "tsapi_rollup_pending_invalidations 0.0" in scraped
        assert 'tsapi_rollup_lag_seconds{level="1h"}' in scraped
    finally:
        store.dispose()


# --- the command ---------------------------------------------------------------------------


def test_rollups_commands_refresh_and_rebuild(make_app, database_urls, backend):
    app = make_app(TSAPI_ROLLUP_LAG_SECONDS=60)
    runner = app.test_cli_runner()
    store = Store(database_urls[backend])
    try:
        _fill(store, hours=2)
        result = runner.invoke(args=["rollups", "refresh"])
        assert result.exit_code == 0, result.output
        assert "2 invalidations consumed" in result.output
        assert "rollup-1h: materialized until 20" in result.output
        # A rollup row spoiled behind the refresher's back: rebuild puts it right.
        with store.engine.begin() as conn:
            conn.execute(sa.text("UPDATE rollups_1h SET count = count + 5, sum = sum + 1"))
        raw, rolled, used, _ = store.answers("temp", "count", "1h", None, (), at(0), at(7200))
        assert used and raw != rolled
        result = runner.invoke(args=["rollups", "rebuild", "--metric", "temp"])
        assert result.exit_code == 0, result.output
        raw, rolled, used, _ = store.answers("temp", "count", "1h", None, (), at(0), at(7200))
        assert used and raw == rolled
        result = runner.invoke(args=["rollups", "rebuild", "--metric", "nope"])
        assert result.exit_code != 0 and "nope" in result.output
        result = runner.invoke(args=["rollups", "rebuild"])
        assert result.exit_code == 0, result.output
        raw, rolled, used, _ = store.answers("temp", "sum", "1h", None, (), at(0), at(7200))
        assert used
        assert_same("sum", raw, rolled)
    finally:
        store.dispose()


# --- through HTTP: fill, several metrics, a deleted and recreated metric --------------------


@pytest.mark.parametrize("fill", ["none", "null", "zero", "previous", "linear"])
def test_fill_and_several_metrics_answer_alike_from_rollups_and_raw(make_app, database_urls,
                                                                     backend, fill):
    rolled = make_app(REDIS_URL=None).test_client()
    raw = make_app(REDIS_URL=None, TSAPI_ROLLUPS="off").test_client()
    store = Store(database_urls[backend])
    try:
        # Gaps of whole hours, so that fill has buckets to fill.
        store.write([(at(m * 60 + 5 + k * 0.000001), metric, (m * 13 + k) % 17 / 2, "ab"[k])
                     for m in range(8 * 60) if (m // 60) % 3 != 1
                     for k in range(2) for metric in ("temp", "hum")])
        refresh(store.engine, store.storage, timedelta(0), now=at(6 * 3600))
        for agg in ("avg", "max", "stddev", "last", "count"):
            body = {"metrics": ["temp", "hum"], "start_time": "2026-03-28T19:30:00Z",
                    "end_time": "2026-03-29T04:10:00Z", "aggregation": agg, "interval": "1h",
                    "fill": fill, "group_by": ["device"], "timezone": "Europe/Berlin"}
            a, b = rolled.post("/query", json=body), raw.post("/query", json=body)
            assert a.status_code == b.status_code == 200, a.get_json()
            assert a.headers["X-Tsapi-Answered-From"] == "rollup-1h"
            assert b.headers["X-Tsapi-Answered-From"] == "raw"
            assert close_enough(a.get_json(), b.get_json(), abs_tol=1e-9), agg
    finally:
        store.dispose()


def test_a_deleted_metric_leaves_no_rollups_behind(make_app, database_urls, backend):
    client = make_app(REDIS_URL=None).test_client()
    store = Store(database_urls[backend])
    try:
        _fill(store, hours=3)
        refresh(store.engine, store.storage, timedelta(0), now=at(4 * 3600))
        assert client.delete("/metrics/temp").status_code in (200, 204)
        with store.engine.connect() as conn:
            for table in ("rollups_1m", "rollups_1h", "rollup_invalidations"):
                assert conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() == 0
        store.cache.clear()
        store.write([(at(3600 + 1), "temp", 5.0, "a")])  # the name again, a new series
        answer = _hourly(client, aggregation="count")
        assert answer.get_json() == [{"time": "2026-03-28T21:00:00+00:00", "value": 1}]
    finally:
        store.dispose()


def test_the_refresher_process_consumes_writes_and_stops_on_sigterm(make_app, database_urls,
                                                                    backend):
    make_app()  # empties the tables
    store = Store(database_urls[backend])
    env = {**os.environ, "DATABASE_URL": database_urls[backend],
           "TSAPI_ROLLUP_INTERVAL_SECONDS": "1", "TSAPI_ROLLUP_LAG_SECONDS": "1"}
    env.pop("REDIS_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "tsapi.cli", "rollups", "run"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout.readline().strip() == "rollup refresher running"
        _fill(store, hours=1)
        pending = None
        for _ in range(600):  # waits for the refresher; how long it takes is not the test
            with store.engine.connect() as conn:
                pending = conn.execute(sa.text(
                    "SELECT count(*) FROM rollup_invalidations")).scalar()
                marks = conn.execute(sa.text(
                    "SELECT count(*) FROM rollup_watermarks "
                    "WHERE materialized_until > '2026-03-28T21:00:00Z'")).scalar()
            if pending == 0 and marks == 2:
                break
            time.sleep(0.1)
        assert (pending, marks) == (0, 2)
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=60)[0]
        store.dispose()
    assert proc.returncode == 0, output
    assert "rollup refresher stopped" in output


@pytest.mark.parametrize(("zone", "group_by", "interval"), [
    (None, [], "1h"), ("Europe/Berlin", ["device"], "1h"), ("Asia/Kathmandu", [], "1d"),
    (None, ["device"], "1d"),
])
def test_rollup_answers_rendered_by_the_database_are_the_raw_paths_bytes(
        make_app, database_urls, backend, zone, group_by, interval):
    """Without fill, a rollup answer's JSON is written by PostgreSQL: times, offsets, integers
    and floats must be spelled exactly as the raw path's encoder spells them. The values are
    halves and whole numbers, so sums and means are exact in any order of addition."""
    rolled = make_app(REDIS_URL=None).test_client()
    raw = make_app(REDIS_URL=None, TSAPI_ROLLUPS="off").test_client()
    store = Store(database_urls[backend])
    try:
        store.write([(at(m * 60 + 5 + k * 0.000001), metric,
                      ((m * 13 + k) % 17 - 8) / 2 if metric == "temp" else m * 1000 + k,
                      "ab"[k])
                     for m in range(50 * 60) for k in range(2) for metric in ("temp", "hum")])
        refresh(store.engine, store.storage, timedelta(0), now=at(50 * 3600))
        for agg in ("count", "sum", "avg", "min", "max", "first", "last"):
            for metrics in (["temp"], ["temp", "hum"]):
                body = {"metrics": metrics, "start_time": "2026-03-28T00:00:00Z",
                        "end_time": "2026-03-30T00:00:00Z", "aggregation": agg,
                        "interval": interval, "group_by": group_by}
                if zone:
                    body["timezone"] = zone
                a, b = rolled.post("/query", json=body), raw.post("/query", json=body)
                assert a.status_code == b.status_code == 200, a.get_json()
                assert a.headers["X-Tsapi-Answered-From"].startswith("rollup-")
                assert b.headers["X-Tsapi-Answered-From"] == "raw"
                assert a.get_data() == b.get_data(), (agg, metrics)
    finally:
        store.dispose()
