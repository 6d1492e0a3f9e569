"""A load-test process: sends feedback (some with attachments) and errors from several threads.

Run as ``python load_worker.py DSN THREADS PER_THREAD QUEUE_SIZE``; prints one JSON line with
what it sent, what its client counted as dropped, and whether ``flush`` and ``close`` finished in time.
"""

from __future__ import annotations

import json
import sys
import threading

import sentry_feedback as sf


def main() -> None:
    dsn, threads, per_thread, queue_size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    client = sf.init(dsn, transport_queue_size=queue_size, retry=sf.RetryPolicy(max_attempts=3, initial=0.01))
    sent: dict[str, int] = {"feedback": 0, "error": 0, "attachment": 0}
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def run(n: int) -> None:
        start.wait()
        for i in range(per_thread):
            if i % 5 == 4:
                sf.capture_message(f"error {n}-{i}", level="error")
                with lock:
                    sent["error"] += 1
                continue
            attachment = b"x" * (200 + i) if i % 3 == 0 else None
            sf.capture_feedback(
                f"feedback {n}-{i}", attachments=[sf.Attachment(attachment, filename="log.txt")] if attachment else None
            )
            with lock:
                sent["feedback"] += 1
                sent["attachment"] += len(attachment or b"")

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    flushed = sf.flush(60)
    counted: dict[str, int] = {}
    for (_reason, category), quantity in client.client_reports.totals().items():
        counted[category] = counted.get(category, 0) + quantity
    closed = sf.close(10)
    print(json.dumps({"sent": sent, "counted": counted, "flushed": flushed, "closed": closed}))


if __name__ == "__main__":
    main()
