"""The cost of an aggregated query, refused before it runs: metrics x series groups (counted
in the series catalog, among the series the tag filter keeps) x buckets may not exceed
TSAPI_MAX_QUERY_CELLS. Each test sets the limit small and writes few points: many series
cost one batch of distinct tag values."""

import pytest
from helpers import ask, assert_problem, error_fields, ingest, point, query

LIMIT = 100
HOSTS = 50
START = "2024-03-10T00:00:00Z"
TEN_HOURS_LATER = "2024-03-10T10:00:00Z"  # 10 hourly buckets; the estimate counts 11


@pytest.fixture
def client(make_app):
    client = make_app(TSAPI_MAX_QUERY_CELLS=LIMIT).test_client()
    # One point per host, all before the range the fill tests read (so it is empty).
    ingest(client, [point("2024-03-09T23:30:00Z", "load", float(i), host=f"h{i:03d}")
                    for i in range(HOSTS)])
    ingest(client, [point("2024-03-10T01:00:00Z", "temp", float(i), room=f"r{i}")
                    for i in range(3)])
    return client


def hourly(**body):
    return {"start_time": START, "end_time": TEN_HOURS_LATER, "aggregation": "avg",
            "interval": "1 hour", **body}


def test_many_copies_of_a_metric_grouped_and_filled_is_422_naming_group_by(client):
    # 20 x 3 rooms x 11 buckets = 660 rows, with fill=null every one of them materialized.
    problem = assert_problem(ask(client, **hourly(metrics=["temp"] * 20, fill="null",
                                                  group_by=["room"])), 422)
    assert error_fields(problem) == ["group_by"]
    assert str(LIMIT) in problem["detail"]


def test_many_copies_of_a_metric_without_group_by_is_422_naming_metrics(client):
    # 20 x 1 x 11 = 220 rows: each copy is answered again.
    problem = assert_problem(ask(client, **hourly(metrics=["temp"] * 20, fill="null")), 422)
    assert error_fields(problem) == ["metrics"]


def test_fill_previous_grouped_by_a_many_valued_tag_over_an_empty_range_is_422(client):
    # No point in the range, yet fill=previous would give every host's seed to every bucket:
    # 50 hosts x 11 buckets = 550 rows.
    problem = assert_problem(ask(client, **hourly(metric="load", fill="previous",
                                                  group_by=["host"])), 422)
    assert error_fields(problem) == ["group_by"]


def test_group_count_alone_over_the_limit_is_422_without_an_interval(make_app):
    client = make_app(TSAPI_MAX_QUERY_CELLS=10).test_client()
    ingest(client, [point("2024-03-10T01:00:00Z", "load", 1.0, host=f"h{i}")
                    for i in range(11)])
    problem = assert_problem(ask(client, metric="load", start_time=START,
                                 end_time=TEN_HOURS_LATER, aggregation="sum",
                                 group_by=["host"]), 422)
    assert error_fields(problem) == ["group_by"]


def test_one_metric_over_the_limit_by_buckets_alone_is_422_naming_interval(client):
    problem = assert_problem(ask(client, metric="temp", start_time=START,
                                 end_time="2024-03-11T00:00:00Z", aggregation="avg",
                                 interval="10 minutes"), 422)
    assert error_fields(problem) == ["interval"]


def test_only_series_the_tag_filter_keeps_are_counted(client):
    # 9 of the 50 hosts x 11 buckets = 99 rows: under the limit, answered and filled.
    hosts = [f"h{i:03d}" for i in range(9)]
    rows = query(client, **hourly(metric="load", fill="previous", group_by=["host"],
                                  tags={"host": hosts}))
    assert len(rows) == 9 * 10
    assert {r["tags"]["host"] for r in rows} == set(hosts)
    assert {r["value"] for r in rows if r["tags"]["host"] == "h003"} == {3.0}


def test_ten_hosts_one_more_than_fits_are_refused(client):
    hosts = [f"h{i:03d}" for i in range(10)]  # 10 x 11 = 110 rows
    problem = assert_problem(ask(client, **hourly(metric="load", fill="previous",
                                                  group_by=["host"], tags={"host": hosts})),
                             422)
    assert error_fields(problem) == ["group_by"]


def test_a_query_just_under_the_limit_answers(client):
    # 3 copies x 3 rooms x 11 buckets = 99 rows.
    rows = query(client, **hourly(metrics=["temp"] * 3, fill="null", group_by=["room"]))
    assert len(rows) == 3 * 3 * 10
    assert {r["metric"] for r in rows} == {"temp"}
    values = sorted(r["value"] for r in rows if r["value"] is not None)
    assert values == [0.0] * 3 + [1.0] * 3 + [2.0] * 3


def test_series_missing_the_group_tag_count_as_one_group(client):
    ingest(client, [point("2024-03-10T01:00:00Z", "temp", 9.0)])  # no room tag
    # 4 groups (3 rooms and none) x 3 copies x 11 = 132 rows.
    problem = assert_problem(ask(client, **hourly(metrics=["temp"] * 3, fill="null",
                                                  group_by=["room"])), 422)
    assert error_fields(problem) == ["group_by"]


def test_the_rollup_plan_is_bounded_too(make_app):
    client = make_app(TSAPI_MAX_QUERY_CELLS=LIMIT, TSAPI_ROLLUPS="on").test_client()
    ingest(client, [point("2024-03-10T01:00:00Z", "load", 1.0, host=f"h{i}")
                    for i in range(20)])
    problem = assert_problem(ask(client, metric="load", start_time=START,
                                 end_time=TEN_HOURS_LATER, aggregation="sum",
                                 interval="1 hour", group_by=["host"]), 422)
    assert error_fields(problem) == ["group_by"]
    rows = query(client, metric="load", start_time=START, end_time=TEN_HOURS_LATER,
                 aggregation="sum", interval="1 hour", group_by=["host"],
                 tags={"host": ["h1", "h2"]})
    assert sorted(r["tags"]["host"] for r in rows) == ["h1", "h2"]


def test_raw_queries_are_not_counted(client):
    rows = query(client, metrics=["load"] * 20, start_time="2024-03-09T00:00:00Z",
                 end_time=TEN_HOURS_LATER)
    assert len(rows) == 20 * HOSTS
