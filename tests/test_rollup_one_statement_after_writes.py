"""One-statement rollup answers equal the raw path's after writes, with overflow markers,
from threads, over odd ranges and names."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from one_statement_support import (
    body_for,
    same_answer,
    series_data,
    shapes,
)
from rollup_support import at, write_tagged

from tsapi.store.rollup_refresh import refresh


def test_writes_after_refresh_are_in_the_very_next_answer(uncached_paths, make_app):
    """An overwritten value, a new series backfilled into refreshed hours, a line protocol
    point, a deleted and rewritten metric: every shape answers as raw points do before the
    next refresh."""
    rolled, raw, store = uncached_paths
    series_data(store)
    refresh(store.engine, store.storage, timedelta(0), now=at(9 * 3600))
    for body in shapes():  # fill the kept statements with this data's values
        same_answer(rolled, raw, body)
    changes = [
        {"data": [{"time": at(2 * 3600).isoformat(), "metric": "temp", "value": 99.5,
                   "tags": {"device": "a"}}]},  # overwrites a point on a boundary
        {"data": [{"time": at(5 * 3600 - 0.000001).isoformat(), "metric": "temp",
                   "value": -99.5, "tags": {"device": "d"}}]},  # a new series, backfilled
        {"data": [{"time": at(3 * 3600 + 600).isoformat(), "metric": "temp", "value": 0.25,
                   "tags": {"device": "a", "extra": "x"}}]},  # one more series in group a
    ]
    for change in changes:
        assert rolled.post("/ingest", json=change).status_code == 200
        for body in shapes():
            same_answer(rolled, raw, body)
    line = f"temp,device=b value=12.5 {int(at(6 * 3600).timestamp()) * 10**9}\n"
    assert rolled.post("/write?precision=ns", data=line).status_code in (200, 204)
    for body in shapes():
        same_answer(rolled, raw, body)
    refresh(store.engine, store.storage, timedelta(0), now=at(9 * 3600))
    for body in shapes():
        same_answer(rolled, raw, body)
    assert rolled.delete("/metrics/temp").status_code in (200, 204)
    write_tagged(store, [(at(h * 1800 + 1), "temp", float(h), {"device": "a"}) for h in range(14)])
    for body in shapes():
        same_answer(rolled, raw, body)


def test_a_marker_bucket_in_range(uncached_paths):
    """A value beyond what a rollup row may hold makes its hour a marker row: every shape
    over it answers as raw points do."""
    rolled, raw, store = uncached_paths
    series_data(store)
    write_tagged(store, [(at(3 * 3600 + 7), "temp", 1e131, {"device": "a"}),
                   (at(5 * 3600 + 7), "temp", -1e300, {"device": "b"})])
    refresh(store.engine, store.storage, timedelta(0), now=at(9 * 3600))
    for body in shapes():
        same_answer(rolled, raw, body)
    for body in shapes():
        body["aggregation"] = "stddev"
        same_answer(rolled, raw, body)


def test_many_shapes_from_threads(uncached_paths, make_app):
    """More shapes than are kept, asked from four threads at once: no error, raw bytes."""
    rolled, raw, store = uncached_paths
    series_data(store)
    refresh(store.engine, store.storage, timedelta(0), now=at(9 * 3600))
    bodies = []
    for aggregation in ("count", "sum", "min", "max", "first", "last", "avg", "stddev"):
        for interval in ("1h", "2h"):
            for zone in (None, "Europe/Berlin"):
                for group_by in ([], ["device"], ["device", "x"], ["x"]):
                    for tags in ({}, {"device": "a"}):
                        for edge in (0, 30):
                            body = body_for(edge, 8 * 3600, aggregation=aggregation,
                                         interval=interval, group_by=group_by, tags=tags)
                            if zone:
                                body["timezone"] = zone
                            bodies.append(body)
    expected = [raw.post("/query", json=b).get_data() for b in bodies]
    failures = []

    def ask(part):
        client = make_app(REDIS_URL=None, TSAPI_MAX_CACHED_BYTES=0).test_client()
        for i in part:
            got = client.post("/query", json=bodies[i])
            if got.status_code != 200 or (bodies[i]["aggregation"] not in ("sum", "avg",
                                                                           "stddev")
                                          and got.get_data() != expected[i]):
                failures.append((bodies[i], got.status_code, got.get_data()[:200]))

    threads = [threading.Thread(target=ask, args=(range(k, len(bodies), 4),))
               for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(bodies) > 256
    assert not failures, failures[:3]


@pytest.mark.parametrize("start,end", [
    ("9999-12-31T23:30:00Z", "9999-12-31T23:59:59Z"),
    ("9999-12-31T21:30:00Z", "9999-12-31T23:59:59.999999Z"),
    ("0001-01-01T00:00:00Z", "0001-01-01T05:00:00Z"),
    ("1969-12-31T22:00:00Z", "1970-01-01T02:00:00.5Z"),
])
def test_ranges_at_the_ends_of_time(uncached_paths, start, end):
    rolled, raw, store = uncached_paths
    series_data(store)
    refresh(store.engine, store.storage, timedelta(0), now=at(9 * 3600))
    for aggregation in ("count", "avg"):
        body = {"metric": "temp", "start_time": start, "end_time": end,
                "aggregation": aggregation, "interval": "1h"}
        a, b = rolled.post("/query", json=body), raw.post("/query", json=body)
        assert a.status_code == b.status_code, (a.get_data(), b.get_data())
        assert a.status_code < 500, a.get_data()
        assert a.get_data() == b.get_data()


def test_quotes_and_unicode_in_keys_values_and_names(uncached_paths):
    """Tag keys, tag values and metric names that would break SQL or JSON if written into
    either: parameters and the JSON encoder's spelling on both paths."""
    rolled, raw, store = uncached_paths
    key, value, metric = "dev'ice\"\\", "x'); DROP TABLE points; --\u00e9\u2028", "t'\"emp\u00e9"
    points = []
    for minute in range(0, 4 * 60, 10):
        for k, tags in enumerate([{key: value}, {key: "b"}, {"device": "a"}]):
            points.append((at(minute * 60 + k), metric, float(minute % 7 + k), tags))
    write_tagged(store, points)
    refresh(store.engine, store.storage, timedelta(0), now=at(5 * 3600))
    for extra in ({"group_by": [key]}, {"tags": {key: value}}, {"group_by": [key, "device"]},
                  {"metrics": [metric, metric]}, {}):
        for aggregation in ("count", "last"):
            body = {**body_for(0, 4 * 3600, aggregation=aggregation), "metric": metric, **extra}
            if "metrics" in extra:
                del body["metric"]
            assert same_answer(rolled, raw, body) == "rollup-1h", body


@pytest.mark.parametrize("zone", ["Australia/Adelaide", "Australia/Lord_Howe", "Asia/Kathmandu",
                                  "America/St_Johns"])
def test_half_hour_zones_over_a_dst_change(uncached_paths, zone):
    """Adelaide and Lord Howe leave DST on 2026-04-05 (Lord Howe by half an hour); the
    1-minute level answers, edges off the minute by microseconds read raw."""
    rolled, raw, store = uncached_paths
    start = (datetime(2026, 4, 4, 12, tzinfo=UTC) - at(0)).total_seconds()
    write_tagged(store, [(at(start + step * 170 + k * 0.000001), "temp",
                    float((step * 5 + k * 3) % 17) / 8, {"device": d})
                   for step in range(8 * 3600 // 170) for k, d in enumerate("abc")])
    refresh(store.engine, store.storage, timedelta(0), now=at(start + 9 * 3600))
    for interval in ("15m", "30m", "1h", "1d"):
        for aggregation in ("count", "first", "max", "avg"):
            for lo, hi in ((0, 8 * 3600), (0.000001, 8 * 3600 - 0.000001), (1800, 5400)):
                body = body_for(start + lo, start + hi, interval=interval, timezone=zone,
                             aggregation=aggregation)
                same_answer(rolled, raw, body)
                same_answer(rolled, raw, {**body, "group_by": ["device"]})
