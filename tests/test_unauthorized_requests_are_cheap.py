"""Requests without a valid key cost no database lookup once a client keeps failing, and an
unknown token is looked up once per few seconds, not once per request.

Before, a flood of bogus tokens (~270 requests/s) cost a key lookup each and doubled the
latency of legitimate clients; 401s were never rate limited.
"""

import pytest
from helpers import assert_problem

import tsapi.services.api_keys as api_keys
from tsapi.store.keys import create_key


@pytest.fixture
def lookups(monkeypatch):
    """Every key lookup made in the database, by token (the key cache makes them)."""
    made = []
    real = api_keys.find_key

    def counting(conn, token):
        made.append(token)
        return real(conn, token)

    monkeypatch.setattr(api_keys, "find_key", counting)
    return made


def _get(client, token=None, address="127.0.0.1"):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get("/metrics", headers=headers, environ_base={"REMOTE_ADDR": address})


def test_an_address_that_keeps_failing_gets_429_before_any_lookup(make_app, lookups):
    app = make_app(TSAPI_AUTH="required", TSAPI_RATE_LIMITS="on",
                   TSAPI_RATE_LIMIT_UNAUTHORIZED="5/minute")
    client = app.test_client()
    for i in range(5):
        assert_problem(_get(client, f"tsapi_bogus{i}_secret"), 401)
    assert len(lookups) == 5
    for i in range(5, 20):
        response = _get(client, f"tsapi_bogus{i}_secret")
        assert_problem(response, 429)
        assert int(response.headers["Retry-After"]) >= 1
    assert len(lookups) == 5  # no lookup once over the limit
    # Another address is not affected, and a valid key from it works.
    assert_problem(_get(client, "tsapi_other_secret", address="10.0.0.2"), 401)
    with app.extensions["tsapi"].db.engine.begin() as conn:
        _, token = create_key(conn, "reader", {"read"})
    assert _get(client, token, address="10.0.0.3").status_code == 200


def test_requests_without_any_token_count_too(make_app, lookups):
    client = make_app(TSAPI_AUTH="required", TSAPI_RATE_LIMITS="on",
                      TSAPI_RATE_LIMIT_UNAUTHORIZED="3/minute").test_client()
    statuses = [_get(client).status_code for _ in range(6)]
    assert statuses == [401, 401, 401, 429, 429, 429]
    assert lookups == []


def test_an_unknown_token_is_looked_up_once_while_it_is_remembered(make_app, lookups):
    client = make_app(TSAPI_AUTH="required", TSAPI_RATE_LIMITS="off").test_client()
    for _ in range(50):
        assert_problem(_get(client, "tsapi_abcdef123456_notakey"), 401)
    assert lookups == ["tsapi_abcdef123456_notakey"]


def test_a_valid_key_is_never_remembered_as_unknown(make_app, lookups):
    app = make_app(TSAPI_AUTH="required", TSAPI_RATE_LIMITS="off")
    client = app.test_client()
    with app.extensions["tsapi"].db.engine.begin() as conn:
        _, token = create_key(conn, "reader", {"read"})
    for _ in range(3):
        assert _get(client, token).status_code == 200
