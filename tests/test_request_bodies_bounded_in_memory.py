"""Small requests must not make a worker allocate gigabytes: limits hold while a body streams.

Measured as the growth of the (only) worker's peak RSS while it handles one request, against
a real gunicorn at the default limits (100,000 points, 64 MB decompressed). The bound is
200 MB per request (README, "Limits"); before, these bodies cost 0.4 to 2.2 GB each.
"""

import contextlib
import gzip
import socket

import orjson
import pytest
from conftest import reset_state
from gunicorn_server import GunicornServer
from helpers import points_stored

MAX_GROWTH_MB = 200
DECOMPRESSED = 32 * 1024 * 1024  # half the decompressed-size limit: only the point limit stops it


@pytest.fixture(scope="module")
def server(gunicorn_database, redis_server, tmp_path_factory):
    reset_state(gunicorn_database, redis_server.url())
    with GunicornServer(gunicorn_database, redis_server.url(),
                        tmp_path_factory.mktemp("bodies"), workers=1) as server:
        server.request("GET", "/metrics")  # import and warm up what a request touches
        yield server


def _repeat(line: bytes, size: int = DECOMPRESSED) -> bytes:
    return line * (size // len(line))


def _post(server, path: str, body: bytes, content_type: str, gzipped: bool = True):
    headers = {"Content-Type": content_type}
    if gzipped:
        body = gzip.compress(body, compresslevel=6)
        headers["Content-Encoding"] = "gzip"
    before = server.reset_peaks()
    status, _, answer = server.request("POST", path, body=body, headers=headers, timeout=120)
    return status, answer, server.peak_growth_mb(before)


BOMBS = {
    # 32 MB of line protocol in a ~50 KB gzip body: 413 after 50 s and +2.2 GB before.
    "line-protocol": ("/api/v2/write?bucket=b", "text/plain",
                      _repeat(b"cpu,host=a usage=1 1700000000000000000\n")),
    "csv": ("/ingest", "text/csv",
            b"time,metric,value,room\n" + _repeat(b"2024-01-01T00:00:00Z,m,1,kitchen\n")),
    "ndjson": ("/ingest", "application/x-ndjson",
               _repeat(b'{"time": 0, "metric": "m", "value": 1}\n')),
    # 63 MB of JSON (1.7 million points): +603 MB before.
    "json": ("/ingest", "application/json",
             b'{"data": [' + _repeat(b'{"time": 0, "metric": "m", "value": 1}, ', 63 * 1024 * 1024)
             + b'{"time": 0, "metric": "m", "value": 1}]}'),
}


@pytest.mark.parametrize("name", BOMBS)
def test_a_body_over_the_point_limit_is_refused_as_it_streams(server, gunicorn_database, name):
    path, content_type, body = BOMBS[name]
    status, answer, growth = _post(server, path, body, content_type)
    assert status == 413, answer[:500]
    assert growth <= MAX_GROWTH_MB, f"worker peak RSS grew {growth:.0f} MB"
    assert points_stored(gunicorn_database) == 0


def test_a_body_over_the_decompressed_limit_is_refused_as_it_streams(server, gunicorn_database):
    # Comment lines only: no point limit would ever stop it.
    body = _repeat(b"#" * 99 + b"\n", 65 * 1024 * 1024)
    status, answer, growth = _post(server, "/write?db=d", body, "text/plain")
    assert status == 413, answer[:500]
    assert b"Decompressed body exceeds" in answer
    assert growth <= MAX_GROWTH_MB, f"worker peak RSS grew {growth:.0f} MB"


def test_points_with_deeply_nested_unknown_members_are_refused(server, gunicorn_database):
    # 5,000 points, each with a 1,000-deep unknown member (10 MB): +412 MB and 200 before.
    nested = b"[" * 1000 + b"]" * 1000
    point = b'{"time": 0, "metric": "m", "value": 1, "extra": ' + nested + b"}"
    body = b'{"data": [' + b", ".join([point] * 5000) + b"]}"
    status, answer, growth = _post(server, "/ingest", body, "application/json", gzipped=False)
    assert status == 400, answer[:500]
    assert b"deep" in answer
    assert growth <= MAX_GROWTH_MB, f"worker peak RSS grew {growth:.0f} MB"
    assert points_stored(gunicorn_database) == 0


# InfluxQL's POST /query form: werkzeug reads a form whole into memory on the first parameter
# asked for, before the 16,384-character statement limit could be checked. 60 MB of one
# junk parameter beside a valid `q` was read and answered 200.
FORM_HEAD = (b"POST /query HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
             b"Content-Type: application/x-www-form-urlencoded\r\n")
FORM_START = b"q=SHOW+DATABASES&db=d&junk="


def _refused_midway(server, data: bytes) -> bytes:
    """Send `data`, which a server that refuses early stops reading (the send then fails),
    and return what it answered."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=120) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        received = bytearray()
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
        return bytes(received)


def _status_and_body(answer: bytes) -> tuple[int, bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_an_influxql_form_body_over_the_limit_is_refused_unread(server):
    size = 60 * 1024 * 1024
    before = server.reset_peaks()
    answer = _refused_midway(server, FORM_HEAD + b"Content-Length: %d\r\n\r\n" % size
                             + FORM_START + b"x" * (size - len(FORM_START)))
    growth = server.peak_growth_mb(before)
    assert _status_and_body(answer) == (413, b'{"error":"request body too large: an InfluxQL '
                                             b'form body (q, db, epoch, ...) is at most '
                                             b'262144 bytes"}'), answer[:500]
    assert growth <= 20, f"worker peak RSS grew {growth:.0f} MB"


def test_a_chunked_influxql_form_body_is_read_only_up_to_the_limit(server):
    pieces = [FORM_START] + [b"x" * 65536] * 64
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    answer = _refused_midway(server, FORM_HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + body)
    status, refusal = _status_and_body(answer)
    assert status == 413, answer[:500]
    assert refusal.startswith(b'{"error":"request body too large'), answer[:500]


def test_an_influxql_form_body_within_the_limit_is_answered(server):
    status, _, answer = server.request(
        "POST", "/query", body=FORM_START + b"x" * 200_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200, answer[:500]
    assert orjson.loads(answer)["results"][0]["series"][0]["values"] == [["d"]]


# tsapi's own JSON query: the body was read whole (up to 64 MB) and parsed before the schema
# saw it, and a parsed array of empty arrays holds about twenty times its text: 1.3 GB.
QUERY_BOMB = b'{"metric": "m", "x": [' + b"[], " * (15 * 1024 * 1024) + b"[]]}"


def test_a_json_query_body_over_its_limit_is_refused_unread(server):
    before = server.reset_peaks()
    answer = _refused_midway(server, b"POST /query HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                             b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                             % len(QUERY_BOMB) + QUERY_BOMB)
    growth = server.peak_growth_mb(before)
    status, refusal = _status_and_body(answer)
    assert status == 413, answer[:500]
    assert orjson.loads(refusal)["errors"][0]["field"] == "body"
    assert growth <= 20, f"worker peak RSS grew {growth:.0f} MB"


def test_a_chunked_json_query_body_is_read_only_up_to_its_limit(server):
    pieces = [QUERY_BOMB[i:i + 65536] for i in range(0, 4 * 1024 * 1024, 65536)]
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    before = server.reset_peaks()
    answer = _refused_midway(server, b"POST /query HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                             b"Content-Type: application/json\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n" + body)
    growth = server.peak_growth_mb(before)
    assert _status_and_body(answer)[0] == 413, answer[:500]
    assert growth <= 20, f"worker peak RSS grew {growth:.0f} MB"
