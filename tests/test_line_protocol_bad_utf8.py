"""A line of line protocol holding a byte that is not UTF-8 is a bad line like any other:
named in `errors` with InfluxDB's `code` and `message`, the others stored with
accept_partial. It was a 400 for the whole body with no `errors` list. (InfluxDB 1.6
stores such bytes as they come; tsapi stores text, and cannot.)"""

from __future__ import annotations

import gzip

import pytest
from helpers import assert_problem, stored_series

from tsapi.services.line_protocol_write import _text_pieces

GOOD = b"m v=1 1594512094000000000\n"


def write(client, body: bytes, path: str = "/write?db=d", **headers):
    return client.post(path, data=body, headers=headers,
                       content_type="text/plain; charset=utf-8")


@pytest.mark.parametrize("line", [
    b"m\xff v=1", b"m,k\xff=v v=1", b"m,k=v\xc3 v=1", b"m f\xe9=1", b'm s="caf\xe9"',
    b'm s="one\nand \xff two"', b"m v=1 15945\xff", b"\xed\xa0\x80 v=1",
], ids=["measurement", "tag-key", "tag-value", "field-key", "string", "string-of-lines",
        "timestamp", "encoded-surrogate"])
@pytest.mark.parametrize("path", ["/write?db=d", "/api/v2/write?bucket=b"])
def test_a_line_with_a_byte_that_is_not_utf8_is_a_bad_line(app, client, line, path):
    problem = assert_problem(write(client, GOOD + line + b"\n" + GOOD, path), 400)
    assert problem["errors"] == [{"field": "line 2", "message": "is not valid UTF-8",
                                  "line": 2}], problem
    assert problem["code"] == "invalid"
    assert problem["message"] == problem["detail"]
    assert "line 2: is not valid UTF-8" in problem["detail"]
    assert stored_series(app) == set()


def test_the_bad_byte_is_shown_as_a_replacement_character(client):
    problem = assert_problem(write(client, b"caf\xe9 v=1\n"), 400)
    assert "'caf\ufffd v=1'" in problem["detail"], problem


def test_with_accept_partial_the_other_lines_are_stored(app, client):
    body = b"a v=1\nb\xff v=2\nc v=3\n"
    problem = assert_problem(write(client, body, "/write?db=d&accept_partial=true"), 400)
    assert [e["line"] for e in problem["errors"]] == [2]
    assert "the other 2 point(s) were stored" in problem["detail"]
    assert stored_series(app) == {("a.v", ()), ("c.v", ())}


def test_bad_lines_of_every_kind_are_listed_together(client):
    problem = assert_problem(write(client, b"a v=oops\nb\xff v=2\nc v=3\n"), 400)
    assert [(e["line"], e["message"]) for e in problem["errors"]] == [
        (1, "field 'v' has an invalid value 'oops'"), (2, "is not valid UTF-8")]


def test_a_comment_holding_such_a_byte_is_ignored_as_comments_are(app, client):
    response = write(client, b"# caf\xe9\n" + GOOD)
    assert response.status_code == 204, response.get_json()
    assert stored_series(app) == {("m.v", ())}


def test_gzip_bodies_name_the_line_too(client):
    problem = assert_problem(client.post(
        "/write?db=d", data=gzip.compress(GOOD * 3 + b"m\xff v=1\n"),
        headers={"Content-Encoding": "gzip"}), 400)
    assert [e["line"] for e in problem["errors"]] == [4]


def test_decoding_goes_on_after_the_byte_across_chunks():
    # A character split across chunks after a bad byte is still read whole.
    pieces = [b"m v=1\nm\xff", b" v=2\nn\xc3", b"\xa9 v=3\n", b"o\xc3"]
    assert "".join(_text_pieces(pieces)) == "m v=1\nm\udcff v=2\nn\xe9 v=3\no\udcc3"
