"""The rate limiter's storage: one round trip counts a request and brings back its headers."""

import time

from limits import RateLimitItemPerMinute
from limits.strategies import FixedWindowRateLimiter

from tsapi.api.limiter_storage import OneTripRedisStorage, one_trip_uri


def test_counts_and_window_match_what_redis_holds(redis_server):
    storage = OneTripRedisStorage(one_trip_uri(redis_server.url()))
    plain = OneTripRedisStorage(one_trip_uri(redis_server.url()))  # reads Redis itself
    limiter = FixedWindowRateLimiter(storage)
    limit = RateLimitItemPerMinute(3)
    assert all(limiter.hit(limit, "one-trip-test") for _ in range(3))
    stats = limiter.get_window_stats(limit, "one-trip-test")
    assert stats.remaining == 0
    assert time.time() < stats.reset_time <= time.time() + 61
    assert plain.get(limit.key_for("one-trip-test")) == 3
    assert not limiter.hit(limit, "one-trip-test")  # the limit still holds
    # Answers are used once: a second read asks Redis.
    assert storage.get(limit.key_for("one-trip-test")) == 4
    storage.clear(limit.key_for("one-trip-test"))
    assert storage.get(limit.key_for("one-trip-test")) == 0


def test_other_urls_keep_the_stock_storage():
    assert one_trip_uri("redis://h:1/0") == "tsapi+redis://h:1/0"
    assert one_trip_uri("rediss://h:1/0") == "tsapi+rediss://h:1/0"
    assert one_trip_uri("unix:///tmp/r.sock") == "unix:///tmp/r.sock"
