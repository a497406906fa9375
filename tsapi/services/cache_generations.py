"""Generations of the response cache: why a cached answer never outlives its data.

A cached entry's key includes the generation of what it was computed from. Writers bump the
generation after they commit, so a reader never finds an entry older than the last write: no
key scans and no invalidation races. Without Redis the counters are per process, which is
only exact for a single worker (documented in the README).

Part of every key is also an epoch: a random token, replaced after a failed bump, which
orphans every entry at once. A failed bump deletes it (DEL is accepted even by a Redis out of
memory under noeviction, which refuses INCR and SET): until a worker can set a new token, no
worker finds one, and none uses the cache. A bump the process's Redis gate does not let
through (tsapi.services.redis_gate: Redis failed recently) is a failed bump too: the worker
owes the DEL, skips the cache until it is made, and makes it as soon as the gate lets an
urgent call through: on its next lookup, or from a timer, so that a worker that gets no more
requests still makes it (until it does, other workers may serve entries the write made stale).

A Redis that refuses DEL as well (a replica, READONLY: a failover that REDIS_URL does not
follow) can neither take a bump nor lose its epoch. So every read of the generations carries
a DEL of a key that never exists: refused, the read is a failure and the cache is skipped.
Deleting nothing is not replicated nor written to the append-only file, and a Redis out of
memory accepts it.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable

from redis import Redis
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tsapi.services.redis_gate import FIRST_PAUSE_SECONDS, UNREACHABLE, GateClosed, RedisGate

log = logging.getLogger(__name__)

# Generation counters live outside the cache's key prefix: clearing the cache must never
# reset them, or a result computed before the clear could later be served under a recycled
# generation.
GENERATION_PREFIX = "tsapi:gen:"
EPOCH = "epoch"
# Never set: deleting it only asks Redis whether it takes writes.
WRITABLE_PROBE = GENERATION_PREFIX + "writable-probe"

Generations = list[int | str]  # the epoch, then one generation per name

# A write's bump: one INCR per name, all in one command. A pipeline of one INCR per name (a
# line-protocol batch names several metrics) cost the worker a command each to pack and an
# answer each to parse: 7 names took 70-79 µs of the worker's CPU, this 42-57 µs (a loop of
# bumps against a local Redis). Refused by a Redis out of memory at its first INCR: a failed
# bump, as before.
_BUMP = "for _, key in ipairs(KEYS) do redis.call('incr', key) end"


def _later(delay: float, fn: Callable[[], None]) -> None:
    timer = threading.Timer(delay, fn)
    timer.daemon = True
    timer.start()


class GenerationCounters:
    """Read and bump generations, in Redis (client) or in this process (None)."""

    def __init__(self, client: Redis | None, gate: RedisGate,
                 later: Callable[[float, Callable[[], None]], None] = _later):
        self.client = client
        self.gate = gate
        self._bump_script = client.register_script(_BUMP) if client is not None else None
        self.later = later  # runs the owed DEL off the request path
        self._local: dict[str, int] = {}
        self._lock = threading.Lock()
        # Bumps failed, and how many of them a DEL made after them covers: a DEL that was
        # already under way when a bump failed does not settle that bump.
        self._failed_bumps = 0
        self._settled_bumps = 0
        self._settling = False  # a timer will try the DEL
        self._bumps_failing = False  # logged once until a bump succeeds

    @property
    def owed(self) -> bool:
        """A bump failed and the epoch was not deleted since."""
        return self._failed_bumps > self._settled_bumps

    @staticmethod
    def queue_read(pipe, names: list[str]) -> None:
        """Queue the read of `names`' generations on a pipeline; decode() reads its first
        answer. The pipeline fails if Redis refuses writes (see the module's docstring)."""
        pipe.mget([GENERATION_PREFIX + EPOCH] + [GENERATION_PREFIX + n for n in names])
        pipe.delete(WRITABLE_PROBE)

    def current(self, names: list[str]) -> Generations | None:
        """The epoch, then each name's generation; None: do not use the cache now."""
        if self.client is None:
            return [0] + [self._local.get(n, 0) for n in names]
        # Checked again after the DEL: a bump that failed meanwhile owes another one.
        if self.owed and (not self._drop_epoch() or self.owed):
            return None
        def read() -> list:
            pipe = self.client.pipeline(transaction=False)
            self.queue_read(pipe, names)
            return pipe.execute()[0]

        try:
            found = self.gate.call(read)
        except RedisError:
            return None
        return self.decode(found)

    def decode(self, found: list | None) -> Generations | None:
        """What queue_read's MGET found, setting a new epoch if there is none."""
        if found is None:
            return None
        epoch = found[0] if found[0] is not None else self._new_epoch()
        if epoch is None:
            return None
        try:
            counts = [int(v) if v is not None else 0 for v in found[1:]]
        except ValueError:
            # Not written by tsapi (INCR makes integers): no generation to trust, no cache.
            log.warning("a cache generation in Redis is not an integer: cache skipped")
            return None
        return [epoch.decode() if isinstance(epoch, bytes) else epoch] + counts

    def bump(self, names: list[str]) -> None:
        """Called after a write commits. Never forgotten: an entry must not outlive its data."""
        if self.client is None:
            with self._lock:
                for name in names:
                    self._local[name] = self._local.get(name, 0) + 1
            return

        def increment() -> None:
            self._bump_script(keys=[GENERATION_PREFIX + name for name in names])

        try:
            # Urgent: while the gate is closed, another worker that reaches Redis may serve
            # entries this write made stale, so this worker tries sooner than the others.
            self.gate.call(increment, urgent=True)
        except RedisError as exc:
            # Which entries the write made stale is lost with the failed INCR: the epoch goes.
            with self._lock:
                self._failed_bumps += 1
            if not isinstance(exc, UNREACHABLE) and not self._bumps_failing:  # gate logs those
                log.warning("cache generation bumps fail, the epoch is dropped: %s", exc)
            self._bumps_failing = True
            if not isinstance(exc, (GateClosed, RedisTimeoutError)):
                # A quick failure (a lost connection, an answer such as out of memory): the
                # DEL may well work now. After a timeout, or a gate that did not even let
                # the INCR through, trying now would make this request wait a second time.
                self._drop_epoch(at_once=True)
            self._settle_later()
        else:
            self._bumps_failing = False

    def _settle_later(self) -> None:
        """Until the owed DEL is made, try it every FIRST_PAUSE_SECONDS off the request path
        (one timer per process)."""
        with self._lock:
            if self._settling or not self.owed:
                return
            self._settling = True
        self.later(FIRST_PAUSE_SECONDS, self.settle)

    def settle(self) -> None:
        """Make the owed DEL if the gate lets it through; tried again later if not."""
        with self._lock:
            self._settling = False
        if self.owed and not self._drop_epoch():
            self._settle_later()

    def _drop_epoch(self, at_once: bool = False) -> bool:
        def drop() -> None:
            self.client.delete(GENERATION_PREFIX + EPOCH)

        covers = self._failed_bumps  # the bumps that failed before this DEL was sent
        try:
            if at_once:
                self.gate.check(drop)
            else:
                self.gate.call(drop, urgent=True)
        except RedisError:
            return False
        with self._lock:
            self._settled_bumps = max(self._settled_bumps, covers)
        return True

    def _new_epoch(self) -> bytes | str | None:
        """Set a fresh epoch token unless another worker just did; None if Redis refuses."""
        key = GENERATION_PREFIX + EPOCH

        def set_and_read() -> bytes | str | None:
            self.client.set(key, uuid.uuid4().hex[:16], nx=True)
            return self.client.get(key)

        try:
            return self.gate.call(set_and_read)
        except RedisError:
            return None
