"""Process-level behaviour: the atexit flush and periodic client reports."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest

import sentry_feedback as sf
from sentry_feedback.server import LocalReceiver
from sentry_feedback.testing import MockTransport


def test_atexit_flushes_queued_feedback_without_explicit_flush(sentry_receiver: LocalReceiver) -> None:
    script = textwrap.dedent(
        f"""
        import sentry_feedback
        sentry_feedback.init({sentry_receiver.dsn!r}, shutdown_timeout=10)
        for i in range(5):
            sentry_feedback.capture_feedback(f"left in the queue {{i}}",
                attachments=[sentry_feedback.Attachment(b"x" * 1000, filename="a.bin")])
        sentry_feedback.capture_feedback("")  # counted: goes out as a client report at exit
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # quiet by default
    assert len(sentry_receiver.store.list_feedback()) == 5
    assert sentry_receiver.store.client_report_totals() == {("invalid", "feedback"): 1}


def test_client_reports_sent_alone_when_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sentry_feedback._dispatch.CLIENT_REPORT_INTERVAL", 0.05)
    transport = MockTransport()
    sf.init(transport=transport)
    assert sf.capture_feedback("starts the background thread") is not None
    assert transport.wait_for(1, timeout=10)
    sf.capture_feedback("")
    # No flush: the idle worker sends the pending report by itself.
    assert transport.wait_for(2, timeout=10)
    assert transport.discarded() == {("invalid", "feedback"): 1}
    assert [i.type for i in transport.envelopes[1].items] == ["client_report"]


def test_breadcrumbs_shared_by_threads_stay_bounded() -> None:
    sf.init(transport=MockTransport(), max_breadcrumbs=10)

    def add() -> None:
        for i in range(2000):
            sf.add_breadcrumb(message=str(i))

    threads = [threading.Thread(target=add) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(sf.get_isolation_scope().breadcrumbs) == 10


def test_feedback_captured_during_interpreter_exit_is_delivered(sentry_receiver: LocalReceiver) -> None:
    """An atexit handler of the app runs before the SDK's; on Python 3.12+ no thread can start then."""
    script = textwrap.dedent(
        f"""
        import atexit, sentry_feedback
        sentry_feedback.init({sentry_receiver.dsn!r})
        atexit.register(lambda: print("captured:", sentry_feedback.capture_feedback("at exit") is not None))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "captured: True"
    assert result.stderr == ""
    assert [fb.message for fb in sentry_receiver.store.list_feedback()] == ["at exit"]
