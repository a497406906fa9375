"""The database handle: one SQLAlchemy engine per app, and what kind of storage it has."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, InvalidatePoolError

from tsapi.config import normalize_database_url
from tsapi.store.catalog import MetricCache, SeriesCache
from tsapi.store.replication import ReadEngine, Replica, Watermark, current_wal_lsn

WORK_MEM = "32MB"
# Only the statements tsapi PREPAREs use the plan cache (psycopg2 sends every other one with
# its values inline). Left to itself, PostgreSQL plans a prepared statement anew with each
# execution's values five times per session before it weighs a generic plan, and then keeps
# the generic one for every statement tsapi prepares (the rollup answers, the small-batch
# insert): those five plannings cost more than the answer (a day of hourly means: planned
# 0.8 ms, run 0.15 ms), and a pool spreads a server's requests over its sessions, so a
# server answering a query a few dozen times paid them on nearly every request. Generic
# from the first execution: planned once per session and statement.
PLAN_CACHE_MODE = "force_generic_plan"
# A pooled connection idle longer than this is tested before use (see _ping_when_idle).
IDLE_PING_SECONDS = 1.0
_CHECKED_IN_AT = "tsapi_checked_in_at"


@dataclass(frozen=True)
class StorageInfo:
    """What the database offers: TimescaleDB (and its version) or plain PostgreSQL."""

    postgres_version: str
    timescaledb_version: str | None
    hypertable: bool

    @property
    def timescaledb(self) -> bool:
        return self.timescaledb_version is not None

    @property
    def engine_name(self) -> str:
        return "timescaledb" if self.timescaledb else "postgresql"


class Database:
    """Owns the engine; detects the storage kind lazily, once, on first successful use."""

    def __init__(self, url: str, *, pool_size: int = 5, statement_timeout_ms: int = 30_000,
                 read_url: str | None = None, max_replica_lag: float = 5.0):
        self.engine: Engine = _engine(url, pool_size, statement_timeout_ms, connect_timeout=5)
        # The replica: libpq's shortest connect timeout (2 s) bounds a probe of a dead host.
        # Its connections are tested on every checkout: a read falls back to the primary
        # when the replica fails to connect (ReadEngine), so a dead one must fail there.
        self.replica: Replica | None = None
        if read_url:
            self.replica = Replica(
                _engine(read_url, pool_size, statement_timeout_ms, connect_timeout=2,
                        ping_every_checkout=True),
                max_replica_lag)
        # Set by the app when a replica is configured (tsapi.services.consistency).
        self.watermark: Watermark | None = None
        self.series_cache = SeriesCache()
        self.metric_cache = MetricCache()
        self._storage: StorageInfo | None = None
        self._lock = threading.Lock()

    def reader(self) -> ReadEngine:
        """What a read should connect through (see tsapi.store.replication for the contract).

        The primary without a replica, or when the newest acknowledged write's position is
        unknown; the replica once it has replayed past it and is healthy.
        """
        replica = self.replica if self.watermark is not None else None
        if replica is not None:
            needed = self.watermark.get()
            if needed is None or not replica.serves(needed):
                replica = None
        return ReadEngine(self.engine, replica)

    def acknowledge_write(self) -> None:
        """Call after a write committed, before answering: reads then wait for it."""
        if self.replica is None or self.watermark is None:
            return
        with self.engine.connect() as conn:
            lsn = current_wal_lsn(conn)
        self.watermark.raise_to(lsn)

    @property
    def storage(self) -> StorageInfo:
        if self._storage is None:
            with self._lock:
                if self._storage is None:
                    self._storage = detect_storage(self.engine)
        return self._storage

    def dispose(self) -> None:
        self.engine.dispose()
        if self.replica is not None:
            self.replica.engine.dispose()


def _engine(url: str, pool_size: int, statement_timeout_ms: int, connect_timeout: int,
            ping_every_checkout: bool = False) -> Engine:
    engine = create_engine(
        normalize_database_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        # The session used last is the next one out: requests one after another (a
        # dashboard's, a client's on a kept-alive connection) run on one warm session, whose
        # catalog caches and prepared statements are ready, instead of taking the pool's
        # sessions in turn and readying each (a first statement on a rollup level, or on a
        # new day's chunk of points, planned in 10-15 ms against ~1 ms warm).
        pool_use_lifo=True,
        pool_pre_ping=ping_every_checkout,
        connect_args={
            # work_mem: sorting a day of raw points (~50,000 rows) spills to disk at the
            # default 4 MB and takes twice as long. plan_cache_mode: see PLAN_CACHE_MODE.
            "options": f"-c timezone=UTC -c statement_timeout={statement_timeout_ms} "
                       f"-c work_mem={WORK_MEM} -c plan_cache_mode={PLAN_CACHE_MODE}",
            "connect_timeout": connect_timeout,
            "application_name": "tsapi",
            # The connection speaks UTF-8 whatever the database's encoding: COPY's rows are
            # UTF-8 bytes (tsapi.store.large_batch), and under the default (the database's
            # encoding) a LATIN1 database stored them misread and an SQL_ASCII one had the
            # driver refuse any non-ASCII string (a 500).
            "client_encoding": "utf8",
        },
    )
    if not ping_every_checkout:
        _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Test a pooled connection before use if it sat idle for over IDLE_PING_SECONDS.

    A pooled connection may have died with a database restart (or been terminated): tested
    before use, it is replaced transparently and the service recovers by itself. SQLAlchemy's
    pool_pre_ping tests every checkout, a round trip on every request; a connection back in
    the pool within the last second was alive then, and if the database went away since,
    the request's first statement fails as a disconnect, which makes SQLAlchemy replace
    every connection pooled before it. An InvalidatePoolError from a checkout hook does the
    same, and the pool hands out a new connection instead.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection, record) -> None:
        # record.info lives as long as the DBAPI connection: a new connection has no mark.
        if dbapi_connection is not None:  # None: invalidated, replaced on its next checkout
            record.info[_CHECKED_IN_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, proxy) -> None:
        checked_in_at = record.info.get(_CHECKED_IN_AT)
        if checked_in_at is None or time.monotonic() - checked_in_at < IDLE_PING_SECONDS:
            return
        try:
            # The dialect's own ping, as pool_pre_ping's: it leaves no transaction open.
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # noqa: BLE001 - whatever failed, the connection is unusable
            raise InvalidatePoolError() from exc
        if not alive:
            raise InvalidatePoolError()


def detect_storage(engine: Engine) -> StorageInfo:
    with engine.connect() as conn:
        pg_version = conn.execute(text("SHOW server_version")).scalar_one()
        ts_version = conn.execute(
            text("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
        ).scalar()
        hypertable = False
        if ts_version is not None:
            hypertable = bool(
                conn.execute(
                    text(
                        "SELECT count(*) FROM timescaledb_information.hypertables "
                        "WHERE hypertable_name = 'points'"
                    )
                ).scalar_one()
            )
    return StorageInfo(pg_version, ts_version, hypertable)


def ping(engine: Engine) -> None:
    """Raise if the database cannot answer a trivial query."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


NUMERIC_OUT_OF_RANGE = "22003"  # SQLSTATE: a float8 result overflowed


def numeric_overflow(exc: DBAPIError) -> bool:
    """Whether the database refused a statement because a number left float8's range."""
    return getattr(exc.orig, "pgcode", None) == NUMERIC_OUT_OF_RANGE
