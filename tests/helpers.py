"""Small helpers shared by the tests."""

from __future__ import annotations


def point(time: str, metric: str, value, **tags):
    p = {"time": time, "metric": metric, "value": value}
    if tags:
        p["tags"] = tags
    return p


def ingest(client, points, expect: int = 200):
    response = client.post("/ingest", json={"data": points})
    assert response.status_code == expect, response.get_json()
    return response.get_json()


def query(client, expect: int = 200, **body):
    response = client.post("/query", json=body)
    assert response.status_code == expect, response.get_json()
    return response.get_json()
