"""POST /ingest: accepted shapes, validation (all or nothing), time handling, duplicates,
series and error format (size limits are in test_limits.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from helpers import (
    assert_problem,
    error_fields,
    ingest,
    point,
    post_raw,
    query,
    stored_metrics,
    utc,
)

from tsapi.store.small_batch import STATEMENTS

DAY_START = "2024-03-10T00:00:00Z"
DAY_END = "2024-03-11T00:00:00Z"


def raw_rows(client, metric, start=DAY_START, end=DAY_END):
    return query(client, metric=metric, start_time=start, end_time=end)


# --- success -------------------------------------------------------------------------------


def test_ingest_reports_count_and_message_for_a_batch(client):
    points = [point(f"2024-03-10T00:00:0{i}Z", "temp", float(i)) for i in range(3)]
    body = ingest(client, points)
    assert body == {"message": "Successfully ingested 3 data points", "ingested_count": 3}


def test_ingest_response_is_json_with_status_200(client):
    response = client.post("/ingest", json={"data": [point(DAY_START, "temp", 1)]})
    assert response.status_code == 200
    assert response.mimetype == "application/json"


def test_empty_batch_is_accepted_with_zero_count_and_stores_nothing(client):
    body = ingest(client, [])
    assert body == {"message": "Successfully ingested 0 data points", "ingested_count": 0}
    assert stored_metrics(client) == []


def test_ingest_then_query_round_trip(client):
    body = ingest(client, [point("2024-01-01T00:00:00Z", "temp", 1.5, device="a")])
    assert body == {"message": "Successfully ingested 1 data points", "ingested_count": 1}
    rows = query(client, metric="temp", start_time="2024-01-01T00:00:00Z",
                 end_time="2024-01-02T00:00:00Z")
    assert rows == [{"time": "2024-01-01T00:00:00+00:00", "value": 1.5}]


def test_writes_go_on_when_the_pool_replaces_its_database_connections(app, client):
    """The small-batch statement is prepared once per database session: a connection the
    pool opens anew (after a restart, a recycle) prepares it again."""
    ingest(client, [point("2024-03-10T01:00:00Z", "reconnect", 1.0)])
    ingest(client, [point("2024-03-10T02:00:00Z", "reconnect", 2.0)])  # ids from the caches
    app.extensions["tsapi"].db.engine.dispose()  # every pooled connection closed
    ingest(client, [point("2024-03-10T03:00:00Z", "reconnect", 3.0)])
    assert [r["value"] for r in raw_rows(client, "reconnect")] == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("statement", ["DISCARD ALL", "DEALLOCATE ALL"])
def test_writes_go_on_when_sessions_forget_their_prepared_statement(app, client, statement):
    """Sessions may lose their prepared statements while the pool keeps them (DISCARD ALL,
    DEALLOCATE; a pooler resets sessions so), several at once: the write prepares the
    statement again on a new session instead of failing with a 500."""
    ingest(client, [point("2024-03-10T01:00:00Z", "forgot", 1.0)])
    engine = app.extensions["tsapi"].db.engine
    for n, tags in enumerate([{}, {}, {"new": "series"}], start=2):  # cached, then not
        sessions = [engine.connect() for _ in range(4)]  # more than the writer's attempts
        for conn in sessions:  # each prepared the statement, then forgot it
            conn.execution_options(isolation_level="AUTOCOMMIT")
            for prepared in STATEMENTS:
                if prepared.name not in conn.connection.info:
                    conn.execute(prepared.prepare)
                    conn.connection.info[prepared.name] = True
            conn.execute(sa.text(statement))
        for conn in sessions:
            conn.close()
        ingest(client, [point(f"2024-03-10T0{n}:00:00Z", "forgot", float(n), **tags)])
    assert [r["value"] for r in raw_rows(client, "forgot")] == [1.0, 2.0, 3.0, 4.0]


def test_ingested_points_are_returned_by_a_raw_query(client):
    ingest(client, [
        point("2024-03-10T01:00:00Z", "temp", 21.5, room="a"),
        point("2024-03-10T02:00:00Z", "temp", -3),
        point("2024-03-10T03:00:00Z", "temp", 0),
    ])
    rows = raw_rows(client, "temp")
    assert [(utc(r["time"]), r["value"]) for r in rows] == [
        (datetime(2024, 3, 10, 1, tzinfo=UTC), 21.5),
        (datetime(2024, 3, 10, 2, tzinfo=UTC), -3),
        (datetime(2024, 3, 10, 3, tzinfo=UTC), 0),
    ]


def test_string_values_are_stored_and_returned(client):
    ingest(client, [point("2024-03-10T01:00:00Z", "state", "on"),
                    point("2024-03-10T02:00:00Z", "state", "off")])
    assert [r["value"] for r in raw_rows(client, "state")] == ["on", "off"]


def test_integer_limits_two_to_the_53_are_accepted_exactly(client):
    ingest(client, [point("2024-03-10T01:00:00Z", "big", 2**53),
                    point("2024-03-10T02:00:00Z", "big", -(2**53))])
    assert [r["value"] for r in raw_rows(client, "big")] == [2**53, -(2**53)]


# --- times -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("2024-03-10T12:34:56Z", datetime(2024, 3, 10, 12, 34, 56, tzinfo=UTC)),
        ("2024-03-10T12:34:56", datetime(2024, 3, 10, 12, 34, 56, tzinfo=UTC)),
        ("2024-03-10T14:34:56+02:00", datetime(2024, 3, 10, 12, 34, 56, tzinfo=UTC)),
        ("2024-03-10T07:04:56-05:30", datetime(2024, 3, 10, 12, 34, 56, tzinfo=UTC)),
        ("2024-03-10T00:30:00+02:00", datetime(2024, 3, 9, 22, 30, tzinfo=UTC)),
        ("2024-03-10T12:34:56.123456Z", datetime(2024, 3, 10, 12, 34, 56, 123456, tzinfo=UTC)),
        ("2024-03-10T12:34:56.000001", datetime(2024, 3, 10, 12, 34, 56, 1, tzinfo=UTC)),
        # Extra fractional digits that are zero lose nothing, so they are accepted.
        ("2024-03-10T12:34:56.1234560Z", datetime(2024, 3, 10, 12, 34, 56, 123456, tzinfo=UTC)),
        (1710074096, datetime(2024, 3, 10, 12, 34, 56, tzinfo=UTC)),
        (1710074096.25, datetime(2024, 3, 10, 12, 34, 56, 250000, tzinfo=UTC)),
    ],
    ids=["Z", "naive-is-utc", "plus-2h", "minus-5h30", "offset-crosses-midnight",
         "micros", "one-micro", "zero-padded-7-digits", "unix-int", "unix-float"],
)
def test_time_is_stored_as_the_same_instant_in_utc(client, sent, stored):
    ingest(client, [point(sent, "temp", 1.0)])
    rows = query(client, metric="temp", start_time="2024-03-09T00:00:00Z",
                 end_time="2024-03-12T00:00:00Z")
    assert len(rows) == 1
    returned = datetime.fromisoformat(rows[0]["time"])
    assert returned.utcoffset() == timedelta(0)
    assert returned == stored


# --- duplicates and series -----------------------------------------------------------------


def test_same_point_in_two_batches_is_stored_once_with_the_later_value(client):
    ingest(client, [point("2024-03-10T01:00:00Z", "temp", 1.0, room="a")])
    ingest(client, [point("2024-03-10T01:00:00Z", "temp", 2.0, room="a")])
    assert raw_rows(client, "temp") == [{"time": "2024-03-10T01:00:00+00:00", "value": 2.0}]


def test_same_point_twice_in_one_batch_is_stored_once_with_the_later_value(client):
    body = ingest(client, [point("2024-03-10T01:00:00Z", "temp", 1.0, room="a"),
                           point("2024-03-10T01:00:00Z", "temp", 2.0, room="a"),
                           point("2024-03-10T01:00:00Z", "temp", 3.0, room="a")])
    assert body["ingested_count"] == 3
    assert raw_rows(client, "temp") == [{"time": "2024-03-10T01:00:00+00:00", "value": 3.0}]


def test_same_instant_written_with_different_offsets_is_one_point(client):
    ingest(client, [point("2024-03-10T01:00:00Z", "temp", 1.0),
                    point("2024-03-10T03:00:00+02:00", "temp", 2.0)])
    ingest(client, [point(1710032400, "temp", 3.0)])  # 2024-03-10T01:00:00Z
    assert raw_rows(client, "temp") == [{"time": "2024-03-10T01:00:00+00:00", "value": 3.0}]


def test_tag_order_does_not_make_a_new_series(client):
    ingest(client, [point("2024-03-10T01:00:00Z", "temp", 1.0, a="1", b="2")])
    ingest(client, [{"time": "2024-03-10T01:00:00Z", "metric": "temp", "value": 5.0,
                     "tags": {"b": "2", "a": "1"}}])
    assert raw_rows(client, "temp") == [{"time": "2024-03-10T01:00:00+00:00", "value": 5.0}]


def test_string_point_rewritten_keeps_only_the_later_string(client):
    ingest(client, [point("2024-03-10T01:00:00Z", "state", "first")])
    ingest(client, [point("2024-03-10T01:00:00Z", "state", "second")])
    assert [r["value"] for r in raw_rows(client, "state")] == ["second"]


def test_rewrite_batch_mixing_new_and_existing_points_stores_all_with_latest_values(client):
    ingest(client, [point(f"2024-03-10T0{h}:00:00Z", "temp", float(h)) for h in range(4)])
    ingest(client, [point(f"2024-03-10T0{h}:00:00Z", "temp", 10.0 + h) for h in range(2, 7)])
    expected = {0: 0.0, 1: 1.0, 2: 12.0, 3: 13.0, 4: 14.0, 5: 15.0, 6: 16.0}
    rows = raw_rows(client, "temp")
    assert [(utc(r["time"]).hour, r["value"]) for r in rows] == sorted(expected.items())


def test_different_tags_at_the_same_time_are_different_series_both_returned(client):
    ingest(client, [point("2024-03-10T01:00:00Z", "temp", 1.0, room="a"),
                    point("2024-03-10T01:00:00Z", "temp", 2.0, room="b"),
                    point("2024-03-10T01:00:00Z", "temp", 3.0)])
    rows = raw_rows(client, "temp")
    assert len(rows) == 3
    assert {r["time"] for r in rows} == {"2024-03-10T01:00:00+00:00"}
    assert sorted(r["value"] for r in rows) == [1.0, 2.0, 3.0]


def test_raw_query_merges_series_in_time_order(client):
    ingest(client, [point("2024-03-10T03:00:00Z", "temp", 3.0, room="a"),
                    point("2024-03-10T01:00:00Z", "temp", 1.0, room="b")])
    ingest(client, [point("2024-03-10T02:00:00Z", "temp", 2.0, room="a"),
                    point("2024-03-10T04:00:00Z", "temp", 4.0, room="b")])
    assert [r["value"] for r in raw_rows(client, "temp")] == [1.0, 2.0, 3.0, 4.0]


# --- validation: one bad point, nothing stored ---------------------------------------------

GOOD = point("2024-03-10T00:00:00Z", "good", 1.0)

INVALID_POINTS = {
    "missing-time": ({"metric": "m", "value": 1.0}, "time"),
    "missing-metric": ({"time": DAY_START, "value": 1.0}, "metric"),
    "missing-value": ({"time": DAY_START, "metric": "m"}, "value"),
    "null-value": (point(DAY_START, "m", None), "value"),
    "true-value": (point(DAY_START, "m", True), "value"),
    "false-value": (point(DAY_START, "m", False), "value"),
    "object-value": (point(DAY_START, "m", {"x": 1}), "value"),
    "list-value": (point(DAY_START, "m", [1]), "value"),
    "int-above-2**53": (point(DAY_START, "m", 2**53 + 1), "value"),
    "int-below-minus-2**53": (point(DAY_START, "m", -(2**53) - 1), "value"),
    "int-2**63": (point(DAY_START, "m", 2**63), "value"),
    "empty-metric": (point(DAY_START, "", 1.0), "metric"),
    "non-string-metric": (point(DAY_START, 7, 1.0), "metric"),
    "null-metric": (point(DAY_START, None, 1.0), "metric"),
    "int-tag-value": (point(DAY_START, "m", 1.0, k=1), "tags"),
    "null-tag-value": (point(DAY_START, "m", 1.0, k=None), "tags"),
    "bool-tag-value": (point(DAY_START, "m", 1.0, k=True), "tags"),
    "list-tag-value": (point(DAY_START, "m", 1.0, k=["x"]), "tags"),
    "tags-not-object": ({"time": DAY_START, "metric": "m", "value": 1.0, "tags": "k=v"}, "tags"),
    "seven-fraction-digits": (point("2024-03-10T00:00:00.1234567Z", "m", 1.0), "time"),
    "nine-fraction-digits": (point("2024-03-10T00:00:00.000000001", "m", 1.0), "time"),
    "unparsable-time": (point("yesterday", "m", 1.0), "time"),
    "null-time": (point(None, "m", 1.0), "time"),
    "bool-time": (point(True, "m", 1.0), "time"),
    "empty-time": (point("", "m", 1.0), "time"),
}


@pytest.mark.parametrize(("bad", "field"), INVALID_POINTS.values(), ids=INVALID_POINTS.keys())
def test_one_invalid_point_rejects_the_batch_naming_it_and_stores_nothing(client, bad, field):
    response = client.post("/ingest", json={"data": [GOOD, bad]})
    problem = assert_problem(response, 422)
    errors = problem["errors"]
    assert errors, problem
    assert {e["index"] for e in errors} == {1}
    for e in errors:
        assert e["field"] == f"data[1].{field}" or e["field"].startswith(f"data[1].{field}.")
        assert isinstance(e["message"], str) and e["message"]
    assert stored_metrics(client) == []
    assert_problem(client.post("/query", json={"metric": "good", "start_time": DAY_START,
                                               "end_time": DAY_END}), 404)


def test_a_point_that_is_not_an_object_is_named_by_index(client):
    problem = assert_problem(client.post("/ingest", json={"data": [GOOD, 5]}), 422)
    assert [(e["field"], e["index"]) for e in problem["errors"]] == [("data[1]", 1)]
    assert stored_metrics(client) == []


@pytest.mark.parametrize("literal", ["1e999", "-1e999", "NaN", "Infinity", "-Infinity"])
def test_non_finite_value_is_an_invalid_point_not_a_json_error(client, literal):
    # 1e999 is a JSON number by the grammar (RFC 8259) but infinite as a double; NaN and
    # Infinity are what Python's json module (and many clients) send for non-finite floats.
    body = ('{"data": [{"time": "2024-03-10T00:00:00Z", "metric": "good", "value": 1.0}, '
            '{"time": "2024-03-10T00:00:00Z", "metric": "m", "value": VALUE}]}'
            ).replace("VALUE", literal)
    problem = assert_problem(post_raw(client, "/ingest", body), 422)
    assert error_fields(problem) == ["data[1].value"]
    assert stored_metrics(client) == []


@pytest.mark.parametrize("literal", ["18446744073709551616", "100000000000000000000000000000"])
def test_integer_beyond_64_bits_is_rejected_not_rounded(client, literal):
    # Integers past 2**53 cannot be stored exactly, however the JSON parser reads them.
    body = ('{"data": [{"time": "2024-03-10T00:00:00Z", "metric": "m", "value": VALUE}]}'
            ).replace("VALUE", literal)
    problem = assert_problem(post_raw(client, "/ingest", body), 422)
    assert error_fields(problem) == ["data[0].value"]
    assert stored_metrics(client) == []


def test_boolean_time_is_rejected_even_after_unix_second_one_in_the_same_batch(client):
    # True == 1 in Python: a parser memo keyed by the raw value must not confuse them.
    response = client.post("/ingest", json={"data": [point(1, "m", 1.0), point(True, "m", 2.0)]})
    problem = assert_problem(response, 422)
    assert error_fields(problem) == ["data[1].time"]
    assert stored_metrics(client) == []


def test_every_bad_point_is_listed_with_its_index_and_field(client):
    data = [
        point("2024-03-10T00:00:00Z", "m", 1.0),            # 0 ok
        point("2024-03-10T00:00:01Z", "m", True),           # 1 bool value
        point("2024-03-10T00:00:02Z", "m", 2.0),            # 2 ok
        {"time": "2024-03-10T00:00:03Z", "value": 3.0},     # 3 no metric
        point("2024-03-10T00:00:04Z", "m", 4.0, k=4),       # 4 int tag value
        point("2024-03-10T00:00:05Z", "m", 5.0),            # 5 ok
        point("2024-03-10T00:00:06.1234567Z", "m", 6.0),    # 6 sub-microsecond time
        point("2024-03-10T00:00:07Z", "", 7.0),             # 7 empty metric
        point("2024-03-10T00:00:08Z", "m", 2**53 + 2),      # 8 int too large
    ]
    problem = assert_problem(client.post("/ingest", json={"data": data}), 422)
    by_index = {}
    for e in problem["errors"]:
        assert set(e) >= {"field", "message", "index"}
        assert e["field"].startswith(f"data[{e['index']}]")
        by_index.setdefault(e["index"], []).append(e["field"])
    assert sorted(by_index) == [1, 3, 4, 6, 7, 8]
    assert by_index[1] == ["data[1].value"]
    assert by_index[3] == ["data[3].metric"]
    assert all(f.startswith("data[4].tags") for f in by_index[4])
    assert by_index[6] == ["data[6].time"]
    assert by_index[7] == ["data[7].metric"]
    assert by_index[8] == ["data[8].value"]
    assert stored_metrics(client) == []


def test_invalid_batch_leaves_an_existing_metric_unchanged(client):
    ingest(client, [point("2024-03-10T01:00:00Z", "temp", 1.0)])
    before = client.get("/metrics").get_json()
    response = client.post("/ingest", json={"data": [
        point("2024-03-10T01:00:00Z", "temp", 99.0),       # would overwrite
        point("2024-03-10T05:00:00Z", "temp", 5.0),        # would extend last_seen
        point("2024-03-10T06:00:00Z", "other", 1.0),       # would create a metric
        point("2024-03-10T07:00:00Z", "temp", False),      # invalid
    ]})
    problem = assert_problem(response, 422)
    assert {e["index"] for e in problem["errors"]} == {3}
    assert raw_rows(client, "temp") == [{"time": "2024-03-10T01:00:00+00:00", "value": 1.0}]
    assert client.get("/metrics").get_json() == before


# --- value types -----------------------------------------------------------------------------


def test_string_for_a_numeric_metric_in_a_later_batch_is_rejected(client):
    ingest(client, [point("2024-03-10T01:00:00Z", "temp", 1.0)])
    response = client.post("/ingest", json={"data": [
        point("2024-03-10T02:00:00Z", "temp", 2.0),
        point("2024-03-10T03:00:00Z", "temp", "hot"),
    ]})
    problem = assert_problem(response, 422)
    assert [(e["field"], e["index"]) for e in problem["errors"]] == [("data[1].value", 1)]
    assert raw_rows(client, "temp") == [{"time": "2024-03-10T01:00:00+00:00", "value": 1.0}]


def test_number_for_a_string_metric_in_a_later_batch_is_rejected(client):
    ingest(client, [point("2024-03-10T01:00:00Z", "state", "on")])
    problem = assert_problem(
        client.post("/ingest", json={"data": [point("2024-03-10T02:00:00Z", "state", 0)]}), 422)
    assert error_fields(problem) == ["data[0].value"]
    assert [r["value"] for r in raw_rows(client, "state")] == ["on"]


@pytest.mark.parametrize(("first", "second"), [(1.0, "one"), ("one", 1.0)],
                         ids=["number-then-string", "string-then-number"])
def test_first_point_of_a_new_metric_fixes_its_type_within_the_batch(client, first, second):
    data = [point("2024-03-10T01:00:00Z", "x", first),
            point("2024-03-10T02:00:00Z", "x", first),
            point("2024-03-10T03:00:00Z", "x", second)]
    problem = assert_problem(client.post("/ingest", json={"data": data}), 422)
    assert [(e["field"], e["index"]) for e in problem["errors"]] == [("data[2].value", 2)]
    assert stored_metrics(client) == []


def test_type_mismatches_are_listed_together_with_other_invalid_points(client):
    ingest(client, [point("2024-03-10T01:00:00Z", "temp", 1.0)])
    data = [
        point("2024-03-10T02:00:00Z", "temp", 2.0),        # 0 ok
        {"time": "2024-03-10T03:00:00Z", "metric": "temp"},  # 1 no value
        point("2024-03-10T04:00:00Z", "temp", "warm"),     # 2 wrong type for temp
    ]
    problem = assert_problem(client.post("/ingest", json={"data": data}), 422)
    assert sorted(error_fields(problem)) == ["data[1].value", "data[2].value"]
    assert raw_rows(client, "temp") == [{"time": "2024-03-10T01:00:00+00:00", "value": 1.0}]


def test_string_value_with_a_nul_character_is_an_invalid_point(client):
    # PostgreSQL text cannot hold U+0000: the point must be refused, not crash the write.
    response = client.post("/ingest", json={"data": [
        point("2024-03-10T01:00:00Z", "state", "fine"),
        point("2024-03-10T02:00:00Z", "state", "bad\x00value"),
    ]})
    problem = assert_problem(response, 422)
    assert error_fields(problem) == ["data[1].value"]
    assert stored_metrics(client) == []


def test_a_failed_batch_does_not_lose_later_points_of_its_new_series(client):
    ingest(client, [point("2024-03-10T01:00:00Z", "state", "a", device="1")])
    # This batch fails (whatever the status) after the new series {device: 2} is looked up.
    failed = client.post("/ingest", json={"data": [
        point("2024-03-10T02:00:00Z", "state", "nul\x00", device="2")]})
    assert failed.status_code >= 400
    ingest(client, [point("2024-03-10T03:00:00Z", "state", "b", device="2")])
    assert raw_rows(client, "state") == [
        {"time": "2024-03-10T01:00:00+00:00", "value": "a"},
        {"time": "2024-03-10T03:00:00+00:00", "value": "b"},
    ]


# --- request shape -----------------------------------------------------------------------------


def test_invalid_json_is_a_400_problem(client):
    problem = assert_problem(post_raw(client, "/ingest", '{"data": [ {"time": '), 400)
    assert "JSON" in problem["detail"]


def test_empty_body_is_a_400_problem(client):
    assert_problem(post_raw(client, "/ingest", b""), 400)


@pytest.mark.parametrize("body", ['{}', '{"points": []}', '[]', '"data"', 'null', '{"Data": []}'],
                         ids=["empty-object", "other-key", "list", "string", "null", "case"])
def test_body_without_data_is_a_422_problem(client, body):
    problem = assert_problem(post_raw(client, "/ingest", body), 422)
    assert "data" in error_fields(problem) or "data" in problem["detail"]


@pytest.mark.parametrize("data", [None, {"time": DAY_START}, "points", 3],
                         ids=["null", "object", "string", "number"])
def test_data_that_is_not_a_list_is_a_422_problem(client, data):
    problem = assert_problem(client.post("/ingest", json={"data": data}), 422)
    assert "data" in error_fields(problem)


def test_wrong_method_on_ingest_is_a_405_problem(client):
    assert_problem(client.get("/ingest"), 405)
