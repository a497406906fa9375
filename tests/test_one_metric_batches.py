"""A small batch of one metric (a 1-point write, one device's reading) is stored by a
statement with only what one metrics row needs: no join or sort over metrics, no span table.
It keeps every guarantee of the general statement (a metric deleted meanwhile stores nothing
and the write is redone under the new row, first/last seen widen, the rollup log is
written): tests/test_lifecycle.py and tests/test_ingest.py run both statements."""

from __future__ import annotations

import psycopg2.extensions
import sqlalchemy as sa
from helpers import ingest, point

from tsapi.store.small_batch import STATEMENTS


def executed_statements(app, points, through_sqlalchemy: list | None = None
                        ) -> list[tuple[str, dict]]:
    """The EXECUTE statements (and their parameters) the writer sent to store `points`, as
    the driver's cursors saw them; statements SQLAlchemy executed go to
    `through_sqlalchemy`."""
    engine = app.extensions["tsapi"].db.engine
    sent: list[tuple[str, dict]] = []

    class RecordingCursor(psycopg2.extensions.cursor):
        def execute(self, query, vars=None):
            if isinstance(query, str) and query.startswith("EXECUTE tsapi_store"):
                sent.append((query, vars))
            return super().execute(query, vars)

    def record_cursors(dbapi_connection, record, proxy):
        dbapi_connection.cursor_factory = RecordingCursor

    def record_sqlalchemy(conn, cursor, statement, parameters, context, executemany):
        if through_sqlalchemy is not None:
            through_sqlalchemy.append(statement)

    sa.event.listen(engine, "checkout", record_cursors)
    sa.event.listen(engine, "before_cursor_execute", record_sqlalchemy)
    try:
        ingest(app.test_client(), points)
    finally:
        sa.event.remove(engine, "checkout", record_cursors)
        sa.event.remove(engine, "before_cursor_execute", record_sqlalchemy)
        engine.dispose()  # no connection keeps the recording cursors
    return sent


def plan(app, statement: str, parameters: dict) -> str:
    """The plan of an EXECUTE, in a session that prepares its statement as the writer does."""
    name = statement.split()[1]
    prepared = next(p for p in STATEMENTS if p.name == name)
    with app.extensions["tsapi"].db.engine.connect() as conn:
        if name not in conn.connection.info:
            conn.execute(prepared.prepare)
            conn.connection.info[name] = True
        rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters).scalars().all()
        conn.rollback()
    return "\n".join(rows)


def test_a_batch_of_one_metric_is_stored_without_joining_or_sorting_metrics(app, client):
    ingest(client, [point("2024-03-10T01:00:00Z", "solo", 1.0, device="a")])
    sent = executed_statements(app, [point("2024-03-10T02:00:00Z", "solo", 2.0, device="a"),
                                     point("2024-03-10T02:00:00Z", "solo", 3.0, device="b")])
    assert len(sent) == 1
    shape = plan(app, *sent[0])
    assert "Hash" not in shape and "Seq Scan on metrics" not in shape, shape
    assert shape.count("LockRows") == 1, shape  # one lock on the one metrics row


def test_a_batch_of_several_metrics_keeps_the_ordered_locks(app, client):
    points = [point("2024-03-10T01:00:00Z", name, 1.0) for name in ("one", "two")]
    ingest(client, points)
    sent = executed_statements(app, [point("2024-03-10T02:00:00Z", name, 2.0)
                                     for name in ("one", "two")])
    assert len(sent) == 1
    assert plan(app, *sent[0]).count("LockRows") == 2  # KEY SHARE, then the widening's


def test_one_metric_widens_first_and_last_seen_and_logs_for_the_rollups(app, client):
    ingest(client, [point("2024-03-10T05:00:00Z", "span", 1.0)])
    ingest(client, [point("2024-03-10T07:00:00Z", "span", 2.0)])  # ids from the caches
    ingest(client, [point("2024-03-10T03:00:00Z", "span", 3.0)])
    ingest(client, [point("2024-03-10T06:00:00Z", "span", 4.0)])  # inside: nothing widens
    with app.extensions["tsapi"].db.engine.connect() as conn:
        first, last = conn.execute(sa.text(
            "SELECT first_seen, last_seen FROM metrics WHERE name = 'span'")).one()
        logged = conn.execute(sa.text(
            "SELECT count(*) FROM rollup_invalidations i JOIN series s ON s.id = i.series_id "
            "JOIN metrics m ON m.id = s.metric_id WHERE m.name = 'span'")).scalar()
    assert (first.isoformat(), last.isoformat()) == ("2024-03-10T03:00:00+00:00",
                                                     "2024-03-10T07:00:00+00:00")
    assert logged == 4  # each write logged its span


def test_a_small_batch_of_cached_ids_is_one_statement_on_the_drivers_cursor(app, client):
    """No SQLAlchemy Connection or execution around the write's one statement: it cost
    more of the worker's CPU than the statement itself."""
    ingest(client, [point("2024-03-10T01:00:00Z", "direct", 1.0)])
    through_sqlalchemy: list[str] = []
    sent = executed_statements(app, [point("2024-03-10T02:00:00Z", "direct", 2.0)],
                               through_sqlalchemy)
    assert [statement.split(" (")[0] for statement, _ in sent] == [
        "EXECUTE tsapi_store_one_metric"]
    assert through_sqlalchemy == []
