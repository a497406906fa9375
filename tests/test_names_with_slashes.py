"""Metric names holding "/": every name that can be written can be described, listed by tag,
read back (latest) and deleted. The rule (tsapi.api.names): the path after /metrics/ is the
name, except that a trailing /latest, /tags/{key} or /describe selects that resource, its
name being everything before; DELETE has no suffix route and takes the path whole."""

import pytest
from helpers import assert_problem, error_fields, ingest, point, stored_metrics

T = "2024-03-10T01:00:00Z"


def write(client, *names):
    ingest(client, [point(T, name, float(i), host=f"h{i}") for i, name in enumerate(names)])


def described(client, path):
    response = client.get(path)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.mark.parametrize("name", ["a/b", "a/b/c", "/lead", "trail/", "a//b", "latest/x"])
def test_a_name_with_slashes_is_described_read_and_deleted(client, name):
    write(client, name, "a")
    assert described(client, f"/metrics/{name}")["name"] == name
    assert described(client, f"/metrics/{name}/describe")["name"] == name
    latest = described(client, f"/metrics/{name}/latest")
    assert [(p["value"], p["tags"]) for p in latest] == [(0.0, {"host": "h0"})]
    tags = described(client, f"/metrics/{name}/tags/host")
    assert (tags["metric"], tags["values"]) == (name, ["h0"])
    assert client.delete(f"/metrics/{name}").status_code == 204
    assert stored_metrics(client) == ["a"]
    assert_problem(client.get(f"/metrics/{name}"), 404)


def test_a_trailing_latest_reads_the_latest_points_of_the_name_before_it(client):
    write(client, "a", "a/latest")
    assert [p["value"] for p in described(client, "/metrics/a/latest")] == [0.0]
    assert [p["value"] for p in described(client, "/metrics/a/latest/latest")] == [1.0]
    # The metric named "a/latest" is described through the explicit suffix.
    assert described(client, "/metrics/a/latest/describe")["name"] == "a/latest"
    assert described(client, "/metrics/a")["name"] == "a"


def test_delete_takes_the_whole_path_as_the_name(client):
    write(client, "a", "a/latest", "x/tags/y")
    assert client.delete("/metrics/a/latest").status_code == 204
    assert client.delete("/metrics/x/tags/y").status_code == 204
    assert stored_metrics(client) == ["a"]


def test_a_name_holding_tags_is_reached_through_its_suffix_routes(client):
    write(client, "x", "x/tags/y")
    # The suffix wins: tag key "y" of metric "x", which has no series with it.
    assert described(client, "/metrics/x/tags/y") == {"metric": "x", "key": "y", "values": []}
    assert described(client, "/metrics/x/tags/y/describe")["name"] == "x/tags/y"
    assert described(client, "/metrics/x/tags/y/tags/host")["values"] == ["h1"]
    assert [p["value"] for p in described(client, "/metrics/x/tags/y/latest")] == [1.0]


def test_a_name_ending_in_describe_is_described_through_one_more_suffix(client):
    write(client, "a", "a/describe")
    assert described(client, "/metrics/a/describe")["name"] == "a"
    assert described(client, "/metrics/a/describe/describe")["name"] == "a/describe"


def test_an_unknown_name_with_slashes_is_404(client):
    write(client, "a")
    for path in ("/metrics/a/b", "/metrics/a/b/latest", "/metrics/a/b/tags/host",
                 "/metrics/a/b/describe"):
        assert_problem(client.get(path), 404)
    assert_problem(client.delete("/metrics/a/b"), 404)
    assert stored_metrics(client) == ["a"]


def test_path_checks_still_see_names_with_slashes(client):
    problem = assert_problem(client.get("/metrics/a/%01b/latest"), 404)
    assert error_fields(problem) == ["name"]
    problem = assert_problem(client.delete("/metrics/a/b%7F"), 404)
    assert error_fields(problem) == ["name"]
    problem = assert_problem(client.get("/metrics/a%0A/b/describe"), 404)
    assert error_fields(problem) == ["name"]


def test_one_metric_cache_is_cleared_by_a_name_with_slashes(client):
    write(client, "a/clear")
    response = client.post("/cache/metrics/a/clear/clear")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["message"] == "Cache cleared for metric: a/clear"


def test_openapi_documents_names_as_strings(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    for path in ("/metrics/{name}", "/metrics/{name}/latest", "/metrics/{name}/describe",
                 "/metrics/{name}/tags/{key}", "/cache/metrics/{metric}/clear"):
        params = {p["name"]: p["schema"] for p in paths[path]["parameters"]}
        assert params[path.split("{")[1].split("}")[0]] == {"type": "string"}, (path, params)
