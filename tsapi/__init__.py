"""tsapi: a small, fast time-series storage and query API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

__version__ = "0.1.0"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then the environment, then `config` (tests pass a mapping)."""
    from tsapi.auth import init_auth
    from tsapi.cache import init_cache
    from tsapi.cli import register_commands
    from tsapi.config import load_config
    from tsapi.errors import register_error_handlers
    from tsapi.logs import configure_logging
    from tsapi.monitoring import init_monitoring
    from tsapi.openapi import init_api
    from tsapi.ratelimits import init_rate_limits
    from tsapi.resources import register_resources
    from tsapi.store.engine import Database

    app = Flask(__name__)
    app.config.update(load_config(config))
    app.config["MAX_CONTENT_LENGTH"] = app.config["TSAPI_MAX_BODY_BYTES"]
    configure_logging(app)
    init_monitoring(app)
    app.extensions["tsapi.db"] = Database(
        app.config["DATABASE_URL"],
        pool_size=app.config["TSAPI_DB_POOL_SIZE"],
        statement_timeout_ms=app.config["TSAPI_DB_STATEMENT_TIMEOUT_MS"],
    )
    init_cache(app)
    register_error_handlers(app)
    init_auth(app)  # before the limiter: limits are counted per authenticated key
    init_rate_limits(app)
    register_resources(init_api(app, __version__))
    register_commands(app)
    return app
