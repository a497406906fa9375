"""Inputs a review found reaching 500s or wrong answers: each is now a clear 4xx or right."""

import base64

import pytest
from helpers import assert_problem, ingest, point, query

DAY = {"start_time": "2024-01-01T00:00:00Z", "end_time": "2024-01-01T04:00:00Z"}


def test_fill_previous_does_not_seed_a_count_with_a_point_value(client):
    ingest(client, [point("2023-12-31T23:00:00Z", "temp", 22.7),
                    point("2024-01-01T02:30:00Z", "temp", 20.0)])
    rows = query(client, metric="temp", aggregation="count", interval="1h", fill="previous",
                 **DAY)
    # Before the first non-empty bucket nothing is known about counts: null, not 22.7.
    assert [r["value"] for r in rows] == [None, None, 1, 1]
    averages = query(client, metric="temp", aggregation="avg", interval="1h",
                     fill="previous", **DAY)
    assert [r["value"] for r in averages] == [22.7, 22.7, 20.0, 20.0]


@pytest.mark.parametrize("mode", ["zero", "linear"])
def test_numeric_fill_of_string_results_is_a_400(client, mode):
    ingest(client, [point("2024-01-01T01:00:00Z", "door", "open")])
    problem = assert_problem(client.post("/query", json={
        "metric": "door", "aggregation": "last", "interval": "1h", "fill": mode, **DAY}), 400)
    assert "needs numbers" in problem["detail"]


@pytest.mark.parametrize("body", [
    {"metric": "a\x00"},
    {"metric": "a", "tags": {"k": "b\x00"}},
    {"metric": "a", "tags": {"k\x00": ["b"]}},
    {"metric": "a", "group_by": ["k\x00"]},
])
def test_nul_characters_in_a_query_are_a_422(client, body):
    assert_problem(client.post("/query", json={**body, **DAY}), 422)


@pytest.mark.parametrize("path", ["/metrics/a%00b", "/metrics/a%00/tags/k",
                                  "/metrics/a%00/latest"])
def test_nul_characters_in_a_metric_path_are_a_404(client, path):
    assert_problem(client.get(path), 404)


def test_nul_characters_in_list_filters_are_a_422(client):
    assert_problem(client.get("/metrics?prefix=a%00"), 422)
    ingest(client, [point("2024-01-01T01:00:00Z", "m", 1.0, k="v")])
    assert_problem(client.get("/metrics/m/latest?tag=k=a%00"), 422)


def test_nul_characters_in_a_token_are_a_401(make_app):
    app = make_app(TSAPI_AUTH="required")
    basic = base64.b64encode(b"user:tsapi_ab\x00c_x").decode()
    response = app.test_client().get("/metrics", headers={"Authorization": f"Basic {basic}"})
    assert_problem(response, 401)


@pytest.mark.parametrize("body", [
    {"start_time": "0001-01-01T00:00:00+01:00", "end_time": "2024-01-01T00:00:00Z"},
    {"start_time": "2024-01-01T00:00:00Z", "end_time": "9999-12-31T23:59:59-01:00"},
    {"start_time": "0001-01-01T00:00:00Z", "end_time": "0001-01-05T00:00:00Z",
     "timezone": "America/New_York"},
    {"start_time": "0500-01-01T00:00:00Z", "end_time": "0600-01-01T00:00:00Z",
     "aggregation": "avg", "interval": "1000 years"},
])
def test_times_at_the_edges_of_the_calendar_are_a_422(client, body):
    ingest(client, [point("2024-01-01T01:00:00Z", "m", 1.0)])
    assert_problem(client.post("/query", json={"metric": "m", **body}), 422)


def test_a_csv_cell_of_thousands_of_digits_is_an_invalid_point(client):
    body = "time,metric,value\n2024-01-01T00:00:00Z,m," + "1" * 5000 + "\n"
    response = client.post("/ingest", data=body, content_type="text/csv")
    assert_problem(response, 422)
    assert client.get("/metrics").get_json() == []
