"""TSAPI_TRUSTED_PROXIES: the client's address comes from X-Forwarded-For only through the
configured number of proxies, so a client can never pick its own rate-limit bucket."""


import pytest

from tsapi.config import ConfigError, settings_from_env

PROXY = "10.0.0.1"  # the address nginx connects from


def limited(make_app, **overrides):
    return make_app(TSAPI_AUTH="off", TSAPI_RATE_LIMITS="on", TSAPI_RATE_LIMIT_READ="2/minute",
                    **overrides)


def get(client, forwarded_for=None, peer=PROXY):
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return client.get("/metrics", headers=headers, environ_base={"REMOTE_ADDR": peer})


def test_without_trusted_proxies_a_spoofed_forwarded_for_shares_the_peer_bucket(make_app):
    client = limited(make_app).test_client()
    statuses = [get(client, spoof).status_code
                for spoof in (None, "1.1.1.1", "2.2.2.2", "3.3.3.3, 4.4.4.4")]
    assert statuses == [200, 200, 429, 429]


def test_behind_one_proxy_each_client_has_its_own_bucket(make_app):
    client = limited(make_app, TSAPI_TRUSTED_PROXIES=1).test_client()
    assert [get(client, "192.0.2.7").status_code for _ in range(3)] == [200, 200, 429]
    # Another client behind the same proxy is not affected by the first one's budget.
    assert get(client, "192.0.2.8").status_code == 200


def test_behind_one_proxy_entries_the_client_wrote_are_ignored(make_app):
    client = limited(make_app, TSAPI_TRUSTED_PROXIES=1).test_client()
    # The client sent "X-Forwarded-For: <anything>"; nginx appended the real address.
    statuses = [get(client, f"198.51.100.{n}, 192.0.2.7").status_code for n in range(4)]
    assert statuses == [200, 200, 429, 429]
    assert get(client, "192.0.2.7, 192.0.2.8").status_code == 200  # a different real client


def test_two_trusted_proxies_take_the_second_entry_from_the_end(make_app):
    client = limited(make_app, TSAPI_TRUSTED_PROXIES=2).test_client()
    statuses = [get(client, f"203.0.113.{n}, 192.0.2.7, 10.0.0.9").status_code
                for n in range(3)]
    assert statuses == [200, 200, 429]


@pytest.mark.parametrize(("proxies", "forwarded_for", "client_address"), [
    (0, "192.0.2.7", PROXY),
    (1, "198.51.100.1, 192.0.2.7", "192.0.2.7"),
])
def test_access_log_names_the_client(make_app, log_lines, proxies, forwarded_for,
                                     client_address):
    client = make_app(TSAPI_TRUSTED_PROXIES=proxies).test_client()
    assert get(client, forwarded_for).status_code == 200
    access = [line for line in log_lines() if line["logger"] == "tsapi.access"]
    assert [line["client"] for line in access] == [client_address]


def test_trusted_proxies_from_the_environment():
    assert settings_from_env({"TSAPI_TRUSTED_PROXIES": "0"})["TSAPI_TRUSTED_PROXIES"] == 0
    assert settings_from_env({"TSAPI_TRUSTED_PROXIES": "2"})["TSAPI_TRUSTED_PROXIES"] == 2
    for bad in ("-1", "one", "1.5"):
        with pytest.raises(ConfigError, match="TSAPI_TRUSTED_PROXIES"):
            settings_from_env({"TSAPI_TRUSTED_PROXIES": bad})


def test_other_whole_number_settings_still_refuse_zero():
    with pytest.raises(ConfigError, match="TSAPI_MAX_BATCH_POINTS must be positive"):
        settings_from_env({"TSAPI_MAX_BATCH_POINTS": "0"})
