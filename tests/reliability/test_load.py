"""Load: threads and processes sending at once; every item delivered once or counted once."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from sentry_feedback.server import LocalReceiver

WORKER = Path(__file__).with_name("load_worker.py")


def test_threads_and_processes_deliver_or_count_everything() -> None:
    with LocalReceiver() as receiver:
        # 4 processes x 8 threads x 20 items; a small queue so that some overflow is counted too.
        procs = [
            subprocess.Popen(
                [sys.executable, str(WORKER), receiver.dsn, "8", "20", "40"], stdout=subprocess.PIPE, text=True
            )
            for _ in range(4)
        ]
        results = [json.loads(proc.communicate(timeout=120)[0]) for proc in procs]
        assert [proc.returncode for proc in procs] == [0, 0, 0, 0]
        # Every process handled all it captured within flush's timeout, and closed in time.
        assert [(result["flushed"], result["closed"]) for result in results] == [(True, True)] * 4
        sent: Counter[str] = Counter()
        counted: Counter[str] = Counter()
        for result in results:
            sent.update(result["sent"])
            counted.update(result["counted"])
        feedback = receiver.store.list_feedback()
        events = receiver.store.list_events()
        delivered_attachment_bytes = sum(
            a.size for fb in feedback for a in receiver.store.list_attachments(fb.event_id)
        )
        server_counts: Counter[str] = Counter()
        for (_reason, category), quantity in receiver.store.client_report_totals().items():
            server_counts[category] += quantity

    assert len({fb.event_id for fb in feedback}) == len(feedback)  # nothing twice
    assert len({ev.event_id for ev in events}) == len(events)
    assert sent["feedback"] == 4 * 8 * 16 and sent["error"] == 4 * 8 * 4
    assert len(feedback) + counted["feedback"] == sent["feedback"]
    assert len(events) + counted["error"] == sent["error"]
    assert delivered_attachment_bytes + counted["attachment"] == sent["attachment"]
    # Every count the clients made reached the server in a client report too.
    assert server_counts == counted
