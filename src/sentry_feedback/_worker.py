"""A bounded queue drained by one lazily started background thread.

Modelled on OpenTelemetry's batch processor: the thread starts on first use, a forked
child gets a fresh lock, queue and thread (the parent's queued work is the parent's to
send), ``flush`` waits until everything queued has been handled or the deadline passes,
and ``shutdown`` respects its deadline.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

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
        self._init_state()
        ref = weakref.ref(self)

        def reinit_in_child() -> None:
            worker = ref()
            if worker is not None:
                worker._init_state()

        os.register_at_fork(after_in_child=reinit_in_child)

    def _init_state(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[T] = deque()
        self._unfinished = 0
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

    def _start_thread(self) -> None:
        thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        try:
            thread.start()
        except RuntimeError:
            # Interpreter shutdown (3.12+ refuses new threads): flush() drains inline.
            logger.debug("could not start the background thread; work will be handled on flush")
            return
        self._thread = thread

    def _run(self) -> None:
        cond = self._cond
        while True:
            with cond:
                while not self._queue and not self._closed:
                    idle = not cond.wait(self._idle_interval if self._on_idle else None)
                    if idle and not self._queue and self._on_idle is not None:
                        break
                if not self._queue:
                    if self._closed:
                        return
                    task = None
                else:
                    task = self._queue.popleft()
            if task is None:
                self._call(self._on_idle)
                continue
            self._call(self._handle, task)
            with cond:
                self._unfinished -= 1
                if self._unfinished == 0:
                    cond.notify_all()

    def _call(self, fn: Callable[..., None] | None, *args: object) -> None:
        if fn is None:
            return
        try:
            fn(*args)
        except Exception:
            logger.exception("internal error in the background worker")

    def flush(self, timeout: float) -> bool:
        """Wait until every queued task is handled; ``True`` if that happened within ``timeout`` seconds."""
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
        while time.monotonic() < deadline:
            with self._cond:
                if not self._queue:
                    return self._unfinished == 0
                task = self._queue.popleft()
            self._call(self._handle, task)
            with self._cond:
                self._unfinished -= 1
        with self._cond:
            return not self._unfinished

    def shutdown(self, timeout: float) -> bool:
        """Flush within ``timeout``, then stop the thread. Later submits return ``False``."""
        deadline = time.monotonic() + max(timeout, 0.0)
        flushed = self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(deadline - time.monotonic(), 0.0))
        return flushed

    def pending(self) -> int:
        """Tasks queued or being handled."""
        with self._cond:
            return self._unfinished
