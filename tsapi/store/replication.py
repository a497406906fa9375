"""A read replica (a PostgreSQL streaming standby) and when reads may use it.

The contract: a read sees every write acknowledged before it started, whichever database
serves it. Each acknowledged write records the primary's WAL position (its insert position)
as the *watermark*, shared by every node (tsapi.services.consistency keeps it in Redis); a
read goes to the replica only when the replica has replayed past the watermark
(pg_last_wal_replay_lsn), is in recovery, and lags its primary by no more than the allowed
seconds. Otherwise, or when the watermark cannot be read, the read goes to the primary.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import Counter
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

# What share of the reads the replica takes (GET /internal/metrics, summed over workers).
READS = Counter("tsapi_db_reads_total", "Reads (queries, discovery, listings) by the database "
                "that served them", ["database"])

# How long one probe of the replica's state is believed: a replica that stops (or falls
# behind) is skipped within this, plus one connect attempt.
PROBE_INTERVAL = 0.5


class Watermark(Protocol):
    """Where the WAL position of the newest acknowledged write is shared between nodes."""

    def get(self) -> int | None:
        """The newest acknowledged write's position; None when unknown (read the primary)."""

    def raise_to(self, lsn: int) -> None:
        """Record a write's position, unless a newer one is recorded already."""


def lsn_number(lsn: str) -> int:
    """PostgreSQL's 'X/Y' text form of a WAL position as one comparable number."""
    high, low = lsn.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def current_wal_lsn(conn: Connection) -> int:
    """The primary's WAL position now: after a commit, past that commit's record.

    The insert position, not pg_current_wal_lsn() (the write position): with
    synchronous_commit off a commit returns before its record is written, and a standby
    that replayed up to the write position could still lack it.
    """
    return lsn_number(
        conn.execute(text("SELECT pg_current_wal_insert_lsn()::text")).scalar_one())


@dataclass(frozen=True)
class ReplicaState:
    """One probe's findings. `reachable` False: down (or not a standby at all)."""

    reachable: bool
    replay_lsn: int = 0
    lag_seconds: float = 0.0
    checked_at: float = 0.0
    error: str | None = None

    def usable(self, max_lag: float) -> bool:
        return self.reachable and self.lag_seconds <= max_lag


# Lag is 0 while everything received is replayed (an idle primary sends nothing, and the
# age of the last replayed transaction would grow without any lag), and before streaming
# has started (just after the standby started, it replays its own WAL first); otherwise it
# is the age of the last transaction replayed. A standby cut off from its primary thus
# shows no lag: the watermark, not the lag, is what keeps reads from missing writes.
_STATE = text("""
    SELECT pg_is_in_recovery() AS standby,
           pg_last_wal_replay_lsn()::text AS replayed,
           CASE WHEN pg_last_wal_receive_lsn() IS NULL
                  OR pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn()
                THEN 0
                ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)
           END::float8 AS lag
""")


def probe(conn: Connection) -> ReplicaState:
    row = conn.execute(_STATE).one()
    if not row.standby or row.replayed is None:
        return ReplicaState(False, checked_at=time.monotonic(),
                            error="not a standby in recovery")
    return ReplicaState(True, lsn_number(row.replayed), max(row.lag, 0.0), time.monotonic())


class Replica:
    """The replica's engine and its last known state, probed at most every PROBE_INTERVAL."""

    def __init__(self, engine: Engine, max_lag_seconds: float):
        self.engine = engine
        self.max_lag = max_lag_seconds
        self._state = ReplicaState(False, checked_at=float("-inf"), error="not probed yet")
        self._lock = threading.Lock()

    def state(self, fresh: bool = False) -> ReplicaState:
        """The last probe's state, probing again when it is older than PROBE_INTERVAL.

        One thread probes at a time; the others use the previous state meanwhile, so a
        replica that hangs delays one request per interval, not all of them.
        """
        state = self._state
        if not fresh and time.monotonic() - state.checked_at < PROBE_INTERVAL:
            return state
        if not self._lock.acquire(blocking=fresh):
            return state
        try:
            self._state = self._probe()
        finally:
            self._lock.release()
        return self._state

    def _probe(self) -> ReplicaState:
        try:
            with self.engine.connect() as conn:
                return probe(conn)
        except SQLAlchemyError as exc:
            if self._state.reachable:
                log.warning("read replica unreachable, reading the primary: %s",
                            str(exc).splitlines()[0])
            return ReplicaState(False, checked_at=time.monotonic(),
                                error=type(exc.orig or exc).__name__)

    def mark_down(self, error: str) -> None:
        self._state = ReplicaState(False, checked_at=time.monotonic(), error=error)

    def serves(self, watermark: int) -> bool:
        """Has the replica replayed past `watermark`, and is it healthy and close enough?"""
        state = self.state()
        if not state.usable(self.max_lag):
            return False
        if state.replay_lsn >= watermark:
            return True
        # Behind the newest write by the last probe: ask again now (the replica usually
        # catches up within milliseconds).
        state = self.state(fresh=True)
        return state.usable(self.max_lag) and state.replay_lsn >= watermark


class ReadEngine:
    """What a read connects through: the replica when it may serve, else the primary.

    Only connect() is offered: reads open a connection and run statements on it. If the
    replica fails to connect, the read falls back to the primary and the replica is
    skipped until a probe finds it back.
    """

    def __init__(self, primary: Engine, replica: Replica | None):
        self.primary = primary
        self.replica = replica

    def connect(self) -> Connection:
        if self.replica is not None:
            try:
                conn = self.replica.engine.connect()
            except SQLAlchemyError as exc:
                self.replica.mark_down(type(exc.orig or exc).__name__)
            else:
                READS.labels("replica").inc()
                return conn
        READS.labels("primary").inc()
        return self.primary.connect()
