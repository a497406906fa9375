"""InfluxQL integer literals past what InfluxDB reads are refused in InfluxDB 1.6.7's own
words, never a 500 and never an answer: past 2**64 - 1 anywhere in an expression, the
unsigned range (2**63 up to 2**64 - 1) in fill() and compared with time, below -2**63 after
a minus sign. A number written with an exponent past a double's range is refused too (InfluxDB
reads no exponents at all). The expected bodies are influxd 1.6.7's answers to the same
statements, but the last (the literal's position there is the same, its message tsapi's)."""

from __future__ import annotations

import pytest
from helpers import influxql

LINES = "cpu,host=a usage=1 1000000000\ncpu,host=a usage=2 7300000000000"
# 03:00 has points, the hours around it none: fill() has buckets to fill.
HOURS = "WHERE time >= 0 AND time < 4h GROUP BY time(1h)"


@pytest.fixture
def loaded(client):
    assert client.post("/write?db=db", data=LINES).status_code == 204
    return client


def refused(message: str) -> tuple[int, dict]:
    return 400, {"error": f"error parsing query: {message}"}


@pytest.mark.parametrize(("statement", "answer"), [
    # This was a 500: the fill value reached the JSON encoder, which takes 64 bits at most.
    (f"SELECT mean(usage) FROM cpu {HOURS} fill(99999999999999999999999)",
     refused("unable to parse integer at line 1, char 82")),
    (f"SELECT mean(usage) FROM cpu {HOURS} fill(18446744073709551615)",
     refused("expected number argument in fill()")),
    (f"SELECT mean(usage) FROM cpu {HOURS} fill(9223372036854775808)",
     refused("expected number argument in fill()")),
    # This was a 500 as well.
    (f"SELECT mean(usage) FROM cpu {HOURS} fill(-9223372036854775809)",
     refused("constant -9223372036854775809 underflows int64")),
    ("SELECT usage FROM cpu WHERE time > 99999999999999999999",
     refused("unable to parse integer at line 1, char 36")),
    ("SELECT usage FROM cpu WHERE usage > 18446744073709551616",
     refused("unable to parse integer at line 1, char 37")),
    ("SELECT usage FROM cpu WHERE time > -9223372036854775809",
     refused("constant -9223372036854775809 underflows int64")),
    ("SELECT usage FROM cpu WHERE time > 9223372036854775808",
     (200, {"results": [{"statement_id": 0, "error": "invalid operation: time and "
                         "*influxql.UnsignedLiteral are not compatible"}]})),
    (f"SELECT mean(usage) FROM cpu {HOURS} fill(1.0e999)",
     refused("unable to parse number at line 1, char 82")),
])
def test_an_integer_past_what_influxdb_reads_is_refused_in_its_words(loaded, statement,
                                                                     answer):
    assert influxql(loaded, statement, db="db") == answer


@pytest.mark.parametrize(("fill", "value"), [
    ("9223372036854775807", 9223372036854775807),
    ("-9223372036854775808", -9223372036854775808),
])
def test_the_widest_integers_influxdb_reads_still_fill(loaded, fill, value):
    status, body = influxql(loaded, f"SELECT mean(usage) FROM cpu {HOURS} fill({fill})", db="db")
    assert status == 200, body
    values = body["results"][0]["series"][0]["values"]
    assert [v for _, v in values] == [1, value, 2, value]
