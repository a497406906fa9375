"""One-statement rollup answers equal the raw path's across shapes, groups and ties."""

from __future__ import annotations

from datetime import timedelta

import pytest
from one_statement_support import (
    body_for,
    same_answer,
    series_data,
)
from rollup_support import Store, at, write_tagged
from sqlalchemy import event

from tsapi.store.rollup_refresh import refresh


@pytest.mark.parametrize("aggregation", ["count", "sum", "min", "max", "first", "last"])
def test_group_by_with_several_series_in_a_group_on_whole_level_buckets(uncached_paths,
                                                                        aggregation):
    """group_by over hourly buckets of whole hours: a group of two series (device a, two
    sensors) and a group of series without the tag are each one row per bucket."""
    rolled, raw, store = uncached_paths
    points = []
    for minute in range(3 * 60):
        for k, tags in enumerate([{"device": "a", "sensor": "1"}, {"device": "a", "sensor": "2"},
                                  {"device": "b"}, {"sensor": "9"}, {"sensor": "8"}]):
            points.append((at(minute * 60 + 5 + k), "temp", float((minute * 7 + k) % 13), tags))
    write_tagged(store, points)
    refresh(store.engine, store.storage, timedelta(0), now=at(4 * 3600))
    for group_by in (["device"], ["sensor"], ["device", "sensor"], ["missing"]):
        body = body_for(0, 3 * 3600, aggregation=aggregation, group_by=group_by)
        assert same_answer(rolled, raw, body) == "rollup-1h", body


def test_one_shape_with_other_values_each_time(uncached_paths):
    """Every value of a kept statement is a parameter: other intervals, metrics, tags, zones
    and labels of the same shape, one after another, give the raw path's bytes."""
    rolled, raw, store = uncached_paths
    series_data(store)
    refresh(store.engine, store.storage, timedelta(0), now=at(9 * 3600))
    sequences = [
        [body_for(0, 6 * 3600, interval=i) for i in ("2h", "3h", "1h", "4h", "60m", "120m")],
        [body_for(0, 6 * 3600, interval="2h", metric=m) for m in ("hum", "temp")],
        [body_for(0, 6 * 3600, interval="2h", tags={"device": d}) for d in "abcz"],
        [body_for(0, 6 * 3600, interval="1h", tags={"device": d}) for d in "abcz"],
        [body_for(0, 8 * 3600, interval=i, timezone=z)
         for z in ("Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC")
         for i in ("1h", "1d", "2h", "3h")],
        [body_for(0, 8 * 3600, interval=i) for i in ("1mo", "2mo", "1h")],
        [{**body_for(60, 6 * 3600 - 0.000001, interval=i), "aggregation": a}
         for i in ("2h", "3h") for a in ("first", "last", "stddev")],
        [{"metrics": ms, "start_time": at(0).isoformat(), "end_time": at(6 * 3600).isoformat(),
          "aggregation": "max", "interval": "1h"} for ms in (["temp", "hum"], ["hum", "temp"])],
    ]
    for bodies in sequences:
        for body in bodies:
            same_answer(rolled, raw, body)


def test_signed_zeros_tied_across_series(uncached_paths):
    """-0.0 and 0.0 compare equal but are spelled apart: whichever a path meets first must
    not decide the answer (both paths answer a picked zero as 0.0)."""
    rolled, raw, store = uncached_paths
    points = []
    for metric, order in (("temp", (-0.0, 0.0)), ("hum", (0.0, -0.0))):
        for hour in range(4):
            for second in (0, 1800, 3599):
                for device, value in zip("ab", order if hour % 2 else order[::-1], strict=True):
                    points.append((at(hour * 3600 + second), metric, value, {"device": device}))
    write_tagged(store, points)
    refresh(store.engine, store.storage, timedelta(0), now=at(5 * 3600))
    differ = []
    for metric in ("temp", "hum"):
        for aggregation in ("first", "last", "min", "max"):
            for interval in ("1h", "2h", "4h"):
                for start in (0, 1800):
                    body = body_for(start, 4 * 3600, metric=metric, aggregation=aggregation,
                                 interval=interval)
                    a, b = rolled.post("/query", json=body), raw.post("/query", json=body)
                    if a.get_data() != b.get_data():
                        differ.append((body, a.get_data(), b.get_data()))
    assert not differ, differ


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_string_first_last_tied_across_series(uncached_paths, fmt):
    """String metrics keep the raw path; ties on time break by value there too."""
    rolled, raw, store = uncached_paths
    write_tagged(store, [(at(s), "state", v, {"device": d}) for s in (10, 3610)
                   for d, v in (("a", "zeta"), ("b", "alpha"), ("c", "Mid"))])
    for interval in ("1h", None):
        for aggregation, expected in (("first", ["alpha", "Mid"]), ("last", ["zeta"])):
            body = {"metric": "state", "start_time": at(0).isoformat(), "format": fmt,
                    "end_time": at(7200).isoformat(), "aggregation": aggregation,
                    **({"interval": interval} if interval else {})}
            a, b = rolled.post("/query", json=body), raw.post("/query", json=body)
            assert a.status_code == 200, a.get_data()
            assert a.get_data() == b.get_data()
            if fmt == "json":
                assert {r["value"] for r in a.get_json()} <= set(expected), a.get_json()


def test_group_by_hourly_then_two_hourly(uncached_paths):
    """One series per group: 1h buckets can be the rollup rows as they are, 2h cannot; the
    kept statement of the first must not answer the second (interval width is a parameter,
    not part of the shape)."""
    rolled, raw, store = uncached_paths
    series_data(store)
    refresh(store.engine, store.storage, timedelta(0), now=at(9 * 3600))
    for interval in ("1h", "2h", "1h", "3h"):
        body = body_for(0, 6 * 3600, interval=interval, aggregation="count",
                     group_by=["device"])
        assert same_answer(rolled, raw, body) == "rollup-1h", body


def test_one_series_per_group_reads_rollup_rows_as_they_are(make_app, database_urls, backend):
    """Per device hourly over whole hours, one series per device: the statement reads the
    rollup rows without combining them (no partials), and gives the raw path's bytes."""
    app = make_app(REDIS_URL=None, TSAPI_MAX_CACHED_BYTES=0)
    raw = make_app(REDIS_URL=None, TSAPI_ROLLUPS="off", TSAPI_MAX_CACHED_BYTES=0).test_client()
    store = Store(database_urls[backend])
    try:
        series_data(store)
        refresh(store.engine, store.storage, timedelta(0), now=at(9 * 3600))
        seen: list[str] = []
        event.listen(app.extensions["tsapi"].db.engine, "before_cursor_execute",
                     lambda conn, cursor, statement, *rest: seen.append(statement))
        body = body_for(0, 6 * 3600, aggregation="max", group_by=["device"])
        assert same_answer(app.test_client(), raw, body) == "rollup-1h"
        rollup_reads = [s for s in seen if "rollups_1h" in s]
        assert len(rollup_reads) == 1 and " parts" not in rollup_reads[0], rollup_reads
    finally:
        store.dispose()


@pytest.mark.parametrize("aggregation", ["first", "last"])
def test_ties_across_series_between_rollup_rows_and_raw_edges(uncached_paths, aggregation):
    """Series tied on time at hour starts, hour ends and inside edges: the rollup rows'
    first/last meet raw edge points in one bucket; the tie rule holds on both paths."""
    rolled, raw, store = uncached_paths
    points = []
    for hour in range(5):
        for second in (0, 0.5, 1800, 3599.999999):
            for k, device in enumerate("abc"):
                value = float((hour * 5 + k * 7 + int(second)) % 11) - 5
                points.append((at(hour * 3600 + second), "temp", value, {"device": device}))
    write_tagged(store, points)
    refresh(store.engine, store.storage, timedelta(0), now=at(6 * 3600))
    for lo, hi in ((0, 5 * 3600), (0.25, 5 * 3600 - 0.000001), (1800, 4 * 3600 + 1800),
                   (0.5, 3 * 3600 + 0.5)):
        for interval in ("1h", "2h", "5h"):
            same_answer(rolled, raw, body_for(lo, hi, aggregation=aggregation, interval=interval))
