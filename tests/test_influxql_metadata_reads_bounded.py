"""InfluxQL statements read the series of a bounded number of metrics: one line protocol
write may create thousands of fields, and a SHOW without FROM (Grafana's template variables)
read every one's series, one statement each, before any limit applied."""

from __future__ import annotations

from tsapi.services.influxql.catalog import MAX_METRICS_READ


def write_wide_measurement(client, fields: int):
    line = "wide " + ",".join(f"f{i}=1" for i in range(fields)) + " 1594512094000000000"
    response = client.post("/write?db=x", data=line.encode())
    assert response.status_code == 204, response.get_data()


def first_result(client, text: str) -> dict:
    response = client.get("/query", query_string={"q": text})
    assert response.status_code == 200, response.get_data()
    return response.get_json()["results"][0]


def test_a_show_over_more_metrics_than_the_limit_is_refused_naming_it(client):
    write_wide_measurement(client, MAX_METRICS_READ + 1)
    for text in ("SHOW SERIES", 'SHOW TAG KEYS', 'SHOW TAG VALUES WITH KEY = "host"',
                 'SHOW TAG VALUES FROM "wide" WITH KEY = "host"', 'SELECT * FROM "wide"'):
        result = first_result(client, text)
        assert "series" not in result, text
        assert f"more than {MAX_METRICS_READ} metrics" in result["error"], text


def test_a_show_within_the_limit_answers(client):
    write_wide_measurement(client, 3)
    client.post("/write?db=x", data=b"narrow,host=a v=1 1594512094000000000")
    result = first_result(client, 'SHOW TAG VALUES WITH KEY = "host"')
    assert result["series"][0]["values"] == [["host", "a"]]
    assert first_result(client, "SHOW SERIES")["series"][0]["values"] == [
        ["narrow,host=a"], ["wide"]]
