"""A database whose encoding is not UTF8 (SQL_ASCII, what initdb makes under the C locale, or
LATIN1) stores and answers strings exactly as a UTF8 one does, on the insert and COPY paths
alike: the connection speaks UTF-8 whatever the database's default client encoding."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from conftest import migrate
from helpers import OPEN_ACCESS, ingest, point, query

from tsapi.api.app import create_app
from tsapi.store.writer import SMALL_BATCH

PATHS = {"insert": 0, "copy": SMALL_BATCH + 1}
VALUES = {"SQL_ASCII": ["plain", "é", "emoji 😀", "\u2028"], "LATIN1": ["plain", "é ß ÿ"]}


@contextmanager
def database_in(encoding, pg_server, redis_server):
    name = f"tsapi_encoding_{encoding.lower()}"
    pg_server.drop_database(name)
    pg_server.psql(f"CREATE DATABASE {name} ENCODING '{encoding}' LC_COLLATE 'C' "
                   "LC_CTYPE 'C' TEMPLATE template0")
    url = pg_server.url(name)
    migrate(url, "off")
    app = create_app({"TESTING": True, "DATABASE_URL": url, "REDIS_URL": redis_server.url(5),
                      **OPEN_ACCESS})
    try:
        yield app.test_client()
    finally:
        app.extensions["tsapi"].db.dispose()
        pg_server.drop_database(name)


@pytest.fixture(params=sorted(VALUES))
def encoded(request, pg_server, redis_server):
    with database_in(request.param, pg_server, redis_server) as client:
        yield client, VALUES[request.param]


@pytest.fixture
def latin1(pg_server, redis_server):
    """SQL_ASCII stores any character; LATIN1 cannot store '€'."""
    with database_in("LATIN1", pg_server, redis_server) as client:
        yield client


@pytest.mark.parametrize("path", PATHS)
def test_strings_round_trip_in_a_database_not_in_utf8(encoded, path):
    client, values = encoded
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    filler = [point((t0 + timedelta(seconds=i)).isoformat(), "pad", 0.5)
              for i in range(PATHS[path])]
    ingest(client, [point((t0 + timedelta(seconds=i)).isoformat(), "s", v)
                    for i, v in enumerate(values)] + filler)
    rows = query(client, metric="s", start_time="2024-01-01T00:00:00Z",
                 end_time="2024-01-02T00:00:00Z")
    assert [r["value"] for r in rows] == values


@pytest.mark.parametrize("path", PATHS)
def test_a_string_the_database_encoding_cannot_hold_is_refused_and_nothing_stored(latin1,
                                                                                  path):
    client = latin1
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    filler = [point((t0 + timedelta(seconds=i)).isoformat(), "pad", 0.5)
              for i in range(PATHS[path])]
    response = client.post("/ingest", json={"data": [point(t0.isoformat(), "s", "5 €")]
                                            + filler})
    assert response.status_code == 422, response.get_json()
    assert "encoding" in response.get_json()["detail"]
    assert client.get("/metrics").get_json() == []
