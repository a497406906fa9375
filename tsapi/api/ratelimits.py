"""Rate limits per API key (per client address when auth is off) and endpoint class.

The classes are the auth scopes: a request to a `write` view counts against
TSAPI_RATE_LIMIT_WRITE, shared by every write view. Counters live in Redis (REDIS_URL), in
memory without it. When Redis fails, each worker counts in its own memory until Redis is back
(Flask-Limiter's in-memory fallback), and any other storage error lets the request through:
limits fail open, the service keeps answering.
"""

from __future__ import annotations

from flask import Flask, current_app, g
from flask_limiter import ApplicationLimit, Limiter
from flask_limiter.util import get_remote_address

from tsapi.api.auth import current_key, required_scope
from tsapi.api.limiter_storage import one_trip_uri
from tsapi.config import RATE_LIMIT_CLASSES


def _endpoint_class() -> str | None:
    if "rate_class" not in g:
        g.rate_class = required_scope()
    return g.rate_class


def class_limit() -> str:
    return current_app.config[RATE_LIMIT_CLASSES[_endpoint_class() or "read"]]


def class_scope(_endpoint: str) -> str:
    return _endpoint_class() or "open"


def rate_limit_identity() -> str:
    key = current_key()
    return f"key:{key.id}" if key else f"ip:{get_remote_address()}"


def rate_limit_exempt() -> bool:
    """Open views, and classes whose limit is `off`, are not counted."""
    cls = _endpoint_class()
    return cls is None or current_app.config[RATE_LIMIT_CLASSES[cls]] == "off"


def init_rate_limits(app: Flask) -> Limiter:
    redis_url = app.config.get("REDIS_URL")
    app.config.update(
        RATELIMIT_ENABLED=app.config["TSAPI_RATE_LIMITS"] == "on",
        RATELIMIT_STORAGE_URI=one_trip_uri(redis_url) if redis_url else "memory://",
        # Short timeouts: a hung Redis must not hold requests; the fallback takes over.
        RATELIMIT_STORAGE_OPTIONS={"socket_connect_timeout": 0.5, "socket_timeout": 1.0}
        if redis_url else {},
        RATELIMIT_SWALLOW_ERRORS=True,
        RATELIMIT_STRATEGY="fixed-window",
    )
    # One counter per (key or client, endpoint class), with the class's limit.
    limiter = Limiter(
        rate_limit_identity,
        application_limits=[ApplicationLimit(
            limit_provider=class_limit, scope=class_scope,
            error_message="Too many requests for this API key (or client); see Retry-After.",
        )],
        in_memory_fallback=[class_limit],
        headers_enabled=True,
        key_prefix="tsapi",
    )
    limiter.request_filter(rate_limit_exempt)
    limiter.init_app(app)
    return limiter
