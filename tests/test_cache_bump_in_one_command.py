"""A write moves the generation of every metric it touched with one Redis command, however
many metrics its batch names (a line of line protocol names one per field)."""

from __future__ import annotations

import redis
from helpers import ingest, point, query

from tsapi.services.cache_generations import GENERATION_PREFIX

DAY = {"start_time": "2024-01-01T00:00:00Z", "end_time": "2024-01-02T00:00:00Z",
       "aggregation": "sum"}


def command_calls(client: redis.Redis) -> dict[str, int]:
    return {name: stats["calls"] for name, stats in client.info("commandstats").items()}


def test_a_batch_of_several_metrics_bumps_them_all_in_one_command(make_app, redis_server):
    app = make_app()
    client = app.test_client()
    names = [f"m{i}" for i in range(7)]
    ingest(client, [point("2024-01-01T01:00:00Z", n, 1.0) for n in names])
    keys = [GENERATION_PREFIX + n for n in names]
    spy = redis.Redis.from_url(redis_server.url())
    before_values = [int(v or 0) for v in spy.mget(keys)]
    before = command_calls(spy)

    ingest(client, [point("2024-01-01T02:00:00Z", n, 2.0) for n in names])

    after = command_calls(spy)
    sent = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    sent.pop("cmdstat_info", None)  # the spy's own command
    sent.pop("cmdstat_mget", None)
    assert [int(v) for v in spy.mget(keys)] == [v + 1 for v in before_values]
    # One script call, whose INCRs (one per metric, and one for the metric list, whose
    # first/last seen moved) run inside Redis.
    assert sent == {"cmdstat_evalsha": 1, "cmdstat_incr": len(names) + 1}


def test_answers_cached_before_a_multi_metric_write_are_not_served_after_it(make_app):
    writer, reader = make_app(), make_app()  # two workers sharing one Redis
    names = ["a", "b", "c"]
    ingest(writer.test_client(), [point("2024-01-01T01:00:00Z", n, 1.0) for n in names])
    for n in names:
        assert query(reader.test_client(), metric=n, **DAY)[0]["value"] == 1.0  # cached
    ingest(writer.test_client(), [point("2024-01-01T02:00:00Z", n, 5.0) for n in names])
    for n in names:
        assert query(reader.test_client(), metric=n, **DAY)[0]["value"] == 6.0
