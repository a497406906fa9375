"""Configuration: defaults in one object, overrides from the environment, read in one place."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy.engine import URL, make_url


class ConfigError(RuntimeError):
    """A configuration value is missing or malformed; raised at start-up, never per request."""


@dataclass(frozen=True)
class Settings:
    """Every setting the service reads, with its default. Names match the Flask config keys."""

    DATABASE_URL: str | None = None
    REDIS_URL: str | None = None
    # auto: use TimescaleDB when the server has it; on: fail without it; off: plain PostgreSQL.
    TSAPI_TIMESCALEDB: str = "auto"
    TSAPI_MAX_BATCH_POINTS: int = 100_000
    # A 100,000-point JSON batch is about 10 MB; leave room for long tags and string values.
    TSAPI_MAX_BODY_BYTES: int = 64 * 1024 * 1024
    TSAPI_MAX_QUERY_BUCKETS: int = 100_000
    # Rows an aggregated answer may hold, estimated before it runs: metrics x series groups x
    # buckets. Each row costs a worker a few hundred bytes while the answer is built.
    TSAPI_MAX_QUERY_CELLS: int = 500_000
    # Raw rows per JSON response; beyond it the response is cut and says so (CSV and NDJSON
    # exports stream from a server-side cursor and are not cut).
    TSAPI_MAX_RAW_ROWS: int = 100_000
    TSAPI_MAX_CACHED_BYTES: int = 4 * 1024 * 1024
    TSAPI_CACHE_TIMEOUT: int = 300
    TSAPI_DB_POOL_SIZE: int = 5
    TSAPI_DB_STATEMENT_TIMEOUT_MS: int = 30_000
    # Line protocol: fields of this measurement are stored under the bare field name.
    TSAPI_INFLUX_DEFAULT_MEASUREMENT: str = "tsapi"
    # Line protocol: record the bucket (v2) or db (v1) as this tag; empty: not recorded.
    TSAPI_INFLUX_BUCKET_TAG: str = ""
    # required: every endpoint but /, /health and the docs needs an API key; off: none do.
    TSAPI_AUTH: str = "required"
    # on | off; each class takes a limits string ("600/minute", "10/second;500/hour") or off.
    TSAPI_RATE_LIMITS: str = "on"
    TSAPI_RATE_LIMIT_WRITE: str = "600/minute"
    TSAPI_RATE_LIMIT_READ: str = "1200/minute"
    TSAPI_RATE_LIMIT_ADMIN: str = "60/minute"
    # on: CSV exports write text cells starting with = + - @ (formulas) with a leading '.
    TSAPI_CSV_SAFE: str = "off"
    # Requests answered 401 per client address; over it, 429 before any key lookup.
    TSAPI_RATE_LIMIT_UNAUTHORIZED: str = "30/minute"
    # How many reverse proxies in front of the service append to X-Forwarded-For (nginx: 1).
    # 0 trusts no header: the client is the TCP peer. Only the last N entries are believed,
    # since a client can write anything before them.
    TSAPI_TRUSTED_PROXIES: int = 0
    # A read replica (PostgreSQL streaming standby) for /query, discovery and listings.
    DATABASE_READ_URL: str | None = None
    # Seconds a replica may lag behind its primary before reads skip it.
    TSAPI_MAX_REPLICA_LAG: int = 5
    # on: /query answers combinable aggregates from the rollup tables (always exact);
    # off: every aggregate is computed from raw points.
    TSAPI_ROLLUPS: str = "on"
    # The refresher materializes buckets that closed at least this long ago.
    TSAPI_ROLLUP_LAG_SECONDS: int = 30
    # `tsapi rollups run` sleeps this long between refreshes that found nothing to do.
    TSAPI_ROLLUP_INTERVAL_SECONDS: int = 5


@dataclass(frozen=True)
class RollupLevel:
    """A rollup table's bucket width; the tables themselves are created by migration 0004."""

    name: str  # "1m": the table is rollups_1m, the answer header says rollup-1m
    seconds: int


# Finest first. Adding a level takes a migration creating its table.
ROLLUP_LEVELS = (RollupLevel("1m", 60), RollupLevel("1h", 3600))


_TIMESCALEDB_MODES = {"auto", "on", "off"}
_AUTH_MODES = {"required", "off"}
# Settings where 0 is a meaningful value (the other whole numbers must be positive).
_ZERO_ALLOWED = {"TSAPI_TRUSTED_PROXIES"}
RATE_LIMIT_CLASSES = {"read": "TSAPI_RATE_LIMIT_READ", "write": "TSAPI_RATE_LIMIT_WRITE",
                      "admin": "TSAPI_RATE_LIMIT_ADMIN"}
# The rate strings the settings have always taken (the notation of the `limits` package that
# tsapi used before): "600/minute", "10 per second", "100/5 minutes", joined by , ; or |.
_RATE = re.compile(r"\s*(\d+)\s*(?:/|\s+per\s+)\s*(\d+)?\s*([a-z]+?)s?\s*", re.IGNORECASE)
_RATE_SEPARATORS = re.compile(r"[,;|]")
_RATE_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86_400, "month": 30 * 86_400,
               "year": 360 * 86_400}
# A window must last: 0 s would expire each counter as it is made, and a window too long for
# Redis's EXPIRE would be refused on every request; either way the class would go uncounted.
# A century is beyond any real need and well within Redis's reach.
_MAX_WINDOW_SECONDS = 100 * _RATE_UNITS["year"]


@dataclass(frozen=True, order=True)
class Rate:
    """`amount` requests per fixed window of `seconds`."""

    seconds: int  # first: sorting rates puts the shortest window first
    amount: int


def parse_rates(value: str) -> tuple[Rate, ...]:
    """The rates of a TSAPI_RATE_LIMIT_* value, shortest window first; ValueError if malformed."""
    rates = []
    for part in _RATE_SEPARATORS.split(value):
        match = _RATE.fullmatch(part)
        unit = _RATE_UNITS.get(match.group(3).lower()) if match else None
        seconds = unit * int(match.group(2) or 1) if unit else 0
        if not 0 < seconds <= _MAX_WINDOW_SECONDS:
            raise ValueError(f"not a rate: {part!r}")
        rates.append(Rate(seconds, int(match.group(1))))
    return tuple(sorted(set(rates)))  # a rate given twice would count each request twice


def _cast(name: str, raw: str, kind: type) -> Any:
    if kind is int:
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
        if name in _ZERO_ALLOWED and value < 0:
            raise ConfigError(f"{name} must be 0 or more, got {value}")
        if name not in _ZERO_ALLOWED and value <= 0:
            raise ConfigError(f"{name} must be positive, got {value}")
        return value
    return raw


def _database_url_from_parts(env: Mapping[str, str]) -> str | None:
    """Build a URL from the old service's DB_* variables, so its deployments keep working."""
    if not env.get("DB_HOST"):
        return None
    port = env.get("DB_PORT", "5432")
    if not port.isdigit():
        raise ConfigError(f"DB_PORT must be a port number, got {port!r}")
    return URL.create(
        "postgresql+psycopg2",
        username=env.get("DB_USER") or None,
        password=env.get("DB_PASSWORD") or None,
        host=env["DB_HOST"],
        port=int(port),
        database=env.get("DB_NAME") or None,
    ).render_as_string(hide_password=False)


def _redis_url_from_parts(env: Mapping[str, str]) -> str | None:
    if not env.get("REDIS_HOST"):
        return None
    port = env.get("REDIS_PORT", "6379")
    if not port.isdigit():
        raise ConfigError(f"REDIS_PORT must be a port number, got {port!r}")
    return f"redis://{env['REDIS_HOST']}:{port}/0"


def settings_from_env(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read every setting from the environment into a dict of Flask config keys."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name not in env or env[f.name] == "":
            continue
        kind = int if isinstance(f.default, int) else str
        values[f.name] = _cast(f.name, env[f.name], kind)
    values.setdefault("DATABASE_URL", _database_url_from_parts(env))
    values.setdefault("REDIS_URL", _redis_url_from_parts(env))
    return {k: v for k, v in values.items() if v is not None}


def load_config(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, then the environment, then explicit overrides (tests pass a mapping)."""
    config = {f.name: f.default for f in fields(Settings)}
    config.update(settings_from_env())
    config.update(overrides or {})
    validate_config(config)
    return config


def validate_config(config: Mapping[str, Any]) -> None:
    if not config.get("DATABASE_URL"):
        raise ConfigError(
            "DATABASE_URL is not set (nor DB_HOST): tsapi needs a PostgreSQL database, e.g. "
            "DATABASE_URL=postgresql://user:password@host:5432/tsapi"
        )
    try:
        url = make_url(normalize_database_url(config["DATABASE_URL"]))
    except Exception as exc:  # sqlalchemy raises ArgumentError with a terse message
        raise ConfigError(f"DATABASE_URL is not a valid database URL: {exc}") from None
    if url.get_backend_name() != "postgresql":
        raise ConfigError(f"DATABASE_URL must point to PostgreSQL, not {url.get_backend_name()}")
    mode = config.get("TSAPI_TIMESCALEDB")
    if mode not in _TIMESCALEDB_MODES:
        raise ConfigError(f"TSAPI_TIMESCALEDB must be one of auto, on, off; got {mode!r}")
    if config.get("TSAPI_AUTH") not in _AUTH_MODES:
        raise ConfigError(f"TSAPI_AUTH must be required or off; got {config.get('TSAPI_AUTH')!r}")
    if config.get("TSAPI_CSV_SAFE") not in {"on", "off"}:
        raise ConfigError(
            f"TSAPI_CSV_SAFE must be on or off; got {config.get('TSAPI_CSV_SAFE')!r}")
    if config.get("TSAPI_RATE_LIMITS") not in {"on", "off"}:
        raise ConfigError(
            f"TSAPI_RATE_LIMITS must be on or off; got {config.get('TSAPI_RATE_LIMITS')!r}")
    if config.get("TSAPI_ROLLUPS") not in {"on", "off"}:
        raise ConfigError(f"TSAPI_ROLLUPS must be on or off; got {config.get('TSAPI_ROLLUPS')!r}")
    for name in (*RATE_LIMIT_CLASSES.values(), "TSAPI_RATE_LIMIT_UNAUTHORIZED"):
        _check_rate_limit(name, config.get(name))
    proxies = config.get("TSAPI_TRUSTED_PROXIES")
    if not isinstance(proxies, int) or isinstance(proxies, bool) or proxies < 0:
        raise ConfigError(f"TSAPI_TRUSTED_PROXIES must be a whole number >= 0; got {proxies!r}")
    read_url = config.get("DATABASE_READ_URL")
    if read_url:
        try:
            backend = make_url(normalize_database_url(read_url)).get_backend_name()
        except Exception as exc:
            raise ConfigError(f"DATABASE_READ_URL is not a valid database URL: {exc}") from None
        if backend != "postgresql":
            raise ConfigError(f"DATABASE_READ_URL must point to PostgreSQL, not {backend}")


def _check_rate_limit(name: str, value: Any) -> None:
    if value == "off":
        return
    try:
        parse_rates(str(value))
    except ValueError:
        raise ConfigError(
            f"{name} must be a rate like 600/minute (or off); got {value!r}") from None


def normalize_database_url(raw: str) -> str:
    """Accept the plain libpq form (postgresql://, postgres://) and use the psycopg2 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg2://" + raw[len(prefix):]
    return raw
