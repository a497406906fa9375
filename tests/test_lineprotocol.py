"""The line-protocol parser: escapes, quoted strings, number suffixes, booleans, comments,
CRLF, and errors that name the first bad line."""

from __future__ import annotations

import pytest

from tsapi.formats.line_protocol import parse


def one(text: str):
    lines, errors = parse(text)
    assert errors == [], [str(e) for e in errors]
    assert len(lines) == 1, lines
    return lines[0]


def test_plain_line_with_tags_fields_and_timestamp():
    line = one("weather,site=north,room=2 temp=21.5,hum=40 1594512094000000000")
    assert line.measurement == "weather"
    assert line.tags == (("site", "north"), ("room", "2"))
    assert line.fields == [("temp", 21.5), ("hum", 40.0)]
    assert line.timestamp == 1594512094000000000


def test_timestamp_is_optional_and_may_be_negative():
    assert one("m v=1").timestamp is None
    assert one("m v=1 -86400").timestamp == -86400


def test_escaped_space_and_comma_in_measurement():
    assert one(r"my\ meas\,x v=1").measurement == "my meas,x"


def test_escaped_space_comma_and_equals_in_tag_keys_and_values():
    line = one(r"m,tag\ key=a\ b,k\=1=v\,2\=3 v=1")
    assert line.tags == (("tag key", "a b"), ("k=1", "v,2=3"))


def test_escaped_space_comma_and_equals_in_field_keys():
    line = one(r"m f\ 1=1,f\,2=2,f\=3=3")
    assert line.fields == [("f 1", 1.0), ("f,2", 2.0), ("f=3", 3.0)]


def test_backslash_before_an_ordinary_character_is_literal():
    assert one(r"m,path=C:\data v=1").tags == (("path", r"C:\data"),)
    # Two backslashes in a name are two backslashes, as InfluxDB's own encoders mean them.
    line = one(r"m\\x,a\\b=c\\d v=1")
    assert (line.measurement, line.tags) == (r"m\\x", ((r"a\\b", r"c\\d"),))
    assert one(r"m\\x,a\\b=c\\d v=1")[1:3] == (r"m\\x", ((r"a\\b", r"c\\d"),))


def test_quoted_strings_keep_spaces_commas_equals_and_unescape_quotes_and_backslashes():
    line = one(r'm s="a, b=c \"q\" back\\slash \n",n=2i')
    assert line.fields == [("s", 'a, b=c "q" back\\slash \\n'), ("n", 2)]


def test_quoted_string_may_hold_a_newline_and_later_lines_keep_their_numbers():
    lines, errors = parse('m s="one\ntwo" 1\nm v=oops\n')
    assert [(x.number, x.fields) for x in lines] == [(1, [("s", "one\ntwo")])]
    assert [(e.number, "'v'" in e.reason) for e in errors] == [(3, True)]


def test_empty_string_field():
    assert one('m s=""').fields == [("s", "")]


@pytest.mark.parametrize(("raw", "value"), [
    ("1i", 1), ("-9223372036854775808i", -9223372036854775808), ("0u", 0),
    ("18446744073709551615u", 18446744073709551615), ("1.5", 1.5), ("-2e3", -2000.0),
    ("7", 7.0), (".5", 0.5),
])
def test_number_suffixes_and_floats(raw, value):
    (field,) = one(f"m v={raw}").fields
    assert field == ("v", value)
    assert type(field[1]) is type(value)


@pytest.mark.parametrize("raw", ["t", "T", "true", "True", "TRUE"])
def test_true_spellings(raw):
    assert one(f"m b={raw}").fields == [("b", True)]


@pytest.mark.parametrize("raw", ["f", "F", "false", "False", "FALSE"])
def test_false_spellings(raw):
    assert one(f"m b={raw}").fields == [("b", False)]


def test_comments_blank_lines_and_crlf_are_skipped():
    lines, errors = parse("# a comment\r\n\r\n   \nm v=1 5\r\n  # indented comment\nm v=2\r\n")
    assert errors == []
    assert [(x.number, x.fields, x.timestamp) for x in lines] == [
        (4, [("v", 1.0)], 5), (6, [("v", 2.0)], None)]


def test_crlf_after_a_quoted_string_line():
    lines, errors = parse('m s="x" 9\r\nm v=1\r\n')
    assert errors == []
    assert [(x.fields, x.timestamp) for x in lines] == [([("s", "x")], 9), ([("v", 1.0)], None)]


@pytest.mark.parametrize(("text", "reason"), [
    ("m", "expected"),
    ("m v=1 2 3", "after the timestamp"),
    ("m v=abc", "invalid value"),
    ("m v=1x", "invalid value"),
    ("m v=inf", "invalid value"),
    ("m v=NaN", "invalid value"),
    ("m v=1_000", "invalid value"),
    ("m v=-1u", "negative"),
    ("m v=1.5i", "invalid value"),
    ("m v=", "no value"),
    ("m v=1 12a", "timestamp"),
    ("m,t v=1", "tag"),
    ("m,t= v=1", "tag"),
    (",t=1 v=1", "measurement"),
    ("m =1", "field"),
    ('m s="open', "unterminated"),
    ('m s="a"b', "space"),
])
def test_malformed_lines_are_reported_with_a_reason(text, reason):
    lines, errors = parse(text)
    assert lines == []
    assert len(errors) == 1
    assert errors[0].number == 1
    assert reason in errors[0].reason, errors[0].reason


def test_every_bad_line_is_named_by_number_and_good_lines_are_kept():
    lines, errors = parse("m v=1\nm v=bad\n\nm v=2\nm,x v=3\n")
    assert [x.number for x in lines] == [1, 4]
    assert [e.number for e in errors] == [2, 5]
    assert str(errors[0]).startswith("line 2: ")
    assert "m v=bad" in str(errors[0])


def test_many_lines_take_the_fast_path_with_shared_tag_sets():
    text = "".join(f"cpu,host=h{i % 3} u={i}i {i}\n" for i in range(300))
    lines, errors = parse(text)
    assert errors == []
    assert [x.fields[0][1] for x in lines] == list(range(300))
    assert {x.tags for x in lines} == {(("host", f"h{k}"),) for k in range(3)}


def test_lines_encoded_by_influxdb_client_parse_back_to_the_same_values():
    """InfluxData's own encoder, on names and strings full of characters that need escapes."""
    import random

    from influxdb_client import Point

    rng = random.Random(6)
    alphabet = "ab ,=\\\"'#xyz1é"

    def word():
        # A name ending in a backslash is ambiguous before a separator, for InfluxDB too.
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))
        return text.strip().rstrip("\\") or "k"

    encoded, expected = [], []
    for i in range(300):
        measurement = word().lstrip("#") or "m"
        tags = {word(): word() for _ in range(rng.randint(0, 3))}
        fields = {}
        for _ in range(rng.randint(1, 4)):
            fields[word()] = rng.choice([rng.uniform(-1e6, 1e6), rng.randint(-2**40, 2**40),
                                         rng.random() < 0.5, word() + "\\\"\n"])
        point = Point(measurement).time(i * 1000)
        for key, value in tags.items():
            point = point.tag(key, value)
        for key, value in fields.items():
            point = point.field(key, value)
        encoded.append(point.to_line_protocol())
        expected.append((measurement, sorted(tags.items()), sorted(fields.items()), i * 1000))
    lines, errors = parse("\n".join(encoded))
    assert errors == [], [str(e) for e in errors[:3]]
    got = [(x.measurement, sorted(x.tags), sorted(x.fields), x.timestamp) for x in lines]
    assert got == expected
