"""POST /query with fill: one row per bucket over the range (null, zero, previous, linear),
seeded by the last point before the range, per group with group_by, and refused where it
cannot apply. Expectations are computed in Python."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from helpers import (
    ask,
    assert_problem,
    assert_tags_then_time_order,
    error_fields,
    hour_of,
    ingest,
    iso,
    parse_row_time,
    percentile_cont,
    point,
    query,
)
from helpers import time_value_pairs as pairs

T0 = datetime(2024, 3, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)
BERLIN = ZoneInfo("Europe/Berlin")


# --- modes, seeds and ranges ----------------------------------------------------------------

FILL_END = T0 + 8 * HOUR
# Buckets 1, 2 and 5 hold points (bucket 1 averages to 25); the last point before the range
# sits on a bucket start (23:00 the day before), so "in time" and "by bucket start" agree.
FILL_POINTS = [(T0 - 4 * HOUR, 999.0), (T0 - HOUR, 10.0),
               (T0 + HOUR, 20.0), (T0 + timedelta(minutes=90), 30.0),
               (T0 + timedelta(hours=2, minutes=45), 40.0),
               (T0 + timedelta(hours=5, minutes=10), 10.0),
               (FILL_END, 555.0)]
FILL_EXPECTED = {
    "null": [None, 25.0, 40.0, None, None, 10.0, None, None],
    "zero": [0, 25.0, 40.0, 0, 0, 10.0, 0, 0],
    "previous": [10.0, 25.0, 40.0, 40.0, 40.0, 10.0, 10.0, 10.0],
    # bucket 0: halfway between the seed (23:00, 10) and bucket 1 (01:00, 25); buckets 3
    # and 4: a third and two thirds of the way from 40 to 10; nothing after bucket 5.
    "linear": [17.5, 25.0, 40.0, 30.0, 20.0, 10.0, None, None],
}


def reference_fill(buckets: list[datetime], known: dict, mode: str, seed=None) -> list:
    if mode in ("null", "zero"):
        return [known.get(b, None if mode == "null" else 0) for b in buckets]
    if mode == "previous":
        out, current = [], seed[1] if seed else None
        for b in buckets:
            current = known.get(b, current)
            out.append(current)
        return out
    anchors = sorted(([seed] if seed else []) + list(known.items()))
    out = []
    for b in buckets:
        if b in known:
            out.append(known[b])
            continue
        before = [a for a in anchors if a[0] < b]
        after = [a for a in anchors if a[0] > b]
        if before and after:
            (t0, v0), (t1, v1) = before[-1], after[0]
            out.append(v0 + (v1 - v0) * ((b - t0) / (t1 - t0)))
        else:
            out.append(None)
    return out


@pytest.fixture
def fill_data(client):
    ingest(client, [point(iso(t), "temp", v) for t, v in FILL_POINTS])


def test_fill_gives_one_row_per_bucket_over_the_range_seeded_before_it(client, fill_data):
    buckets = [T0 + h * HOUR for h in range(8)]
    known = {T0 + HOUR: 25.0, T0 + 2 * HOUR: 40.0, T0 + 5 * HOUR: 10.0}
    for mode, want in FILL_EXPECTED.items():
        rows = query(client, metric="temp", aggregation="avg", interval="1 hour", fill=mode,
                     start_time=iso(T0), end_time=iso(FILL_END))
        assert [parse_row_time(r) for r in rows] == buckets, mode
        assert [r["value"] for r in rows] == pytest.approx(want), mode
        assert reference_fill(buckets, known, mode, (T0 - HOUR, 10.0)) == pytest.approx(want)


def test_fill_none_is_the_default_and_leaves_empty_buckets_out(client, fill_data):
    body = {"metric": "temp", "aggregation": "avg", "interval": "1 hour",
            "start_time": iso(T0), "end_time": iso(FILL_END)}
    rows = query(client, **body)
    assert pairs(rows) == [(T0 + HOUR, 25.0), (T0 + 2 * HOUR, 40.0), (T0 + 5 * HOUR, 10.0)]
    assert query(client, fill="none", **body) == rows


def test_fill_without_a_point_before_the_range_has_no_seed(client):
    ingest(client, [point(iso(t), "temp", v) for t, v in FILL_POINTS if t >= T0])
    for mode in ("previous", "linear"):
        rows = query(client, metric="temp", aggregation="avg", interval="1 hour", fill=mode,
                     start_time=iso(T0), end_time=iso(FILL_END))
        want = [None] + FILL_EXPECTED[mode][1:]
        assert [r["value"] for r in rows] == pytest.approx(want), mode


FILL_RANGES = [  # (start, end, first bucket, last bucket)
    (T0 + timedelta(minutes=20), FILL_END, T0, FILL_END - HOUR),  # start inside a bucket
    (T0, FILL_END + timedelta(microseconds=1), T0, FILL_END),  # end just past an edge
    (T0 - timedelta(microseconds=1), FILL_END - timedelta(minutes=59), T0 - HOUR,
     T0 + 7 * HOUR),  # both off an edge
]


def test_fill_covers_the_bucket_of_start_to_the_bucket_of_end_minus_1us(client, fill_data):
    for start, end, first, last in FILL_RANGES:
        rows = query(client, metric="temp", aggregation="count", interval="1 hour",
                     fill="zero", start_time=iso(start), end_time=iso(end))
        n = int((last - first) / HOUR) + 1
        assert [parse_row_time(r) for r in rows] == [first + i * HOUR for i in range(n)], \
            (start, end)
        counts: dict[datetime, int] = defaultdict(int)
        for t, _ in FILL_POINTS:
            if start <= t < end:
                counts[hour_of(t)] += 1
        assert [r["value"] for r in rows] == [counts.get(first + i * HOUR, 0)
                                              for i in range(n)], (start, end)


def test_linear_fill_interpolates_in_time_across_a_dst_day(client):
    # Days of 24 h then 23 h: 31 March lies 24/47 of the way from 30 March to 1 April.
    ingest(client, [point("2024-03-30T12:00:00+01:00", "temp", 0.0),
                    point("2024-04-01T12:00:00+02:00", "temp", 47.0)])
    start = datetime(2024, 3, 30, tzinfo=BERLIN).astimezone(UTC)
    end = datetime(2024, 4, 2, tzinfo=BERLIN).astimezone(UTC)
    rows = query(client, metric="temp", aggregation="max", interval="1 day", fill="linear",
                 timezone="Europe/Berlin", start_time=iso(start), end_time=iso(end))
    assert [r["time"] for r in rows] == ["2024-03-30T00:00:00+01:00",
                                         "2024-03-31T00:00:00+01:00",
                                         "2024-04-01T00:00:00+02:00"]
    assert [r["value"] for r in rows] == pytest.approx([0.0, 24.0, 47.0])


def test_linear_fill_works_with_any_aggregation(client):
    ingest(client, [point(iso(T0 + timedelta(minutes=m)), "temp", float(v))
                    for m, v in ((0, 1), (10, 3), (20, 6), (190, 6), (200, 10), (210, 30))])
    for how in ("count", "rate", "p90", "sum"):
        check_linear_fill(client, how)


def check_linear_fill(client, how):
    rows = query(client, metric="temp", aggregation=how, interval="1 hour", fill="linear",
                 start_time=iso(T0), end_time=iso(T0 + 4 * HOUR))
    values = {T0: [1.0, 3.0, 6.0], T0 + 3 * HOUR: [6.0, 10.0, 30.0]}
    if how == "rate":
        first = {T0: 5.0 / 3600, T0 + 3 * HOUR: 24.0 / 3600}  # 6 -> 6 at 03:10 adds nothing
    else:
        first = {b: {"count": len, "sum": sum, "p90": lambda v: percentile_cont(v, 0.9)}[how](vs)
                 for b, vs in values.items()}
    buckets = [T0 + h * HOUR for h in range(4)]
    assert [parse_row_time(r) for r in rows] == buckets, how
    assert [r["value"] for r in rows] == pytest.approx(reference_fill(buckets, first, "linear")), \
        how


GROUP_FILL_POINTS = [("a", T0 - HOUR, 10.0), ("a", T0 + HOUR, 20.0), ("a", T0 + 3 * HOUR, 40.0),
                     ("b", T0 + 2 * HOUR, 5.0), ("b", T0 + 3 * HOUR, 8.0)]


def test_fill_with_group_by_fills_each_group(client):
    ingest(client, [point(iso(t), "temp", v, host=h) for h, t, v in GROUP_FILL_POINTS])
    for mode in ("null", "zero", "previous", "linear"):
        check_group_fill(client, mode)


def check_group_fill(client, mode):
    points_ = GROUP_FILL_POINTS
    rows = query(client, metric="temp", aggregation="max", interval="1 hour", fill=mode,
                 group_by=["host"], start_time=iso(T0), end_time=iso(T0 + 5 * HOUR))
    assert_tags_then_time_order(rows, ["host"])
    buckets = [T0 + h * HOUR for h in range(5)]
    seeds = {"a": (T0 - HOUR, 10.0), "b": None}
    for host in ("a", "b"):
        mine = [r for r in rows if r["tags"] == {"host": host}]
        assert [parse_row_time(r) for r in mine] == buckets, (mode, host)
        known = {t: v for h, t, v in points_ if h == host and t >= T0}
        want = reference_fill(buckets, known, mode, seeds[host])
        assert [r["value"] for r in mine] == pytest.approx(want), (mode, host)
    assert len(rows) == 10, mode


def test_fill_without_aggregation_and_interval_or_unknown_is_422_naming_fill(client):
    ingest(client, [point(iso(T0), "temp", 1.0)])
    for body in ({"aggregation": "avg", "fill": "zero"},  # no interval
                 {"interval": "1 hour", "fill": "null"},  # no aggregation
                 {"fill": "previous"},
                 {"aggregation": "avg", "interval": "1 hour", "fill": "backward"}):
        problem = assert_problem(ask(client, metric="temp", start_time=iso(T0),
                                     end_time=iso(FILL_END), **body), 422)
        assert "fill" in error_fields(problem), body


# --- what fill may seed and fill with -------------------------------------------------------

DAY = {"start_time": "2024-01-01T00:00:00Z", "end_time": "2024-01-01T04:00:00Z"}


def test_fill_previous_does_not_seed_a_count_with_a_point_value(client):
    ingest(client, [point("2023-12-31T23:00:00Z", "temp", 22.7),
                    point("2024-01-01T02:30:00Z", "temp", 20.0)])
    rows = query(client, metric="temp", aggregation="count", interval="1h", fill="previous",
                 **DAY)
    # Before the first non-empty bucket nothing is known about counts: null, not 22.7.
    assert [r["value"] for r in rows] == [None, None, 1, 1]
    averages = query(client, metric="temp", aggregation="avg", interval="1h",
                     fill="previous", **DAY)
    assert [r["value"] for r in averages] == [22.7, 22.7, 20.0, 20.0]


@pytest.mark.parametrize("mode", ["zero", "linear"])
def test_numeric_fill_of_string_results_is_a_400(client, mode):
    ingest(client, [point("2024-01-01T01:00:00Z", "door", "open")])
    problem = assert_problem(client.post("/query", json={
        "metric": "door", "aggregation": "last", "interval": "1h", "fill": mode, **DAY}), 400)
    assert "needs numbers" in problem["detail"]


def test_linear_fill_does_not_interpolate_from_a_bucket_whose_aggregate_is_null(client):
    # A lone point has no sample stddev: its bucket answers null, which is no value to
    # interpolate from (it was a 500). The empty bucket after it stays null, as InfluxDB 1.6
    # fills it (tests/test_fill_of_null_aggregates.py); it was interpolated from bucket 0.
    ingest(client, [point(iso(T0 + timedelta(minutes=m)), "temp", v)
                    for m, v in ((0, 0.0), (10, 2.0), (70, 5.0), (180, 0.0), (190, 8.0))])
    rows = query(client, metric="temp", aggregation="stddev", interval="1 hour", fill="linear",
                 start_time=iso(T0), end_time=iso(T0 + 4 * HOUR))
    low, high = 2 ** 0.5, 32 ** 0.5
    assert [r["value"] for r in rows] == [pytest.approx(low), None, None, pytest.approx(high)]
