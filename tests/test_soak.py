"""8 writers against a real gunicorn: every acknowledged point is stored exactly once.

The writers run for SOAK_SECONDS (10 s; TSAPI_SOAK_SECONDS=30 for a full 30 s run).
They share metrics, series and points, create new series and metrics as they go, and mix
small batches (INSERT path) with large ones (COPY path). Every point's value is a function
of its (metric, tags, time), so whichever writer wins a race the stored value is known.
"""

import os
import random
import threading
import time
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
import sqlalchemy as sa
from gunicorn_server import GunicornServer

SOAK_SECONDS = float(os.environ.get("TSAPI_SOAK_SECONDS", "10"))
WRITERS = 8
T0 = datetime(2024, 1, 1, tzinfo=UTC)
SHARED_METRICS = ("soak_a", "soak_b", "soak_c")
SHARED_DEVICES = ("d0", "d1", "d2", "d3")
SHARED_SECONDS = 600  # repeated points: every writer draws from the same 600 instants


def value_of(metric: str, tags: tuple, second: int) -> float:
    return float(zlib.crc32(repr((metric, tags, second)).encode()))


def make_batch(rng: random.Random, writer: int, round_: int) -> dict:
    """{(metric, tags, second): value} of one batch."""
    batch = {}
    large = round_ % 5 == 4
    for _ in range(1500 if large else 60):  # overlapping points of shared series
        key = (rng.choice(SHARED_METRICS), (("device", rng.choice(SHARED_DEVICES)),),
               rng.randrange(SHARED_SECONDS))
        batch[key] = value_of(*key)
    own = (("round", str(round_)), ("writer", str(writer)))  # a new series every round
    for second in range(10):
        key = ("soak_a", own, 10_000 + second)
        batch[key] = value_of(*key)
    if round_ % 10 == 0:  # and now and then a new metric
        key = (f"soak_new_{writer}_{round_}", (), round_)
        batch[key] = value_of(*key)
    return batch


def body_of(batch: dict) -> bytes:
    points = []
    for (metric, tags, second), value in batch.items():
        p = {"time": (T0 + timedelta(seconds=second)).isoformat(), "metric": metric,
             "value": value}
        if tags:
            p["tags"] = dict(tags)
        points.append(p)
    return orjson.dumps({"data": points})


def test_concurrent_writers_every_acknowledged_point_is_stored_exactly_once(
        empty_gunicorn_database, redis_server, tmp_path):
    acknowledged: dict = {}
    sent = Counter()
    failures: list = []
    lock = threading.Lock()
    deadline = time.monotonic() + SOAK_SECONDS

    with GunicornServer(empty_gunicorn_database, redis_server.url(), tmp_path) as server:

        def write(writer: int):
            rng = random.Random(writer)
            round_ = 0
            while time.monotonic() < deadline:
                batch = make_batch(rng, writer, round_)
                round_ += 1
                try:
                    status, _, payload = server.request(
                        "POST", "/ingest", body_of(batch), {"Content-Type": "application/json"})
                except OSError as exc:
                    failures.append(repr(exc))
                    continue
                if status != 200:
                    failures.append((status, payload[:300]))
                    continue
                assert orjson.loads(payload)["ingested_count"] == len(batch)
                with lock:
                    acknowledged.update(batch)
                    sent.update(requests=1, points=len(batch))

        threads = [threading.Thread(target=write, args=(k,)) for k in range(WRITERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
        assert len(acknowledged) > 1000  # the soak did real work
        print(f"soak: {sent['requests']} batches, {sent['points']} points acknowledged, "
              f"{len(acknowledged)} distinct, in {SOAK_SECONDS} s")

        # Through the API: each metric's raw rows are exactly its acknowledged points.
        for metric in sorted({key[0] for key in acknowledged}):
            query = {"metric": metric, "start_time": T0.isoformat(),
                     "end_time": (T0 + timedelta(days=1)).isoformat()}
            status, _, payload = server.request(
                "POST", "/query", orjson.dumps(query), {"Content-Type": "application/json"})
            assert status == 200, payload[:300]
            got = Counter((r["time"], r["value"]) for r in orjson.loads(payload))
            want = Counter(((T0 + timedelta(seconds=s)).isoformat(), v)
                           for (m, _, s), v in acknowledged.items() if m == metric)
            assert got == want, metric

    # In the database, by series: one row per acknowledged (metric, tags, time), its value.
    engine = sa.create_engine(empty_gunicorn_database)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT m.name, s.tags, p.time, p.value_num FROM points p "
            "JOIN series s ON s.id = p.series_id JOIN metrics m ON m.id = s.metric_id")).all()
    engine.dispose()
    stored = Counter((name, tuple(sorted(tags.items())),
                      int((t - T0).total_seconds()), value) for name, tags, t, value in rows)
    assert stored == Counter((*key, value) for key, value in acknowledged.items())
