"""POST /ingest with text/csv bodies: header, tag columns, number or string values, errors
naming lines, and a file that comes back out of /query as the same rows."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime

from conftest import reset_state
from helpers import assert_problem, query, stored_series, utc

DAY_START = "2024-03-10T00:00:00Z"
DAY_END = "2024-03-11T00:00:00Z"


def post_csv(client, text: str | bytes, headers=None):
    body = text.encode() if isinstance(text, str) else text
    return client.post("/ingest", data=body, content_type="text/csv", headers=headers or {})


def rows(client, metric):
    return [(utc(r["time"]), r["value"])
            for r in query(client, metric=metric, start_time=DAY_START, end_time=DAY_END)]


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 3, 10, hour, minute, tzinfo=UTC)


def test_csv_points_are_stored_with_tag_columns_and_empty_cells_leave_tags_out(app, client):
    text = ("time,metric,value,room,floor\n"
            "2024-03-10T01:00:00Z,temp,21.5,kitchen,1\n"
            "2024-03-10T02:00:00Z,temp,22,kitchen,\n"
            "2024-03-10T03:00:00Z,temp,-1e1,,\n")
    response = post_csv(client, text)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["ingested_count"] == 3
    assert rows(client, "temp") == [(at(1), 21.5), (at(2), 22.0), (at(3), -10.0)]
    assert stored_series(app) == {("temp", (("floor", "1"), ("room", "kitchen"))),
                                ("temp", (("room", "kitchen"),)), ("temp", ())}


def test_numbers_are_numbers_and_other_text_is_a_string(client):
    text = ('time,metric,value\n'
            '2024-03-10T01:00:00Z,state,"on, mostly"\n'
            '2024-03-10T01:00:00Z,count,9007199254740992\n'
            '2024-03-10T01:00:00Z,ratio,.25\n'
            '2024-03-10T01:00:00Z,label,12abc\n')
    assert post_csv(client, text).status_code == 200
    assert rows(client, "state") == [(at(1), "on, mostly")]
    assert rows(client, "count") == [(at(1), 9007199254740992)]
    assert rows(client, "ratio") == [(at(1), 0.25)]
    assert rows(client, "label") == [(at(1), "12abc")]


def test_unix_seconds_times_bom_crlf_and_blank_lines_are_accepted(client):
    seconds = int(at(4, 30).timestamp())
    text = f"\ufefftime,metric,value\r\n\r\n{seconds},temp,1\r\n{seconds + 60}.5,temp,2\r\n"
    assert post_csv(client, text).status_code == 200
    assert rows(client, "temp") == [(at(4, 30), 1.0),
                                    (at(4, 31).replace(microsecond=500000), 2.0)]


def test_gzip_csv_is_accepted(client):
    text = "time,metric,value\n" + "".join(
        f"2024-03-10T05:{m:02d}:00Z,temp,{m}\n" for m in range(60))
    response = post_csv(client, gzip.compress(text.encode()), {"Content-Encoding": "gzip"})
    assert response.status_code == 200
    assert [v for _, v in rows(client, "temp")] == [float(m) for m in range(60)]


def test_header_only_stores_nothing(client):
    response = post_csv(client, "time,metric,value,room\n")
    assert response.status_code == 200 and response.get_json()["ingested_count"] == 0


# --- errors name lines ----------------------------------------------------------------------


def test_wrong_header_is_refused_naming_line_one(client):
    problem = assert_problem(post_csv(client, "ts,name,v\n2024-03-10T01:00:00Z,t,1\n"), 422)
    assert problem["errors"][0]["line"] == 1 and "header" in problem["detail"]


def test_duplicate_tag_columns_are_refused(client):
    problem = assert_problem(post_csv(client, "time,metric,value,room,room\n"), 422)
    assert "line 1" in problem["detail"]


def test_row_with_the_wrong_number_of_cells_names_its_line(client):
    text = "time,metric,value\n2024-03-10T01:00:00Z,t,1\n\n2024-03-10T02:00:00Z,t\n"
    problem = assert_problem(post_csv(client, text), 422)
    assert problem["errors"][0]["line"] == 4 and "2 cells" in problem["detail"]
    assert client.get("/metrics").get_json() == []


def test_invalid_values_and_times_name_their_lines_and_nothing_is_stored(client):
    text = ('time,metric,value,note\n'
            '2024-03-10T01:00:00Z,t,1,"a\nmultiline tag"\n'
            '2024-03-10T02:00:00Z,t,NaN,\n'
            'yesterday,t,3,\n'
            '2024-03-10T04:00:00Z,t,,\n')
    problem = assert_problem(post_csv(client, text), 422)
    found = {(e["line"], e["field"]) for e in problem["errors"]}
    assert found == {(2, "line 2 tags.note"), (4, "line 4 value"), (5, "line 5 time"),
                     (6, "line 6 value")}
    assert "line 2" in problem["detail"]
    assert client.get("/metrics").get_json() == []


def test_type_conflict_with_a_stored_metric_names_the_line(client):
    assert post_csv(client, "time,metric,value\n2024-03-10T01:00:00Z,t,1\n").status_code == 200
    text = "time,metric,value\n2024-03-10T02:00:00Z,t,2\n2024-03-10T03:00:00Z,t,high\n"
    problem = assert_problem(post_csv(client, text), 422)
    assert [e["line"] for e in problem["errors"]] == [3]
    assert rows(client, "t") == [(at(1), 1.0)]


def test_invalid_utf8_names_the_line(client):
    problem = assert_problem(post_csv(client, b"time,metric,value\n2024-03-10,t,\xff\n"), 422)
    assert problem["errors"][0]["line"] == 2


# --- round trip -----------------------------------------------------------------------------


def export_csv(client, metrics, group_by=("room",)) -> str:
    response = client.post("/query", json={
        "metrics": list(metrics), "start_time": DAY_START, "end_time": DAY_END,
        "group_by": list(group_by), "format": "csv"})
    assert response.status_code == 200, response.data[:500]
    assert response.mimetype == "text/csv"
    return response.get_data(as_text=True)


def test_a_csv_file_round_trips_through_ingest_and_the_query_csv_export(
        make_app, database_urls, redis_server, backend):
    """A file in the export's own shape goes in, comes out byte for byte, and the export
    loads again into an empty database to give the same export."""
    records = []
    for metric, value in (("humidity", lambda h, m: f"{40 + h + m / 100}"),
                          ("status", lambda h, m: f"ok {h}, fine" if m else "12abc")):
        for h in range(0, 24, 6):
            for m in (0, 30):
                room = "" if h == 6 else ("kitchen" if m else "hall")
                cell = value(h, m)
                cell = f'"{cell}"' if "," in cell else cell
                records.append((metric, room, f"2024-03-10T{h:02d}:{m:02d}:00.250000+00:00", cell))
    # The export's order: metric by metric, groups sorted (no tag first), then time.
    records.sort(key=lambda r: (r[0], r[1] != "", r[1], r[2]))
    rows = [",".join(r) for r in records]
    original = "metric,room,time,value\n" + "\n".join(rows) + "\n"

    client = make_app().test_client()
    response = post_csv(client, original)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["ingested_count"] == len(rows)
    exported = export_csv(client, ["humidity", "status"])
    assert exported == original

    reset_state(database_urls[backend], redis_server.url())  # an empty database again
    client = make_app().test_client()
    assert client.get("/metrics").get_json() == []
    assert post_csv(client, exported).status_code == 200
    assert export_csv(client, ["humidity", "status"]) == original


def test_malformed_quoting_names_the_line(client):
    text = 'time,metric,value\n2024-03-10T01:00:00Z,t,1\n2024-03-10T02:00:00Z,t,"2"x\n'
    problem = assert_problem(post_csv(client, text), 422)
    assert problem["errors"][0]["line"] == 3 and "not valid CSV" in problem["detail"]


def test_a_csv_cell_of_thousands_of_digits_is_an_invalid_point(client):
    body = "time,metric,value\n2024-01-01T00:00:00Z,m," + "1" * 5000 + "\n"
    response = client.post("/ingest", data=body, content_type="text/csv")
    assert_problem(response, 422)
    assert client.get("/metrics").get_json() == []
