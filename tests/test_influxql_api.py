"""GET|POST /query in InfluxDB 1.x's dialect: parameters, answers, errors, credentials, and
fuzzed statements that must never be a 500."""

from __future__ import annotations

import base64
import time

import orjson
import pytest
from helpers import influxql
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from influxdb import InfluxDBClient
from influxdb.exceptions import InfluxDBClientError
from live import serving

from tsapi.store.keys import create_key

T0 = 1_594_512_000
LINES = "\n".join([
    f"cpu,host=a,region=us usage=1.5,idle=90 {T0}000000000",
    f"cpu,host=a,region=us usage=2.5,idle=80 {T0 + 60}000000000",
    f"cpu,host=b,region=eu usage=4.0,idle=70 {T0 + 30}000000000",
    f"cpu,host=b,region=eu usage=8.0,idle=60 {T0 + 150}000000000",
    f'door,room=hall state="open" {T0 + 5}000000000',
    f"tsapi temp=21.5 {T0 + 7}000000000",
])
RANGE = f"time >= {T0}000ms and time <= {T0 + 240}000ms"
GRAFANA = f'SELECT mean("usage") FROM "cpu" WHERE {RANGE} GROUP BY time(1m) fill(null)'


@pytest.fixture
def loaded(client):
    assert client.post("/write?db=telegraf", data=LINES).status_code == 204
    return client


def test_grafana_default_query_answers_in_influxdb_shape(loaded):
    status, body = influxql(loaded, GRAFANA, db="telegraf", epoch="ms")
    assert status == 200
    assert body == {"results": [{"statement_id": 0, "series": [{
        "name": "cpu", "columns": ["time", "mean"],
        "values": [[T0 * 1000, 2.75], [(T0 + 60) * 1000, 2.5], [(T0 + 120) * 1000, 8.0],
                   [(T0 + 180) * 1000, None], [(T0 + 240) * 1000, None]]}]}]}


def test_post_with_a_form_body_is_influxql_and_with_json_stays_tsapi_query(loaded):
    form = loaded.post("/query", data={"q": GRAFANA, "db": "telegraf", "epoch": "ms"})
    assert form.status_code == 200
    assert orjson.loads(form.data) == influxql(loaded, GRAFANA, db="telegraf",
                                               epoch="ms")[1]
    own = loaded.post("/query", json={"metric": "cpu.usage", "start_time": "2020-07-12T00:00:00Z",
                                      "end_time": "2020-07-13T00:00:00Z",
                                      "aggregation": "max"})
    assert own.status_code == 200
    assert orjson.loads(own.data) == [{"time": "2020-07-12T00:00:00+00:00", "value": 8.0}]


def test_a_post_without_body_or_q_is_an_influxdb_error(client):
    response = client.post("/query")
    assert response.status_code == 400
    assert orjson.loads(response.data) == {"error": 'missing required parameter "q"'}


def test_syntax_errors_are_400_for_the_whole_request(loaded):
    status, body = influxql(loaded, "SHOW DATABASES; SELEC x")
    assert status == 400
    assert body["error"].startswith("error parsing query: found SELEC, expected SELECT")


def test_statement_errors_are_reported_per_statement(loaded):
    status, body = influxql(loaded, f'SHOW MEASUREMENTS; SELECT mean("usage") * 2 FROM cpu;'
                            f' SELECT mean("usage") FROM cpu WHERE usage > 2 AND {RANGE};'
                            f' SELECT "usage" FROM cpu WHERE usage > 2 AND {RANGE}')
    assert status == 200
    first, second, third, fourth = body["results"]
    assert first["series"][0]["values"] == [["cpu"], ["door"], ["tsapi"]]
    assert second == {"statement_id": 1, "error": second["error"]}
    assert "unsupported expression" in second["error"]
    assert "field values are only supported in raw queries" in third["error"]
    assert [v for _, v in fourth["series"][0]["values"]] == [4.0, 2.5, 8.0]


def test_epoch_units_and_rfc3339_times(loaded):
    q = f'SELECT "usage" FROM cpu WHERE host = \'b\' AND {RANGE}'
    assert influxql(loaded, q)[1]["results"][0]["series"][0]["values"][0] == [
        "2020-07-12T00:00:30Z", 4.0]
    for unit, divisor in (("ns", 1), ("u", 1_000), ("ms", 1_000_000), ("s", 10**9),
                          ("m", 60 * 10**9), ("h", 3600 * 10**9)):
        values = influxql(loaded, q, epoch=unit)[1]["results"][0]["series"][0]["values"]
        assert values[0][0] == (T0 + 30) * 10**9 // divisor
    status, body = influxql(loaded, q, epoch="fortnight")
    assert status == 400 and "invalid epoch" in body["error"]


# The earliest time the statement allows; its 30-day bucket starts before it, in 1677.
FROM_1677 = ("SELECT count(\"usage\") FROM cpu WHERE time >= -9223372036854775806 "
             f"AND time <= {T0}000ms GROUP BY time(30d)")


def test_a_bucket_before_1677_in_epoch_ns_is_the_statements_error(loaded):
    # Past 64 bits the answer could not be written (a 500); other units still hold it.
    status, body = influxql(loaded, f"SHOW DATABASES; {FROM_1677}", epoch="ns")
    assert status == 200
    assert "series" in body["results"][0]
    assert "epoch=ns" in body["results"][1]["error"]
    status, body = influxql(loaded, FROM_1677, epoch="u")
    assert body["results"][0]["series"][0]["values"][0][0] < -(2**63) // 1000


def test_a_zone_offset_in_seconds_is_written_to_the_minute_as_influxdb_does(loaded):
    # Berlin kept local mean time (+00:53:28) until 1893; RFC 3339 offsets have no seconds
    # (it was written "+00:5328").
    status, body = influxql(loaded, FROM_1677 + " tz('Europe/Berlin')")
    assert body["results"][0]["series"][0]["values"][0][0].endswith("T00:00:00+00:53")


def test_a_sum_past_the_largest_double_is_the_statements_error(loaded):
    # It was /query's 422 problem document, which InfluxDB clients cannot read, for the
    # whole request: the other statements' answers were lost with it.
    assert loaded.post("/write?db=telegraf", data=f"big v=1e308 {T0}000000000\n"
                       f"big v=1e308 {T0 + 1}000000000").status_code == 204
    status, body = influxql(loaded, f"SHOW DATABASES; SELECT sum(\"v\") FROM big WHERE {RANGE}")
    assert status == 200
    assert "series" in body["results"][0]
    assert "double-precision" in body["results"][1]["error"]


def test_pretty_indents_and_chunked_is_accepted(loaded):
    response = loaded.get("/query", query_string={"q": "SHOW DATABASES", "db": "telegraf",
                                                  "pretty": "true", "chunked": "true"})
    assert response.status_code == 200
    assert b"\n  " in response.data
    assert orjson.loads(response.data)["results"][0]["series"][0]["values"] == [["telegraf"]]


def test_default_measurement_fields_are_bare_metric_names(loaded):
    status, body = influxql(loaded, f'SELECT "temp" FROM "tsapi" WHERE {RANGE}')
    assert body["results"][0]["series"][0]["values"] == [["2020-07-12T00:00:07Z", 21.5]]


def test_grafana_relative_range_with_fill_null_covers_every_bucket(client):
    now = int(time.time())
    lines = "\n".join(f"load,host=x value={i} {now - 3000 + i * 600}000000000"
                      for i in range(5))
    assert client.post("/write", data=lines).status_code == 204
    status, body = influxql(client, 'SELECT mean("value") FROM "load" WHERE time >= now() - '
                            '1h and time <= now() GROUP BY time(10m) fill(null)', epoch="s")
    values = body["results"][0]["series"][0]["values"]
    # The buckets of now - 1h through now: 7, or 6 when now - 1h starts a bucket exactly.
    assert len(values) in (6, 7)
    assert [t for t, _ in values] == list(range(values[0][0], values[-1][0] + 1, 600))
    assert values[0][0] <= now - 3600 < values[0][0] + 600
    assert sorted(v for _, v in values if v is not None) == [0, 1, 2, 3, 4]


# -- credentials ---------------------------------------------------------------------------------
@pytest.fixture
def secure(make_app):
    app = make_app(TSAPI_AUTH="required")
    with app.extensions["tsapi"].db.engine.begin() as conn:
        read = create_key(conn, "grafana", {"read"})[1]
        write = create_key(conn, "telegraf", {"write"})[1]
    return app, read, write


def test_credentials_as_u_p_token_or_basic_and_influxdb_style_refusals(secure):
    app, read, write = secure
    client = app.test_client()
    q = {"q": "SHOW DATABASES"}
    assert client.get("/query", query_string=q).status_code == 401
    assert orjson.loads(client.get("/query", query_string=q).data) == {
        "error": "A valid API key is required: send `Authorization: Bearer <token>`."}
    assert client.get("/query", query_string={**q, "u": "grafana", "p": read}).status_code \
        == 200
    assert client.post("/query", data={**q, "u": "grafana", "p": read}).status_code == 200
    assert client.get("/query", query_string=q,
                      headers={"Authorization": f"Token {read}"}).status_code == 200
    basic = base64.b64encode(f"grafana:{read}".encode()).decode()
    assert client.get("/query", query_string=q,
                      headers={"Authorization": f"Basic {basic}"}).status_code == 200
    refused = client.get("/query", query_string={**q, "p": write})
    assert refused.status_code == 403
    assert "read" in orjson.loads(refused.data)["error"]
    # `p` is a credential for InfluxQL only: tsapi's own JSON query ignores it.
    own = client.post("/query?p=" + read, json={"metric": "m", "start_time": "2020-01-01",
                                                "end_time": "2020-01-02"})
    assert own.status_code == 401


def test_influxdb_python_client_reads_with_a_key_as_password(secure):
    app, read, _ = secure
    with serving(app) as base:
        port = int(base.rsplit(":", 1)[1])
        client = InfluxDBClient("127.0.0.1", port, username="grafana", password=read,
                                database="telegraf")
        assert client.ping() == "1.8.10-tsapi"  # /ping is open, as in InfluxDB
        assert list(client.query("SHOW DATABASES").get_points()) == [{"name": "telegraf"}]
        anonymous = InfluxDBClient("127.0.0.1", port, database="telegraf")
        with pytest.raises(InfluxDBClientError) as refused:
            anonymous.query("SHOW DATABASES")
        assert refused.value.code == 401


# Statements at the edges of every limit: each is answered or refused, never a 500.
EDGES = [
    "²", "SELECT usage FROM cpu WHERE time > ²",
    "SELECT mean(nofield) FROM cpu WHERE time > 0 GROUP BY time(1u)",
    "SELECT mean(usage) FROM cpu WHERE time > 0 GROUP BY time(1u) fill(0) tz('Europe/Paris')",
    "SELECT usage FROM cpu WHERE time > '２０２０-01-01'",
    'SELECT mean(usage) FROM cpu WHERE time > 0 GROUP BY time(0s)',
    'SELECT mean(usage) FROM cpu WHERE time > 0 GROUP BY time(1u)',
    'SELECT mean(usage) FROM cpu WHERE time > 0 GROUP BY time(1ns)',
    'SELECT mean(usage) FROM cpu WHERE time > 0 GROUP BY time(100000w)',
    'SELECT mean(usage) FROM cpu WHERE time > 0 GROUP BY time(1ms)',
    "SELECT usage FROM cpu WHERE time >= '9999-12-31T00:00:00Z'",
    "SELECT usage FROM cpu WHERE time >= '2262-04-11T23:47:16Z'",
    "SELECT usage FROM cpu WHERE time <= '1677-09-21T00:12:44Z'",
    'SELECT usage FROM cpu WHERE time >= now() + 1000000w',
    'SELECT usage FROM cpu WHERE time >= 99999999999999999999999',
    'SELECT usage FROM cpu WHERE time >= -9223372036854775806 AND time <= 9223372036854775806',
    'SELECT mean(usage) FROM cpu WHERE time >= -9223372036854775806 AND time <= '
    '9223372036854775806 GROUP BY time(1h)',
    'SELECT mean(usage) FROM cpu WHERE time >= 0 AND time <= now() GROUP BY time(1s) fill(null)',
    "SELECT mean(usage) FROM cpu WHERE time >= 0 GROUP BY time(1d) tz('Pacific/Kiritimati')",
    'SELECT mean(usage) FROM cpu WHERE time >= 0 GROUP BY time(1d) fill(linear) '
    "tz('America/Sao_Paulo')",
    'SELECT mean(usage) FROM cpu LIMIT 99999999999999999999',
    'SELECT percentile(usage, 1e308) FROM cpu',
    'SELECT percentile(usage, -5) FROM cpu',
    'SELECT derivative(usage, 0s) FROM cpu',
    'SELECT derivative(usage, -1s) FROM cpu',
    'SELECT derivative(mean(usage)) FROM cpu',
    'SELECT derivative(mean(usage), 1s) FROM cpu WHERE time > 0 GROUP BY time(1m)',
    'SELECT count(distinct(state)) FROM door',
    'SELECT distinct(state) FROM door GROUP BY time(1m)',
    'SELECT distinct(state) FROM door WHERE time > 0 GROUP BY time(1m)',
    'SELECT spread(state) FROM door',
    'SELECT mean(state) FROM door',
    'SELECT state FROM door WHERE room =~ /(?i)HALL/',
    'SELECT * FROM /.*/',
    'SELECT * FROM cpu, door',
    'SELECT "usage"::field, "host"::tag FROM cpu',
    'SELECT host FROM cpu',
    'SELECT time FROM cpu',
    'SELECT mean(*) FROM cpu',
    'SELECT mean(usage) FROM cpu GROUP BY time(1m) fill(linear)',
    'SELECT first(state) FROM door WHERE time > 0 GROUP BY time(10m) fill(linear)',
    'SELECT max(usage) FROM cpu WHERE time > 0 GROUP BY time(1m) fill(9e999)',
    "SELECT usage FROM cpu WHERE host = '\x00'",
    'SELECT usage FROM "\x00"',
    'SHOW TAG VALUES WITH KEY = "\x00"',
    'SELECT mean(usage) FROM cpu WHERE time > 0 GROUP BY "\x00"',
    'SELECT mean(usage) FROM cpu WHERE time > 0 GROUP BY a,b,c,d,e,f,g,h,i',
    "SELECT usage FROM cpu tz('UTC') ",
    'SELECT usage FROM cpu OFFSET 99999999999999999999',
    'SELECT usage FROM cpu SLIMIT 99999999999999999999',
    'SELECT last(usage), host FROM cpu',
    'SELECT mean(usage) FROM cpu WHERE time > now() - 1h AND time < now() - 2h GROUP BY time(1m)',
    'SELECT usage FROM cpu WHERE time > 0.5',
    "SELECT usage FROM cpu WHERE 'a' = host",
    'SELECT usage FROM cpu WHERE host = 1',
    'SELECT usage FROM cpu WHERE host',
    'SELECT usage FROM cpu WHERE (time > 0)',
]

def test_edge_statements_are_answered_or_refused_never_a_500(loaded):
    for q in EDGES:
        response = loaded.get("/query", query_string={"q": q, "epoch": "ms"})
        assert response.status_code in (200, 400), (q, response.data[:300])
        assert set(orjson.loads(response.data)) <= {"results", "error"}, q


# -- fuzzing ---------------------------------------------------------------------------------------
IDENTS = st.sampled_from(['"usage"', "usage", '"idle"', "host", '"region"', "state", "temp",
                          "*", '"no such"', "time", '"a""b"', "x"])
FUNCS = st.sampled_from(["mean", "median", "count", "sum", "min", "max", "first", "last",
                         "spread", "stddev", "distinct", "derivative", "percentile", "mode",
                         "now", "non_negative_derivative"])
SOURCES = st.sampled_from(['"cpu"', "cpu", "door", "tsapi", "/c.*/", '"autogen"."cpu"',
                           "nope", "/(a+)+/", "cpu, door"])
LITERALS = st.sampled_from(["'a'", "'b'", "/^a$/", "/(?i)A/", "/a{2,}/", "now()", "now() - 1h",
                            f"{T0}000ms", "'2020-07-12T00:00:00Z'", "0", "1.5", "-1", "''",
                            "/((a|b)*)*/", "/[/", "10s", "'\\''"])
OPS = st.sampled_from(["=", "!=", "<>", "=~", "!~", "<", "<=", ">", ">=", "+", "-", "*", "/"])


@st.composite
def conditions(draw, depth=0):
    if depth < 2 and draw(st.booleans()):
        joiner = draw(st.sampled_from([" AND ", " OR ", " and "]))
        inner = joiner.join(draw(st.lists(conditions(depth=depth + 1), min_size=1,
                                          max_size=3)))
        return f"({inner})" if draw(st.booleans()) else inner
    return f"{draw(IDENTS)} {draw(OPS)} {draw(LITERALS)}"


@st.composite
def selects(draw):
    fields = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            args = draw(st.lists(st.one_of(IDENTS, LITERALS), min_size=0, max_size=2))
            fields.append(f"{draw(FUNCS)}({', '.join(args)})")
        else:
            fields.append(draw(IDENTS))
    q = f"SELECT {', '.join(fields)} FROM {draw(SOURCES)}"
    if draw(st.booleans()):
        q += f" WHERE {draw(conditions())}"
    if draw(st.booleans()):
        dims = draw(st.lists(st.sampled_from(["time(1m)", "time(10s)", "time(1h, 15m)",
                                              "time(7m)", "time(1u)", "time(0s)", "host", "*",
                                              '"region"', "time(1w)"]),
                             min_size=1, max_size=3))
        q += " GROUP BY " + ", ".join(dims)
    q += draw(st.sampled_from(["", " fill(null)", " fill(none)", " fill(previous)",
                               " fill(linear)", " fill(-2)", " fill(x)"]))
    q += draw(st.sampled_from(["", " ORDER BY time DESC", " ORDER BY time ASC"]))
    q += draw(st.sampled_from(["", " LIMIT 2", " LIMIT 0", " OFFSET 1", " SLIMIT 1",
                               " LIMIT 99999999999999999999"]))
    q += draw(st.sampled_from(["", " tz('Europe/Berlin')", " tz('')", " tz('UTC')"]))
    return q


SHOWS = st.sampled_from([
    "SHOW DATABASES", "SHOW MEASUREMENTS WITH MEASUREMENT =~ /c/", "SHOW TAG KEYS FROM cpu",
    'SHOW TAG VALUES WITH KEY = "host"', 'SHOW TAG VALUES FROM cpu WITH KEY =~ /(a*)*/',
    "SHOW FIELD KEYS", "SHOW SERIES WHERE host = 'a'", "SHOW RETENTION POLICIES ON x",
    "SHOW TAG VALUES", "SHOW SERIES LIMIT 1 OFFSET 1"])
STATEMENTS = st.one_of(selects(), SHOWS, st.text(max_size=80),
                       st.text(alphabet="SELECT FROM WHERE()\"'/*=~,;$\\ 0123456789ahstu",
                               max_size=120))


# Derandomized, as tests/test_schemathesis.py: the same 250 statements on every run, so a
# red build always means a regression (widen the strategies to explore further).
@settings(max_examples=250, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(q=STATEMENTS, epoch=st.sampled_from([None, "ms", "ns"]))
def test_fuzzed_statements_never_get_a_500(loaded, q, epoch):
    params = {"q": q} if epoch is None else {"q": q, "epoch": epoch}
    response = loaded.get("/query", query_string=params)
    assert response.status_code in (200, 400), (q, response.data[:300])
    body = orjson.loads(response.data)
    assert "results" in body or "error" in body


def test_last_values_and_limited_raw_reads_stay_small_past_the_raw_row_limit(make_app):
    app = make_app(TSAPI_MAX_RAW_ROWS=3)
    client = app.test_client()
    lines = "\n".join(f"m,host={'ab'[i % 2]} v={i} {T0 + i}000000000" for i in range(20))
    assert client.post("/write", data=lines).status_code == 204
    status, body = influxql(client, 'SELECT last("v") FROM m GROUP BY "host"', epoch="s")
    assert [(s["tags"], s["values"]) for s in body["results"][0]["series"]] == [
        ({"host": "a"}, [[T0 + 18, 18.0]]), ({"host": "b"}, [[T0 + 19, 19.0]])]
    status, body = influxql(client, 'SELECT "v" FROM m ORDER BY time DESC LIMIT 2', epoch="s")
    assert body["results"][0]["series"][0]["values"] == [[T0 + 19, 19.0], [T0 + 18, 18.0]]
    # What needs every point says so rather than answering from a cut result.
    status, body = influxql(client, 'SELECT "v" FROM m; SELECT max("v") FROM m')
    assert all("max-select-point limit exceeded" in r["error"] for r in body["results"])


def test_the_rows_a_request_reads_are_bounded_over_all_its_statements_and_fields(make_app):
    # Each read was bounded, but a request reads once per field, measurement and statement:
    # 16 statements of SELECT * FROM /.*/ over a catalog of many fields held them all.
    app = make_app(TSAPI_MAX_RAW_ROWS=10, TSAPI_MAX_QUERY_CELLS=10)
    client = app.test_client()
    lines = "\n".join(f"m{i % 4} a={i},b={i} {T0 + i}000000000" for i in range(16))
    assert client.post("/write", data=lines).status_code == 204
    status, body = influxql(client, 'SELECT * FROM "m0"')
    assert len(body["results"][0]["series"][0]["values"]) == 4  # 8 rows read: within
    status, body = influxql(client, "SELECT * FROM /m.*/")
    assert "max-select-point limit exceeded" in body["results"][0]["error"]
    status, body = influxql(client, 'SELECT * FROM "m0"; SELECT * FROM "m1"')
    assert "error" not in body["results"][0]
    assert "max-select-point limit exceeded" in body["results"][1]["error"]
