"""Rate limits: per key (or client), per endpoint class, 429 + Retry-After, fail open."""

import pytest
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
