"""A line that repeats a key is read as InfluxDB 1.x reads it: a repeated tag is refused
(which value names the series would be a guess), a repeated field keeps its last value."""

import pytest
from helpers import assert_problem


@pytest.mark.parametrize("line", [b"m,a=1,a=2 v=1 1000000000",
                                  b"m,a=1,b=x,a=1 v=1 1000000000",
                                  b'm,a=1,a=2 s="quoted \\"string\\"" 1000000000'],
                         ids=["plain", "same value", "quoted line"])
def test_a_repeated_tag_key_is_a_400_naming_the_line_and_stores_nothing(client, line):
    response = client.post("/write?db=x", data=b"ok v=1 1000000000\n" + line)
    problem = assert_problem(response, 400)
    assert problem["errors"][0]["field"] == "line 2"
    assert "duplicate tag 'a'" in problem["errors"][0]["message"]
    assert client.get("/metrics").get_json() == []


def test_a_repeated_field_keeps_its_last_value_as_influxdb_does(client):
    assert client.post("/write?db=x", data=b"m v=1,v=2 1000000000").status_code == 204
    answer = client.post("/query", json={"metric": "m.v", "start_time": "1970-01-01T00:00:00Z",
                                         "end_time": "1970-01-02T00:00:00Z"})
    assert [p["value"] for p in answer.get_json()] == [2.0]
