"""The HTTP deadline thread: cuts what outlives its deadline, and stays asleep otherwise."""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Callable

from sentry_feedback._watchdog import ExchangeWatchdog, attach_connection


class _CountingCondition(threading.Condition):
    def __init__(self) -> None:
        super().__init__(threading.Lock())
        self.notified = 0

    def notify(self, n: int = 1) -> None:
        self.notified += 1
        super().notify(n)


def test_the_thread_is_not_woken_for_every_exchange() -> None:
    watchdog = ExchangeWatchdog()
    counting = _CountingCondition()
    watchdog._cond = counting
    try:
        watchdog.arm(30.0)  # starts the thread, which then sleeps towards that deadline
        assert _until(lambda: watchdog._wakes_at != math.inf), "the thread never went to sleep"
        counting.notified = 0
        for _ in range(200):
            exchange = watchdog.arm(30.0)
            watchdog.disarm(exchange)
        # Each later deadline is past the one it sleeps towards: nothing to tell it.
        assert counting.notified == 0
    finally:
        watchdog.close()


def _until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Whether ``condition`` becomes true within ``timeout`` (looked at every millisecond)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            return False
        pause.wait(0.001)
    return True


class _Connection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock


def test_an_earlier_deadline_wakes_it_and_a_stalled_read_is_cut() -> None:
    watchdog = ExchangeWatchdog()
    ours, theirs = socket.socketpair()
    with ours, theirs:
        try:
            first = watchdog.arm(30.0)
            watchdog.disarm(first)
            exchange = watchdog.arm(0.2)  # earlier than what the thread sleeps towards
            attach_connection(_Connection(ours))
            started = time.monotonic()
            data = ours.recv(10)  # the peer never writes: only the cut ends this
            assert data == b"" and exchange.fired
            assert time.monotonic() - started < 20
        finally:
            watchdog.disarm(exchange)
            watchdog.close()


def test_extend_moves_the_deadline_only_later() -> None:
    watchdog = ExchangeWatchdog()
    try:
        exchange = watchdog.arm(5.0)
        before = exchange.deadline
        exchange.extend(1.0)
        assert exchange.deadline == before
        exchange.extend(60.0)
        assert exchange.deadline > before + 50
        watchdog.disarm(exchange)
    finally:
        watchdog.close()
