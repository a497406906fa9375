"""A bucket whose aggregate is null (the sample stddev of a lone point) is filled as InfluxDB
1.6 fills it, checked against influxd: it keeps its null, fill(previous) carries that null
on, fill(linear) interpolates nothing from it, and fill(none) and fill(0) list it as null.
tsapi's InfluxQL took it for an empty bucket (filled over it, left it out under fill(none),
made it 0); /query's linear fill interpolated past it. Counts interpolate as integers."""

from __future__ import annotations

import pytest
import requests
from conftest import OPEN_ACCESS, reset_state
from live import serving
from services import InfluxServer

from tsapi import create_app

# Buckets of 10 s: two points, none, a lone point (stddev null), none, two points.
LINES = "g v=1 0\ng v=3 1000000000\ng v=5 20000000000\ng v=7 40000000000\ng v=11 41000000000\n"
RANGE = "WHERE time >= 0 AND time < 50s GROUP BY time(10s)"
FILLS = ["previous", "linear", "none", "null", "0"]
STATEMENTS = [f"SELECT stddev(v) FROM g {RANGE} fill({f})" for f in FILLS] + \
             [f"SELECT stddev(v), count(v) FROM g {RANGE} fill({f})" for f in FILLS] + \
             [f"SELECT count(v) FROM g {RANGE} fill(linear)"]


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
    url = database_urls["timescaledb"]
    reset_state(url, redis_server.url())
    app = create_app({"TESTING": True, "DATABASE_URL": url, "REDIS_URL": redis_server.url(),
                      **OPEN_ACCESS})
    with serving(app) as base:
        response = requests.post(f"{base}/write", params={"db": "d"}, data=LINES, timeout=30)
        assert response.status_code == 204, response.text
        yield base
    app.extensions["tsapi"].db.dispose()


@pytest.mark.parametrize("statement", STATEMENTS)
def test_influxql_fills_null_aggregates_as_influxdb_does(oracle, tsapi, statement):
    assert _influxql(tsapi, statement) == _influxql(oracle, statement)


@pytest.mark.parametrize("fill", ["previous", "linear", "null"])
def test_query_fills_null_aggregates_as_influxdb_does(oracle, tsapi, fill):
    response = requests.post(f"{tsapi}/query", json={
        "metric": "g.v", "aggregation": "stddev", "interval": "10s", "fill": fill,
        "start_time": "1970-01-01T00:00:00Z", "end_time": "1970-01-01T00:00:50Z"}, timeout=30)
    assert response.status_code == 200, response.text
    series = _influxql(oracle, f"SELECT stddev(v) FROM g {RANGE} fill({fill})")
    expected = series["results"][0]["series"][0]["values"]
    assert [r["value"] for r in response.json()] == [v for _, v in expected]
