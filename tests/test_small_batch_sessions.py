"""The small-batch statement is prepared once per database session and, when every id is
cached, runs alone in autocommit: a session killed before or during it stores nothing of the
batch, answers 503, and the next write (on a new session, which prepares anew) succeeds."""

from __future__ import annotations

import threading
import time

import psycopg2.extensions
import pytest
import sqlalchemy as sa
from helpers import ingest, point

DAY = "2024-03-10T0{}:00:00Z"


def admin_engine(app) -> sa.Engine:
    url = app.extensions["tsapi"].db.engine.url.render_as_string(hide_password=False)
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def stored_values(app, metric: str) -> list[float]:
    with app.extensions["tsapi"].db.engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT p.value_num FROM points p JOIN series s ON s.id = p.series_id "
            "JOIN metrics m ON m.id = s.metric_id WHERE m.name = :m ORDER BY p.time"),
            {"m": metric}).scalars().all()


def batch(n: int, cached: bool) -> list[dict]:
    """A point of the known series; with a new series too when not `cached`."""
    points = [point(DAY.format(n), "killed", float(n))]
    return points if cached else points + [point(DAY.format(n), "killed", float(n), new="s")]


@pytest.mark.parametrize("cached", [True, False], ids=["autocommit", "transaction"])
def test_a_session_killed_before_the_prepared_statement_runs_stores_nothing(app, client,
                                                                           cached):
    ingest(client, [point(DAY.format(1), "killed", 1.0)])
    ingest(client, [point(DAY.format(2), "killed", 2.0)])  # ids in the caches now
    engine, admin = app.extensions["tsapi"].db.engine, admin_engine(app)
    engine.dispose()  # a new session: PREPARE, then EXECUTE, which is killed first
    killed = []

    class KillingCursor(psycopg2.extensions.cursor):
        """The driver's cursor, whether SQLAlchemy's Connection runs the statement (a
        transaction) or the writer does on the pooled connection itself (autocommit)."""

        def execute(self, query, vars=None):
            if isinstance(query, str) and query.startswith("EXECUTE") and not killed:
                killed.append(self.connection.info.backend_pid)
                with admin.begin() as other:
                    other.execute(sa.text("SELECT pg_terminate_backend(:pid, 5000)"),
                                  {"pid": killed[0]})
            return super().execute(query, vars)

    def use_killing_cursor(dbapi_connection, record, proxy):
        dbapi_connection.cursor_factory = KillingCursor

    sa.event.listen(engine, "checkout", use_killing_cursor)
    try:
        response = client.post("/ingest", json={"data": batch(3, cached)})
    finally:
        sa.event.remove(engine, "checkout", use_killing_cursor)  # (it kills only once)
    assert killed and response.status_code == 503, response.get_json()
    assert stored_values(app, "killed") == [1.0, 2.0]
    ingest(client, batch(4, cached))
    assert stored_values(app, "killed") == [1.0, 2.0] + [4.0] * (1 if cached else 2)


@pytest.mark.parametrize("cached", [True, False], ids=["autocommit", "transaction"])
def test_a_session_killed_while_its_batch_waits_for_a_lock_stores_nothing(app, client,
                                                                         cached):
    ingest(client, [point(DAY.format(1), "killed", 1.0)])
    ingest(client, [point(DAY.format(2), "killed", 2.0)])
    admin = admin_engine(app)
    answers = []
    with admin.connect() as holder, admin.connect() as watcher:
        # Holds the metric's row: the batch's FOR KEY SHARE waits for it.
        holder.execute(sa.text("SELECT 1 FROM metrics WHERE name = 'killed' FOR UPDATE"))
        writer = threading.Thread(target=lambda: answers.append(
            client.post("/ingest", json={"data": batch(3, cached)})))
        writer.start()
        waiting = []
        for _ in range(600):  # until the batch is seen waiting; not a timing assumption
            waiting = watcher.execute(sa.text(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'tsapi' "
                "AND wait_event_type = 'Lock'")).scalars().all()
            if waiting or not writer.is_alive():
                break
            time.sleep(0.05)
        assert waiting, "the batch never waited for the lock"
        watcher.execute(sa.text("SELECT pg_terminate_backend(:pid, 5000)"),
                        {"pid": waiting[0]})
        writer.join()
        holder.rollback()
    assert answers[0].status_code == 503, answers[0].get_json()
    assert stored_values(app, "killed") == [1.0, 2.0]
    ingest(client, batch(4, cached))
    assert stored_values(app, "killed") == [1.0, 2.0] + [4.0] * (1 if cached else 2)


def test_a_session_that_wrote_in_autocommit_goes_back_to_the_pool_in_transaction_mode(app,
                                                                                     client):
    ingest(client, [point(DAY.format(1), "killed", 1.0)])
    ingest(client, [point(DAY.format(2), "killed", 2.0)])  # ids cached: autocommit
    engine = app.extensions["tsapi"].db.engine
    sessions = []
    with engine.connect() as conn:  # the pool's one idle session: the one that just wrote
        sessions.append(conn.connection.dbapi_connection)
        assert conn.connection.dbapi_connection.autocommit is False
        conn.execute(sa.text("CREATE TEMP TABLE rolled_back (x int)"))
        conn.rollback()  # in transaction mode, a rollback undoes the statement
        assert conn.execute(sa.text(
            "SELECT to_regclass('pg_temp.rolled_back') IS NULL")).scalar()
    assert engine.pool.checkedout() == 0 and len(sessions) == 1
