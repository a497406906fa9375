"""The rate limiter's Redis storage, one round trip per counted request instead of three.

Flask-Limiter counts a request with one script (INCRBY, EXPIRE on the first hit), then asks
Redis twice more for the X-RateLimit-Remaining and -Reset headers (GET, TTL). The script here
returns the count and the time to live with the increment, and the two reads that follow on
the same thread are answered from that, once each: the headers show the count just made,
which is what the two reads would return unless another request counted in between.
"""

from __future__ import annotations

import threading
import time

from limits.storage import RedisStorage

SCHEME = "tsapi+redis"
_FRESH_SECONDS = 1.0  # an answer kept longer than this is not used (it belongs to no request)

_INCR_EXPIRE_TTL = """
local current = redis.call("incrby", KEYS[1], tonumber(ARGV[2]))
if current == tonumber(ARGV[2]) then
    redis.call("expire", KEYS[1], ARGV[1])
end
return {current, redis.call("ttl", KEYS[1])}
"""


def one_trip_uri(redis_url: str) -> str:
    """The storage URI that selects OneTripRedisStorage for a redis:// or rediss:// URL."""
    if redis_url.startswith(("redis://", "rediss://")):
        return SCHEME + redis_url[len("redis"):]
    return redis_url  # unix sockets and the like: the stock storage


class OneTripRedisStorage(RedisStorage):
    """RedisStorage whose incr also brings back what get and get_expiry would read."""

    STORAGE_SCHEME = [SCHEME, f"{SCHEME}s"]

    def __init__(self, uri: str, **options):
        super().__init__(uri.replace(SCHEME, "redis", 1), **options)
        self._last = threading.local()

    def initialize_storage(self, uri: str) -> None:
        super().initialize_storage(uri)
        self._lua_incr_ttl = self.get_connection().register_script(_INCR_EXPIRE_TTL)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        current, ttl = self._lua_incr_ttl([self.prefixed_key(key)], [expiry, amount])
        now = time.time()
        self._last.answers = {"get": (key, int(current), now),
                              "expiry": (key, max(int(ttl), 0) + now, now)}
        return int(current)

    def _take(self, kind: str, key: str):
        answers = getattr(self._last, "answers", None)
        if not answers or kind not in answers:
            return None
        for_key, value, at = answers.pop(kind)
        if for_key != key or time.time() - at > _FRESH_SECONDS:
            return None
        return value

    def get(self, key: str) -> int:
        value = self._take("get", key)
        return super().get(key) if value is None else value

    def get_expiry(self, key: str) -> float:
        value = self._take("expiry", key)
        return super().get_expiry(key) if value is None else value
