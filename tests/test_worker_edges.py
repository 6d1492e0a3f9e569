"""The background worker at its edges: signal handlers that interrupt its locked sections, work left
after shutdown, tasks that raise ``BaseException``, and a worker thread that forks.

A signal handler runs on the main thread between two bytecodes, possibly while the main thread is
inside one of the worker's locked sections. ``_Interrupting`` is the worker's condition with a
hook that raises a real ``SIGUSR1`` at a chosen point (right after the main thread took the lock,
or while it waits with the lock released), so each case is exact and needs no timing luck.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sentry_feedback._worker import BackgroundWorker

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="POSIX signals")

WAIT = 10.0


class _Interrupting(threading.Condition):
    """A condition that runs one queued action on the main thread when it is entered or waited on.

    ``on_enter`` actions run right after the lock was taken (the lock stays held); ``on_wait``
    actions run at the start of a wait, with the lock released as during the wait itself.
    """

    def __init__(self) -> None:
        super().__init__(threading.Lock())
        self.on_enter: list[Callable[[], object]] = []
        self.on_wait: list[Callable[[], object]] = []

    def __enter__(self) -> bool:
        entered = super().__enter__()
        if self.on_enter and threading.current_thread() is threading.main_thread():
            self.on_enter.pop(0)()
        return entered

    def wait(self, timeout: float | None = None) -> bool:
        if self.on_wait and threading.current_thread() is threading.main_thread():
            action = self.on_wait.pop(0)
            self.release()
            try:
                action()
            finally:
                self.acquire()
        return super().wait(timeout)


def in_signal_handler(action: Callable[[], Any]) -> Any:
    """What ``action`` returns when it runs in a ``SIGUSR1`` handler that interrupts the main thread here."""
    results: list[Any] = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: results.append(action()))
    try:
        signal.raise_signal(signal.SIGUSR1)  # the handler runs before this returns
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert len(results) == 1
    return results[0]


class Harness:
    """A worker on an ``_Interrupting`` condition, recording what it handled; ``gate`` holds up each task."""

    def __init__(self, *, max_size: int = 10, gated: bool = False, **options: Any) -> None:
        self.handled: list[str] = []
        self.threads: list[int] = []
        self.started = threading.Event()
        self.gate = threading.Event()
        if not gated:
            self.gate.set()
        self.exited = threading.Event()
        self.worker: BackgroundWorker[str] = BackgroundWorker(
            self._handle, max_size=max_size, on_exit=self.exited.set, **options
        )
        self.cond = _Interrupting()
        self.worker._cond = self.cond  # before first use: the thread starts with it

    def _handle(self, task: str) -> None:
        self.started.set()
        assert self.gate.wait(WAIT)
        self.handled.append(task)
        self.threads.append(threading.get_ident())


@pytest.fixture
def harnesses() -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(**options: Any) -> Harness:
        harness = Harness(**options)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.gate.set()
        harness.cond.on_enter.clear()
        harness.cond.on_wait.clear()
        harness.worker.shutdown(WAIT)


# -- submitting from a signal handler ---------------------------------------------------------------


def test_tasks_a_handler_queues_during_submit_later_are_handled(harnesses: Callable[..., Harness]) -> None:
    h = harnesses()
    from_handler: list[object] = []
    h.cond.on_enter.append(
        lambda: from_handler.extend(
            in_signal_handler(lambda: (h.worker.submit("handler now"), h.worker.submit_later("handler later", 0.0)))
        )
    )
    h.worker.submit_later("main later", 0.0)
    assert from_handler == [True, None]  # accepted without taking the lock the main thread holds
    assert h.worker.flush(WAIT)
    assert sorted(h.handled) == ["handler later", "handler now", "main later"]
    assert h.worker.pending() == 0


def test_a_handler_submit_is_refused_when_the_queue_is_full_or_the_worker_closed(
    harnesses: Callable[..., Harness],
) -> None:
    h = harnesses(max_size=1, gated=True)
    assert h.worker.submit("running")
    assert h.started.wait(WAIT)
    assert h.worker.submit("queued")  # the queue is full now
    refused: list[object] = []
    h.cond.on_wait += [lambda: refused.append(in_signal_handler(lambda: h.worker.submit("overflow"))), h.gate.set]
    assert h.worker.flush(WAIT)
    assert refused == [False]
    assert h.handled == ["running", "queued"]

    assert h.worker.shutdown(WAIT)
    h.cond.on_enter.append(lambda: refused.append(in_signal_handler(lambda: h.worker.submit("after shutdown"))))
    assert h.worker.take_pending() == []
    assert refused == [False, False]
    assert h.handled == ["running", "queued"]


def test_flush_takes_in_what_a_handler_queued_while_it_waited(harnesses: Callable[..., Harness]) -> None:
    h = harnesses(gated=True)
    assert h.worker.submit("first")
    assert h.started.wait(WAIT)
    accepted: list[object] = []
    # First wait: the handler queues; second wait (after flush took that in): the first task ends.
    h.cond.on_wait += [lambda: accepted.append(in_signal_handler(lambda: h.worker.submit("from handler"))), h.gate.set]
    assert h.worker.flush(WAIT)
    assert accepted == [True]
    assert h.handled == ["first", "from handler"]
    assert h.worker.pending() == 0


# -- flush, shutdown and take_pending from a signal handler -------------------------------------------


def test_flush_in_a_handler_while_the_main_thread_waits_in_flush(harnesses: Callable[..., Harness]) -> None:
    """The lock is free during the wait: the handler's flush sees the worker finish."""
    h = harnesses(gated=True)
    assert h.worker.submit("slow")
    assert h.started.wait(WAIT)
    in_handler: list[object] = []

    def sigterm_like() -> bool:
        h.gate.set()
        return h.worker.flush(WAIT)

    h.cond.on_wait.append(lambda: in_handler.append(in_signal_handler(sigterm_like)))
    assert h.worker.flush(WAIT)
    assert in_handler == [True]
    assert h.handled == ["slow"]


def test_flush_in_a_handler_that_holds_up_the_lock_reports_what_is_not_sent(
    harnesses: Callable[..., Harness],
) -> None:
    h = harnesses(gated=True)
    assert h.worker.submit("stuck")
    assert h.started.wait(WAIT)
    seen: dict[str, object] = {}

    def handler() -> None:
        started = time.monotonic()
        seen["flushed"] = h.worker.flush(0.05)  # the task cannot end its accounting: the lock is held
        seen["waited"] = time.monotonic() - started

    h.cond.on_enter.append(lambda: in_signal_handler(handler))
    assert h.worker.submit("queued")
    assert seen["flushed"] is False
    assert 0.04 <= seen["waited"] < WAIT  # type: ignore[operator]

    # An idle worker, and the handler's own task still in its inbox: not sent yet.
    h.gate.set()
    assert h.worker.flush(WAIT)

    def queue_then_flush() -> tuple[bool, bool]:
        return h.worker.submit("from handler"), h.worker.flush(WAIT)

    h.cond.on_enter.append(lambda: seen.update(idle=in_signal_handler(queue_then_flush)))
    h.worker.submit_later("main", 0.0)
    assert seen["idle"] == (True, False)
    assert h.worker.flush(WAIT)
    assert sorted(h.handled) == ["from handler", "main", "queued", "stuck"]


def test_shutdown_from_a_handler_closes_the_worker(harnesses: Callable[..., Harness]) -> None:
    h = harnesses()
    assert h.worker.submit("before")
    assert h.worker.flush(WAIT)
    result: list[object] = []
    h.cond.on_enter.append(lambda: result.append(in_signal_handler(lambda: h.worker.shutdown(WAIT))))
    assert h.worker.take_pending() == []
    assert result == [True]
    assert h.worker.closed
    assert h.exited.wait(WAIT)  # the thread saw the shutdown and ended
    assert h.worker.submit("after") is False
    assert h.handled == ["before"]


def test_take_pending_from_a_handler_takes_nothing(harnesses: Callable[..., Harness]) -> None:
    h = harnesses(gated=True)
    assert h.worker.submit("running")
    assert h.started.wait(WAIT)
    assert h.worker.submit("queued")
    taken: list[object] = []
    h.cond.on_enter.append(lambda: taken.append(in_signal_handler(h.worker.take_pending)))
    assert h.worker.submit("main")
    assert taken == [[]]
    h.gate.set()
    assert h.worker.flush(WAIT)
    assert h.handled == ["running", "queued", "main"]


def test_take_pending_takes_what_a_handler_queued_meanwhile(harnesses: Callable[..., Harness]) -> None:
    h = harnesses()
    accepted: list[object] = []
    h.cond.on_enter.append(lambda: accepted.append(in_signal_handler(lambda: h.worker.submit("from handler"))))
    assert h.worker.take_pending() == ["from handler"]  # never lost between the inbox and the caller
    assert accepted == [True]
    assert h.worker.pending() == 0
    assert h.worker.flush(WAIT)
    assert h.handled == []


# -- no worker thread: flush handles the work on the caller's thread ----------------------------------


def test_flush_after_shutdown_runs_delayed_work_inline_when_due(harnesses: Callable[..., Harness]) -> None:
    h = harnesses()
    assert h.worker.shutdown(WAIT)  # never started: no thread, and none starts from now on
    h.worker.submit_later("retry", 0.05)
    assert h.worker.pending() == 1
    started = time.monotonic()
    assert h.worker.flush(WAIT)
    assert time.monotonic() - started >= 0.04  # not before it was due
    assert h.handled == ["retry"]
    assert h.threads == [threading.get_ident()]


def test_flush_without_a_thread_gives_up_at_its_deadline(harnesses: Callable[..., Harness]) -> None:
    h = harnesses()
    assert h.worker.shutdown(WAIT)
    h.worker.submit_later("far away", 60.0)
    assert h.worker.flush(0.02) is False
    assert h.handled == []
    assert h.worker.take_pending() == ["far away"]
    assert h.worker.pending() == 0
    assert h.worker.flush(0)


def test_inline_flush_takes_in_what_a_handler_queued(harnesses: Callable[..., Harness]) -> None:
    h = harnesses()
    assert h.worker.shutdown(WAIT)
    h.worker.submit_later("retry", 0.05)
    from_handler: list[object] = []
    h.cond.on_wait.append(
        lambda: from_handler.extend(
            in_signal_handler(lambda: (h.worker.submit("refused"), h.worker.submit_later("handler retry", 0.0)))
        )
    )
    assert h.worker.flush(WAIT)
    assert from_handler == [False, None]  # a closed worker refuses submit() but keeps delayed work
    assert sorted(h.handled) == ["handler retry", "retry"]
    assert set(h.threads) == {threading.get_ident()}


def test_flush_of_a_never_started_worker_handles_a_handler_task_exactly_once(
    harnesses: Callable[..., Harness],
) -> None:
    h = harnesses()
    accepted: list[object] = []
    h.cond.on_enter.append(lambda: accepted.append(in_signal_handler(lambda: h.worker.submit("from handler"))))
    assert h.worker.flush(WAIT)
    assert accepted == [True]
    assert h.handled == ["from handler"]
    assert h.worker.pending() == 0


# -- shutdown and a task in progress ---------------------------------------------------------------------


def test_shutdown_lets_a_background_task_in_progress_finish(harnesses: Callable[..., Harness]) -> None:
    h = harnesses(gated=True)
    h.worker.submit_later("drain", 0.0, background=True)  # does not hold up flush
    assert h.started.wait(WAIT)
    h.cond.on_wait.append(h.gate.set)  # the task ends while shutdown waits for it
    assert h.worker.shutdown(WAIT)
    assert h.handled == ["drain"]  # finished before shutdown returned
    assert h.exited.wait(WAIT)


def test_shutdown_stops_waiting_for_a_task_in_progress_at_its_deadline(harnesses: Callable[..., Harness]) -> None:
    h = harnesses(gated=True)
    h.worker.submit_later("drain", 0.0, background=True)
    assert h.started.wait(WAIT)
    started = time.monotonic()
    assert h.worker.shutdown(0.05)
    assert 0.04 <= time.monotonic() - started < WAIT
    assert h.handled == [] and not h.exited.is_set()
    h.gate.set()
    assert h.exited.wait(WAIT)
    assert h.handled == ["drain"]


# -- what tasks raise -------------------------------------------------------------------------------------


@pytest.mark.parametrize("error", [SystemExit(3), KeyboardInterrupt(), RuntimeError("transport bug")])
def test_a_task_raising_any_exception_does_not_end_the_thread(
    error: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    handled: list[str] = []

    def handle(task: str) -> None:
        if task == "raises":
            raise error
        handled.append(task)

    worker: BackgroundWorker[str] = BackgroundWorker(handle, max_size=10)
    try:
        with caplog.at_level(logging.ERROR, logger="sentry_feedback"):
            assert worker.submit("raises")
            assert worker.flush(WAIT)
            thread = worker._thread
            assert worker.submit("after")
            assert worker.flush(WAIT)
        assert handled == ["after"]
        assert worker._thread is thread and thread is not None and thread.is_alive()  # the same thread
        records = [r for r in caplog.records if r.getMessage() == "internal error in the background worker"]
        assert len(records) == 1
        assert records[0].exc_info is not None and records[0].exc_info[1] is error
    finally:
        worker.shutdown(WAIT)


# -- a worker thread that forks ---------------------------------------------------------------------------

_FORKING_CHILD = """
import json, os, sys, threading
from sentry_feedback._worker import BackgroundWorker

where = sys.argv[1]
read_end, write_end = os.pipe()
forked = threading.Event()
handled, exits, children, idle_calls = [], [], [], []


def fork_here():
    inherited = threading.current_thread()
    pid = os.fork()
    if pid:
        children.append(pid)
        forked.set()
        return

    def report():  # in the child, while the inherited thread returns from the task
        try:
            inherited.join(10)
            out = {"inherited_ended": not inherited.is_alive(), "pending": worker.pending()}
            out["submitted"] = worker.submit("in the child")
            out["flushed"] = worker.flush(10)
            out.update(pending_after=worker.pending(), handled=handled, exits=len(exits))
            os.write(write_end, json.dumps(out).encode())
        finally:
            os._exit(0)

    threading.Thread(target=report).start()


def handle(task):
    handled.append(task)
    if task == "fork":
        fork_here()


def on_idle():
    if not idle_calls:
        idle_calls.append(1)
        fork_here()


if where == "task":
    worker = BackgroundWorker(handle, max_size=10, on_exit=lambda: exits.append(1))
    worker.submit("fork")
else:
    worker = BackgroundWorker(handle, max_size=10, on_idle=on_idle, idle_interval=0.01, on_exit=lambda: exits.append(1))
    worker.submit("warm-up")
assert forked.wait(30)
_, status = os.waitpid(children[0], 0)
os.close(write_end)
child = json.loads(os.read(read_end, 65536))
child["exit"] = os.waitstatus_to_exitcode(status)
parent = {"flushed": worker.flush(10), "pending": worker.pending(), "handled": handled}
print(json.dumps({"child": child, "parent": parent}))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize(("where", "first"), [("task", "fork"), ("idle", "warm-up")])
def test_a_child_forked_by_the_worker_thread_starts_with_a_fresh_worker(where: str, first: str) -> None:
    """The inherited thread leaves the child's worker alone; the child's own work is counted and sent."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_FORKING_CHILD), where],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["child"] == {
        "inherited_ended": True,
        "pending": 0,
        "submitted": True,
        "flushed": True,
        "pending_after": 0,
        "handled": [first, "in the child"],
        "exits": 0,
        "exit": 0,
    }
    assert result["parent"] == {"flushed": True, "pending": 0, "handled": [first]}
