"""Captures from signal handlers: queued without re-entering the lock the interrupted code holds.

Each case runs in a child process (signal handlers and a possible hang stay there); a hang
shows up as the child's timeout, never as a hung suite.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="POSIX signals")

CHILD_TIMEOUT = 60


def run_child(code: str) -> dict[str, object]:
    try:
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the child hung (deadlock): {exc.stderr!r}")
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_capture_from_a_handler_that_interrupts_submit_while_it_holds_the_lock() -> None:
    # The handler runs exactly while the main thread is inside the worker's locked section:
    # a trace function raises the signal on the line that appends to the queue.
    result = run_child(
        """
        import inspect, json, signal, sys
        import sentry_feedback as sf
        from sentry_feedback import _worker
        from sentry_feedback.testing import MockTransport

        transport = MockTransport()
        sf.init(transport=transport)
        sf.capture_feedback("warm-up")  # starts the worker thread
        assert sf.flush(10)
        from_handler = []
        signal.signal(signal.SIGUSR1, lambda *_: from_handler.append(sf.capture_feedback("from the handler")))

        lines, first = inspect.getsourcelines(_worker.BackgroundWorker.submit)
        target = next(first + n for n, line in enumerate(lines) if "self._queue.append(task)" in line)
        fired = []

        def local(frame, event, arg):
            if event == "line" and frame.f_lineno == target and not fired:
                fired.append(frame.f_code.co_name)
                signal.raise_signal(signal.SIGUSR1)  # the handler runs before this returns
            return local

        def tracer(frame, event, arg):
            return local if frame.f_code.co_filename == _worker.__file__ else None

        sys.settrace(tracer)
        outer = sf.capture_feedback("from the main thread")
        sys.settrace(None)
        flushed = sf.flush(10)
        print(json.dumps({
            "fired": fired,
            "outer": outer is not None,
            "from_handler": [i is not None for i in from_handler],
            "flushed": flushed,
            "messages": sorted(fb["contexts"]["feedback"]["message"] for fb in transport.feedback),
        }))
        """
    )
    assert result["fired"] == ["submit"]
    assert result["outer"] is True
    assert result["from_handler"] == [True]
    assert result["flushed"] is True
    assert result["messages"] == ["from the handler", "from the main thread", "warm-up"]


def test_flush_from_a_handler_that_interrupts_a_locked_section_returns() -> None:
    # A SIGTERM-style handler: capture, then flush, while the main thread holds the lock.
    result = run_child(
        """
        import inspect, json, signal, sys
        import sentry_feedback as sf
        from sentry_feedback import _worker
        from sentry_feedback.testing import MockTransport

        transport = MockTransport()
        sf.init(transport=transport)
        outcome = {}

        def handler(signum, frame):
            outcome["id"] = sf.capture_feedback("terminating")
            outcome["flushed"] = sf.flush(0.2)  # cannot send the inbox now: must not hang
            outcome["pending"] = sf.get_client()._dispatcher._worker.pending()

        signal.signal(signal.SIGUSR1, handler)
        lines, first = inspect.getsourcelines(_worker.BackgroundWorker.submit)
        target = next(first + n for n, line in enumerate(lines) if "self._queue.append(task)" in line)
        fired = []

        def local(frame, event, arg):
            if event == "line" and frame.f_lineno == target and not fired:
                fired.append(True)
                signal.raise_signal(signal.SIGUSR1)
            return local

        sys.settrace(lambda frame, event, arg: local if frame.f_code.co_filename == _worker.__file__ else None)
        sf.capture_feedback("main")
        sys.settrace(None)
        flushed = sf.flush(10)
        print(json.dumps({
            "fired": bool(fired),
            "handler_id": outcome["id"] is not None,
            "handler_flushed": outcome["flushed"],
            "pending_in_handler": outcome["pending"],
            "flushed": flushed,
            "messages": sorted(fb["contexts"]["feedback"]["message"] for fb in transport.feedback),
        }))
        """
    )
    assert result["fired"] is True
    assert result["handler_id"] is True
    assert result["handler_flushed"] is False  # its feedback waits in the inbox until the main thread resumes
    assert result["pending_in_handler"] == 1  # its own feedback, in the inbox
    assert result["flushed"] is True
    assert result["messages"] == ["main", "terminating"]


def test_captures_from_a_timer_signal_while_the_main_thread_captures() -> None:
    # The case that hung 5 of 5 runs: SIGALRM every millisecond, each handler capturing.
    result = run_child(
        """
        import json, signal
        import sentry_feedback as sf
        from sentry_feedback.testing import MockTransport

        transport = MockTransport()
        client = sf.init(transport=transport, transport_queue_size=100_000)
        from_handler = []
        signal.signal(signal.SIGALRM, lambda *_: from_handler.append(sf.capture_feedback("tick")))
        signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
        main = [sf.capture_feedback(f"main {i}") for i in range(4000)]
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        flushed = sf.flush(30)
        captured = len(main) + len(from_handler)
        returned = sum(1 for i in main + from_handler if i is not None)
        print(json.dumps({
            "captured": captured,
            "ticks": len(from_handler),
            "returned": returned,
            "delivered": len(transport.feedback),
            "counted": sum(client.client_reports.totals().values()),
            "flushed": flushed,
        }))
        """
    )
    assert result["flushed"] is True
    assert result["ticks"] > 0
    assert result["returned"] == result["captured"]
    assert result["delivered"] + result["counted"] == result["captured"]
    assert result["counted"] == 0
