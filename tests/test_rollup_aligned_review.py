"""Review of the one-statement rollup answer: requests whose bytes must equal the raw path's."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from rollup_support import Store, at

from tsapi.formats.validation import PointBatch
from tsapi.store.rollup_refresh import refresh
from tsapi.store.writer import write_batch

ANSWERED_FROM = "X-Tsapi-Answered-From"


@pytest.fixture
def clients(make_app, database_urls, backend):
    # No response cache: each app's in-process cache would keep answers from before a write
    # made through the other app (or below HTTP).
    rolled = make_app(REDIS_URL=None, TSAPI_MAX_CACHED_BYTES=0).test_client()
    raw = make_app(REDIS_URL=None, TSAPI_ROLLUPS="off", TSAPI_MAX_CACHED_BYTES=0).test_client()
    store = Store(database_urls[backend])
    yield rolled, raw, store
    store.dispose()


def _write(store: Store, points) -> None:
    """(time, metric, value, tags as a dict) each."""
    batch = PointBatch()
    for time, metric, value, tags in points:
        batch.times.append(time)
        batch.metrics.append(metric)
        batch.values.append(value)
        batch.tags.append(tuple(sorted(tags.items())))
    write_batch(store.engine, batch, store.cache)


def _body(start_s: float, end_s: float, **extra) -> dict:
    return {"metric": "temp", "start_time": at(start_s).isoformat(),
            "end_time": at(end_s).isoformat(), "aggregation": "avg", "interval": "1h", **extra}


def _close(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9) or a == b
    return a == b


def _same_bytes(rolled, raw, body) -> str:
    """The same bytes (count, min, max, first, last) or values within 1e-9 (sum, avg,
    stddev); the rollup path's X-Tsapi-Answered-From."""
    a, b = rolled.post("/query", json=body), raw.post("/query", json=body)
    assert a.status_code == b.status_code, (body, a.get_data(), b.get_data())
    assert a.status_code in (200, 422), a.get_data()  # 422: a sum overflowing on both
    if body.get("aggregation") in ("sum", "avg", "stddev") and a.status_code == 200:
        assert _close(a.get_json(), b.get_json()), (body, a.get_data(), b.get_data())
    else:
        assert a.get_data() == b.get_data(), body
    return a.headers.get(ANSWERED_FROM, "")


@pytest.mark.parametrize("aggregation", ["count", "sum", "min", "max", "first", "last"])
def test_group_by_with_several_series_in_a_group_on_whole_level_buckets(clients, aggregation):
    """group_by over hourly buckets of whole hours: a group of two series (device a, two
    sensors) and a group of series without the tag are each one row per bucket."""
    rolled, raw, store = clients
    points = []
    for minute in range(3 * 60):
        for k, tags in enumerate([{"device": "a", "sensor": "1"}, {"device": "a", "sensor": "2"},
                                  {"device": "b"}, {"sensor": "9"}, {"sensor": "8"}]):
            points.append((at(minute * 60 + 5 + k), "temp", float((minute * 7 + k) % 13), tags))
    _write(store, points)
    refresh(store.engine, store.storage, timedelta(0), now=at(4 * 3600))
    for group_by in (["device"], ["sensor"], ["device", "sensor"], ["missing"]):
        body = _body(0, 3 * 3600, aggregation=aggregation, group_by=group_by)
        assert _same_bytes(rolled, raw, body) == "rollup-1h", body


def _series_data(store: Store, hours: int = 8) -> None:
    """Two metrics, three series each (device a, b, c), a point every 10 minutes plus some on
    the hour boundaries exactly."""
    points = []
    for metric, scale in (("temp", 1.0), ("hum", -3.0)):
        for step in range(hours * 6):
            for k, device in enumerate("abc"):
                value = scale * ((step * 7 + k * 5) % 23 - 11) / 4
                points.append((at(step * 600 + k * 0.000001), metric, value, {"device": device}))
    _write(store, points)


def test_one_shape_with_other_values_each_time(clients):
    """Every value of a kept statement is a parameter: other intervals, metrics, tags, zones
    and labels of the same shape, one after another, give the raw path's bytes."""
    rolled, raw, store = clients
    _series_data(store)
    refresh(store.engine, store.storage, timedelta(0), now=at(9 * 3600))
    sequences = [
        [_body(0, 6 * 3600, interval=i) for i in ("2h", "3h", "1h", "4h", "60m", "120m")],
        [_body(0, 6 * 3600, interval="2h", metric=m) for m in ("hum", "temp")],
        [_body(0, 6 * 3600, interval="2h", tags={"device": d}) for d in "abcz"],
        [_body(0, 6 * 3600, interval="1h", tags={"device": d}) for d in "abcz"],
        [_body(0, 8 * 3600, interval=i, timezone=z) for z in ("Europe/Berlin", "America/New_York",
                                                             "Asia/Kolkata", "UTC")
         for i in ("1h", "1d", "2h", "3h")],
        [_body(0, 8 * 3600, interval=i) for i in ("1mo", "2mo", "1h")],
        [{**_body(60, 6 * 3600 - 0.000001, interval=i), "aggregation": a}
         for i in ("2h", "3h") for a in ("first", "last", "stddev")],
        [{"metrics": ms, "start_time": at(0).isoformat(), "end_time": at(6 * 3600).isoformat(),
          "aggregation": "max", "interval": "1h"} for ms in (["temp", "hum"], ["hum", "temp"])],
    ]
    for bodies in sequences:
        for body in bodies:
            _same_bytes(rolled, raw, body)


@pytest.mark.xfail(strict=True, reason=(
    "-0.0 and 0.0 compare equal: min/max, and first/last among series tied on time, take "
    "whichever the scan or the combination meets first, and the two paths meet them in other "
    "orders. Needs one rule for signed zeros on every path (e.g. answers normalized by "
    "adding 0.0, or -0.0 ordered below 0.0 in the tie-break)."))
def test_signed_zeros_tied_across_series(clients):
    """-0.0 and 0.0 compare equal but are spelled apart: whichever a path meets first must
    not decide the answer."""
    rolled, raw, store = clients
    points = []
    for metric, order in (("temp", (-0.0, 0.0)), ("hum", (0.0, -0.0))):
        for hour in range(4):
            for second in (0, 1800, 3599):
                for device, value in zip("ab", order if hour % 2 else order[::-1], strict=True):
                    points.append((at(hour * 3600 + second), metric, value, {"device": device}))
    _write(store, points)
    refresh(store.engine, store.storage, timedelta(0), now=at(5 * 3600))
    differ = []
    for metric in ("temp", "hum"):
        for aggregation in ("first", "last", "min", "max"):
            for interval in ("1h", "2h", "4h"):
                for start in (0, 1800):
                    body = _body(start, 4 * 3600, metric=metric, aggregation=aggregation,
                                 interval=interval)
                    a, b = rolled.post("/query", json=body), raw.post("/query", json=body)
                    if a.get_data() != b.get_data():
                        differ.append((body, a.get_data(), b.get_data()))
    assert not differ, differ


def _shapes(metric: str = "temp") -> list[dict]:
    """Aligned bodies of several shapes: level-wide, wider, edged, grouped, tagged."""
    out = []
    for aggregation in ("count", "first", "last", "max", "avg"):
        out += [_body(0, 8 * 3600, metric=metric, aggregation=aggregation),
                _body(0, 8 * 3600, metric=metric, aggregation=aggregation, interval="2h"),
                _body(0.5, 8 * 3600 - 0.5, metric=metric, aggregation=aggregation),
                _body(0, 8 * 3600, metric=metric, aggregation=aggregation, group_by=["device"]),
                _body(0, 8 * 3600, metric=metric, aggregation=aggregation,
                      tags={"device": "a"})]
    return out


def test_writes_after_refresh_are_in_the_very_next_answer(clients, make_app):
    """An overwritten value, a new series backfilled into refreshed hours, a line protocol
    point, a deleted and rewritten metric: every shape answers as raw points do before the
    next refresh."""
    rolled, raw, store = clients
    _series_data(store)
    refresh(store.engine, store.storage, timedelta(0), now=at(9 * 3600))
    for body in _shapes():  # fill the kept statements with this data's values
        _same_bytes(rolled, raw, body)
    changes = [
        {"data": [{"time": at(2 * 3600).isoformat(), "metric": "temp", "value": 99.5,
                   "tags": {"device": "a"}}]},  # overwrites a point on a boundary
        {"data": [{"time": at(5 * 3600 - 0.000001).isoformat(), "metric": "temp",
                   "value": -99.5, "tags": {"device": "d"}}]},  # a new series, backfilled
        {"data": [{"time": at(3 * 3600 + 600).isoformat(), "metric": "temp", "value": 0.25,
                   "tags": {"device": "a", "extra": "x"}}]},  # one more series in group a
    ]
    for change in changes:
        assert rolled.post("/ingest", json=change).status_code == 200
        for body in _shapes():
            _same_bytes(rolled, raw, body)
    line = f"temp,device=b value=12.5 {int(at(6 * 3600).timestamp()) * 10**9}\n"
    assert rolled.post("/write?precision=ns", data=line).status_code in (200, 204)
    for body in _shapes():
        _same_bytes(rolled, raw, body)
    refresh(store.engine, store.storage, timedelta(0), now=at(9 * 3600))
    for body in _shapes():
        _same_bytes(rolled, raw, body)
    assert rolled.delete("/metrics/temp").status_code in (200, 204)
    _write(store, [(at(h * 1800 + 1), "temp", float(h), {"device": "a"}) for h in range(14)])
    for body in _shapes():
        _same_bytes(rolled, raw, body)


def test_a_marker_bucket_in_range(clients):
    """A value beyond what a rollup row may hold makes its hour a marker row: every shape
    over it answers as raw points do."""
    rolled, raw, store = clients
    _series_data(store)
    _write(store, [(at(3 * 3600 + 7), "temp", 1e131, {"device": "a"}),
                   (at(5 * 3600 + 7), "temp", -1e300, {"device": "b"})])
    refresh(store.engine, store.storage, timedelta(0), now=at(9 * 3600))
    for body in _shapes():
        _same_bytes(rolled, raw, body)
    for body in _shapes():
        body["aggregation"] = "stddev"
        _same_bytes(rolled, raw, body)


def test_many_shapes_from_threads(clients, make_app):
    """More shapes than are kept, asked from four threads at once: no error, raw bytes."""
    import threading
    rolled, raw, store = clients
    _series_data(store)
    refresh(store.engine, store.storage, timedelta(0), now=at(9 * 3600))
    bodies = []
    for aggregation in ("count", "sum", "min", "max", "first", "last", "avg", "stddev"):
        for interval in ("1h", "2h"):
            for zone in (None, "Europe/Berlin"):
                for group_by in ([], ["device"], ["device", "x"], ["x"]):
                    for tags in ({}, {"device": "a"}):
                        for edge in (0, 30):
                            body = _body(edge, 8 * 3600, aggregation=aggregation,
                                         interval=interval, group_by=group_by, tags=tags)
                            if zone:
                                body["timezone"] = zone
                            bodies.append(body)
    expected = [raw.post("/query", json=b).get_data() for b in bodies]
    failures = []

    def ask(part):
        client = make_app(REDIS_URL=None, TSAPI_MAX_CACHED_BYTES=0).test_client()
        for i in part:
            got = client.post("/query", json=bodies[i])
            if got.status_code != 200 or (bodies[i]["aggregation"] not in ("sum", "avg",
                                                                           "stddev")
                                          and got.get_data() != expected[i]):
                failures.append((bodies[i], got.status_code, got.get_data()[:200]))

    threads = [threading.Thread(target=ask, args=(range(k, len(bodies), 4),))
               for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(bodies) > 256
    assert not failures, failures[:3]


@pytest.mark.parametrize("start,end", [
    ("9999-12-31T23:30:00Z", "9999-12-31T23:59:59Z"),
    ("9999-12-31T21:30:00Z", "9999-12-31T23:59:59.999999Z"),
    ("0001-01-01T00:00:00Z", "0001-01-01T05:00:00Z"),
    ("1969-12-31T22:00:00Z", "1970-01-01T02:00:00.5Z"),
])
def test_ranges_at_the_ends_of_time(clients, start, end):
    rolled, raw, store = clients
    _series_data(store)
    refresh(store.engine, store.storage, timedelta(0), now=at(9 * 3600))
    for aggregation in ("count", "avg"):
        body = {"metric": "temp", "start_time": start, "end_time": end,
                "aggregation": aggregation, "interval": "1h"}
        a, b = rolled.post("/query", json=body), raw.post("/query", json=body)
        assert a.status_code == b.status_code, (a.get_data(), b.get_data())
        assert a.status_code < 500, a.get_data()
        assert a.get_data() == b.get_data()


def test_quotes_and_unicode_in_keys_values_and_names(clients):
    """Tag keys, tag values and metric names that would break SQL or JSON if written into
    either: parameters and the JSON encoder's spelling on both paths."""
    rolled, raw, store = clients
    key, value, metric = "dev'ice\"\\", "x'); DROP TABLE points; --\u00e9\u2028", "t'\"emp\u00e9"
    points = []
    for minute in range(0, 4 * 60, 10):
        for k, tags in enumerate([{key: value}, {key: "b"}, {"device": "a"}]):
            points.append((at(minute * 60 + k), metric, float(minute % 7 + k), tags))
    _write(store, points)
    refresh(store.engine, store.storage, timedelta(0), now=at(5 * 3600))
    for extra in ({"group_by": [key]}, {"tags": {key: value}}, {"group_by": [key, "device"]},
                  {"metrics": [metric, metric]}, {}):
        for aggregation in ("count", "last"):
            body = {**_body(0, 4 * 3600, aggregation=aggregation), "metric": metric, **extra}
            if "metrics" in extra:
                del body["metric"]
            assert _same_bytes(rolled, raw, body) == "rollup-1h", body


@pytest.mark.parametrize("zone", ["Australia/Adelaide", "Australia/Lord_Howe", "Asia/Kathmandu",
                                  "America/St_Johns"])
def test_half_hour_zones_over_a_dst_change(clients, zone):
    """Adelaide and Lord Howe leave DST on 2026-04-05 (Lord Howe by half an hour); the
    1-minute level answers, edges off the minute by microseconds read raw."""
    rolled, raw, store = clients
    start = (datetime(2026, 4, 4, 12, tzinfo=UTC) - at(0)).total_seconds()
    _write(store, [(at(start + step * 170 + k * 0.000001), "temp",
                    float((step * 5 + k * 3) % 17) / 8, {"device": d})
                   for step in range(8 * 3600 // 170) for k, d in enumerate("abc")])
    refresh(store.engine, store.storage, timedelta(0), now=at(start + 9 * 3600))
    for interval in ("15m", "30m", "1h", "1d"):
        for aggregation in ("count", "first", "max", "avg"):
            for lo, hi in ((0, 8 * 3600), (0.000001, 8 * 3600 - 0.000001), (1800, 5400)):
                body = _body(start + lo, start + hi, interval=interval, timezone=zone,
                             aggregation=aggregation)
                _same_bytes(rolled, raw, body)
                _same_bytes(rolled, raw, {**body, "group_by": ["device"]})


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_string_first_last_tied_across_series(clients, fmt):
    """String metrics keep the raw path; ties on time break by value there too."""
    rolled, raw, store = clients
    _write(store, [(at(s), "state", v, {"device": d}) for s in (10, 3610)
                   for d, v in (("a", "zeta"), ("b", "alpha"), ("c", "Mid"))])
    for interval in ("1h", None):
        for aggregation, expected in (("first", ["alpha", "Mid"]), ("last", ["zeta"])):
            body = {"metric": "state", "start_time": at(0).isoformat(), "format": fmt,
                    "end_time": at(7200).isoformat(), "aggregation": aggregation,
                    **({"interval": interval} if interval else {})}
            a, b = rolled.post("/query", json=body), raw.post("/query", json=body)
            assert a.status_code == 200, a.get_data()
            assert a.get_data() == b.get_data()
            if fmt == "json":
                assert {r["value"] for r in a.get_json()} <= set(expected), a.get_json()


def test_group_by_hourly_then_two_hourly(clients):
    """One series per group: 1h buckets can be the rollup rows as they are, 2h cannot; the
    kept statement of the first must not answer the second (interval width is a parameter,
    not part of the shape)."""
    rolled, raw, store = clients
    _series_data(store)
    refresh(store.engine, store.storage, timedelta(0), now=at(9 * 3600))
    for interval in ("1h", "2h", "1h", "3h"):
        body = _body(0, 6 * 3600, interval=interval, aggregation="count",
                     group_by=["device"])
        assert _same_bytes(rolled, raw, body) == "rollup-1h", body


def test_one_series_per_group_reads_rollup_rows_as_they_are(make_app, database_urls, backend):
    """Per device hourly over whole hours, one series per device: the statement reads the
    rollup rows without combining them (no partials), and gives the raw path's bytes."""
    from sqlalchemy import event
    app = make_app(REDIS_URL=None, TSAPI_MAX_CACHED_BYTES=0)
    raw = make_app(REDIS_URL=None, TSAPI_ROLLUPS="off", TSAPI_MAX_CACHED_BYTES=0).test_client()
    store = Store(database_urls[backend])
    try:
        _series_data(store)
        refresh(store.engine, store.storage, timedelta(0), now=at(9 * 3600))
        seen: list[str] = []
        event.listen(app.extensions["tsapi"].db.engine, "before_cursor_execute",
                     lambda conn, cursor, statement, *rest: seen.append(statement))
        body = _body(0, 6 * 3600, aggregation="max", group_by=["device"])
        assert _same_bytes(app.test_client(), raw, body) == "rollup-1h"
        rollup_reads = [s for s in seen if "rollups_1h" in s]
        assert len(rollup_reads) == 1 and " parts" not in rollup_reads[0], rollup_reads
    finally:
        store.dispose()


@pytest.mark.parametrize("aggregation", ["first", "last"])
def test_ties_across_series_between_rollup_rows_and_raw_edges(clients, aggregation):
    """Series tied on time at hour starts, hour ends and inside edges: the rollup rows'
    first/last meet raw edge points in one bucket; the tie rule holds on both paths."""
    rolled, raw, store = clients
    points = []
    for hour in range(5):
        for second in (0, 0.5, 1800, 3599.999999):
            for k, device in enumerate("abc"):
                value = float((hour * 5 + k * 7 + int(second)) % 11) - 5
                points.append((at(hour * 3600 + second), "temp", value, {"device": device}))
    _write(store, points)
    refresh(store.engine, store.storage, timedelta(0), now=at(6 * 3600))
    for lo, hi in ((0, 5 * 3600), (0.25, 5 * 3600 - 0.000001), (1800, 4 * 3600 + 1800),
                   (0.5, 3 * 3600 + 0.5)):
        for interval in ("1h", "2h", "5h"):
            _same_bytes(rolled, raw, _body(lo, hi, aggregation=aggregation, interval=interval))
