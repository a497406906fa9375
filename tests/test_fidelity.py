"""Data fidelity through the HTTP API: extremes round-trip exactly; hostile input is refused
with a clear 4xx and stores nothing. (Basic cases live in test_ingest.py.)"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from helpers import assert_problem, error_fields, ingest, point, post_raw, query, stored_metrics

from tsapi.formats.validation import MAX_STRING_VALUE
from tsapi.store.writer import SMALL_BATCH

EARLIEST = "0001-01-01T00:00:00Z"
LATEST = "9999-12-31T23:59:59.999999Z"  # query ranges end here, exclusive


def everything(client, metric):
    return query(client, metric=metric, start_time=EARLIEST, end_time=LATEST)


def nothing_stored(client) -> bool:
    return stored_metrics(client) == []


def filler(n, metric):
    """n ordinary points, to push a batch past SMALL_BATCH onto the COPY path."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return [point((start + timedelta(seconds=i)).isoformat(), metric, 0.5) for i in range(n)]


PATHS = {"insert": 0, "copy": SMALL_BATCH + 1}  # the writer's two ways into the table


# --- times -----------------------------------------------------------------------------------

TIMES = {
    "microseconds": ("2024-02-29T23:59:59.999999Z", datetime(2024, 2, 29, 23, 59, 59, 999999)),
    "plus-14h": ("2024-01-01T13:59:59.000001+14:00", datetime(2023, 12, 31, 23, 59, 59, 1)),
    "minus-12h": ("2023-12-31T12:00:00.5-12:00", datetime(2024, 1, 1, 0, 0, 0, 500000)),
    "plus-5h45": ("2024-06-01T05:45:00+05:45", datetime(2024, 6, 1)),
    "epoch": ("1970-01-01T00:00:00Z", datetime(1970, 1, 1)),
    "before-epoch": ("1969-12-31T23:59:59.999999Z", datetime(1969, 12, 31, 23, 59, 59, 999999)),
    "year-1900": ("1900-01-01T00:00:00.000001+01:00", datetime(1899, 12, 31, 23, 0, 0, 1)),
    "year-1": (EARLIEST, datetime(1, 1, 1)),
    "negative-unix": (-86_400.25, datetime(1969, 12, 30, 23, 59, 59, 750000)),
    "year-9999": ("9999-12-31T23:59:59.999998Z", datetime(9999, 12, 31, 23, 59, 59, 999998)),
    "year-9999-offset": ("9999-12-31T23:00:00.000001+01:00", datetime(9999, 12, 31, 22, 0, 0, 1)),
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("sent", "instant"), TIMES.values(), ids=TIMES.keys())
def test_extreme_times_round_trip_to_the_microsecond(client, sent, instant, path):
    ingest(client, [point(sent, "t", 1.0)] + filler(PATHS[path], "other"))
    rows = everything(client, "t")
    assert [datetime.fromisoformat(r["time"]) for r in rows] == [instant.replace(tzinfo=UTC)]


@pytest.mark.parametrize("sent", ["9999-12-31T23:00:00-01:00", "0001-01-01T00:30:00+01:00",
                                  "10000-01-01T00:00:00Z", 253402300800, -62135596801],
                         ids=["after-9999-in-utc", "before-year-1-in-utc", "year-10000",
                              "unix-after-9999", "unix-before-year-1"])
def test_times_beyond_the_supported_range_are_refused(client, sent):
    problem = assert_problem(client.post("/ingest", json={"data": [point(sent, "t", 1.0)]}), 422)
    assert error_fields(problem) == ["data[0].time"]
    assert nothing_stored(client)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_unix_time_is_refused(client, literal):
    body = '{"data": [{"time": TIME, "metric": "t", "value": 1}]}'.replace("TIME", literal)
    problem = assert_problem(post_raw(client, "/ingest", body), 422)
    assert error_fields(problem) == ["data[0].time"]
    assert nothing_stored(client)


# --- numbers ---------------------------------------------------------------------------------

FLOATS = [1.7976931348623157e308, -1.7976931348623157e308, 5e-324, -5e-324,
          2.2250738585072014e-308, -0.0, 0.1, 1 / 3, 9007199254740993.0]


@pytest.mark.parametrize("path", PATHS)
def test_float64_extremes_round_trip_bit_for_bit(client, path):
    t0 = datetime(2020, 1, 1, tzinfo=UTC)
    sent = [point((t0 + timedelta(seconds=i)).isoformat(), "f", v) for i, v in enumerate(FLOATS)]
    ingest(client, sent + filler(PATHS[path], "other"))
    response = client.post("/query", json={"metric": "f", "start_time": EARLIEST,
                                           "end_time": LATEST})
    got = [r["value"] for r in orjson.loads(response.data)]
    assert [v.hex() for v in got] == [v.hex() for v in FLOATS]  # -0.0 keeps its sign
    assert math.copysign(1, got[FLOATS.index(-0.0)]) == -1


def test_float_max_written_as_an_integer_literal_is_refused_not_rounded(client):
    body = f'{{"data": [{{"time": 0, "metric": "f", "value": {int(1.7976931348623157e308)}}}]}}'
    assert_problem(post_raw(client, "/ingest", body), 422)
    assert nothing_stored(client)


# --- strings ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
def test_hostile_but_legal_strings_round_trip_exactly(client, path):
    values = ["tab\there", "new\nline\r\n", "back\\slash\\N", "\\.", 'quote " and \\"',
              "emoji 😀 and \u2028 and \ufeff", "x" * MAX_STRING_VALUE, "",
              # what array syntax would read otherwise: a null, elements, spaces, quotes
              "NULL", "null", "{a,b}", ",", "  padded  ", "it's"]
    t0 = datetime(2020, 1, 1, tzinfo=UTC)
    ingest(client, [point((t0 + timedelta(seconds=i)).isoformat(), "s", v, k='a"b\\c=d,e')
                    for i, v in enumerate(values)] + [
        point(p["time"], "s_other", "pad") for p in filler(PATHS[path], "x")])
    assert [r["value"] for r in everything(client, "s")] == values


@pytest.mark.parametrize(("bad", "field"), [
    (point(0, "s", "x" * (MAX_STRING_VALUE + 1)), "value"),
    (point(0, "s", "x" * 1_048_576), "value"),
    (point(0, "m" * 1_048_576, 1.0), "metric"),
    (point(0, "m", 1.0, k="v" * 1_048_576), "tags"),
    (point(0, "m", 1.0, **{"k" * 1_048_576: "v"}), "tags"),
], ids=["64KiB+1-value", "1MB-value", "1MB-metric", "1MB-tag-value", "1MB-tag-key"])
def test_oversized_strings_are_refused(client, bad, field):
    problem = assert_problem(client.post("/ingest", json={"data": [bad]}), 422)
    assert all(f.startswith(f"data[0].{field}") for f in error_fields(problem)), problem
    assert nothing_stored(client)


CONTROL = ["\x00", "\x01", "\n", "\r", "\t", "\x1b", "\x7f"]


@pytest.mark.parametrize("char", CONTROL, ids=[f"U+{ord(c):04X}" for c in CONTROL])
@pytest.mark.parametrize("where", ["metric", "tag-key", "tag-value"])
def test_control_characters_in_names_and_tags_are_refused(client, char, where):
    name = f"bad{char}name"
    bad = {"metric": point(0, name, 1.0), "tag-key": point(0, "m", 1.0, **{name: "v"}),
           "tag-value": point(0, "m", 1.0, k=name)}[where]
    problem = assert_problem(client.post("/ingest", json={"data": [bad]}), 422)
    assert error_fields(problem), problem
    assert nothing_stored(client)


@pytest.mark.parametrize("metric", ["", " ", " lead", "trail ", "\t"],
                         ids=["empty", "space", "leading-space", "trailing-space", "tab"])
def test_blank_or_padded_metric_names_are_refused(client, metric):
    problem = assert_problem(client.post("/ingest", json={"data": [point(0, metric, 1)]}), 422)
    assert error_fields(problem) == ["data[0].metric"]
    assert nothing_stored(client)


@pytest.mark.parametrize("where", ["metric", "value", "tag"])
def test_lone_surrogate_escapes_are_refused(client, where):
    body = {"metric": '{"data": [{"time": 0, "metric": "a\\ud800b", "value": 1}]}',
            "value": '{"data": [{"time": 0, "metric": "m", "value": "\\udfff"}]}',
            "tag": '{"data": [{"time": 0, "metric": "m", "value": 1, "tags": {"k": "\\ud83d"}}]}',
            }[where]
    problem = assert_problem(post_raw(client, "/ingest", body), 400)
    assert "surrogate" in problem["detail"]
    assert nothing_stored(client)


def test_a_surrogate_pair_escape_is_one_character_and_round_trips(client):
    body = '{"data": [{"time": 0, "metric": "m\\ud83d\\ude00", "value": "\\ud83d\\ude00"}]}'
    assert post_raw(client, "/ingest", body).status_code == 200
    assert everything(client, "m😀") == [{"time": "1970-01-01T00:00:00+00:00", "value": "😀"}]


# --- booleans posing as numbers ----------------------------------------------------------------


@pytest.mark.parametrize("literal", ["true", "false"])
@pytest.mark.parametrize("field", ["value", "time"])
def test_json_booleans_are_not_numbers(client, literal, field):
    p = {"time": "0", "metric": "m", "value": "1"}
    p = {**p, field: "BOOL"}
    body = orjson.dumps({"data": [{"time": 0, "metric": "m", "value": 1.0}, p]}).decode()
    body = body.replace('"BOOL"', literal).replace('"time":"0"', '"time":0')
    body = body.replace('"value":"1"', '"value":1')
    problem = assert_problem(post_raw(client, "/ingest", body), 422)
    assert error_fields(problem) == [f"data[1].{field}"]
    assert nothing_stored(client)


# --- repeated keys ------------------------------------------------------------------------------

REPEATED = {
    "value": '{"data": [{"time": 0, "metric": "m", "value": 1, "value": 2}]}',
    "metric": '{"data": [{"time": 0, "metric": "a", "value": 1, "metric": "b"}]}',
    "time": '{"data": [{"time": 0, "time": 60, "metric": "m", "value": 1}]}',
    "tag": '{"data": [{"time": 0, "metric": "m", "value": 1, "tags": {"k": "a", "k": "b"}}]}',
    "data": '{"data": [{"time": 0, "metric": "m", "value": 1}], "data": []}',
    "space-before-colon": '{"data": [{"time": 0, "metric": "m", "value" : 1, "value" : 2}]}',
    "escaped-key": '{"data": [{"time": 0, "metric": "m", "value": 1, "v\\u0061lue": 2}]}',
    "pretty": '{\n  "data": [\n    {\n      "time": 0,\n      "metric": "m",\n'
              '      "value": 1,\n      "value": 2\n    }\n  ]\n}',
}


@pytest.mark.parametrize("body", REPEATED.values(), ids=REPEATED.keys())
def test_an_object_that_repeats_a_key_is_refused(client, body):
    problem = assert_problem(post_raw(client, "/ingest", body), 422)
    assert "repeats the key" in problem["detail"]
    assert nothing_stored(client)


def test_repeated_key_in_a_large_batch_is_refused(client):
    points = filler(SMALL_BATCH * 2, "m")
    body = orjson.dumps({"data": points}).replace(b'"value":0.5}', b'"value":0.5,"value":1}', 1)
    assert_problem(post_raw(client, "/ingest", body), 422)
    assert nothing_stored(client)


def test_repeated_key_in_an_ndjson_line_is_refused(client):
    lines = b'{"time": 0, "metric": "m", "value": 1}\n{"time": 1, "metric": "m", "value": 1, ' \
            b'"value": 2}\n'
    problem = assert_problem(client.post("/ingest", data=lines,
                                         content_type="application/x-ndjson"), 422)
    assert "repeats the key" in problem["detail"]
    assert nothing_stored(client)


def test_strings_that_look_like_keys_are_not_mistaken_for_repeats(client):
    # `\":` inside strings, and keys named like point fields inside tags, are all legal.
    data = [{"time": 0, "metric": "m", "value": 'say "value": 1, "value": 2',
             "tags": {"value": "v", "time": "t", 'a":': '":'}}]
    ingest(client, data)
    assert [r["value"] for r in everything(client, "m")] == ['say "value": 1, "value": 2']


# --- nesting ----------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [2_000, 10_000, 100_000])
@pytest.mark.parametrize("where", ["value", "body"])
def test_deeply_nested_json_is_refused(client, depth, where):
    nested = "[" * depth + "]" * depth
    if where == "value":
        body = '{"data": [{"time": 0, "metric": "m", "value": ' + nested + "}]}"
    else:
        body = nested
    problem = assert_problem(post_raw(client, "/ingest", body), 400)
    assert "nested too deeply" in problem["detail"]
    assert nothing_stored(client)


def test_deeply_nested_ndjson_line_is_refused(client):
    lines = b'{"time": 0, "metric": "m", "value": 1}\n' + b"[" * 10_000 + b"]" * 10_000
    problem = assert_problem(client.post("/ingest", data=lines,
                                         content_type="application/x-ndjson"), 422)
    assert error_fields(problem) == ["line 2"]
    assert nothing_stored(client)


def test_moderately_nested_value_is_an_invalid_point(client):
    body = '{"data": [{"time": 0, "metric": "m", "value": ' + "[" * 500 + "]" * 500 + "}]}"
    problem = assert_problem(post_raw(client, "/ingest", body), 422)
    assert error_fields(problem) == ["data[0].value"]
    assert nothing_stored(client)
