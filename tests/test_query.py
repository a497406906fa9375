"""POST /query: raw ranges, the metric(s) a query reads, request validation, and exact
round-trips of values (aggregations and buckets have files of their own)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from helpers import (
    HOSTS,
    ask,
    assert_problem,
    error_fields,
    ingest,
    ingest_points,
    iso,
    parse_row_time,
    point,
    post_raw,
    query,
    rows_as_pairs,
    same_time_points,
)
from helpers import time_value_pairs as pairs

START = "2024-03-10T00:00:00Z"
END = "2024-03-11T00:00:00Z"
T0 = datetime(2024, 3, 10, tzinfo=UTC)


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


# --- several metrics at once ----------------------------------------------------------------

RANGE = {"start_time": START, "end_time": END}


def test_several_metrics_in_one_raw_query_carry_their_metric(client):
    cpu, mem = same_time_points(times=4), same_time_points(times=3)
    ingest_points(client, cpu)
    ingest_points(client, [(h, t, v + 0.5) for h, t, v in mem], metric="mem")
    ingest_points(client, same_time_points(times=2), metric="disk")
    rows = query(client, metrics=["mem", "cpu"], **RANGE)
    assert all(set(r) == {"time", "value", "metric"} for r in rows)
    for name, data, shift in (("cpu", cpu, 0.0), ("mem", mem, 0.5)):
        mine = [r for r in rows if r["metric"] == name]
        assert sorted(pairs(mine)) == sorted((t, v + shift) for _, t, v in data), name
        times = [parse_row_time(r) for r in mine]
        assert times == sorted(times), name
    assert len(rows) == len(cpu) + len(mem)


def test_several_metrics_aggregated_with_group_by(client):
    cpu, mem = same_time_points(times=4), same_time_points(times=3)
    ingest_points(client, cpu)
    ingest_points(client, mem, metric="mem")
    rows = query(client, metrics=["cpu", "mem"], aggregation="sum", group_by=["host"],
                 **RANGE)
    got = {(r["metric"], r["tags"]["host"]): r["value"] for r in rows}
    want = {}
    for name, data in (("cpu", cpu), ("mem", mem)):
        for host in HOSTS:
            want[(name, host)] = sum(v for h, _, v in data if h == host)
    assert got == want
    assert len(rows) == len(want)
    assert all(parse_row_time(r) == T0 for r in rows)


def test_unknown_metric_among_several_is_404_naming_it(client):
    ingest_points(client, same_time_points(times=2))
    for aggregation in (None, "sum"):
        body = {"metrics": ["cpu", "no-such-metric"], **RANGE}
        if aggregation:
            body["aggregation"] = aggregation
        problem = assert_problem(ask(client, **body), 404)
        assert "no-such-metric" in problem["detail"]


def test_metric_and_metrics_together_or_neither_is_422(client):
    ingest_points(client, same_time_points(times=2))
    for body in ({"metric": "cpu", "metrics": ["cpu"]}, {}):
        problem = assert_problem(ask(client, **body, **RANGE), 422)
        assert {"metric", "metrics"} & set(error_fields(problem)), body


# --- errors ------------------------------------------------------------------------------


def test_unknown_metric_is_404_with_exact_detail(client):
    ingest(client, [point(START, "temp", 1.0)])
    problem = assert_problem(ask(client, metric="tmp", start_time=START, end_time=END), 404)
    assert problem["detail"] == "Metric 'tmp' not found"


def test_unknown_metric_with_aggregation_is_404(client):
    problem = assert_problem(ask(client, metric="nothing here", start_time=START, end_time=END,
                                 aggregation="count", interval="1 hour"), 404)
    assert problem["detail"] == "Metric 'nothing here' not found"


@pytest.mark.parametrize(("start", "end"), [(END, START), (START, START),
                                             ("2024-03-10T02:00:00+02:00", START)],
                         ids=["reversed", "equal", "equal-instant-other-offset"])
def test_empty_or_reversed_range_is_422_naming_end_time(client, start, end):
    ingest(client, [point(START, "temp", 1.0)])
    problem = assert_problem(ask(client, metric="temp", start_time=start, end_time=end), 422)
    assert "end_time" in error_fields(problem)
    assert "end_time" in problem["detail"]


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
    # Past the microsecond a range end would be cut to another instant: refused, as ingest
    # refuses such a point time.
    ("end_time", "2099-01-01T00:00:00.0000001Z"), ("start_time", "2000-01-01T00:00:00.1234567Z"),
    # A limit is a whole number of rows, given as a number.
    ("limit", 1.5), ("limit", "10"),
])
def test_invalid_field_value_is_422_naming_it(client, field, value):
    ingest(client, [point(START, "temp", 1.0)])
    body = {"metric": "temp", "start_time": START, "end_time": END, field: value}
    problem = assert_problem(client.post("/query", json=body), 422)
    assert field in error_fields(problem)


def test_range_ends_with_zero_digits_past_the_microsecond_are_the_same_instant(client):
    ingest(client, [point("2024-01-01T00:00:00.000001Z", "temp", 1.0)])
    body = {"metric": "temp", "start_time": "2024-01-01T00:00:00.0000010Z",
            "end_time": "2024-01-01T00:00:00.0000020000Z"}
    assert [row["value"] for row in client.post("/query", json=body).get_json()] == [1.0]


def test_invalid_json_query_is_400_problem(client):
    assert_problem(post_raw(client, "/query", '{"metric": '), 400)


DAY = {"start_time": "2024-01-01T00:00:00Z", "end_time": "2024-01-01T04:00:00Z"}


@pytest.mark.parametrize("body", [
    {"metric": "a\x00"},
    {"metric": "a", "tags": {"k": "b\x00"}},
    {"metric": "a", "tags": {"k\x00": ["b"]}},
    {"metric": "a", "group_by": ["k\x00"]},
])
def test_nul_characters_in_a_query_are_a_422(client, body):
    assert_problem(client.post("/query", json={**body, **DAY}), 422)


@pytest.mark.parametrize("body", [
    {"start_time": "0001-01-01T00:00:00+01:00", "end_time": "2024-01-01T00:00:00Z"},
    {"start_time": "2024-01-01T00:00:00Z", "end_time": "9999-12-31T23:59:59-01:00"},
    {"start_time": "0001-01-01T00:00:00Z", "end_time": "0001-01-05T00:00:00Z",
     "timezone": "America/New_York"},
    {"start_time": "0500-01-01T00:00:00Z", "end_time": "0600-01-01T00:00:00Z",
     "aggregation": "avg", "interval": "1000 years"},
])
def test_times_at_the_edges_of_the_calendar_are_a_422(client, body):
    ingest(client, [point("2024-01-01T01:00:00Z", "m", 1.0)])
    assert_problem(client.post("/query", json={"metric": "m", **body}), 422)


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


def ingest_a_second_apart(client, metric: str, values: list, pad: bool) -> list[datetime]:
    """`values` as points of `metric` one second apart from T0, padded if asked; their times."""
    times = [T0 + timedelta(seconds=i) for i in range(len(values))]
    ingest(client, padded([point(iso(t), metric, v) for t, v in zip(times, values, strict=True)],
                          pad))
    return times


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
    times = ingest_a_second_apart(client, "num", NUMBERS, pad)
    got_times, got = stored_values(client, "num")
    assert got_times == times
    assert_same_doubles(got, NUMBERS)


@pytest.mark.parametrize("pad", [False, True], ids=["small-batch", "large-batch"])
def test_numbers_round_trip_exactly_when_rewritten(client, pad):
    ingest_a_second_apart(client, "num", [7.0] * len(NUMBERS), pad)
    ingest_a_second_apart(client, "num", NUMBERS, pad)
    assert_same_doubles(stored_values(client, "num")[1], NUMBERS)


@pytest.mark.parametrize("pad", [False, True], ids=["small-batch", "large-batch"])
def test_string_values_round_trip_exactly(client, pad):
    times = ingest_a_second_apart(client, "text", STRINGS, pad)
    got_times, got = stored_values(client, "text")
    assert got_times == times
    assert got == STRINGS


@pytest.mark.parametrize("pad", [False, True], ids=["small-batch", "large-batch"])
def test_string_values_round_trip_exactly_when_rewritten(client, pad):
    ingest_a_second_apart(client, "text", ["old"] * len(STRINGS), pad)
    ingest_a_second_apart(client, "text", STRINGS, pad)
    assert stored_values(client, "text")[1] == STRINGS


def test_tags_with_special_characters_make_distinct_series(client):
    tags = ["plain", "with space", "quote\"", "back\\slash", "ünïcödé", "🚀", "", "{}", "a,b"]
    ingest(client, [point(START, "temp", float(i), tag=t) for i, t in enumerate(tags)])
    rows = query(client, metric="temp", start_time=START, end_time=END)
    assert sorted(r["value"] for r in rows) == [float(i) for i in range(len(tags))]
