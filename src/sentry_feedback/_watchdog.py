"""Bounding one HTTP exchange in wall time, whatever the server does.

urllib3's timeouts apply to each socket operation: a server (or proxy) that trickles its
answer a byte at a time keeps every read under the read timeout and can hold the worker
for ever. An :class:`ExchangeWatchdog` gives each exchange a deadline; its thread shuts
the connection's socket down when the deadline passes, which ends any blocked read or
write at once (the exchange then fails as a network error and the connection is
discarded). The thread starts with the first exchange and ends when the transport closes.

The connection is found through :func:`watched_pool_classes`: urllib3 pool classes whose
connections report themselves to the exchange armed on the current thread.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__: list[str] = []


WATCHDOG_THREAD_NAME = "sentry_feedback.http-deadline"
#: How soon to look again at an exchange whose deadline passed while it had no socket yet (connecting).
_RETRY_CUT = 0.01

_local = threading.local()


class Exchange:
    """One armed exchange: its deadline, its connection once known, and whether it was cut."""

    __slots__ = ("connection", "deadline", "fired")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.connection: Any = None
        self.fired = False

    def extend(self, seconds: float) -> None:
        """Move the deadline to ``seconds`` from now, if that is later (progress while a body streams)."""
        deadline = time.monotonic() + seconds
        if deadline > self.deadline:
            self.deadline = deadline


def attach_connection(connection: object) -> None:
    """Called by a watched connection when it starts a request on this thread."""
    exchange: Exchange | None = getattr(_local, "exchange", None)
    if exchange is not None:
        exchange.connection = connection


class ExchangeWatchdog:
    """Cuts the exchanges that outlive their deadline; one per transport."""

    def __init__(self) -> None:
        self._init_state()

    def _init_state(self) -> None:
        # Also runs in a forked child: the parent's thread does not exist there.
        self._cond = threading.Condition(threading.Lock())
        self._armed: dict[int, Exchange] = {}
        self._thread: threading.Thread | None = None
        self._stop = False
        #: When the thread looks at the exchanges next (``inf``: when notified).
        self._wakes_at = math.inf

    def reinit_after_fork(self) -> None:
        """Forget the parent's thread and exchanges (in a forked child)."""
        self._init_state()

    def arm(self, seconds: float) -> Exchange:
        """Start watching an exchange made on this thread; it is cut after ``seconds``."""
        exchange = Exchange(time.monotonic() + seconds)
        with self._cond:
            self._armed[threading.get_ident()] = exchange
            self._stop = False  # a thread told to stop but not gone yet goes on
            if self._thread is None:
                self._start()
                self._cond.notify()
            elif exchange.deadline < self._wakes_at:
                # Woken only when it would otherwise look too late: not once per exchange,
                # which would make a third thread take the interpreter lock for every envelope.
                self._cond.notify()
        _local.exchange = exchange
        return exchange

    def disarm(self, exchange: Exchange) -> None:
        """Stop watching; after this returns the exchange's socket is never touched again."""
        _local.exchange = None
        with self._cond:
            if self._armed.get(threading.get_ident()) is exchange:
                del self._armed[threading.get_ident()]

    def close(self) -> None:
        """End the thread (a later :meth:`arm` starts a new one)."""
        with self._cond:
            self._stop = True
            self._cond.notify()

    def _start(self) -> None:
        thread = threading.Thread(target=self._run, name=WATCHDOG_THREAD_NAME, daemon=True)
        try:
            thread.start()
        except RuntimeError:  # interpreter shutdown: the per-read timeouts still apply
            return
        self._thread = thread

    def _run(self) -> None:
        cond = self._cond
        with cond:
            try:
                while not self._stop:
                    now = time.monotonic()
                    wait: float | None = None
                    for exchange in self._armed.values():
                        if exchange.fired:
                            continue
                        if exchange.deadline <= now:
                            # Marked first: the cut wakes the sending thread, which then reads it.
                            exchange.fired = True
                            if not _cut(exchange.connection):
                                exchange.fired = False
                                wait = _RETRY_CUT if wait is None else min(wait, _RETRY_CUT)
                            continue
                        left = exchange.deadline - now
                        wait = left if wait is None else min(wait, left)
                    self._wakes_at = math.inf if wait is None else now + wait
                    cond.wait(None if wait is None else min(wait, threading.TIMEOUT_MAX))
            finally:
                self._thread = None
                self._wakes_at = math.inf


def _cut(connection: object) -> bool:
    """Shut the connection's socket down; ``False`` when it has none yet (still connecting)."""
    sock = getattr(connection, "sock", None)
    # TLS inside a TLS proxy tunnel: an SSLTransport, whose socket is underneath.
    import socket

    while sock is not None and not isinstance(sock, socket.socket):
        sock = getattr(sock, "socket", None)
    if sock is None:
        return False
    # The plain socket's shutdown, also for an SSLSocket: its own would drop the TLS object
    # under the feet of the thread that is reading. OSError: already closed, nothing to cut.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    return True


_pool_classes: dict[str, type] | None = None


def watched_pool_classes() -> dict[str, type]:
    """``pool_classes_by_scheme`` for a urllib3 PoolManager whose connections join the armed exchange."""
    global _pool_classes
    if _pool_classes is None:
        from urllib3.connection import HTTPConnection, HTTPSConnection
        from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

        class WatchedHTTPConnection(HTTPConnection):
            def request(self, *args: Any, **kwargs: Any) -> Any:
                attach_connection(self)
                return super().request(*args, **kwargs)

        class WatchedHTTPSConnection(HTTPSConnection):
            def request(self, *args: Any, **kwargs: Any) -> Any:
                attach_connection(self)
                return super().request(*args, **kwargs)

        class WatchedHTTPConnectionPool(HTTPConnectionPool):
            ConnectionCls = WatchedHTTPConnection

        class WatchedHTTPSConnectionPool(HTTPSConnectionPool):
            ConnectionCls = WatchedHTTPSConnection

        _pool_classes = {
            "http": WatchedHTTPConnectionPool,
            "https": WatchedHTTPSConnectionPool,
        }
    return _pool_classes
