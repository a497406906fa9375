"""POST /query reads its JSON document as /ingest reads a batch: a repeated key is a 422
naming it, the Content-Type does not decide whether the body is read, and the body is
bounded before it is parsed."""

import gzip

import pytest
from helpers import assert_problem, error_fields, ingest, point, post_raw

DAY = '"start_time": "2024-01-01T00:00:00Z", "end_time": "2024-01-02T00:00:00Z"'


@pytest.fixture
def stored(client):
    ingest(client, [point("2024-01-01T01:00:00Z", "a", 1.0, room="x"),
                    point("2024-01-01T01:00:00Z", "b", 2.0, room="y")])
    return client


@pytest.mark.parametrize(("fields", "key"), [
    ('"metric": "a", "metric": "b"', "metric"),
    ('"metric": "a", "tags": {"room": "x", "room": "y"}', "room"),
    ('"metric": "a", "aggregation": "sum", "aggregation": "max"', "aggregation"),
], ids=["metric", "tag", "aggregation"])
def test_a_repeated_key_in_a_query_is_a_422_naming_it(stored, fields, key):
    # The last value won: {"metric": "a", "metric": "b"} answered b's points.
    problem = assert_problem(post_raw(stored, "/query", "{" + fields + ", " + DAY + "}"), 422)
    assert error_fields(problem) == ["body"]
    assert f"repeats the key '{key}'" in problem["detail"]


@pytest.mark.parametrize("content_type", ["text/plain", "text/plain; charset=utf-8",
                                          "application/octet-stream"])
def test_a_json_query_sent_as_another_type_is_read_as_json(stored, content_type):
    # It was not read at all: a 422 saying start_time and end_time were missing.
    response = stored.post("/query", data="{" + '"metric": "a", ' + DAY + "}",
                           content_type=content_type)
    assert response.status_code == 200, response.get_json()
    assert [r["value"] for r in response.get_json()] == [1.0]


def test_a_query_that_is_not_json_is_a_400_naming_the_body(stored):
    problem = assert_problem(post_raw(stored, "/query", "{metric: a}"), 400)
    assert error_fields(problem) == ["body"]


def test_a_query_body_over_a_mebibyte_is_refused_before_it_is_read(stored):
    body = "{" + '"metric": "a", ' + DAY + ', "pad": "' + "x" * (1024 * 1024) + '"}'
    problem = assert_problem(post_raw(stored, "/query", body), 413)
    assert error_fields(problem) == ["body"]


def test_a_long_query_within_the_bound_is_answered(stored):
    rooms = ", ".join(f'"room-{n:05}-{"r" * 40}"' for n in range(999))
    body = "{" + '"metric": "a", "tags": {"room": [' + rooms + ', "x"]}, ' + DAY + "}"
    assert len(body) > 50_000
    response = post_raw(stored, "/query", body)
    assert response.status_code == 200, response.get_json()
    assert [r["value"] for r in response.get_json()] == [1.0]


# --- lone surrogate escapes quoted by an error message -----------------------------------------
# orjson cannot write a lone surrogate: a message quoting one was a 500.


def test_an_unknown_query_field_named_by_a_lone_surrogate_is_a_422(stored):
    problem = assert_problem(post_raw(stored, "/query", '{"metric": "a", "\\ud800": 1, '
                                      + DAY + "}"), 422)
    assert error_fields(problem) == ["\\ud800"]


@pytest.mark.parametrize(("path", "body", "content_type"), [
    ("/query", '{"metric": "a", "\\ud800": 1, "\\ud800": 2, ' + DAY + "}", "application/json"),
    ("/ingest", '{"data": [{"time": 0, "metric": "m", "value": 1, "\\udfff": 1, '
     '"\\udfff": 2}]}', "application/json"),
    ("/ingest", '{"time": 0, "metric": "m", "value": 1, "\\udfff": 1, "\\udfff": 2}\n',
     "application/x-ndjson"),
], ids=["query", "ingest", "ndjson"])
def test_a_repeated_key_that_is_a_lone_surrogate_is_a_422_quoting_its_escape(
        stored, path, body, content_type):
    response = stored.post(path, data=body.encode(), content_type=content_type)
    problem = assert_problem(response, 422)
    assert "repeats the key '\\ud" in problem["detail"] or \
        "repeats the key '\\ud" in str(problem["errors"]), problem


@pytest.mark.parametrize("body", ["[]", '"x"', "null", "1", "[{}]"])
def test_a_query_that_is_no_object_is_a_422_naming_the_body(stored, body):
    # Named "_schema", marshmallow's name for the whole object, which no client sent.
    problem = assert_problem(post_raw(stored, "/query", body), 422)
    assert error_fields(problem) == ["body"]


def test_the_bounds_of_a_range_are_named_as_iso_dates(stored):
    # "1-01-03": strftime does not pad year 1 on every platform.
    body = ('{"metric": "a", "aggregation": "sum", "interval": "1d", '
            '"start_time": "0001-01-01T00:00:00Z", "end_time": "0002-01-01T00:00:00Z"}')
    problem = assert_problem(post_raw(stored, "/query", body), 422)
    assert "must lie between 0001-01-03 and 9999-12-29" in problem["detail"], problem


def test_a_gzip_query_is_read_as_ingest_reads_one(stored):
    # Its bytes were parsed as they came: a 400 saying they were not UTF-8.
    body = gzip.compress(("{" + '"metric": "a", ' + DAY + "}").encode())
    response = stored.post("/query", data=body, content_type="application/json",
                           headers={"Content-Encoding": "gzip"})
    assert response.status_code == 200, response.get_json()
    assert [r["value"] for r in response.get_json()] == [1.0]


def test_a_gzip_query_is_bounded_once_decompressed(stored):
    body = gzip.compress(("{" + '"metric": "a", ' + DAY + ', "pad": "' + "x" * (2 << 20)
                          + '"}').encode())
    problem = assert_problem(stored.post("/query", data=body, content_type="application/json",
                                         headers={"Content-Encoding": "gzip"}), 413)
    assert "is at most 1048576 bytes" in problem["detail"]
    assert error_fields(problem) == ["body"]  # it named no field
    assert len(body) < 100_000


@pytest.mark.parametrize("body", [b"not gzip", gzip.compress(b'{"metric": "a"}')[:-4]],
                         ids=["damaged", "truncated"])
def test_a_query_that_is_not_gzip_as_it_says_is_a_400_naming_the_body(stored, body):
    # It was a 400 naming no field.
    problem = assert_problem(stored.post("/query", data=body, content_type="application/json",
                                         headers={"Content-Encoding": "gzip"}), 400)
    assert error_fields(problem) == ["body"]


def test_a_query_in_an_encoding_not_read_is_a_415(stored):
    assert_problem(stored.post("/query", data=b"\x00\x01", content_type="application/json",
                               headers={"Content-Encoding": "br"}), 415)
