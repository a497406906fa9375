"""A write's rate-limit count is sent as the request starts and read just before its first
database access (tsapi.api.counts_in_flight): the round trip overlaps with the body's parsing,
and the limit holds as before: over it, the answer is a 429 and nothing is stored or read;
every request is counted once; a Redis that fails after the count was sent lets it through."""

from __future__ import annotations

import gzip
import socket
import threading

import orjson
import pytest
import redis
import sqlalchemy as sa
from helpers import assert_problem, point
from redis.connection import AbstractConnection

from tsapi.api.counts_in_flight import EARLY_COUNT_BODY_BYTES, CountSender
from tsapi.api.rate_windows import Counter, RateWindows
from tsapi.config import parse_rates
from tsapi.services import ingest as ingest_use_case
from tsapi.services.redis_gate import RedisGate

T = "2024-01-01T00:00:00Z"
ONE = {"data": [point(T, "m", 1.0)]}


def limited(make_app, write="3/minute", **overrides):
    return make_app(TSAPI_AUTH="off", TSAPI_RATE_LIMITS="on", TSAPI_RATE_LIMIT_READ="100/minute",
                    TSAPI_RATE_LIMIT_WRITE=write, TSAPI_RATE_LIMIT_ADMIN="100/minute",
                    **overrides)


def stored_points(app) -> int:
    with app.extensions["tsapi"].db.engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM points")).scalar_one()


@pytest.fixture
def events(monkeypatch):
    """What the request did, in order: each Redis command sent, each answer read, and the
    validation of its body."""
    seen: list[str] = []
    send, read = AbstractConnection.send_packed_command, AbstractConnection.read_response
    validate = ingest_use_case.validate_points

    def sending(self, command, *args, **kwargs):
        first = command if isinstance(command, bytes) else command[0]
        seen.append("send EVALSHA" if b"EVALSHA" in first.upper() else "send")
        return send(self, command, *args, **kwargs)

    def reading(self, *args, **kwargs):
        seen.append("read")
        return read(self, *args, **kwargs)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", sending)
    monkeypatch.setattr(AbstractConnection, "read_response", reading)
    monkeypatch.setattr(ingest_use_case, "validate_points",
                        lambda data: seen.append("validate") or validate(data))
    return seen


def connected(make_app):
    """A client whose app has made its Redis connections (their handshakes are not events)."""
    client = limited(make_app).test_client()
    assert client.post("/ingest", json=ONE).status_code == 200
    return client


def test_a_small_write_reads_its_count_after_validating_its_body(make_app, events):
    client = connected(make_app)
    events.clear()
    assert client.post("/ingest", json=ONE).status_code == 200
    assert events[:3] == ["send EVALSHA", "validate", "read"]


def test_a_large_or_compressed_body_is_read_only_after_its_count(make_app, events):
    client = connected(make_app)
    events.clear()
    large = {"data": [point(T, f"metric{i}", 1.0) for i in range(400)]}
    assert len(orjson.dumps(large)) > EARLY_COUNT_BODY_BYTES
    assert client.post("/ingest", json=large).status_code == 200
    assert events[:3] == ["send EVALSHA", "read", "validate"]
    events.clear()
    body = gzip.compress(orjson.dumps(ONE))
    response = client.post("/ingest", data=body, content_type="application/json",
                           headers={"Content-Encoding": "gzip"})
    assert response.status_code == 200
    assert events[:3] == ["send EVALSHA", "read", "validate"]


@pytest.mark.parametrize("backend", ["timescaledb"], indirect=True)
def test_a_write_over_the_limit_is_refused_and_stores_nothing(make_app):
    app = limited(make_app)
    client = app.test_client()
    responses = [client.post("/ingest", json={"data": [point(T, f"m{i}", 1.0)]})
                 for i in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in responses] == ["2", "1", "0", "0"]
    assert_problem(responses[3], 429)
    assert 0 < int(responses[3].headers["Retry-After"]) <= 60
    assert stored_points(app) == 3
    lp = client.post("/write", data="m4 value=1 1704067200000000000")
    assert_problem(lp, 429)
    assert stored_points(app) == 3


@pytest.mark.parametrize("backend", ["timescaledb"], indirect=True)
def test_each_write_is_counted_once_whatever_its_answer(make_app, redis_server):
    client = limited(make_app, write="100/minute").test_client()
    answers = [client.post("/ingest", json=ONE).status_code,
               client.post("/ingest", json={"data": [{"time": T, "metric": "m"}]}).status_code,
               client.post("/write", data="m value=1 1704067200000000000").status_code,
               client.post("/write?accept_partial=true",
                           data="m value=2 1704067200000000000\nnonsense").status_code]
    assert answers == [200, 422, 204, 400]
    [key] = redis.Redis.from_url(redis_server.url()).keys("tsapi:rate:write:*")
    assert int(redis.Redis.from_url(redis_server.url()).get(key)) == 4


def test_a_bad_body_gets_422_under_the_limit_and_429_over_it(make_app):
    """Decided: over its limit, a client's answer is the 429 whatever it sent (as when the
    count was read before the body); under it, the 422 with the window's headers."""
    client = limited(make_app, write="1/minute").test_client()
    bad = {"data": [{"time": T, "metric": "m", "value": "not a number"}, {"metric": "m"}]}
    first = client.post("/ingest", json=bad)
    assert_problem(first, 422)
    assert first.headers["X-RateLimit-Remaining"] == "0"
    refused = client.post("/ingest", json=bad)
    assert_problem(refused, 429)
    assert "Retry-After" in refused.headers
    assert_problem(client.post("/write", data="nonsense"), 429)


@pytest.mark.parametrize("backend", ["timescaledb"], indirect=True)
def test_a_bad_body_over_the_limit_does_not_reach_the_database(make_app, monkeypatch):
    app = limited(make_app, write="1/minute")
    client = app.test_client()
    assert client.post("/ingest", json=ONE).status_code == 200
    looked_up = []
    real = ingest_use_case.metric_types
    monkeypatch.setattr(ingest_use_case, "metric_types",
                        lambda *a: looked_up.append(1) or real(*a))
    # Under the limit, this body's type conflict with the stored metric is looked up.
    conflicting = {"data": [point(T, "m", "text"), {"metric": "m"}]}
    assert_problem(client.post("/ingest", json=conflicting), 429)
    assert looked_up == []


@pytest.mark.parametrize("backend", ["timescaledb"], indirect=True)
def test_a_redis_that_stops_answering_after_the_count_was_sent_lets_writes_through(make_app):
    # A listening socket that never answers: the count is sent, its answer never comes.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        app = limited(make_app, write="2/minute", REDIS_URL=url)
        client = app.test_client()
        statuses = [client.post("/ingest", json={"data": [point(T, f"m{i}", 1.0)]}).status_code
                    for i in range(3)]
    assert statuses == [200, 200, 429]  # counted in this worker's memory after the timeout
    assert stored_points(app) == 2


@pytest.mark.parametrize("backend", ["timescaledb"], indirect=True)
def test_after_redis_restarts_writes_are_counted_in_it_again_at_once(make_app, own_redis):
    app = limited(make_app, REDIS_URL=own_redis.url())
    client = app.test_client()
    assert client.post("/ingest", json=ONE).status_code == 200
    own_redis.stop()
    own_redis.start()  # empty: it keeps nothing on disk
    # The worker's connection was closed by the restart: a new one, not a count in memory.
    assert client.post("/ingest", json=ONE).headers["X-RateLimit-Remaining"] == "2"
    [key] = redis.Redis.from_url(own_redis.url()).keys("tsapi:rate:write:*")
    assert int(redis.Redis.from_url(own_redis.url()).get(key)) == 1


def _closing_server() -> tuple[socket.socket, threading.Thread]:
    """Accepts connections, reads what is sent, then closes them without an answer."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, thread


@pytest.mark.parametrize("backend", ["timescaledb"], indirect=True)
def test_a_connection_lost_before_the_answer_lets_the_write_through(make_app):
    server, thread = _closing_server()
    try:
        url = f"redis://127.0.0.1:{server.getsockname()[1]}/0"
        app = limited(make_app, write="2/minute", REDIS_URL=url)
        client = app.test_client()
        assert client.post("/ingest", json=ONE).status_code == 200
        assert stored_points(app) == 1
    finally:
        server.close()
        thread.join(5)


def test_an_answer_left_unread_is_never_taken_for_the_next_one(redis_server):
    client = redis.Redis.from_url(redis_server.url())
    client.flushdb()
    gate = RedisGate()
    windows = RateWindows(client, gate)
    sender = CountSender(windows, client, gate)
    [rate] = parse_rates("10/minute")
    hit = [Counter("tsapi:rate:test:ahead", rate)]
    got = []
    sender.send((), hit, got.append).forget()  # a request ended without reading it
    sender.send((), hit, got.append).alone()
    assert [c.hits[0][0] for c in got] == [2]  # both were counted: this answer is the second's
