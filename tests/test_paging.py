"""POST /query on raw points: limit and order, the server's maximum, and paging with the
cursor (also through several metrics) returning every point exactly once."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from helpers import (
    ask,
    assert_problem,
    error_fields,
    ingest_points,
    iso,
    parse_row_time,
    query,
    same_time_points,
)
from helpers import time_value_pairs as pairs

T0 = datetime(2024, 3, 10, tzinfo=UTC)
END = T0 + timedelta(days=1)
RANGE = {"start_time": iso(T0), "end_time": iso(END)}
TRUNCATED = "X-Tsapi-Truncated"
NEXT = "X-Tsapi-Next-Cursor"


# --- limit and order -----------------------------------------------------------------------


def test_limit_cuts_a_raw_result_and_says_so(client):
    data = same_time_points()
    ingest_points(client, data)
    cut = ask(client, metric="cpu", limit=7, **RANGE)
    assert cut.status_code == 200
    rows = cut.get_json()
    assert [parse_row_time(r) for r in rows] == [T0] * 3 + [T0 + timedelta(minutes=1)] * 3 + [
        T0 + timedelta(minutes=2)]
    assert cut.headers.get(TRUNCATED) == "true"
    assert cut.headers.get(NEXT)
    for limit in (len(data), len(data) + 1, 1000):
        whole = ask(client, metric="cpu", limit=limit, **RANGE)
        assert sorted(pairs(whole.get_json())) == sorted((t, v) for _, t, v in data)
        assert TRUNCATED not in whole.headers, limit
        assert NEXT not in whole.headers, limit
    plain = ask(client, metric="cpu", **RANGE)
    assert TRUNCATED not in plain.headers and NEXT not in plain.headers


def test_order_desc_gives_newest_first_and_asc_is_the_default(client):
    data = same_time_points()
    ingest_points(client, data)
    default = query(client, metric="cpu", **RANGE)
    ascending = query(client, metric="cpu", order="asc", **RANGE)
    descending = query(client, metric="cpu", order="desc", **RANGE)
    assert ascending == default
    times = [parse_row_time(r) for r in descending]
    assert times == sorted((t for _, t, _ in data), reverse=True)
    assert sorted(pairs(descending)) == sorted((t, v) for _, t, v in data)
    first_three = query(client, metric="cpu", order="desc", limit=3, **RANGE)
    assert sorted(r["value"] for r in first_three) == [90.0, 91.0, 92.0]


# --- paging --------------------------------------------------------------------------------


def page_through(client, limit, max_pages=200, **body):
    """Every page of a raw query, following X-Tsapi-Next-Cursor: [(rows, headers)]."""
    pages, cursor = [], None
    for _ in range(max_pages):
        request = dict(body, limit=limit)
        if cursor:
            request["cursor"] = cursor
        response = ask(client, **request)
        assert response.status_code == 200, response.get_json()
        pages.append((response.get_json(), response.headers))
        cursor = response.headers.get(NEXT)
        if not cursor:
            return pages
    raise AssertionError(f"still paging after {max_pages} pages")


def assert_paged_exactly_once(pages, limit, want_pairs, descending=False):
    seen = [p for rows, _ in pages for p in pairs(rows)]
    assert len(seen) == len(set(seen)), "a point came twice"
    assert sorted(seen) == sorted(want_pairs), "points missing or foreign"
    times = [t for t, _ in seen]
    assert times == sorted(times, reverse=descending), "pages out of order"
    for n, (rows, headers) in enumerate(pages):
        assert len(rows) <= limit, n
        if n < len(pages) - 1:
            assert headers.get(TRUNCATED) == "true", n
    assert TRUNCATED not in pages[-1][1]


def test_paging_with_the_cursor_returns_every_point_exactly_once(client):
    data = same_time_points()  # 30 points, three at each time
    ingest_points(client, data)
    want = [(t, v) for _, t, v in data]
    for limit, order in ((7, "asc"), (10, "asc"), (7, "desc"), (3, "desc"), (1, "asc"),
                         (29, "asc")):
        pages = page_through(client, limit, metric="cpu", order=order, **RANGE)
        assert_paged_exactly_once(pages, limit, want, descending=order == "desc")
        assert len(pages) == -(-len(data) // limit), (limit, order)


def test_paging_with_a_tag_filter_stays_within_the_filter(client):
    data = same_time_points()
    ingest_points(client, data)
    pages = page_through(client, 4, metric="cpu", tags={"host": ["a", "c"]}, **RANGE)
    assert_paged_exactly_once(pages, 4, [(t, v) for h, t, v in data if h in ("a", "c")])


def test_server_maximum_cuts_the_result_and_says_so(make_app):
    client = make_app(TSAPI_MAX_RAW_ROWS=5).test_client()
    data = same_time_points(times=4)  # 12 points
    ingest_points(client, data)
    response = ask(client, metric="cpu", **RANGE)
    assert len(response.get_json()) == 5
    assert response.headers.get(TRUNCATED) == "true"
    above = ask(client, metric="cpu", limit=50, **RANGE)
    assert len(above.get_json()) == 5
    assert above.headers.get(TRUNCATED) == "true"
    below = ask(client, metric="cpu", limit=3, **RANGE)
    assert len(below.get_json()) == 3
    pages = page_through(client, 50, metric="cpu", **RANGE)
    assert_paged_exactly_once(pages, 5, [(t, v) for _, t, v in data])


def first_cursor(client, **body):
    response = ask(client, limit=2, **body)
    assert response.status_code == 200
    return response.headers[NEXT]


def test_cursor_from_a_different_query_is_422_naming_cursor(client):
    ingest_points(client, same_time_points())
    ingest_points(client, same_time_points(), metric="mem")
    cursor = first_cursor(client, metric="cpu", **RANGE)
    others = [
        {"metric": "mem", **RANGE},
        {"metric": "cpu", "start_time": iso(T0 + timedelta(seconds=1)), "end_time": iso(END)},
        {"metric": "cpu", "start_time": iso(T0), "end_time": iso(END + timedelta(hours=1))},
        {"metric": "cpu", "order": "desc", **RANGE},
        {"metric": "cpu", "tags": {"host": "a"}, **RANGE},
    ]
    for body in others:
        problem = assert_problem(ask(client, limit=2, cursor=cursor, **body), 422)
        assert "cursor" in error_fields(problem), body
    # The cursor still works for its own query.
    assert ask(client, metric="cpu", limit=2, cursor=cursor, **RANGE).status_code == 200


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


GARBAGE_CURSORS = [
    "garbage", "!!!!", "x" * 400, b64(b"{}"), b64(b"[1, 2]"), b64(b"123"), b64(b"\xff\xfe"),
    b64(b'{"t": "yesterday", "s": 1, "q": "0"}'),
    b64(b'{"t": "2024-03-10T00:00:00+00:00", "s": "one", "q": "0"}'),
]


def test_garbage_cursor_is_422_naming_cursor(client):
    ingest_points(client, same_time_points())
    for cursor in GARBAGE_CURSORS:
        problem = assert_problem(ask(client, metric="cpu", limit=5, cursor=cursor, **RANGE), 422)
        assert "cursor" in error_fields(problem), cursor


def test_empty_cursor_is_422_not_taken_for_no_cursor(client):
    # A client passing back an absent header as "" would otherwise loop on page one forever.
    ingest_points(client, same_time_points())
    problem = assert_problem(ask(client, metric="cpu", limit=5, cursor="", **RANGE), 422)
    assert "cursor" in error_fields(problem)


def test_garbage_cursor_on_a_csv_or_ndjson_export_is_422_naming_cursor(client):
    ingest_points(client, same_time_points())
    for fmt in ("csv", "ndjson"):
        problem = assert_problem(ask(client, metric="cpu", limit=5, cursor="garbage",
                                     format=fmt, **RANGE), 422)
        assert "cursor" in error_fields(problem), fmt


def test_limit_order_or_cursor_with_an_aggregation_is_422_naming_it(client):
    ingest_points(client, same_time_points())
    cursor = first_cursor(client, metric="cpu", **RANGE)
    for field, value in (("limit", 5), ("order", "desc"), ("cursor", cursor)):
        for interval in (None, "1 hour"):
            body = {"metric": "cpu", "aggregation": "sum", field: value, **RANGE}
            if interval:
                body["interval"] = interval
            problem = assert_problem(ask(client, **body), 422)
            assert field in error_fields(problem), (field, interval)


# --- several metrics at once ----------------------------------------------------------------


def test_paging_through_several_metrics_returns_every_point_exactly_once(client):
    cpu, mem = same_time_points(times=3), same_time_points(times=2)
    ingest_points(client, cpu)
    ingest_points(client, [(h, t, v + 0.5) for h, t, v in mem], metric="mem")
    pages = page_through(client, 4, metrics=["cpu", "mem"], **RANGE)
    seen = [(r["metric"], parse_row_time(r), r["value"]) for rows, _ in pages for r in rows]
    want = [("cpu", t, v) for _, t, v in cpu] + [("mem", t, v + 0.5) for _, t, v in mem]
    assert sorted(seen) == sorted(want)
    assert len(seen) == len(set(seen))
    assert all(len(rows) <= 4 for rows, _ in pages), [len(rows) for rows, _ in pages]
