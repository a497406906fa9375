"""The /query schema hands the service a typed QueryRequest, never a dict of arguments."""

from datetime import UTC, datetime

import marshmallow as ma
import pytest

from tsapi.api.resources.query.schemas import QueryRequestSchema
from tsapi.services.query import QueryRequest

RANGE = {"start_time": "2024-03-01T00:00:00Z", "end_time": "2024-03-02T00:00:00+01:00"}


def load(**body) -> QueryRequest:
    return QueryRequestSchema().load({**RANGE, **body})


def test_a_bare_raw_request_gets_the_defaults():
    req = load(metric="cpu")
    assert req == QueryRequest(metrics=("cpu",), start=datetime(2024, 3, 1, tzinfo=UTC),
                               end=datetime(2024, 3, 1, 23, tzinfo=UTC))
    assert req.raw and not req.paged and not req.multi
    assert req.start.tzinfo == req.end.tzinfo == UTC


def test_every_option_arrives_typed():
    req = load(metrics=["cpu", "mem"], aggregation="p99.9", interval="15m",
               timezone="Europe/Berlin", tags={"host": ["a", "b"], "dc": "x"},
               group_by=["host"], fill="linear", format="ndjson")
    assert req.metrics == ("cpu", "mem") and req.multi
    assert (req.aggregation.name, req.aggregation.percentile) == ("p99.9", pytest.approx(0.999))
    assert str(req.interval) == "15 minutes" == str(req.bucket_interval)
    assert req.tags == {"host": ("a", "b"), "dc": "x"}
    assert (req.group_by, req.fill, req.timezone, req.format) == (
        ("host",), "linear", "Europe/Berlin", "ndjson")


def test_raw_paging_options_arrive_typed():
    req = load(metric="cpu", order="desc", limit=5, cursor="abc")
    assert (req.descending, req.limit, req.cursor, req.paged) == (True, 5, "abc", True)
    assert load(metric="cpu", order="asc").descending is False


def test_the_request_cannot_be_changed_on_its_way_through_the_layers():
    with pytest.raises(AttributeError):
        load(metric="cpu").limit = 5  # type: ignore[misc]


def test_times_without_an_offset_are_utc_and_others_are_converted():
    req = load(metric="cpu", start_time="2024-03-01T00:00:00",
               end_time="2024-03-01T06:00:00-02:00")
    assert req.start == datetime(2024, 3, 1, tzinfo=UTC)
    assert req.end == datetime(2024, 3, 1, 8, tzinfo=UTC)
    assert req.end.tzinfo == UTC


def test_invalid_bodies_still_fail_validation_naming_the_field():
    with pytest.raises(ma.ValidationError) as caught:
        load(metric="cpu", metrics=["mem"])
    assert "metric" in caught.value.messages
    with pytest.raises(ma.ValidationError) as caught:
        load(metric="cpu", start_time="0001-01-01T00:00:00Z", timezone="Europe/Berlin")
    assert "start_time" in caught.value.messages
