"""derivative() and non_negative_derivative() of a GROUP BY time() aggregate, compared with
InfluxDB 1.6 (influxd) statement by statement. tsapi derived between the buckets that had a
value and filled the derivatives afterwards; InfluxDB derives the filled aggregate, read from
one bucket before the range, lists only the derivatives (no null rows for fill(null)), and
takes the GROUP BY interval as the unit when none is given: Grafana's usual
`non_negative_derivative(mean("bytes"), 1s) ... fill(null)` answered null rows between the
values, and `derivative(mean(x))` was per second, not per interval."""

from __future__ import annotations

import pytest
from influxql_pair import influxdb_holding, influxql, tsapi_holding

# g: buckets of 10 s with two points, none, a lone point (stddev null), none, two points.
# h: two series (k=a, k=b), trailing empty buckets.
LINES = """g v=1 0
g v=3 1000000000
g v=5 20000000000
g v=7 40000000000
g v=11 41000000000
h,k=a v=1 0
h,k=a v=4 1000000000
h,k=a v=6 10000000000
h,k=b v=3 20000000000
h,k=b v=5 21000000000
h,k=b v=1 40000000000
"""
RANGES = {"g": "time >= {start} AND time < 50s", "h": "time >= {start} AND time < 60s"}
CASES = [
    ("derivative(mean(v))", "", "0"), ("derivative(mean(v))", "fill(null)", "0"),
    ("derivative(mean(v))", "fill(none)", "0"), ("derivative(mean(v))", "fill(previous)", "0"),
    ("derivative(mean(v))", "fill(linear)", "0"), ("derivative(mean(v))", "fill(0)", "0"),
    ("derivative(mean(v))", "fill(null)", "10s"), ("derivative(mean(v))", "fill(0)", "20s"),
    ("derivative(mean(v))", "fill(previous)", "30s"),
    ("derivative(mean(v))", "fill(previous)", "15s"),
    ("non_negative_derivative(mean(v), 1s)", "fill(null)", "0"),
    ("non_negative_derivative(mean(v), 1s)", "fill(linear)", "0"),
    ("derivative(mean(v), 10s)", "fill(none)", "0"),
    ("derivative(stddev(v))", "", "0"), ("derivative(stddev(v))", "fill(previous)", "0"),
    ("derivative(stddev(v))", "fill(linear)", "0"), ("derivative(stddev(v))", "fill(0)", "0"),
    ("derivative(count(v))", "", "0"), ("derivative(count(v))", "fill(previous)", "0"),
    ("derivative(first(v))", "fill(linear)", "0"),
    ("derivative(mean(v)), mean(v)", "fill(null)", "0"),
    ("derivative(mean(v)), derivative(max(v), 1s)", "fill(null)", "0"),
]
STATEMENTS = [f"SELECT {select} FROM {m} WHERE {RANGES[m].format(start=start)} "
              f"GROUP BY time(10s) {fill}".strip()
              for m in ("g", "h") for select, fill, start in CASES] + [
    "SELECT non_negative_derivative(mean(v)) FROM h WHERE time >= 0 AND time < 60s "
    "GROUP BY time(10s), k fill(previous)",
    "SELECT derivative(sum(v), 1s) FROM h WHERE time >= 5s AND time < 60s "
    "GROUP BY time(10s), k fill(0)",
    "SELECT derivative(mean(v)) FROM g WHERE time >= 0 AND time < 50s GROUP BY time(20s)",
]


@pytest.fixture(scope="module")
def oracle():
    with influxdb_holding(LINES) as base:
        yield base


@pytest.fixture(scope="module")
def tsapi(database_urls, redis_server):
    with tsapi_holding(database_urls["postgresql"], redis_server.url(), LINES) as base:
        yield base


@pytest.mark.parametrize("statement", STATEMENTS)
def test_a_derivative_of_buckets_is_influxdbs(oracle, tsapi, statement):
    assert influxql(tsapi, statement) == influxql(oracle, statement)


def test_an_aggregate_derivative_without_group_by_time_is_refused_as_influxdb_refuses_it(
        oracle, tsapi):
    statement = "SELECT derivative(mean(v)) FROM g WHERE time >= 0 AND time < 50s"
    assert influxql(tsapi, statement) == influxql(oracle, statement)
