"""The production topology with real processes on one machine: nginx (the config tools/dev
renders) in front of two gunicorn nodes, a primary with a streaming standby, and Redis.

Outcomes only, never timings: every acknowledged point stored exactly once while a node is
SIGKILLed, reads served while the standby stops and starts, read-your-writes through either
node, slow clients not holding workers, and X-Forwarded-For not choosing a rate-limit bucket.
"""

from __future__ import annotations

import http.client
import itertools
import os
import signal
import socket
import threading
import time

import orjson
import pytest
import sqlalchemy as sa
from conftest import migrate
from gunicorn_server import GunicornServer
from nginx_server import NginxServer
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from services import HOST, PostgresServer, RedisServer, StandbyServer

ADMIN_LIMIT = 5  # per client and minute; POST /cache/clear is an admin view


class Topology:
    def __init__(self, workdir):
        self.primary = PostgresServer(preload_timescaledb=True)
        self.primary.start()
        self.url = self.primary.create_database("tsapi")
        migrate(self.url, "on")
        self.standby = StandbyServer(self.primary)
        self.standby.start()
        self.redis = RedisServer()
        self.redis.start()
        env = {"TSAPI_TRUSTED_PROXIES": "1", "DATABASE_READ_URL": self.standby.url("tsapi"),
               "TSAPI_RATE_LIMITS": "on", "TSAPI_RATE_LIMIT_READ": "off",
               "TSAPI_RATE_LIMIT_WRITE": "off", "TSAPI_RATE_LIMIT_ADMIN": f"{ADMIN_LIMIT}/minute"}
        # One sync worker per node: a held worker would be a whole node held.
        self.nodes = [GunicornServer(self.url, self.redis.url(), workdir, workers=1, **env)
                      for _ in range(2)]
        for node in self.nodes:
            node.start()
        self.nginx = NginxServer(workdir, [f"{HOST}:{node.port}" for node in self.nodes])
        self.nginx.start()
        self.engine = sa.create_engine(self.url)

    def count(self, sql: str, **params) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar_one()

    def close(self):
        self.engine.dispose()
        self.nginx.stop()
        for node in self.nodes:
            node.stop()
        for service in (self.redis, self.standby, self.primary):
            service.cleanup()


@pytest.fixture(scope="module")
def topo(tmp_path_factory):
    topology = Topology(tmp_path_factory.mktemp("topology"))
    yield topology
    topology.close()


class Client:
    """One keep-alive connection to nginx (reconnecting when it is closed)."""

    def __init__(self, port: int, source: str | None = None):
        self.port, self.source = port, source
        self.conn: http.client.HTTPConnection | None = None
        self.reconnects = 0  # requests sent again because the connection had been closed
        # Requests sent again because their answer was cut after its headers: a node killed
        # between gunicorn's two writes (headers, then body) leaves nginx nothing to retry,
        # and the client cannot know whether the batch was stored (ingest is idempotent).
        self.cut_answers = 0

    def request(self, method, path, body=None, headers=None):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(
                    HOST, self.port, timeout=120,
                    source_address=(self.source, 0) if self.source else None)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                response = self.conn.getresponse()
                try:
                    return response.status, response.read()
                except http.client.IncompleteRead:
                    self.conn.close()
                    self.conn = None
                    self.cut_answers += 1
                    if attempt:
                        raise
                    continue
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # nginx closed an idle keep-alive connection: not a failed request.
                self.conn.close()
                self.conn = None
                self.reconnects += 1
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def post_json(self, path, body):
        return self.request("POST", path, orjson.dumps(body),
                            {"Content-Type": "application/json"})

    def close(self):
        if self.conn is not None:
            self.conn.close()


def batch(metric: str, start: int, size: int) -> dict:
    return {"data": [{"time": 1_700_000_000 + start + i, "metric": metric,
                      "value": float(start + i)} for i in range(size)]}


def _iso(n: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_700_000_000 + n))


def query_body(metric: str, start: int, end: int) -> dict:
    return {"metric": metric, "start_time": _iso(start), "end_time": _iso(end)}


def kill_node(node: GunicornServer) -> None:
    """SIGKILL a whole node, as a machine dying would: its master and every worker."""
    master = node.process.pid
    os.kill(master, signal.SIGSTOP)  # no new workers while we kill them
    for pid in node.worker_pids():
        os.kill(pid, signal.SIGKILL)
    os.kill(master, signal.SIGKILL)
    node.process.wait()


def test_every_acknowledged_point_is_stored_once_while_a_node_is_killed(topo):
    metric, size, batches_per_writer, writers = "killed", 20, 40, 3
    results: list[tuple[int, int]] = []  # (first point, status)
    reconnects: list[int] = []
    cut: list[int] = []
    progress = threading.Semaphore(0)

    def writer(w: int):
        client = Client(topo.nginx.port)
        try:
            for b in range(batches_per_writer):
                start = (w * batches_per_writer + b) * size
                status, _ = client.post_json("/ingest", batch(metric, start, size))
                results.append((start, status))
                progress.release()
        finally:
            reconnects.append(client.reconnects)
            cut.append(client.cut_answers)
            client.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for _ in range(10):  # some batches acknowledged before the kill
        assert progress.acquire(timeout=120)
    kill_node(topo.nodes[0])
    for _ in range(20):  # and some while the node is gone
        assert progress.acquire(timeout=120)
    topo.nodes[0].start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads)

    # No request failed: whatever the dead node did not answer, nginx retried on the other.
    assert len(results) == writers * batches_per_writer
    assert {status for _, status in results} == {200}, sorted(results)
    assert reconnects == [0] * writers  # and no request had to be sent twice by the client,
    # but the one a writer had in flight if the kill cut its answer after the headers.
    assert all(n <= 1 for n in cut), cut
    # Every acknowledged point is stored, once, with its own value.
    stored = topo.count("""SELECT count(*) FROM points p JOIN series s ON s.id = p.series_id
                           JOIN metrics m ON m.id = s.metric_id WHERE m.name = :m""", m=metric)
    distinct = topo.count("""SELECT count(DISTINCT p.time) FROM points p
                             JOIN series s ON s.id = p.series_id
                             JOIN metrics m ON m.id = s.metric_id WHERE m.name = :m""", m=metric)
    assert stored == distinct == writers * batches_per_writer * size


def reads_by(topo: Topology, database: str) -> float:
    """tsapi_db_reads_total{database=…} summed over both nodes' workers."""
    total = 0.0
    for node in topo.nodes:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=node.env["PROMETHEUS_MULTIPROC_DIR"])
        total += registry.get_sample_value("tsapi_db_reads_total",
                                           {"database": database}) or 0.0
    return total


def test_a_write_then_a_read_through_nginx_sees_the_point_1000_times(topo):
    misses, statuses = [], []
    replica_before = reads_by(topo, "replica")

    def client_loop(k: int, count: int):
        # A write, then at once a read of it; each on its own connection, so nginx spreads
        # them over both nodes.
        writer, reader = Client(topo.nginx.port), Client(topo.nginx.port)
        try:
            for n in range(k * count, (k + 1) * count):
                status, _ = writer.post_json("/ingest", batch("ryw", n, 1))
                statuses.append(status)
                status, body = reader.post_json("/query", query_body("ryw", n, n + 1))
                statuses.append(status)
                if status != 200 or [row["value"] for row in orjson.loads(body)] != [float(n)]:
                    misses.append((n, status, body))
        finally:
            writer.close()
            reader.close()

    threads = [threading.Thread(target=client_loop, args=(k, 250)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert len(statuses) == 2000 and set(statuses) == {200}
    assert misses == []
    # How many of those reads the standby served depends on the machine's speed: reported.
    print(f"reads served by the standby: {reads_by(topo, 'replica') - replica_before:.0f}")


def test_reads_keep_working_while_the_standby_stops_and_starts(topo):
    client = Client(topo.nginx.port)
    assert client.post_json("/ingest", batch("standby", 0, 10))[0] == 200
    phase = {"now": "before"}
    outcomes: list[tuple[str, int, bytes]] = []
    stop = threading.Event()
    ends = itertools.count()

    def reader():
        c = Client(topo.nginx.port)
        try:
            while not stop.is_set():
                started_in = phase["now"]
                # A new range each time, so the response cache cannot answer.
                end = 10 + next(ends)
                status, body = c.post_json("/query", query_body("standby", 0, end))
                outcomes.append((started_in, status, body))
        finally:
            c.close()

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        _wait_for(lambda: len(outcomes) >= 5)
        phase["now"] = "stopping"
        topo.standby.stop()
        phase["now"] = "stopped"
        seen = len(outcomes)
        _wait_for(lambda: len(outcomes) >= seen + 10)
        # A write while the standby is down, read back at once.
        assert client.post_json("/ingest", batch("standby", 10**7, 1))[0] == 200
        status, body = client.post_json("/query", query_body("standby", 10**7, 10**7 + 1))
        assert (status, len(orjson.loads(body))) == (200, 1)
        health = [orjson.loads(client.request("GET", "/health")[1]) for _ in range(4)]
        assert {h["replica"]["status"] for h in health} == {"unhealthy"}, health
        phase["now"] = "starting"
        topo.standby.start()
        phase["now"] = "started"
        seen = len(outcomes)
        _wait_for(lambda: len(outcomes) >= seen + 10)
        # The standby has caught up (nothing was written since): reads return to it.
        replica_reads = reads_by(topo, "replica")
        _wait_for(lambda: reads_by(topo, "replica") >= replica_reads + 10)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
        client.close()
    expected = [float(n) for n in range(10)]
    # Reads in flight while the standby shut down may fail; every other read succeeded.
    settled = [(p, s, [row["value"] for row in orjson.loads(b)] if s == 200 else b)
               for p, s, b in outcomes if p != "stopping"]
    assert {p for p, _, _ in settled} >= {"before", "stopped", "started"}
    assert [o for o in settled if o[1:] != (200, expected)] == []
    # Both nodes see the standby healthy again (it has caught up: nothing to replay).
    _wait_for(lambda: {orjson.loads(Client(topo.nginx.port).request("GET", "/health")[1])[
        "replica"]["status"] for _ in range(4)} == {"healthy"})


def _wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def _slow_clients(port: int, count: int) -> list[socket.socket]:
    """Clients that hold a connection: idle, slow headers, slow body, and never reading."""
    body = orjson.dumps(batch("slow", 0, 1))
    kinds = [b"",  # connected, says nothing
             b"GET /health HTTP/1.1\r\nHost: x\r\n",  # headers never finished
             b"POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             b"Content-Length: %d\r\n\r\n" % len(body) + body[:10],  # body never finished
             b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n"]  # answer never read
    sockets = []
    for n in range(count):
        s = socket.create_connection((HOST, port), timeout=10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(kinds[n % len(kinds)])
        sockets.append(s)
    return sockets


def test_slow_clients_through_nginx_do_not_hold_the_workers(topo):
    held = _slow_clients(topo.nginx.port, 40)
    try:
        client = Client(topo.nginx.port)
        statuses = []
        for n in range(20):
            statuses.append(client.request("GET", "/health")[0])
            statuses.append(client.post_json("/ingest", batch("beside-slow", n, 1))[0])
        client.close()
    finally:
        for s in held:
            s.close()
    assert statuses == [200] * 40


def test_a_spoofed_forwarded_for_does_not_change_the_rate_limit_bucket(topo):
    spoofer = Client(topo.nginx.port)
    statuses = [spoofer.request("POST", "/cache/clear",
                                headers={"X-Forwarded-For": f"198.51.100.{n}"})[0]
                for n in range(ADMIN_LIMIT + 3)]
    spoofer.close()
    # One budget across both nodes and every spoofed address.
    assert statuses == [200] * ADMIN_LIMIT + [429] * 3
    # Another real client address (another loopback address) has its own budget.
    other = Client(topo.nginx.port, source="127.0.0.2")
    assert other.request("POST", "/cache/clear")[0] == 200
    other.close()


def test_a_body_over_the_limit_gets_a_problem_from_nginx_before_any_node_sees_it(topo):
    with socket.create_connection((HOST, topo.nginx.port), timeout=60) as s:
        s.sendall(b"POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % (64 * 1024 * 1024 + 1))
        response = http.client.HTTPResponse(s)
        response.begin()
        body = orjson.loads(response.read())
    assert response.status == 413
    assert response.getheader("Content-Type") == "application/problem+json"
    assert body["status"] == 413 and "67108864 bytes" in body["detail"]
