"""Signals to a real gunicorn while a 100,000-point batch is being written: all or nothing."""

import signal
import threading
import time

import orjson
import pytest
import sqlalchemy as sa
from gunicorn_server import GunicornServer
from helpers import points_stored

BATCH = 100_000


def big_batch() -> bytes:
    points = [{"time": 1_700_000_000 + i, "metric": "shutdown", "value": float(i),
               "tags": {"device": f"d{i % 10}"}} for i in range(BATCH)]
    return orjson.dumps({"data": points})


def wait_for_write_in_progress(url: str, timeout: float = 30.0) -> bool:
    """Until PostgreSQL shows the batch's transaction open, having written (it has an xid)."""
    engine = sa.create_engine(url)
    sql = sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                  "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL")
    deadline = time.monotonic() + timeout
    try:
        # Autocommit: inside one transaction pg_stat_activity would show one frozen snapshot.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            while time.monotonic() < deadline:
                if conn.execute(sql).scalar():
                    return True
                time.sleep(0.002)
    finally:
        engine.dispose()
    return False


# (whom to signal, which signal): gunicorn's graceful stop, its immediate stop, and a worker
# killed outright, which no handler can soften.
ATTACKS = {
    "master-SIGTERM": ("master", signal.SIGTERM),
    "worker-SIGTERM": ("worker", signal.SIGTERM),
    "master-SIGQUIT": ("master", signal.SIGQUIT),
    "worker-SIGKILL": ("worker", signal.SIGKILL),
}


@pytest.mark.parametrize(("target", "signum"), ATTACKS.values(), ids=ATTACKS.keys())
def test_signal_during_large_ingest_commits_the_whole_batch_or_none(
        empty_gunicorn_database, redis_server, tmp_path, target, signum):
    body = big_batch()
    server = GunicornServer(empty_gunicorn_database, redis_server.url(), tmp_path, workers=1)
    outcome = {}

    def send():
        try:
            status, _, payload = server.request(
                "POST", "/ingest", body, {"Content-Type": "application/json"}, timeout=120)
            outcome.update(status=status, body=payload)
        except OSError as exc:  # the connection died with the worker
            outcome.update(error=exc)

    with server:
        (worker,) = server.worker_pids()
        client = threading.Thread(target=send)
        client.start()
        in_flight = wait_for_write_in_progress(empty_gunicorn_database)
        server.signal(signum, worker if target == "worker" else None)
        client.join(timeout=120)
        assert not client.is_alive()
    assert in_flight, "the batch was never seen being written; the attack came too late"

    stored = points_stored(empty_gunicorn_database)
    assert stored in (0, BATCH), f"{stored} of {BATCH} points stored: a partial batch"
    if outcome.get("status") == 200:
        assert stored == BATCH
        assert orjson.loads(outcome["body"])["ingested_count"] == BATCH
    if signum == signal.SIGTERM:
        # Graceful: the request in flight is finished and acknowledged.
        assert outcome.get("status") == 200, outcome
    if signum == signal.SIGKILL:
        assert "status" not in outcome, outcome
        assert stored == 0
