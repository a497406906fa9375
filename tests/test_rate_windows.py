"""The rate-limit counters: the settings' rate strings, and fixed windows counted alike in
Redis (one script call) and in a worker's memory (the fallback)."""

import socket

import pytest
import redis
from helpers import connections_made, silent_client, together

from tsapi.api.rate_windows import Counter, MemoryWindows, RateWindows, counter_key
from tsapi.config import ConfigError, Rate, load_config, parse_rates
from tsapi.services.redis_gate import FIRST_PAUSE_SECONDS, RedisGate


@pytest.mark.parametrize(("text", "rates"), [
    ("600/minute", [Rate(60, 600)]),
    ("10 per second", [Rate(1, 10)]),
    ("100/5 minutes", [Rate(300, 100)]),
    ("500/hour;10/second", [Rate(1, 10), Rate(3600, 500)]),  # shortest window first
    ("1/day, 2/Hours|3/ month", [Rate(3600, 2), Rate(86_400, 1), Rate(2_592_000, 3)]),
    ("10/second; 10 per second", [Rate(1, 10)]),  # said twice: still 10, not 5, a second
])
def test_rate_strings_of_the_settings_are_read_as_before(text, rates):
    assert list(parse_rates(text)) == rates


@pytest.mark.parametrize("text", ["lots", "10/fortnight", "", "10/", "/minute", "10/minute;",
                                  "10/s", "ten/minute",
                                  # no window at all, or one longer than Redis can expire:
                                  # either would leave the class uncounted
                                  "10/0 seconds", "10 per 0 minutes", "5/99999999999999 years"])
def test_a_malformed_rate_string_is_refused(text):
    with pytest.raises(ValueError):
        parse_rates(text)
    with pytest.raises(ConfigError, match="TSAPI_RATE_LIMIT_WRITE"):
        load_config({"DATABASE_URL": "postgresql://h/db", "TSAPI_RATE_LIMIT_WRITE": text})


def counters(name, *rates):
    return [Counter(counter_key(name, "ip:192.0.2.1", rate), rate) for rate in rates]


def scenario(windows):
    """The same requests against either store; what each call answered."""
    short, long = Rate(60, 2), Rate(3600, 3)
    gate = counters("unauthorized", Rate(60, 1))
    answers = [windows.count(hit=counters("read", short, long)) for _ in range(4)]
    answers.append(windows.count(peek=gate, hit=counters("write", short)))
    answers.append(windows.count(hit=gate))
    answers.append(windows.count(peek=gate, hit=counters("write", short)))
    return [(a.refused_by, [n for n, _ in a.hits]) for a in answers]


def test_memory_counts_as_redis_does(redis_server):
    client = redis.Redis.from_url(redis_server.url())
    client.flushdb()
    in_redis = scenario(RateWindows(client, RedisGate()))
    assert in_redis == [
        (None, [1, 1]), (None, [2, 2]),
        (None, [3]),  # over the short window: refused there, the long one is not counted
        (None, [4]),
        (None, [1]),  # the gate is under its amount: the request is counted
        (None, [1]),  # the gate counted once...
        (0, []),  # ...and now refuses, before anything is counted
    ]
    assert scenario(MemoryWindows()) == in_redis
    assert scenario(RateWindows(None, RedisGate())) == in_redis  # no Redis at all: memory
    ttl = client.ttl(counter_key("read", "ip:192.0.2.1", Rate(3600, 3)))
    assert 3590 < ttl <= 3600


def test_answers_carry_the_time_left_in_the_window(redis_server):
    client = redis.Redis.from_url(redis_server.url())
    client.flushdb()
    for windows in (RateWindows(client, RedisGate()), MemoryWindows()):
        rate = Rate(60, 1)
        windows.count(hit=counters("admin", rate))
        refused = windows.count(peek=counters("admin", rate))
        assert refused.refused_by == 0
        assert 58 <= refused.ttl <= 60


def test_a_gate_counter_that_lost_its_expiry_still_ends(redis_server):
    client = redis.Redis.from_url(redis_server.url())
    client.flushdb()
    windows = RateWindows(client, RedisGate())
    gate = counters("unauthorized", Rate(60, 1))
    windows.count(hit=gate)
    client.persist(gate[0].key)  # an expiry lost (an operator's PERSIST, a restored dump)
    refused = windows.count(peek=gate)
    assert refused.refused_by == 0
    # Only peeked, never hit again: without an expiry the address would wait forever.
    assert 0 < client.ttl(gate[0].key) <= 60
    assert 58 <= refused.ttl <= 60


class Clock:
    """The gate's clock, driven by hand: nothing here depends on how fast the machine is."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_after_the_back_off_one_request_tries_redis_while_the_others_count_in_memory():
    # A listening socket that never answers: every attempt costs a connection and a timeout.
    with socket.create_server(("127.0.0.1", 0), backlog=64) as silent:
        clock = Clock()
        windows = RateWindows(silent_client(silent), RedisGate(clock))
        hit = counters("read", Rate(60, 100))
        assert [n for n, _ in windows.count(hit=hit).hits] == [1]  # timed out: in memory
        clock.now += FIRST_PAUSE_SECONDS  # the first back-off is over
        answers = together(lambda: windows.count(hit=hit), 6)
        attempts = connections_made(silent)
    assert sorted(n for a in answers for n, _ in a.hits) == [2, 3, 4, 5, 6, 7]
    assert attempts == 2  # the first request, then one probe, not one per waiting request


def test_requests_failing_together_back_off_once_not_once_each():
    # Redis hangs while several requests are in flight: each times out, but it is one outage,
    # so Redis is tried again after the first back-off, not after 2**n of them.
    with socket.create_server(("127.0.0.1", 0), backlog=64) as silent:
        clock = Clock()
        windows = RateWindows(silent_client(silent), RedisGate(clock))
        hit = counters("read", Rate(60, 100))
        together(lambda: windows.count(hit=hit), 6)
        clock.now += FIRST_PAUSE_SECONDS  # the first back-off is over
        windows.count(hit=hit)
        attempts = connections_made(silent)
    assert attempts == 7  # the six in flight, then the one after the back-off
