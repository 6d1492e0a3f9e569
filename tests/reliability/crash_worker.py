"""A process that captures feedback while the server is down, then waits to be killed.

Run as ``python crash_worker.py DSN CACHE_DIR COUNT WAIT``. It captures COUNT feedbacks
(every third with an in-memory attachment); with WAIT=flush it waits until every
envelope was handled (tried once against the dead server) before saying so; with
WAIT=none it says so at once. Then it blocks until it is killed.
"""

from __future__ import annotations

import sys

import sentry_feedback as sf


def main() -> None:
    dsn, cache_dir, count, wait = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    sf.init(dsn, cache_dir=cache_dir, http_timeout=1, retry=sf.RetryPolicy(max_attempts=1))
    for i in range(count):
        attachment = [sf.Attachment(f"log {i}\n".encode() * 10, filename="app.log")] if i % 3 == 0 else None
        sf.capture_feedback(f"crash feedback {i}", attachments=attachment)
    if wait == "flush":
        sf.flush(30)
    print("captured", flush=True)
    sys.stdin.read()  # killed with SIGKILL while waiting here


if __name__ == "__main__":
    main()
