"""The response cache: Redis (or in-process) behind Flask-Caching's backend, never a reason to fail.

The cache backend raises when Redis is unreachable; every call here catches that and counts
the request as a miss. Calls go through the process's Redis gate (tsapi.services.redis_gate):
after any user of Redis found it unreachable, the cache is skipped (answers are computed, not
served) until the gate lets a request try Redis again, so an outage (even a Redis that
accepts connections and never answers) costs one wait per pause rather than one per request.
Generations, statistics and key listing use a Redis client this module is given (the
backend's own client is not public API).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from redis import Redis
from redis.exceptions import RedisError

from tsapi.services.cache_generations import GenerationCounters, Generations
from tsapi.services.instruments import CACHE_LOOKUPS
from tsapi.services.redis_gate import UNREACHABLE, RedisGate
from tsapi.services.redis_riders import Trip, settle

log = logging.getLogger(__name__)

KEY_PREFIX = "tsapi:cache:"
STATS_KEY = "tsapi:stats"
CATALOG = "catalog"  # the generation of the metric list, bumped when ingest changes it
# Hit and miss counts reach Redis at most this often (and whenever stats are read), not with a
# round trip of their own on every cached answer.
STATS_FLUSH_SECONDS = 1.0
MAX_LAST_SEEN = 10_000


class CacheBackend(Protocol):
    """The part of a cachelib/Flask-Caching backend used here (keys without KEY_PREFIX)."""

    def get(self, key: str) -> Any: ...
    def set(self, key: str, value: Any, timeout: int | None = None) -> Any: ...
    def delete_many(self, *keys: str) -> Any: ...
    def has(self, key: str) -> bool: ...
    serializer: Any  # on Redis: decodes a value read with the client (ResponseCache.lookup)


class ResponseCache:
    """get/set/delete that never raise, with hit and miss counts shared across workers."""

    def __init__(self, backend: CacheBackend, redis_client: Redis | None, gate: RedisGate):
        self.backend = backend
        self.client = redis_client  # None: the in-process cache, one worker's own
        self.uses_redis = redis_client is not None
        self.gate = gate
        self.generations = GenerationCounters(redis_client, gate)
        # In-process keys this cache has set, for listing and clearing (Redis uses SCAN).
        self._local_keys: set[str] = set()
        self._erring = False  # Redis answered with an error: logged once until it succeeds
        self._local_stats = {"hits": 0, "misses": 0}
        # The generations last read for each set of names (lookup's guess), at most
        # MAX_LAST_SEEN sets.
        self._last_seen: dict[tuple[str, ...], Generations] = {}
        self._lock = threading.Lock()
        self._unflushed = {"hits": 0, "misses": 0}
        self._flushed_at = time.monotonic()

    # -- plumbing -------------------------------------------------------------------------
    def _guard(self, call, default=None):
        """call()'s answer, or default when Redis is unreachable, failed recently (the gate
        is closed: not tried) or answered with an error."""
        try:
            answer = self.gate.call(call)
        except RedisError as exc:
            # The gate logs unreachability; an error answer (out of memory, say) is logged
            # here, once until a call succeeds.
            if not isinstance(exc, UNREACHABLE) and not self._erring:
                self._erring = True
                log.warning("redis refused a cache call, serving without it: %s", exc)
            return default
        self._erring = False
        return answer

    # -- values ---------------------------------------------------------------------------
    def get(self, key: str) -> Any:
        value = self._guard(lambda: self.backend.get(key))
        self._count("hits" if value is not None else "misses")
        return value

    def set(self, key: str, value: Any, timeout: int | None = None) -> None:
        self._guard(lambda: self.backend.set(key, value, timeout=timeout))
        if not self.uses_redis:
            with self._lock:
                self._local_keys.add(key)

    # -- answers by generation (tsapi.services.cache_generations) -------------------------
    def lookup(self, names: list[str], key_for: Callable[[Generations], str]
               ) -> tuple[str | None, Any]:
        """The key for the current generations of `names` (made by key_for; None: do not use
        the cache now) and the value cached under it (None: a miss).

        Reading the generations, then the value, is two Redis round trips. While the
        generations stay what this worker last saw for these names, one does: the value is
        read for the key those gave, in the pipeline that reads the generations, and used
        only if they still match.

        What waits to ride the request's next round trip (tsapi.services.redis_riders: the
        rate limit's count) rides that pipeline, or is sent alone: when this returns it has
        been settled, and its refusal (an exception of the rider's) is raised from here.
        """
        guess = self._last_seen.get(tuple(names)) if self.uses_redis else None
        if guess is None or self.generations.owed:
            settle()  # what waits to ride goes alone, before this lookup's own trips
            generations = self.generations.current(names)
            if generations is None:
                return None, None
            key = key_for(generations)
            value = self.get(key)
        else:
            # Commands waiting to ride the request's next round trip (the rate limit's count:
            # tsapi.services.redis_riders) go in the same pipeline.
            trip = Trip()

            def fetch() -> list:
                pipe = self.client.pipeline(transaction=False)
                pipe.get(KEY_PREFIX + key_for(guess))
                self.generations.queue_read(pipe, names)
                return trip.execute(pipe)

            found = self._guard(fetch)
            trip.finish()  # may refuse the request (over its rate limit): nothing is served
            settle()  # the gate did not let the pipeline through: the riders go alone
            generations = self.generations.decode(None if found is None else found[1])
            if generations is None:
                return None, None
            key = key_for(generations)
            if generations == guess:
                # cachelib's own decoding of what its get() would have read.
                value = self.backend.serializer.loads(found[0])
                self._count("hits" if value is not None else "misses")
            else:
                value = self.get(key)
        if self.uses_redis:
            if len(self._last_seen) >= MAX_LAST_SEEN:
                self._last_seen.clear()  # forgetting costs one round trip, once
            self._last_seen[tuple(names)] = generations
        return key, value

    def bump(self, names: list[str]) -> None:
        """Called after a write commits: no entry computed before it is used again."""
        self.generations.bump(names)

    def _count(self, outcome: str) -> None:
        CACHE_LOOKUPS.labels("hit" if outcome == "hits" else "miss").inc()
        with self._lock:
            self._local_stats[outcome] += 1
            self._unflushed[outcome] += 1
        if self.uses_redis and time.monotonic() - self._flushed_at >= STATS_FLUSH_SECONDS:
            self._flush_stats()

    def _flush_stats(self) -> None:
        with self._lock:
            counts, self._unflushed = self._unflushed, {"hits": 0, "misses": 0}
            self._flushed_at = time.monotonic()

        def send():
            pipe = self.client.pipeline(transaction=False)
            for outcome, n in counts.items():
                if n:
                    pipe.hincrby(STATS_KEY, outcome, n)
            pipe.execute()

        if any(counts.values()):
            self._guard(send)  # counts lost in an outage: only statistics

    # -- administration -------------------------------------------------------------------
    def ping(self) -> bool:
        if not self.uses_redis:
            return True
        try:
            # Tried even while the gate is closed (a health check sees Redis as it is); an
            # answer opens the gate for everything else at once.
            return bool(self.gate.check(self.client.ping))
        except RedisError:
            return False

    @staticmethod
    def _glob(prefix: str) -> str:
        """A SCAN pattern for keys starting with prefix; a metric named 'a*' matches itself."""
        escaped = "".join("\\" + c if c in "*?[]\\" else c for c in prefix)
        return KEY_PREFIX + escaped + "*"

    def keys(self, prefix: str = "") -> list[str]:
        """This service's cache keys, without KEY_PREFIX. SCAN, never KEYS: no long block."""
        if not self.uses_redis:
            with self._lock:
                live = {k for k in self._local_keys if self.backend.has(k)}
                self._local_keys = live
            return sorted(k for k in live if k.startswith(prefix))
        # Through the gate, as every other call: after a failure, no wait on Redis again.
        found = self.gate.call(
            lambda: list(self.client.scan_iter(match=self._glob(prefix), count=1000)))
        return sorted(k.decode()[len(KEY_PREFIX):] for k in found)

    def clear(self, prefix: str = "") -> int:
        """Delete this service's keys starting with prefix; other keys in Redis stay."""
        if not self.uses_redis:
            doomed = self.keys(prefix)
            self.backend.delete_many(*doomed)
            with self._lock:
                self._local_keys.difference_update(doomed)
            return len(doomed)
        return self.gate.call(lambda: self._unlink_all(prefix))

    def _unlink_all(self, prefix: str) -> int:
        removed = 0
        batch = []
        for key in self.client.scan_iter(match=self._glob(prefix), count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                removed += self.client.unlink(*batch)
                batch = []
        if batch:
            removed += self.client.unlink(*batch)
        return removed

    def stats(self) -> dict[str, Any]:
        """Hits and misses (all workers when on Redis), key count and memory."""
        info: dict[str, Any] = {"hits": self._local_stats["hits"],
                                "misses": self._local_stats["misses"]}
        if not self.uses_redis:
            info["keys"] = len(self.keys())
            return info
        self._flush_stats()
        shared = self.gate.call(lambda: self.client.hgetall(STATS_KEY))
        info["hits"] = int(shared.get(b"hits", 0))
        info["misses"] = int(shared.get(b"misses", 0))
        info["keys"] = len(self.keys())
        memory = self.gate.call(lambda: self.client.info("memory"))
        info["used_memory"] = memory.get("used_memory")
        info["used_memory_human"] = memory.get("used_memory_human")
        server = self.gate.call(lambda: self.client.info("server"))
        info["redis_version"] = server.get("redis_version")
        return info
