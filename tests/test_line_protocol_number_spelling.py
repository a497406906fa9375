"""Line protocol numbers are ASCII, without blanks around them: Python's float() and int() also
read other scripts' digits and strip Unicode and ASCII whitespace, which InfluxDB refuses
("invalid number"); a value or timestamp so spelled is a 400 naming the line, not a point."""

from __future__ import annotations

import pytest
from helpers import assert_problem

from tsapi.formats.line_protocol_values import (
    BadLine,
    field_value,
    general_field_value,
    parse_timestamp,
)

# Arabic-Indic, fullwidth and Devanagari digits, alone or beside ASCII ones; blanks that
# float() and int() strip (vertical tab, form feed, no-break and ideographic spaces).
NOT_ASCII_NUMBERS = ["١٢٣", "1١", "١1", "１", "１1", "1１", "१", "\xa01", "\u30001", "1\u3000",
                     "\x0b1", "1\x0b", "\x0c1", "1\x0c", "\x1c1", "1\x1f"]


@pytest.mark.parametrize("read", [field_value, general_field_value])
@pytest.mark.parametrize("raw", NOT_ASCII_NUMBERS + [f"{n}i" for n in NOT_ASCII_NUMBERS]
                         + [f"{n}u" for n in NOT_ASCII_NUMBERS])
def test_a_field_value_in_other_digits_or_with_blanks_is_refused(read, raw):
    with pytest.raises(BadLine, match="invalid value"):
        read(raw, "v")


@pytest.mark.parametrize("raw", NOT_ASCII_NUMBERS)
def test_a_timestamp_in_other_digits_or_with_blanks_is_refused(raw):
    with pytest.raises(BadLine, match="invalid timestamp"):
        parse_timestamp(raw)


@pytest.mark.parametrize("raw", ["1", "-0", "1.", ".5", "1e5", "-1.5E-3", "12i", "7u", "-3i"])
def test_ascii_numbers_are_still_read(raw):
    assert field_value(raw, "v") == general_field_value(raw, "v")


@pytest.mark.parametrize("line", ["m v=١٢٣ 1000000000", "m v=１ 1000000000",
                                  "m v=1\u3000 1000000000", "m v=1\x0b 1000000000",
                                  "m v=１i 1000000000", "m v=1 １", "m v=1 \x0c1000000000"],
                         ids=["arabic", "fullwidth", "ideographic space", "vertical tab",
                              "fullwidth integer", "fullwidth time", "form feed time"])
def test_such_a_line_is_a_400_naming_it_and_stores_nothing(client, line):
    response = client.post("/write?db=x", data=("ok v=1 1000000000\n" + line).encode())
    problem = assert_problem(response, 400)
    assert problem["errors"][0]["field"] == "line 2"
    assert client.get("/metrics").get_json() == []


def test_crlf_line_ends_are_still_read(client):
    # The reader takes the CR off a line's end: it never reaches a number as a blank.
    response = client.post("/write?db=x", data=b"m v=1\r\nm w=2i 1000000000\r\nm t=t\r\n")
    assert response.status_code == 204, response.get_data()
    assert sorted(m["name"] for m in client.get("/metrics").get_json()) == ["m.t", "m.v", "m.w"]
