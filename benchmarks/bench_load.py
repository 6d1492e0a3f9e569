"""Load: 4 processes x 8 threads sending feedback (some with attachments) and errors at once.

Run: ``python benchmarks/bench_load.py [--per-thread 250]``. The receiver runs in this
process; the senders are 4 separate processes. Prints throughput (items per second until
every sender flushed), the accounting (delivered + counted == sent), and peak memory
(max RSS) of the sending processes. All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from sentry_feedback.server import LocalReceiver

WORKER = Path(__file__).resolve().parent.parent / "tests" / "reliability" / "load_worker.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--per-thread", type=int, default=250)
    parser.add_argument("--queue", type=int, default=1000, help="transport_queue_size of each sender")
    args = parser.parse_args()

    with LocalReceiver() as receiver:
        start = time.perf_counter()
        procs = [
            subprocess.Popen(
                [sys.executable, str(WORKER), receiver.dsn, str(args.threads), str(args.per_thread), str(args.queue)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(args.processes)
        ]
        results = [json.loads(proc.communicate(timeout=600)[0]) for proc in procs]
        elapsed = time.perf_counter() - start
        feedback = receiver.store.list_feedback()
        events = receiver.store.list_events()
        delivered_bytes = sum(a.size for fb in feedback for a in receiver.store.list_attachments(fb.event_id))

    sent: Counter[str] = Counter()
    counted: Counter[str] = Counter()
    for result in results:
        sent.update(result["sent"])
        counted.update(result["counted"])
    items = sent["feedback"] + sent["error"]
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(f"{args.processes} processes x {args.threads} threads, {items} items in {elapsed:.2f} s")
    print(f"throughput   {items / elapsed:8.0f} items/s (feedback and errors, end to end)")
    print(f"feedback     sent {sent['feedback']}, delivered {len(feedback)}, counted {counted['feedback']}")
    print(f"errors       sent {sent['error']}, delivered {len(events)}, counted {counted['error']}")
    print(f"attachments  sent {sent['attachment']} B, delivered {delivered_bytes} B, counted {counted['attachment']} B")
    ok = (
        len(feedback) + counted["feedback"] == sent["feedback"]
        and len(events) + counted["error"] == sent["error"]
        and delivered_bytes + counted["attachment"] == sent["attachment"]
        and len({fb.event_id for fb in feedback}) == len(feedback)
    )
    print(f"accounting   delivered + counted == sent, nothing twice: {ok}")
    print(f"peak memory  {peak_kib / 1024:.1f} MiB max RSS of the largest sending process")


if __name__ == "__main__":
    main()
