"""InfluxQL durations past what InfluxDB keeps (2**63 - 1 nanoseconds, about 292 years) are
refused as InfluxDB refuses them, a 400 for the whole request; the longest it keeps are
answered; no GROUP BY time() width or offset is a 500; and /query's own `interval` past its
1000 years is a 422 naming it, however many digits it has.

The expected bodies are InfluxDB 1.6.7's own answers to the same statements (the oracle test,
tests/test_influxql_oracle.py, checks the longest accepted ones and the refusals against a
live influxd)."""

from __future__ import annotations

import pytest
from helpers import assert_problem, influxql

LINES = "cpu,host=a usage=1 1000000000\ncpu,host=a usage=2 2000000000"
FIRST_SECONDS = "WHERE time >= 0 AND time < 10s"
EVERYTHING = "WHERE time >= -9223372036854775806 AND time <= 9223372036854775806"


@pytest.fixture
def loaded(client):
    assert client.post("/write?db=db", data=LINES).status_code == 204
    return client


def overflowed(written: str) -> dict:
    return {"error": f"error parsing query: overflowed duration {written}: choose a smaller "
                     "duration or INF"}


@pytest.mark.parametrize(("statement", "error"), [
    (f"SELECT mean(usage) FROM cpu {FIRST_SECONDS} GROUP BY time(15251w)",
     overflowed("15251w")),
    (f"SELECT mean(usage) FROM cpu {FIRST_SECONDS} GROUP BY time(106752d)",
     overflowed("106752d")),
    (f"SELECT mean(usage) FROM cpu {FIRST_SECONDS} GROUP BY time(9223372037s)",
     overflowed("9223372037s")),
    (f"SELECT mean(usage) FROM cpu {FIRST_SECONDS} GROUP BY time(9223372036854775808ns)",
     {"error": "error parsing query: invalid duration"}),
    ("SELECT mean(usage) FROM cpu WHERE time > now() - 15251w", overflowed("15251w")),
    # These were a 500: bucket starts before year 1 overflowed Python's datetime.
    ("SELECT mean(usage) FROM cpu WHERE time > now() - 5200w GROUP BY time(1000000d)",
     overflowed("1000000d")),
    ("SELECT mean(usage) FROM cpu WHERE time > now() - 5200w "
     "GROUP BY time(99999999999999999999999w)", {"error": "error parsing query: invalid duration"}),
    # InfluxDB 1.6 lets its multiplication wrap around here and answers with a bucket of some
    # other width; tsapi refuses it as InfluxDB refuses 15251w.
    (f"SELECT mean(usage) FROM cpu {FIRST_SECONDS} GROUP BY time(1000000000w)",
     overflowed("1000000000w")),
    (f"SELECT mean(usage) FROM cpu {FIRST_SECONDS} GROUP BY time(1w, 1000000000w)",
     overflowed("1000000000w")),
])
def test_a_duration_past_292_years_is_refused_for_the_whole_request(loaded, statement, error):
    assert influxql(loaded, f"SHOW DATABASES; {statement}", db="db") == (400, error)


@pytest.mark.parametrize("group_by", ["time(15250w)", "time(106751d)", "time(2562047h)",
                                      "time(9223372036s)"])
def test_the_longest_durations_influxdb_keeps_are_answered_as_it_does(loaded, group_by):
    status, body = influxql(loaded, f"SELECT mean(usage) FROM cpu {FIRST_SECONDS} "
                                    f"GROUP BY {group_by}", db="db")
    assert status == 200
    assert body["results"][0]["series"][0]["values"] == [["1970-01-01T00:00:00Z", 1.5]]


def test_buckets_of_292_years_reaching_back_to_1677_are_answered_as_influxdb_does(loaded):
    status, body = influxql(loaded, "SELECT mean(usage) FROM cpu WHERE time > now() - 5200w "
                                    "GROUP BY time(15250w)", db="db")
    assert status == 200
    assert body["results"][0]["series"][0]["values"] == [["1677-09-23T00:00:00Z", None],
                                                         ["1970-01-01T00:00:00Z", 1.5]]


def test_an_offset_longer_than_the_interval_counts_modulo_the_interval(loaded):
    status, body = influxql(loaded, f"SELECT mean(usage) FROM cpu {FIRST_SECONDS} "
                                    "GROUP BY time(1h, 90m)", db="db")
    assert status == 200
    assert body["results"][0]["series"][0]["values"] == [["1969-12-31T23:30:00Z", 1.5]]


def test_an_offset_in_parts_of_a_microsecond_is_refused_naming_the_offset(loaded):
    # It was refused as "interval: must be greater than zero": the whole-microsecond buckets
    # /query was asked for shrank to nothing.
    status, body = influxql(loaded, f"SELECT mean(usage) FROM cpu {FIRST_SECONDS} "
                                    "GROUP BY time(1h, 9223372036854775807ns)", db="db")
    assert status == 200
    assert body["results"][0]["error"] == ("unsupported GROUP BY time() offset: use whole "
                                           "microseconds")


@pytest.mark.parametrize("width", ["15250w", "106751d", "9223372036s", "1000s"])
@pytest.mark.parametrize("offset", ["", ", 946857600s", ", -9223372036s"])
@pytest.mark.parametrize("where", [EVERYTHING, ""])
@pytest.mark.parametrize("tail", ["", " fill(linear) tz('Pacific/Kiritimati')"])
def test_no_width_or_offset_within_range_is_a_server_error(loaded, width, offset, where, tail):
    status, body = influxql(loaded, f"SELECT mean(usage), max(usage) FROM cpu {where} "
                                    f"GROUP BY time({width}{offset}){tail}", db="db")
    assert status in (200, 400), body
    for result in body.get("results", []):
        assert "interval:" not in result.get("error", ""), result


@pytest.mark.parametrize("interval", ["999999999999999999 weeks", "9999999999999999999 seconds",
                                      "365251 days", "12001 months", "31557600001 seconds"])
def test_a_query_interval_past_1000_years_is_a_422_naming_it(loaded, interval):
    problem = assert_problem(loaded.post("/query", json={
        "metric": "cpu.usage", "start_time": "1970-01-01T00:00:00Z",
        "end_time": "1970-01-02T00:00:00Z", "aggregation": "avg", "interval": interval}), 422)
    assert problem["errors"][0]["field"] == "interval"
