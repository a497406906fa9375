"""Tests for tests/services.py: the private PostgreSQL and Redis used by the suite."""

from __future__ import annotations

import socket
from pathlib import Path

import psycopg2
import pytest
import redis
from services import PostgresServer, RedisServer, free_port


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory):
    server = PostgresServer(tmp_path_factory.mktemp("services-pg"))
    server.start()
    yield server
    server.cleanup()


@pytest.fixture(scope="module")
def rds(tmp_path_factory: pytest.TempPathFactory):
    server = RedisServer(tmp_path_factory.mktemp("services-redis"))
    server.start()
    yield server
    server.cleanup()


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def _query(server: PostgresServer, sql: str, dbname: str = "postgres"):
    conn = psycopg2.connect(server.dsn(dbname), connect_timeout=5)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def test_free_port_is_bindable_and_unique():
    ports = {free_port() for _ in range(20)}
    assert len(ports) == 20
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports.pop()))


def test_postgres_accepts_connections(pg: PostgresServer):
    assert pg.is_running()
    assert pg.url("x") == f"postgresql+psycopg2://postgres@127.0.0.1:{pg.port}/x"
    assert _query(pg, "select 1") == [(1,)]
    names = "('fsync', 'shared_preload_libraries', 'listen_addresses')"
    settings = dict(_query(pg, f"select name, setting from pg_settings where name in {names}"))
    assert settings == {
        "fsync": "off",
        "shared_preload_libraries": "timescaledb",
        "listen_addresses": "127.0.0.1",
    }


def test_timescaledb_in_fresh_database(pg: PostgresServer):
    url = pg.create_database("ts_check")
    assert url.endswith(f":{pg.port}/ts_check")
    _query(pg, "CREATE EXTENSION timescaledb", "ts_check")
    _query(pg, "CREATE TABLE m (ts timestamptz NOT NULL, v double precision)", "ts_check")
    _query(pg, "SELECT create_hypertable('m', 'ts')", "ts_check")
    _query(pg, "INSERT INTO m VALUES (now(), 1.5), (now() - interval '1 day', 2.5)", "ts_check")
    rows = _query(pg, "SELECT count(*), sum(v) FROM m", "ts_check")
    assert rows == [(2, 4.0)]
    pg.drop_database("ts_check")


def test_postgres_stop_and_restart_keep_port_and_data(pg: PostgresServer):
    _query(pg, "CREATE TABLE survivor (x int)")
    _query(pg, "INSERT INTO survivor VALUES (42)")
    port = pg.port

    for mode in ("fast", "immediate"):  # immediate = crash, recovery on restart
        pg.stop(mode=mode)
        assert not pg.is_running()
        assert _refused(port)
        with pytest.raises(psycopg2.OperationalError):
            _query(pg, "select 1")

        pg.restart()
        assert pg.is_running()
        assert pg.port == port
        assert _query(pg, "SELECT x FROM survivor") == [(42,)]


def test_postgres_cleanup_removes_everything(tmp_path: Path):
    server = PostgresServer(tmp_path, preload_timescaledb=False)
    server.start()
    port, directory = server.port, server.dir
    assert _query(server, "select 2") == [(2,)]
    server.cleanup()
    assert not directory.exists()
    assert _refused(port)


def test_redis_ping_stop_restart(rds: RedisServer):
    client = redis.Redis.from_url(rds.url(), socket_connect_timeout=2)
    assert rds.url(3) == f"redis://127.0.0.1:{rds.port}/3"
    assert client.ping()
    client.set("k", "v")
    port = rds.port

    rds.stop()
    assert not rds.is_running()
    assert _refused(port)
    with pytest.raises(redis.ConnectionError):
        client.ping()

    rds.restart()
    assert rds.port == port
    assert client.ping()  # redis-py reconnects by itself
    assert client.get("k") is None  # no persistence by design
    client.close()
