"""All or nothing under every framing: a body that does not arrive whole stores nothing.

Against a real gunicorn over a raw socket: a body shorter than its Content-Length (the client
half-closes after half of it), a chunked body cut before its last chunk, a chunk size that is
not hexadecimal. Before, a CSV so cut answered 200 "ingested 5" of 10 rows, and line
protocol 204 with 5 of 10.
"""

import gzip

import pytest
from conftest import reset_state
from gunicorn_server import GunicornServer
from helpers import points_stored


@pytest.fixture(scope="module")
def server(gunicorn_database, redis_server, tmp_path_factory):
    with GunicornServer(gunicorn_database, redis_server.url(),
                        tmp_path_factory.mktemp("framing"), workers=1) as server:
        yield server


@pytest.fixture
def database(server, gunicorn_database, redis_server):
    reset_state(gunicorn_database, redis_server.url())
    return gunicorn_database


def _ten(kind: str) -> tuple[str, str, bytes]:
    """(path, content type, body) of ten points, one a line (JSON: one a ~line too)."""
    if kind == "csv":
        rows = b"".join(b"2024-01-01T00:00:%02dZ,m,%d\n" % (i, i) for i in range(10))
        return "/ingest", "text/csv", b"time,metric,value\n" + rows
    if kind == "line-protocol":
        rows = b"".join(b"m v=%d %d\n" % (i, 1_700_000_000 + i) for i in range(10))
        return "/write?db=d&precision=s", "text/plain", rows
    if kind == "ndjson":
        rows = b"".join(b'{"time": %d, "metric": "m", "value": %d}\n' % (i, i) for i in range(10))
        return "/ingest", "application/x-ndjson", rows
    rows = b",\n".join(b'{"time": %d, "metric": "m", "value": %d}' % (i, i) for i in range(10))
    return "/ingest", "application/json", b'{"data": [\n' + rows + b"\n]}"


def _status(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer.split(b" ", 2)[1])


KINDS = ["csv", "line-protocol", "ndjson", "json"]


def _cut_at_a_line(body: bytes) -> bytes:
    """The first half of body, ending at a line end: a prefix that parses on its own."""
    return body[:body.index(b"\n", len(body) // 2) + 1]


@pytest.mark.parametrize("kind", KINDS)
def test_a_body_shorter_than_its_content_length_stores_nothing(server, database, kind):
    path, content_type, body = _ten(kind)
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    answer = server.raw_exchange(head + _cut_at_a_line(body))
    assert _status(answer) == 400, answer
    assert b"nothing was stored" in answer
    assert points_stored(database) == 0


@pytest.mark.parametrize("kind", KINDS)
def test_a_chunked_body_cut_before_its_last_chunk_stores_nothing(server, database, kind):
    path, content_type, body = _ten(kind)
    prefix = _cut_at_a_line(body)
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").encode()
    chunk = b"%x\r\n%s\r\n" % (len(prefix), prefix)  # and no terminating 0-size chunk
    answer = server.raw_exchange(head + chunk)
    assert _status(answer) == 400, answer
    assert points_stored(database) == 0


def test_a_gzip_body_cut_short_stores_nothing(server, database):
    path, content_type, body = _ten("csv")
    packed = gzip.compress(body)
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
            f"Content-Encoding: gzip\r\nContent-Length: {len(packed)}\r\n\r\n").encode()
    answer = server.raw_exchange(head + packed[:len(packed) // 2])
    assert _status(answer) == 400, answer
    assert points_stored(database) == 0


@pytest.mark.parametrize("kind", KINDS)
def test_a_whole_body_is_still_stored(server, database, kind):
    # The same exchange, not cut: all ten points (the checks above can tell the difference).
    path, content_type, body = _ten(kind)
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    assert _status(server.raw_exchange(head + body)) in (200, 204)
    assert points_stored(database) == 10


def test_a_chunk_size_that_is_not_hexadecimal_stores_nothing(server, database):
    path, content_type, body = _ten("line-protocol")
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").encode()
    chunks = b"%x\r\n%s\r\nzz\r\n%s\r\n0\r\n\r\n" % (len(body), body, body)
    answer = server.raw_exchange(head + chunks)
    assert _status(answer) == 400, answer
    assert points_stored(database) == 0
