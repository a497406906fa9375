"""POST /query output formats: CSV and NDJSON equal the JSON rows (aggregated, several metrics,
group_by keys, awkward strings, large streamed exports), and Accept negotiation as curl sends
it. Expectations are computed in Python."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

from helpers import ask, ingest, ingest_points, iso, point, query, same_time_points
from helpers import time_value_pairs as pairs

T0 = datetime(2024, 3, 10, tzinfo=UTC)
END = T0 + timedelta(days=1)
RANGE = {"start_time": iso(T0), "end_time": iso(END)}


def parse_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def assert_csv_matches(text: str, rows: list[dict], header: list[str]) -> None:
    """CSV records equal JSON rows: same order, times as in JSON, null as an empty field."""
    records = parse_csv(text)
    assert records[0] == header
    assert len(records) - 1 == len(rows)
    for record, row in zip(records[1:], rows, strict=True):
        assert len(record) == len(header), record
        cells = dict(zip(header, record, strict=True))
        assert cells["time"] == row["time"]
        if "metric" in cells:
            assert cells["metric"] == row["metric"]
        for key in header[header.index("metric") + 1 if "metric" in header else 0:
                          header.index("time")]:
            assert cells[key] == (row["tags"][key] or ""), (key, record, row)
        value = row["value"]
        if value is None:
            assert cells["value"] == ""
        elif isinstance(value, str):
            assert cells["value"] == value
        else:
            assert float(cells["value"]) == value, (record, row)


def assert_ndjson_matches(body: bytes, rows: list[dict]) -> None:
    text = body.decode()
    assert text.endswith("\n") or not rows
    lines = text.splitlines()
    assert [json.loads(line) for line in lines] == rows


def test_csv_of_an_aggregated_query_equals_the_json_rows(client):
    data = same_time_points()
    ingest_points(client, [(h, t + timedelta(minutes=45 * (t.minute % 3)), v)
                           for h, t, v in data])
    body = {"metric": "cpu", "aggregation": "avg", "interval": "15m", "fill": "null", **RANGE}
    rows = query(client, **body)
    assert any(r["value"] is None for r in rows)  # nulls travel as empty fields
    by_format = ask(client, format="csv", **body)
    by_accept = ask(client, headers={"Accept": "text/csv"}, **body)
    for response in (by_format, by_accept):
        assert response.status_code == 200
        assert response.mimetype == "text/csv"
        assert_csv_matches(response.get_data(as_text=True), rows, ["time", "value"])


def test_csv_columns_for_several_metrics_and_group_by_keys(client):
    ingest(client, [point(iso(T0 + timedelta(minutes=i)), name, float(i), host=h, dc=dc)
                    for i in range(6) for name in ("cpu", "mem")
                    for h, dc in (("a", "x"), ("b", "y"))])
    ingest(client, [point(iso(T0 + timedelta(minutes=2)), "cpu", 100.0, host="c")])  # no dc
    header = ["metric", "host", "dc", "time", "value"]
    for extra in ({"aggregation": "max", "interval": "1 hour"}, {"aggregation": "count"}, {}):
        body = {"metrics": ["cpu", "mem"], "group_by": ["host", "dc"], **extra, **RANGE}
        rows = query(client, **body)
        assert rows
        response = ask(client, format="csv", **body)
        assert response.mimetype == "text/csv"
        assert_csv_matches(response.get_data(as_text=True), rows, header)
    single = {"metric": "cpu", "group_by": ["dc"], "aggregation": "sum", **RANGE}
    assert_csv_matches(ask(client, format="csv", **single).get_data(as_text=True),
                       query(client, **single), ["dc", "time", "value"])


def test_csv_of_string_values_survives_commas_quotes_and_newlines(client):
    values = ["plain", "comma,inside", 'quote " inside', "new\nline", "crlf\r\nend", "",
              " spaced ", "naïve 🚀"]
    ingest(client, [point(iso(T0 + timedelta(seconds=i)), "note", v)
                    for i, v in enumerate(values)])
    rows = query(client, metric="note", **RANGE)
    assert [r["value"] for r in rows] == values
    text = ask(client, metric="note", format="csv", **RANGE).get_data(as_text=True)
    assert_csv_matches(text, rows, ["time", "value"])


def test_ndjson_is_one_json_object_per_line_equal_to_the_json_rows(client):
    data = same_time_points()
    ingest_points(client, data)
    ingest_points(client, data, metric="mem")
    bodies = [
        {"metric": "cpu", **RANGE},
        {"metric": "cpu", "group_by": ["host"], **RANGE},
        {"metrics": ["cpu", "mem"], **RANGE},
        {"metric": "cpu", "aggregation": "p90", "interval": "1m", **RANGE},
        {"metrics": ["cpu", "mem"], "aggregation": "sum", "group_by": ["host"], **RANGE},
    ]
    for body in bodies:
        rows = query(client, **body)
        assert rows, body
        for response in (ask(client, format="ndjson", **body),
                         ask(client, headers={"Accept": "application/x-ndjson"}, **body)):
            assert response.status_code == 200
            assert response.mimetype == "application/x-ndjson", body
            assert_ndjson_matches(response.get_data(), rows)


def test_large_raw_exports_are_complete_and_ordered(client):
    n = 3500  # two series: 7000 points, past any first chunk of a streamed export
    data = [(h, T0 + timedelta(seconds=7 * i, microseconds=i), float(i) + (0.5 if h == "b" else 0))
            for i in range(n) for h in ("a", "b")]
    ingest_points(client, data)
    want = sorted((t, v) for _, t, v in data)
    rows = query(client, metric="cpu", **RANGE)
    assert sorted(pairs(rows)) == want

    csv_text = ask(client, metric="cpu", format="csv", **RANGE).get_data(as_text=True)
    records = parse_csv(csv_text)
    assert records[0] == ["time", "value"]
    got = [(datetime.fromisoformat(t), float(v)) for t, v in records[1:]]
    assert len(got) == len(data)
    assert [t for t, _ in got] == sorted(t for t, _ in got)
    assert sorted(got) == want
    assert_csv_matches(csv_text, rows, ["time", "value"])

    body = ask(client, metric="cpu", format="ndjson", **RANGE).get_data()
    assert_ndjson_matches(body, rows)

    newest_first = ask(client, metric="cpu", format="ndjson", order="desc", **RANGE).get_data()
    times = [datetime.fromisoformat(json.loads(line)["time"]) for line in body.splitlines()]
    desc_times = [datetime.fromisoformat(json.loads(line)["time"])
                  for line in newest_first.splitlines()]
    assert desc_times == sorted(times, reverse=True)


def test_accept_any_type_gives_json_as_curl_sends_it(client):
    """curl sends "Accept: */*": that must mean the default format, JSON."""
    client.post("/ingest", json={"data": [
        {"time": "2024-01-01T00:00:00Z", "metric": "m", "value": 1.0}]})
    response = client.post("/query", json={"metric": "m", "start_time": "2024-01-01T00:00:00Z",
                                           "end_time": "2024-01-02T00:00:00Z"},
                           headers={"Accept": "*/*"})
    assert response.mimetype == "application/json"
    assert response.get_json() == [{"time": "2024-01-01T00:00:00+00:00", "value": 1.0}]
    csv = client.post("/query", json={"metric": "m", "start_time": "2024-01-01T00:00:00Z",
                                      "end_time": "2024-01-02T00:00:00Z"},
                      headers={"Accept": "text/csv, */*;q=0.1"})
    assert csv.mimetype == "text/csv"
