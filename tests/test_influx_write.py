"""InfluxDB line protocol on POST /api/v2/write and POST /write: the mapping to metrics and
tags, precisions, gzip, errors naming lines, limits, and InfluxData's own Python client."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta

import pytest
from helpers import assert_problem, query, stored_series, utc
from live import serving

DAY_START = "2020-07-12T00:00:00Z"
DAY_END = "2020-07-13T00:00:00Z"
T0 = datetime(2020, 7, 12, 1, 2, 3, tzinfo=UTC)
T0_S = int(T0.timestamp())


def write(client, body, path="/api/v2/write?org=o&bucket=b", headers=None, **kwargs):
    if isinstance(body, str):
        body = body.encode()
    return client.post(path, data=body, content_type="text/plain; charset=utf-8",
                       headers=headers or {}, **kwargs)


def rows(client, metric, start=DAY_START, end=DAY_END):
    return [(utc(r["time"]), r["value"])
            for r in query(client, metric=metric, start_time=start, end_time=end)]


def influx_problem(response, status):
    body = assert_problem(response, status)
    assert isinstance(body.get("code"), str) and body["code"], body
    assert body.get("message") == body["detail"], body
    return body


# --- the mapping ----------------------------------------------------------------------------


def test_each_field_becomes_measurement_dot_field_with_the_lines_tags(app, client):
    response = write(client, f"weather,site=north,room=2 temp=21.5,hum=40i {T0_S}",
                     "/api/v2/write?org=o&bucket=b&precision=s")
    assert response.status_code == 204, response.get_json()
    assert response.data == b""
    assert rows(client, "weather.temp") == [(T0, 21.5)]
    assert rows(client, "weather.hum") == [(T0, 40.0)]
    tags = (("room", "2"), ("site", "north"))
    assert stored_series(app) == {("weather.temp", tags), ("weather.hum", tags)}


def test_default_measurement_stores_bare_field_names(app, client):
    assert write(client, f"tsapi temp=1.5 {T0_S}", "/write?precision=s").status_code == 204
    assert rows(client, "temp") == [(T0, 1.5)]
    assert {name for name, _ in stored_series(app)} == {"temp"}


def test_default_measurement_is_configurable(make_app):
    app = make_app(TSAPI_INFLUX_DEFAULT_MEASUREMENT="sensors")
    client = app.test_client()
    body = f"sensors co=0.5 {T0_S}\ntsapi co=0.25 {T0_S}"
    assert write(client, body, "/write?precision=s").status_code == 204
    assert {name for name, _ in stored_series(app)} == {"co", "tsapi.co"}


def test_booleans_are_ones_and_zeros_strings_stay_strings_integers_are_exact(client):
    body = (f'm ok=t,bad=FALSE,label="a \\"b\\"",big=9007199254740992i,u=7u {T0_S}')
    assert write(client, body, "/write?precision=s").status_code == 204
    assert rows(client, "m.ok") == [(T0, 1.0)]
    assert rows(client, "m.bad") == [(T0, 0.0)]
    assert rows(client, "m.label") == [(T0, 'a "b"')]
    assert rows(client, "m.big") == [(T0, 9007199254740992)]
    assert rows(client, "m.u") == [(T0, 7.0)]


def test_integer_beyond_two_to_the_53_is_rejected_naming_the_line(client):
    body = f"m v=1i {T0_S}\nm v=9007199254740993i {T0_S}"
    problem = influx_problem(write(client, body, "/write?precision=s"), 400)
    assert problem["code"] == "invalid"
    assert "line 2" in problem["detail"] and "2**53" in problem["detail"]
    assert f"'m v=9007199254740993i {T0_S}'" in problem["detail"]
    assert client.get("/metrics").get_json() == []


@pytest.mark.parametrize(("path", "stamp"), [
    ("/api/v2/write?bucket=b&precision=s", T0_S),
    ("/api/v2/write?bucket=b&precision=ms", T0_S * 1000 + 250),
    ("/api/v2/write?bucket=b&precision=us", T0_S * 1_000_000 + 250_001),
    ("/api/v2/write?bucket=b&precision=ns", T0_S * 10**9 + 250_001_000),
    ("/api/v2/write?bucket=b", T0_S * 10**9 + 7),
    ("/write?db=d&precision=n", T0_S * 10**9 + 999),
    ("/write?db=d&precision=u", T0_S * 1_000_000 + 3),
    ("/write?db=d&precision=ms", T0_S * 1000 + 5),
    ("/write?db=d&precision=s", T0_S),
    ("/write?db=d&precision=m", T0_S // 60),
    ("/write?db=d&precision=h", T0_S // 3600),
    ("/write?db=d&precision=n", -1500),  # before 1970: still rounded down, to -2 µs
])
def test_timestamp_precision_is_honoured_and_nanoseconds_round_down(client, path, stamp):
    precision = path.partition("precision=")[2] or "ns"
    per_second = {"s": 1, "ms": 10**3, "us": 10**6, "u": 10**6, "ns": 10**9, "n": 10**9}
    if precision in ("m", "h"):
        expected = datetime.fromtimestamp(stamp * (60 if precision == "m" else 3600), UTC)
    else:
        seconds, rest = divmod(stamp, per_second[precision])
        micros = rest * 10**6 // per_second[precision]  # sub-microsecond digits dropped
        expected = datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=micros)
    assert write(client, f"m v=1 {stamp}", path).status_code == 204
    assert rows(client, "m.v", "1969-12-31T00:00:00Z", "2100-01-01T00:00:00Z") == [(expected, 1.0)]


def test_lines_without_timestamp_share_one_server_time(client):
    before = datetime.now(UTC)
    assert write(client, "m a=1\nm b=2\n" * 3).status_code == 204
    after = datetime.now(UTC)
    start, end = before - timedelta(seconds=1), after + timedelta(seconds=1)
    got = rows(client, "m.a", start.isoformat(), end.isoformat())
    got += rows(client, "m.b", start.isoformat(), end.isoformat())
    assert len(got) == 2 and got[0][0] == got[1][0]
    assert before - timedelta(microseconds=1) <= got[0][0] <= after


def test_gzip_body_is_accepted(client):
    body = gzip.compress("".join(f"m v={i} {T0_S + i}\n" for i in range(50)).encode())
    response = write(client, body, "/api/v2/write?bucket=b&precision=s",
                     headers={"Content-Encoding": "gzip"})
    assert response.status_code == 204
    assert [v for _, v in rows(client, "m.v")] == [float(i) for i in range(50)]


def test_token_authorization_header_is_accepted(client):
    response = write(client, f"m v=1 {T0_S}", "/api/v2/write?bucket=b&precision=s",
                     headers={"Authorization": "Token anything"})
    assert response.status_code == 204


def test_empty_body_stores_nothing(client):
    assert write(client, "\n# nothing\n").status_code == 204
    assert client.get("/metrics").get_json() == []


# --- the bucket tag -------------------------------------------------------------------------


def test_bucket_is_not_a_tag_by_default(app, client):
    assert write(client, f"m v=1 {T0_S}", "/api/v2/write?bucket=b&precision=s").status_code == 204
    assert stored_series(app) == {("m.v", ())}


def test_bucket_and_db_are_recorded_as_the_configured_tag(make_app):
    app = make_app(TSAPI_INFLUX_BUCKET_TAG="bucket")
    client = app.test_client()
    assert write(client, f"m v=1 {T0_S}", "/api/v2/write?bucket=b1&precision=s").status_code == 204
    assert write(client, f"m v=2 {T0_S}", "/write?db=d1&precision=s").status_code == 204
    assert write(client, f"m,bucket=own v=3 {T0_S}",
                 "/write?db=d1&precision=s").status_code == 204
    assert stored_series(app) == {("m.v", (("bucket", "b1"),)), ("m.v", (("bucket", "d1"),)),
                                  ("m.v", (("bucket", "own"),))}


# --- errors ---------------------------------------------------------------------------------


def test_bad_line_rejects_the_body_naming_the_first_bad_line_and_stores_nothing(client):
    body = f"m v=1 {T0_S}\n# c\nm v=oops {T0_S}\nm w= {T0_S}\n"
    problem = influx_problem(write(client, body, "/write?precision=s"), 400)
    assert problem["code"] == "invalid"
    assert "line 3" in problem["message"] and "'v'" in problem["message"]
    assert [e["line"] for e in problem["errors"]] == [3, 4]
    assert client.get("/metrics").get_json() == []


def test_accept_partial_stores_the_good_lines_and_still_names_the_bad(client):
    body = f"m v=1 {T0_S}\nm v=oops {T0_S + 1}\nm v=3 {T0_S + 2}\n"
    problem = influx_problem(
        write(client, body, "/write?precision=s&accept_partial=true"), 400)
    assert "line 2" in problem["detail"] and "2 point(s) were stored" in problem["detail"]
    assert [v for _, v in rows(client, "m.v")] == [1.0, 3.0]


def test_type_conflict_with_stored_metric_is_422_naming_the_line(client):
    assert write(client, f"m v=1 {T0_S}", "/write?precision=s").status_code == 204
    body = f"m v=2 {T0_S + 1}\nm v=\"text\" {T0_S + 2}"
    problem = influx_problem(write(client, body, "/write?precision=s"), 422)
    assert problem["errors"][0]["line"] == 2
    assert "line 2" in problem["detail"]
    assert rows(client, "m.v") == [(T0, 1.0)]


def test_timestamp_out_of_range_names_the_line(client):
    problem = influx_problem(write(client, "m v=1 1\nm v=1 99999999999999", "/write?precision=s"),
                             400)
    assert "line 2" in problem["detail"] and "out of range" in problem["detail"]


def test_invalid_utf8_names_the_line(client):
    problem = influx_problem(write(client, b"m v=1\nm,t=\xff v=1\n"), 400)
    assert "line 2" in problem["detail"]


def test_too_many_points_is_413(make_app):
    client = make_app(TSAPI_MAX_BATCH_POINTS=2).test_client()
    problem = influx_problem(write(client, f"m a=1,b=2,c=3 {T0_S}", "/write?precision=s"), 413)
    assert problem["code"] == "request too large"


def test_gzip_bomb_is_413(make_app):
    client = make_app(TSAPI_MAX_BODY_BYTES=1000).test_client()
    body = gzip.compress(b"m v=1\n" * 10_000)
    response = write(client, body, headers={"Content-Encoding": "gzip"})
    problem = influx_problem(response, 413)
    assert [e["field"] for e in problem["errors"]] == ["body"]


def test_damaged_gzip_is_a_400_naming_the_body(client):
    response = write(client, b"not gzip at all", headers={"Content-Encoding": "gzip"})
    problem = influx_problem(response, 400)
    assert [e["field"] for e in problem["errors"]] == ["body"]


def test_unknown_precision_is_refused(client):
    assert_problem(write(client, "m v=1", "/api/v2/write?bucket=b&precision=weeks"), 422)


# --- InfluxData's client library, over real HTTP --------------------------------------------


def test_influxdb_client_writes_points_that_query_reads_back(app, client):
    from influxdb_client import InfluxDBClient, Point, WritePrecision
    from influxdb_client.client.exceptions import InfluxDBError
    from influxdb_client.client.write_api import SYNCHRONOUS

    t1 = T0 + timedelta(microseconds=123456)
    points = [
        Point("weather").tag("site", "north").field("temp", 21.5).field("ok", True)
        .time(T0, WritePrecision.NS),
        Point("weather").tag("site", "north").field("temp", 22.25).field("ok", False)
        .time(t1, WritePrecision.NS),
        Point("weather").tag("site", "south west").field("note", 'say "hi"')
        .field("count", 42).time(T0, WritePrecision.S),
        Point("tsapi").field("humidity", 51).time(T0, WritePrecision.MS),
    ]
    with serving(app) as url, InfluxDBClient(url=url, token="secret", org="o") as influx:
        writer = influx.write_api(write_options=SYNCHRONOUS)
        writer.write(bucket="b", record=points)
        writer.write(bucket="b", record="weather,site=east temp=1.5 " + str(T0_S),
                     write_precision=WritePrecision.S)
        with pytest.raises(InfluxDBError) as failure:
            writer.write(bucket="b", record="weather temp=oops")
    assert failure.value.response.status == 400
    assert "line 1" in failure.value.message
    assert sorted(rows(client, "weather.temp")) == [(T0, 1.5), (T0, 21.5), (t1, 22.25)]
    assert rows(client, "weather.ok") == [(T0, 1.0), (t1, 0.0)]
    assert rows(client, "weather.note") == [(T0, 'say "hi"')]
    assert rows(client, "weather.count") == [(T0, 42.0)]
    assert rows(client, "humidity") == [(T0, 51.0)]
    assert stored_series(app) >= {("weather.temp", (("site", "north"),)),
                                  ("weather.temp", (("site", "east"),)),
                                  ("weather.note", (("site", "south west"),))}


def test_database_down_is_503_with_retry_after(make_app):
    # Nothing listens on port 1: every connection attempt is refused, as in an outage.
    app = make_app(DATABASE_URL="postgresql://postgres@127.0.0.1:1/tsapi")
    response = write(app.test_client(), f"m v=1 {T0_S}", "/write?precision=s")
    assert_problem(response, 503)
    assert response.headers["Retry-After"].isdigit()


@pytest.mark.parametrize("path", ["/write?db=d&precision=weeks",
                                  "/api/v2/write?bucket=b&precision=weeks"])
def test_a_bad_query_parameter_carries_influxdbs_members_too(client, path):
    # The arguments' 422 came without `code` and `message`, unlike every other write error.
    problem = influx_problem(write(client, "m v=1", path), 422)
    assert problem["code"] == "unprocessable entity"
    assert problem["error"] == problem["detail"]


@pytest.mark.parametrize("path", ["/write?db=d", "/api/v2/write?bucket=b"])
def test_a_write_error_carries_influxdb_1s_error_member(client, path):
    # Telegraf's influxdb (v1) output logs `error` with the points it drops; it read nothing.
    problem = influx_problem(write(client, "m v=oops", path), 400)
    assert problem["error"] == problem["detail"]
    assert "line 1" in problem["error"]
