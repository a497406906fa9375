"""Rollup answers through HTTP are the raw path's bytes: odd zones, odd values, odd tags."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rollup_support import Store, at, close_enough, write_tagged

from tsapi.store.rollup_refresh import refresh

EXACT = ("count", "min", "max", "first", "last")
# Values whose spelling differs between PostgreSQL's float8 text and the JSON encoder's, or
# that sit at the edges of doubles.
AWKWARD = (1e15, 1234567890123456.0, 1e15 + 0.5, 9007199254740993.0, 123456789012345.0,
           1e16, 1.2345e16, 1e-5, 1.2345e-5, 0.0001, 1e-7, -1.5e-9, 5e-324, 1e130, -1e130,
           -0.0, 0.0, -2.5, 1e-300, 2.0**-1074 * 3)
# +-1e130 is as large as a rollup bucket's values may be (schema.MATERIALIZABLE); a bucket
# holding a larger one is read raw, see
# test_a_bucket_too_large_to_combine_is_answered_from_its_points_as_the_raw_path.


def _write(store: Store, points) -> None:
    """(time, metric, value, device or None: no device tag) each."""
    write_tagged(store, [(time, metric, value, {} if device is None else {"device": device})
                         for time, metric, value, device in points])


def _csv(data: bytes) -> list:
    def cell(text):
        try:
            return float(text)
        except ValueError:
            return text
    return [[cell(c) for c in row] for row in csv.reader(io.StringIO(data.decode()))]


def _compare(rolled, raw, body) -> str:
    a, b = rolled.post("/query", json=body), raw.post("/query", json=body)
    assert a.status_code == b.status_code, (body, a.get_data(), b.get_data())
    assert b.headers.get("X-Tsapi-Answered-From", "raw") == "raw"
    skip = {"x-tsapi-answered-from", "date", "server-timing", "x-request-id",
            "content-length"}  # bodies are compared below
    assert {k.lower(): v for k, v in a.headers.items() if k.lower() not in skip} == \
        {k.lower(): v for k, v in b.headers.items() if k.lower() not in skip}, body
    if body.get("aggregation") in EXACT or a.status_code != 200:
        assert a.get_data() == b.get_data(), body
    elif body.get("format") == "csv":
        assert close_enough(_csv(a.get_data()), _csv(b.get_data())), (body, a.get_data(),
                                                                      b.get_data())
    else:
        assert close_enough(a.get_json(), b.get_json()), (body, a.get_data(), b.get_data())
    return a.headers.get("X-Tsapi-Answered-From", "")


def test_rollup_answers_spell_awkward_floats_as_the_raw_path(uncached_paths):
    """One point an hour, each an awkward double: every answer bucket holds that value, so
    any spelling difference between the database's rendering and the encoder's shows."""
    rolled, raw, store = uncached_paths
    _write(store, [(at(h * 3600 + 17), "temp", v, "a") for h, v in enumerate(AWKWARD)])
    refresh(store.engine, store.storage, timedelta(0), now=at(30 * 3600))
    for agg in ("max", "first", "sum"):
        for interval, group_by in (("1h", []), ("1h", ["device"]), ("1m", [])):
            body = {"metrics": ["temp"], "start_time": "2026-03-28T20:00:00Z",
                    "end_time": "2026-03-29T20:00:00Z", "aggregation": agg,
                    "interval": interval, "group_by": group_by}
            a, b = rolled.post("/query", json=body), raw.post("/query", json=body)
            assert a.headers["X-Tsapi-Answered-From"].startswith("rollup-")
            assert a.get_data() == b.get_data(), (agg, interval)


ZONES = (None, "Asia/Kathmandu", "America/St_Johns", "Australia/Lord_Howe", "Europe/Berlin")
INTERVALS = (None, "1m", "5m", "1h", "1d", "1w", "1mo")
DEVICES = ("a", 'q"uo\\te', "ü✓\u2028", None)
# Offsets (seconds from BASE) on bucket boundaries, a microsecond off them, across the
# Berlin (01:00 UTC next day) and Lord Howe (2026-04-04 15:00 UTC) changes.
TIMES = st.one_of(
    st.integers(-2, 9 * 24).map(lambda h: h * 3600.0),
    st.integers(-2, 9 * 24).map(lambda h: h * 3600.0 + 1e-6),
    st.integers(-2 * 3600, 9 * 86400).map(float),
    st.sampled_from([5 * 3600 - 1e-6, 5 * 3600.0, 7 * 86400 + 19 * 3600.0,
                     7 * 86400 + 19 * 3600.0 - 1e-6]),
)
VALUES = st.one_of(st.sampled_from(AWKWARD), st.integers(-40, 40).map(lambda n: n / 4))
POINT = st.tuples(TIMES, VALUES, st.sampled_from(DEVICES), st.sampled_from(("temp", "hum")))
QUERY = st.fixed_dictionaries({
    "zone": st.sampled_from(ZONES), "interval": st.sampled_from(INTERVALS),
    "agg": st.sampled_from(("count", "min", "max", "first", "last", "sum", "avg", "stddev")),
    "group_by": st.sampled_from(([], ["device"])), "start": TIMES, "length": TIMES,
    "metrics": st.sampled_from((["temp"], ["temp", "hum"])),
    "format": st.sampled_from(("json", "json", "csv")),
})
_names = itertools.count()


@given(before=st.lists(POINT, min_size=10, max_size=30), after=st.lists(POINT, max_size=4),
       queries=st.lists(QUERY, min_size=1, max_size=4))
@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
def test_rollup_answers_over_http_are_the_raw_paths_whatever_the_zone_and_values(
        uncached_paths, before, after, queries):
    rolled, raw, store = uncached_paths
    run = next(_names)
    names = {"temp": f"t{run}", "hum": f"h{run}"}
    # Series apart by 10 us: first/last of points of different series at one time is any
    # one of them on the raw path (the rollup path takes the smallest/largest).
    def apart(t, d):
        return at(t + DEVICES.index(d) * 10e-6)
    _write(store, [(apart(t, d), names[m], v, d) for t, v, d, m in before])
    refresh(store.engine, store.storage, timedelta(0), now=at(10 * 86400))
    _write(store, [(apart(t, d), names[m], v, d) for t, v, d, m in after])  # stale buckets
    for q in queries:
        start = at(q["start"])
        end = start + timedelta(seconds=abs(q["length"]) + 1e-6)
        body = {"metrics": [names[m] for m in q["metrics"]], "aggregation": q["agg"],
                "start_time": start.isoformat(), "end_time": end.isoformat(),
                "group_by": q["group_by"], "format": q["format"]}
        if q["interval"]:
            body["interval"] = q["interval"]
        if q["zone"]:
            body["timezone"] = q["zone"]
        _compare(rolled, raw, body)



def test_a_bucket_whose_variance_overflows_does_not_stall_the_refresher(uncached_paths):
    rolled, raw, store = uncached_paths
    _write(store, [(at(60), "huge", 1e300, "a"), (at(120), "huge", 1.0, "a"),
                   (at(60), "temp", 2.0, "a"), (at(7200), "temp", 3.0, "a")])
    refresh(store.engine, store.storage, timedelta(0), now=at(4 * 3600))
    body = {"metrics": ["temp"], "start_time": "2026-03-28T20:00:00Z",
            "end_time": "2026-03-28T23:00:00Z", "aggregation": "max", "interval": "1h"}
    assert rolled.post("/query", json=body).headers["X-Tsapi-Answered-From"] == "rollup-1h"


@pytest.mark.parametrize("values", [(1e300, 1.0), (1e308, 1e308), (2.0, 1e131)])
def test_a_bucket_too_large_to_combine_is_answered_from_its_points_as_the_raw_path(
        uncached_paths, values):
    rolled, raw, store = uncached_paths
    big, other = values
    _write(store, [(at(60), "huge", big, "a"), (at(120), "huge", other, "a"),
                   (at(3600 + 60), "huge", 5.0, "a"), (at(3600 + 120), "huge", 7.0, "a"),
                   (at(60), "temp", 2.0, "a")])
    refresh(store.engine, store.storage, timedelta(0), now=at(4 * 3600))
    statuses = set()
    for aggregation, interval in itertools.product(
            ("count", "min", "max", "first", "last", "sum", "avg", "stddev"),
            ("1h", "2h", "1m", None)):
        body = {"metrics": ["huge"], "start_time": "2026-03-28T20:00:00Z",
                "end_time": "2026-03-28T23:00:00Z", "aggregation": aggregation}
        if interval:
            body["interval"] = interval
        answer = rolled.post("/query", json=body)
        if aggregation in EXACT:
            assert answer.headers["X-Tsapi-Answered-From"].startswith("rollup-"), body
        elif answer.status_code == 200:  # whether it overflows is the raw path's to say
            assert answer.headers["X-Tsapi-Answered-From"] == "raw", body
        _compare(rolled, raw, body)
        statuses.add((aggregation, answer.status_code))
    assert {("max", 200), ("count", 200), ("first", 200), ("last", 200)} <= statuses
    if values == (1e308, 1e308):  # their sum overflows on the raw path too
        assert {("sum", 422), ("avg", 422)} <= statuses
