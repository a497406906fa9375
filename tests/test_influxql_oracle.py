"""InfluxQL answers compared with InfluxDB 1.x's own, statement by statement.

The same line protocol is written to a private influxd (the oracle, Debian's package) and to
tsapi on each backend; both are read with InfluxDB's own Python client (`influxdb`). Series,
tags, columns and values must agree (floats within 1e-9 relative), or both must refuse.
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime

import pytest
import requests
from conftest import BACKENDS, OPEN_ACCESS, reset_state
from influxdb import InfluxDBClient
from influxdb.exceptions import InfluxDBClientError
from influxql_corpus import UNSUPPORTED, fixed_lines, recent_lines, statements
from live import serving
from services import InfluxServer

from tsapi import create_app

DB = "telegraf"
CORPUS = statements()


@pytest.fixture(scope="module")
def lines():
    return fixed_lines() + recent_lines(time.time())


@pytest.fixture(scope="module")
def influxdb_oracle(lines):
    server = InfluxServer()
    server.start()
    client = InfluxDBClient("127.0.0.1", server.port, database=DB, timeout=30)
    client.create_database(DB)
    client.write_points(lines, protocol="line", batch_size=5000)
    yield client
    client.close()
    server.cleanup()


@pytest.fixture(scope="module", params=BACKENDS)
def tsapi_client(request, database_urls, redis_server, lines):
    url = database_urls[request.param]
    reset_state(url, redis_server.url())
    app = create_app({"TESTING": True, "DATABASE_URL": url, "REDIS_URL": redis_server.url(),
                      **OPEN_ACCESS})
    with serving(app) as base:
        response = requests.post(f"{base}/write", params={"db": DB},
                                 data="\n".join(lines).encode(), timeout=60)
        assert response.status_code == 204, response.text
        port = int(base.rsplit(":", 1)[1])
        client = InfluxDBClient("127.0.0.1", port, database=DB, timeout=30)
        yield client
        client.close()
    app.extensions["tsapi"].db.dispose()


def answer(client: InfluxDBClient, statement: str, epoch: str | None, method: str = "GET"):
    """('ok', raw results) or ('error', status) for parse errors the client raises."""
    try:
        result = client.query(statement, epoch=epoch, raise_errors=False, method=method)
    except InfluxDBClientError as exc:
        return "error", exc.code
    results = result if isinstance(result, list) else [result]
    return "ok", [r.raw for r in results]


def instant(text: str) -> tuple[datetime, str]:
    """An RFC 3339 time as (instant to the microsecond, nanosecond digits)."""
    match = re.fullmatch(r"(.{19})(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)", text)
    assert match, text
    moment = datetime.fromisoformat(match.group(1) + match.group(3).replace("Z", "+00:00"))
    return moment.astimezone(UTC), (match.group(2) or "").ljust(9, "0")


def same_time(a, b) -> bool:
    # With tz(), InfluxDB 1.8 prints local times with their offset (as tsapi does), Debian's
    # 1.6 build prints UTC: the instants must agree.
    if isinstance(a, str) and isinstance(b, str):
        return instant(a) == instant(b)
    return a == b


def same_value(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def assert_same(mine, theirs, statement: str) -> None:
    assert mine[0] == theirs[0], (statement, mine, theirs)
    if mine[0] == "error":
        assert mine[1] == theirs[1], statement
        return
    assert len(mine[1]) == len(theirs[1]), statement
    for got, want in zip(mine[1], theirs[1], strict=True):
        if "error" in want:
            assert "error" in got, (statement, got, want["error"])
            continue
        assert "error" not in got, (statement, got["error"])
        got_series, want_series = got.get("series", []), want.get("series", [])
        assert [(s.get("name"), s.get("tags"), s["columns"]) for s in got_series] == \
            [(s.get("name"), s.get("tags"), s["columns"]) for s in want_series], statement
        for g, w in zip(got_series, want_series, strict=True):
            assert len(g["values"]) == len(w["values"]), (statement, g["values"][:5],
                                                          w["values"][:5])
            timed = g["columns"][0] == "time"
            for grow, wrow in zip(g["values"], w["values"], strict=True):
                assert len(grow) == len(wrow), (statement, grow, wrow)
                assert not timed or same_time(grow[0], wrow[0]), (statement, grow, wrow)
                assert all(same_value(x, y) for x, y in zip(grow[timed:], wrow[timed:],
                                                            strict=True)), (statement, grow, wrow)


def test_the_corpus_is_large_enough():
    assert len(CORPUS) >= 100


@pytest.mark.parametrize("index", range(len(CORPUS)))
def test_statement_answers_as_influxdb_does(index, tsapi_client, influxdb_oracle):
    statement = CORPUS[index]
    # Grafana asks for epoch=ms; every third statement checks RFC 3339 times instead, and
    # every fifth is POSTed (parameters in the URL, no body), as Grafana's POST method does.
    epoch = None if index % 3 == 0 else "ms"
    method = "POST" if index % 5 == 1 else "GET"
    assert_same(answer(tsapi_client, statement, epoch, method),
                answer(influxdb_oracle, statement, epoch, method), statement)


@pytest.mark.parametrize("statement", sorted(UNSUPPORTED))
def test_unsupported_statement_gets_an_error_naming_it(statement, tsapi_client):
    kind, results = answer(tsapi_client, statement, "ms")
    assert kind == "error" or "error" in results[0], (UNSUPPORTED[statement], results)
