"""GET /metrics (contents, order, first/last seen, caching without stale reads) and the /cache
administration endpoints, including that clearing leaves other applications' Redis keys."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
import redis
from helpers import assert_problem, ingest, iso, point


def get_metrics(client) -> list[dict]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


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


def cache_keys(client) -> list[str]:
    response = client.get("/cache/keys")
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"count", "keys"}
    assert body["count"] == len(body["keys"])
    assert all(isinstance(k, str) for k in body["keys"])
    return body["keys"]


def cache_info(client) -> dict:
    response = client.get("/cache/info")
    assert response.status_code == 200
    return response.get_json()


@pytest.fixture
def foreign_redis(redis_server):
    """A client on the same Redis database the app uses, as another application would."""
    client = redis.Redis.from_url(redis_server.url())
    yield client
    client.close()


# --- /metrics contents -----------------------------------------------------------------------


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


# --- /metrics caching ------------------------------------------------------------------------


def test_metrics_response_is_cached_in_redis(client):
    assert cache_keys(client) == []
    get_metrics(client)
    assert len(cache_keys(client)) >= 1


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


# --- /cache/info ---------------------------------------------------------------------------


def test_cache_info_reports_a_connected_redis(client):
    info = cache_info(client)
    assert info["status"] == "connected"
    assert info["backend"] == "redis"
    for key in ("hits", "misses", "keys", "used_memory"):
        assert isinstance(info[key], int) and not isinstance(info[key], bool), key
    assert info["used_memory"] > 0
    assert isinstance(info.get("used_memory_human"), str)


def test_cache_misses_then_hits_as_metrics_is_repeated(client):
    ingest(client, [point("2024-03-10T00:00:00Z", "a", 1.0)])
    start = cache_info(client)
    get_metrics(client)
    after_first = cache_info(client)
    assert after_first["misses"] == start["misses"] + 1
    assert after_first["hits"] == start["hits"]
    get_metrics(client)
    get_metrics(client)
    after_third = cache_info(client)
    assert after_third["hits"] == after_first["hits"] + 2
    assert after_third["misses"] == after_first["misses"]
    ingest(client, [point("2024-03-10T00:00:00Z", "b", 1.0)])
    get_metrics(client)
    after_ingest = cache_info(client)
    assert after_ingest["misses"] == after_third["misses"] + 1


def test_cache_info_key_count_matches_cache_keys(client):
    ingest(client, [point("2024-03-10T00:00:00Z", "a", 1.0)])
    get_metrics(client)
    assert cache_info(client)["keys"] == len(cache_keys(client)) >= 1


def test_cache_info_key_count_excludes_foreign_keys(client, foreign_redis):
    foreign_redis.set("another-app:key", "v")
    assert cache_info(client)["keys"] == 0
    assert cache_keys(client) == []


# --- /cache/clear --------------------------------------------------------------------------


def test_cache_clear_removes_this_services_keys_and_only_those(client, foreign_redis):
    foreign = {"another-app:key": b"v1", "session:42": b"v2", "tsapi": b"v3",
               "cache:metrics:list:0": b"v4"}
    for key, value in foreign.items():
        foreign_redis.set(key, value)
    foreign_redis.hset("another-app:hash", mapping={"f": "1"})
    ingest(client, [point("2024-03-10T00:00:00Z", "a", 1.0)])
    get_metrics(client)
    held = cache_keys(client)
    assert held

    response = client.post("/cache/clear")
    assert response.status_code == 200
    body = response.get_json()
    assert body["message"] == "Cache cleared successfully"
    assert body.get("removed", len(held)) == len(held)

    assert cache_keys(client) == []
    for key, value in foreign.items():
        assert foreign_redis.get(key) == value, key
    assert foreign_redis.hgetall("another-app:hash") == {b"f": b"1"}


def test_metrics_are_correct_after_cache_clear(client):
    ingest(client, [point("2024-03-10T00:00:00Z", "a", 1.0)])
    before = get_metrics(client)
    assert client.post("/cache/clear").status_code == 200
    assert get_metrics(client) == before
    ingest(client, [point("2024-03-10T00:00:00Z", "b", 1.0)])
    assert [m["name"] for m in get_metrics(client)] == ["a", "b"]


def test_cache_clear_on_an_empty_cache_succeeds(client):
    response = client.post("/cache/clear")
    assert response.status_code == 200
    assert response.get_json()["message"] == "Cache cleared successfully"


# --- /cache/metrics/<m>/clear ------------------------------------------------------------------


@pytest.mark.parametrize(("path_name", "name"), [("temp", "temp"), ("cpu.load", "cpu.load"),
                                                 ("a%20b", "a b"), ("caf%C3%A9", "café")])
def test_metric_cache_clear_names_the_metric(client, path_name, name):
    ingest(client, [point("2024-03-10T00:00:00Z", name, 1.0)])
    response = client.post(f"/cache/metrics/{path_name}/clear")
    assert response.status_code == 200
    body = response.get_json()
    assert body["message"] == f"Cache cleared for metric: {name}"
    assert isinstance(body.get("removed", 0), int)


def test_metric_cache_clear_keeps_foreign_keys_and_fresh_results(client, foreign_redis):
    foreign_redis.set("another-app:temp", "keep")
    ingest(client, [point("2024-03-10T00:00:00Z", "temp", 1.0)])
    before = get_metrics(client)
    assert client.post("/cache/metrics/temp/clear").status_code == 200
    assert foreign_redis.get("another-app:temp") == b"keep"
    assert get_metrics(client) == before
    rows = client.post("/query", json={"metric": "temp", "start_time": "2024-03-10T00:00:00Z",
                                       "end_time": "2024-03-11T00:00:00Z"}).get_json()
    assert rows == [{"time": "2024-03-10T00:00:00+00:00", "value": 1.0}]


def test_cache_endpoints_reject_wrong_methods_with_problems(client):
    assert_problem(client.get("/cache/clear"), 405)
    assert_problem(client.post("/cache/info"), 405)
    assert_problem(client.get("/cache/metrics/temp/clear"), 405)
    assert_problem(client.post("/metrics"), 405)
