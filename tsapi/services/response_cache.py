"""The response cache: Redis (or in-process) behind Flask-Caching's backend, never a reason to fail.

The cache backend raises when Redis is unreachable; every call here catches that, counts the
request as a miss and skips Redis for a few seconds, then lets one request at a time try it
while the others go on without the cache: an outage (even a Redis that accepts connections and
never answers) costs one failed attempt per pause rather than one per request. Generations,
statistics and key listing use a Redis client this module is given (the backend's own client
is not public API).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from redis import Redis
from redis.exceptions import RedisError

from tsapi.services.instruments import CACHE_LOOKUPS

log = logging.getLogger(__name__)

KEY_PREFIX = "tsapi:cache:"
STATS_KEY = "tsapi:stats"
# Generation counters live outside KEY_PREFIX: clearing the cache must never reset them, or a
# result computed before the clear could later be served under a recycled generation.
GENERATION_PREFIX = "tsapi:gen:"
CATALOG = "catalog"  # the generation of the metric list, bumped when ingest changes it
# Part of every key: a random token, replaced after a failed bump, which orphans every entry
# at once. A failed bump deletes it (DEL is accepted even by a Redis out of memory under
# noeviction, which refuses INCR and SET): until a worker can set a new token, no worker
# finds one, and none uses the cache.
EPOCH = "epoch"
OUTAGE_PAUSE_SECONDS = 5.0
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

    def __init__(self, backend: CacheBackend, redis_client: Redis | None = None):
        self.backend = backend
        self.client = redis_client  # None: the in-process cache, one worker's own
        self.uses_redis = redis_client is not None
        # In-process keys this cache has set, for listing and clearing (Redis uses SCAN).
        self._local_keys: set[str] = set()
        self._down_until = 0.0
        self._outage = False  # set by a failure, cleared by the next success
        self._local_stats = {"hits": 0, "misses": 0}
        self._local_generations: dict[str, int] = {}
        self._missed_bump = False
        # The generations last read for each set of names (lookup's guess), at most
        # MAX_LAST_SEEN sets.
        self._last_seen: dict[tuple[str, ...], list[int | str]] = {}
        self._lock = threading.Lock()
        self._unflushed = {"hits": 0, "misses": 0}
        self._flushed_at = time.monotonic()

    # -- plumbing -------------------------------------------------------------------------
    def _may_use_redis(self) -> bool:
        """During an outage, once the pause is over, one call tries Redis (and the pause
        starts again); the others meanwhile go without the cache rather than each wait for
        the same timeout."""
        if not self._outage:
            return True
        with self._lock:
            now = time.monotonic()
            if now < self._down_until:
                return False
            self._down_until = now + OUTAGE_PAUSE_SECONDS
            return True

    def _failed(self, exc: Exception) -> None:
        with self._lock:
            was_up, self._outage = not self._outage, True
            self._down_until = time.monotonic() + OUTAGE_PAUSE_SECONDS
        if was_up:
            log.warning("redis unavailable, serving without cache: %s", exc)

    def _recovered(self) -> None:
        if self._outage:
            with self._lock:
                self._outage = False
                self._down_until = 0.0

    def _guard(self, call, default=None):
        if not self._may_use_redis():
            return default
        try:
            answer = call()
        except RedisError as exc:
            self._failed(exc)
            return default
        self._recovered()
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

    # -- generations ----------------------------------------------------------------------
    # A cached entry's key includes the generation of what it was computed from. Writers bump
    # the generation after they commit, so a reader never finds an entry older than the last
    # write: no key scans and no invalidation races. Without Redis the counters are per
    # process, which is only exact for a single worker (documented in the README).
    def generations(self, names: list[str]) -> list[int | str] | None:
        """The epoch, then each name's generation; None: do not use the cache now."""
        if not self.uses_redis:
            return [0] + [self._local_generations.get(n, 0) for n in names]
        if self._missed_bump:
            if not self._may_use_redis() or not self._drop_epoch():
                return None
            self._recovered()  # this call was the one let through: let its reads go on
        return self._read_generations(
            self._guard(lambda: self.client.mget(self._generation_keys(names))))

    @staticmethod
    def _generation_keys(names: list[str]) -> list[str]:
        return [GENERATION_PREFIX + EPOCH] + [GENERATION_PREFIX + n for n in names]

    def _read_generations(self, found: list | None) -> list[int | str] | None:
        if found is None:
            return None
        epoch = found[0] if found[0] is not None else self._new_epoch()
        if epoch is None:
            return None
        return [epoch.decode() if isinstance(epoch, bytes) else epoch] + [
            int(v) if v is not None else 0 for v in found[1:]]

    def lookup(self, names: list[str], key_for: Callable[[list[int | str]], str]
               ) -> tuple[str | None, Any]:
        """The key for the current generations of `names` (made by key_for; None: do not use
        the cache now) and the value cached under it (None: a miss).

        generations() and get() are two Redis round trips. While the generations stay what
        this worker last saw for these names, one does: the value is read for the key those
        gave, in the pipeline that reads the generations, and used only if they still match.
        """
        guess = self._last_seen.get(tuple(names)) if self.uses_redis else None
        if guess is None or self._missed_bump:
            generations = self.generations(names)
            if generations is None:
                return None, None
            key = key_for(generations)
            value = self.get(key)
        else:
            def fetch() -> list:
                pipe = self.client.pipeline(transaction=False)
                pipe.mget(self._generation_keys(names))
                pipe.get(KEY_PREFIX + key_for(guess))
                return pipe.execute()

            found = self._guard(fetch)
            generations = self._read_generations(None if found is None else found[0])
            if generations is None:
                return None, None
            key = key_for(generations)
            if generations == guess:
                # cachelib's own decoding of what its get() would have read.
                value = self.backend.serializer.loads(found[1])
                self._count("hits" if value is not None else "misses")
            else:
                value = self.get(key)
        if self.uses_redis:
            if len(self._last_seen) >= MAX_LAST_SEEN:
                self._last_seen.clear()  # forgetting costs one round trip, once
            self._last_seen[tuple(names)] = generations
        return key, value

    def bump(self, names: list[str]) -> None:
        """Called after a write commits. Never skipped: an entry must not outlive its data."""
        if not self.uses_redis:
            with self._lock:
                for name in names:
                    self._local_generations[name] = self._local_generations.get(name, 0) + 1
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            for name in names:
                pipe.incr(GENERATION_PREFIX + name)
            pipe.execute()
        except RedisError as exc:
            # Which entries the write made stale is lost with the failed INCR: the epoch goes,
            # so no worker uses the cache until a new one is set. If even the DEL fails, this
            # worker does not use the cache until it has deleted the epoch itself.
            self._failed(exc)
            self._missed_bump = True
            self._drop_epoch()

    def _drop_epoch(self) -> bool:
        try:
            self.client.delete(GENERATION_PREFIX + EPOCH)
        except RedisError as exc:
            self._failed(exc)
            return False
        self._missed_bump = False
        return True

    def _new_epoch(self) -> bytes | str | None:
        """Set a fresh epoch token unless another worker just did; None if Redis refuses."""
        key = GENERATION_PREFIX + EPOCH
        try:
            self.client.set(key, uuid.uuid4().hex[:16], nx=True)
            return self.client.get(key)
        except RedisError as exc:
            self._failed(exc)
            return None

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
            ok = bool(self.client.ping())
        except RedisError as exc:
            self._failed(exc)
            return False
        self._recovered()
        return ok

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
        found = self.client.scan_iter(match=self._glob(prefix), count=1000)
        return sorted(k.decode()[len(KEY_PREFIX):] for k in found)

    def clear(self, prefix: str = "") -> int:
        """Delete this service's keys starting with prefix; other keys in Redis stay."""
        if not self.uses_redis:
            doomed = self.keys(prefix)
            self.backend.delete_many(*doomed)
            with self._lock:
                self._local_keys.difference_update(doomed)
            return len(doomed)
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
        shared = self.client.hgetall(STATS_KEY)
        info["hits"] = int(shared.get(b"hits", 0))
        info["misses"] = int(shared.get(b"misses", 0))
        info["keys"] = len(self.keys())
        memory = self.client.info("memory")
        info["used_memory"] = memory.get("used_memory")
        info["used_memory_human"] = memory.get("used_memory_human")
        server = self.client.info("server")
        info["redis_version"] = server.get("redis_version")
        return info
