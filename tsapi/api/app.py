"""The app factory: settings, then the runtime services use, then the HTTP layer around them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from tsapi.api.auth import init_auth
from tsapi.api.counts_in_flight import CountSender
from tsapi.api.extensions import cache
from tsapi.api.influxql import init_form_limit
from tsapi.api.logs import configure_logging
from tsapi.api.monitoring import init_monitoring
from tsapi.api.names import init_path_checks
from tsapi.api.openapi import init_api
from tsapi.api.problems import register_error_handlers
from tsapi.api.rate_windows import RateWindows
from tsapi.api.ratelimits import init_rate_limits
from tsapi.api.resources import register_resources
from tsapi.api.runtime import install_runtime
from tsapi.api.timing import init_timing
from tsapi.config import load_config
from tsapi.formats.rendering import CSV_SAFE
from tsapi.services.api_keys import KeyCache
from tsapi.services.consistency import RedisWatermark
from tsapi.services.redis_gate import RedisGate, end_request, start_request
from tsapi.services.redis_riders import drop as drop_riders
from tsapi.services.response_cache import KEY_PREFIX, ResponseCache
from tsapi.services.runtime import Limits, LineProtocolNaming, Runtime
from tsapi.store.engine import Database
from tsapi.version import __version__

# Short timeouts: a hung Redis must cost a request little; the cache is then skipped.
REDIS_TIMEOUTS = {"socket_connect_timeout": 0.5, "socket_timeout": 1.0}


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then the environment, then `config` (tests pass a mapping)."""
    # No app-wide /static route: the explorer and Swagger UI serve their own assets.
    app = Flask("tsapi", static_folder=None)
    app.config.update(load_config(config))
    app.config["MAX_CONTENT_LENGTH"] = app.config["TSAPI_MAX_BODY_BYTES"]
    init_timing(app)  # first: the request's time includes every other hook
    _trust_proxies(app, app.config["TSAPI_TRUSTED_PROXIES"])
    configure_logging(app)
    init_monitoring(app)
    db = Database(
        app.config["DATABASE_URL"],
        pool_size=app.config["TSAPI_DB_POOL_SIZE"],
        statement_timeout_ms=app.config["TSAPI_DB_STATEMENT_TIMEOUT_MS"],
        read_url=app.config.get("DATABASE_READ_URL"),
        max_replica_lag=app.config["TSAPI_MAX_REPLICA_LAG"],
    )
    # One client and one gate for every user of Redis: after one finds it unreachable, none
    # waits on it until the gate lets a request try again (tsapi.services.redis_gate).
    url = app.config.get("REDIS_URL")
    redis_client = redis.Redis.from_url(url, **REDIS_TIMEOUTS) if url else None
    gate = RedisGate()
    app.before_request(start_request)  # before auth and rate limits, which call Redis
    app.teardown_request(_end_request)
    install_runtime(app, Runtime(
        db=db,
        cache=_response_cache(app, redis_client, gate),
        limits=Limits.from_settings(app.config),
        line_protocol=LineProtocolNaming.from_settings(app.config),
        keys=KeyCache(db.engine, redis_client, gate),
        rollups=app.config["TSAPI_ROLLUPS"] == "on",
    ))
    _share_write_positions(app, db, redis_client, gate)
    register_error_handlers(app)
    _csv_safe_mode(app, app.config["TSAPI_CSV_SAFE"] == "on")
    # One set of rate-limit counters (401s per address, requests per key and class).
    windows = RateWindows(redis_client, gate)
    init_form_limit(app)  # before auth, which reads a form body's parameters
    init_auth(app, windows)  # before the limiter: limits are counted per authenticated key
    init_rate_limits(app, windows,
                     CountSender(windows, redis_client, gate) if redis_client else None)
    init_path_checks(app)  # after auth: an anonymous caller learns nothing from a path
    register_resources(init_api(app, __version__))
    return app


def _end_request(_exc: BaseException | None) -> None:
    end_request()
    drop_riders()  # settled by the rate limiter's after_request hook; none may leak on


def _csv_safe_mode(app: Flask, safe: bool) -> None:
    @app.before_request
    def _set_mode() -> None:
        CSV_SAFE.set(safe)  # read by the CSV renderer, which knows no settings


def _share_write_positions(app: Flask, db: Database, client: redis.Redis | None,
                           gate: RedisGate) -> None:
    """With a replica, every node records its writes' WAL positions in Redis (read-your-writes).

    Without Redis no node could tell another what it wrote, so every read stays on the primary.
    """
    if db.replica is None:
        return
    if client is None:
        app.logger.warning("DATABASE_READ_URL is set but REDIS_URL is not: reads use the primary")
        return
    db.watermark = RedisWatermark(client, gate,
                                  unsure_seconds=float(app.config["TSAPI_MAX_REPLICA_LAG"]))


def _trust_proxies(app: Flask, count: int) -> None:
    """Take the client's address (rate limits, logs) from X-Forwarded-For, through `count`
    proxies.

    Each trusted proxy appends the address it received the request from, so only the last
    `count` entries are facts; anything before them was written by the client and is ignored.
    With 0 the header is never read: the client is the TCP peer.
    """
    if count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=0,
                                x_port=0, x_prefix=0)


def _response_cache(app: Flask, client: redis.Redis | None, gate: RedisGate) -> ResponseCache:
    """Flask-Caching on Redis (REDIS_URL) or in process, wrapped so it never fails a request."""
    url = app.config.get("REDIS_URL")
    if url:
        config = {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": url,
                  "CACHE_OPTIONS": dict(REDIS_TIMEOUTS)}
    else:
        config = {"CACHE_TYPE": "SimpleCache"}
    config.update(CACHE_KEY_PREFIX=KEY_PREFIX, CACHE_DEFAULT_TIMEOUT=app.config[
        "TSAPI_CACHE_TIMEOUT"])
    cache.init_app(app, config=config)
    with app.app_context():
        backend = cache.cache
    return ResponseCache(backend, client, gate)
