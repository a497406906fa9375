"""One rule for every name a request carries: no NUL, control character or lone surrogate.

Ingest refuses such names (test_fidelity.py), so none is stored; a query, a query string or a
path naming one gets a 4xx that names the field, before any SQL runs.
"""

import pytest
from helpers import assert_problem, error_fields, ingest, point

from tsapi.formats.names import name_problem, text_problem

DAY = {"start_time": "2024-01-01T00:00:00Z", "end_time": "2024-01-02T00:00:00Z"}
CONTROL = ["\x00", "\x01", "\n", "\x1b", "\x7f"]
CONTROL_IDS = [f"U+{ord(c):04X}" for c in CONTROL]


@pytest.fixture
def stored(client):
    ingest(client, [point("2024-01-01T01:00:00Z", "m", 1.0, k="v")])
    return client


# --- the rule itself -------------------------------------------------------------------------


@pytest.mark.parametrize("char", [*CONTROL, "\t", "\r", "\x1f", "\ud800", "\udfff"])
def test_control_characters_and_lone_surrogates_name_nothing(char):
    assert name_problem(f"a{char}b")


@pytest.mark.parametrize("text", ["temperature", "a b", "naïve café", "日本", "🚀", "a=b/c",
                                  "\u2028", "\x80"])
def test_printable_text_of_any_script_is_a_name(text):
    assert name_problem(text) is None


@pytest.mark.parametrize("char", ["\x00", "\ud800"])
def test_stored_text_refuses_only_nul_and_lone_surrogates(char):
    assert text_problem(f"a{char}b")
    assert text_problem("tab\tnew\nline\x1b") is None


# --- /query body fields --------------------------------------------------------------------------


@pytest.mark.parametrize("char", CONTROL, ids=CONTROL_IDS)
@pytest.mark.parametrize(("body", "field"), [
    (lambda c: {"metric": f"m{c}"}, "metric"),
    (lambda c: {"metrics": ["m", f"m{c}"]}, "metrics[1]"),
    (lambda c: {"metric": "m", "tags": {"k": f"v{c}"}}, "tags"),
    (lambda c: {"metric": "m", "tags": {f"k{c}": ["v"]}}, "tags"),
    (lambda c: {"metric": "m", "aggregation": "avg", "group_by": [f"k{c}"]}, "group_by[0]"),
], ids=["metric", "metrics", "tag-value", "tag-key", "group_by"])
def test_a_control_character_in_a_query_name_is_a_422_naming_the_field(stored, char, body,
                                                                      field):
    problem = assert_problem(stored.post("/query", json={**body(char), **DAY}), 422)
    assert error_fields(problem) == [field]


# --- query strings -------------------------------------------------------------------------------


@pytest.mark.parametrize("char", ["%00", "%01", "%0A", "%7F"])
def test_a_control_character_in_a_metric_prefix_is_a_422(stored, char):
    problem = assert_problem(stored.get(f"/metrics?prefix=m{char}"), 422)
    assert error_fields(problem) == ["prefix"]


@pytest.mark.parametrize("tag", ["k=v%00", "k%01=v", "k=v%1B"])
def test_a_control_character_in_a_latest_tag_filter_is_a_422(stored, tag):
    problem = assert_problem(stored.get(f"/metrics/m/latest?tag={tag}"), 422)
    assert error_fields(problem) == ["tag[0]"]


@pytest.mark.parametrize(("path", "field"), [
    ("/api/v2/write?org=o&bucket=b%00", "bucket"),
    ("/api/v2/write?org=o%00&bucket=b", "org"),
    ("/write?db=d%01", "db"),
])
def test_a_control_character_in_an_influx_query_parameter_is_a_422(client, path, field):
    response = client.post(path, data=b"cpu value=1 1704067200000000000")
    problem = assert_problem(response, 422)
    assert error_fields(problem) == [field]
    assert client.get("/metrics").get_json() == []


# --- path parameters -----------------------------------------------------------------------------


@pytest.mark.parametrize("char", ["%00", "%01", "%0A", "%7F"])
@pytest.mark.parametrize(("method", "path", "field"), [
    ("GET", "/metrics/m{c}", "name"),
    ("GET", "/metrics/m{c}/latest", "name"),
    ("GET", "/metrics/m{c}/tags/k", "name"),
    ("GET", "/metrics/m/tags/k{c}", "key"),
    ("DELETE", "/metrics/m{c}", "name"),
    ("POST", "/cache/metrics/m{c}/clear", "metric"),
], ids=["describe", "latest", "tag-values-name", "tag-values-key", "delete", "cache-clear"])
def test_a_control_character_in_a_path_parameter_is_a_404_naming_it(stored, char, method,
                                                                    path, field):
    response = stored.open(path.format(c=char), method=method)
    problem = assert_problem(response, 404)
    assert error_fields(problem) == [field]
    assert stored.get("/metrics/m").status_code == 200  # nothing was deleted


def test_a_path_is_checked_after_authentication(make_app):
    client = make_app(TSAPI_AUTH="required").test_client()
    assert_problem(client.get("/metrics/m%00"), 401)
