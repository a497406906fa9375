from helpers import ingest, point, query


def test_ingest_then_query_round_trip(client):
    body = ingest(client, [point("2024-01-01T00:00:00Z", "temp", 1.5, device="a")])
    assert body == {"message": "Successfully ingested 1 data points", "ingested_count": 1}
    rows = query(client, metric="temp", start_time="2024-01-01T00:00:00Z",
                 end_time="2024-01-02T00:00:00Z")
    assert rows == [{"time": "2024-01-01T00:00:00+00:00", "value": 1.5}]
