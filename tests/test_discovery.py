"""Discovery endpoints: the metric list (contents, order, first/last seen, never stale, filters),
one metric's details, tag values and latest points."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from helpers import assert_problem, get_metrics, ingest, iso, point


def seen(client) -> dict[str, tuple]:
    """{name: (first_seen, last_seen, value_type)} with times parsed; checks they are UTC."""
    out = {}
    for m in get_metrics(client):
        assert set(m) == {"name", "first_seen", "last_seen", "value_type"}, m
        first = datetime.fromisoformat(m["first_seen"])
        last = datetime.fromisoformat(m["last_seen"])
        assert first.utcoffset() == last.utcoffset() == timedelta(0), m
        out[m["name"]] = (first, last, m["value_type"])
    return out


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


# --- the metric list: contents, order, first and last seen ---------------------------------


def test_metrics_is_an_empty_list_before_any_ingest(client):
    assert get_metrics(client) == []


def test_metrics_lists_each_metric_once_with_its_type_and_span(client):
    ingest(client, [
        point("2024-03-10T01:00:00Z", "temp", 1.0, room="a"),
        point("2024-03-10T03:00:00Z", "temp", 2.0, room="b"),
        point("2024-03-10T02:00:00Z", "state", "on"),
    ])
    assert get_metrics(client) == [
        {"name": "state", "first_seen": "2024-03-10T02:00:00+00:00",
         "last_seen": "2024-03-10T02:00:00+00:00", "value_type": "string"},
        {"name": "temp", "first_seen": "2024-03-10T01:00:00+00:00",
         "last_seen": "2024-03-10T03:00:00+00:00", "value_type": "number"},
    ]


def test_metrics_are_sorted_by_name(client):
    names = ["b", "A", "a", "B", "_x", "a.b", "a_b", "ab", "Z1", "z", "10", "9", "é", "a b"]
    ingest(client, [point("2024-03-10T00:00:00Z", n, 1.0) for n in names])
    assert [m["name"] for m in get_metrics(client)] == sorted(names)


def test_first_and_last_seen_are_exact_after_out_of_order_batches(client):
    rng = random.Random(7)
    base = datetime(2024, 3, 10, tzinfo=UTC)
    expected: dict[str, list[datetime]] = {}
    for _ in range(6):
        batch = []
        for _ in range(20):
            name = rng.choice(["cpu", "mem", "disk"])
            t = base + timedelta(microseconds=rng.randrange(-10**12, 10**12))
            # Send some times with an offset: the span is of instants, not of local times.
            offset = timedelta(hours=rng.choice([-7, 0, 5]), minutes=rng.choice([0, 30]))
            text = t.astimezone(timezone(offset)).isoformat()
            batch.append(point(text, name, rng.random(), host=rng.choice("xyz")))
            expected.setdefault(name, []).append(t)
        ingest(client, batch)
        got = seen(client)
        assert {n: (f, la) for n, (f, la, _) in got.items()} == {
            n: (min(ts), max(ts)) for n, ts in expected.items()}


def test_first_and_last_seen_keep_microseconds(client):
    ingest(client, [point("2024-03-10T12:00:00.000001Z", "m", 1.0)])
    ingest(client, [point("2024-03-10T11:59:59.999999Z", "m", 1.0),
                    point("2024-03-10T12:00:00.500000+00:00", "m", 1.0)])
    ingest(client, [point("2024-03-10T14:00:00.123456+02:00", "m", 1.0)])  # 12:00:00.123456Z
    first, last, _ = seen(client)["m"]
    assert first == datetime(2024, 3, 10, 11, 59, 59, 999999, tzinfo=UTC)
    assert last == datetime(2024, 3, 10, 12, 0, 0, 500000, tzinfo=UTC)


def test_rejected_batch_does_not_widen_first_and_last_seen(client):
    ingest(client, [point("2024-03-10T12:00:00Z", "m", 1.0)])
    before = get_metrics(client)
    response = client.post("/ingest", json={"data": [point("2020-01-01T00:00:00Z", "m", 1.0),
                                                     point("2030-01-01T00:00:00Z", "m", "x")]})
    assert_problem(response, 422)
    assert get_metrics(client) == before


# --- the metric list is never stale --------------------------------------------------------


def test_a_new_metric_is_visible_in_the_next_metrics_read(client):
    ingest(client, [point("2024-03-10T00:00:00Z", "a", 1.0)])
    assert [m["name"] for m in get_metrics(client)] == ["a"]
    assert [m["name"] for m in get_metrics(client)] == ["a"]  # now served from the cache
    ingest(client, [point("2024-03-10T00:00:00Z", "b", 1.0)])
    assert [m["name"] for m in get_metrics(client)] == ["a", "b"]


def test_a_wider_span_is_visible_in_the_next_metrics_read(client):
    ingest(client, [point("2024-03-10T12:00:00Z", "m", 1.0)])
    get_metrics(client)
    get_metrics(client)
    ingest(client, [point("2024-03-10T13:00:00.000001Z", "m", 2.0)])
    assert seen(client)["m"][1] == datetime(2024, 3, 10, 13, 0, 0, 1, tzinfo=UTC)
    ingest(client, [point("2024-03-10T11:00:00Z", "m", 3.0)])
    assert seen(client)["m"][0] == datetime(2024, 3, 10, 11, tzinfo=UTC)


def test_metrics_read_after_each_of_many_ingests_is_never_stale(client):
    expected: dict[str, list[datetime]] = {}
    base = datetime(2024, 3, 10, tzinfo=UTC)
    rng = random.Random(11)
    for round_ in range(8):
        name = f"m{rng.randrange(4)}"
        t = base + timedelta(seconds=rng.randrange(-10**6, 10**6))
        ingest(client, [point(iso(t), name, float(round_))])
        expected.setdefault(name, []).append(t)
        got = seen(client)
        assert {n: (f, la) for n, (f, la, _) in got.items()} == {
            n: (min(ts), max(ts)) for n, ts in expected.items()}, round_


def test_ingest_through_another_worker_is_visible_in_the_next_metrics_read(make_app):
    reader = make_app().test_client()
    writer = make_app().test_client()  # a second app: another worker on the same Redis
    ingest(writer, [point("2024-03-10T00:00:00Z", "a", 1.0)])
    assert [m["name"] for m in get_metrics(reader)] == ["a"]
    get_metrics(reader)
    ingest(writer, [point("2024-03-11T00:00:00Z", "a", 1.0),
                    point("2024-03-10T00:00:00Z", "b", 1.0)])
    got = get_metrics(reader)
    assert [m["name"] for m in got] == ["a", "b"]
    assert got[0]["last_seen"] == "2024-03-11T00:00:00+00:00"


# --- NUL characters in paths and filters ----------------------------------------------------


@pytest.mark.parametrize("path", ["/metrics/a%00b", "/metrics/a%00/tags/k",
                                  "/metrics/a%00/latest"])
def test_nul_characters_in_a_metric_path_are_a_404(client, path):
    assert_problem(client.get(path), 404)


def test_nul_characters_in_list_filters_are_a_422(client):
    assert_problem(client.get("/metrics?prefix=a%00"), 422)
    ingest(client, [point("2024-01-01T01:00:00Z", "m", 1.0, k="v")])
    assert_problem(client.get("/metrics/m/latest?tag=k=a%00"), 422)
