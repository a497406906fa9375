"""Planning a query: which kind of plan answers a request, and what it holds (no database)."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tsapi.errors import BadRequest, InvalidInput
from tsapi.formats.aggregations import parse_aggregation
from tsapi.formats.intervals import parse_interval
from tsapi.services.query.cursor import FIRST_PAGE, PageCursor, encode_cursor
from tsapi.services.query.limits import check_bucket_count, page_size
from tsapi.services.query.planner import (
    BucketPlan,
    ExportPlan,
    RawPagePlan,
    check_aggregable,
    plan_query,
    streams,
)
from tsapi.services.query.request import QueryRequest
from tsapi.store.catalog import Metric

START = datetime(2024, 3, 1, tzinfo=UTC)
END = START + timedelta(days=1)
CPU = Metric(1, "cpu", "number")
STATE = Metric(2, "state", "string")
MAX_ROWS = 1000


def request(*names: str, **fields) -> QueryRequest:
    return QueryRequest(metrics=names or ("cpu",), start=START, end=END, **fields)


def plan(req: QueryRequest, fmt: str = "json", metrics=(CPU,)):
    return plan_query(req, fmt, list(metrics), MAX_ROWS)


def buckets(how: str = "avg", every: str | None = "1 hour", **fields) -> QueryRequest:
    return request(aggregation=parse_aggregation(how),
                   interval=parse_interval(every) if every else None, **fields)


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_a_whole_raw_csv_or_ndjson_request_is_a_streamed_export(fmt):
    assert streams(request(), fmt)
    export = plan(request(), fmt)
    assert isinstance(export, ExportPlan)
    assert export.output.fmt == fmt
    assert [q.limit for q in export.queries] == [None]


@pytest.mark.parametrize("fields", [{"limit": 5}, {"cursor": "abc"}])
def test_a_csv_request_with_a_limit_or_cursor_is_a_page_not_an_export(fields):
    assert not streams(request(**fields), "csv")


def test_a_raw_json_request_is_a_first_page_of_the_servers_size():
    page = plan(request())
    assert isinstance(page, RawPagePlan)
    assert (page.start, page.page_size, page.capped_at) == (FIRST_PAGE, MAX_ROWS, None)
    assert page.issues_cursor


def test_an_aggregate_is_never_streamed_whatever_the_format():
    assert not streams(buckets(), "csv")
    assert isinstance(plan(buckets(), "csv"), BucketPlan)


def test_a_limit_above_the_servers_maximum_is_cut_and_the_cut_reported():
    assert page_size(request(limit=5), MAX_ROWS) == (5, False)
    assert page_size(request(limit=MAX_ROWS), MAX_ROWS) == (MAX_ROWS, False)
    assert page_size(request(limit=MAX_ROWS + 1), MAX_ROWS) == (MAX_ROWS, True)
    page = plan(request(limit=10**9))
    assert (page.page_size, page.capped_at) == (MAX_ROWS, MAX_ROWS)


def test_a_page_with_a_cursor_starts_where_the_cursor_points():
    req = request("cpu", "mem", multi=True, limit=2)
    after = (START + timedelta(minutes=3), 7)
    cursor = encode_cursor(req, PageCursor(1, after))
    page = plan(replace(req, cursor=cursor), metrics=(CPU, Metric(3, "mem", "number")))
    assert page.start.metric_index == 1
    assert page.start.after == after


def test_raw_rows_grouped_by_tags_carry_no_cursor():
    assert not plan(request(group_by=("host",))).issues_cursor


def test_an_interval_without_an_aggregation_still_means_raw_points():
    req = request(interval=parse_interval("1 hour"))
    assert req.bucket_interval is None
    assert isinstance(plan(req), RawPagePlan)
    check_bucket_count(request(interval=parse_interval("1 second")), max_buckets=10)


def test_one_bucket_query_per_metric_with_the_requests_options():
    req = buckets("p90", tags={"host": ("a", "b")}, group_by=("host",),
                  timezone="Europe/Berlin", multi=True)
    mem = Metric(3, "mem", "number")
    bucket_plan = plan(req, metrics=(CPU, mem))
    assert [q.selection.metric for q in bucket_plan.queries] == [CPU, mem]
    q = bucket_plan.queries[0]
    assert (q.aggregation.name, str(q.interval), q.timezone, q.group_by) == (
        "p90", "1 hour", "Europe/Berlin", ("host",))
    assert q.selection.tags == {"host": ("a", "b")}
    assert [bucket_plan.output.label(m) for m in (CPU, mem)] == ["cpu", "mem"]


def test_rows_name_their_metric_only_when_metrics_were_asked_for_as_a_list():
    assert plan(buckets()).output.label(CPU) is None


@pytest.mark.parametrize(("how", "fill", "seeded"), [
    ("avg", "previous", True), ("p99.9", "linear", True), ("first", "previous", True),
    ("sum", "previous", False), ("count", "linear", False), ("rate", "previous", False),
    ("avg", "null", False), ("avg", "zero", False),
])
def test_fill_is_seeded_only_for_value_like_aggregates_and_carrying_modes(how, fill, seeded):
    bucket_plan = plan(buckets(how, fill=fill))
    assert (bucket_plan.fill, bucket_plan.seeded) == (fill, seeded)


def test_without_an_interval_there_is_nothing_to_fill():
    assert plan(buckets(every=None, fill="previous")).fill == "none"


@pytest.mark.parametrize("fill", ["zero", "linear"])
def test_filling_strings_with_made_up_numbers_is_refused(fill):
    with pytest.raises(BadRequest, match="needs numbers"):
        plan(buckets("last", fill=fill), metrics=(STATE,))


def test_strings_can_be_carried_forward():
    assert plan(buckets("last", fill="previous"), metrics=(STATE,)).fill == "previous"


def test_a_numeric_aggregation_on_a_string_metric_names_the_allowed_ones():
    with pytest.raises(BadRequest, match="use count, first, last or count_distinct"):
        check_aggregable(parse_aggregation("avg"), STATE)
    for how in ("count", "first", "last", "count_distinct"):
        check_aggregable(parse_aggregation(how), STATE)
    check_aggregable(None, STATE)


def test_too_many_buckets_in_the_range_is_invalid_input_naming_interval():
    req = buckets(every="1 second")
    check_bucket_count(req, max_buckets=86400)
    with pytest.raises(InvalidInput) as caught:
        check_bucket_count(req, max_buckets=86399)
    assert [e["field"] for e in caught.value.errors] == ["interval"]


def test_buckets_that_would_start_before_year_one_are_refused():
    early = QueryRequest(metrics=("cpu",), start=datetime(3, 1, 1, tzinfo=UTC),
                         end=datetime(3, 2, 1, tzinfo=UTC), aggregation=parse_aggregation("avg"),
                         interval=parse_interval("5 years"))
    with pytest.raises(InvalidInput, match="before year 1"):
        check_bucket_count(early, max_buckets=10**6)
