"""DATABASE_READ_URL: reads use a real streaming standby once it has replayed every acknowledged
write, and the primary otherwise; a stopped or lagging standby is skipped."""

from __future__ import annotations

import time

import pytest
import redis
from conftest import migrate
from helpers import assert_problem, point
from services import PostgresServer, StandbyServer
from sqlalchemy import text

from tsapi import create_app
from tsapi.config import ConfigError
from tsapi.services.consistency import WATERMARK_KEY
from tsapi.store.replication import ReadEngine

REDIS_DB = 7  # a Redis database of this module's own: the watermark key is global


@pytest.fixture(scope="module")
def replicated():
    """A primary with a migrated database and a hot standby streaming from it."""
    primary = PostgresServer(preload_timescaledb=True)
    primary.start()
    migrate(primary.create_database("tsapi"), "on")
    standby = StandbyServer(primary)
    standby.start()
    yield primary, standby
    standby.cleanup()
    primary.cleanup()


@pytest.fixture
def app_for(replicated, redis_server):
    primary, standby = replicated
    apps = []
    redis.Redis.from_url(redis_server.url(REDIS_DB)).flushdb()
    with primary_engine(primary) as conn:
        conn.execute(text("TRUNCATE points, series, metrics"))

    def build(**overrides):
        config = {"TESTING": True, "DATABASE_URL": primary.url("tsapi"),
                  "DATABASE_READ_URL": standby.url("tsapi"),
                  "REDIS_URL": redis_server.url(REDIS_DB), "TSAPI_AUTH": "off",
                  "TSAPI_RATE_LIMITS": "off", **overrides}
        app = create_app({k: v for k, v in config.items() if v is not None})
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["tsapi"].db.dispose()


def primary_engine(primary):
    import sqlalchemy as sa

    return sa.create_engine(primary.url("tsapi")).begin()


def wait_until(condition, timeout: float = 60.0, what: str = "condition"):
    """Poll until condition() is truthy; generous, as the machine may be slow."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout} s")


def served_by_standby(reader) -> bool:
    with reader.connect() as conn:
        return conn.execute(text("SELECT pg_is_in_recovery()")).scalar_one()


def ingest_one(client, t: str, value: float, metric: str = "m"):
    response = client.post("/ingest", json={"data": [point(t, metric, value)]})
    assert response.status_code == 200, response.get_json()


def read_values(client, metric: str = "m") -> list:
    response = client.post("/query", json={"metric": metric, "start_time": "2024-01-01T00:00:00Z",
                                           "end_time": "2024-01-02T00:00:00Z"})
    assert response.status_code == 200, response.get_json()
    return [row["value"] for row in response.get_json()]


def test_reads_use_the_standby_once_it_has_replayed_the_newest_write(app_for):
    app = app_for()
    db = app.extensions["tsapi"].db
    client = app.test_client()
    ingest_one(client, "2024-01-01T00:00:00Z", 1.5)
    assert read_values(client) == [1.5]  # whichever database answered, it has the write
    reader = wait_until(lambda: (r := db.reader()).replica is not None and r, what="replica used")
    assert isinstance(reader, ReadEngine)
    assert served_by_standby(reader)
    assert client.get("/metrics").get_json()[0]["name"] == "m"


def test_a_standby_behind_the_newest_write_is_not_read(app_for):
    app = app_for()
    db = app.extensions["tsapi"].db
    ingest_one(app.test_client(), "2024-01-01T00:00:00Z", 1.0)
    wait_until(lambda: db.reader().replica is not None, what="replica used")
    # A write the standby cannot have replayed yet: every read must go to the primary.
    db.watermark.raise_to(2**62)
    assert db.reader().replica is None
    assert read_values(app.test_client()) == [1.0]


def test_every_read_after_a_write_sees_it(app_for):
    client = app_for().test_client()
    for n in range(50):
        ingest_one(client, f"2024-01-01T00:00:{n:02d}Z", float(n))
        assert read_values(client)[-1] == float(n)
    response = client.delete("/metrics/m")
    assert response.status_code == 204
    assert_problem(client.get("/metrics/m"), 404)
    assert_problem(client.post("/query", json={
        "metric": "m", "start_time": "2024-01-01T00:00:00Z", "end_time": "2024-01-02T00:00:00Z"}),
        404)


def test_without_redis_reads_stay_on_the_primary(app_for):
    app = app_for(REDIS_URL=None)
    db = app.extensions["tsapi"].db
    assert db.replica is not None and db.watermark is None
    assert db.reader().replica is None


def test_a_lagging_standby_is_skipped_and_health_says_so(app_for, replicated):
    primary, standby = replicated
    app = app_for(TSAPI_MAX_REPLICA_LAG=1)
    db = app.extensions["tsapi"].db
    client = app.test_client()
    wait_until(lambda: db.reader().replica is not None, what="replica used")
    standby.psql("SELECT pg_wal_replay_pause()")
    try:
        # Written behind the service's back: the watermark does not move, only the lag grows.
        with primary_engine(primary) as conn:
            conn.execute(text("INSERT INTO metrics (name, value_type) VALUES ('x', 'number')"))
        wait_until(lambda: db.reader().replica is None, what="lagging replica skipped")
        health = client.get("/health").get_json()
        assert health["replica"]["status"] == "lagging", health
        assert health["replica"]["lag_seconds"] > 1
        assert health["status"] == "degraded"
    finally:
        standby.psql("SELECT pg_wal_replay_resume()")
    wait_until(lambda: db.reader().replica is not None, what="replica used again")
    assert client.get("/health").get_json()["replica"]["status"] == "healthy"


def test_a_stopped_standby_is_skipped_and_used_again_when_back(app_for, replicated):
    _, standby = replicated
    app = app_for()
    db = app.extensions["tsapi"].db
    client = app.test_client()
    ingest_one(client, "2024-01-01T00:00:00Z", 1.0)
    wait_until(lambda: db.reader().replica is not None, what="replica used")
    standby.stop()
    try:
        # Reads keep working at once, from the primary, and health names the problem.
        assert read_values(client) == [1.0]
        ingest_one(client, "2024-01-01T00:00:01Z", 2.0)
        assert read_values(client) == [1.0, 2.0]
        health = client.get("/health").get_json()
        assert health["replica"]["status"] == "unhealthy", health
        assert health["database"] == "healthy" and health["status"] == "degraded"
        assert db.reader().replica is None
    finally:
        standby.start()
    reader = wait_until(lambda: (r := db.reader()).replica is not None and r, what="replica back")
    assert served_by_standby(reader)
    assert read_values(client) == [1.0, 2.0]
    assert client.get("/health").get_json()["replica"]["status"] == "healthy"


def test_health_without_a_replica_says_not_configured(app_for):
    health = app_for(DATABASE_READ_URL=None).test_client().get("/health").get_json()
    assert health["replica"] == {"status": "not configured", "lag_seconds": None}
    assert health["status"] == "healthy"


def test_read_url_must_be_postgresql(app_for):
    with pytest.raises(ConfigError, match="DATABASE_READ_URL"):
        app_for(DATABASE_READ_URL="mysql://u@h/db")


def test_watermark_only_rises(app_for, redis_server):
    db = app_for().extensions["tsapi"].db
    db.watermark.raise_to(0x2_0000_0010)
    db.watermark.raise_to(0x1_FFFF_FFFF)  # an older write acknowledged later
    assert db.watermark.get() == 0x2_0000_0010
    raw = redis.Redis.from_url(redis_server.url(REDIS_DB)).get(WATERMARK_KEY)
    assert raw == b"0000000200000010"
