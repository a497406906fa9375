"""POST /query: raw ranges, aggregates with and without buckets, bucket alignment on both
backends, validation, and exact round-trips of values."""

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
    post_raw,
    query,
    rows_as_pairs,
    utc,
)

START = "2024-03-10T00:00:00Z"
END = "2024-03-11T00:00:00Z"
T0 = datetime(2024, 3, 10, tzinfo=UTC)
AGGREGATIONS = ("avg", "sum", "min", "max", "count")



# --- raw ---------------------------------------------------------------------------------


def test_raw_query_returns_points_ordered_by_time_whatever_the_ingest_order(client):
    times = [T0 + timedelta(minutes=m, microseconds=m) for m in (50, 3, 27, 0, 9, 44)]
    ingest(client, [point(iso(t), "temp", float(i)) for i, t in enumerate(times)])
    rows = rows_as_pairs(query(client, metric="temp", start_time=START, end_time=END))
    expected = sorted((t, float(i)) for i, t in enumerate(times))
    assert rows == expected


def test_range_includes_start_and_excludes_end(client):
    start, end = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    stamps = {
        "before-start": start - timedelta(microseconds=1),
        "at-start": start,
        "inside": start + timedelta(minutes=30),
        "just-before-end": end - timedelta(microseconds=1),
        "at-end": end,
    }
    ingest(client, [point(iso(t), "temp", float(i)) for i, t in enumerate(stamps.values())])
    rows = rows_as_pairs(query(client, metric="temp", start_time=iso(start), end_time=iso(end)))
    assert [t for t, _ in rows] == [stamps["at-start"], stamps["inside"],
                                    stamps["just-before-end"]]


def test_range_bounds_with_offsets_and_without_offsets_are_the_same_instants(client):
    ingest(client, [point("2024-03-10T00:59:59Z", "temp", 1.0),
                    point("2024-03-10T01:00:00Z", "temp", 2.0),
                    point("2024-03-10T01:59:59Z", "temp", 3.0),
                    point("2024-03-10T02:00:00Z", "temp", 4.0)])
    naive = query(client, metric="temp", start_time="2024-03-10T01:00:00",
                  end_time="2024-03-10T02:00:00")
    shifted = query(client, metric="temp", start_time="2024-03-10T03:00:00+02:00",
                    end_time="2024-03-09T21:00:00-05:00")
    assert [r["value"] for r in naive] == [2.0, 3.0]
    assert shifted == naive


def test_raw_query_of_an_empty_range_is_an_empty_list(client):
    ingest(client, [point(START, "temp", 1.0)])
    assert query(client, metric="temp", start_time="2024-03-11T00:00:00Z",
                 end_time="2024-03-12T00:00:00Z") == []


def test_query_response_is_json(client):
    ingest(client, [point(START, "temp", 1.0)])
    response = ask(client, metric="temp", start_time=START, end_time=END)
    assert response.status_code == 200
    assert response.mimetype == "application/json"


def test_interval_without_aggregation_returns_raw_points(client):
    ingest(client, [point(iso(T0 + timedelta(minutes=m)), "temp", float(m)) for m in (1, 2, 70)])
    raw = query(client, metric="temp", start_time=START, end_time=END)
    with_interval = query(client, metric="temp", start_time=START, end_time=END,
                          interval="1 hour")
    assert len(raw) == 3
    assert with_interval == raw


def test_query_of_one_metric_ignores_other_metrics(client):
    ingest(client, [point(START, "a", 1.0), point(START, "b", 2.0), point(START, "ab", 3.0)])
    assert [r["value"] for r in query(client, metric="a", start_time=START, end_time=END)] == [1.0]


# --- aggregation over the whole range --------------------------------------------------------

WHOLE_RANGE_VALUES = [4.0, -2.5, 10.25, 0.0, 7.75, -2.5]


def test_aggregation_without_interval_is_one_row_stamped_with_start_time(client):
    times = [T0 + timedelta(hours=h, minutes=7) for h in range(len(WHOLE_RANGE_VALUES))]
    data = list(zip(times, WHOLE_RANGE_VALUES, strict=True))
    outside = [(T0 - timedelta(seconds=1), 1000.0), (T0 + timedelta(days=1), -1000.0)]
    ingest(client, [point(iso(t), "temp", v) for t, v in data + outside])
    values = [v for _, v in data]
    expected = {"avg": sum(values) / len(values), "sum": sum(values), "min": min(values),
                "max": max(values), "count": len(values)}
    for how in AGGREGATIONS:
        rows = query(client, metric="temp", start_time="2024-03-10T02:00:00+02:00",
                     end_time=END, aggregation=how)
        assert rows_as_pairs(rows) == [(T0, expected[how])], how
    assert isinstance(rows[0]["value"], int)  # count, the last one


def test_aggregation_of_an_empty_range_is_an_empty_list(client):
    ingest(client, [point(START, "temp", 1.0), point("2024-03-13T00:00:00Z", "temp", 2.0)])
    for how in AGGREGATIONS:
        for interval in (None, "1 hour", "1 month"):
            body = {"metric": "temp", "start_time": "2024-03-12T00:00:00Z",
                    "end_time": "2024-03-13T00:00:00Z", "aggregation": how}
            if interval:
                body["interval"] = interval
            assert query(client, **body) == [], (how, interval)


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


# --- errors ------------------------------------------------------------------------------


def test_unknown_metric_is_404_with_exact_detail(client):
    ingest(client, [point(START, "temp", 1.0)])
    problem = assert_problem(ask(client, metric="tmp", start_time=START, end_time=END), 404)
    assert problem["detail"] == "Metric 'tmp' not found"


def test_unknown_metric_with_aggregation_is_404(client):
    problem = assert_problem(ask(client, metric="nothing here", start_time=START, end_time=END,
                                 aggregation="count", interval="1 hour"), 404)
    assert problem["detail"] == "Metric 'nothing here' not found"


def test_numeric_aggregation_of_a_string_metric_is_400(client):
    ingest(client, [point("2024-03-10T01:00:00Z", "state", "on")])
    for how in ("avg", "sum", "min", "max"):
        for interval in (None, "1 hour"):
            body = {"metric": "state", "start_time": START, "end_time": END,
                    "aggregation": how}
            if interval:
                body["interval"] = interval
            problem = assert_problem(client.post("/query", json=body), 400)
            assert "only supported for numeric metrics" in problem["detail"], (how, interval)


def test_count_of_a_string_metric_is_allowed(client):
    ingest(client, [point("2024-03-10T01:00:00Z", "state", "on"),
                    point("2024-03-10T01:30:00Z", "state", "off"),
                    point("2024-03-10T03:00:00Z", "state", "on")])
    assert query(client, metric="state", start_time=START, end_time=END,
                 aggregation="count") == [{"time": "2024-03-10T00:00:00+00:00", "value": 3}]
    assert query(client, metric="state", start_time=START, end_time=END, aggregation="count",
                 interval="1 hour") == [{"time": "2024-03-10T01:00:00+00:00", "value": 2},
                                        {"time": "2024-03-10T03:00:00+00:00", "value": 1}]


@pytest.mark.parametrize(("start", "end"), [(END, START), (START, START),
                                             ("2024-03-10T02:00:00+02:00", START)],
                         ids=["reversed", "equal", "equal-instant-other-offset"])
def test_empty_or_reversed_range_is_422_naming_end_time(client, start, end):
    ingest(client, [point(START, "temp", 1.0)])
    problem = assert_problem(ask(client, metric="temp", start_time=start, end_time=end), 422)
    assert "end_time" in error_fields(problem)
    assert "end_time" in problem["detail"]


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


@pytest.fixture
def few_buckets_client(make_app):
    client = make_app(TSAPI_MAX_QUERY_BUCKETS=10).test_client()
    ingest(client, [point("2024-03-10T01:00:00Z", "temp", 1.0)])
    return client


def test_too_many_buckets_is_422_naming_interval(few_buckets_client):
    problem = assert_problem(ask(few_buckets_client, metric="temp", start_time=START,
                                 end_time=END, aggregation="avg", interval="1 minute"), 422)
    assert "interval" in error_fields(problem)


def test_bucket_count_at_the_limit_is_allowed(few_buckets_client):
    rows = query(few_buckets_client, metric="temp", start_time=START,
                 end_time="2024-03-10T10:00:00Z", aggregation="sum", interval="1 hour")
    assert rows == [{"time": "2024-03-10T01:00:00+00:00", "value": 1.0}]


def test_bucket_limit_does_not_apply_to_raw_queries_with_an_interval(few_buckets_client):
    rows = query(few_buckets_client, metric="temp", start_time=START, end_time=END,
                 interval="1 minute")
    assert rows == [{"time": "2024-03-10T01:00:00+00:00", "value": 1.0}]


def test_unknown_request_field_is_422_naming_it(client):
    ingest(client, [point(START, "temp", 1.0)])
    # A typo of "aggregation" must not silently return raw points.
    problem = assert_problem(ask(client, metric="temp", start_time=START, end_time=END,
                                 aggregate="avg"), 422)
    assert "aggregate" in error_fields(problem)


@pytest.mark.parametrize("missing", ["metric", "start_time", "end_time"])
def test_missing_required_field_is_422_naming_it(client, missing):
    body = {"metric": "temp", "start_time": START, "end_time": END}
    del body[missing]
    problem = assert_problem(client.post("/query", json=body), 422)
    assert missing in error_fields(problem)


@pytest.mark.parametrize(("field", "value"), [
    ("aggregation", "mean"), ("aggregation", "p100"), ("aggregation", ""),
    ("start_time", "yesterday"),
    ("end_time", "2024-13-01T00:00:00Z"), ("metric", ""), ("metric", 5),
])
def test_invalid_field_value_is_422_naming_it(client, field, value):
    ingest(client, [point(START, "temp", 1.0)])
    body = {"metric": "temp", "start_time": START, "end_time": END, field: value}
    problem = assert_problem(client.post("/query", json=body), 422)
    assert field in error_fields(problem)


def test_invalid_json_query_is_400_problem(client):
    assert_problem(post_raw(client, "/query", '{"metric": '), 400)


def test_sum_overflowing_the_double_range_is_not_a_server_error(client):
    ingest(client, [point("2024-03-10T01:00:00Z", "temp", 1.7976931348623157e308),
                    point("2024-03-10T02:00:00Z", "temp", 1.7976931348623157e308)])
    response = ask(client, metric="temp", start_time=START, end_time=END, aggregation="sum")
    assert response.status_code < 500, response.get_json()


# --- exact round-trips ---------------------------------------------------------------------
# Each round-trip runs with a small batch and with one padded by thousands of points of
# another metric, since a writer may take a different path for large batches.

NUMBERS = [0.1, 1e-300, -0.0, 0.0, 1.7976931348623157e308, -1.7976931348623157e308,
           5e-324, 2.2250738585072014e-308, 123456789.12345679, 1 / 3, -2.5, 42, 2**53,
           9007199254740991, 0.30000000000000004, -1e-300]

STRINGS = ["tab\there", "new\nline", "carriage\rreturn", "crlf\r\n", "back\\slash",
           "\\N", "\\.", "\\", "trailing\\", "quote\"s and 'apostrophes'", "",
           " leading and trailing ", "naïve café", "日本語テキスト", "emoji 🚀🧪",
           "combining e\u0301", "rtl \u05e9\u05dc\u05d5\u05dd", "\u2028line sep\u2029",
           "bell\x07escape\x1b", "a" * 5000, "{\"json\": [1, 2]}", "NULL", "\\t literal",
           "{}", "{a,b}", "\"quoted\"", "comma,separated", "null"]

PADDING = 2500


def padded(points: list[dict], pad: bool) -> list[dict]:
    if not pad:
        return points
    filler = [point(iso(T0 + timedelta(hours=1, milliseconds=i)), "padding", float(i))
              for i in range(PADDING)]
    return points + filler


def stored_values(client, metric):
    rows = rows_as_pairs(query(client, metric=metric, start_time=START, end_time=END))
    return [t for t, _ in rows], [v for _, v in rows]


def assert_same_doubles(got, sent):
    assert len(got) == len(sent)
    for g, v in zip(got, sent, strict=True):
        assert isinstance(g, float | int), g
        assert float(g).hex() == float(v).hex(), (g, v)  # also tells -0.0 from 0.0


@pytest.mark.parametrize("pad", [False, True], ids=["small-batch", "large-batch"])
def test_numbers_round_trip_exactly(client, pad):
    times = [T0 + timedelta(seconds=i) for i in range(len(NUMBERS))]
    ingest(client, padded([point(iso(t), "num", v) for t, v in zip(times, NUMBERS, strict=True)],
                          pad))
    got_times, got = stored_values(client, "num")
    assert got_times == times
    assert_same_doubles(got, NUMBERS)


@pytest.mark.parametrize("pad", [False, True], ids=["small-batch", "large-batch"])
def test_numbers_round_trip_exactly_when_rewritten(client, pad):
    times = [T0 + timedelta(seconds=i) for i in range(len(NUMBERS))]
    ingest(client, padded([point(iso(t), "num", 7.0) for t in times], pad))
    ingest(client, padded([point(iso(t), "num", v) for t, v in zip(times, NUMBERS, strict=True)],
                          pad))
    assert_same_doubles(stored_values(client, "num")[1], NUMBERS)


@pytest.mark.parametrize("pad", [False, True], ids=["small-batch", "large-batch"])
def test_string_values_round_trip_exactly(client, pad):
    times = [T0 + timedelta(seconds=i) for i in range(len(STRINGS))]
    ingest(client, padded([point(iso(t), "text", v) for t, v in zip(times, STRINGS, strict=True)],
                          pad))
    got_times, got = stored_values(client, "text")
    assert got_times == times
    assert got == STRINGS


@pytest.mark.parametrize("pad", [False, True], ids=["small-batch", "large-batch"])
def test_string_values_round_trip_exactly_when_rewritten(client, pad):
    times = [T0 + timedelta(seconds=i) for i in range(len(STRINGS))]
    ingest(client, padded([point(iso(t), "text", "old") for t in times], pad))
    ingest(client, padded([point(iso(t), "text", v) for t, v in zip(times, STRINGS, strict=True)],
                          pad))
    assert stored_values(client, "text")[1] == STRINGS


def test_tags_with_special_characters_make_distinct_series(client):
    tags = ["plain", "with space", "quote\"", "back\\slash", "ünïcödé", "🚀", "", "{}", "a,b"]
    ingest(client, [point(START, "temp", float(i), tag=t) for i, t in enumerate(tags)])
    rows = query(client, metric="temp", start_time=START, end_time=END)
    assert sorted(r["value"] for r in rows) == [float(i) for i in range(len(tags))]
