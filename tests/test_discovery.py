"""Discovery endpoints: one metric's details, tag values, latest points, list filters."""

from helpers import assert_problem, ingest, point


def _seed(client):
    ingest(client, [
        point("2024-01-01T00:00:00Z", "temp", 1.0, device="a", room="x"),
        point("2024-01-01T00:01:00Z", "temp", 2.0, device="a", room="x"),
        point("2024-01-01T00:00:30Z", "temp", 5.0, device="b"),
        point("2024-01-01T00:00:10Z", "temp_outside", 9.0),
        point("2024-01-01T00:00:00Z", "state", "on", device="a"),
    ])


def test_metric_details_count_points_series_and_tag_keys(client):
    _seed(client)
    body = client.get("/metrics/temp").get_json()
    assert body == {
        "name": "temp", "value_type": "number",
        "first_seen": "2024-01-01T00:00:00+00:00", "last_seen": "2024-01-01T00:01:00+00:00",
        "point_count": 3, "series_count": 2, "tag_keys": ["device", "room"],
    }


def test_unknown_metric_details_are_404(client):
    problem = assert_problem(client.get("/metrics/nope"), 404)
    assert problem["detail"] == "Metric 'nope' not found"


def test_tag_values_are_distinct_and_sorted(client):
    _seed(client)
    body = client.get("/metrics/temp/tags/device").get_json()
    assert body == {"metric": "temp", "key": "device", "values": ["a", "b"]}
    assert client.get("/metrics/temp/tags/room").get_json()["values"] == ["x"]
    assert client.get("/metrics/temp/tags/none").get_json()["values"] == []


def test_latest_gives_the_newest_point_of_each_series(client):
    _seed(client)
    rows = client.get("/metrics/temp/latest").get_json()
    assert rows == [
        {"time": "2024-01-01T00:01:00+00:00", "value": 2.0, "tags": {"device": "a", "room": "x"}},
        {"time": "2024-01-01T00:00:30+00:00", "value": 5.0, "tags": {"device": "b"}},
    ]
    only_b = client.get("/metrics/temp/latest?tag=device=b").get_json()
    assert [r["value"] for r in only_b] == [5.0]
    strings = client.get("/metrics/state/latest").get_json()
    assert strings[0]["value"] == "on"


def test_latest_rejects_a_malformed_tag_filter(client):
    _seed(client)
    problem = assert_problem(client.get("/metrics/temp/latest?tag=device"), 422)
    assert problem["errors"][0]["field"].startswith("tag")


def test_metric_list_prefix_and_limit_leave_the_default_unchanged(client):
    _seed(client)
    names = [m["name"] for m in client.get("/metrics").get_json()]
    assert names == ["state", "temp", "temp_outside"]
    assert [m["name"] for m in client.get("/metrics?prefix=temp").get_json()] == [
        "temp", "temp_outside"]
    assert [m["name"] for m in client.get("/metrics?limit=1").get_json()] == ["state"]
    # % and _ in a prefix are literal characters, not patterns.
    assert client.get("/metrics?prefix=t%25").get_json() == []
    assert [m["name"] for m in client.get("/metrics?prefix=temp_").get_json()] == [
        "temp_outside"]


def test_metric_list_filters_see_new_metrics_at_once(client):
    _seed(client)
    assert len(client.get("/metrics?prefix=temp").get_json()) == 2
    ingest(client, [point("2024-01-02T00:00:00Z", "temp_inside", 3.0)])
    assert len(client.get("/metrics?prefix=temp").get_json()) == 3
