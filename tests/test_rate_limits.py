"""Rate limits: per key (or client), per endpoint class, 429 + Retry-After, fail open."""

import math
import socket
import time

import pytest
import redis
from helpers import assert_problem, point

from tsapi.store.keys import create_key


def limited(make_app, **overrides):
    config = {"TSAPI_AUTH": "off", "TSAPI_RATE_LIMITS": "on",
              "TSAPI_RATE_LIMIT_READ": "2/minute", "TSAPI_RATE_LIMIT_WRITE": "3/minute",
              "TSAPI_RATE_LIMIT_ADMIN": "1/minute"}
    config.update(overrides)
    return make_app(**config)


def test_over_the_limit_gets_429_problem_with_retry_after(make_app):
    client = limited(make_app).test_client()
    assert [client.get("/metrics").status_code for _ in range(2)] == [200, 200]
    response = client.get("/metrics")
    problem = assert_problem(response, 429)
    assert "Retry-After" in problem["detail"]
    retry_after = int(response.headers["Retry-After"])
    assert 0 < retry_after <= 60


def test_a_class_shares_one_budget_and_other_classes_keep_theirs(make_app):
    client = limited(make_app).test_client()
    assert client.get("/metrics").status_code == 200
    assert client.get("/cache/info").status_code == 200
    assert_problem(client.get("/cache/keys"), 429)  # the third read, on a third endpoint
    ingest = {"data": [point("2024-01-01T00:00:00Z", "m", 1.0)]}
    assert [client.post("/ingest", json=ingest).status_code for _ in range(4)] == [
        200, 200, 200, 429]


def test_open_endpoints_are_never_limited(make_app):
    client = limited(make_app).test_client()
    assert {client.get("/health").status_code for _ in range(5)} == {200}


def test_each_key_has_its_own_budget(make_app):
    app = limited(make_app, TSAPI_AUTH="required")
    with app.extensions["tsapi"].db.engine.begin() as conn:
        first = create_key(conn, "first", {"read"})[1]
        second = create_key(conn, "second", {"read"})[1]
    client = app.test_client()
    for _ in range(2):
        assert client.get("/metrics", headers={"X-API-Key": first}).status_code == 200
    assert_problem(client.get("/metrics", headers={"X-API-Key": first}), 429)
    assert client.get("/metrics", headers={"X-API-Key": second}).status_code == 200


def test_a_class_set_to_off_is_unlimited(make_app):
    client = limited(make_app, TSAPI_RATE_LIMIT_READ="off").test_client()
    assert {client.get("/metrics").status_code for _ in range(5)} == {200}


def test_rate_limits_off_disables_all(make_app):
    client = limited(make_app, TSAPI_RATE_LIMITS="off").test_client()
    assert {client.get("/metrics").status_code for _ in range(5)} == {200}


def test_a_malformed_limit_is_refused_at_start_up(make_app):
    from tsapi.config import ConfigError

    with pytest.raises(ConfigError, match="TSAPI_RATE_LIMIT_READ"):
        limited(make_app, TSAPI_RATE_LIMIT_READ="lots")


@pytest.mark.parametrize("backend", ["timescaledb"], indirect=True)
def test_limits_fail_open_when_redis_is_down(make_app, own_redis):
    client = limited(make_app, REDIS_URL=own_redis.url()).test_client()
    assert [client.get("/metrics").status_code for _ in range(2)] == [200, 200]
    assert_problem(client.get("/metrics"), 429)  # Redis holds the exhausted budget

    own_redis.stop()
    # The exhausted budget is in the unreachable Redis: requests are let through again.
    assert client.get("/metrics").status_code == 200
    ingest = {"data": [point("2024-01-01T00:00:00Z", "m", 1.0)]}
    assert client.post("/ingest", json=ingest).status_code == 200
    assert client.get("/health").status_code == 200


def test_counted_responses_carry_the_window_headers(make_app):
    client = limited(make_app).test_client()
    first, second = client.get("/metrics"), client.get("/metrics")
    assert [first.headers["X-RateLimit-Remaining"], second.headers["X-RateLimit-Remaining"]] == [
        "1", "0"]
    assert first.headers["X-RateLimit-Limit"] == "2"
    reset = int(first.headers["X-RateLimit-Reset"])  # epoch seconds, within the window
    assert time.time() < reset <= time.time() + 62
    refused = client.get("/metrics")
    assert refused.status_code == 429
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert "X-RateLimit-Limit" not in client.get("/health").headers  # open views: not counted


def test_with_several_windows_the_first_one_exceeded_refuses_and_is_named(make_app):
    client = limited(make_app, TSAPI_RATE_LIMIT_READ="5/minute;2/hour").test_client()
    responses = [client.get("/metrics") for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    # Not over: the shortest window is shown; over: the window that refused.
    assert responses[0].headers["X-RateLimit-Limit"] == "5"
    assert responses[2].headers["X-RateLimit-Limit"] == "2"
    assert 3500 < int(responses[2].headers["Retry-After"]) <= 3600


def test_workers_and_nodes_share_the_counters_in_redis(make_app):
    first, second = limited(make_app).test_client(), limited(make_app).test_client()
    assert first.get("/metrics").status_code == 200
    assert second.get("/metrics").status_code == 200
    assert_problem(first.get("/metrics"), 429)
    assert_problem(second.get("/metrics"), 429)


@pytest.mark.parametrize("backend", ["timescaledb"], indirect=True)
def test_while_redis_is_down_each_worker_counts_in_its_own_memory(make_app, own_redis):
    app = limited(make_app, REDIS_URL=own_redis.url())
    client = app.test_client()
    assert client.get("/metrics").status_code == 200
    own_redis.stop()
    # Counted from zero in this worker's memory: the one request Redis holds is forgotten.
    assert [client.get("/metrics").status_code for _ in range(3)] == [200, 200, 429]
    own_redis.start()  # empty: it keeps nothing on disk
    back = redis.Redis.from_url(own_redis.url())
    deadline = time.monotonic() + 60
    while not back.keys("tsapi:rate:read:*"):  # Redis is tried again after a back-off
        assert time.monotonic() < deadline, "the counters never went back to Redis"
        time.sleep(0.2)
        client.get("/metrics")
    [key] = back.keys("tsapi:rate:read:*")
    counted = int(back.get(key))
    client.get("/metrics")
    assert int(back.get(key)) == counted + 1  # counted in Redis again, shared


@pytest.mark.parametrize("backend", ["timescaledb"], indirect=True)
def test_a_redis_that_does_not_answer_does_not_hold_requests(make_app):
    # A listening socket that never answers: connecting works, every read times out.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        client = limited(make_app, REDIS_URL=url).test_client()
        statuses = [client.get("/metrics").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]  # counted in memory after the socket timeout


def test_a_valid_key_from_an_address_that_keeps_failing_waits_too(make_app):
    app = limited(make_app, TSAPI_AUTH="required", TSAPI_RATE_LIMIT_READ="100/minute",
                  TSAPI_RATE_LIMIT_UNAUTHORIZED="2/minute")
    with app.extensions["tsapi"].db.engine.begin() as conn:
        token = create_key(conn, "reader", {"read"})[1]
    client = app.test_client()
    # The key is now in the worker's memory: the 401 count is read with the rate limit.
    assert client.get("/metrics", headers={"X-API-Key": token}).status_code == 200
    for _ in range(2):
        assert_problem(client.get("/metrics", headers={"X-API-Key": "tsapi_bogus"}), 401)
    refused = client.get("/metrics", headers={"X-API-Key": token})
    assert "without a valid API key" in assert_problem(refused, 429)["detail"]
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    other = client.get("/metrics", headers={"X-API-Key": token},
                       environ_base={"REMOTE_ADDR": "10.0.0.7"})
    assert other.status_code == 200
    assert other.headers["X-RateLimit-Remaining"] == "98"  # the refused request was not counted


def test_retry_after_and_reset_never_come_before_the_window_ends(make_app, redis_server):
    client = limited(make_app, TSAPI_RATE_LIMIT_READ="1/minute").test_client()
    assert client.get("/metrics").status_code == 200
    store = redis.Redis.from_url(redis_server.url())
    [key] = store.keys("tsapi:rate:read:*")
    store.pexpire(key, 30_450)  # 30.45 s of the window left: Redis's TTL says 30
    refused = client.get("/metrics")
    left = store.pttl(key) / 1000
    assert refused.status_code == 429
    # A client that waits as told must not be refused again by the same window.
    assert int(refused.headers["Retry-After"]) >= left
    assert int(refused.headers["X-RateLimit-Reset"]) >= time.time() + left


@pytest.mark.parametrize("key_in_memory", [False, True])
def test_retry_after_for_failed_authentication_is_the_window_left_rounded_up_once(
        make_app, redis_server, key_in_memory):
    # Refused by authenticate (a token to look up) or, for a key found in memory, by the rate
    # limiter's round trip: either way the counter's time left, rounded up, and no more.
    app = limited(make_app, TSAPI_AUTH="required", TSAPI_RATE_LIMIT_READ="100/minute",
                  TSAPI_RATE_LIMIT_UNAUTHORIZED="1/minute")
    with app.extensions["tsapi"].db.engine.begin() as conn:
        token = create_key(conn, "reader", {"read"})[1]
    client = app.test_client()
    if key_in_memory:
        assert client.get("/metrics", headers={"X-API-Key": token}).status_code == 200
    assert_problem(client.get("/metrics", headers={"X-API-Key": "tsapi_bogus"}), 401)
    store = redis.Redis.from_url(redis_server.url())
    [key] = store.keys("tsapi:rate:unauthorized:*")
    store.pexpire(key, 30_450)  # 30.45 s of the window left
    before = store.pttl(key) / 1000
    refused = client.get("/metrics",
                         headers={"X-API-Key": token if key_in_memory else "tsapi_bogus"})
    after = store.pttl(key) / 1000
    assert "without a valid API key" in assert_problem(refused, 429)["detail"]
    assert after <= int(refused.headers["Retry-After"]) <= math.ceil(before)


def test_which_scope_a_request_needs_is_worked_out_once(make_app, monkeypatch):
    from tsapi.api import auth

    app = limited(make_app, TSAPI_AUTH="required")
    with app.extensions["tsapi"].db.engine.begin() as conn:
        token = create_key(conn, "reader", {"read"})[1]
    worked_out = []
    real = auth.view_scope

    def counting():
        worked_out.append(1)
        return real()

    monkeypatch.setattr(auth, "view_scope", counting)
    response = app.test_client().get("/metrics", headers={"X-API-Key": token})
    assert response.status_code == 200
    assert "X-RateLimit-Limit" in response.headers  # both authenticate and the limiter asked
    assert worked_out == [1]


def test_the_scope_worked_out_for_one_request_is_not_used_for_the_next(make_app):
    # Requests made inside an app context share its `g`: the scope must be the request's own,
    # or a read-only key writes after a read, and an open view asks for a key.
    app = limited(make_app, TSAPI_AUTH="required")
    with app.extensions["tsapi"].db.engine.begin() as conn:
        token = create_key(conn, "reader", {"read"})[1]
    client = app.test_client()
    auth = {"X-API-Key": token}
    with app.app_context():
        assert client.get("/metrics", headers=auth).status_code == 200
        written = client.post("/ingest", headers=auth,
                              json={"data": [point("2024-01-01T00:00:00Z", "m", 1.0)]})
        assert_problem(written, 403)
        assert client.get("/health").status_code == 200
