"""A Redis that accepts connections and never answers: after a failure, one request at a time
waits on it (the key cache's generation read, the response cache's lookups); the others go on
without it. Counted in connections the silent socket was sent, not in time."""

import socket

from cachelib import RedisCache
from helpers import connections_made, silent_client
from helpers import together as released_together

from tsapi.services.api_keys import KeyCache
from tsapi.services.redis_gate import FIRST_PAUSE_SECONDS, RedisGate
from tsapi.services.response_cache import KEY_PREFIX, ResponseCache

REQUESTS = 6


def together(call) -> list:
    return released_together(call, REQUESTS)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_after_the_retry_time_one_request_reads_the_key_generation_the_others_go_without():
    with socket.create_server(("127.0.0.1", 0), backlog=64) as silent:
        clock = Clock()
        keys = KeyCache(engine=None, redis_client=silent_client(silent),
                        gate=RedisGate(clock), clock=clock)
        assert keys.generation() is None  # timed out
        assert connections_made(silent) == 1
        clock.now += FIRST_PAUSE_SECONDS
        answers = together(keys.generation)
        attempts = connections_made(silent)
    # None: entries are short-lived and re-read from the database (fail closed).
    assert answers == [None] * REQUESTS
    assert attempts == 1  # one probe, not one per waiting request


def test_after_the_pause_one_request_tries_the_response_cache_the_others_miss():
    with socket.create_server(("127.0.0.1", 0), backlog=64) as silent:
        client = silent_client(silent)
        clock = Clock()
        cache = ResponseCache(RedisCache(host=client, key_prefix=KEY_PREFIX), client,
                              RedisGate(clock))
        assert cache.lookup(["m"], str) == (None, None)  # timed out
        assert connections_made(silent) == 1
        clock.now += FIRST_PAUSE_SECONDS
        answers = together(lambda: cache.lookup(["m"], str))
        attempts = connections_made(silent)
    assert answers == [(None, None)] * REQUESTS  # no cache: each computes its answer
    assert attempts == 1  # one probe, not one per waiting request
