"""Inputs an outsider found reaching a 500: each is a 4xx problem that names what is wrong."""

import json
import socket

import pytest
from gunicorn_server import GunicornServer
from helpers import assert_problem, error_fields, ingest, point, post_raw, query
from services import HOST

DAY = {"start_time": "2024-01-01T00:00:00Z", "end_time": "2024-01-02T00:00:00Z"}
BUCKETS = {"aggregation": "avg", "interval": "1h"}


def raw_query(client, fields: str):
    """POST /query with `fields` spliced into a body as written (escapes kept as sent)."""
    day = json.dumps(DAY)[1:-1]
    return post_raw(client, "/query", "{" + fields + ", " + day + "}")


# --- path parameters -------------------------------------------------------------------------


def test_a_nul_in_the_tag_key_of_a_tag_values_path_is_a_404_naming_the_key(client):
    ingest(client, [point("2024-01-01T01:00:00Z", "m", 1.0, k="v")])
    problem = assert_problem(client.get("/metrics/m/tags/k%00"), 404)
    assert error_fields(problem) == ["key"]
    assert client.get("/metrics/m/tags/k").get_json()["values"] == ["v"]


# --- lone surrogate escapes in /query ----------------------------------------------------------


@pytest.mark.parametrize(("fields", "field"), [
    ('"metric": "a\\ud800"', "metric"),
    ('"metrics": ["m", "\\udfff"]', "metrics.1"),
    ('"metric": "m", "tags": {"k": "\\ud800"}', "tags"),
    ('"metric": "m", "tags": {"\\ud800": ["v"]}', "tags"),
    ('"metric": "m", "group_by": ["\\ud83d"]', "group_by.0"),
    ('"metric": "m", "cursor": "\\ud800"', "cursor"),
    ('"metric": "m", "timezone": "\\ud800"', "timezone"),
], ids=["metric", "metrics", "tag-value", "tag-key", "group_by", "cursor", "timezone"])
def test_a_lone_surrogate_escape_in_a_query_field_is_a_422_naming_it(client, fields, field):
    ingest(client, [point("2024-01-01T01:00:00Z", "m", 1.0, k="v")])
    problem = assert_problem(raw_query(client, fields), 422)
    assert [f.replace("[", ".").rstrip("]") for f in error_fields(problem)] == [field]


# --- time zones PostgreSQL and Python read differently ---------------------------------------


# `localtime` is a link to /etc/localtime where tzdata installs one: each host's own zone (the
# API's in Python, the database's in PostgreSQL), no IANA name.
@pytest.mark.parametrize("zone", ["right/UTC", "right/Europe/Berlin", "posix/UTC", "localtime"])
def test_a_leap_second_or_posix_zone_variant_is_a_422_naming_the_timezone(client, zone):
    ingest(client, [point("2024-01-01T01:00:00Z", "m", 1.0)])
    problem = assert_problem(client.post("/query", json={
        "metric": "m", "timezone": zone, **BUCKETS, **DAY}), 422)
    assert error_fields(problem) == ["timezone"]


@pytest.mark.parametrize(("zone", "edge"), [("America/Caracas", "0001-01-01T00:00:00Z"),
                                            ("Etc/GMT-14", "9999-12-31T23:00:00Z")])
@pytest.mark.parametrize("body", [BUCKETS, {"aggregation": "avg"},
                                  {**BUCKETS, "fill": "previous"}],
                         ids=["buckets", "one-row", "filled"])
def test_a_point_at_the_ends_of_time_does_not_break_local_time_queries(client, zone, edge,
                                                                       body):
    # Written in one batch with a point of the queried day, it made the batch's logged span
    # (or the fill's seed) a time PostgreSQL rendered in the zone as year 0 or 10000, which
    # the driver cannot read: a 500 on every local-time query of the series.
    ingest(client, [point(edge, "m", 1.0), point("2024-01-01T01:00:00Z", "m", 2.0)])
    rows = query(client, metric="m", timezone=zone, **body, **DAY)
    values = [r["value"] for r in rows]
    assert 2.0 in values and set(values) <= {1.0, 2.0, None}  # 1.0: the fill's seed


def test_an_iana_zone_still_aligns_buckets_to_local_time(client):
    ingest(client, [point("2024-01-01T01:00:00Z", "m", 1.0)])
    rows = query(client, metric="m", timezone="Europe/Berlin", aggregation="sum",
                 interval="1 day", **DAY)
    assert [r["time"] for r in rows] == ["2024-01-01T00:00:00+01:00"]


# --- numbers and nesting the JSON parser cannot read ------------------------------------------


def test_a_5000_digit_integer_in_a_query_body_is_a_400(client):
    problem = assert_problem(raw_query(client, '"metric": "m", "limit": ' + "7" * 5000), 400)
    assert error_fields(problem) == ["body"]


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deep_nesting_in_a_query_body_is_a_400(client, depth):
    nested = "[" * depth + "]" * depth
    problem = assert_problem(raw_query(client, '"metric": "m", "tags": ' + nested), 400)
    assert error_fields(problem) == ["body"]


@pytest.mark.parametrize("depth", [500, 900, 950, 990])
@pytest.mark.parametrize("field", ["metric", "tags", "unknown"])
def test_nesting_just_within_the_parser_limit_is_a_4xx_problem(client, depth, field):
    # Deep enough to reach every later step (schema, error rendering) with a deep value.
    nested = "[" * depth + "]" * depth
    response = raw_query(client, f'"metric": "m", "{field}": {nested}'.replace(
        '"metric": "m", "metric"', '"metric"'))
    problem = assert_problem(response, response.status_code)
    assert response.status_code in (400, 422), problem


HUGE_TIME = "1" + "0" * 399  # 400 digits: seconds far beyond year 9999


@pytest.mark.parametrize(("content_type", "body", "field"), [
    ("application/json", '{"data": [{"time": %s, "metric": "m", "value": 1}]}', "data[0].time"),
    ("application/x-ndjson", '{"time": %s, "metric": "m", "value": 1}\n', "data[0].time"),
    ("text/csv", "time,metric,value\n%s,m,1\n", "line 2 time"),
], ids=["json", "ndjson", "csv"])
def test_a_400_digit_time_is_an_invalid_point_naming_its_time(client, content_type, body,
                                                             field):
    response = client.post("/ingest", data=body % HUGE_TIME, content_type=content_type)
    problem = assert_problem(response, 422)
    assert error_fields(problem) == [field]
    assert client.get("/metrics").get_json() == []


# --- HTTP framing, against a real gunicorn ----------------------------------------------------


def raw_exchange(port: int, request: bytes) -> tuple[int, dict]:
    """Send bytes as they are on one connection; the status and JSON body of the answer."""
    with socket.create_connection((HOST, port), timeout=30) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


BAD_SIZE_LINES = [b"zz", b"-5", b"5 5", b"", b"0x10"]


def test_an_invalid_chunk_size_is_a_400_and_stores_nothing(
        empty_gunicorn_database, redis_server, tmp_path):
    body = json.dumps({"data": [point("2024-01-01T01:00:00Z", "m", 1.0)]}).encode()

    def framed(size_line: bytes) -> bytes:
        return (b"POST /ingest HTTP/1.1\r\nHost: tsapi\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                + size_line + b"\r\n" + body + b"\r\n0\r\n\r\n")

    with GunicornServer(empty_gunicorn_database, redis_server.url(), tmp_path, workers=1,
                        TSAPI_AUTH="off", TSAPI_RATE_LIMITS="off") as server:
        for size_line in BAD_SIZE_LINES:
            status, problem = raw_exchange(server.port, framed(size_line))
            assert (status, problem["status"]) == (400, 400), (size_line, problem)
            assert error_fields(problem) == ["body"], problem
        _, _, listed = server.request("GET", "/metrics")
        assert json.loads(listed) == []
        # The same body, framed right, is stored: the refusals were about the framing.
        status, answer = raw_exchange(server.port, framed(f"{len(body):x}".encode()))
        assert (status, answer["ingested_count"]) == (200, 1), answer


@pytest.mark.parametrize("limit", [1e20, 99999999999999999999999, 2**53 + 1])
def test_a_limit_beyond_json_safe_integers_is_422_naming_limit(client, limit):
    response = client.post("/query", data=json.dumps({
        "metric": "m", "start_time": "2024-01-01T00:00:00Z",
        "end_time": "2024-01-02T00:00:00Z", "limit": limit}),
        content_type="application/json")
    assert response.status_code == 422, response.get_data(as_text=True)
    assert "limit" in error_fields(response.get_json())
