"""Request ids, JSON log lines and the service's own Prometheus metrics."""

import json
import logging
import re

import pytest
from gunicorn_server import GunicornServer
from helpers import ingest, point


def sample(text: str, name: str, **labels) -> float:
    """The value of one sample in Prometheus text format; 0 when absent."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(3) or ""))
        if found == {k: str(v) for k, v in labels.items()}:
            return float(match.group(4))
    return 0.0


# --- request ids -----------------------------------------------------------------------------


def test_sane_incoming_request_id_is_echoed(client):
    response = client.get("/health", headers={"X-Request-ID": "gw-7:abc.123"})
    assert response.headers["X-Request-ID"] == "gw-7:abc.123"


@pytest.mark.parametrize("bad", ["x" * 129, "has space", "tab\there", "quote\"d", "ü", ""],
                         ids=["too-long", "space", "tab", "quote", "non-ascii", "empty"])
def test_unsafe_incoming_request_id_is_replaced_by_a_fresh_one(client, bad):
    response = client.get("/health", headers={"X-Request-ID": bad})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


def test_every_request_gets_its_own_id(client):
    ids = {client.get("/health").headers["X-Request-ID"] for _ in range(5)}
    assert len(ids) == 5


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("get", "/no/such/path", None, 404),
    ("get", "/ingest", None, 405),
    ("post", "/ingest", {"data": [{"metric": "m"}]}, 422),
    ("post", "/ingest", "{not json", 400),
])
def test_error_responses_carry_the_request_id_too(client, method, path, body, status):
    kwargs = {"json": body} if isinstance(body, dict) else {"data": body}
    response = getattr(client, method)(path, headers={"X-Request-ID": "err-1"}, **kwargs)
    assert response.status_code == status
    assert response.headers["X-Request-ID"] == "err-1"


# --- logs ------------------------------------------------------------------------------------


def test_each_request_logs_one_json_access_line_with_its_id(client, log_lines):
    client.post("/ingest", json={"data": [point("2024-01-01T00:00:00Z", "m", 1.0)]},
                headers={"X-Request-ID": "req-42"})
    client.get("/nowhere", headers={"X-Request-ID": "req-43"})
    access = [line for line in log_lines() if line["logger"] == "tsapi.access"]
    assert [(a["request_id"], a["method"], a["path"], a["status"]) for a in access] == [
        ("req-42", "POST", "/ingest", 200), ("req-43", "GET", "/nowhere", 404)]
    for line in access:
        assert set(line) >= {"time", "level", "logger", "message", "duration_ms"}
        assert line["level"] == "INFO"
        assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0


def test_lines_logged_inside_a_request_carry_its_id(client, log_lines):
    logging.getLogger("tsapi.services.response_cache").warning("something inside")  # outside: no id
    with client.application.test_request_context(headers={"X-Request-ID": "inner-1"}):
        client.application.preprocess_request()
        logging.getLogger("tsapi.services.response_cache").warning("something inside")
    outside, inside = [line for line in log_lines() if line["message"] == "something inside"]
    assert "request_id" not in outside
    assert inside["request_id"] == "inner-1"
    assert inside["level"] == "WARNING" and inside["logger"] == "tsapi.services.response_cache"


def test_an_unexpected_error_is_logged_as_json_with_its_traceback(make_app, log_lines):
    app = make_app()

    @app.get("/boom")
    def boom():
        raise RuntimeError("kaboom")

    response = app.test_client().get("/boom", headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "boom-1"
    (error,) = [line for line in log_lines() if line["level"] == "ERROR"]
    assert error["request_id"] == "boom-1"
    assert "RuntimeError: kaboom" in error["exception"]


# --- metrics ---------------------------------------------------------------------------------


def test_metrics_endpoint_is_prometheus_text_and_not_the_metric_list(client):
    response = client.get("/internal/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert "# TYPE tsapi_http_requests_total counter" in response.text
    assert client.get("/metrics").get_json() == []  # GET /metrics still lists stored metrics


def test_metrics_endpoint_is_not_in_the_openapi_document(client):
    assert not any(path.startswith("/internal") for path in client.get("/openapi.json")
                   .get_json()["paths"])


def test_requests_are_counted_by_route_method_and_status(client):
    before = client.get("/internal/metrics").text
    for _ in range(3):
        client.post("/cache/metrics/some-metric/clear")
    client.get("/ingest")
    after = client.get("/internal/metrics").text
    route = "/cache/metrics/<name:metric>/clear"
    assert sample(after, "tsapi_http_requests_total", endpoint=route, method="POST",
                  status=200) - sample(before, "tsapi_http_requests_total", endpoint=route,
                                       method="POST", status=200) == 3
    # Paths that match no route (404, and 405 for a wrong method) share one label.
    assert sample(after, "tsapi_http_requests_total", endpoint="unmatched", method="GET",
                  status=405) - sample(before, "tsapi_http_requests_total",
                                       endpoint="unmatched", method="GET", status=405) == 1
    assert sample(after, "tsapi_http_request_duration_seconds_count", endpoint=route,
                  method="POST") - sample(before, "tsapi_http_request_duration_seconds_count",
                                          endpoint=route, method="POST") == 3


def test_ingested_and_rejected_points_are_counted(client):
    before = client.get("/internal/metrics").text
    ingest(client, [point(f"2024-01-01T00:00:0{i}Z", "m", float(i)) for i in range(4)])
    client.post("/ingest", json={"data": [point("2024-01-01T00:00:00Z", "m", 1.0),
                                          point("2024-01-01T00:00:01Z", "m", True)]})
    after = client.get("/internal/metrics").text
    for name, expected in (("tsapi_ingested_points_total", 4), ("tsapi_rejected_points_total", 2)):
        assert sample(after, name) - sample(before, name) == expected, name


def test_cache_hits_and_misses_are_counted(client):
    ingest(client, [point("2024-01-01T00:00:00Z", "m", 1.0)])
    before = client.get("/internal/metrics").text
    client.get("/metrics")  # miss, then cached
    client.get("/metrics")  # hit
    client.get("/metrics")  # hit
    after = client.get("/internal/metrics").text
    delta = {o: sample(after, "tsapi_cache_lookups_total", outcome=o)
             - sample(before, "tsapi_cache_lookups_total", outcome=o) for o in ("hit", "miss")}
    assert delta == {"hit": 2, "miss": 1}


# --- under gunicorn --------------------------------------------------------------------------


def test_gunicorn_adds_up_every_workers_metrics_and_logs_only_json(
        empty_gunicorn_database, redis_server, tmp_path):
    with GunicornServer(empty_gunicorn_database, redis_server.url(), tmp_path,
                        workers=2) as server:
        workers = set(server.worker_pids())
        assert len(workers) == 2
        for i in range(20):  # new connections: both workers take some
            body = json.dumps({"data": [point(f"2024-01-01T00:00:{i:02}Z", "m", float(i))]})
            status, headers, _ = server.request("POST", "/ingest", body.encode(),
                                                {"Content-Type": "application/json",
                                                 "X-Request-ID": f"g-{i}"})
            assert status == 200 and headers["X-Request-ID"] == f"g-{i}"
        # Every scrape, whichever worker answers, sees the totals of both.
        for _ in range(4):
            _, _, text = server.request("GET", "/internal/metrics")
            assert sample(text.decode(), "tsapi_ingested_points_total") == 20
        # A worker that dies keeps its counts in the totals.
        server.signal(9, min(workers))
        _, _, text = server.request("GET", "/internal/metrics")
        assert sample(text.decode(), "tsapi_ingested_points_total") == 20
    lines = server.log().splitlines()
    parsed = [json.loads(line) for line in lines]  # every line is JSON
    access = [p for p in parsed if p["logger"] == "tsapi.access" and p["path"] == "/ingest"]
    assert sorted(p["request_id"] for p in access) == sorted(f"g-{i}" for i in range(20))
    assert any(p["logger"] == "gunicorn.error" for p in parsed)


def test_gunicorn_restarted_on_the_same_metrics_directory_starts_from_zero(
        empty_gunicorn_database, redis_server, tmp_path):
    directory = tmp_path / "prometheus"
    body = json.dumps({"data": [point("2024-01-01T00:00:00Z", "m", 1.0)]}).encode()
    for _ in range(2):
        with GunicornServer(empty_gunicorn_database, redis_server.url(), tmp_path, workers=1,
                            PROMETHEUS_MULTIPROC_DIR=str(directory)) as server:
            _, _, text = server.request("GET", "/internal/metrics")
            assert sample(text.decode(), "tsapi_ingested_points_total") == 0
            assert server.request("POST", "/ingest", body,
                                  {"Content-Type": "application/json"})[0] == 200
            _, _, text = server.request("GET", "/internal/metrics")
            assert sample(text.decode(), "tsapi_ingested_points_total") == 1
        assert list(directory.glob("*.db"))  # the first run's files were there to be cleared
