"""A gzip body may be several gzip members one after another (RFC 1952, 2.2: what
`cat a.gz b.gz` makes, and what streaming compressors flush). Every member is read, so no
acknowledged point is left behind in a later one; bytes after the last member that are no
gzip member are a 400 and nothing is stored."""

from __future__ import annotations

import gzip

import pytest
from helpers import assert_problem, query, stored_metrics

DAY = {"start_time": "2024-01-01T00:00:00Z", "end_time": "2024-01-02T00:00:00Z"}
GZIP = {"Content-Encoding": "gzip"}
# The same two points in each format, split into two pieces (the JSON document mid-list).
BODIES = {
    "json": ("application/json",
             b'{"data": [{"time": "2024-01-01T01:00:00Z", "metric": "m", "value": 1},',
             b' {"time": "2024-01-01T02:00:00Z", "metric": "m", "value": 2}]}'),
    "ndjson": ("application/x-ndjson",
               b'{"time": "2024-01-01T01:00:00Z", "metric": "m", "value": 1}\n',
               b'{"time": "2024-01-01T02:00:00Z", "metric": "m", "value": 2}\n'),
    "csv": ("text/csv", b"time,metric,value\n2024-01-01T01:00:00Z,m,1\n",
            b"2024-01-01T02:00:00Z,m,2\n"),
    "line protocol": (None, b"tsapi m=1 1704070800\n", b"tsapi m=2 1704074400\n"),
}


def post(client, kind: str, body: bytes):
    content_type, _, _ = BODIES[kind]
    if content_type is None:
        return client.post("/write?db=d&precision=s", data=body, headers=GZIP)
    return client.post("/ingest", data=body, content_type=content_type, headers=GZIP)


@pytest.mark.parametrize("kind", BODIES)
def test_every_member_of_a_gzip_body_is_stored(client, kind):
    _, first, second = BODIES[kind]
    response = post(client, kind, gzip.compress(first) + gzip.compress(second))
    assert response.status_code in (200, 204), response.get_json()
    assert [r["value"] for r in query(client, metric="m", **DAY)] == [1.0, 2.0]


@pytest.mark.parametrize("tail", [b"junk", b"\0\0\0\0", b"\x1f\x8b"],
                         ids=["text", "zeros", "a-member-cut-short"])
@pytest.mark.parametrize("kind", BODIES)
def test_bytes_after_the_last_gzip_member_are_a_400_storing_nothing(client, kind, tail):
    _, first, second = BODIES[kind]
    problem = assert_problem(post(client, kind, gzip.compress(first + second) + tail), 400)
    assert "gzip" in problem["detail"]
    assert stored_metrics(client) == []
