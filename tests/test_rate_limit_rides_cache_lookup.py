"""A cached /query or GET /metrics with rate limits on costs one Redis round trip: the limiter's
count rides the cache lookup's pipeline, and still refuses a request over its limit before any
answer is served or any work done."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis
from flask import request
from helpers import assert_problem, ingest, iso, point, query
from redis.connection import AbstractConnection

from tsapi.api.problems import problem_response
from tsapi.api.resources.query import influxql as influxql_routes

T0 = datetime(2024, 3, 10, tzinfo=UTC)
AGG = {"metric": "cpu", "aggregation": "sum", "interval": "1 hour",
       "start_time": iso(T0), "end_time": iso(T0 + timedelta(days=1))}


def limited(make_app, read="1000/minute"):
    return make_app(TSAPI_RATE_LIMITS="on", TSAPI_RATE_LIMIT_READ=read,
                    TSAPI_RATE_LIMIT_WRITE="1000/minute", TSAPI_RATE_LIMIT_ADMIN="1000/minute")


def reads_of(app, monkeypatch) -> list:
    """Every database read the app starts from now on (a query's work) leaves an entry."""
    db = app.extensions["tsapi"].db
    real = db.reader
    reads = []
    monkeypatch.setattr(db, "reader", lambda *a, **k: reads.append(1) or real(*a, **k))
    return reads


@pytest.fixture
def round_trips(monkeypatch):
    """How many times any Redis client of this process sent something (a pipeline sends its
    commands at once: one round trip)."""
    sent = {"n": 0}
    real = AbstractConnection.send_packed_command

    def counting(self, *args, **kwargs):
        sent["n"] += 1
        return real(self, *args, **kwargs)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    return sent


def test_a_repeated_cached_query_costs_one_round_trip_with_rate_limits_on(make_app,
                                                                            round_trips):
    client = limited(make_app).test_client()
    ingest(client, [point(iso(T0), "cpu", 1.0)])
    first = query(client, **AGG)
    assert query(client, **AGG) == first
    before = round_trips["n"]
    for _ in range(3):
        assert query(client, **AGG) == first
    assert round_trips["n"] - before == 3


def test_a_repeated_metric_list_costs_one_round_trip_with_rate_limits_on(make_app,
                                                                         round_trips):
    client = limited(make_app).test_client()
    ingest(client, [point(iso(T0), "cpu", 1.0)])
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics").status_code == 200
    before = round_trips["n"]
    responses = [client.get("/metrics") for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert round_trips["n"] - before == 3
    assert [r.headers["X-RateLimit-Remaining"] for r in responses] == ["997", "996", "995"]


def test_a_cached_query_over_the_limit_is_refused_and_not_served(make_app):
    client = limited(make_app, read="3/minute").test_client()
    ingest(client, [point(iso(T0), "cpu", 1.0)])
    assert [client.post("/query", json=AGG).status_code for _ in range(3)] == [200] * 3
    refused = client.post("/query", json=AGG)
    assert_problem(refused, 429)
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert 0 < int(refused.headers["Retry-After"]) <= 60


def test_an_uncached_query_over_the_limit_does_no_work(make_app, monkeypatch):
    app = limited(make_app, read="1/minute")
    client = app.test_client()
    ingest(client, [point(iso(T0), "cpu", 1.0)])
    future = {**AGG, "end_time": iso(datetime.now(UTC) + timedelta(days=1))}  # never cached
    assert client.post("/query", json=future).status_code == 200
    reads = reads_of(app, monkeypatch)
    assert_problem(client.post("/query", json=future), 429)
    assert reads == []


def test_invalid_queries_are_counted_and_over_the_limit_get_429(make_app):
    client = limited(make_app, read="2/minute").test_client()
    bad = {**AGG, "aggregation": "nonsense"}
    first = client.post("/query", json=bad)
    assert_problem(first, 422)
    assert first.headers["X-RateLimit-Remaining"] == "1"
    assert_problem(client.post("/query", json=bad), 422)
    assert_problem(client.post("/query", json=bad), 429)
    assert_problem(client.post("/query", json=AGG), 429)


def test_influxql_posted_to_query_over_the_limit_does_no_work(make_app, monkeypatch):
    client = limited(make_app, read="1/minute").test_client()
    form = {"q": "SHOW DATABASES"}
    assert client.post("/query", data=form).status_code == 200
    worked = []
    real = influxql_routes.run_influxql
    monkeypatch.setattr(influxql_routes, "run_influxql",
                        lambda *a, **k: worked.append(1) or real(*a, **k))
    assert client.post("/query", data=form).status_code == 429
    assert worked == []


def test_an_export_over_the_limit_does_no_work(make_app, monkeypatch):
    app = limited(make_app, read="1/minute")
    client = app.test_client()
    ingest(client, [point(iso(T0), "cpu", 1.0)])
    export = {"metric": "cpu", "start_time": AGG["start_time"], "end_time": AGG["end_time"],
              "format": "csv"}
    assert client.post("/query", json=export).status_code == 200
    reads = reads_of(app, monkeypatch)
    assert_problem(client.post("/query", json=export), 429)
    assert reads == []


def test_counts_are_right_after_redis_forgets_the_script(make_app, redis_server):
    client = limited(make_app, read="3/minute").test_client()
    ingest(client, [point(iso(T0), "cpu", 1.0)])
    assert query(client, **AGG) == query(client, **AGG)
    redis.Redis.from_url(redis_server.url()).script_flush()
    assert client.post("/query", json=AGG).status_code == 200
    assert_problem(client.post("/query", json=AGG), 429)


@pytest.mark.parametrize("backend", ["timescaledb"], indirect=True)
def test_when_redis_goes_away_cached_queries_are_counted_in_memory(make_app, own_redis):
    app = make_app(REDIS_URL=own_redis.url(), TSAPI_RATE_LIMITS="on",
                   TSAPI_RATE_LIMIT_READ="4/minute", TSAPI_RATE_LIMIT_WRITE="100/minute")
    client = app.test_client()
    ingest(client, [point(iso(T0), "cpu", 1.0)])
    assert query(client, **AGG) == query(client, **AGG)  # the lookup now rides one pipeline
    own_redis.stop()
    # The pipeline that carried the count fails: counted from zero in this worker's memory,
    # then (the gate closed) alone, in memory too.
    statuses = [client.post("/query", json=AGG).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]


def with_a_header_on_every_response(app):
    """An after_request hook added to the app, as a deployment adds CORS: it must see every
    response, a 429 too."""

    @app.after_request
    def everywhere(response):
        response.headers["X-Everywhere"] = "yes"
        return response

    return app


def shape(response) -> tuple:
    """What a client can tell apart: status, media type, header names, body keys."""
    return (response.status_code, response.mimetype, sorted(response.headers.keys()),
            sorted(response.get_json(force=True)))


def test_a_429_for_an_invalid_query_is_answered_as_any_other_429(make_app):
    """A 422 from the arguments leaves the count to be sent as the view ends; over the limit
    its 429 carries every header every other 429 carries."""
    client = with_a_header_on_every_response(limited(make_app, read="1/minute")).test_client()
    bad = {**AGG, "aggregation": "nonsense"}
    assert_problem(client.post("/query", json=bad), 422)
    refused = client.post("/query", json=bad)
    assert_problem(refused, 429)
    assert refused.headers["X-Everywhere"] == "yes"
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    counted_first = client.get("/metrics/cpu")  # counted before its view, by the hook
    assert shape(refused) == shape(counted_first)
    assert shape(client.get("/metrics", query_string={"limit": "-1"})) == shape(counted_first)


def test_a_429_for_influxql_posted_to_query_is_answered_as_any_other_influxql_429(make_app):
    client = with_a_header_on_every_response(limited(make_app, read="1/minute")).test_client()
    assert client.post("/query", data={"q": "SHOW DATABASES"}).status_code == 200
    refused = client.post("/query", data={"q": "SHOW DATABASES"})
    assert refused.status_code == 429
    assert refused.headers["X-Everywhere"] == "yes"
    assert shape(refused) == shape(client.get("/query", query_string={"q": "SHOW DATABASES"}))


def test_a_request_answered_before_its_view_is_counted_and_its_answer_kept(make_app):
    """A before_request hook after the limiter's may answer a counted view's request: the count
    is sent as the response goes out, and the answer keeps every header hooks added to it."""
    app = with_a_header_on_every_response(limited(make_app, read="1/minute"))

    @app.before_request
    def closed_for_maintenance():
        if request.path == "/metrics":
            return problem_response(503, "Closed for maintenance")
        return None

    client = app.test_client()
    remaining = []
    for _ in range(2):
        response = client.get("/metrics")
        assert_problem(response, 503)
        assert response.headers["X-Everywhere"] == "yes"
        remaining.append(response.headers["X-RateLimit-Remaining"])
    assert remaining == ["0", "0"]
    assert_problem(client.post("/query", json=AGG), 429)  # the budget is spent
