"""A line that repeats a key is read as InfluxDB 1.x reads it: a repeated tag is refused
(which value names the series would be a guess), a repeated field keeps its last value."""

import sys

import pytest
from helpers import assert_problem

from tsapi.formats.validation import MAX_TAGS
from tsapi.services.line_protocol_write import line_protocol_batch


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


def _calls_to_read(line: str) -> int:
    """Python and C calls made reading the line: a measure of work that does not depend on
    the machine's speed."""
    calls = 0

    def count(frame, event, arg):
        nonlocal calls
        calls += event in ("call", "c_call")

    sys.setprofile(count)
    try:
        _, _, errors = line_protocol_batch(line, "s")
    finally:
        sys.setprofile(None)
    assert errors and f"more than {MAX_TAGS} tags" in errors[0].reason
    return calls


@pytest.mark.parametrize("fields", ["v=1", 's="quoted \\"string\\""'], ids=["plain", "quoted"])
def test_looking_for_a_repeated_tag_grows_linearly_with_the_tags(fields):
    # Tags past the limit are refused only after the line is read (the limit applies to the
    # line's tags and the bucket tag together): comparing each tag with every earlier one
    # made a 170 KB line of 20,000 tags cost ~10 s of CPU, with the GIL held.
    def line(n):
        return "m," + ",".join(f"t{i}=v" for i in range(n)) + f" {fields} 1"

    small, large = _calls_to_read(line(1000)), _calls_to_read(line(4000))
    assert large < 6 * small, (small, large)
