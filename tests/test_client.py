"""tsapi.client.Client against a live server: ingest, query (rows, dataclasses, DataFrame),
metrics, and problem details surfaced as a typed ApiError."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import pytest
from live import serving

from tsapi.client import ApiError, Client, Point

T0 = datetime(2024, 3, 10, 1, 0, tzinfo=UTC)
END = T0 + timedelta(days=1)


@pytest.fixture
def api(app):
    with serving(app) as url:
        yield Client(url, api_key="k", timeout=10)


def test_ingest_then_query_returns_the_points(api):
    points = [{"time": T0 + timedelta(minutes=i), "metric": "temp", "value": 20.0 + i,
               "tags": {"room": "a"}} for i in range(3)]
    assert api.ingest(points) == 3
    assert api.query("temp", T0, END) == [
        {"time": (T0 + timedelta(minutes=i)).isoformat(), "value": 20.0 + i} for i in range(3)]


def test_query_with_aggregation_and_interval(api):
    api.ingest([{"time": T0 + timedelta(minutes=i), "metric": "temp", "value": float(i)}
                for i in range(90)])
    rows = api.query("temp", T0, END, aggregation="count", interval="1h")
    assert [(r["time"], r["value"]) for r in rows] == [
        (T0.isoformat(), 60), ((T0 + timedelta(hours=1)).isoformat(), 30)]


def test_query_points_gives_dataclasses_with_aware_times(api):
    api.ingest([{"time": "2024-03-10T01:00:00Z", "metric": "state", "value": "on"}])
    assert api.query_points("state", T0, END) == [Point(T0, "on")]


def test_metrics_lists_what_was_stored(api):
    api.ingest([{"time": T0, "metric": "b", "value": 1}, {"time": T0, "metric": "a", "value": "x"}])
    found = {(m["name"], m["value_type"]) for m in api.metrics()}
    assert found == {("a", "string"), ("b", "number")}


def test_invalid_points_raise_api_error_carrying_the_problem(api):
    with pytest.raises(ApiError) as failure:
        api.ingest([{"time": T0, "metric": "temp", "value": True}])
    error = failure.value
    assert error.status == 422
    assert error.title == "Unprocessable Entity"
    assert error.problem["status"] == 422
    assert [e["field"] for e in error.errors] == ["data[0].value"]
    assert str(error).startswith("HTTP 422: ")


def test_unknown_metric_is_a_404_api_error(api):
    with pytest.raises(ApiError) as failure:
        api.query("nothing", T0, END)
    assert failure.value.status == 404


def test_unreachable_server_is_an_api_error_without_status(app):
    with serving(app) as url:
        pass  # the port is closed again
    with pytest.raises(ApiError) as failure:
        Client(url, timeout=5).metrics()
    assert failure.value.status is None and "cannot reach" in str(failure.value)


def test_query_df_without_pandas_says_what_to_install(api, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now fails
    with pytest.raises(ImportError, match="pip install pandas"):
        api.query_df("temp", T0, END)


def test_query_df_is_indexed_by_utc_time(api):
    import pandas
    api.ingest([{"time": T0, "metric": "temp", "value": 1.5}])
    frame = api.query_df("temp", T0, END)
    assert list(frame["value"]) == [1.5]
    assert frame.index[0] == pandas.Timestamp(T0)
