"""POST /query with an interval: which bucket each point falls in (sub-day widths, weeks,
months and quarters from their origins, before the origin, clipped to the range), the same
buckets on both backends, and how intervals are written or refused. Expectations are computed
in Python."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from helpers import (
    ask,
    assert_problem,
    error_fields,
    expected_buckets,
    ingest,
    iso,
    point,
    query,
    rows_as_pairs,
    utc,
)
from helpers import time_value_pairs as pairs

START = "2024-03-10T00:00:00Z"
END = "2024-03-11T00:00:00Z"
T0 = datetime(2024, 3, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)
AGGREGATIONS = ("avg", "sum", "min", "max", "count")


# --- bucketed aggregation --------------------------------------------------------------------


def scattered_points(seed: int, days: list[datetime], per_day: int) -> list[tuple]:
    """(time, value) pairs: exact boundaries plus random microsecond times on each day;
    values are multiples of 1/4 so sums are exact in binary floating point."""
    rng = random.Random(seed)
    out = {}
    for day in days:
        out[day] = rng.randint(-400, 400) / 4
        out[day + timedelta(days=1, microseconds=-1)] = rng.randint(-400, 400) / 4
        for _ in range(per_day):
            t = day + timedelta(microseconds=rng.randrange(86_400_000_000))
            out[t] = rng.randint(-400, 400) / 4
    return sorted(out.items())


def check_buckets(client, data, how, start, end, interval, **bucket):
    rows = query(client, metric="temp", start_time=iso(start), end_time=iso(end),
                 aggregation=how, interval=interval)
    got = rows_as_pairs(rows)
    want = expected_buckets(data, how, start, end, **bucket)
    assert [t for t, _ in got] == [t for t, _ in want], interval
    for (t, g), (_, w) in zip(got, want, strict=True):
        assert g == pytest.approx(w, rel=1e-12, abs=0), (interval, t)
    return got


HOURLY_DAYS = [datetime(2024, 3, d, tzinfo=UTC) for d in (9, 10, 11)]


@pytest.mark.parametrize(
    ("interval", "width"),
    [("1 hour", timedelta(hours=1)), ("1h", timedelta(hours=1)),
     ("15m", timedelta(minutes=15)), ("15 minutes", timedelta(minutes=15)),
     ("90 minutes", timedelta(minutes=90)), ("7 hours", timedelta(hours=7)),
     ("30s", timedelta(seconds=30))],
)
def test_sub_day_buckets_hold_the_right_points(client, interval, width):
    data = scattered_points(1, HOURLY_DAYS, 40)
    ingest(client, [point(iso(t), "temp", v) for t, v in data])
    start = datetime(2024, 3, 9, 5, 17, 3, tzinfo=UTC)  # not on a bucket edge
    end = datetime(2024, 3, 11, 20, 0, 0, tzinfo=UTC)
    for how in AGGREGATIONS:
        got = check_buckets(client, data, how, start, end, interval, width=width)
        assert len(got) > 3


LONG_DAYS = [datetime(2023, m, d, tzinfo=UTC) for m, d in
             ((10, 31), (11, 1), (12, 31))] + [datetime(2024, m, d, tzinfo=UTC) for m, d in
                                                ((1, 1), (1, 7), (1, 8), (2, 29), (3, 1),
                                                 (3, 31), (4, 1), (6, 30), (7, 1))]


@pytest.mark.parametrize(
    ("interval", "bucket"),
    [("1 day", {"width": timedelta(days=1)}), ("1d", {"width": timedelta(days=1)}),
     ("2 days", {"width": timedelta(days=2)}),
     ("1 week", {"width": timedelta(weeks=1)}), ("1w", {"width": timedelta(weeks=1)}),
     ("1 month", {"months": 1}), ("1mo", {"months": 1}), ("2 months", {"months": 2}),
     ("3 months", {"months": 3}), ("1 year", {"months": 12})],
)
def test_day_week_and_month_buckets_hold_the_right_points(client, interval, bucket):
    data = scattered_points(2, LONG_DAYS, 6)
    ingest(client, [point(iso(t), "temp", v) for t, v in data])
    start = datetime(2023, 10, 31, 12, tzinfo=UTC)
    end = datetime(2024, 7, 1, 6, tzinfo=UTC)
    for how in AGGREGATIONS:
        got = check_buckets(client, data, how, start, end, interval, **bucket)
        assert len(got) >= 2


def test_weekly_buckets_start_on_monday_midnight_utc(client):
    # 2024-03-10 is a Sunday, 2024-03-11 a Monday.
    ingest(client, [point("2024-03-10T23:59:59.999999Z", "temp", 1.0),
                    point("2024-03-11T00:00:00Z", "temp", 2.0),
                    point("2024-03-17T01:00:00+02:00", "temp", 3.0)])  # Sunday 23:00 UTC
    rows = query(client, metric="temp", start_time="2024-03-01T00:00:00Z",
                 end_time="2024-04-01T00:00:00Z", aggregation="sum", interval="1 week")
    assert rows == [{"time": "2024-03-04T00:00:00+00:00", "value": 1.0},
                    {"time": "2024-03-11T00:00:00+00:00", "value": 5.0}]


def test_monthly_buckets_start_on_the_first_in_utc(client):
    ingest(client, [point("2024-02-29T23:30:00-01:00", "temp", 1.0),  # 2024-03-01 00:30 UTC
                    point("2024-03-31T23:59:59.999999Z", "temp", 2.0),
                    point("2024-04-01T01:00:00+02:00", "temp", 4.0)])  # 2024-03-31 23:00 UTC
    rows = query(client, metric="temp", start_time="2024-01-01T00:00:00Z",
                 end_time="2025-01-01T00:00:00Z", aggregation="sum", interval="1 month")
    assert rows == [{"time": "2024-03-01T00:00:00+00:00", "value": 7.0}]


def test_quarter_buckets_are_counted_from_january_2000(client):
    ingest(client, [point("2024-02-15T00:00:00Z", "temp", 1.0),
                    point("2024-04-01T00:00:00Z", "temp", 2.0),
                    point("2024-06-30T00:00:00Z", "temp", 4.0),
                    point("1999-12-31T00:00:00Z", "temp", 8.0),
                    point("1999-10-01T00:00:00Z", "temp", 16.0)])
    rows = query(client, metric="temp", start_time="1999-01-01T00:00:00Z",
                 end_time="2025-01-01T00:00:00Z", aggregation="sum", interval="3 months")
    assert rows == [{"time": "1999-10-01T00:00:00+00:00", "value": 24.0},
                    {"time": "2024-01-01T00:00:00+00:00", "value": 1.0},
                    {"time": "2024-04-01T00:00:00+00:00", "value": 6.0}]


def test_buckets_before_the_origin_round_down(client):
    # 1999-12-30 is a Thursday: its week starts Monday 1999-12-27, before 2000-01-03.
    ingest(client, [point("1999-12-30T05:00:00Z", "temp", 1.0),
                    point("2000-01-02T23:00:00Z", "temp", 2.0),
                    point("2000-01-03T00:00:00Z", "temp", 4.0)])
    rows = query(client, metric="temp", start_time="1999-12-01T00:00:00Z",
                 end_time="2000-02-01T00:00:00Z", aggregation="sum", interval="1 week")
    assert rows == [{"time": "1999-12-27T00:00:00+00:00", "value": 3.0},
                    {"time": "2000-01-03T00:00:00+00:00", "value": 4.0}]


def test_only_non_empty_buckets_are_returned(client):
    ingest(client, [point("2024-03-10T01:10:00Z", "temp", 1.0),
                    point("2024-03-10T05:20:00Z", "temp", 2.0)])
    rows = query(client, metric="temp", start_time=START, end_time=END, aggregation="count",
                 interval="1 hour")
    assert rows == [{"time": "2024-03-10T01:00:00+00:00", "value": 1},
                    {"time": "2024-03-10T05:00:00+00:00", "value": 1}]


def test_buckets_aggregate_across_all_series_of_the_metric(client):
    ingest(client, [point("2024-03-10T01:10:00Z", "temp", 1.0, room="a"),
                    point("2024-03-10T01:10:00Z", "temp", 3.0, room="b"),
                    point("2024-03-10T01:50:00Z", "temp", 8.0)])
    rows = query(client, metric="temp", start_time=START, end_time=END, aggregation="avg",
                 interval="1 hour")
    assert rows == [{"time": "2024-03-10T01:00:00+00:00", "value": 4.0}]


def test_buckets_are_clipped_to_the_range(client):
    ingest(client, [point("2024-03-10T01:10:00Z", "temp", 1.0),
                    point("2024-03-10T01:40:00Z", "temp", 2.0),
                    point("2024-03-10T02:10:00Z", "temp", 4.0)])
    rows = query(client, metric="temp", start_time="2024-03-10T01:30:00Z",
                 end_time="2024-03-10T02:10:00Z", aggregation="sum", interval="1 hour")
    assert rows == [{"time": "2024-03-10T01:00:00+00:00", "value": 2.0}]


# --- both backends give identical answers ---------------------------------------------------


CROSS_DAYS = [datetime(1999, 12, 30, tzinfo=UTC), datetime(2000, 1, 1, tzinfo=UTC),
              datetime(2000, 1, 3, tzinfo=UTC)] + LONG_DAYS


@pytest.mark.parametrize(
    ("interval", "bucket", "start", "end"),
    [
        ("1 hour", {"width": timedelta(hours=1)}, "2023-12-31T00:00:00Z", "2024-01-09T00:00:00Z"),
        ("1 day", {"width": timedelta(days=1)}, "1999-12-01T00:00:00Z", "2024-08-01T00:00:00Z"),
        ("1 week", {"width": timedelta(weeks=1)}, "1999-12-01T00:00:00Z",
         "2024-08-01T00:00:00Z"),
        ("1 month", {"months": 1}, "1999-12-01T00:00:00Z", "2024-08-01T00:00:00Z"),
        ("3 months", {"months": 3}, "1999-11-15T00:00:00Z", "2024-08-01T00:00:00Z"),
    ],
)
def test_both_backends_give_identical_buckets(clients_by_backend, interval, bucket, start, end):
    assert set(clients_by_backend) == {"timescaledb", "postgresql"}
    data = scattered_points(3, CROSS_DAYS, 8)
    batch = [point(iso(t), "temp", v) for t, v in data]
    health = {}
    for backend, client in clients_by_backend.items():
        ingest(client, batch)
        health[backend] = client.get("/health").get_json()["storage"]
    assert health == {"timescaledb": "timescaledb", "postgresql": "postgresql"}
    for how in AGGREGATIONS:
        answers = {
            backend: query(client, metric="temp", start_time=start, end_time=end,
                           aggregation=how, interval=interval)
            for backend, client in clients_by_backend.items()
        }
        assert answers["timescaledb"] == answers["postgresql"], (interval, how)
        got = rows_as_pairs(answers["postgresql"])
        want = expected_buckets(data, how, utc(start), utc(end), **bucket)
        assert [t for t, _ in got] == [t for t, _ in want], (interval, how)
        assert [v for _, v in got] == pytest.approx([v for _, v in want], rel=1e-12)


# --- intervals -------------------------------------------------------------------------------


@pytest.mark.parametrize("interval", ["1 fortnight", "0 hours", "0m",
                                      "1 hour'; drop table points; --", "", "hour", "-1 hour",
                                      "1 hour; select 1", 60])
def test_bad_interval_is_422_naming_interval_and_data_survives(client, interval):
    ingest(client, [point("2024-03-10T01:00:00Z", "temp", 1.0)])
    problem = assert_problem(ask(client, metric="temp", start_time=START, end_time=END,
                                 aggregation="avg", interval=interval), 422)
    assert "interval" in error_fields(problem)
    assert "interval" in problem["detail"]
    ingest(client, [point("2024-03-10T02:00:00Z", "temp", 3.0)])
    assert query(client, metric="temp", start_time=START, end_time=END, aggregation="avg",
                 interval="1 day") == [{"time": START.replace("Z", "+00:00"), "value": 2.0}]


@pytest.mark.parametrize(("interval", "bucket"), [
    ("999999999 years", {"months": 999999999 * 12}),
    ("999999999 weeks", {"width": 999999999 * 7 * 86400 * 10**6}),
    ("999999999 days", {"width": timedelta(days=999999999)}),
])
def test_very_wide_interval_is_answered_correctly_or_refused_naming_interval(
        client, interval, bucket):
    # Either answer is acceptable; a server error is not.
    ingest(client, [point("2024-03-10T01:00:00Z", "temp", 1.0)])
    response = ask(client, metric="temp", start_time=START, end_time=END, aggregation="sum",
                   interval=interval)
    if response.status_code == 200:
        want = expected_buckets([(T0 + timedelta(hours=1), 1.0)], "sum", T0,
                                T0 + timedelta(days=1), **bucket)
        assert rows_as_pairs(response.get_json()) == want
    else:
        problem = assert_problem(response, 422)
        assert "interval" in error_fields(problem)


SHORTHANDS = [
    ("15m", "15 minutes", {"width": timedelta(minutes=15)}),
    ("1h", "1 hour", {"width": HOUR}),
    ("1d", "1 day", {"width": timedelta(days=1)}),
    ("1w", "1 week", {"width": timedelta(weeks=1)}),
    ("1mo", "1 month", {"months": 1}),
]


def test_interval_shorthand_equals_the_word_form(client):
    start = datetime(2024, 2, 20, tzinfo=UTC)
    data = [(start + timedelta(minutes=37 * i), float(i % 13)) for i in range(1500)]
    ingest(client, [point(iso(t), "temp", v) for t, v in data])
    end = datetime(2024, 3, 25, tzinfo=UTC)
    body = {"metric": "temp", "start_time": iso(start), "end_time": iso(end),
            "aggregation": "sum"}
    for short, words, bucket in SHORTHANDS:
        by_short = query(client, interval=short, **body)
        by_words = query(client, interval=words, **body)
        assert by_short == by_words, short
        assert pairs(by_short) == expected_buckets(data, "sum", start, end, **bucket), short
