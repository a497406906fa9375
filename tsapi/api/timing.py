"""How long the current request took: started once, measured once, read by logs and metrics."""

from __future__ import annotations

import time

from flask import Flask, g


def init_timing(app: Flask) -> None:
    """Register before every other before_request hook, so the time counts all of them."""
    app.before_request(_start)


def _start() -> None:
    g.request_started = time.perf_counter()


def request_seconds() -> float | None:
    """Seconds since the request started, measured at the first call: the access log and the
    latency histogram report the same figure. None if the request never reached the hooks."""
    if "request_seconds" not in g:
        started = g.get("request_started")
        g.request_seconds = None if started is None else time.perf_counter() - started
    return g.request_seconds
