"""The database handle: one SQLAlchemy engine per app, and what kind of storage it has."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import Engine, create_engine, text

from tsapi.config import normalize_database_url
from tsapi.store.catalog import MetricCache, SeriesCache
from tsapi.store.replication import ReadEngine, Replica, Watermark, current_wal_lsn

WORK_MEM = "32MB"


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
        self.replica: Replica | None = None
        if read_url:
            self.replica = Replica(
                _engine(read_url, pool_size, statement_timeout_ms, connect_timeout=2),
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


def _engine(url: str, pool_size: int, statement_timeout_ms: int, connect_timeout: int) -> Engine:
    return create_engine(
        normalize_database_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        # A pooled connection may have died with a database restart: test it before use,
        # so the service recovers by itself when the database comes back.
        pool_pre_ping=True,
        connect_args={
            # work_mem: sorting a day of raw points (~50,000 rows) spills to disk at the
            # default 4 MB and takes twice as long.
            "options": f"-c timezone=UTC -c statement_timeout={statement_timeout_ms} "
                       f"-c work_mem={WORK_MEM}",
            "connect_timeout": connect_timeout,
            "application_name": "tsapi",
        },
    )


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
