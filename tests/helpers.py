"""Small helpers shared by the tests."""

from __future__ import annotations

import socket
import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import orjson
import pytest
import redis
import sqlalchemy as sa

# The suite at large tests behaviour, not access control: every app a test builds (make_app,
# create_app with this mapping) and every server it starts (GunicornServer) runs without keys
# and rate limits unless the test asks for them; passed explicitly, never put in os.environ.
OPEN_ACCESS = {"TSAPI_AUTH": "off", "TSAPI_RATE_LIMITS": "off"}


def point(time: str, metric: str, value, **tags):
    p = {"time": time, "metric": metric, "value": value}
    if tags:
        p["tags"] = tags
    return p


def ingest(client, points, expect: int = 200):
    response = client.post("/ingest", json={"data": points})
    assert response.status_code == expect, response.get_json()
    return response.get_json()


def query(client, expect: int = 200, **body):
    response = client.post("/query", json=body)
    assert response.status_code == expect, response.get_json()
    return response.get_json()


def ask(client, headers=None, **body):
    """POST /query and return the response, whatever its status."""
    return client.post("/query", json=body, headers=headers or {})


def get_metrics(client) -> list[dict]:
    """GET /metrics, checked to be a JSON 200."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def stored_metrics(client) -> list[str]:
    """The names GET /metrics lists."""
    return [m["name"] for m in get_metrics(client)]


def stored_series(app) -> set[tuple[str, tuple]]:
    """(metric, sorted tag pairs) of every stored series, read from the database itself."""
    engine = app.extensions["tsapi"].db.engine
    with engine.connect() as conn:
        result = conn.execute(sa.text(
            "SELECT m.name, s.tags FROM series s JOIN metrics m ON m.id = s.metric_id"))
        return {(name, tuple(sorted(tags.items()))) for name, tags in result}


def points_stored(database_url: str) -> int:
    """How many points the database holds, read on a connection of its own (for a server that
    runs in another process, such as gunicorn)."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM points")).scalar()
    finally:
        engine.dispose()


# --- problems, times and buckets ---------------------------------------------------------


PROBLEM_JSON = "application/problem+json"
# time_bucket's origin for widths below a month (a Monday), and the month count's origin.
BUCKET_ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)
MONTH_ORIGIN_YEAR = 2000
_MICROSECOND = timedelta(microseconds=1)


def assert_problem(response, status: int) -> dict:
    """The response is an RFC 9457 problem with this status; returns its body."""
    body = response.get_json(force=True, silent=True)
    assert response.status_code == status, (response.status_code, body)
    assert response.mimetype == PROBLEM_JSON, response.content_type
    assert isinstance(body, dict), body
    assert isinstance(body.get("type"), str) and body["type"], body
    assert isinstance(body.get("title"), str) and body["title"], body
    assert body.get("status") == status, body
    assert isinstance(body.get("detail"), str) and body["detail"], body
    return body


def error_fields(problem: dict) -> list[str]:
    return [e["field"] for e in problem.get("errors") or []]


def influxql(client, q: str, **params) -> tuple[int, object]:
    """(status, parsed body) of an InfluxQL GET /query; params: db, epoch, …"""
    response = client.get("/query", query_string={"q": q, **params})
    return response.status_code, orjson.loads(response.data)


def post_raw(client, path: str, raw: bytes | str):
    """POST a body exactly as given (for JSON the encoder would refuse or rewrite)."""
    if isinstance(raw, str):
        raw = raw.encode()
    return client.post(path, data=raw, content_type="application/json")


def utc(text: str) -> datetime:
    """Parse an ISO-8601 time (no offset means UTC) into an aware UTC datetime."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def bucket_start(t: datetime, *, months: int = 0, width: timedelta | int | None = None
                 ) -> datetime:
    """Where time_bucket puts t: months counted from January 2000, or fixed widths (a
    timedelta, or an int of microseconds for widths beyond timedelta's range) from
    2000-01-03 00:00 UTC; always rounding down, also before the origin."""
    t = t.astimezone(UTC)
    if months:
        index = (t.year - MONTH_ORIGIN_YEAR) * 12 + (t.month - 1)
        first = index - index % months  # Python's % floors, also for negative indexes
        year, month0 = divmod(first, 12)
        return datetime(MONTH_ORIGIN_YEAR + year, month0 + 1, 1, tzinfo=UTC)
    w = width if isinstance(width, int) else width // _MICROSECOND
    assert w > 0
    offset = (t - BUCKET_ORIGIN) // _MICROSECOND
    return BUCKET_ORIGIN + timedelta(microseconds=(offset // w) * w)


def aggregate(values: list, how: str):
    if how == "count":
        return len(values)
    if how == "sum":
        return sum(values)
    if how == "avg":
        return sum(values) / len(values)
    if how == "min":
        return min(values)
    if how == "max":
        return max(values)
    raise ValueError(how)


def expected_buckets(points_, how: str, start: datetime, end: datetime, **bucket) -> list:
    """[(bucket start, aggregate)] of (time, value) pairs in [start, end), ordered by time."""
    groups: dict[datetime, list] = defaultdict(list)
    for t, v in points_:
        if start <= t < end:
            groups[bucket_start(t, **bucket)].append(v)
    return [(b, aggregate(vs, how)) for b, vs in sorted(groups.items())]


def rows_as_pairs(rows: list[dict]) -> list[tuple[datetime, object]]:
    """time_value_pairs of plain rows, checking each has only time and value and each time is
    stamped in UTC."""
    out = time_value_pairs(rows)
    for row, (t, _) in zip(rows, out, strict=True):
        assert set(row) == {"time", "value"}, row
        assert t.utcoffset() == timedelta(0), row
    return out


# --- reference computations for query results (plain Python, no SQL) --------------------


def percentile_cont(values: list[float], fraction: float) -> float:
    """PostgreSQL's percentile_cont: linear interpolation between the two closest ranks."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position // 1)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def stddev_samp(values: list[float]) -> float | None:
    """Sample standard deviation (n - 1); None for fewer than two values, as in SQL."""
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5


def counter_steps(points_: list[tuple[datetime, float]]) -> list[tuple[datetime, float]]:
    """One series' (time, step) pairs: each point's rise from the previous one, a drop being
    a counter reset (the counter counted from zero to its new value). The first point gives
    no step."""
    ordered = sorted(points_)
    steps = []
    for (_, before), (t, now) in zip(ordered, ordered[1:], strict=False):
        steps.append((t, now if now < before else now - before))
    return steps


def parse_row_time(row: dict) -> datetime:
    return datetime.fromisoformat(row["time"])


def hour_of(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def time_value_pairs(rows: list[dict]) -> list[tuple[datetime, object]]:
    """Query rows (which may also carry metric and tags) as (aware datetime, value)."""
    return [(parse_row_time(r), r["value"]) for r in rows]


def rows_by_group(rows: list[dict], keys: list[str]) -> dict:
    """Grouped rows as {(group values, time): value}; no (group, time) twice."""
    out = {}
    for row in rows:
        key = (tuple(row["tags"][k] for k in keys), parse_row_time(row))
        assert key not in out, f"duplicate row {key}"
        out[key] = row["value"]
    return out


def assert_values_match(got: list, want: list, context=None) -> None:
    assert len(got) == len(want), (context, got, want)
    for g, w in zip(got, want, strict=True):
        if w is None or isinstance(w, str):
            assert g == w, (context, got, want)
        else:
            assert g == pytest.approx(w, rel=1e-9, abs=1e-12), (context, got, want)


def assert_tags_then_time_order(rows: list[dict], keys: list[str], strict: bool = True):
    """Groups are contiguous and sorted (missing values may sort first or last), and times
    rise within each group."""
    seen: list[tuple] = []
    last_time = None
    for row in rows:
        assert set(row["tags"]) == set(keys), row
        group = tuple(row["tags"][k] for k in keys)
        t = parse_row_time(row)
        if not seen or seen[-1] != group:
            assert group not in seen, f"group {group} is not contiguous"
            seen.append(group)
        else:
            assert t > last_time if strict else t >= last_time, (group, t, last_time)
        last_time = t

    def nulls(first: bool):
        return lambda g: tuple(((v is None) != first, v or "") for v in g)

    assert seen in (sorted(seen, key=nulls(True)), sorted(seen, key=nulls(False))), seen


def reference_aggregate(how: str, values: list):
    """The aggregate `how` (first, last, median, stddev, pNN, count_distinct, count, delta)
    of values given in time order, computed in Python."""
    if how == "first":
        return values[0]
    if how == "last":
        return values[-1]
    if how == "median":
        return percentile_cont(values, 0.5)
    if how == "stddev":
        return stddev_samp(values)
    if how == "count_distinct":
        return len(set(values))
    if how == "count":
        return len(values)
    if how == "delta":
        return values[-1] - values[0]
    if how.startswith("p"):
        return percentile_cont(values, float(how[1:]) / 100)
    raise ValueError(how)


# --- HTML pages ----------------------------------------------------------------------------


class PageAssets(HTMLParser):
    """The script and stylesheet URLs an HTML page loads."""

    def __init__(self):
        super().__init__()
        self.scripts: list[str] = []
        self.styles: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.scripts.append(attrs["src"])
        if tag == "link" and attrs.get("href") and "stylesheet" in (attrs.get("rel") or ""):
            self.styles.append(attrs["href"])


# --- three hosts writing at the same times -------------------------------------------------

HOSTS = ("a", "b", "c")
HOSTS_START = datetime(2024, 3, 10, tzinfo=UTC)


def same_time_points(times: int = 10) -> list[tuple[str, datetime, float]]:
    """(host, time, value): every host has a point at each of the same times (a minute apart
    from HOSTS_START); values are unique, so each point can be told apart."""
    return [(h, HOSTS_START + timedelta(minutes=i), float(i * 10 + j))
            for i in range(times) for j, h in enumerate(HOSTS)]


def ingest_points(client, data, metric="cpu"):
    """Ingest (host, time, value) triples as points of `metric` tagged with their host."""
    ingest(client, [point(iso(t), metric, v, host=h) for h, t, v in data])


def connections_made(server: socket.socket) -> int:
    """How many connections a listening socket that never answers (a hung Redis, say) has
    been sent since the last call."""
    server.setblocking(False)
    made = 0
    while True:
        try:
            server.accept()[0].close()
        except BlockingIOError:
            return made
        made += 1


def silent_client(server: socket.socket) -> redis.Redis:
    """A Redis client of a listening socket that never answers, with the service's short
    timeouts."""
    return redis.Redis.from_url(f"redis://127.0.0.1:{server.getsockname()[1]}/0",
                                socket_connect_timeout=0.5, socket_timeout=1.0)


def together(call, n: int) -> list:
    """call() from n threads released at once; their answers."""
    start = threading.Barrier(n)
    answers = []

    def request():
        start.wait()
        answers.append(call())

    threads = [threading.Thread(target=request) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers
