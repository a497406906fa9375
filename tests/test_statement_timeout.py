"""An over-expensive query: a clear 503 problem, and the pooled connection stays usable."""

from datetime import UTC, datetime, timedelta

from helpers import assert_problem

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def test_a_query_over_the_time_limit_is_a_503_and_the_next_query_works(make_app):
    # Enough points that a 99th percentile (a sort of all of them) takes well over 5 ms.
    loader = make_app()
    client = loader.test_client()
    for start in range(0, 200_000, 50_000):
        batch = [{"time": (T0 + timedelta(seconds=s)).isoformat(), "metric": "load",
                  "value": float(s % 977)} for s in range(start, start + 50_000)]
        assert client.post("/ingest", json={"data": batch}).status_code == 200

    app = make_app(TSAPI_DB_STATEMENT_TIMEOUT_MS=5, TSAPI_DB_POOL_SIZE=1)
    client = app.test_client()
    body = {"metric": "load", "start_time": "2024-01-01T00:00:00Z",
            "end_time": "2024-02-01T00:00:00Z", "aggregation": "p99"}
    problem = assert_problem(client.post("/query", json=body), 503)
    assert "time limit" in problem["detail"]

    # The same single pooled connection answers the next, cheap request.
    response = client.get("/metrics")
    assert response.status_code == 200, response.get_json()
    assert [m["name"] for m in response.get_json()] == ["load"]
