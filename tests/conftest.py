"""Fixtures: a private PostgreSQL (with TimescaleDB) and Redis for the session, and an app
per test on either kind of database, each test starting from empty tables and cache."""

from __future__ import annotations

import io
import json
import logging

import pytest
import redis
import rollup_support
import sqlalchemy as sa
from alembic import command
from helpers import OPEN_ACCESS
from services import PostgresServer, RedisServer

from tsapi import create_app
from tsapi.api.logs import JsonFormatter
from tsapi.cli import alembic_config

BACKENDS = ("timescaledb", "postgresql")


@pytest.fixture(scope="session")
def pg_server():
    server = PostgresServer(preload_timescaledb=True)
    server.start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer()
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def own_redis():
    """A Redis of the test's own, for tests that stop and restart it."""
    server = RedisServer()
    server.start()
    yield server
    server.cleanup()


def migrate(url: str, timescaledb: str, revision: str = "head") -> None:
    config = alembic_config(url, timescaledb)
    config.attributes["configure_logger"] = False
    command.upgrade(config, revision)


@pytest.fixture(scope="session")
def database_urls(pg_server):
    """One migrated database per backend: TimescaleDB, and plain PostgreSQL (no extension)."""
    urls = {}
    for backend in BACKENDS:
        url = pg_server.create_database(f"tsapi_{backend}")
        migrate(url, "on" if backend == "timescaledb" else "off")
        urls[backend] = url
    return urls


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


def reset_state(database_url: str, redis_url: str) -> None:
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        # No RESTART IDENTITY: ids are never reused, which the ingest id cache relies on.
        conn.execute(sa.text("TRUNCATE points, series, metrics, api_keys, rollups_1m, rollups_1h, "
                             "rollup_invalidations, rollup_watermarks"))
    engine.dispose()
    redis.Redis.from_url(redis_url).flushdb()


@pytest.fixture
def make_app(database_urls, redis_server, backend):
    """Build an app on this test's backend; overrides go to create_app's config mapping."""
    apps = []

    def build(**overrides):
        config = {
            "TESTING": True,
            "DATABASE_URL": database_urls[backend],
            "REDIS_URL": redis_server.url(),
            **OPEN_ACCESS,
        }
        config.update(overrides)
        app = create_app(config)
        apps.append(app)
        return app

    reset_state(database_urls[backend], redis_server.url())
    yield build
    for app in apps:
        app.extensions["tsapi"].db.dispose()


@pytest.fixture
def clients_by_backend(database_urls, redis_server):
    """A client on each backend at once, on emptied tables, each with a Redis database of
    its own: for tests that compare the two backends' answers."""
    clients, apps = {}, []
    for n, (backend, url) in enumerate(sorted(database_urls.items()), start=1):
        reset_state(url, redis_server.url(n))
        app = create_app({"TESTING": True, "DATABASE_URL": url,
                          "REDIS_URL": redis_server.url(n), **OPEN_ACCESS})
        apps.append(app)
        clients[backend] = app.test_client()
    yield clients
    for app in apps:
        app.extensions["tsapi"].db.dispose()


@pytest.fixture
def secure_app(make_app):
    """An app that requires API keys (the others run with OPEN_ACCESS)."""
    return make_app(TSAPI_AUTH="required")


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def log_lines():
    """What the tsapi loggers write during the test, one parsed JSON object per line."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tsapi")
    logger.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        logger.removeHandler(handler)


@pytest.fixture(scope="session")
def gunicorn_database(pg_server):
    """A migrated TimescaleDB database of its own for tests that run a real gunicorn."""
    url = pg_server.create_database("tsapi_gunicorn")
    migrate(url, "on")
    return url


@pytest.fixture
def empty_gunicorn_database(gunicorn_database, redis_server):
    reset_state(gunicorn_database, redis_server.url())
    return gunicorn_database


@pytest.fixture
def store(make_app, database_urls, backend):
    """The rollup tests' Store (written to and read from below HTTP) on this test's backend,
    its tables emptied by make_app. A module that needs one filled defines its own."""
    s = rollup_support.Store(database_urls[backend])
    yield s
    s.dispose()


@pytest.fixture
def uncached_paths(make_app, database_urls, backend):
    """(rollup client, raw client, Store) of one backend, neither caching answers."""
    # No response cache: each app's in-process cache would keep answers from before a write
    # made through the other app (or below HTTP).
    rolled = make_app(REDIS_URL=None, TSAPI_MAX_CACHED_BYTES=0).test_client()
    raw = make_app(REDIS_URL=None, TSAPI_ROLLUPS="off", TSAPI_MAX_CACHED_BYTES=0).test_client()
    store = rollup_support.Store(database_urls[backend])
    yield rolled, raw, store
    store.dispose()
