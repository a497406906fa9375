"""derivative() and non_negative_derivative() of a GROUP BY time() aggregate, compared with
InfluxDB 1.6 (influxd) statement by statement. tsapi derived between the buckets that had a
value and filled the derivatives afterwards; InfluxDB derives the filled aggregate, read from
one bucket before the range, lists only the derivatives (no null rows for fill(null)), and
takes the GROUP BY interval as the unit when none is given: Grafana's usual
`non_negative_derivative(mean("bytes"), 1s) ... fill(null)` answered null rows between the
values, and `derivative(mean(x))` was per second, not per interval."""

from __future__ import annotations

import pytest
import requests
from conftest import OPEN_ACCESS, reset_state
from live import serving
from services import InfluxServer

from tsapi import create_app

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


def _influxql(base: str, statement: str):
    response = requests.get(f"{base}/query", params={"db": "d", "q": statement, "epoch": "s"},
                            timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def oracle():
    server = InfluxServer()
    server.start()
    requests.post(f"{server.url()}/query", data={"q": "CREATE DATABASE d"}, timeout=30)
    response = requests.post(f"{server.url()}/write", params={"db": "d"}, data=LINES,
                             timeout=30)
    assert response.status_code == 204, response.text
    yield server.url()
    server.cleanup()


@pytest.fixture(scope="module")
def tsapi(database_urls, redis_server):
    url = database_urls["postgresql"]
    reset_state(url, redis_server.url())
    app = create_app({"TESTING": True, "DATABASE_URL": url, "REDIS_URL": redis_server.url(),
                      **OPEN_ACCESS})
    with serving(app) as base:
        response = requests.post(f"{base}/write", params={"db": "d"}, data=LINES, timeout=30)
        assert response.status_code == 204, response.text
        yield base
    app.extensions["tsapi"].db.dispose()


@pytest.mark.parametrize("statement", STATEMENTS)
def test_a_derivative_of_buckets_is_influxdbs(oracle, tsapi, statement):
    assert _influxql(tsapi, statement) == _influxql(oracle, statement)


def test_an_aggregate_derivative_without_group_by_time_is_refused_as_influxdb_refuses_it(
        oracle, tsapi):
    statement = "SELECT derivative(mean(v)) FROM g WHERE time >= 0 AND time < 50s"
    assert _influxql(tsapi, statement) == _influxql(oracle, statement)
