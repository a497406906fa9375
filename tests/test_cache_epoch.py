"""A write whose generation bump fails must not leave other workers serving stale answers."""

from helpers import ingest, point, query
from redis.exceptions import ConnectionError as RedisConnectionError

BODY = {"metric": "m", "start_time": "2024-01-01T00:00:00Z",
        "end_time": "2024-01-02T00:00:00Z", "aggregation": "sum"}


def test_a_failed_bump_orphans_every_cached_entry(make_app, monkeypatch):
    writer, reader = make_app(), make_app()  # two workers sharing one Redis
    ingest(writer.test_client(), [point("2024-01-01T01:00:00Z", "m", 1.0)])
    assert query(reader.test_client(), **BODY) == [
        {"time": "2024-01-01T00:00:00+00:00", "value": 1.0}]  # now cached

    # One Redis call of the writer fails: the one that bumps the metric's generation.
    cache = writer.extensions["tsapi"].cache
    real_pipeline = cache.client.pipeline
    calls = []

    def failing_pipeline(*args, **kwargs):
        if not calls:
            calls.append(1)
            raise RedisConnectionError("simulated: this worker lost Redis for a moment")
        return real_pipeline(*args, **kwargs)

    monkeypatch.setattr(cache.client, "pipeline", failing_pipeline)
    ingest(writer.test_client(), [point("2024-01-01T02:00:00Z", "m", 10.0)])
    assert calls == [1]
    # The reader's cached sum of 1.0 must not be served any more.
    assert query(reader.test_client(), **BODY) == [
        {"time": "2024-01-01T00:00:00+00:00", "value": 11.0}]
