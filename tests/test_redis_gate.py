"""One Redis gate per process: a failure any user of Redis sees closes it for all of them, a
request waits out a hung Redis's timeout at most once, and the gate's one back-off policy.

Clocks are driven by hand and waits are counted in connections a silent socket was sent, not
in time: nothing here depends on how fast the machine is."""

import contextlib
import socket

import pytest
from cachelib import RedisCache
from helpers import connections_made, ingest, point, query, silent_client
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tsapi.api.rate_windows import Counter, RateWindows, counter_key
from tsapi.config import Rate
from tsapi.services.api_keys import KeyCache
from tsapi.services.consistency import RedisWatermark
from tsapi.services.redis_gate import (
    FIRST_PAUSE_SECONDS,
    MAX_PAUSE_SECONDS,
    GateClosed,
    RedisGate,
)
from tsapi.services.response_cache import KEY_PREFIX, ResponseCache
from tsapi.store.keys import create_key


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def fails(exc_type=RedisTimeoutError):
    def call():
        raise exc_type("simulated")

    return call


def answers():
    return "answer"


def tried(gate, call=answers, **kwargs) -> bool:
    """Whether the gate let the call through (whatever the call then did)."""
    try:
        gate.call(call, **kwargs)
    except GateClosed:
        return False
    except RedisError:
        pass
    return True


# --- the policy ------------------------------------------------------------------------------


def test_each_failed_probe_doubles_the_pause_up_to_the_maximum_and_an_answer_opens_it():
    clock = Clock()
    gate = RedisGate(clock)
    assert tried(gate, fails())
    pauses = []
    for _ in range(8):
        waited = 0.0
        while not tried(gate, fails()):  # only the probe after the pause is let through
            clock.now += 0.5
            waited += 0.5
        pauses.append(waited)
    assert pauses == [1, 2, 4, 8, 16, 30, 30, 30]
    assert MAX_PAUSE_SECONDS == 30 and FIRST_PAUSE_SECONDS == 1
    clock.now += MAX_PAUSE_SECONDS
    assert gate.call(answers) == "answer"  # the probe succeeds: open for everyone
    assert gate.is_open and tried(gate) and tried(gate)
    assert tried(gate, fails())
    assert not tried(gate)  # the next outage starts again from the first pause
    clock.now += FIRST_PAUSE_SECONDS
    assert tried(gate)


def test_calls_in_flight_when_the_gate_closes_back_off_once_not_once_each():
    clock = Clock()
    gate = RedisGate(clock)

    def hang(depth: int):
        # Five calls, each let through while the gate is open; then each times out.
        if depth:
            with contextlib.suppress(RedisTimeoutError):
                gate.call(lambda: hang(depth - 1))
        raise RedisTimeoutError("simulated")

    with pytest.raises(RedisTimeoutError):
        gate.call(lambda: hang(4))
    clock.now += FIRST_PAUSE_SECONDS
    assert tried(gate)  # one pause of 1 s, not 2**5


def test_one_probe_at_a_time_the_others_are_not_tried():
    clock = Clock()
    gate = RedisGate(clock)
    assert tried(gate, fails())
    clock.now += FIRST_PAUSE_SECONDS
    others = []

    def probe():  # still waiting on Redis while the others come
        others.extend(tried(gate) for _ in range(5))
        raise RedisTimeoutError("simulated")

    assert tried(gate, probe)
    assert others == [False] * 5


def test_an_error_answer_leaves_the_gate_open_and_opens_a_closed_one():
    clock = Clock()
    gate = RedisGate(clock)
    assert tried(gate, fails(ResponseError))  # out of memory, say: Redis is there
    assert gate.is_open
    assert tried(gate, fails(RedisConnectionError))
    assert not gate.is_open
    clock.now += FIRST_PAUSE_SECONDS
    assert tried(gate, fails(ResponseError))
    assert gate.is_open


def test_an_urgent_call_may_probe_a_second_after_the_last_try_whatever_the_pause():
    clock = Clock()
    gate = RedisGate(clock)
    for _ in range(6):  # the pause grows to its maximum
        clock.now += MAX_PAUSE_SECONDS
        assert tried(gate, fails())
    assert not tried(gate, urgent=True)  # never straight after a failure
    clock.now += FIRST_PAUSE_SECONDS
    assert not tried(gate)
    assert tried(gate, fails(), urgent=True)
    assert not tried(gate, urgent=True)  # and one at a time


def test_a_health_check_is_tried_while_closed_and_its_answer_opens_the_gate():
    gate = RedisGate(Clock())
    assert tried(gate, fails())
    with pytest.raises(RedisTimeoutError):
        gate.check(fails())  # tried, and still closed
    assert not tried(gate)
    assert gate.check(answers) == "answer"
    assert gate.is_open


# --- every user of Redis behind the one gate -------------------------------------------------


def users(silent, gate):
    """One Redis call of each user, each with a client of its own (a connection each would
    open, were it tried); each returns what it did instead of failing."""
    rate = Rate(60, 100)
    windows = RateWindows(silent_client(silent), gate)
    client = silent_client(silent)
    cache = ResponseCache(RedisCache(host=client, key_prefix=KEY_PREFIX), client, gate)
    keys = KeyCache(engine=None, redis_client=silent_client(silent), gate=gate, clock=Clock())
    watermark = RedisWatermark(silent_client(silent), gate, unsure_seconds=5.0)
    return {
        "rate limits": lambda: windows.count(hit=[Counter(counter_key("read", "k", rate), rate)]),
        "response cache": lambda: cache.lookup(["m"], str),
        "generation bump": lambda: cache.bump(["m"]),
        "key generation": keys.generation,
        "watermark read": watermark.get,
        "watermark write": lambda: watermark.raise_to(42),
    }


@pytest.mark.parametrize("first", ["rate limits", "response cache", "key generation",
                                   "watermark read"])
def test_a_hung_redis_found_by_one_user_is_not_tried_by_the_others(first):
    with socket.create_server(("127.0.0.1", 0), backlog=64) as silent:
        calls = users(silent, RedisGate(Clock()))
        calls.pop(first)()  # times out: the gate closes
        assert connections_made(silent) == 1
        outcomes = {name: call() for name, call in calls.items()}
        assert connections_made(silent) == 0  # none of the others waited on Redis
    assert outcomes.get("key generation") is None  # short-lived entries (fail closed)
    assert outcomes.get("watermark read") is None  # reads go to the primary
    assert outcomes.get("response cache", (None, None)) == (None, None)  # computed afresh
    if "rate limits" in outcomes:
        assert [n for n, _ in outcomes["rate limits"].hits] == [1]  # counted in memory


# --- a request, end to end -------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["timescaledb"], indirect=True)
def test_a_request_waits_on_a_hung_redis_at_most_once(make_app):
    with socket.create_server(("127.0.0.1", 0), backlog=64) as silent:
        app = make_app(REDIS_URL=f"redis://127.0.0.1:{silent.getsockname()[1]}/0",
                       TSAPI_AUTH="required", TSAPI_RATE_LIMITS="on")
        runtime = app.extensions["tsapi"]
        assert runtime.cache.gate is runtime.keys.gate  # one gate for all of them
        runtime.cache.gate.clock = Clock()  # stands still: no probe falls due meanwhile
        runtime.cache.generations.later = lambda delay, fn: None  # no owed DEL off-request
        with runtime.db.engine.begin() as conn:
            token = create_key(conn, "rw", {"read", "write"})[1]
        client = app.test_client()
        auth = {"Authorization": f"Bearer {token}"}
        # The key generation, the 401 count, the rate limit, the cached metric list: one wait.
        assert client.get("/metrics", headers=auth).status_code == 200
        assert connections_made(silent) == 1
        # Rate limit, generation bump, metric list: none tried while the gate is closed.
        written = client.post("/ingest", headers=auth,
                              json={"data": [point("2024-01-01T00:00:00Z", "m", 1.0)]})
        assert written.status_code == 200
        assert client.get("/metrics", headers=auth).get_json()[0]["name"] == "m"
        assert connections_made(silent) == 0


BODY = {"metric": "m", "start_time": "2024-01-01T00:00:00Z",
        "end_time": "2024-01-02T00:00:00Z", "aggregation": "sum"}


def summed(app) -> list[float]:
    return [row["value"] for row in query(app.test_client(), **BODY)]


@pytest.mark.parametrize("backend", ["timescaledb"], indirect=True)
def test_a_write_made_while_the_gate_is_closed_is_never_answered_from_an_older_entry(make_app):
    writer, reader = make_app(), make_app()  # two workers sharing one Redis
    ingest(writer.test_client(), [point("2024-01-01T01:00:00Z", "m", 1.0)])
    assert summed(reader) == summed(writer) == [1.0]  # cached now
    gate = writer.extensions["tsapi"].cache.gate
    gate.clock = clock = Clock()
    writer.extensions["tsapi"].cache.generations.later = lambda delay, fn: None
    for _ in range(6):  # Redis failed for a while: the pause has grown to its maximum
        clock.now += MAX_PAUSE_SECONDS
        assert tried(gate, fails())
    ingest(writer.test_client(), [point("2024-01-01T02:00:00Z", "m", 10.0)])
    assert summed(writer) == [11.0]  # its bump not even tried: the writer skips the cache
    # A bump is owed: tried a second after the last try, not after the 30 s pause; until
    # then, the writer's lookups are not tried at all...
    clock.now += FIRST_PAUSE_SECONDS
    assert summed(writer) == [11.0]
    # ...and once the owed bump got through, no worker finds the older entry.
    assert summed(reader) == [11.0]


@pytest.mark.parametrize("backend", ["timescaledb"], indirect=True)
def test_a_bump_owed_by_a_worker_that_gets_no_more_requests_is_still_made(make_app):
    writer, reader = make_app(), make_app()  # two workers sharing one Redis
    ingest(writer.test_client(), [point("2024-01-01T01:00:00Z", "m", 1.0)])
    assert summed(reader) == [1.0]  # cached now
    generations = writer.extensions["tsapi"].cache.generations
    timers = []
    generations.later = lambda delay, fn: timers.append((delay, fn))
    gate = generations.gate
    gate.clock = clock = Clock()
    assert tried(gate, fails())  # Redis failed just now: the write's bump is not tried
    ingest(writer.test_client(), [point("2024-01-01T02:00:00Z", "m", 10.0)])
    assert generations.owed
    assert [delay for delay, _ in timers] == [FIRST_PAUSE_SECONDS]  # one timer, not per bump
    ingest(writer.test_client(), [point("2024-01-01T03:00:00Z", "m", 100.0)])
    assert len(timers) == 1
    timers.pop()[1]()  # too early: the gate does not let the DEL through yet...
    assert generations.owed and len(timers) == 1  # ...so it is tried again later
    clock.now += FIRST_PAUSE_SECONDS
    timers.pop()[1]()  # the writer serves no request: its timer makes the DEL
    assert not generations.owed and not timers
    assert summed(reader) == [111.0]


def test_a_bump_that_fails_while_the_owed_delete_is_under_way_is_still_owed():
    class Redis:  # stands in for a Redis that times out INCRs and accepts DELs
        def __init__(self):
            self.during_delete = None

        def register_script(self, source):
            def bump(keys=(), args=()):  # the generation bump: its INCRs time out
                raise RedisTimeoutError("simulated")

            return bump

        def delete(self, key):
            if self.during_delete is not None:
                self.during_delete()  # another request's write, while the DEL is on its way

    redis = Redis()
    clock = Clock()
    generations = ResponseCache(None, redis, RedisGate(clock)).generations
    generations.later = lambda delay, fn: None
    generations.bump(["m"])
    assert generations.owed
    clock.now += FIRST_PAUSE_SECONDS
    redis.during_delete = lambda: generations.bump(["m"])
    generations.settle()  # the DEL is made, but it may have reached Redis before that write
    assert generations.owed
    redis.during_delete = None
    clock.now += FIRST_PAUSE_SECONDS
    generations.settle()
    assert not generations.owed


@pytest.mark.parametrize("backend", ["timescaledb"], indirect=True)
def test_a_write_that_takes_over_a_second_waits_on_a_hung_redis_at_most_once(make_app,
                                                                            monkeypatch):
    import tsapi.services.ingest as ingest_service

    with socket.create_server(("127.0.0.1", 0), backlog=64) as silent:
        app = make_app(REDIS_URL=f"redis://127.0.0.1:{silent.getsockname()[1]}/0",
                       TSAPI_AUTH="required", TSAPI_RATE_LIMITS="on")
        runtime = app.extensions["tsapi"]
        runtime.cache.gate.clock = clock = Clock()
        write_batch = ingest_service.write_batch

        def slow_write(*args):  # a large batch: the database takes 1.5 s over it
            clock.now += 1.5
            return write_batch(*args)

        monkeypatch.setattr(ingest_service, "write_batch", slow_write)
        with runtime.db.engine.begin() as conn:
            token = create_key(conn, "rw", {"read", "write"})[1]
        written = app.test_client().post(
            "/ingest", headers={"Authorization": f"Bearer {token}"},
            json={"data": [point("2024-01-01T00:00:00Z", "m", 1.0)]})
        assert written.status_code == 200
        assert connections_made(silent) == 1


@pytest.mark.parametrize("backend", ["timescaledb"], indirect=True)
def test_the_next_request_may_probe_once_the_pause_is_over(make_app):
    # The mark "this request has waited" is the request's own: it must not keep the next
    # request (on the same thread) from finding out whether Redis is back.
    with socket.create_server(("127.0.0.1", 0), backlog=64) as silent:
        app = make_app(REDIS_URL=f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
        runtime = app.extensions["tsapi"]
        runtime.cache.gate.clock = clock = Clock()
        runtime.cache.generations.later = lambda delay, fn: None
        client = app.test_client()
        assert client.get("/metrics").status_code == 200
        assert connections_made(silent) == 1
        clock.now += FIRST_PAUSE_SECONDS
        assert client.get("/metrics").status_code == 200
        assert connections_made(silent) == 1
        clock.now += 2 * FIRST_PAUSE_SECONDS  # the pause doubled with that failed probe
        assert tried(runtime.cache.gate, fails())  # and outside a request, as before


def test_a_bump_that_fails_while_an_owed_epoch_is_dropped_stays_owed(redis_server):
    # gthread: one thread pays the debt (DEL) while another's bump fails. That second write
    # may have committed after the DEL: its debt must not be cleared with the first.
    import redis

    from tsapi.services.cache_generations import GenerationCounters

    class Interleaving(RedisGate):
        refuse = False
        meanwhile = None

        def call(self, fn, *, urgent=False):
            if self.refuse:
                raise GateClosed("simulated")
            answer = super().call(fn, urgent=urgent)
            meanwhile, self.meanwhile = self.meanwhile, None
            if meanwhile is not None:
                meanwhile()
            return answer

    gate = Interleaving(Clock())
    counters = GenerationCounters(redis.Redis.from_url(redis_server.url()), gate)
    gate.refuse = True
    counters.bump(["m"])
    assert counters.owed

    def another_write_fails():
        gate.refuse = True
        counters.bump(["n"])
        gate.refuse = False

    gate.refuse = False
    gate.meanwhile = another_write_fails  # right after the first debt's DEL
    assert counters.current(["m"]) is None  # not safe to use the cache yet
    assert counters.owed
    assert counters.current(["m"]) is not None  # paid now


@pytest.mark.parametrize("backend", ["timescaledb"], indirect=True)
def test_the_cache_administration_waits_on_a_hung_redis_at_most_once_and_not_while_closed(
        make_app):
    with socket.create_server(("127.0.0.1", 0), backlog=64) as silent:
        app = make_app(REDIS_URL=f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
        app.extensions["tsapi"].cache.gate.clock = Clock()  # no probe falls due meanwhile
        client = app.test_client()
        # The generation bump, then the key scan: one wait, not one each.
        assert client.post("/cache/metrics/m/clear").status_code == 503
        assert connections_made(silent) == 1
        # The gate is closed now: statistics and key listing do not try Redis at all.
        assert client.get("/cache/info").get_json()["status"] == "disconnected"
        assert client.get("/cache/keys").status_code == 503
        assert connections_made(silent) == 0
