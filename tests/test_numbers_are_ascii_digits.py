"""Numbers in request text are ASCII digits, everywhere: Python's int(), float() and regex `\\d`
also read every Unicode decimal digit ('١٢٣' Arabic-Indic, '１２' full-width), so a CSV cell
'١٢٣' was stored as 123 while JSON and line protocol refuse such numbers. A cell that would
be a number but for its digits is refused naming its line and column (422, as every other
CSV cell problem); text that is no number at all stays a string value."""

from __future__ import annotations

import pytest
from helpers import assert_problem

CSV = "time,metric,value\n2024-03-10T01:00:00Z,t,1\n{time},t,{value}\n"
TIME = "2024-03-10T02:00:00Z"


def post_csv(client, text: str):
    return client.post("/ingest", data=text.encode(), content_type="text/csv")


@pytest.mark.parametrize("value", ["١٢٣", "１２", "-１.５", "۱۲e۳", " ١٢ ", "1٢"])
def test_a_csv_value_in_other_digits_is_refused_naming_line_and_column(client, value):
    problem = assert_problem(post_csv(client, CSV.format(time=TIME, value=value)), 422)
    assert [(e["field"], e["line"]) for e in problem["errors"]] == [("line 3 value", 3)]
    assert "ASCII" in problem["detail"]
    assert client.get("/metrics").get_json() == []  # nothing stored, the good row included


@pytest.mark.parametrize("time", ["١٧١٠٠٣٢٤٠٠", "１７１００３２４００"])
def test_a_csv_time_in_other_digits_is_refused_naming_line_and_column(client, time):
    problem = assert_problem(post_csv(client, CSV.format(time=time, value="2")), 422)
    assert [(e["field"], e["line"]) for e in problem["errors"]] == [("line 3 time", 3)]
    assert client.get("/metrics").get_json() == []


def test_text_that_is_no_number_stays_a_string_value(client):
    text = f"time,metric,value\n{TIME},label,²\n{TIME},t,1\n"
    assert post_csv(client, text).status_code == 200
    assert client.post("/query", json={
        "metric": "label", "start_time": "2024-03-10T00:00:00Z",
        "end_time": "2024-03-11T00:00:00Z"}).get_json() == [{"time": "2024-03-10T02:00:00+00:00",
                                                             "value": "²"}]


@pytest.mark.parametrize("interval", ["١ hour", "１５m", "1٥ minutes"])
def test_a_query_interval_in_other_digits_is_refused(client, interval):
    response = client.post("/query", json={
        "metric": "t", "start_time": "2024-03-10T00:00:00Z", "end_time": "2024-03-11T00:00:00Z",
        "aggregation": "avg", "interval": interval})
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["field"] == "interval"


def test_a_metric_list_limit_in_other_digits_is_refused(client):
    problem = assert_problem(client.get("/metrics", query_string={"limit": "١٠"}), 422)
    assert problem["errors"][0]["field"] == "limit"
    assert client.get("/metrics", query_string={"limit": "10"}).status_code == 200
