"""A bounded queue drained by one lazily started background thread.

Modelled on OpenTelemetry's batch processor: the thread starts on first use, a forked
child gets a fresh lock, queue and thread (the parent's queued work is the parent's to
send), ``flush`` waits until everything queued has been handled or the deadline passes,
and ``shutdown`` respects its deadline.

**Signal handlers.** Python runs signal handlers in the main thread, between two
bytecodes of whatever it was doing, possibly while that code holds the worker's lock
(which is not reentrant). A capture from a handler must not wait for that lock. The
main thread therefore counts how deep it is in the worker's locked sections
(``_main_inside``, raised *before* taking the lock and lowered *after* releasing it, so
it can only err on the safe side), and a submit that finds it raised puts its task in a
lock-free inbox instead. The inbox is moved into the queue by the next locked section
that ends on the main thread, by the worker's loop and by ``flush``.

**Failures.** The worker catches everything its tasks raise (``BaseException`` included:
a ``SystemExit`` from user code must not end the thread). Should the thread still die,
the next submit notices, hands the task it was running to ``on_lost`` and starts a new
thread.
"""

from __future__ import annotations

import heapq
import os
import threading
import time
import weakref
from collections import deque

from ._log import logger

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Generic, TypeVar
else:
    from ._shims import Generic, TypeVar

__all__ = ["BackgroundWorker", "clamp_timeout"]


T = TypeVar("T")

#: The name of the SDK's background threads.
WORKER_THREAD_NAME = "sentry_feedback.worker"
#: The main thread's id: only there do signal handlers run (refreshed in a forked child).
_main_ident = threading.main_thread().ident
_get_ident = threading.get_ident
#: The longest a waiting main thread sleeps before it looks at the inbox again.
_INBOX_POLL = 0.05


def clamp_timeout(seconds: float) -> float:
    """``seconds`` made safe for ``threading`` waits: at least 0, at most ``threading.TIMEOUT_MAX``."""
    return min(max(seconds, 0.0), threading.TIMEOUT_MAX)


class BackgroundWorker(Generic[T]):
    """Runs ``handle(task)`` for each submitted task on a daemon thread, in order.

    ``on_idle`` runs on the worker thread when nothing was queued for ``idle_interval``
    seconds (used to send client reports periodically). ``on_lost(task)`` is told of a
    task whose thread died while handling it; ``on_exit()`` runs on the thread when it
    ends after :meth:`shutdown`, once everything queued was handled.
    """

    def __init__(
        self,
        handle: Callable[[T], None],
        *,
        max_size: int,
        on_idle: Callable[[], None] | None = None,
        idle_interval: float = 30.0,
        on_lost: Callable[[T], None] | None = None,
        on_exit: Callable[[], None] | None = None,
        name: str = WORKER_THREAD_NAME,
    ) -> None:
        self._handle = handle
        self._max_size = max_size
        self._on_idle = on_idle
        self._idle_interval = idle_interval
        self._on_lost = on_lost
        self._on_exit = on_exit
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
        self._current: tuple[T, bool] | None = None  # that task, and whether it counts
        self._thread: threading.Thread | None = None
        self._closed = False
        # Tasks submitted from a signal handler while the main thread was in a locked section:
        # (task, delay or None, background). deque.append is atomic: no lock needed.
        self._inbox: deque[tuple[T, float | None, bool]] = deque()
        self._main_inside = 0  # how deep the main thread is in locked sections (see the module docstring)

    @property
    def closed(self) -> bool:
        """Whether :meth:`shutdown` was called."""
        return self._closed

    # -- the main thread, signal handlers and the inbox --------------------------------------------

    def _reentered(self) -> bool:
        """Whether this call interrupted the main thread inside a locked section: a signal handler."""
        return self._main_inside > 0 and threading.get_ident() == _main_ident

    def _enter(self) -> bool:
        """Call before taking the lock; ``True`` on the main thread, which must then call :meth:`_leave`."""
        if threading.get_ident() == _main_ident:
            self._main_inside += 1
            return True
        return False

    def _leave(self, main: bool) -> None:
        """Call after releasing the lock: on the main thread, adopt what signal handlers queued meanwhile."""
        if main:
            self._main_inside -= 1
            if self._inbox:
                self._adopt_left_behind()

    def _adopt_left_behind(self) -> None:
        """On the main thread, out of every locked section: move the inbox into the queue."""
        while self._inbox and not self._main_inside:
            self._main_inside += 1
            try:
                with self._cond:
                    self._adopt_inbox()
            finally:
                self._main_inside -= 1

    def _to_inbox(self, task: T, delay: float | None, background: bool) -> bool:
        """Queue without the lock (from a signal handler); same refusals as :meth:`submit`."""
        if delay is None and (self._closed or len(self._queue) + len(self._inbox) >= self._max_size):
            return False
        self._inbox.append((task, delay, background))
        return True

    def _adopt_inbox(self) -> None:
        """Move the inbox into the queue and the delayed heap; lock held."""
        adopted = False
        while True:
            try:
                task, delay, background = self._inbox.popleft()
            except IndexError:
                break
            if delay is None:
                self._queue.append(task)
                self._unfinished += 1
            else:
                self._push_delayed(task, delay, background)
            adopted = True
        if adopted:
            if self._thread is None and not self._closed:
                self._start_thread()
            self._cond.notify()

    # -- submitting -------------------------------------------------------------------------------

    def submit(self, task: T) -> bool:
        """Queue ``task``; ``False`` when the queue is full or the worker is shut down.

        Never waits for a lock held by the calling thread, so it is safe from a signal handler.
        """
        main = _get_ident() == _main_ident
        if main:
            if self._main_inside:  # a signal handler interrupted a locked section
                return self._to_inbox(task, None, False)
            self._main_inside += 1  # (what _enter does, inlined: this is the capture path)
        try:
            with self._cond:
                if self._closed or len(self._queue) >= self._max_size:
                    return False
                self._queue.append(task)
                self._unfinished += 1
                if self._thread is None:
                    self._start_thread()
                self._cond.notify()
                return True
        finally:
            if main:
                self._main_inside -= 1
                if self._inbox:
                    self._adopt_left_behind()

    def submit_later(self, task: T, delay: float, *, background: bool = False) -> None:
        """Queue ``task`` to run in ``delay`` seconds (retries, paced work); not bounded by ``max_size``.

        A ``background`` task does not hold up :meth:`flush` (the offline cache's drain,
        which may wait for a server for a long time). After :meth:`shutdown` the task is
        still kept, so that :meth:`take_pending` can account for it.
        """
        if self._reentered():
            self._to_inbox(task, delay, background)
            return
        main = self._enter()
        try:
            with self._cond:
                self._push_delayed(task, delay, background)
                if self._thread is None and not self._closed:
                    self._start_thread()
                self._cond.notify()
        finally:
            self._leave(main)

    def _push_delayed(self, task: T, delay: float, background: bool) -> None:
        self._sequence += 1
        due = time.monotonic() + clamp_timeout(delay)
        heapq.heappush(self._delayed, (due, self._sequence, task, not background))
        if not background:
            self._unfinished += 1

    def _start_thread(self) -> None:
        thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        try:
            thread.start()
        except RuntimeError:
            # Interpreter shutdown (3.12+ refuses new threads): flush() drains inline.
            logger.debug("could not start the background thread; work will be handled on flush")
            return
        self._thread = thread

    # -- the worker thread ------------------------------------------------------------------------

    def _next_task(self, now: float) -> tuple[T, bool] | None:
        """A task that is due now (delayed ones first: they are older) and whether it counts; lock held."""
        if self._delayed and self._delayed[0][0] <= now:
            _, _, task, counted = heapq.heappop(self._delayed)
            return task, counted
        if self._queue:
            return self._queue.popleft(), True
        return None

    def _run(self) -> None:
        try:
            finished = self._loop()
        except BaseException:
            logger.error(
                "the background thread failed; a new one starts with the next task",
                exc_info=True,
            )
            self._died()
            return
        if finished:
            self._call(self._on_exit)

    def _loop(self) -> bool:
        """Handle tasks until shut down and done (``True``), or until another thread took over (``False``)."""
        cond = self._cond
        me = threading.current_thread()
        while True:
            idle = False
            with cond:
                while True:
                    if self._thread is not me:
                        return False
                    if self._inbox:
                        self._adopt_inbox()
                    now = time.monotonic()
                    found = self._next_task(now)
                    if found is not None:
                        task, counted = found
                        self._busy = True
                        self._current = found
                        break
                    if self._closed and not self._delayed:
                        return True
                    if self._delayed:
                        wait: float | None = clamp_timeout(self._delayed[0][0] - now)
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
                if self._thread is not me:  # the task forked: in the child, the fresh state is not this thread's
                    return False
                self._busy = False
                self._current = None
                if counted:
                    self._unfinished -= 1
                # Only what someone waits for: ``flush`` for the queue to empty, ``shutdown`` for the
                # task in progress. Waking them after every task costs the callers' threads CPU.
                if not self._unfinished or self._closed:
                    cond.notify_all()

    def _died(self) -> None:
        """The thread is ending on an error: let the next submit start another, account for its task."""
        with self._cond:
            if self._thread is threading.current_thread():
                self._thread = None
            lost, self._current = self._current, None
            self._busy = False
            if lost is not None and lost[1]:
                self._unfinished -= 1
            self._cond.notify_all()
        if lost is not None:
            self._call(self._on_lost, lost[0])

    def _call(self, fn: Callable[..., None] | None, *args: object) -> None:
        if fn is None:
            return
        try:
            fn(*args)
        except BaseException:
            # BaseException too: a SystemExit or KeyboardInterrupt raised by user code (a hook, a
            # transport, a __repr__) must not end the thread that everything else waits for.
            logger.exception("internal error in the background worker")

    # -- waiting ----------------------------------------------------------------------------------

    def flush(self, timeout: float) -> bool:
        """Wait until every queued (and delayed) task is handled; ``True`` if within ``timeout`` seconds."""
        deadline = time.monotonic() + clamp_timeout(timeout)
        if self._reentered():
            return self._wait_without_lock(deadline)
        thread = self._thread
        if thread is None or not thread.is_alive():
            return self._drain_inline(deadline)
        main = self._enter()
        try:
            with self._cond:
                while True:
                    if self._inbox:
                        self._adopt_inbox()
                    if not self._unfinished:
                        return True
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    # The main thread wakes now and then: a signal handler may have used the inbox.
                    self._cond.wait(min(remaining, _INBOX_POLL) if main else remaining)
        finally:
            self._leave(main)

    def _wait_without_lock(self, deadline: float) -> bool:
        """``flush`` from a signal handler that interrupted a locked section: poll, never take the lock."""
        while self._unfinished:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(remaining, 0.005))
        return not self._inbox

    def _drain_inline(self, deadline: float) -> bool:
        # No worker thread (never started, or the interpreter is shutting down): use the caller's.
        while True:
            main = self._enter()
            try:
                with self._cond:
                    if self._inbox:
                        self._adopt_inbox()
                    now = time.monotonic()
                    if not self._unfinished:
                        return True
                    if now >= deadline:
                        return False
                    found = self._next_task(now)
                    if found is None:
                        due = self._delayed[0][0] if self._delayed else deadline
                        wait = clamp_timeout(min(due, deadline) - now)
                        self._cond.wait(min(wait, _INBOX_POLL) if main else wait)
                        continue
            finally:
                self._leave(main)
            task, counted = found
            self._call(self._handle, task)
            if counted:
                main = self._enter()
                try:
                    with self._cond:
                        self._unfinished -= 1
                finally:
                    self._leave(main)

    def shutdown(self, timeout: float) -> bool:
        """Flush within ``timeout``, then refuse new tasks. Later submits return ``False``.

        What could not be handled in time stays queued: take it with :meth:`take_pending`.
        """
        deadline = time.monotonic() + clamp_timeout(timeout)
        flushed = self.flush(timeout)
        if self._reentered():
            self._closed = True
            return flushed
        main = self._enter()
        try:
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
        finally:
            self._leave(main)
        return flushed

    def take_pending(self) -> list[T]:
        """Remove and return every task not started yet (queued and delayed), so the caller can account for it.

        From a signal handler that interrupted a locked section this takes nothing.
        """
        if self._reentered():
            return []
        main = self._enter()
        try:
            with self._cond:
                if self._inbox:
                    self._adopt_inbox()
                tasks = list(self._queue) + [entry[2] for entry in sorted(self._delayed)]
                self._unfinished -= len(self._queue) + sum(1 for entry in self._delayed if entry[3])
                self._queue.clear()
                self._delayed.clear()
                self._cond.notify_all()
                return tasks
        finally:
            self._leave(main)

    def on_its_thread(self) -> bool:
        """Whether the caller is the worker's own thread (a hook or transport calling back)."""
        return self._thread is threading.current_thread()

    def pending(self) -> int:
        """Tasks queued, delayed or being handled (read without the lock: a snapshot)."""
        return self._unfinished + sum(1 for entry in list(self._inbox) if entry[1] is None or not entry[2])


# One fork hook for all workers (hooks cannot be unregistered, so not one per worker).
_workers: weakref.WeakSet[BackgroundWorker[Any]] = weakref.WeakSet()


def _reinit_workers_in_child() -> None:
    global _main_ident
    _main_ident = threading.get_ident()  # the thread that forked is the child's main thread
    for worker in list(_workers):
        worker._reinit_after_fork()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_reinit_workers_in_child)
