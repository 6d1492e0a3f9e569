"""A bounded queue drained by one lazily started background thread.

Modelled on OpenTelemetry's batch processor: the thread starts on first use, a forked
child gets a fresh lock, queue and thread (the parent's queued work is the parent's to
send), ``flush`` waits until everything queued has been handled or the deadline passes,
and ``shutdown`` respects its deadline.
"""

from __future__ import annotations

import heapq
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["BackgroundWorker"]

logger = logging.getLogger("sentry_feedback")

T = TypeVar("T")

#: The name of the SDK's background threads.
WORKER_THREAD_NAME = "sentry_feedback.worker"


class BackgroundWorker(Generic[T]):
    """Runs ``handle(task)`` for each submitted task on a daemon thread, in order.

    ``on_idle`` runs on the worker thread when nothing was queued for ``idle_interval``
    seconds (used to send client reports periodically).
    """

    def __init__(
        self,
        handle: Callable[[T], None],
        *,
        max_size: int,
        on_idle: Callable[[], None] | None = None,
        idle_interval: float = 30.0,
        name: str = WORKER_THREAD_NAME,
    ) -> None:
        self._handle = handle
        self._max_size = max_size
        self._on_idle = on_idle
        self._idle_interval = idle_interval
        self._name = name
        self._closed: bool = False
        self._init_state()
        _workers.add(self)

    def _reinit_after_fork(self) -> None:
        closed = self._closed  # a worker closed before the fork stays closed in the child
        self._init_state()
        self._closed = closed

    def _init_state(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[T] = deque()
        self._delayed: list[tuple[float, int, T, bool]] = []  # heap of (due, sequence, task, counted)
        self._sequence = 0
        self._unfinished = 0
        self._busy = False  # a task (counted or background) is being handled right now
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether :meth:`shutdown` was called."""
        return self._closed

    def submit(self, task: T) -> bool:
        """Queue ``task``; ``False`` when the queue is full or the worker is shut down."""
        with self._cond:
            if self._closed or len(self._queue) >= self._max_size:
                return False
            self._queue.append(task)
            self._unfinished += 1
            if self._thread is None:
                self._start_thread()
            self._cond.notify()
            return True

    def submit_later(self, task: T, delay: float, *, background: bool = False) -> None:
        """Queue ``task`` to run in ``delay`` seconds (retries, paced work); not bounded by ``max_size``.

        A ``background`` task does not hold up :meth:`flush` (the offline cache's drain,
        which may wait for a server for a long time). After :meth:`shutdown` the task is
        still kept, so that :meth:`take_pending` can account for it.
        """
        with self._cond:
            self._sequence += 1
            heapq.heappush(self._delayed, (time.monotonic() + max(delay, 0.0), self._sequence, task, not background))
            if not background:
                self._unfinished += 1
            if self._thread is None and not self._closed:
                self._start_thread()
            self._cond.notify()

    def _start_thread(self) -> None:
        thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        try:
            thread.start()
        except RuntimeError:
            # Interpreter shutdown (3.12+ refuses new threads): flush() drains inline.
            logger.debug("could not start the background thread; work will be handled on flush")
            return
        self._thread = thread

    def _next_task(self, now: float) -> tuple[T, bool] | None:
        """A task that is due now (delayed ones first: they are older) and whether it counts; lock held."""
        if self._delayed and self._delayed[0][0] <= now:
            _, _, task, counted = heapq.heappop(self._delayed)
            return task, counted
        if self._queue:
            return self._queue.popleft(), True
        return None

    def _run(self) -> None:
        cond = self._cond
        while True:
            idle = False
            with cond:
                while True:
                    now = time.monotonic()
                    found = self._next_task(now)
                    if found is not None:
                        task, counted = found
                        self._busy = True
                        break
                    if self._closed and not self._delayed:
                        return
                    if self._delayed:
                        wait: float | None = self._delayed[0][0] - now
                    else:
                        wait = self._idle_interval if self._on_idle is not None else None
                    if not cond.wait(wait) and not self._delayed and self._on_idle is not None:
                        idle = True
                        break
            if idle:
                self._call(self._on_idle)
                continue
            self._call(self._handle, task)
            with cond:
                self._busy = False
                if counted:
                    self._unfinished -= 1
                cond.notify_all()

    def _call(self, fn: Callable[..., None] | None, *args: object) -> None:
        if fn is None:
            return
        try:
            fn(*args)
        except Exception:
            logger.exception("internal error in the background worker")

    def flush(self, timeout: float) -> bool:
        """Wait until every queued (and delayed) task is handled; ``True`` if within ``timeout`` seconds."""
        deadline = time.monotonic() + max(timeout, 0.0)
        thread = self._thread
        if thread is None or not thread.is_alive():
            return self._drain_inline(deadline)
        with self._cond:
            while self._unfinished:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def _drain_inline(self, deadline: float) -> bool:
        # No worker thread (never started, or the interpreter is shutting down): use the caller's.
        while True:
            with self._cond:
                now = time.monotonic()
                if not self._unfinished:
                    return True
                if now >= deadline:
                    return False
                found = self._next_task(now)
                if found is None:
                    due = self._delayed[0][0] if self._delayed else deadline
                    self._cond.wait(min(due, deadline) - now)
                    continue
            task, counted = found
            self._call(self._handle, task)
            if counted:
                with self._cond:
                    self._unfinished -= 1

    def shutdown(self, timeout: float) -> bool:
        """Flush within ``timeout``, then refuse new tasks. Later submits return ``False``.

        What could not be handled in time stays queued: take it with :meth:`take_pending`.
        """
        deadline = time.monotonic() + max(timeout, 0.0)
        flushed = self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            # Let a task in progress (a background one included) finish, so that it is not cut
            # off half-way when the process exits right after this.
            while self._busy and threading.current_thread() is not self._thread:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
        return flushed

    def take_pending(self) -> list[T]:
        """Remove and return every task not started yet (queued and delayed), so the caller can account for it."""
        with self._cond:
            tasks = list(self._queue) + [entry[2] for entry in sorted(self._delayed)]
            self._unfinished -= len(self._queue) + sum(1 for entry in self._delayed if entry[3])
            self._queue.clear()
            self._delayed.clear()
            self._cond.notify_all()
            return tasks

    def pending(self) -> int:
        """Tasks queued, delayed or being handled."""
        with self._cond:
            return self._unfinished


# One fork hook for all workers (hooks cannot be unregistered, so not one per worker).
_workers: weakref.WeakSet[BackgroundWorker[Any]] = weakref.WeakSet()


def _reinit_workers_in_child() -> None:
    for worker in list(_workers):
        worker._reinit_after_fork()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_reinit_workers_in_child)
