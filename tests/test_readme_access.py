"""The README's Access control claims, checked against a server that requires API keys."""

import base64

import pytest

from tsapi.store.keys import create_key

T0_S = 1594512094


@pytest.fixture
def secure(make_app):
    """A TSAPI_AUTH=required test client and one key per scope."""
    app = make_app(TSAPI_AUTH="required")
    with app.extensions["tsapi"].db.engine.begin() as conn:
        keys = {scope: create_key(conn, f"readme-{scope}", {scope})[1]
                for scope in ("read", "write", "admin")}
    return app.test_client(), keys


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize("path", [
    "/", "/health", "/openapi.json", "/docs",
    "/docs/assets/swagger-ui-bundle.js",  # Swagger UI's files
    "/ui", "/ui/assets/explorer.js", "/ui/assets/vendor/uPlot.min.css",
])
def test_the_open_paths_answer_without_a_key(secure, path):
    client, _ = secure
    assert client.get(path).status_code == 200


def test_the_explorer_pages_api_calls_need_a_key(secure):
    client, keys = secure
    assert client.get("/metrics").status_code == 401
    headers = {"Authorization": f"Bearer {keys['read']}"}  # what its "API key" field sends
    assert client.get("/metrics", headers=headers).status_code == 200


def test_internal_metrics_needs_an_admin_key(secure):
    client, keys = secure
    assert client.get("/internal/metrics").status_code == 401
    for scope, status in (("read", 403), ("write", 403), ("admin", 200)):
        headers = {"Authorization": f"Bearer {keys[scope]}"}
        assert client.get("/internal/metrics", headers=headers).status_code == status, scope


def test_line_protocol_clients_send_the_key_as_token_or_basic_password(secure):
    client, keys = secure
    line = f"weather temp=21.5 {T0_S}"
    v2 = "/api/v2/write?org=home&bucket=sensors&precision=s"
    v1 = "/write?db=sensors&precision=s"
    token = {"Authorization": f"Token {keys['write']}"}
    assert client.post(v2, data=line, headers=token).status_code == 204
    assert client.post(v1, data=line, headers=basic("telegraf", keys["write"])).status_code == 204
    # The header is the credential, not decoration: a placeholder token is refused.
    assert client.post(v2, data=line, headers={"Authorization": "Token unused"}).status_code == 401
    # A key in InfluxDB 1's `p` query parameter is not read.
    assert client.post(f"{v1}&u=telegraf&p={keys['write']}", data=line).status_code == 401
    # A read key cannot write.
    read = {"Authorization": f"Token {keys['read']}"}
    assert client.post(v2, data=line, headers=read).status_code == 403
