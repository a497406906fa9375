"""Fixed-window request counters for the rate limits: in Redis, one round trip per request, or
none of its own when the count rides the request's cache lookup (CountRider).

A window starts with its first request and lasts the rate's seconds (the counter key expires
then). `count` does two things in one script call: it reads counters that only gate the
request (`peek`: refused once a counter is at its amount) and, if none does, increments the
request's own counters (`hit`, shortest window first, stopping at the first one over its
amount, which the request is refused by). Every answer carries the counter's time to live, in
whole seconds rounded up (a client that waits that long finds the window over), so the
X-RateLimit-* and Retry-After headers need no further read.

When Redis cannot be reached (refused, timed out), or failed recently for anything in this
process (the shared tsapi.services.redis_gate, which decides when it is tried again), each
worker counts in its own memory, which is never stricter than the shared count. Any other
Redis error lets the request through uncounted: limits fail open.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

from redis import Redis
from redis.exceptions import NoScriptError, RedisError

from tsapi.config import Rate
from tsapi.services.redis_gate import UNREACHABLE, RedisGate

log = logging.getLogger(__name__)

KEY_PREFIX = "tsapi:rate:"
MAX_MEMORY_COUNTERS = 100_000  # per worker, while Redis is away

# KEYS: the peeked counters, then the hit ones. ARGV: the number peeked, then amount and
# seconds for each key. Returns {0, count, ttl, count, ttl, ...} for the hits made, or
# {i, ttl} when peeked counter i is at its amount (nothing is incremented then).
_SCRIPT = """
-- Whole seconds left in the key's window, rounded up; a key without an expiry (new, or one
-- whose expiry was lost: a peeked one would never end) is given its window.
local function seconds_left(key, seconds)
    local ms = redis.call("pttl", key)
    if ms < 0 then
        redis.call("expire", key, seconds)
        return seconds
    end
    return math.ceil(ms / 1000)
end
local peeked = tonumber(ARGV[1])
for i = 1, peeked do
    local n = tonumber(redis.call("get", KEYS[i]) or "0")
    if n >= tonumber(ARGV[2 * i]) then
        return {i, seconds_left(KEYS[i], tonumber(ARGV[2 * i + 1]))}
    end
end
local out = {0}
for i = peeked + 1, #KEYS do
    local n = redis.call("incr", KEYS[i])
    out[#out + 1] = n
    out[#out + 1] = seconds_left(KEYS[i], tonumber(ARGV[2 * i + 1]))
    if n > tonumber(ARGV[2 * i]) then
        break
    end
end
return out
"""


class Counter(NamedTuple):
    """One counter in one request: its key and rate."""

    key: str
    rate: Rate


class Counts(NamedTuple):
    """What `count` found. `refused_by` is the index of the peeked counter at its amount, with
    `ttl` its seconds left; otherwise `hits` holds (count, ttl) per hit counter counted."""

    refused_by: int | None
    ttl: int
    hits: list[tuple[int, int]]


NOTHING = Counts(None, 0, [])  # nothing counted: let the request through


def counter_key(name: str, identity: str, rate: Rate) -> str:
    return f"{KEY_PREFIX}{name}:{identity}:{rate.amount}/{rate.seconds}"


class RateWindows:
    """Counters in Redis (None: in this process only), falling back to memory."""

    def __init__(self, client: Redis | None, gate: RedisGate):
        self._script = client.register_script(_SCRIPT) if client is not None else None
        self._gate = gate
        self.memory = MemoryWindows()

    @property
    def sha(self) -> str:
        """The script's digest, for a caller that sends it itself (tsapi.api.counts_in_flight)."""
        return self._script.sha

    @property
    def shared(self) -> bool:
        """Counted in Redis (a count may then ride another round trip: CountRider)."""
        return self._script is not None

    def count(self, peek: Sequence[Counter] = (), hit: Sequence[Counter] = ()) -> Counts:
        if self._script is None:
            return self.memory.count(peek, hit)
        keys, args = script_input(peek, hit)
        try:
            answer = self._gate.call(lambda: self._script(keys=keys, args=args))
        except RedisError as exc:
            return self.after_failure(exc, peek, hit)
        return counts_from(answer)

    def queue(self, pipe, peek: Sequence[Counter], hit: Sequence[Counter]) -> None:
        """count's script call, queued on a pipeline (CountRider reads its answer)."""
        keys, args = script_input(peek, hit)
        # EVALSHA itself: a Script run on a pipeline costs a SCRIPT EXISTS round trip first.
        pipe.evalsha(self._script.sha, len(keys), *keys, *args)

    def after_failure(self, exc: RedisError, peek: Sequence[Counter],
                      hit: Sequence[Counter]) -> Counts:
        if isinstance(exc, UNREACHABLE):  # also when the gate is closed
            return self.memory.count(peek, hit)
        log.warning("rate limit counters failed, request not counted: %s", exc)
        return NOTHING


class CountRider:
    """RateWindows.count sent with another pipeline of the request (tsapi.services.
    redis_riders), then handed to `then`, which may refuse the request by raising."""

    def __init__(self, windows: RateWindows, peek: Sequence[Counter], hit: Sequence[Counter],
                 then: Callable[[Counts], None]):
        self.windows, self.peek, self.hit, self.then = windows, peek, hit, then
        self.counts: Counts | None = None

    def queue(self, pipe) -> int:
        self.windows.queue(pipe, self.peek, self.hit)
        return 1

    def read(self, answers: list | RedisError) -> None:
        if not isinstance(answers, RedisError):
            answer = answers[0]
            if isinstance(answer, NoScriptError):
                return  # Redis lost the script (restarted, flushed): finish sends it alone
            if not isinstance(answer, RedisError):
                self.counts = counts_from(answer)
                return
            answers = answer
        self.counts = self.windows.after_failure(answers, self.peek, self.hit)

    def finish(self) -> None:
        if self.counts is None:
            self.alone()
        else:
            self.then(self.counts)

    def alone(self) -> None:
        self.then(self.windows.count(self.peek, self.hit))

    def forget(self) -> None:
        pass  # nothing sent yet


def script_input(peek: Sequence[Counter], hit: Sequence[Counter]) -> tuple[list, list]:
    counters = (*peek, *hit)
    args = [len(peek)]
    for _, rate in counters:
        args += (rate.amount, rate.seconds)
    return [c.key for c in counters], args


def counts_from(answer: list) -> Counts:
    """The Counts of the script's answer."""
    if answer[0]:
        return Counts(answer[0] - 1, max(int(answer[1]), 0), [])
    return Counts(None, 0, [(answer[i], max(answer[i + 1], 0))
                            for i in range(1, len(answer), 2)])


class MemoryWindows:
    """The same counters in this process's memory (no Redis, or Redis unreachable)."""

    def __init__(self):
        self._counters: dict[str, list] = {}  # key -> [count, expires at (monotonic)]
        self._lock = threading.Lock()

    def count(self, peek: Sequence[Counter] = (), hit: Sequence[Counter] = ()) -> Counts:
        now = time.monotonic()
        with self._lock:
            for i, (key, rate) in enumerate(peek):
                entry = self._live(key, now)
                if entry is not None and entry[0] >= rate.amount:
                    return Counts(i, _ttl(entry, now), [])
            hits = []
            for key, rate in hit:
                entry = self._live(key, now)
                if entry is None:
                    if len(self._counters) >= MAX_MEMORY_COUNTERS:
                        self._prune(now)
                    entry = self._counters[key] = [0, now + rate.seconds]
                entry[0] += 1
                hits.append((entry[0], _ttl(entry, now)))
                if entry[0] > rate.amount:
                    break
            return Counts(None, 0, hits)

    def _live(self, key: str, now: float) -> list | None:
        entry = self._counters.get(key)
        return entry if entry is not None and entry[1] > now else None

    def _prune(self, now: float) -> None:
        self._counters = {k: v for k, v in self._counters.items() if v[1] > now}
        if len(self._counters) >= MAX_MEMORY_COUNTERS:
            self._counters.clear()  # forgetting counts only ever lets requests through


def _ttl(entry: list, now: float) -> int:
    return max(math.ceil(entry[1] - now), 0)
