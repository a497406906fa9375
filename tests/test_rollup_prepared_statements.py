"""One-statement rollup answers run as statements prepared once per session: the server's
kept (generic) plan must still see chunks made after it, and a session that lost its
prepared statements must still answer."""

from __future__ import annotations

from datetime import timedelta

from one_statement_support import body_for, same_answer, series_data
from rollup_support import at, write_tagged
from sqlalchemy import text

from tsapi.store import prepared, rollup_aligned
from tsapi.store.rollup_refresh import refresh

DAY = 86400


def _rolled_up(make_app, store, pool_size: int = 1):
    """The test series, rolled up, and an app without response cache over a pool of
    `pool_size` sessions."""
    series_data(store)
    refresh(store.engine, store.storage, timedelta(0), now=at(9 * 3600))
    return make_app(REDIS_URL=None, TSAPI_MAX_CACHED_BYTES=0, TSAPI_DB_POOL_SIZE=pool_size)


def _plans(app) -> dict[str, int]:
    """Generic plans made per prepared statement, in the app's one pooled session (a pool of
    one: the test client sends one request at a time)."""
    with app.extensions["tsapi"].db.engine.connect() as conn:
        rows = conn.execute(text("SELECT name, generic_plans FROM pg_prepared_statements"))
        return {name: n for name, n in rows}


def test_a_kept_plan_sees_chunks_made_after_it(make_app, uncached_paths, monkeypatch):
    """Daily means over a year and more: after the plan is kept, points a year later go
    into new chunks of points and of the rollup table, and the same statement reads them."""
    monkeypatch.setattr(rollup_aligned, "PREPARED_BUCKETS", 10**6)  # a year is prepared too
    _, raw, store = uncached_paths
    app = _rolled_up(make_app, store)
    client = app.test_client()
    later = 400 * DAY
    body = body_for(0, later + 8 * 3600, interval="1d", tags={"device": "a"})
    for _ in range(12):
        assert same_answer(client, raw, body) == "rollup-1h"
    assert any(n > 0 for n in _plans(app).values())  # the server keeps a generic plan
    write_tagged(store, [(at(later + step * 600), "temp", step / 4, {"device": "a"})
                         for step in range(8 * 6)])
    refresh(store.engine, store.storage, timedelta(0), now=at(later + 9 * 3600))
    assert same_answer(client, raw, body) == "rollup-1h"
    # Two UTC days of points (20:00 to 04:00) then two more, a year later.
    assert len(client.post("/query", json=body).get_json()) == 4


def test_a_session_that_lost_its_prepared_statements_answers(make_app, uncached_paths):
    _, raw, store = uncached_paths
    app = _rolled_up(make_app, store)
    client = app.test_client()
    body = body_for(3600, 7 * 3600, tags={"device": "b"})
    for _ in range(3):
        assert same_answer(client, raw, body) == "rollup-1h"
    assert _plans(app)
    with app.extensions["tsapi"].db.engine.connect() as conn:
        conn.execute(text("DEALLOCATE ALL"))
        conn.commit()
    assert not _plans(app)
    assert same_answer(client, raw, body) == "rollup-1h"
    assert _plans(app)


def test_a_session_holds_a_bounded_number_of_prepared_statements(make_app, uncached_paths,
                                                                 monkeypatch):
    monkeypatch.setattr(prepared, "MAX_PER_SESSION", 3)
    _, raw, store = uncached_paths
    app = _rolled_up(make_app, store)
    client = app.test_client()
    for _ in range(2):
        for aggregation in ("count", "min", "max", "first", "last", "sum", "avg"):
            body = body_for(3600, 7 * 3600, aggregation=aggregation, tags={"device": "c"})
            assert same_answer(client, raw, body) == "rollup-1h"
            assert len(_plans(app)) <= 3


def test_a_session_that_lost_them_answers_inside_a_transaction_too(make_app, uncached_paths):
    """A time zone keeps the request in one REPEATABLE READ transaction: the failed EXECUTE
    undoes it, so the request starts again on a session that prepares anew."""
    _, raw, store = uncached_paths
    app = _rolled_up(make_app, store)
    client = app.test_client()
    body = body_for(3600, 7 * 3600, tags={"device": "b"}, timezone="Asia/Kolkata",
                    interval="1d")
    body_utc = body_for(3600, 7 * 3600, tags={"device": "b"})
    for _ in range(3):
        assert same_answer(client, raw, body_utc) == "rollup-1h"
        same_answer(client, raw, body)
    before = _plans(app)
    with app.extensions["tsapi"].db.engine.connect() as conn:
        conn.execute(text("DEALLOCATE ALL"))
        conn.commit()
    assert before and not _plans(app)
    same_answer(client, raw, body)
    assert _plans(app)


def _deallocate_in_every_session(app, sessions: int) -> list[int]:
    """DEALLOCATE ALL in each of the pool's `sessions` (all checked out at once); the
    statements each held before."""
    engine = app.extensions["tsapi"].db.engine
    conns = [engine.connect() for _ in range(sessions)]
    held = []
    try:
        for conn in conns:
            held.append(conn.execute(text("SELECT count(*) FROM pg_prepared_statements"))
                        .scalar())
            conn.execute(text("DEALLOCATE ALL"))
            conn.commit()
    finally:
        for conn in conns:
            conn.close()
    return held


def _the_session_that_prepared(engine):
    """Of the pool's two sessions, the one holding prepared statements (or either), checked
    out: the next requests run on the other."""
    first, second = engine.connect(), engine.connect()
    held = first.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar()
    keep, free = (first, second) if held else (second, first)
    free.close()
    return keep


def test_every_pooled_session_that_lost_them_still_answers_in_a_transaction(make_app,
                                                                           uncached_paths):
    """The request started again after a lost statement may get another pooled session that
    lost its statements too: it must answer, not 500."""
    _, raw, store = uncached_paths
    app = _rolled_up(make_app, store, pool_size=2)
    client = app.test_client()
    engine = app.extensions["tsapi"].db.engine
    body = body_for(3600, 7 * 3600, tags={"device": "b"}, timezone="Asia/Kolkata",
                    interval="1d")
    with engine.connect(), engine.connect():
        pass  # two sessions in the pool
    for _ in range(2):  # each prepares, the other one held meanwhile
        with _the_session_that_prepared(engine):
            for _ in range(2):
                same_answer(client, raw, body)
    assert all(_deallocate_in_every_session(app, 2))
    same_answer(client, raw, body)


def test_a_session_at_its_bound_that_lost_them_answers(make_app, uncached_paths,
                                                       monkeypatch):
    """A session holding its bound of statements deallocates them before preparing another:
    if it lost them meanwhile (DEALLOCATE ALL), that must not be a 500."""
    monkeypatch.setattr(prepared, "MAX_PER_SESSION", 3)
    _, raw, store = uncached_paths
    app = _rolled_up(make_app, store)
    client = app.test_client()
    aggregations = ("count", "min", "max", "first", "last", "sum", "avg")
    for aggregation in aggregations:
        same_answer(client, raw, body_for(3600, 7 * 3600, aggregation=aggregation,
                                          tags={"device": "c"}))
    assert _deallocate_in_every_session(app, 1) == [3]
    for aggregation in aggregations:
        assert same_answer(client, raw, body_for(3600, 7 * 3600, aggregation=aggregation,
                                                 tags={"device": "c"})) == "rollup-1h"


def _plan_counts(app) -> dict[str, tuple[int, int]]:
    """(generic, custom) plans made per prepared statement in the app's one pooled session."""
    with app.extensions["tsapi"].db.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT name, generic_plans, custom_plans FROM pg_prepared_statements"))
        return {name: (generic, custom) for name, generic, custom in rows}


def test_a_prepared_statement_is_planned_once_from_its_first_run(make_app, uncached_paths):
    """PostgreSQL would plan it anew with each run's values five times per session before
    keeping a generic plan: a server's first requests of each shape, on every session of its
    pools, paid more for planning than for the answer."""
    _, raw, store = uncached_paths
    app = _rolled_up(make_app, store)
    client = app.test_client()
    for body in (body_for(3600, 7 * 3600, tags={"device": "b"}),
                 body_for(0, 8 * 3600, interval="2h")):
        for _ in range(3):
            assert same_answer(client, raw, body) == "rollup-1h"
    counts = _plan_counts(app)
    assert len(counts) == 2
    # Every run took the generic plan (made on the first): none was planned for its values.
    assert all(custom == 0 and generic > 0 for generic, custom in counts.values()), counts
