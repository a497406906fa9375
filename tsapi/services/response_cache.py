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
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from redis import Redis
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tsapi.services.instruments import CACHE_LOOKUPS
from tsapi.services.redis_gate import UNREACHABLE, GateClosed, RedisGate

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
        # In-process keys this cache has set, for listing and clearing (Redis uses SCAN).
        self._local_keys: set[str] = set()
        self._erring = False  # Redis answered with an error: logged once until it succeeds
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

    # -- generations ----------------------------------------------------------------------
    # A cached entry's key includes the generation of what it was computed from. Writers bump
    # the generation after they commit, so a reader never finds an entry older than the last
    # write: no key scans and no invalidation races. Without Redis the counters are per
    # process, which is only exact for a single worker (documented in the README).
    def generations(self, names: list[str]) -> list[int | str] | None:
        """The epoch, then each name's generation; None: do not use the cache now."""
        if not self.uses_redis:
            return [0] + [self._local_generations.get(n, 0) for n in names]
        if self._missed_bump and not self._drop_epoch():
            return None
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
        """Called after a write commits. Never forgotten: an entry must not outlive its data."""
        if not self.uses_redis:
            with self._lock:
                for name in names:
                    self._local_generations[name] = self._local_generations.get(name, 0) + 1
            return

        def increment() -> None:
            pipe = self.client.pipeline(transaction=False)
            for name in names:
                pipe.incr(GENERATION_PREFIX + name)
            pipe.execute()

        try:
            # Urgent: while the gate is closed, another worker that reaches Redis may serve
            # entries this write made stale, so this worker tries sooner than the others.
            self.gate.call(increment, urgent=True)
        except RedisError as exc:
            # Which entries the write made stale is lost with the failed INCR: the epoch goes,
            # so no worker uses the cache until a new one is set. Until it is gone, this
            # worker does not use the cache; it deletes it before its next lookup (urgently).
            self._missed_bump = True
            if not isinstance(exc, (GateClosed, RedisTimeoutError)):
                # A quick failure (a lost connection, an answer such as out of memory): the
                # DEL may well work now. After a timeout, or a gate that did not even let
                # the INCR through, trying now would make this request wait a second time.
                self._drop_epoch(at_once=True)

    def _drop_epoch(self, at_once: bool = False) -> bool:
        def drop() -> None:
            self.client.delete(GENERATION_PREFIX + EPOCH)

        try:
            if at_once:
                self.gate.check(drop)
            else:
                self.gate.call(drop, urgent=True)
        except RedisError:
            return False
        self._missed_bump = False
        return True

    def _new_epoch(self) -> bytes | str | None:
        """Set a fresh epoch token unless another worker just did; None if Redis refuses."""
        key = GENERATION_PREFIX + EPOCH

        def set_and_read() -> bytes | str | None:
            self.client.set(key, uuid.uuid4().hex[:16], nx=True)
            return self.client.get(key)

        return self._guard(set_and_read)

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
