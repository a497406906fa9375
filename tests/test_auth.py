"""Access control: API keys, scopes per endpoint class, 401/403 problems, keys hashed."""

import base64
import hashlib

import pytest
import sqlalchemy as sa
from helpers import assert_problem, point

from tsapi.api.auth import OPEN_BLUEPRINTS, SCOPE_ATTRIBUTE
from tsapi.store.keys import create_key

T0 = "2024-05-01T00:00:00Z"
QUERY = {"metric": "guarded", "start_time": "2024-05-01T00:00:00Z",
         "end_time": "2024-05-02T00:00:00Z"}
# (method, path, json body, scope needed, status when allowed)
ENDPOINTS = [
    ("POST", "/ingest", {"data": [point(T0, "guarded", 1.0)]}, "write", 200),
    ("POST", "/query", QUERY, "read", 200),
    ("GET", "/metrics", None, "read", 200),
    ("POST", "/api/v2/write?bucket=b", None, "write", 204),
    ("GET", "/metrics/guarded", None, "read", 200),
    ("GET", "/metrics/guarded/latest", None, "read", 200),
    ("GET", "/cache/info", None, "read", 200),
    ("GET", "/cache/keys", None, "read", 200),
    ("POST", "/cache/clear", None, "admin", 200),
    ("POST", "/cache/metrics/guarded/clear", None, "admin", 200),
    ("DELETE", "/metrics/no_such_metric", None, "admin", 404),
]
GRANTS = {"read": {"read"}, "write": {"write"}, "admin": {"read", "write", "admin"},
          "read+write": {"read", "write"}}


@pytest.fixture
def tokens(secure_app):
    """One token per kind of key, and the guarded metric holding one point."""
    made = {}
    with secure_app.extensions["tsapi"].db.engine.begin() as conn:
        for kind in GRANTS:
            scopes = set(kind.split("+"))
            made[kind] = create_key(conn, f"key-{kind}", scopes)[1]
    client = secure_app.test_client()
    response = client.post("/ingest", json=ENDPOINTS[0][2], headers=bearer(made["admin"]))
    assert response.status_code == 200
    return made


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def call(client, method, path, body, headers=None):
    return client.open(path, method=method, json=body, headers=headers or {})


@pytest.mark.parametrize("kind", sorted(GRANTS))
def test_each_key_reaches_exactly_the_endpoints_its_scopes_allow(secure_app, tokens, kind):
    client = secure_app.test_client()
    for method, path, body, scope, ok_status in ENDPOINTS:
        response = call(client, method, path, body, bearer(tokens[kind]))
        if scope in GRANTS[kind]:
            assert response.status_code == ok_status, (kind, path, response.get_json())
        else:
            problem = assert_problem(response, 403)
            assert scope in problem["detail"], problem


def test_no_key_gets_401_on_every_guarded_endpoint(secure_app, tokens):
    client = secure_app.test_client()
    for method, path, body, _, _ in ENDPOINTS:
        problem = assert_problem(call(client, method, path, body), 401)
        assert "Bearer" in problem["detail"]


def test_401_carries_a_bearer_challenge(secure_app):
    response = secure_app.test_client().get("/metrics")
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_open_endpoints_need_no_key(secure_app):
    client = secure_app.test_client()
    for path in ("/", "/health", "/openapi.json", "/docs", "/ui"):
        assert client.get(path).status_code == 200, path


def test_unknown_revoked_and_malformed_keys_get_the_same_401(secure_app, tokens, runner):
    client = secure_app.test_client()
    runner = secure_app.test_cli_runner()
    assert runner.invoke(args=["keys", "revoke", "key-read"]).exit_code == 0
    revoked = call(client, "GET", "/metrics", None, bearer(tokens["read"]))
    unknown_token = tokens["read"][:-4] + "AAAA"
    unknown = call(client, "GET", "/metrics", None, bearer(unknown_token))
    junk = call(client, "GET", "/metrics", None, bearer("not-a-token"))
    bodies = {r.get_data() for r in (revoked, unknown, junk)}
    assert_problem(revoked, 401)
    assert len(bodies) == 1, bodies


@pytest.mark.parametrize("headers", [
    lambda t: {"Authorization": f"Bearer {t}"},
    lambda t: {"Authorization": f"bearer {t}"},
    lambda t: {"Authorization": f"Token {t}"},
    lambda t: {"X-API-Key": t},
    lambda t: {"Authorization": "Basic " + base64.b64encode(f"telegraf:{t}".encode()).decode()},
], ids=["bearer", "bearer-lowercase", "token-influxdb", "x-api-key", "basic-influxdb-v1"])
def test_every_accepted_header_form_authenticates(secure_app, tokens, headers):
    response = secure_app.test_client().get("/metrics", headers=headers(tokens["read"]))
    assert response.status_code == 200
    assert [m["name"] for m in response.get_json()] == ["guarded"]


def test_old_style_client_works_with_only_a_bearer_header(secure_app, tokens):
    """The old service's requests, unchanged but for the key header."""
    client = secure_app.test_client()
    headers = bearer(tokens["read+write"])
    response = client.post("/ingest", headers=headers, json={"data": [
        {"time": "2024-05-01T00:05:00Z", "metric": "guarded", "value": 2.5,
         "tags": {"room": "a"}}]})
    assert response.status_code == 200
    assert response.get_json() == {"message": "Successfully ingested 1 data points",
                                   "ingested_count": 1}
    rows = client.post("/query", headers=headers, json=QUERY).get_json()
    assert [r["value"] for r in rows] == [1.0, 2.5]


def test_tokens_are_stored_only_as_hashes(secure_app, tokens):
    engine = sa.create_engine(secure_app.config["DATABASE_URL"])
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT t::text FROM api_keys t")).scalars().all()
    engine.dispose()
    stored = "\n".join(rows)
    assert len(rows) == len(GRANTS)
    for token in tokens.values():
        secret = token.split("_", 2)[2]
        assert token not in stored and secret not in stored
        assert hashlib.sha256(token.encode()).hexdigest() in stored


def _last_used(app, name):
    engine = sa.create_engine(app.config["DATABASE_URL"])
    with engine.connect() as conn:
        value = conn.execute(sa.text("SELECT last_used_at FROM api_keys WHERE name = :n"),
                             {"n": name}).scalar()
    engine.dispose()
    return value


def _age_last_used(app, name, seconds):
    engine = sa.create_engine(app.config["DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE api_keys SET last_used_at = now() - make_interval("
                             "secs => :s) WHERE name = :n"), {"s": seconds, "n": name})
    engine.dispose()


def test_last_used_is_recorded_but_rewritten_at_most_once_a_minute(secure_app, tokens):
    client = secure_app.test_client()
    # Requests only note a key's use; a background thread writes it now and then. Flushing
    # here does at once what that thread does.
    flush = secure_app.extensions["tsapi"].keys.flush_last_used
    assert _last_used(secure_app, "key-read") is None
    client.get("/metrics", headers=bearer(tokens["read"]))
    flush()
    first = _last_used(secure_app, "key-read")
    assert first is not None
    _age_last_used(secure_app, "key-read", 30)
    aged = _last_used(secure_app, "key-read")
    client.get("/metrics", headers=bearer(tokens["read"]))
    flush()
    assert _last_used(secure_app, "key-read") == aged  # used 30 s ago: not rewritten
    _age_last_used(secure_app, "key-read", 61)
    client.get("/metrics", headers=bearer(tokens["read"]))
    flush()
    assert _last_used(secure_app, "key-read") > aged


def test_a_request_does_not_write_last_used_itself(secure_app, tokens):
    client = secure_app.test_client()
    assert client.get("/metrics", headers=bearer(tokens["read"])).status_code == 200
    assert _last_used(secure_app, "key-read") is None  # noted in memory, written later


def test_a_forbidden_request_changes_nothing(secure_app, tokens):
    client = secure_app.test_client()
    response = client.delete("/metrics/guarded", headers=bearer(tokens["read+write"]))
    assert_problem(response, 403)
    names = [m["name"] for m in client.get("/metrics", headers=bearer(tokens["read"])).json]
    assert names == ["guarded"]


def test_auth_off_needs_no_key(make_app):
    client = make_app(TSAPI_AUTH="off").test_client()
    assert client.get("/metrics").status_code == 200
    assert client.post("/cache/clear").status_code == 200


def test_every_api_view_declares_its_scope(app):
    """A view without a declaration would silently need admin: make forgetting visible."""
    undeclared = []
    for rule in app.url_map.iter_rules():
        blueprint = rule.endpoint.rpartition(".")[0]
        if blueprint in OPEN_BLUEPRINTS:
            continue
        view = app.view_functions[rule.endpoint]
        view_class = getattr(view, "view_class", None)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            handler = getattr(view_class, method.lower()) if view_class else view
            if not hasattr(handler, SCOPE_ATTRIBUTE):
                undeclared.append(f"{method} {rule.rule}")
    assert undeclared == []


def test_openapi_documents_the_bearer_scheme_and_401_403(app):
    spec = app.test_client().get("/openapi.json").get_json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer",
                                     "description": schemes["bearerAuth"]["description"]}
    assert schemes["apiKeyHeader"]["name"] == "X-API-Key"
    ingest = spec["paths"]["/ingest"]["post"]
    assert {"bearerAuth": []} in ingest["security"]
    assert {"401", "403", "429"} <= set(ingest["responses"])
    assert "application/problem+json" in ingest["responses"]["401"]["content"]
    assert "security" not in spec["paths"]["/health"]["get"]
    assert "401" in spec["paths"]["/metrics/{name}"]["delete"]["responses"]


def test_auth_setting_is_validated(make_app):
    from tsapi.config import ConfigError

    with pytest.raises(ConfigError, match="TSAPI_AUTH"):
        make_app(TSAPI_AUTH="maybe")


def test_auth_is_required_by_default():
    from tsapi.config import Settings

    assert Settings().TSAPI_AUTH == "required"


def test_head_needs_the_scope_of_get(secure_app, tokens):
    client = secure_app.test_client()
    assert client.head("/metrics", headers=bearer(tokens["read"])).status_code == 200
    assert client.head("/metrics", headers=bearer(tokens["write"])).status_code == 403
    assert client.head("/metrics").status_code == 401


def test_an_influxdb_client_writes_with_its_token_header(secure_app, tokens):
    client = secure_app.test_client()
    response = client.post("/api/v2/write?bucket=b&precision=s", data="weather temp=21.5 "
                           "1714521600\n", headers={"Authorization": f"Token {tokens['write']}"},
                           content_type="text/plain")
    assert response.status_code == 204
    assert_problem(client.post("/api/v2/write?bucket=b", data="weather temp=1 1\n",
                               content_type="text/plain"), 401)
    names = client.get("/metrics", headers=bearer(tokens["read"])).get_json()
    assert "weather.temp" in [m["name"] for m in names]


def test_nul_characters_in_a_token_are_a_401(make_app):
    app = make_app(TSAPI_AUTH="required")
    basic = base64.b64encode(b"user:tsapi_ab\x00c_x").decode()
    response = app.test_client().get("/metrics", headers={"Authorization": f"Basic {basic}"})
    assert_problem(response, 401)
