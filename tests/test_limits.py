"""An over-expensive query: a clear 503 problem, and the pooled connection stays usable."""

import sqlalchemy as sa
from helpers import assert_problem, ingest, point

# Far above what reading a one-row table takes on any machine, however busy.
STATEMENT_TIMEOUT_MS = 2_000


def test_a_query_over_the_time_limit_is_a_503_and_the_next_query_works(
        make_app, database_urls, backend):
    app = make_app(TSAPI_DB_STATEMENT_TIMEOUT_MS=STATEMENT_TIMEOUT_MS, TSAPI_DB_POOL_SIZE=1)
    client = app.test_client()
    ingest(client, [point("2024-01-01T00:00:00Z", "load", 1.0)])
    body = {"metric": "load", "start_time": "2024-01-01T00:00:00Z",
            "end_time": "2024-02-01T00:00:00Z", "aggregation": "p99"}

    # The query is certainly slow, whatever the machine's speed: another session holds a lock
    # on the points table, so reading it waits until statement_timeout cancels the wait.
    blocker = sa.create_engine(database_urls[backend])
    try:
        with blocker.begin() as conn:
            conn.execute(sa.text("LOCK TABLE points IN ACCESS EXCLUSIVE MODE"))
            problem = assert_problem(client.post("/query", json=body), 503)
    finally:
        blocker.dispose()
    assert "time limit" in problem["detail"]

    # The same single pooled connection answers the next, cheap request.
    response = client.get("/metrics")
    assert response.status_code == 200, response.get_json()
    assert [m["name"] for m in response.get_json()] == ["load"]
