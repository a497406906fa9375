"""The server's limits, each set small by the test: points per batch, body bytes (also after
gzip), buckets per query, and the statement time limit (a 503 problem, and the pooled
connection stays usable)."""

import gzip

import pytest
import sqlalchemy as sa
from helpers import ask, assert_problem, error_fields, ingest, point, query, stored_metrics

START = "2024-03-10T00:00:00Z"
END = "2024-03-11T00:00:00Z"

# --- ingest size ---------------------------------------------------------------------------


@pytest.fixture
def small_batch_client(make_app):
    return make_app(TSAPI_MAX_BATCH_POINTS=5).test_client()


def test_batch_at_the_limit_is_accepted(small_batch_client):
    points = [point(f"2024-03-10T00:00:0{i}Z", "temp", float(i)) for i in range(5)]
    assert ingest(small_batch_client, points)["ingested_count"] == 5


def test_batch_over_the_limit_is_413_and_stores_nothing(small_batch_client):
    points = [point(f"2024-03-10T00:00:0{i}Z", "temp", float(i)) for i in range(6)]
    problem = assert_problem(small_batch_client.post("/ingest", json={"data": points}), 413)
    assert "5" in problem["detail"]
    assert stored_metrics(small_batch_client) == []


def test_body_over_the_byte_limit_is_413(make_app):
    client = make_app(TSAPI_MAX_BODY_BYTES=200).test_client()
    points = [point(f"2024-03-10T00:00:0{i}Z", "temp", float(i)) for i in range(6)]
    assert_problem(client.post("/ingest", json={"data": points}), 413)
    assert stored_metrics(client) == []


def test_gzip_bomb_is_refused_without_storing(make_app):
    app = make_app(TSAPI_MAX_BODY_BYTES=100_000)
    body = gzip.compress(b'{"data": [' + b" " * 10_000_000 + b"]}")
    assert len(body) < 100_000
    response = app.test_client().post("/ingest", data=body, content_type="application/json",
                                      headers={"Content-Encoding": "gzip"})
    problem = assert_problem(response, 413)
    assert "Decompressed body exceeds" in problem["detail"]
    assert [e["field"] for e in problem["errors"]] == ["body"]


# --- buckets per query --------------------------------------------------------------------


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


# --- statement time -----------------------------------------------------------------------

# Far above what reading a one-row table takes on any machine, however busy.
STATEMENT_TIMEOUT_MS = 2_000


def test_a_query_over_the_time_limit_is_a_503_and_the_next_query_works(
        make_app, database_urls, backend):
    app = make_app(TSAPI_DB_STATEMENT_TIMEOUT_MS=STATEMENT_TIMEOUT_MS, TSAPI_DB_POOL_SIZE=1)
    client = app.test_client()
    ingest(client, [point("2024-01-01T00:00:00Z", "load", 1.0)])
    body = {"metric": "load", "start_time": "2024-01-01T00:00:00Z",
            "end_time": "2024-02-01T00:00:00Z", "aggregation": "p99"}

    # The query is certainly slow, whatever the machine's speed: another session holds a lock
    # on the points table, so reading it waits until statement_timeout cancels the wait.
    blocker = sa.create_engine(database_urls[backend])
    try:
        with blocker.begin() as conn:
            # Should anything else hold the table, fail here rather than hang.
            conn.execute(sa.text("SET LOCAL lock_timeout = '30s'"))
            conn.execute(sa.text("LOCK TABLE points IN ACCESS EXCLUSIVE MODE"))
            problem = assert_problem(client.post("/query", json=body), 503)
    finally:
        blocker.dispose()
    assert "time limit" in problem["detail"]

    # The same single pooled connection answers the next, cheap request.
    response = client.get("/metrics")
    assert response.status_code == 200, response.get_json()
    assert [m["name"] for m in response.get_json()] == ["load"]
