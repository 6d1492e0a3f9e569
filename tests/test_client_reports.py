from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import pytest

from forking import fork_running, wait_exit
from sentry_feedback import _client_reports
from sentry_feedback._client_reports import ClientReportRecorder, DiscardReason


def _quantities(report: dict[str, Any] | None) -> dict[tuple[str, str], int]:
    if report is None:
        return {}
    return {(e["reason"], e["category"]): e["quantity"] for e in report["discarded_events"]}


def test_empty_take_is_none() -> None:
    recorder = ClientReportRecorder()
    assert not recorder.has_pending()
    assert recorder.take() is None
    assert recorder.totals() == {}


def test_record_aggregates_and_take_sorts() -> None:
    recorder = ClientReportRecorder()
    recorder.record("send_error", "feedback")
    recorder.record("queue_overflow", "feedback", 2)
    recorder.record("send_error", "feedback", 3)
    recorder.record("queue_overflow", "attachment", 1024)
    recorder.record("before_send", "feedback")
    assert recorder.has_pending()
    report = recorder.take()
    assert report is not None
    assert report["discarded_events"] == [
        {"reason": "before_send", "category": "feedback", "quantity": 1},
        {"reason": "queue_overflow", "category": "attachment", "quantity": 1024},
        {"reason": "queue_overflow", "category": "feedback", "quantity": 2},
        {"reason": "send_error", "category": "feedback", "quantity": 4},
    ]


def test_payload_shape() -> None:
    recorder = ClientReportRecorder()
    before = time.time()
    recorder.record(DiscardReason.RATELIMIT_BACKOFF, "error", 5)
    report = recorder.take()
    after = time.time()
    assert report is not None
    assert set(report) == {"timestamp", "discarded_events"}
    assert isinstance(report["timestamp"], float)
    assert before <= report["timestamp"] <= after
    assert isinstance(report["discarded_events"], list)
    for entry in report["discarded_events"]:
        assert set(entry) == {"reason", "category", "quantity"}
        assert isinstance(entry["reason"], str)
        assert isinstance(entry["category"], str)
        assert isinstance(entry["quantity"], int)
    assert json.loads(json.dumps(report)) == report


def test_take_resets() -> None:
    recorder = ClientReportRecorder()
    recorder.record("invalid", "feedback")
    assert recorder.take() is not None
    assert not recorder.has_pending()
    assert recorder.take() is None
    recorder.record("invalid", "feedback", 2)
    assert _quantities(recorder.take()) == {("invalid", "feedback"): 2}


@pytest.mark.parametrize("quantity", [0, -1, -100])
def test_non_positive_quantity_ignored(quantity: int) -> None:
    recorder = ClientReportRecorder()
    recorder.record("send_error", "attachment", quantity)
    assert not recorder.has_pending()
    assert recorder.take() is None
    assert recorder.totals() == {}


def test_restore_puts_counts_back() -> None:
    recorder = ClientReportRecorder()
    recorder.record("network_error", "feedback", 2)
    recorder.record("network_error", "attachment", 10)
    report = recorder.take()
    assert report is not None
    recorder.record("network_error", "feedback", 1)
    recorder.record("send_error", "error", 1)
    recorder.restore(report)
    assert _quantities(recorder.take()) == {
        ("network_error", "attachment"): 10,
        ("network_error", "feedback"): 3,
        ("send_error", "error"): 1,
    }


def test_restore_adds_to_counts_already_folded() -> None:
    # Two reports that could not be sent, put back one after the other, and counts folded in between.
    recorder = ClientReportRecorder()
    recorder.record("network_error", "feedback", 2)
    first = recorder.take()
    recorder.record("network_error", "feedback", 5)
    second = recorder.take()
    assert first is not None and second is not None
    recorder.record("network_error", "feedback", 1)
    assert recorder.totals() == {("network_error", "feedback"): 8}  # folds the 1 into the pending counts
    recorder.restore(first)
    recorder.restore(second)
    assert _quantities(recorder.take()) == {("network_error", "feedback"): 8}


def test_restore_does_not_change_totals() -> None:
    recorder = ClientReportRecorder()
    recorder.record("network_error", "feedback", 2)
    report = recorder.take()
    assert report is not None
    recorder.restore(report)
    assert recorder.totals() == {("network_error", "feedback"): 2}
    assert recorder.has_pending()


def test_restore_empty_report() -> None:
    recorder = ClientReportRecorder()
    recorder.restore({"timestamp": 1.0, "discarded_events": []})
    recorder.restore({})
    assert recorder.take() is None


def test_totals_never_reset() -> None:
    recorder = ClientReportRecorder()
    recorder.record("queue_overflow", "feedback")
    recorder.take()
    recorder.record("queue_overflow", "feedback", 4)
    recorder.record("sample_rate", "error")
    recorder.take()
    assert recorder.totals() == {("queue_overflow", "feedback"): 5, ("sample_rate", "error"): 1}


def test_totals_is_a_copy() -> None:
    recorder = ClientReportRecorder()
    recorder.record("invalid", "feedback")
    totals = recorder.totals()
    totals[("invalid", "feedback")] = 99
    assert recorder.totals() == {("invalid", "feedback"): 1}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("QUEUE_OVERFLOW", "queue_overflow"),
        ("CACHE_OVERFLOW", "cache_overflow"),
        ("RATELIMIT_BACKOFF", "ratelimit_backoff"),
        ("NETWORK_ERROR", "network_error"),
        ("SAMPLE_RATE", "sample_rate"),
        ("BEFORE_SEND", "before_send"),
        ("EVENT_PROCESSOR", "event_processor"),
        ("SEND_ERROR", "send_error"),
        ("INTERNAL_SDK_ERROR", "internal_sdk_error"),
        ("INVALID", "invalid"),
        ("CALLBACK_ERROR", "callback_error"),
        ("BUFFER_OVERFLOW", "buffer_overflow"),
    ],
)
def test_discard_reasons(name: str, value: str) -> None:
    assert getattr(DiscardReason, name) == value


def test_take_is_atomic_under_concurrent_records() -> None:
    recorder = ClientReportRecorder()
    writers, per_writer = 8, 1000
    start = threading.Barrier(writers + 1)
    writers_done = threading.Event()
    taken: list[dict[str, Any]] = []

    def write(index: int) -> None:
        start.wait()
        category = "feedback" if index % 2 else "attachment"
        for _ in range(per_writer):
            recorder.record("queue_overflow", category)

    def take_loop() -> None:
        start.wait()
        while not writers_done.is_set():
            report = recorder.take()
            if report is not None:
                taken.append(report)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    taker = threading.Thread(target=take_loop)
    taker.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    writers_done.set()
    taker.join(timeout=30)
    assert not taker.is_alive()

    final = recorder.take()
    if final is not None:
        taken.append(final)
    total = sum(e["quantity"] for report in taken for e in report["discarded_events"])
    assert total == writers * per_writer
    per_category: dict[str, int] = {}
    for report in taken:
        for e in report["discarded_events"]:
            per_category[e["category"]] = per_category.get(e["category"], 0) + e["quantity"]
    assert per_category == {"feedback": 4000, "attachment": 4000}
    assert recorder.totals() == {
        ("queue_overflow", "feedback"): 4000,
        ("queue_overflow", "attachment"): 4000,
    }
    assert recorder.take() is None


def test_at_fork_hook_starts_every_recorder_afresh_under_a_new_lock() -> None:
    # What a forked child runs first, here in this process: the parent's counts are the parent's to report.
    recorder = ClientReportRecorder()
    recorder.record("queue_overflow", "feedback", 3)
    recorder.totals()  # folded
    recorder.record("invalid", "attachment", 10)  # still incoming
    held = recorder._lock
    seen: list[object] = []
    with held:
        _client_reports._reset_in_child()
        reader = threading.Thread(target=lambda: seen.append((recorder.has_pending(), recorder.take())), daemon=True)
        reader.start()
        reader.join(5)
    reader.join(5)
    assert seen == [(False, None)]
    assert recorder.totals() == {}
    recorder.record("invalid", "feedback")
    assert _quantities(recorder.take()) == {("invalid", "feedback"): 1}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*use of fork\\(\\) may lead to deadlocks:DeprecationWarning")
def test_forked_child_counts_only_its_own_drops() -> None:
    recorder = ClientReportRecorder()
    recorder.record("queue_overflow", "feedback", 3)
    recorder.totals()
    recorder.record("invalid", "attachment", 10)

    def child() -> int:
        if recorder.has_pending() or recorder.totals():
            return 3
        recorder.record("send_error", "feedback")
        return 0 if _quantities(recorder.take()) == {("send_error", "feedback"): 1} else 4

    # The fork happens while a thread of the parent holds the recorder's lock.
    with recorder._lock:
        pid = fork_running(child)
    assert wait_exit(pid) == 0
    assert recorder.totals() == {("queue_overflow", "feedback"): 3, ("invalid", "attachment"): 10}
