"""GET /metrics caches a bounded number of entries however many distinct `limit`s arrive.

Before, every distinct limit cached one more full answer: 40 requests put +210 MB in Redis.
"""

from helpers import ingest, point


def test_distinct_limits_share_a_few_cache_entries_and_answer_exactly(app):
    client = app.test_client()
    names = [f"metric_{i:03d}" for i in range(40)]
    ingest(client, [point("2024-01-01T00:00:00Z", name, 1.0) for name in names])
    for limit in range(1, 301):
        got = [m["name"] for m in client.get(f"/metrics?limit={limit}").get_json()]
        assert got == names[:limit]
    entries = app.extensions["tsapi"].cache.keys("metrics:list")
    assert 0 < len(entries) <= 10  # limits rounded up to 1, 2, 4, ..., 512 (2**9)


def test_a_metric_list_larger_than_the_cache_entry_limit_is_not_cached(make_app):
    app = make_app(TSAPI_MAX_CACHED_BYTES=100)
    client = app.test_client()
    ingest(client, [point("2024-01-01T00:00:00Z", f"m{i}", 1.0) for i in range(10)])
    assert len(client.get("/metrics").get_json()) == 10
    assert app.extensions["tsapi"].cache.keys("metrics:list") == []
