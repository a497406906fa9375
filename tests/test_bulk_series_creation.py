"""A batch may create any number of new series up to the batch limit, and errors that are not
about the database's availability are never a 503 that clients would retry forever."""

import orjson
import psycopg2
import pytest
import sqlalchemy as sa
from helpers import assert_problem
from sqlalchemy.exc import OperationalError

NEW_SERIES = 100_000  # the default batch limit, every point a series of its own


@pytest.mark.parametrize("backend", ["postgresql"])  # the catalog is the same on both
def test_a_batch_of_100000_new_series_is_stored(make_app, backend, database_urls):
    # Before: ~8,000 new series in one batch failed with 503 ("stack depth limit exceeded"
    # from a VALUES/IN list of row values), for ever, while /health said healthy.
    client = make_app().test_client()
    points = [{"time": 1_700_000_000, "metric": "fleet", "value": float(i),
               "tags": {"device": f"d{i}"}} for i in range(NEW_SERIES)]
    response = client.post("/ingest", data=orjson.dumps({"data": points}),
                           content_type="application/json")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["ingested_count"] == NEW_SERIES
    engine = sa.create_engine(database_urls[backend])
    with engine.connect() as conn:
        # Statistics first: planned before autovacuum had analyzed the new rows, this check
        # once ran as a nested loop over 100,000 x 100,000 rows (minutes, not milliseconds).
        conn.execute(sa.text("ANALYZE series, points"))
        assert conn.execute(sa.text("SELECT count(*) FROM series")).scalar() == NEW_SERIES
        assert conn.execute(sa.text(
            "SELECT count(*) FROM points p JOIN series s ON s.id = p.series_id "
            "WHERE p.value_num::bigint::text = substr(s.tags->>'device', 2)")).scalar() \
            == NEW_SERIES
    engine.dispose()
    # Sent again, the same 100,000 series are found, not created twice.
    again = client.post("/ingest", data=orjson.dumps({"data": points}),
                        content_type="application/json")
    assert again.status_code == 200


def _operational_error(pgcode: str | None, message: str) -> OperationalError:
    class Orig(psycopg2.OperationalError):
        pass

    Orig.pgcode = pgcode  # psycopg2 sets it from the server's SQLSTATE
    return OperationalError("SELECT ...", {}, Orig(message))


def test_a_program_limit_error_is_not_reported_as_unavailability(make_app, monkeypatch):
    app = make_app()
    import tsapi.services.ingest as ingest_service

    def stack_depth(*args, **kwargs):
        raise _operational_error("54001", "stack depth limit exceeded")

    monkeypatch.setattr(ingest_service, "write_batch", stack_depth)
    response = app.test_client().post("/ingest", json={"data": [
        {"time": 0, "metric": "m", "value": 1}]})
    problem = assert_problem(response, 500)
    assert "Retry-After" not in response.headers
    assert "unavailable" not in problem["detail"]


def test_a_lost_connection_is_still_unavailability(make_app, monkeypatch):
    app = make_app()
    import tsapi.services.ingest as ingest_service

    def gone(*args, **kwargs):
        raise _operational_error(None, "server closed the connection unexpectedly")

    monkeypatch.setattr(ingest_service, "write_batch", gone)
    response = app.test_client().post("/ingest", json={"data": [
        {"time": 0, "metric": "m", "value": 1}]})
    assert_problem(response, 503)
    assert response.headers["Retry-After"] == "5"
