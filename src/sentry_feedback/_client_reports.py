"""Counting what the SDK drops, for ``client_report`` items."""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import Counter, deque

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["ClientReportRecorder", "DiscardReason"]


class DiscardReason:
    """The reasons a client report can give for a dropped item."""

    QUEUE_OVERFLOW = "queue_overflow"
    CACHE_OVERFLOW = "cache_overflow"
    RATELIMIT_BACKOFF = "ratelimit_backoff"
    NETWORK_ERROR = "network_error"
    SAMPLE_RATE = "sample_rate"
    BEFORE_SEND = "before_send"
    EVENT_PROCESSOR = "event_processor"
    SEND_ERROR = "send_error"
    INTERNAL_SDK_ERROR = "internal_sdk_error"
    INVALID = "invalid"
    CALLBACK_ERROR = "callback_error"
    BUFFER_OVERFLOW = "buffer_overflow"


class ClientReportRecorder:
    """Thread-safe counts of dropped items by ``(reason, category)``, read and reset atomically.

    :meth:`record` takes no lock (it appends to a deque, which is atomic), so it is safe
    anywhere, a signal handler included; the counts are folded in under the lock by the
    readers. A forked child starts with a new lock and no counts: what the parent
    recorded is the parent's to report (the child reporting it too would count it twice).
    """

    def __init__(self) -> None:
        self._init_state()
        _recorders.add(self)

    def _init_state(self) -> None:
        # Also runs in a forked child, where the parent's lock may be held by a thread that no longer exists.
        self._lock = threading.Lock()
        self._incoming: deque[tuple[tuple[str, str], int]] = deque()
        self._counts: Counter[tuple[str, str]] = Counter()
        self._total: Counter[tuple[str, str]] = Counter()

    def record(self, reason: str, category: str, quantity: int = 1) -> None:
        """Count ``quantity`` dropped items (bytes for ``attachment``) of ``category`` for ``reason``."""
        if quantity > 0:
            self._incoming.append(((reason, category), quantity))

    def _fold(self) -> None:
        """Move what :meth:`record` appended into the counts; lock held."""
        incoming = self._incoming
        while incoming:
            try:
                key, quantity = incoming.popleft()
            except IndexError:
                break
            self._counts[key] += quantity
            self._total[key] += quantity

    def has_pending(self) -> bool:
        """Whether anything was recorded since the last :meth:`take`."""
        return bool(self._incoming) or bool(self._counts)

    def take(self) -> dict[str, Any] | None:
        """The pending counts as a client report payload, and reset them; ``None`` if empty."""
        with self._lock:
            self._fold()
            if not self._counts:
                return None
            counts, self._counts = self._counts, Counter()
        return {
            "timestamp": time.time(),
            "discarded_events": [
                {"reason": reason, "category": category, "quantity": quantity}
                for (reason, category), quantity in sorted(counts.items())
            ],
        }

    def restore(self, report: dict[str, Any]) -> None:
        """Put the counts of a report that could not be sent back, so they go out later."""
        with self._lock:
            for entry in report.get("discarded_events", ()):
                self._counts[(entry["reason"], entry["category"])] += entry["quantity"]

    def totals(self) -> dict[tuple[str, str], int]:
        """Everything recorded since this recorder was made (never reset): for tests and debugging."""
        with self._lock:
            self._fold()
            return dict(self._total)


# One at-fork hook for all recorders (hooks cannot be unregistered; a client, even a
# disabled one, makes a recorder), holding them weakly.
_recorders: weakref.WeakSet[ClientReportRecorder] = weakref.WeakSet()


def _reset_in_child() -> None:
    for recorder in list(_recorders):
        recorder._init_state()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_reset_in_child)
