"""A bucket whose aggregate is null (the sample stddev of a lone point) is filled as InfluxDB
1.6 fills it, checked against influxd: it keeps its null, fill(previous) carries that null
on, fill(linear) interpolates nothing from it, and fill(none) and fill(0) list it as null.
tsapi's InfluxQL took it for an empty bucket (filled over it, left it out under fill(none),
made it 0); /query's linear fill interpolated past it. Counts interpolate as integers."""

from __future__ import annotations

import pytest
import requests
from influxql_pair import influxdb_holding, influxql, tsapi_holding

# Buckets of 10 s: two points, none, a lone point (stddev null), none, two points.
LINES = "g v=1 0\ng v=3 1000000000\ng v=5 20000000000\ng v=7 40000000000\ng v=11 41000000000\n"
RANGE = "WHERE time >= 0 AND time < 50s GROUP BY time(10s)"
FILLS = ["previous", "linear", "none", "null", "0"]
STATEMENTS = [f"SELECT stddev(v) FROM g {RANGE} fill({f})" for f in FILLS] + \
             [f"SELECT stddev(v), count(v) FROM g {RANGE} fill({f})" for f in FILLS] + \
             [f"SELECT count(v) FROM g {RANGE} fill(linear)"]


@pytest.fixture(scope="module")
def oracle():
    with influxdb_holding(LINES) as base:
        yield base


@pytest.fixture(scope="module")
def tsapi(database_urls, redis_server):
    with tsapi_holding(database_urls["timescaledb"], redis_server.url(), LINES) as base:
        yield base


@pytest.mark.parametrize("statement", STATEMENTS)
def test_influxql_fills_null_aggregates_as_influxdb_does(oracle, tsapi, statement):
    assert influxql(tsapi, statement) == influxql(oracle, statement)


@pytest.mark.parametrize("fill", ["previous", "linear", "null"])
def test_query_fills_null_aggregates_as_influxdb_does(oracle, tsapi, fill):
    response = requests.post(f"{tsapi}/query", json={
        "metric": "g.v", "aggregation": "stddev", "interval": "10s", "fill": fill,
        "start_time": "1970-01-01T00:00:00Z", "end_time": "1970-01-01T00:00:50Z"}, timeout=30)
    assert response.status_code == 200, response.text
    series = influxql(oracle, f"SELECT stddev(v) FROM g {RANGE} fill({fill})")
    expected = series["results"][0]["series"][0]["values"]
    assert [r["value"] for r in response.json()] == [v for _, v in expected]
