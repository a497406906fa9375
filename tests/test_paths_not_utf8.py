"""A path whose percent-escapes are not UTF-8 names nothing: werkzeug decodes such bytes to
U+FFFD, so without a check `DELETE /metrics/caf%E9` (Latin-1 "café") deleted the stored
metric named "caf\\ufffd"."""

from urllib.parse import unquote_to_bytes

import pytest
from helpers import assert_problem, error_fields, ingest, point

REPLACED = "caf\ufffd"


@pytest.fixture
def stored(client):
    ingest(client, [point("2024-01-01T01:00:00Z", REPLACED, 1.0, k="v\ufffd")])
    return client


@pytest.mark.parametrize(("method", "path", "field"), [
    ("GET", "/metrics/caf%E9", "name"),
    ("GET", "/metrics/caf%E9/latest", "name"),
    ("GET", "/metrics/caf%E9/describe", "name"),
    ("GET", "/metrics/caf%EF%BF%BD/tags/k%FF", "key"),
    ("DELETE", "/metrics/caf%E9", "name"),
    ("DELETE", "/metrics/caf%ED%A0%80", "name"),
    ("POST", "/cache/metrics/caf%E9/clear", "metric"),
], ids=["describe", "latest", "describe-suffix", "tag-key", "delete", "delete-surrogate",
        "cache-clear"])
def test_a_path_parameter_that_is_not_utf8_is_a_404_naming_it(stored, method, path, field):
    # As gunicorn passes it (WSGI: the raw bytes spelled in Latin-1); werkzeug's test client
    # would replace the bad bytes itself before the app saw them.
    raw = unquote_to_bytes(path).decode("latin-1")
    response = stored.open(path, method=method, environ_overrides={"PATH_INFO": raw})
    problem = assert_problem(response, 404)
    assert error_fields(problem) == [field]
    assert "UTF-8" in problem["detail"]
    assert stored.get("/metrics/caf%EF%BF%BD").status_code == 200  # nothing was deleted


def test_the_replacement_character_itself_still_names_its_metric(stored):
    assert stored.get("/metrics/caf%EF%BF%BD/tags/k").get_json()["values"] == ["v\ufffd"]
    assert stored.delete("/metrics/caf%EF%BF%BD").status_code == 204
