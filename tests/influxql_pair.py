"""The same line-protocol points in InfluxDB 1.6 (influxd, the oracle) and in a tsapi served over
HTTP, each answering InfluxQL at its own base URL, for tests that compare them statement by
statement."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import requests
from conftest import OPEN_ACCESS, reset_state
from live import serving
from services import InfluxServer

from tsapi import create_app

DB = "d"


def influxql(base: str, statement: str):
    """The JSON answer of one statement, times in epoch seconds."""
    response = requests.get(f"{base}/query", params={"db": DB, "q": statement, "epoch": "s"},
                            timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def _write(base: str, lines: str) -> None:
    response = requests.post(f"{base}/write", params={"db": DB}, data=lines, timeout=30)
    assert response.status_code == 204, response.text


@contextmanager
def influxdb_holding(lines: str) -> Iterator[str]:
    server = InfluxServer()
    server.start()
    try:
        requests.post(f"{server.url()}/query", data={"q": f"CREATE DATABASE {DB}"}, timeout=30)
        _write(server.url(), lines)
        yield server.url()
    finally:
        server.cleanup()


@contextmanager
def tsapi_holding(database_url: str, redis_url: str, lines: str) -> Iterator[str]:
    reset_state(database_url, redis_url)
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
                      **OPEN_ACCESS})
    try:
        with serving(app) as base:
            _write(base, lines)
            yield base
    finally:
        app.extensions["tsapi"].db.dispose()
