"""The pure rules of web/security.py: which Host names the lab answers to, Origins, the wrong-token throttle."""

import pytest

from lab.settings import Settings
from web.security import HostPolicy, TokenThrottle, parse_origin, same_origin, split_host, token_matches


@pytest.mark.parametrize(
    "host, parsed",
    [
        ("localhost:5000", ("localhost", 5000)),
        ("LOCALHOST.", ("localhost", None)),
        ("[::1]:5000", ("::1", 5000)),
        ("::1", ("::1", None)),
        ("127.0.0.1", ("127.0.0.1", None)),
        ("a:b", None),
        ("a:99999", None),
        ("[::1", None),
        ("[::1]x", None),
        ("", None),
        (":5000", None),
    ],
)
def test_split_host(host, parsed):
    assert split_host(host) == parsed


def test_the_host_policy_accepts_what_cannot_be_rebound_and_what_is_configured():
    policy = HostPolicy(Settings(host="127.0.0.1", allowed_hosts="lab.example, other.example:8080"))
    for host in (
        "localhost:5000",
        "127.0.0.1:5000",
        "[::1]:5000",
        "10.1.2.3",
        "app.localhost",
        "lab.example",
        "other.example:1",
        "LAB.EXAMPLE.",
    ):
        assert policy.allows_host_header(host), host
    for host in ("evil.example:5000", "localhost.evil.example", "lab.example.evil", "", "localhost:0"):
        assert not policy.allows_host_header(host), host
    assert HostPolicy(Settings(allowed_hosts="*")).allows_host_header("anything.example")
    assert HostPolicy(Settings(host="lab.internal", token="t")).allows_host_header("lab.internal:5000")


def test_origins():
    assert parse_origin("http://[::1") is None and parse_origin("http://a:99999") is None
    assert parse_origin("null") is None and parse_origin("ftp://a") is None
    assert same_origin("http://localhost:5000", "http://localhost:5000/")
    assert same_origin("https://a.example", "https://a.example:443/")
    assert not same_origin("http://localhost:5001", "http://localhost:5000/")
    assert not same_origin("http://[::1", "http://localhost:5000/")


def test_token_matches_only_the_same_string():
    assert token_matches("s3cret", "s3cret")
    for given in ("", "s3cre", None, 5, ["s3cret"], {"t": 1}, True, "\ud800"):
        assert not token_matches(given, "s3cret"), given
    assert not token_matches("anything", "")


def test_the_throttle_waits_longer_after_each_wrong_token_and_forgets_on_a_right_one():
    now = [1000.0]
    throttle = TokenThrottle(allowed=2, max_wait_s=5, clock=lambda: now[0])
    throttle.failed("a")
    throttle.failed("a")
    assert throttle.wait_s("a") == 0
    throttle.failed("a")
    assert throttle.wait_s("a") == 1
    now[0] += 1
    throttle.failed("a")
    assert throttle.wait_s("a") == 2
    for _ in range(10):
        throttle.failed("a")
    assert throttle.wait_s("a") == 5
    assert throttle.wait_s("b") == 0
    throttle.succeeded("a")
    assert throttle.wait_s("a") == 0
