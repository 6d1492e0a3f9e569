"""The per-address rate limit: token buckets, Retry-After, recovery, bounded memory, threads."""

from __future__ import annotations

import threading

import pytest

from sentry_feedback.endpoint import AddressRateLimiter, EndpointOptions, FeedbackEndpoint, RateLimit
from sentry_feedback.endpoint._limiter import client_key
from sentry_feedback.testing import MockTransport

from .conftest import post_json


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_one_per_interval() -> None:
    clock = Clock()
    limiter = AddressRateLimiter(RateLimit(3, 30.0), clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(10.0)
    assert limiter.acquire("b") == 0.0  # another address has its own bucket
    clock.now += 4.0
    assert limiter.acquire("a") == pytest.approx(6.0)  # a refused request takes nothing
    clock.now += 6.0
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") == pytest.approx(10.0)
    clock.now += 3600.0
    assert [limiter.acquire("a") for _ in range(4)][:3] == [0.0, 0.0, 0.0]  # never more than the burst


def test_memory_is_bounded() -> None:
    clock = Clock()
    limiter = AddressRateLimiter(RateLimit(1, 60.0), max_clients=100, clock=clock)
    for n in range(10_000):
        limiter.acquire(f"10.0.{n // 256}.{n % 256}")
    assert len(limiter) == 100
    assert limiter.acquire("10.0.39.15") > 0  # among the most recent: still limited
    assert limiter.acquire("10.0.0.0") == 0.0  # forgotten long ago
    limiter.reset()
    assert len(limiter) == 0


def test_threads_never_get_more_than_the_burst() -> None:
    limiter = AddressRateLimiter(RateLimit(50, 3600.0))
    granted: list[bool] = []
    barrier = threading.Barrier(8)

    def hammer() -> None:
        barrier.wait()
        for _ in range(100):
            granted.append(limiter.acquire("203.0.113.7") == 0.0)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert granted.count(True) == 50


@pytest.mark.parametrize(
    ("remote", "forwarded", "trusted", "key"),
    [
        ("203.0.113.7", None, None, "203.0.113.7"),
        ("203.0.113.7", "198.51.100.1", None, "203.0.113.7"),
        ("10.0.0.1", "198.51.100.1, 203.0.113.7", 1, "203.0.113.7"),
        ("10.0.0.1", "198.51.100.1, 203.0.113.7, 10.0.0.2", 2, "203.0.113.7"),
        ("10.0.0.1", "203.0.113.7", 2, "10.0.0.1"),  # not through both proxies
        ("2001:db8:1:2:3:4:5:6", None, None, "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", None, None, "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.1", None, None, "192.0.2.1"),
        ("10.0.0.1", "[2001:db8::1]:443", 1, "2001:db8::/64"),
        ("10.0.0.1", "203.0.113.7:51000", 1, "203.0.113.7"),
        (None, None, None, "unknown"),
        ("", None, None, "unknown"),
        ("not an address", None, None, "unknown"),
        ("10.0.0.1", "<script>", 1, "unknown"),
    ],
)
def test_client_keys(remote: str | None, forwarded: str | None, trusted: int | None, key: str) -> None:
    assert client_key(remote, forwarded, trusted_proxies=trusted) == key


def test_429_with_retry_after_and_recovery(mock_transport: MockTransport) -> None:
    clock = Clock()
    endpoint = FeedbackEndpoint(EndpointOptions(rate_limit=RateLimit(2, 60.0)))
    endpoint.rate_limiter = AddressRateLimiter(RateLimit(2, 60.0), clock=clock)
    assert [post_json(endpoint, {"message": "m"}).status for _ in range(2)] == [202, 202]
    limited = post_json(endpoint, {"message": "m"})
    assert limited.status == 429
    assert limited.headers["Retry-After"] == "30"
    assert limited.json == {"error": "rate_limited", "detail": limited.json["detail"], "retry_after": 30}
    # Invalid posts count too: a client cannot probe for free.
    clock.now += 30.0
    assert post_json(endpoint, {"nothing": "here"}).status == 400
    assert post_json(endpoint, {"message": "m"}).status == 429
    clock.now += 30.0
    assert post_json(endpoint, {"message": "m"}).status == 202
    # Static files and OPTIONS are not limited.
    from .conftest import call, environ

    assert call(endpoint, environ(method="GET", path="/feedback/form.js")).status == 200
    assert call(endpoint, environ(method="OPTIONS")).status == 204


def test_no_limit(mock_transport: MockTransport) -> None:
    endpoint = FeedbackEndpoint(EndpointOptions(rate_limit=None))
    assert endpoint.rate_limiter is None
    assert {post_json(endpoint, {"message": "m"}).status for _ in range(30)} == {202}
