"""No worker serves an answer older than an acknowledged write, even when Redis answers reads
but refuses writes (out of memory under `noeviction`): a real Redis, two app instances
standing for two workers. Before, the generation bump was lost and the other worker kept
serving its cached answer."""

import pytest
import redis
from helpers import ingest, point, query

from tsapi import create_app

BODY = {"metric": "m", "start_time": "2024-01-01T00:00:00Z",
        "end_time": "2024-01-02T00:00:00Z", "aggregation": "sum"}


@pytest.fixture
def workers(database_urls, own_redis):
    from conftest import OPEN_ACCESS, reset_state

    reset_state(database_urls["timescaledb"], own_redis.url())
    apps = [create_app({"TESTING": True, "DATABASE_URL": database_urls["timescaledb"],
                        "REDIS_URL": own_redis.url(), **OPEN_ACCESS}) for _ in range(2)]
    yield [app.test_client() for app in apps]
    for app in apps:
        app.extensions["tsapi"].db.dispose()


def _refuse_writes(url: str) -> redis.Redis:
    client = redis.Redis.from_url(url)
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", "1")
    with pytest.raises(redis.exceptions.ResponseError, match="maxmemory"):
        client.set("probe", "x")  # writes are refused ...
    client.get("probe")  # ... reads are not
    return client


def test_a_write_acknowledged_while_redis_refuses_writes_is_seen_by_every_worker(
        workers, own_redis):
    writer, reader = workers
    ingest(writer, [point("2024-01-01T01:00:00Z", "m", 1.0)])
    assert query(reader, **BODY) == [{"time": "2024-01-01T00:00:00+00:00", "value": 1.0}]
    assert [m["name"] for m in reader.get("/metrics").get_json()] == ["m"]  # both cached

    redis_client = _refuse_writes(own_redis.url())
    try:
        ingest(writer, [point("2024-01-01T02:00:00Z", "m", 10.0),
                        point("2024-01-01T02:00:00Z", "n", 5.0)])
        # The reader never failed a Redis call itself: only Redis can tell it.
        assert query(reader, **BODY) == [{"time": "2024-01-01T00:00:00+00:00", "value": 11.0}]
        assert [m["name"] for m in reader.get("/metrics").get_json()] == ["m", "n"]
    finally:
        redis_client.config_set("maxmemory", "0")


def test_the_cache_is_used_again_once_redis_accepts_writes(workers, own_redis):
    writer, reader = workers
    ingest(writer, [point("2024-01-01T01:00:00Z", "m", 1.0)])
    redis_client = _refuse_writes(own_redis.url())
    try:
        ingest(writer, [point("2024-01-01T02:00:00Z", "m", 10.0)])
    finally:
        redis_client.config_set("maxmemory", "0")
    fresh = create_app({"TESTING": True, "DATABASE_URL": writer.application.config[
        "DATABASE_URL"], "REDIS_URL": own_redis.url(), "TSAPI_AUTH": "off",
        "TSAPI_RATE_LIMITS": "off"}).test_client()  # a worker that saw no failure
    assert query(fresh, **BODY) == [{"time": "2024-01-01T00:00:00+00:00", "value": 11.0}]
    assert query(fresh, **BODY) == [{"time": "2024-01-01T00:00:00+00:00", "value": 11.0}]
    stats = fresh.get("/cache/info").get_json()
    assert stats["hits"] >= 1
    fresh.application.extensions["tsapi"].db.dispose()


def test_a_write_acknowledged_while_redis_is_a_read_only_replica_is_seen_by_every_worker(
        workers, own_redis):
    # A Redis demoted to a replica (a failover that REDIS_URL does not follow) answers MGET
    # and GET but refuses INCR and DEL alike (READONLY): the writer can neither bump nor drop
    # the epoch, and the reader, which never failed a Redis call, serves its cached answer.
    writer, reader = workers
    ingest(writer, [point("2024-01-01T01:00:00Z", "m", 1.0)])
    assert query(reader, **BODY) == [{"time": "2024-01-01T00:00:00+00:00", "value": 1.0}]

    redis_client = redis.Redis.from_url(own_redis.url())
    redis_client.replicaof("127.0.0.1", "1")  # a primary that is not there: no resync
    try:
        with pytest.raises(redis.exceptions.ReadOnlyError):
            redis_client.delete("probe")
        ingest(writer, [point("2024-01-01T02:00:00Z", "m", 10.0)])
        assert query(reader, **BODY) == [{"time": "2024-01-01T00:00:00+00:00", "value": 11.0}]
    finally:
        redis_client.replicaof("NO", "ONE")


def test_a_generation_that_is_not_a_number_skips_the_cache_instead_of_failing(
        workers, own_redis):
    # Something else wrote into tsapi's generation keys: INCR refuses the value, and
    # reading it must not turn every query into a 500.
    writer, reader = workers
    ingest(writer, [point("2024-01-01T01:00:00Z", "m", 1.0)])
    assert query(reader, **BODY) == [{"time": "2024-01-01T00:00:00+00:00", "value": 1.0}]
    redis.Redis.from_url(own_redis.url()).set("tsapi:gen:m", "not a number")
    ingest(writer, [point("2024-01-01T02:00:00Z", "m", 10.0)])
    assert query(reader, **BODY) == [{"time": "2024-01-01T00:00:00+00:00", "value": 11.0}]
    assert query(writer, **BODY) == [{"time": "2024-01-01T00:00:00+00:00", "value": 11.0}]
