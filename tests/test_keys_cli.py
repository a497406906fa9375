"""`tsapi keys create | list | revoke`."""

from helpers import assert_problem


def create(runner, *args):
    result = runner.invoke(args=["keys", "create", *args])
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


def test_create_prints_a_token_that_works_with_its_scope(secure_app):
    runner = secure_app.test_cli_runner()
    token = create(runner, "--scope", "write", "--name", "sensor-gw")
    client = secure_app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    ok = client.post("/ingest", headers=headers, json={"data": [
        {"time": "2024-01-01T00:00:00Z", "metric": "m", "value": 1}]})
    assert ok.status_code == 200
    assert_problem(client.get("/metrics", headers=headers), 403)


def test_list_shows_keys_without_tokens(secure_app):
    runner = secure_app.test_cli_runner()
    token = create(runner, "--scope", "read", "--scope", "write", "--name", "dashboard")
    create(runner, "--scope", "admin", "--name", "ops")
    result = runner.invoke(args=["keys", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    dashboard = next(line for line in lines if "dashboard" in line)
    assert "read,write" in dashboard
    assert any("ops" in line and "admin" in line for line in lines)
    assert token not in result.output and token.split("_", 2)[2] not in result.output


def test_revoke_by_name_or_id_shuts_the_key_out(secure_app):
    runner = secure_app.test_cli_runner()
    by_name = create(runner, "--scope", "read", "--name", "one")
    by_id = create(runner, "--scope", "read", "--name", "two")
    listing = runner.invoke(args=["keys", "list"]).output
    two_id = next(line.split()[0] for line in listing.splitlines() if " two " in line)
    client = secure_app.test_client()
    for token in (by_name, by_id):
        assert client.get("/metrics", headers={"X-API-Key": token}).status_code == 200
    assert runner.invoke(args=["keys", "revoke", "one"]).exit_code == 0
    assert runner.invoke(args=["keys", "revoke", two_id]).exit_code == 0
    for token in (by_name, by_id):
        assert_problem(client.get("/metrics", headers={"X-API-Key": token}), 401)
    revoked_lines = [line for line in runner.invoke(args=["keys", "list"]).output.splitlines()
                     if " one " in line or " two " in line]
    assert len(revoked_lines) == 2 and all(not line.endswith("-") for line in revoked_lines)


def test_revoking_an_unknown_key_fails(secure_app):
    result = secure_app.test_cli_runner().invoke(args=["keys", "revoke", "nobody"])
    assert result.exit_code != 0
    assert "no live key" in result.output


def test_a_key_name_is_unique(secure_app):
    runner = secure_app.test_cli_runner()
    create(runner, "--scope", "read", "--name", "same")
    result = runner.invoke(args=["keys", "create", "--scope", "read", "--name", "same"])
    assert result.exit_code != 0
    assert "already exists" in result.output


def test_an_unknown_scope_is_refused(secure_app):
    result = secure_app.test_cli_runner().invoke(
        args=["keys", "create", "--scope", "superuser", "--name", "x"])
    assert result.exit_code != 0
