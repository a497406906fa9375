"""Tests for the telemetry generator, sample data and client tools in tools/ (no database)."""

from __future__ import annotations

import csv
import io
import math
import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "tools"
SAMPLE = ROOT / "sample_data" / "iot_telemetry_sample.csv"
# tools/ is a plain directory of scripts, not a package.
sys.path.insert(0, str(TOOLS))

import analyze_data  # noqa: E402
import load_data  # noqa: E402
import telemetry  # noqa: E402

MACS = {"b8:27:eb:bf:9d:51", "00:0f:00:70:91:0a", "1c:bf:ce:15:ec:4d"}
METRICS = [
    "carbon_monoxide",
    "humidity",
    "liquefied_petroleum_gas",
    "smoke",
    "temperature",
    "light_status",
    "motion_detected",
]
# The command documented in sample_data/README.md; the sample must match it.
SAMPLE_ARGS = {"rows": 20_000, "days": 1.0}
SAMPLE_COMMAND = "python3 tools/generate_telemetry.py --rows 20000 --days 1"


def generate_text(**kwargs) -> str:
    buf = io.StringIO()
    telemetry.write_csv(telemetry.generate_rows(**kwargs), buf)
    return buf.getvalue()


def test_device_counts_match_original_and_sum_exactly():
    assert telemetry.device_counts(telemetry.FULL_ROWS) == [187_451, 111_815, 105_918]
    for n in (0, 1, 2, 3, 7, 1000, 20_000, 99_999):
        counts = telemetry.device_counts(n)
        assert sum(counts) == n
        assert all(c >= 0 for c in counts)


def test_generator_is_deterministic():
    a = generate_text(rows=3000, seed=7, days=0.5)
    assert a == generate_text(rows=3000, seed=7, days=0.5)
    assert a != generate_text(rows=3000, seed=8, days=0.5)


def test_cli_output_is_byte_identical(tmp_path):
    args = [
        sys.executable,
        str(TOOLS / "generate_telemetry.py"),
        "--rows",
        "1500",
        "--days",
        "0.25",
        "--seed",
        "3",
        "--start",
        "2021-03-01T12:00:00Z",
    ]
    out = tmp_path / "a.csv"
    subprocess.run([*args, "--output", str(out)], check=True)
    stdout = subprocess.run(args, check=True, capture_output=True).stdout
    assert out.read_bytes() == stdout
    start = datetime(2021, 3, 1, 12, tzinfo=UTC)
    expected = generate_text(rows=1500, seed=3, start=start, days=0.25)
    assert stdout == expected.encode()


def check_shape(text: str, rows: int, start: float, days: float) -> list[telemetry.Reading]:
    """Assert the declared CSV shape; return the parsed readings."""
    lines = text.splitlines()
    assert lines[0] == '"ts","device","co","humidity","light","lpg","motion","smoke","temp"'
    assert len(lines) == rows + 1
    for fields in csv.reader(lines[1:]):
        assert len(fields) == 9
        assert fields[4] in ("true", "false") and fields[6] in ("true", "false")
    readings = list(telemetry.read_csv(io.StringIO(text)))
    assert len(readings) == rows
    ts = [r.ts for r in readings]
    assert ts == sorted(ts)
    assert start <= ts[0] and ts[-1] < start + days * 86_400
    counts = Counter(r.device for r in readings)
    assert set(counts) == MACS
    assert [counts[d.mac] for d in telemetry.DEVICES] == telemetry.device_counts(rows)
    for r in readings:
        assert 0.0005 < r.co < 0.02
        assert 0.001 < r.lpg < 0.012
        assert 0.003 < r.smoke < 0.06
        assert 1.0 <= r.humidity <= 100.0
        assert 0.0 <= r.temp <= 40.0
    return readings


def test_generated_data_shape_and_plausibility():
    start = telemetry.DEFAULT_START.timestamp()
    readings = check_shape(generate_text(rows=12_000, days=1.0), 12_000, start, 1.0)
    by_dev: dict[str, list] = {}
    for r in readings:
        by_dev.setdefault(r.device, []).append(r)
    for dev in telemetry.DEVICES:
        rs = by_dev[dev.mac]
        # Each device reports in irregular, strictly increasing steps.
        gaps = {round(b.ts - a.ts, 3) for a, b in zip(rs, rs[1:], strict=False)}
        assert min(gaps) > 0 and len(gaps) > 100
        lit = sum(r.light for r in rs) / len(rs)
        assert lit < 0.15 if dev.light == "dark" else 0.3 < lit < 0.9
        assert sum(r.motion for r in rs) / len(rs) < 0.02
        mean_temp = sum(r.temp for r in rs) / len(rs)
        mean_hum = sum(r.humidity for r in rs) / len(rs)
        assert abs(mean_temp - dev.temp_mean) < 2.0
        assert abs(mean_hum - dev.hum_mean) < 5.0
    # One gas sensor: the three gases rise and fall together.
    co = [math.log(r.co) for r in readings]
    for other in ("lpg", "smoke"):
        assert _corr(co, [math.log(getattr(r, other)) for r in readings]) > 0.99


def _corr(xs: list[float], ys: list[float]) -> float:
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    return sxy / math.sqrt(sxx * syy)


def test_csv_round_trip_is_exact():
    rows = list(telemetry.generate_rows(rows=500, days=0.1))
    text = io.StringIO()
    telemetry.write_csv(rows, text)
    assert list(telemetry.read_csv(io.StringIO(text.getvalue()))) == rows


def test_reads_original_style_quoted_csv():
    text = (
        '"ts","device","co","humidity","light","lpg","motion","smoke","temp"\n'
        '"1.5945120943859746E9","b8:27:eb:bf:9d:51","0.004955938648391245","51.0","false",'
        '"0.00765082227055719","false","0.02041127012241292","22.7"\n'
    )
    (r,) = telemetry.read_csv(io.StringIO(text))
    assert r == telemetry.Reading(
        1594512094.3859746,
        "b8:27:eb:bf:9d:51",
        0.004955938648391245,
        51.0,
        False,
        0.00765082227055719,
        False,
        0.02041127012241292,
        22.7,
    )


def test_read_csv_rejects_wrong_header_and_bad_values():
    with pytest.raises(ValueError, match="header"):
        list(telemetry.read_csv(io.StringIO("a,b,c\n1,2,3\n")))
    bad = telemetry.HEADER_LINE + "\n1.0,dev,0.1,50,maybe,0.1,false,0.1,20\n"
    with pytest.raises(ValueError, match="line 2"):
        list(telemetry.read_csv(io.StringIO(bad)))


def test_row_to_points_mapping():
    row = telemetry.Reading(
        1594512094.3859746,
        "b8:27:eb:bf:9d:51",
        0.004955938648391245,
        51.0,
        True,
        0.00765082227055719,
        False,
        0.02041127012241292,
        22.7,
    )
    points = telemetry.row_to_points(row)
    assert [p["metric"] for p in points] == METRICS
    time = "2020-07-12T00:01:34.385975+00:00"
    tags = {"device": "b8:27:eb:bf:9d:51"}
    values = [0.004955938648391245, 51.0, 0.00765082227055719, 0.02041127012241292, 22.7, 1.0, 0.0]
    assert points == [
        {"time": time, "metric": m, "value": v, "tags": tags}
        for m, v in zip(METRICS, values, strict=True)
    ]
    assert all(type(p["value"]) is float for p in points)
    # A plain tuple in COLUMNS order works too, and a missing value is skipped.
    plain = tuple(row[:3]) + (None,) + tuple(row[4:])
    assert [p["metric"] for p in telemetry.row_to_points(plain)] == [
        m for m in METRICS if m != "humidity"
    ]


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (1594512094.3859746, "2020-07-12T00:01:34.385975+00:00"),
        (1594512094.0, "2020-07-12T00:01:34.000000+00:00"),  # fraction never dropped
        (1594512094.9999996, "2020-07-12T00:01:35.000000+00:00"),  # rounds into next second
        (1595203417.123456, "2020-07-20T00:03:37.123456+00:00"),
    ],
)
def test_format_time(ts, expected):
    assert telemetry.format_time(ts) == expected
    assert datetime.fromisoformat(expected).timestamp() == pytest.approx(ts, abs=1e-6)


def test_sample_file_shape_and_reproducibility():
    assert SAMPLE.stat().st_size < 3_000_000
    text = SAMPLE.read_text(encoding="utf-8")
    start = telemetry.DEFAULT_START.timestamp()
    sample = check_shape(text, SAMPLE_ARGS["rows"], start, SAMPLE_ARGS["days"])
    assert SAMPLE_COMMAND in (ROOT / "sample_data" / "README.md").read_text(encoding="utf-8")
    # Regenerate with the documented command. Compare with a tolerance rather than bytes
    # because math.exp/cos may differ in the last bit between C libraries.
    fresh = list(telemetry.generate_rows(**SAMPLE_ARGS))
    assert len(fresh) == len(sample)
    for a, b in zip(sample, fresh, strict=True):
        assert (a.ts, a.device, a.light, a.motion) == (b.ts, b.device, b.light, b.motion)
        for gas in (a.co - b.co, a.lpg - b.lpg, a.smoke - b.smoke):
            assert abs(gas) < 1e-12
        assert abs(a.temp - b.temp) < 0.11 and abs(a.humidity - b.humidity) < 0.11


# --- the HTTP tools against an in-process stub server -------------------------------------


class StubServer:
    """Records requests; `respond(method, path, body)` returns (status, json document)."""

    def __init__(self, respond):
        self.requests: list[dict] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = orjson.loads(self.rfile.read(length)) if length else None
                stub.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                    }
                )
                status, doc = respond(self.command, self.path, body)
                raw = orjson.dumps(doc)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = _handle

            def log_message(self, *args):  # keep test output quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _ingest_ok(method, path, body):
    n = len(body["data"])
    return 200, {"message": f"Successfully ingested {n} data points", "ingested_count": n}


def test_load_data_batches_points_and_sends_api_key(capsys):
    with StubServer(_ingest_ok) as srv:
        rc = load_data.main(
            [
                "--url",
                srv.url,
                "--file",
                str(SAMPLE),
                "--batch-size",
                "40",
                "--max-rows",
                "100",
                "--api-key",
                "s3cret",
            ]
        )
    assert rc == 0
    assert [len(r["body"]["data"]) for r in srv.requests] == [280, 280, 140]
    for r in srv.requests:
        assert (r["method"], r["path"]) == ("POST", "/ingest")
        assert r["headers"]["Authorization"] == "Bearer s3cret"
        assert r["headers"]["Content-Type"] == "application/json"
    with SAMPLE.open(newline="") as f:
        first = next(telemetry.read_csv(f))
    assert srv.requests[0]["body"]["data"][:7] == telemetry.row_to_points(first)
    err = capsys.readouterr().err
    assert "100 rows" in err and "700 points" in err


def test_load_data_reports_problem_detail_and_exits_1(capsys):
    def reject(method, path, body):
        return 422, {
            "title": "Unprocessable Entity",
            "detail": "Invalid ingest payload",
            "errors": {"data": {"0": {"value": ["Not a valid number."]}}},
        }

    with StubServer(reject) as srv:
        rc = load_data.main(["--url", srv.url, "--file", str(SAMPLE), "--max-rows", "5"])
    assert rc == 1
    assert "Authorization" not in srv.requests[0]["headers"]
    err = capsys.readouterr().err
    assert "HTTP 422: Invalid ingest payload" in err and "Not a valid number." in err


def test_load_data_unreachable_server_exits_1(capsys):
    with StubServer(_ingest_ok) as srv:
        url = srv.url  # the port is free again once the stub is shut down
    assert load_data.main(["--url", url, "--file", str(SAMPLE), "--max-rows", "5"]) == 1
    assert "cannot reach" in capsys.readouterr().err


def test_analyze_data_prints_table(capsys):
    metrics = [
        {
            "name": "temperature",
            "first_seen": "2020-07-12T00:01:35.638503+00:00",
            "last_seen": "2020-07-13T00:01:29.000000+00:00",
            "value_type": "float",
        },
        {
            "name": "label",
            "first_seen": "2020-07-12T00:00:00Z",
            "last_seen": "2020-07-12T00:00:00Z",
            "value_type": "string",
        },
    ]
    results = {"count": 20000, "min": 0.0, "avg": 22.54321, "max": 31.2}

    def respond(method, path, body):
        if path == "/metrics":
            return 200, metrics
        return 200, [{"time": body["start_time"], "value": results[body["aggregation"]]}]

    with StubServer(respond) as srv:
        assert analyze_data.main(["--url", srv.url]) == 0
    queries = [r["body"] for r in srv.requests if r["path"] == "/query"]
    assert [q["aggregation"] for q in queries] == ["count", "min", "avg", "max"]
    assert all(q["metric"] == "temperature" for q in queries)
    assert queries[0]["end_time"] == "2020-07-13T00:01:30+00:00"
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["metric", "count", "min", "avg", "max", "first", "last"]
    assert out[2].split() == [
        "temperature",
        "20,000",
        "0",
        "22.5432",
        "31.2",
        metrics[0]["first_seen"],
        metrics[0]["last_seen"],
    ]


def test_analyze_data_plots_one_png_per_numeric_metric(make_app, tmp_path, capsys):
    """--plot against a real server: a PNG per numeric metric, none for string metrics."""
    from live import serving

    app = make_app()
    client = app.test_client()
    points = [p for row in telemetry.generate_rows(600, 3, telemetry.DEFAULT_START, 0.5)
              for p in telemetry.row_to_points(row)]
    points.append({"time": "2020-07-12T01:00:00Z", "metric": "status", "value": "ok"})
    assert client.post("/ingest", json={"data": points}).status_code == 200
    with serving(app) as url:
        assert analyze_data.main(["--url", url, "--plot", str(tmp_path / "charts")]) == 0
    files = sorted(p.name for p in (tmp_path / "charts").iterdir())
    assert files == sorted(f"{m}.png" for m, _ in telemetry.METRIC_COLUMNS)
    for name in files:
        data = (tmp_path / "charts" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name
