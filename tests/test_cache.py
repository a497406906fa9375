"""The response cache in Redis: the metric list and query results are cached and never served
stale (also across workers, also when a generation bump fails), and the /cache administration
endpoints, whose clearing leaves other applications' Redis keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis
from helpers import (
    ask,
    assert_problem,
    get_metrics,
    ingest,
    ingest_points,
    iso,
    point,
    query,
    same_time_points,
)
from helpers import time_value_pairs as pairs
from redis.exceptions import ConnectionError as RedisConnectionError

T0 = datetime(2024, 3, 10, tzinfo=UTC)
END = T0 + timedelta(days=1)
RANGE = {"start_time": iso(T0), "end_time": iso(END)}
TRUNCATED = "X-Tsapi-Truncated"
NEXT = "X-Tsapi-Next-Cursor"


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


# --- the metric list in the cache ----------------------------------------------------------


def test_metrics_response_is_cached_in_redis(client):
    assert cache_keys(client) == []
    get_metrics(client)
    assert len(cache_keys(client)) >= 1


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


# --- query results in the cache ------------------------------------------------------------


def cache_stats(client) -> tuple[int, int]:
    info = cache_info(client)
    return info["hits"], info["misses"]


AGG = {"metric": "cpu", "aggregation": "sum", "interval": "1 hour", **RANGE}


def test_the_same_aggregated_query_twice_is_a_cache_hit_with_the_same_answer(client):
    data = same_time_points()
    ingest_points(client, data)
    first = ask(client, **AGG)
    hits, _ = cache_stats(client)
    second = ask(client, **AGG)
    assert cache_stats(client)[0] == hits + 1
    assert second.get_data() == first.get_data()
    assert second.mimetype == first.mimetype == "application/json"
    assert pairs(second.get_json()) == [(T0, sum(v for *_, v in data))]


def test_an_ingest_between_queries_is_never_served_stale(client):
    data = same_time_points()
    ingest_points(client, data)
    ask(client, **AGG)
    assert ask(client, **AGG).get_json() == [{"time": iso(T0).replace("Z", "+00:00"),
                                               "value": sum(v for *_, v in data)}]
    late = T0 + timedelta(hours=3, minutes=5)
    ingest(client, [point(iso(late), "cpu", 1000.0, host="z")])
    assert pairs(query(client, **AGG)) == [(T0, sum(v for *_, v in data)),
                                           (T0 + timedelta(hours=3), 1000.0)]
    # A rewrite of an existing point is new data too.
    ingest(client, [point(iso(late), "cpu", 7.0, host="z")])
    assert pairs(query(client, **AGG))[-1] == (T0 + timedelta(hours=3), 7.0)


def test_a_range_ending_in_the_future_is_never_cached(client):
    now = datetime.now(UTC).replace(microsecond=0)
    ingest(client, [point(iso(now - timedelta(minutes=m)), "cpu", float(m)) for m in (1, 2, 3)])
    body = {"metric": "cpu", "aggregation": "count", "start_time": iso(now - timedelta(days=1)),
            "end_time": iso(now + timedelta(days=1))}
    first = query(client, **body)
    hits, _ = cache_stats(client)
    assert query(client, **body) == first
    assert query(client, **body) == first
    assert cache_stats(client)[0] == hits
    assert first[0]["value"] == 3


def test_clearing_a_metric_makes_the_next_query_a_miss(client):
    ingest_points(client, same_time_points())
    ingest_points(client, same_time_points(), metric="mem")
    mem = {**AGG, "metric": "mem"}
    answer, mem_answer = ask(client, **AGG).get_data(), ask(client, **mem).get_data()
    ask(client, **AGG)
    hits, misses = cache_stats(client)
    response = client.post("/cache/metrics/cpu/clear")
    assert response.status_code == 200
    again = ask(client, **AGG)
    assert cache_stats(client) == (hits, misses + 1)
    assert again.get_data() == answer
    # Another metric's entries survive.
    assert ask(client, **mem).get_data() == mem_answer
    assert cache_stats(client) == (hits + 1, misses + 1)


def test_a_query_of_several_metrics_sees_an_ingest_into_any_of_them(client):
    ingest_points(client, same_time_points(times=2))
    ingest_points(client, same_time_points(times=2), metric="mem")
    body = {"metrics": ["cpu", "mem"], "aggregation": "count", **RANGE}
    assert query(client, **body) == query(client, **body)
    ingest(client, [point(iso(T0 + timedelta(hours=5)), "mem", 1.0, host="z")])
    counts = {r["metric"]: r["value"] for r in query(client, **body)}
    assert counts == {"cpu": 6, "mem": 7}
    hits, misses = cache_stats(client)
    assert client.post("/cache/metrics/mem/clear").status_code == 200
    assert {r["metric"]: r["value"] for r in query(client, **body)} == counts
    assert cache_stats(client) == (hits, misses + 1)


def test_a_repeated_raw_page_keeps_its_paging_headers(client):
    ingest_points(client, same_time_points())
    first = ask(client, metric="cpu", limit=4, **RANGE)
    again = ask(client, metric="cpu", limit=4, **RANGE)
    assert again.get_data() == first.get_data()
    assert again.headers.get(TRUNCATED) == first.headers.get(TRUNCATED) == "true"
    assert again.headers.get(NEXT) == first.headers.get(NEXT)


# --- a failed generation bump ---------------------------------------------------------------
# A write whose generation bump fails must not leave other workers serving stale answers.

EPOCH_BODY = {"metric": "m", "start_time": "2024-01-01T00:00:00Z",
        "end_time": "2024-01-02T00:00:00Z", "aggregation": "sum"}


def test_a_failed_bump_orphans_every_cached_entry(make_app, monkeypatch):
    writer, reader = make_app(), make_app()  # two workers sharing one Redis
    ingest(writer.test_client(), [point("2024-01-01T01:00:00Z", "m", 1.0)])
    assert query(reader.test_client(), **EPOCH_BODY) == [
        {"time": "2024-01-01T00:00:00+00:00", "value": 1.0}]  # now cached

    # One Redis call of the writer fails: the one that bumps the metric's generation.
    # The bump is the writer's one script call (EVALSHA).
    client = writer.extensions["tsapi"].cache.client
    real_bump = client.evalsha
    calls = []

    def failing_bump(*args, **kwargs):
        if not calls:
            calls.append(1)
            raise RedisConnectionError("simulated: this worker lost Redis for a moment")
        return real_bump(*args, **kwargs)

    monkeypatch.setattr(client, "evalsha", failing_bump)
    ingest(writer.test_client(), [point("2024-01-01T02:00:00Z", "m", 10.0)])
    assert calls == [1]
    # The reader's cached sum of 1.0 must not be served any more.
    assert query(reader.test_client(), **EPOCH_BODY) == [
        {"time": "2024-01-01T00:00:00+00:00", "value": 11.0}]
