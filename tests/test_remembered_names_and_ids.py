"""What a write remembers for the next ones (valid metric names and tag sets, metric and series
ids) changes no later answer: a metric deleted and made anew with the other type, a name
found valid by JSON and then sent as line protocol, a batch of cached and new series with a
(series, time) twice, many threads validating while the remembered names are cleared."""

from __future__ import annotations

import threading

import pytest
from helpers import assert_problem, ingest, point, query

from tsapi.errors import InvalidInput
from tsapi.formats.validation import CHECKED, MAX_TAGS, validate_points
from tsapi.store.writer import _metric_kinds

T1, T2, T3 = "2024-05-01T00:00:00.000000Z", "2024-05-01T00:01:00.000000Z", "2024-05-01T00:02:00Z"
RANGE = {"start_time": "2024-05-01T00:00:00Z", "end_time": "2024-05-02T00:00:00Z"}


def refused(response) -> dict:
    """A 4xx problem (type conflicts are 422, malformed input 400)."""
    assert response.status_code in (400, 422), (response.status_code, response.get_data())
    return assert_problem(response, response.status_code)


def values(client, metric: str) -> list:
    return [p["value"] for p in query(client, metric=metric, **RANGE)]


def test_a_metric_deleted_and_made_anew_as_text_refuses_numbers_sent_with_cached_ids(client):
    ingest(client, [point(T1, "flip", 1.0, host="a")])
    ingest(client, [point(T2, "flip", 2.0, host="a")])  # ids cached now
    assert client.delete("/metrics/flip").status_code in (200, 204)
    ingest(client, [point(T1, "flip", "on", host="a")])  # the same name, now text
    refused(client.post("/ingest", json={"data": [point(T3, "flip", 3.0, host="a")]}))
    response = client.post("/write?db=x", data=b"lp,host=a v=1 1714521600000000000")
    assert response.status_code == 204
    ingest(client, [point(T1, "lp.v", 1.0, host="a")])
    assert client.delete("/metrics/lp.v").status_code in (200, 204)
    ingest(client, [point(T1, "lp.v", "text", host="a")])
    refused(client.post("/write?db=x", data=b"lp,host=a v=2 1714521660000000000"))
    assert values(client, "flip") == ["on"]
    assert values(client, "lp.v") == ["text"]


def test_a_repeated_field_of_two_types_is_a_400_not_a_500(client):
    response = client.post("/write?db=x", data=b'm v=1,v="t" 1714521600000000000')
    assert response.status_code != 500, response.get_data()
    if response.status_code != 204:
        refused(response)
        assert client.get("/metrics").get_json() == []


def test_a_batch_of_cached_and_new_series_with_a_point_twice_keeps_the_last(client):
    ingest(client, [point(T1, "mix", 1.0, host="a")])
    ingest(client, [point(T2, "mix", 2.0, host="a")])
    ingest(client, [point(T1, "mix", 10.0, host="a"), point(T1, "mix", 5.0, host="b"),
                    point(T1, "mix", 11.0, host="a"), point(T1, "mix", 6.0, host="b"),
                    point(T3, "mix", 7.0)])
    assert sorted(values(client, "mix")) == [2.0, 6.0, 7.0, 11.0]
    # Every id cached now: the one autocommit statement, with a point twice.
    ingest(client, [point(T2, "mix", 20.0, host="a"), point(T2, "mix", 21.0, host="a"),
                    point(T3, "mix", 8.0)])
    assert sorted(values(client, "mix")) == [6.0, 8.0, 11.0, 21.0]



def test_a_batch_the_caches_miss_reads_its_metrics_types_once(client, monkeypatch):
    """The caches' lookup and the write with its metrics locked both need each metric's
    type: one pass over the batch serves both."""
    passes = []
    monkeypatch.setattr("tsapi.store.writer._metric_kinds",
                        lambda *args: passes.append(args) or _metric_kinds(*args))
    ingest(client, [point(T1, "kinds", 1.0), point(T1, "kinds.text", "on")])  # new: a miss
    assert len(passes) == 1
    assert values(client, "kinds") == [1.0] and values(client, "kinds.text") == ["on"]

def test_a_name_found_valid_as_json_is_checked_again_as_line_protocol_naming(client):
    long = "m" * 255
    ingest(client, [point(T1, long, 1.0)])
    # Line protocol's measurement.field of the same length and more is too long, whatever
    # JSON found valid (names are remembered whole, not by measurement).
    body = f"{long[:253]} v=1,{long[:2]}=1 1714521600000000000".encode()
    response = client.post("/write?db=x", data=body)
    assert_problem(response, 400)


def test_a_tag_set_remembered_valid_is_still_counted_with_the_bucket_tag(make_app):
    client = make_app(TSAPI_INFLUX_BUCKET_TAG="bucket").test_client()
    tags = {f"k{n}": "v" for n in range(MAX_TAGS)}
    ingest(client, [point(T1, "many", 1.0, **tags)])  # 32 tags: valid, remembered
    line = "many," + ",".join(f"{k}={v}" for k, v in tags.items()) + " v=1 1714521600000000000"
    problem = refused(client.post("/api/v2/write?bucket=b&org=o", data=line.encode()))
    assert f"more than {MAX_TAGS} tags" in problem["errors"][0]["message"]
    assert client.post("/query", json={"metric": "many.v", **RANGE}).status_code == 404


@pytest.mark.parametrize("threads", [8])
def test_threads_clearing_the_remembered_names_get_the_verdicts_of_the_full_checks(threads):
    CHECKED.metrics.clear()
    CHECKED.tag_sets.clear()
    bad = ["", " x", "a\x00", "b\x01", "c\ud800", "x" * 256]
    bad_tag_values = ["a\x00", "b\x01", "c\ud800", "d\x7f"]
    wrong = []

    def work(n):
        for round_ in range(600):  # 8 x 600 names: past the bound, so cleared
            good = f"t{n}-{round_}"
            points = [{"time": T1, "metric": good, "value": 1, "tags": {"k": good}}]
            validate_points(points)  # remembered, and fills the cache to its bound
            for name in bad:
                try:
                    validate_points([{"time": T1, "metric": name, "value": 1}])
                    wrong.append(name)
                except InvalidInput:
                    pass
            for text in bad_tag_values:
                try:
                    validate_points([{"time": T1, "metric": "ok", "value": 1,
                                      "tags": {"k": text}}])
                    wrong.append(("tag", text))
                except InvalidInput:
                    pass

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert wrong == []
    assert len(CHECKED.metrics) <= CHECKED.MAX_ENTRIES


def test_a_metric_deleted_and_made_anew_with_its_type_takes_points_sent_with_stale_ids(client):
    ingest(client, [point(T1, "again", 1.0, host="a")])
    ingest(client, [point(T2, "again", 2.0, host="a")])  # ids cached now
    assert client.delete("/metrics/again").status_code in (200, 204)
    ingest(client, [point(T3, "again", 3.0, host="a")])  # stale ids: retried with new ones
    assert client.post("/write?db=x", data=b"again,host=a v=4 1714521600000000000"
                       ).status_code == 204
    ingest(client, [point(T1, "again", 5.0, host="a")])
    assert values(client, "again") == [5.0, 3.0]
    assert values(client, "again.v") == [4.0]
