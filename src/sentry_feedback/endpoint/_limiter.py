"""Posts per client address: token buckets in a bounded, thread-safe table."""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from ._options import RateLimit

__all__ = ["AddressRateLimiter", "client_key"]

#: The key of every client whose address is unknown (a Unix socket, a server that gives none): one shared bucket.
UNKNOWN_CLIENT = "unknown"


class AddressRateLimiter:
    """A token bucket per client address, for at most ``max_clients`` addresses at once.

    Thread-safe (one lock, held for a dictionary lookup and some arithmetic). Past
    ``max_clients`` the address seen least recently is forgotten: a bucket left alone that
    long has refilled anyway, unless a flood of addresses pushes it out, which only gives a
    client what a new address would get. ``clock`` returns seconds (``time.monotonic``).

    >>> limiter = AddressRateLimiter(RateLimit(2, 60.0))
    >>> [limiter.acquire("203.0.113.7") for _ in range(3)]
    [0.0, 0.0, 30.0]
    """

    def __init__(
        self, limit: RateLimit, *, max_clients: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.max_clients = max_clients
        self._clock = clock
        self._lock = threading.Lock()
        #: ``key -> (tokens, when they were counted)``, least recently used first.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def acquire(self, key: str) -> float:
        """Take a token for ``key``: ``0.0`` when there was one, else the seconds until there is."""
        capacity = float(self.limit.requests)
        rate = self.limit.requests / self.limit.per
        with self._lock:
            now = self._clock()
            tokens, since = self._buckets.pop(key, (capacity, now))
            tokens = min(capacity, tokens + max(now - since, 0.0) * rate)
            if tokens >= 1.0:
                tokens -= 1.0
                wait = 0.0
            else:
                wait = (1.0 - tokens) / rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return wait

    def __len__(self) -> int:
        with self._lock:
            return len(self._buckets)

    def reset(self) -> None:
        """Forget every address."""
        with self._lock:
            self._buckets.clear()


def retry_after(wait: float) -> int:
    """``wait`` seconds as a ``Retry-After`` value: whole seconds, at least 1."""
    return max(1, math.ceil(wait))


def client_key(remote: str | None, forwarded_for: str | None, *, trusted_proxies: int | None) -> str:
    """The rate limit's key for a client: its address, an IPv6 address reduced to its /64 network.

    With ``trusted_proxies`` (``None``: do not trust ``X-Forwarded-For``), the address is the
    ``trusted_proxies``-th entry of ``X-Forwarded-For`` from the right: the one the outermost
    trusted proxy saw. Entries to the left of it are whatever the client sent. Without
    enough entries (the request did not pass through the proxies) ``remote`` is used.
    """
    candidate = remote
    if trusted_proxies is not None and forwarded_for:
        entries = [entry.strip() for entry in forwarded_for[:4096].split(",")]
        if len(entries) >= trusted_proxies:
            candidate = entries[-trusted_proxies]
    address = _address(candidate)
    if address is None:
        return UNKNOWN_CLIENT
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        # One client usually holds a whole /64: counting its addresses one by one would not limit it.
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _address(value: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not value or len(value) > 64:
        return None
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[::1]:8080"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "203.0.113.7:51000"
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value.split("%", 1)[0])
    except ValueError:
        return None
