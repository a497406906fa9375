"""API keys cached per process: a revocation reaches every app sharing Redis, and without
Redis cached keys are short-lived, so a revoked key is refused within the bound either way.

The caches' clocks are driven by hand: nothing here depends on how fast the machine is.
"""

import pytest
import sqlalchemy as sa
from redis.exceptions import ConnectionError as RedisConnectionError

from tsapi.services import api_keys
from tsapi.store.keys import create_key, revoke_key


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


def secured(make_app, **overrides):
    app = make_app(TSAPI_AUTH="required", **overrides)
    clock = Clock()
    app.extensions["tsapi"].keys.clock = clock
    return app, app.test_client(), clock


def new_key(app, name="sensor"):
    with app.extensions["tsapi"].db.engine.begin() as conn:
        return create_key(conn, name, {"read"})[1]


def revoke_in_database_only(app, name):
    """A revocation that no worker was told about (as if Redis had not been reachable)."""
    engine = sa.create_engine(app.config["DATABASE_URL"])
    with engine.begin() as conn:
        assert revoke_key(conn, name) == name
    engine.dispose()


def sharing_own_redis(make_app, own_redis):
    """Two apps on a Redis the test can restart: the first, its client, and the second's
    client and clock."""
    first, first_client, _ = secured(make_app, REDIS_URL=own_redis.url())
    _, second_client, second_clock = secured(make_app, REDIS_URL=own_redis.url())
    return first, first_client, second_client, second_clock


def status(client, token):
    return client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).status_code


def test_a_revocation_through_one_app_shuts_the_key_out_of_another_sharing_redis(make_app):
    first, first_client, first_clock = secured(make_app)
    second, second_client, second_clock = secured(make_app)
    token = new_key(first)
    assert status(first_client, token) == 200 and status(second_client, token) == 200
    # Revoked behind the caches' backs: still served from memory, so the cache is in use...
    revoke_in_database_only(first, "sensor")
    second_clock.advance(api_keys.GENERATION_REFRESH_SECONDS + 0.01)
    assert status(second_client, token) == 200
    # ...until a revocation bumps the generation: then refused, long before entries expire.
    first.extensions["tsapi"].keys.revoked()
    second_clock.advance(api_keys.GENERATION_REFRESH_SECONDS + 0.01)
    assert second_clock.now - 1000.0 < api_keys.REVOCATION_BOUND_SECONDS
    assert status(second_client, token) == 401
    assert status(first_client, token) == 401


def test_the_revoke_command_reaches_other_apps_within_the_bound(make_app):
    first, _, _ = secured(make_app)
    second, second_client, second_clock = secured(make_app)
    token = new_key(first)
    assert status(second_client, token) == 200
    result = first.test_cli_runner().invoke(args=["keys", "revoke", "sensor"])
    assert result.exit_code == 0, result.output
    second_clock.advance(api_keys.REVOCATION_BOUND_SECONDS)
    assert status(second_client, token) == 401


def test_without_redis_a_revoked_key_is_refused_once_its_short_life_is_over(make_app, own_redis):
    app, client, clock = secured(make_app, REDIS_URL=own_redis.url())
    token = new_key(app)
    own_redis.stop()
    assert status(client, token) == 200
    revoke_in_database_only(app, "sensor")
    clock.advance(api_keys.SHORT_LIFE_SECONDS + 0.01)
    assert api_keys.SHORT_LIFE_SECONDS < api_keys.REVOCATION_BOUND_SECONDS
    assert status(client, token) == 401


def test_entries_read_before_redis_failed_are_not_trusted_while_it_is_down(make_app, own_redis):
    app, client, clock = secured(make_app, REDIS_URL=own_redis.url())
    token = new_key(app)
    assert status(client, token) == 200  # cached under the generation Redis gave
    own_redis.stop()
    revoke_in_database_only(app, "sensor")
    clock.advance(api_keys.GENERATION_REFRESH_SECONDS + 0.01)
    assert status(client, token) == 401


def test_entries_are_not_trusted_while_another_user_of_redis_finds_it_unreachable(make_app):
    app, client, clock = secured(make_app)
    token = new_key(app)
    assert status(client, token) == 200  # cached under the generation Redis gave
    # The response cache lost Redis: the process's one gate closes, and stays closed.
    gate = app.extensions["tsapi"].cache.gate
    gate.clock = Clock()

    def lost():
        raise RedisConnectionError("simulated")

    with pytest.raises(RedisConnectionError):
        gate.call(lost)
    revoke_in_database_only(app, "sensor")
    clock.advance(api_keys.GENERATION_REFRESH_SECONDS + 0.01)
    assert status(client, token) == 401  # no generation now: the entry is not trusted


def test_a_cache_entry_is_reread_after_its_maximum_age(make_app):
    app, client, clock = secured(make_app)
    token = new_key(app)
    assert status(client, token) == 200
    revoke_in_database_only(app, "sensor")
    clock.advance(api_keys.MAX_AGE_SECONDS)
    assert status(client, token) == 401


def test_a_revocation_after_redis_restarted_empty_is_not_taken_for_the_generation_before(
        make_app, own_redis):
    first, first_client, second_client, second_clock = sharing_own_redis(make_app, own_redis)
    token = new_key(first, "sensor")
    new_key(first, "other")
    revoke_in_database_only(first, "other")
    first.extensions["tsapi"].keys.revoked()  # the generation moves once
    assert status(second_client, token) == 200  # cached under that generation
    # Redis restarts and keeps nothing; the next revocation must not bring back the very
    # generation the entry was read under, or the revoked key would be served for a minute.
    own_redis.stop()
    own_redis.start()
    revoke_in_database_only(first, "sensor")
    first.extensions["tsapi"].keys.revoked()
    second_clock.advance(api_keys.GENERATION_REFRESH_SECONDS + 0.01)
    assert status(second_client, token) == 401
    assert status(first_client, token) == 401


def test_a_revocation_lost_with_redis_does_not_revive_an_entry_read_before_any_revocation(
        make_app, own_redis):
    first, first_client, second_client, second_clock = sharing_own_redis(make_app, own_redis)
    token = new_key(first, "sensor")
    # Read while Redis holds no generation yet (none was ever revoked in its lifetime).
    assert status(second_client, token) == 200
    revoke_in_database_only(first, "sensor")
    first.extensions["tsapi"].keys.revoked()
    # Redis restarts empty before the second app re-reads the generation (it reads it only
    # when a request comes): the generation it finds must not be the one its entry holds.
    own_redis.stop()
    own_redis.start()
    second_clock.advance(api_keys.GENERATION_REFRESH_SECONDS + 0.01)
    assert status(second_client, token) == 401
