"""API-key lookups cached per process, invalidated across workers and nodes through Redis.

A request with a key must not cost a database transaction (the lookup, and now and then a
last_used write): the key found for a token hash is kept in memory. A revocation must still
shut the key out within REVOCATION_BOUND_SECONDS on every worker of every node, so an entry is
used only while the key generation in Redis is the one it was read under (revoking bumps it;
a worker re-reads the generation at most every GENERATION_REFRESH_SECONDS). Without Redis
(unset, down or unreachable) nobody can tell a worker about a revocation, so entries then live
only SHORT_LIFE_SECONDS: a revoked key is refused within that bound anyway (fail closed).
After a Redis failure the generation is not read until the process's Redis gate lets a
request try again (tsapi.services.redis_gate); the others do not wait on it.

last_used_at is written off the request path: a request only notes the key's use in memory,
and a background thread writes the noted keys every LAST_USED_FLUSH_SECONDS, at most once a
minute per key (tsapi.store.keys.touch_keys).
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine

from tsapi.services.redis_gate import RedisGate
from tsapi.store.keys import ApiKey, find_key, token_hash, touch_keys

log = logging.getLogger(__name__)

GENERATION_KEY = "tsapi:keys:generation"
REVOCATION_BOUND_SECONDS = 1.0
GENERATION_REFRESH_SECONDS = 0.25  # well inside the bound, and ≤ 4 Redis reads a second
SHORT_LIFE_SECONDS = 0.5  # without a generation: ≤ 2 lookups a second per key and worker
MAX_AGE_SECONDS = 60.0  # even with Redis: a key is re-read now and then
LAST_USED_FLUSH_SECONDS = 10.0
MAX_ENTRIES = 10_000


def _start_if_missing(pipe) -> None:
    """Queue the start of a generation Redis does not hold, at a random value. A Redis that
    restarted empty (it keeps nothing on disk here) would otherwise count again from 0 or 1,
    and a worker holding an entry read under that same number before the restart would trust
    it again for up to MAX_AGE_SECONDS, past a revocation Redis lost or made since. Two Redis
    lifetimes' generations meet with odds of about 1 in 2^48; the value is still an integer
    that INCR moves, so workers of an older release can revoke beside these."""
    pipe.set(GENERATION_KEY, secrets.randbits(48), nx=True)


@dataclass(frozen=True)
class _Entry:
    key: ApiKey
    generation: int | None  # None: read while the generation was unknown
    read_at: float


class KeyCache:
    """find(token) -> ApiKey | None, as tsapi.store.keys.find_key, mostly from memory."""

    def __init__(self, engine: Engine, redis_client: Redis | None, gate: RedisGate,
                 clock=time.monotonic):
        self.engine = engine
        self.client = redis_client
        self.gate = gate
        self.clock = clock
        self._entries: dict[str, _Entry] = {}
        self._generation: int | None = None
        self._generation_read_at = float("-inf")
        self._used: set[int] = set()
        self._lock = threading.Lock()
        self._flusher_pid: int | None = None

    # -- lookups --------------------------------------------------------------------------
    def find(self, token: str) -> ApiKey | None:
        digest = token_hash(token)
        now = self.clock()
        # Read before the lookup: a revocation that commits after the lookup bumps it, and
        # the entry made below is not used again.
        generation = self.generation(now)
        key = self._remembered(digest, generation, now)
        if key is not None:
            return key
        with self.engine.begin() as conn:
            key = find_key(conn, token)
        if key is None:
            self._entries.pop(digest, None)
            return None
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[digest] = _Entry(key, generation, now)
        self._note_use(key.id)
        return key

    def remembered(self, token: str) -> ApiKey | None:
        """The token's key if memory holds it, fresh; None otherwise (find would look it up).
        Costs no database lookup, so the caller may check other things first."""
        now = self.clock()
        return self._remembered(token_hash(token), self.generation(now), now)

    def _remembered(self, digest: str, generation: int | None, now: float) -> ApiKey | None:
        entry = self._entries.get(digest)
        if entry is None or not self._fresh(entry, generation, now):
            return None
        self._note_use(entry.key.id)
        return entry.key

    @staticmethod
    def _fresh(entry: _Entry, generation: int | None, now: float) -> bool:
        age = now - entry.read_at
        if generation is not None and entry.generation == generation:
            return age < MAX_AGE_SECONDS
        if generation is None and entry.generation is None:
            return age < SHORT_LIFE_SECONDS
        return False  # the generation moved (a revocation), or Redis came or went

    def generation(self, now: float | None = None) -> int | None:
        """The key generation in Redis, re-read at most every GENERATION_REFRESH_SECONDS;
        None when there is no Redis, it does not answer, or it failed recently (the gate is
        closed: not even tried)."""
        if self.client is None:
            return None
        now = self.clock() if now is None else now
        if now - self._generation_read_at < GENERATION_REFRESH_SECONDS:
            return self._generation
        try:
            value = self.gate.call(self._read_generation)
        except RedisError as exc:
            if self._generation is not None:
                log.warning("redis unavailable: API keys are re-checked every %.1f s: %s",
                            SHORT_LIFE_SECONDS, exc)
            self._generation = None
            self._generation_read_at = float("-inf")
            return None
        self._generation = int(value or 0)
        self._generation_read_at = now
        return self._generation

    def _read_generation(self):
        value = self.client.get(GENERATION_KEY)
        if value is None:
            # Read as 0, a missing generation would be the one of a lifetime that never had
            # a revocation: the first reader starts it instead.
            pipe = self.client.pipeline(transaction=False)
            _start_if_missing(pipe)
            pipe.get(GENERATION_KEY)
            value = pipe.execute()[1]
        return value

    def revoked(self) -> None:
        """Tell every worker that a key was revoked (after the revocation committed).
        Raises RedisError if Redis cannot be told: the caller must say so."""
        self._entries.clear()
        self._generation_read_at = float("-inf")
        if self.client is not None:
            pipe = self.client.pipeline(transaction=False)
            _start_if_missing(pipe)
            pipe.incr(GENERATION_KEY)
            pipe.execute()

    # -- last_used ------------------------------------------------------------------------
    def _note_use(self, key_id: int) -> None:
        if key_id not in self._used:
            with self._lock:
                self._used.add(key_id)
        if self._flusher_pid != os.getpid():  # per process: gunicorn forks after import
            self._start_flusher()

    def _start_flusher(self) -> None:
        with self._lock:
            if self._flusher_pid == os.getpid():
                return
            self._flusher_pid = os.getpid()
        threading.Thread(target=self._flush_forever, name="tsapi-last-used",
                         daemon=True).start()

    def _flush_forever(self) -> None:
        while True:
            time.sleep(LAST_USED_FLUSH_SECONDS)
            try:
                self.flush_last_used()
            except Exception as exc:  # noqa: BLE001 - a lost last_used must not stop it
                log.warning("could not record API key use: %s", str(exc).splitlines()[0])

    def flush_last_used(self) -> None:
        """Write last_used_at for the keys used since the last flush (at most once a minute
        per key, by the database's clock)."""
        with self._lock:
            used, self._used = self._used, set()
        if used:
            with self.engine.begin() as conn:
                touch_keys(conn, sorted(used))
