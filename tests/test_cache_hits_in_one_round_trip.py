"""A repeated cached answer costs one Redis round trip: the generations and the answer are
read together while the generations hold still, and a write by another worker in between is
still never answered with an older entry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from helpers import get_metrics, ingest, iso, point, query, stored_metrics

T0 = datetime(2024, 3, 10, tzinfo=UTC)
AGG = {"metric": "cpu", "aggregation": "sum", "interval": "1 hour",
       "start_time": iso(T0), "end_time": iso(T0 + timedelta(days=1))}


@pytest.fixture
def redis_calls(monkeypatch):
    """Spy on an app's response cache: pipelines sent, and separate reads made."""

    def spy(app) -> dict[str, int]:
        cache = app.extensions["tsapi"].cache
        calls = {"pipeline": 0, "mget": 0, "get": 0}
        for name, owner in (("pipeline", cache.client), ("mget", cache.client),
                            ("get", cache)):
            real = getattr(owner, name)

            def counting(*args, _real=real, _name=name, **kwargs):
                calls[_name] += 1
                return _real(*args, **kwargs)

            monkeypatch.setattr(owner, name, counting)
        return calls

    return spy


def test_a_repeated_query_reads_generations_and_answer_in_one_pipeline(make_app, redis_calls):
    app = make_app()
    client = app.test_client()
    ingest(client, [point(iso(T0), "cpu", 1.0), point(iso(T0 + timedelta(hours=2)), "cpu", 2.0)])
    first = query(client, **AGG)
    assert query(client, **AGG) == first
    calls = redis_calls(app)
    for _ in range(3):
        assert query(client, **AGG) == first
    assert calls == {"pipeline": 3, "mget": 0, "get": 0}


def test_a_repeated_metric_list_reads_generation_and_answer_in_one_pipeline(make_app,
                                                                            redis_calls):
    app = make_app()
    client = app.test_client()
    ingest(client, [point(iso(T0), "cpu", 1.0)])
    first = get_metrics(client)
    calls = redis_calls(app)
    for _ in range(3):
        assert get_metrics(client) == first
    assert calls == {"pipeline": 3, "mget": 0, "get": 0}


def test_a_write_through_another_worker_is_seen_by_the_next_query(make_app):
    reader, writer = make_app().test_client(), make_app().test_client()
    ingest(reader, [point(iso(T0), "cpu", 1.0)])
    assert query(reader, **AGG) == query(reader, **AGG)
    ingest(writer, [point(iso(T0 + timedelta(hours=3)), "cpu", 5.0)])
    assert [row["value"] for row in query(reader, **AGG)] == [1.0, 5.0]
    assert stored_metrics(reader) == stored_metrics(reader) == ["cpu"]
    ingest(writer, [point(iso(T0), "mem", 1.0)])
    assert stored_metrics(reader) == ["cpu", "mem"]
