"""Rate limits announced by the server, kept per data category."""

from __future__ import annotations

import os
import threading
import time
import weakref

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["RateLimiter"]

#: Categories this SDK knows; limits naming only unknown categories are ignored.
KNOWN_CATEGORIES = frozenset(
    {
        "default",
        "error",
        "transaction",
        "monitor",
        "span",
        "log_item",
        "log_byte",
        "security",
        "attachment",
        "session",
        "profile",
        "profile_chunk",
        "replay",
        "feedback",
        "trace_metric",
        "trace_metric_byte",
        "internal",
    }
)
ALL = ""  # the implicit "all categories" key
DEFAULT_RETRY_AFTER = 60.0


def parse_rate_limits(header: str) -> list[tuple[float, frozenset[str]]]:
    """Parse ``X-Sentry-Rate-Limits`` into ``(seconds, categories)`` pairs.

    An empty category set means *all categories*. Limits whose categories are all
    unknown, and malformed limits, are left out; spaces are ignored.
    """
    limits: list[tuple[float, frozenset[str]]] = []
    for raw in header.split(","):
        limit = "".join(raw.split())
        if not limit:
            continue
        retry, _, rest = limit.partition(":")
        try:
            seconds = float(retry)
        except ValueError:
            continue
        if not seconds >= 0 or seconds == float("inf"):  # rejects NaN, negatives and infinity
            continue
        names = {c for c in rest.partition(":")[0].split(";") if c}
        if not names:
            limits.append((seconds, frozenset()))
            continue
        known = frozenset(names & KNOWN_CATEGORIES)
        if known:
            limits.append((seconds, known))
    return limits


def parse_retry_after(value: str, now: float | None = None) -> float | None:
    """Seconds from ``Retry-After`` (a number of seconds or an HTTP date); ``None`` if unreadable."""
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            import email.utils

            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
        return max(seconds, 0.0)
    if not seconds >= 0 or seconds == float("inf"):
        return None
    return seconds


class RateLimiter:
    """Deadlines per data category plus one for all categories; never shortened.

    ``clock`` is a monotonic clock in seconds (injectable for tests). A forked child keeps
    the parent's limits (they still apply to it) under a new lock.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._deadlines: dict[str, float] = {}
        _limiters.add(self)

    def _reinit_in_child(self) -> None:
        # The parent's lock may be held by a thread that does not exist in the child.
        self._lock = threading.Lock()
        self._deadlines = dict(self._deadlines)

    def update(self, status: int, headers: Mapping[str, str]) -> None:
        """Learn limits from a response's status and headers (any status, 200 included)."""
        header = _get(headers, "x-sentry-rate-limits")
        if header is not None:
            for seconds, categories in parse_rate_limits(header):
                self._extend(categories or (ALL,), seconds)
        elif status == 429:
            retry = _get(headers, "retry-after")
            parsed = parse_retry_after(retry) if retry is not None else None
            self._extend((ALL,), DEFAULT_RETRY_AFTER if parsed is None else parsed)

    def _extend(self, categories: frozenset[str] | tuple[str, ...], seconds: float) -> None:
        deadline = self._clock() + seconds
        with self._lock:
            for category in categories:
                if self._deadlines.get(category, 0.0) < deadline:
                    self._deadlines[category] = deadline

    def retry_after(self, category: str) -> float:
        """Seconds until ``category`` may be sent again; 0 when it is not limited."""
        now = self._clock()
        with self._lock:
            deadline = max(self._deadlines.get(category, 0.0), self._deadlines.get(ALL, 0.0))
        return max(deadline - now, 0.0)

    def is_limited(self, category: str) -> bool:
        """Whether items of ``category`` must be dropped now."""
        return self.retry_after(category) > 0.0

    def is_any_limited(self) -> bool:
        """Whether any limit is in force."""
        now = self._clock()
        with self._lock:
            return any(deadline > now for deadline in self._deadlines.values())

    def snapshot(self) -> dict[str, float]:
        """Seconds left per limited category (``""`` is *all*), for logs and tests."""
        now = self._clock()
        with self._lock:
            return {k: d - now for k, d in self._deadlines.items() if d > now}


# One at-fork hook for all limiters (hooks cannot be unregistered; every client, even a
# disabled one, makes a limiter), holding them weakly.
_limiters: weakref.WeakSet[RateLimiter] = weakref.WeakSet()


def _reinit_in_child() -> None:
    for limiter in list(_limiters):
        limiter._reinit_in_child()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_reinit_in_child)


def _get(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        for key, val in headers.items():
            if key.lower() == name:
                return val
    return value
