"""POST /query over data at the ends of time (years 1 and 9999), across DST changes and odd
zone offsets, through raw and rollup paths: every answer is a 200 or a problem document,
never a 500. Derandomized, as tests/test_schemathesis.py: the same requests on every run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from helpers import PROBLEM_JSON, ingest, point
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rollup_support import Store

from tsapi.store.rollup_refresh import refresh

# Refreshed into rollups, then written again in one batch with the edges: the rollup log
# then holds spans from year 1 to year 9999.
POINT_TIMES = ["2011-12-29T23:00:00Z", "2024-01-01T00:00:00Z", "2024-01-01T00:30:00Z",
               "2024-03-31T00:30:00Z", "2024-03-31T01:30:00Z", "2024-10-27T00:30:00Z"]
EDGES = ["0001-01-01T00:00:00Z", "0001-01-02T12:00:00Z", "9999-12-30T12:00:00Z",
         "9999-12-31T23:59:59.999999Z", "2024-01-01T00:45:00Z"]
STARTS = ["0001-01-01T00:00:00", "0001-01-03T00:00:00", "2011-12-29T00:00:00",
          "2023-12-31T23:59:59.999999", "2024-03-30T22:00:00", "2024-10-26T23:30:00",
          "9999-12-25T00:00:00", "9999-12-31T23:00:00"]
SPANS = [timedelta(microseconds=1), timedelta(hours=1), timedelta(days=1), timedelta(days=3),
         timedelta(days=40), timedelta(days=3652)]
LAST = datetime.max.replace(tzinfo=UTC)
OPTIONS = {
    "aggregation": st.sampled_from(["avg", "sum", "count", "first", "last", "stddev", "rate",
                                    "increase", "delta", "p50", "count_distinct"]),
    "interval": st.sampled_from(["1m", "45m", "1h", "7m", "1d", "25h", "1w", "1mo", "1y"]),
    "timezone": st.sampled_from(["Pacific/Kiritimati", "Etc/GMT+12", "America/Caracas",
                                 "Europe/Berlin", "Pacific/Apia", "Australia/Lord_Howe",
                                 "Asia/Kathmandu", "Pacific/Chatham"]),
    "fill": st.sampled_from(["null", "zero", "previous", "linear"]),
    "group_by": st.sampled_from([["d"], ["d", "d"], ["zz"]]),
    "format": st.sampled_from(["csv", "ndjson"]),
}


@st.composite
def bodies(draw):
    start = datetime.fromisoformat(draw(st.sampled_from(STARTS))).replace(tzinfo=UTC)
    span = draw(st.sampled_from(SPANS))
    end = start + span if start <= LAST - span else LAST
    body = {"metric": draw(st.sampled_from(["num", "str"])),
            "start_time": start.isoformat(), "end_time": end.isoformat()}
    for name, values in OPTIONS.items():
        if draw(st.booleans()):
            body[name] = draw(values)
    return body


def points_at(times: list[str]) -> list[dict]:
    return [p for t in times for p in (point(t, "num", 1.5, d="x"), point(t, "num", -2.5, d="y"),
                                       point(t, "str", "s"))]


@pytest.fixture
def edged(client, database_urls, backend):
    ingest(client, points_at(POINT_TIMES))
    store = Store(database_urls[backend])
    refresh(store.engine, store.storage, timedelta(0), now=datetime(2024, 6, 1, tzinfo=UTC))
    store.dispose()
    ingest(client, points_at(EDGES))
    return client


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=bodies())
def test_queries_at_the_ends_of_time_are_answered_or_refused(edged, body):
    response = edged.post("/query", json=body)
    assert response.status_code < 500, (body, response.data[:300])
    if response.status_code >= 400:
        assert response.mimetype == PROBLEM_JSON, body
