"""Pooled database connections: one that sat idle is tested before use, so a connection the
server dropped meanwhile (a restart, pg_terminate_backend) is replaced without an error; one
just returned to the pool is used without that extra round trip."""

from __future__ import annotations

import time

import sqlalchemy as sa
from helpers import get_metrics, ingest, point, query

import tsapi.store.engine as engine_module

T0 = "2024-03-01T00:00:00Z"
T1 = "2024-03-02T00:00:00Z"


def _backend_pids(engine) -> set[int]:
    with engine.connect() as conn:
        return {conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()}


def _terminate_app_connections(url: str) -> set[int]:
    """Terminate every connection of the app (application_name tsapi) to this database,
    from another engine's connection, waiting for each backend to exit; their pids."""
    admin = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT pid, pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'tsapi'")).all()
    admin.dispose()
    assert rows and all(done for _, done in rows), rows
    return {pid for pid, _ in rows}


def test_a_pooled_connection_terminated_while_idle_is_replaced_before_use(make_app,
                                                                          monkeypatch):
    app = make_app()
    client = app.test_client()
    engine = app.extensions["tsapi"].db.engine
    ingest(client, [point(T0, "kept", 1.0)])
    pids = _terminate_app_connections(engine.url.render_as_string(hide_password=False))
    # Idle past the bound (made short here), the connection is pinged and replaced.
    monkeypatch.setattr(engine_module, "IDLE_PING_SECONDS", 0.01)
    time.sleep(0.05)
    ingest(client, [point(T0, "kept", 2.0)])
    assert query(client, metric="kept", start_time=T0, end_time=T1) == [
        {"time": "2024-03-01T00:00:00+00:00", "value": 2.0}]
    assert [m["name"] for m in get_metrics(client)] == ["kept"]
    assert _backend_pids(engine).isdisjoint(pids)


def test_a_connection_just_back_in_the_pool_is_used_without_a_ping(make_app, monkeypatch):
    app = make_app()
    engine = app.extensions["tsapi"].db.engine
    pings = []
    real = engine.dialect.do_ping

    def counting(dbapi_connection):
        pings.append(dbapi_connection)
        return real(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counting)
    monkeypatch.setattr(engine_module, "IDLE_PING_SECONDS", 3600.0)
    first = _backend_pids(engine)
    for _ in range(5):
        assert _backend_pids(engine) == first
    assert pings == []
    monkeypatch.setattr(engine_module, "IDLE_PING_SECONDS", 0.0)
    assert _backend_pids(engine) == first
    assert len(pings) == 1


def test_requests_one_after_another_run_on_the_session_used_last(make_app):
    """A pool handing out its sessions in turn would have each of them plan and prepare the
    same statements, and warm its catalog caches, before answering as fast as the first."""
    app = make_app(TSAPI_DB_POOL_SIZE=3)
    client = app.test_client()
    engine = app.extensions["tsapi"].db.engine
    held = [engine.connect() for _ in range(3)]  # three sessions in the pool
    pids = [conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() for conn in held]
    for conn in held:
        conn.close()
    used = set()
    for n in range(6):
        ingest(client, [point(T0, "kept", float(n))])
        with engine.connect() as conn:
            used.add(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
    assert len(set(pids)) == 3
    assert used == {pids[-1]}
