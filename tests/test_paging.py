"""POST /query, issue 4 output side: raw limits, order and cursor paging, several metrics at
once, CSV and NDJSON output, and the result cache. Expectations are computed in Python."""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import UTC, datetime, timedelta

from helpers import ask, assert_problem, error_fields, ingest, iso, parse_row_time, point, query

T0 = datetime(2024, 3, 10, tzinfo=UTC)
END = T0 + timedelta(days=1)
HOSTS = ("a", "b", "c")
RANGE = {"start_time": iso(T0), "end_time": iso(END)}
TRUNCATED = "X-Tsapi-Truncated"
NEXT = "X-Tsapi-Next-Cursor"



def same_time_points(metric: str = "cpu", times: int = 10) -> list[tuple[str, datetime, float]]:
    """(host, time, value): every host has a point at each of the same times; values are
    unique, so each point can be told apart."""
    return [(h, T0 + timedelta(minutes=i), float(i * 10 + j))
            for i in range(times) for j, h in enumerate(HOSTS)]


def ingest_points(client, data, metric="cpu"):
    ingest(client, [point(iso(t), metric, v, host=h) for h, t, v in data])


def as_pairs(rows):
    return [(parse_row_time(r), r["value"]) for r in rows]


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
        assert sorted(as_pairs(whole.get_json())) == sorted((t, v) for _, t, v in data)
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
    assert sorted(as_pairs(descending)) == sorted((t, v) for _, t, v in data)
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
    seen = [p for rows, _ in pages for p in as_pairs(rows)]
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


# --- several metrics -----------------------------------------------------------------------


def test_several_metrics_in_one_raw_query_carry_their_metric(client):
    cpu, mem = same_time_points(times=4), same_time_points(times=3)
    ingest_points(client, cpu)
    ingest_points(client, [(h, t, v + 0.5) for h, t, v in mem], metric="mem")
    ingest_points(client, same_time_points(times=2), metric="disk")
    rows = query(client, metrics=["mem", "cpu"], **RANGE)
    assert all(set(r) == {"time", "value", "metric"} for r in rows)
    for name, data, shift in (("cpu", cpu, 0.0), ("mem", mem, 0.5)):
        mine = [r for r in rows if r["metric"] == name]
        assert sorted(as_pairs(mine)) == sorted((t, v + shift) for _, t, v in data), name
        times = [parse_row_time(r) for r in mine]
        assert times == sorted(times), name
    assert len(rows) == len(cpu) + len(mem)


def test_several_metrics_aggregated_with_group_by(client):
    cpu, mem = same_time_points(times=4), same_time_points(times=3)
    ingest_points(client, cpu)
    ingest_points(client, mem, metric="mem")
    rows = query(client, metrics=["cpu", "mem"], aggregation="sum", group_by=["host"],
                 **RANGE)
    got = {(r["metric"], r["tags"]["host"]): r["value"] for r in rows}
    want = {}
    for name, data in (("cpu", cpu), ("mem", mem)):
        for host in HOSTS:
            want[(name, host)] = sum(v for h, _, v in data if h == host)
    assert got == want
    assert len(rows) == len(want)
    assert all(parse_row_time(r) == T0 for r in rows)


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


def test_unknown_metric_among_several_is_404_naming_it(client):
    ingest_points(client, same_time_points(times=2))
    for aggregation in (None, "sum"):
        body = {"metrics": ["cpu", "no-such-metric"], **RANGE}
        if aggregation:
            body["aggregation"] = aggregation
        problem = assert_problem(ask(client, **body), 404)
        assert "no-such-metric" in problem["detail"]


def test_metric_and_metrics_together_or_neither_is_422(client):
    ingest_points(client, same_time_points(times=2))
    for body in ({"metric": "cpu", "metrics": ["cpu"]}, {}):
        problem = assert_problem(ask(client, **body, **RANGE), 422)
        assert {"metric", "metrics"} & set(error_fields(problem)), body


# --- CSV and NDJSON --------------------------------------------------------------------------


def parse_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def assert_csv_matches(text: str, rows: list[dict], header: list[str]) -> None:
    """CSV records equal JSON rows: same order, times as in JSON, null as an empty field."""
    records = parse_csv(text)
    assert records[0] == header
    assert len(records) - 1 == len(rows)
    for record, row in zip(records[1:], rows, strict=True):
        assert len(record) == len(header), record
        cells = dict(zip(header, record, strict=True))
        assert cells["time"] == row["time"]
        if "metric" in cells:
            assert cells["metric"] == row["metric"]
        for key in header[header.index("metric") + 1 if "metric" in header else 0:
                          header.index("time")]:
            assert cells[key] == (row["tags"][key] or ""), (key, record, row)
        value = row["value"]
        if value is None:
            assert cells["value"] == ""
        elif isinstance(value, str):
            assert cells["value"] == value
        else:
            assert float(cells["value"]) == value, (record, row)


def assert_ndjson_matches(body: bytes, rows: list[dict]) -> None:
    text = body.decode()
    assert text.endswith("\n") or not rows
    lines = text.splitlines()
    assert [json.loads(line) for line in lines] == rows


def test_csv_of_an_aggregated_query_equals_the_json_rows(client):
    data = same_time_points()
    ingest_points(client, [(h, t + timedelta(minutes=45 * (t.minute % 3)), v)
                           for h, t, v in data])
    body = {"metric": "cpu", "aggregation": "avg", "interval": "15m", "fill": "null", **RANGE}
    rows = query(client, **body)
    assert any(r["value"] is None for r in rows)  # nulls travel as empty fields
    by_format = ask(client, format="csv", **body)
    by_accept = ask(client, headers={"Accept": "text/csv"}, **body)
    for response in (by_format, by_accept):
        assert response.status_code == 200
        assert response.mimetype == "text/csv"
        assert_csv_matches(response.get_data(as_text=True), rows, ["time", "value"])


def test_csv_columns_for_several_metrics_and_group_by_keys(client):
    ingest(client, [point(iso(T0 + timedelta(minutes=i)), name, float(i), host=h, dc=dc)
                    for i in range(6) for name in ("cpu", "mem")
                    for h, dc in (("a", "x"), ("b", "y"))])
    ingest(client, [point(iso(T0 + timedelta(minutes=2)), "cpu", 100.0, host="c")])  # no dc
    header = ["metric", "host", "dc", "time", "value"]
    for extra in ({"aggregation": "max", "interval": "1 hour"}, {"aggregation": "count"}, {}):
        body = {"metrics": ["cpu", "mem"], "group_by": ["host", "dc"], **extra, **RANGE}
        rows = query(client, **body)
        assert rows
        response = ask(client, format="csv", **body)
        assert response.mimetype == "text/csv"
        assert_csv_matches(response.get_data(as_text=True), rows, header)
    single = {"metric": "cpu", "group_by": ["dc"], "aggregation": "sum", **RANGE}
    assert_csv_matches(ask(client, format="csv", **single).get_data(as_text=True),
                       query(client, **single), ["dc", "time", "value"])


def test_csv_of_string_values_survives_commas_quotes_and_newlines(client):
    values = ["plain", "comma,inside", 'quote " inside', "new\nline", "crlf\r\nend", "",
              " spaced ", "naïve 🚀"]
    ingest(client, [point(iso(T0 + timedelta(seconds=i)), "note", v)
                    for i, v in enumerate(values)])
    rows = query(client, metric="note", **RANGE)
    assert [r["value"] for r in rows] == values
    text = ask(client, metric="note", format="csv", **RANGE).get_data(as_text=True)
    assert_csv_matches(text, rows, ["time", "value"])


def test_ndjson_is_one_json_object_per_line_equal_to_the_json_rows(client):
    data = same_time_points()
    ingest_points(client, data)
    ingest_points(client, data, metric="mem")
    bodies = [
        {"metric": "cpu", **RANGE},
        {"metric": "cpu", "group_by": ["host"], **RANGE},
        {"metrics": ["cpu", "mem"], **RANGE},
        {"metric": "cpu", "aggregation": "p90", "interval": "1m", **RANGE},
        {"metrics": ["cpu", "mem"], "aggregation": "sum", "group_by": ["host"], **RANGE},
    ]
    for body in bodies:
        rows = query(client, **body)
        assert rows, body
        for response in (ask(client, format="ndjson", **body),
                         ask(client, headers={"Accept": "application/x-ndjson"}, **body)):
            assert response.status_code == 200
            assert response.mimetype == "application/x-ndjson", body
            assert_ndjson_matches(response.get_data(), rows)


def test_large_raw_exports_are_complete_and_ordered(client):
    n = 3500  # two series: 7000 points, past any first chunk of a streamed export
    data = [(h, T0 + timedelta(seconds=7 * i, microseconds=i), float(i) + (0.5 if h == "b" else 0))
            for i in range(n) for h in ("a", "b")]
    ingest_points(client, data)
    want = sorted((t, v) for _, t, v in data)
    rows = query(client, metric="cpu", **RANGE)
    assert sorted(as_pairs(rows)) == want

    csv_text = ask(client, metric="cpu", format="csv", **RANGE).get_data(as_text=True)
    records = parse_csv(csv_text)
    assert records[0] == ["time", "value"]
    got = [(datetime.fromisoformat(t), float(v)) for t, v in records[1:]]
    assert len(got) == len(data)
    assert [t for t, _ in got] == sorted(t for t, _ in got)
    assert sorted(got) == want
    assert_csv_matches(csv_text, rows, ["time", "value"])

    body = ask(client, metric="cpu", format="ndjson", **RANGE).get_data()
    assert_ndjson_matches(body, rows)

    newest_first = ask(client, metric="cpu", format="ndjson", order="desc", **RANGE).get_data()
    times = [datetime.fromisoformat(json.loads(line)["time"]) for line in body.splitlines()]
    desc_times = [datetime.fromisoformat(json.loads(line)["time"])
                  for line in newest_first.splitlines()]
    assert desc_times == sorted(times, reverse=True)


# --- result cache --------------------------------------------------------------------------


def cache_stats(client) -> tuple[int, int]:
    info = client.get("/cache/info").get_json()
    return info["hits"], info["misses"]


AGG = {"metric": "cpu", "aggregation": "sum", "interval": "1 hour", **RANGE}


def test_the_same_aggregated_query_twice_is_a_cache_hit_with_the_same_answer(client):
    data = same_time_points()
    ingest_points(client, data)
    first = ask(client, **AGG)
    hits, _ = cache_stats(client)
    second = ask(client, **AGG)
    assert cache_stats(client)[0] == hits + 1
    assert second.get_data() == first.get_data()
    assert second.mimetype == first.mimetype == "application/json"
    assert as_pairs(second.get_json()) == [(T0, sum(v for *_, v in data))]


def test_an_ingest_between_queries_is_never_served_stale(client):
    data = same_time_points()
    ingest_points(client, data)
    ask(client, **AGG)
    assert ask(client, **AGG).get_json() == [{"time": iso(T0).replace("Z", "+00:00"),
                                               "value": sum(v for *_, v in data)}]
    late = T0 + timedelta(hours=3, minutes=5)
    ingest(client, [point(iso(late), "cpu", 1000.0, host="z")])
    assert as_pairs(query(client, **AGG)) == [(T0, sum(v for *_, v in data)),
                                              (T0 + timedelta(hours=3), 1000.0)]
    # A rewrite of an existing point is new data too.
    ingest(client, [point(iso(late), "cpu", 7.0, host="z")])
    assert as_pairs(query(client, **AGG))[-1] == (T0 + timedelta(hours=3), 7.0)


def test_a_range_ending_in_the_future_is_never_cached(client):
    now = datetime.now(UTC).replace(microsecond=0)
    ingest(client, [point(iso(now - timedelta(minutes=m)), "cpu", float(m)) for m in (1, 2, 3)])
    body = {"metric": "cpu", "aggregation": "count", "start_time": iso(now - timedelta(days=1)),
            "end_time": iso(now + timedelta(days=1))}
    first = query(client, **body)
    hits, _ = cache_stats(client)
    assert query(client, **body) == first
    assert query(client, **body) == first
    assert cache_stats(client)[0] == hits
    assert first[0]["value"] == 3


def test_clearing_a_metric_makes_the_next_query_a_miss(client):
    ingest_points(client, same_time_points())
    ingest_points(client, same_time_points(), metric="mem")
    mem = {**AGG, "metric": "mem"}
    answer, mem_answer = ask(client, **AGG).get_data(), ask(client, **mem).get_data()
    ask(client, **AGG)
    hits, misses = cache_stats(client)
    response = client.post("/cache/metrics/cpu/clear")
    assert response.status_code == 200
    again = ask(client, **AGG)
    assert cache_stats(client) == (hits, misses + 1)
    assert again.get_data() == answer
    # Another metric's entries survive.
    assert ask(client, **mem).get_data() == mem_answer
    assert cache_stats(client) == (hits + 1, misses + 1)


def test_a_query_of_several_metrics_sees_an_ingest_into_any_of_them(client):
    ingest_points(client, same_time_points(times=2))
    ingest_points(client, same_time_points(times=2), metric="mem")
    body = {"metrics": ["cpu", "mem"], "aggregation": "count", **RANGE}
    assert query(client, **body) == query(client, **body)
    ingest(client, [point(iso(T0 + timedelta(hours=5)), "mem", 1.0, host="z")])
    counts = {r["metric"]: r["value"] for r in query(client, **body)}
    assert counts == {"cpu": 6, "mem": 7}
    hits, misses = cache_stats(client)
    assert client.post("/cache/metrics/mem/clear").status_code == 200
    assert {r["metric"]: r["value"] for r in query(client, **body)} == counts
    assert cache_stats(client) == (hits, misses + 1)


def test_a_repeated_raw_page_keeps_its_paging_headers(client):
    ingest_points(client, same_time_points())
    first = ask(client, metric="cpu", limit=4, **RANGE)
    again = ask(client, metric="cpu", limit=4, **RANGE)
    assert again.get_data() == first.get_data()
    assert again.headers.get(TRUNCATED) == first.headers.get(TRUNCATED) == "true"
    assert again.headers.get(NEXT) == first.headers.get(NEXT)


def test_accept_any_type_gives_json_as_curl_sends_it(client):
    """curl sends "Accept: */*": that must mean the default format, JSON."""
    client.post("/ingest", json={"data": [
        {"time": "2024-01-01T00:00:00Z", "metric": "m", "value": 1.0}]})
    response = client.post("/query", json={"metric": "m", "start_time": "2024-01-01T00:00:00Z",
                                           "end_time": "2024-01-02T00:00:00Z"},
                           headers={"Accept": "*/*"})
    assert response.mimetype == "application/json"
    assert response.get_json() == [{"time": "2024-01-01T00:00:00+00:00", "value": 1.0}]
    csv = client.post("/query", json={"metric": "m", "start_time": "2024-01-01T00:00:00Z",
                                      "end_time": "2024-01-02T00:00:00Z"},
                      headers={"Accept": "text/csv, */*;q=0.1"})
    assert csv.mimetype == "text/csv"
