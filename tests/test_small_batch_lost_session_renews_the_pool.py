"""A small batch of cached ids runs on the pooled driver connection itself, not through a
SQLAlchemy Connection. When its session turns out to be lost (a database restart, a
terminated backend), the pool must be renewed as a Connection renews it: every session
pooled before the loss is replaced on its next checkout, not each found dead by a request
of its own (another 503 per pooled session)."""

from __future__ import annotations

import sqlalchemy as sa
from helpers import ingest, point

import tsapi.store.engine as engine_module

T = "2024-03-10T0{}:00:00Z"


def test_a_lost_session_under_a_cached_small_batch_renews_every_pooled_session(make_app,
                                                                             monkeypatch):
    # No ping of idle sessions in this test: only the pool's renewal can replace them.
    monkeypatch.setattr(engine_module, "IDLE_PING_SECONDS", 3600.0)
    app = make_app(TSAPI_DB_POOL_SIZE=3)
    client = app.test_client()
    engine = app.extensions["tsapi"].db.engine
    ingest(client, [point(T.format(1), "lost", 1.0)])
    ingest(client, [point(T.format(2), "lost", 2.0)])  # ids cached: the driver-cursor path
    held = [engine.connect() for _ in range(3)]  # three sessions in the pool
    for conn in held:
        conn.execute(sa.text("SELECT 1"))
    for conn in held:
        conn.close()
    url = engine.url.render_as_string(hide_password=False)
    admin = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'tsapi'"))
    admin.dispose()

    first = client.post("/ingest", json={"data": [point(T.format(3), "lost", 3.0)]})
    assert first.status_code == 503, first.get_json()
    # A request in flight holds the session just renewed; the next takes another pooled one.
    with engine.connect() as busy:
        busy.execute(sa.text("SELECT 1"))
        second = client.post("/ingest", json={"data": [point(T.format(4), "lost", 4.0)]})
    assert second.status_code == 200, second.get_json()
