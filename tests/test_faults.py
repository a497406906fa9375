"""Real outages: the test stops and restarts the PostgreSQL and Redis processes it owns."""

from conftest import migrate
from helpers import OPEN_ACCESS, ingest, point, query
from services import PostgresServer

from tsapi import create_app

T0 = "2024-03-01T00:00:00Z"
T1 = "2024-03-02T00:00:00Z"


def test_redis_down_everything_but_cache_info_still_works(database_urls, own_redis):
    app = create_app({"DATABASE_URL": database_urls["timescaledb"],
                      "REDIS_URL": own_redis.url(), "TESTING": True, **OPEN_ACCESS})
    client = app.test_client()
    ingest(client, [point(T0, "redis_down_metric", 1.0)])
    assert client.get("/metrics").status_code == 200  # cached now

    own_redis.stop()
    try:
        ingest(client, [point("2024-03-01T01:00:00Z", "redis_down_metric", 2.0)])
        metrics = client.get("/metrics").get_json()
        mine = [m for m in metrics if m["name"] == "redis_down_metric"]
        assert mine[0]["last_seen"] == "2024-03-01T01:00:00+00:00"
        rows = query(client, metric="redis_down_metric", start_time=T0, end_time=T1)
        assert [r["value"] for r in rows] == [1.0, 2.0]

        health = client.get("/health")
        assert health.status_code == 200
        assert health.get_json()["status"] == "degraded"
        assert health.get_json()["redis"] == "unhealthy"
        assert client.get("/").get_json()["redis_status"] == "disconnected"
        assert client.get("/cache/info").get_json()["status"] == "disconnected"
        keys = client.get("/cache/keys")
        assert keys.status_code == 503
        assert keys.mimetype == "application/problem+json"
    finally:
        own_redis.restart()

    # Back up: the outage pause ends at the next health check, and the cache serves again.
    assert client.get("/health").get_json()["status"] == "healthy"
    assert client.get("/cache/info").get_json()["status"] == "connected"
    app.extensions["tsapi"].db.dispose()


def test_database_down_gives_503_and_recovers_without_restart(redis_server):
    server = PostgresServer(preload_timescaledb=True)
    server.start()
    try:
        url = server.create_database("outage")
        migrate(url, "on")
        app = create_app({"DATABASE_URL": url, "REDIS_URL": redis_server.url(),
                          "TESTING": True, **OPEN_ACCESS})
        client = app.test_client()
        ingest(client, [point(T0, "outage_metric", 1.0)])

        server.stop()
        for response in (
            client.post("/ingest", json={"data": [point(T0, "outage_metric", 2.0)]}),
            client.post("/query", json={"metric": "outage_metric", "start_time": T0,
                                        "end_time": T1}),
            client.get("/health"),
        ):
            assert response.status_code == 503
            assert response.headers["Retry-After"]
        assert client.get("/health").get_json()["database"] == "unhealthy"

        server.restart()
        # Pooled connections died with the server; pre-ping replaces them transparently.
        assert client.get("/health").status_code == 200
        rows = query(client, metric="outage_metric", start_time=T0, end_time=T1)
        assert rows == [{"time": "2024-03-01T00:00:00+00:00", "value": 1.0}]
        app.extensions["tsapi"].db.dispose()
    finally:
        server.cleanup()
