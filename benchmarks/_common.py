"""Helpers shared by the benchmark scripts (standard library only; imports no SDK)."""

from __future__ import annotations

import gc
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

HERE = Path(__file__).resolve().parent
MESSAGE = "The pay button does nothing after I enter my card."
#: The two sides of a comparison: sentry-feedback and sentry-sdk.
OURS = "ours"
SENTRY_SDK = "sentry_sdk"


def percentiles(samples_ns: list[int]) -> tuple[float, float]:
    """Median and 99th percentile in microseconds."""
    ordered = sorted(samples_ns)
    median = statistics.median(ordered) / 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1000
    return median, p99


def time_calls(
    fn: Callable[[int], object], n: int, warmup: int = 500, between_batches: Callable[[], None] | None = None
) -> list[int]:
    """Wall time of each of ``n`` calls, in nanoseconds, after ``warmup`` calls.

    ``between_batches`` runs, untimed, after every 1000 calls (to drain the SDK's queue).
    """
    for i in range(warmup):
        fn(i)
    if between_batches is not None:
        between_batches()
    samples = []
    clock = time.perf_counter_ns
    gc.collect()
    for i in range(n):
        start = clock()
        fn(i)
        samples.append(clock() - start)
        if between_batches is not None and i % 1000 == 999:
            between_batches()
    return samples


def set_scope_data(sdk: Any) -> None:
    """The same scope data for ``sentry_feedback`` and ``sentry_sdk``: a user, a tag, 5 breadcrumbs."""
    sdk.set_user({"id": "42", "email": "jane@example.com"})
    sdk.set_tag("page", "checkout")
    for i in range(5):
        sdk.add_breadcrumb(category="ui.click", message=f"clicked button {i}")


@contextmanager
def receiver_process(python: str = sys.executable) -> Iterator[str]:
    """``sentry-feedback serve`` in its own process (so it does not share our GIL); yields its DSN."""
    proc = subprocess.Popen(
        [python, "-m", "sentry_feedback", "serve", "--port", "0", "--database", ":memory:"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        dsn = ""
        for line in proc.stdout:
            if line.strip().startswith("DSN:"):
                dsn = line.split(":", 1)[1].strip()
                break
        if not dsn:
            raise RuntimeError("the receiver did not start")
        # Keep reading what it prints, so that a full pipe never blocks the server.
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        yield dsn
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def sink_process(python: str = sys.executable) -> Iterator[int]:
    """The HTTP sink of ``_sink.py`` in its own process, on 127.0.0.1; yields its port."""
    proc = subprocess.Popen([python, "-S", str(HERE / "_sink.py")], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError("the sink did not start")
        yield int(line.split()[1])
    finally:
        proc.terminate()
        proc.wait(10)


def sink_get(port: int, path: str) -> bytes:
    """``GET path`` from the sink on a connection of its own; the answer's body."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(1 << 20):
            chunks.append(chunk)
    answer = b"".join(chunks)
    return answer.partition(b"\r\n\r\n")[2]


def sink_stats(port: int) -> dict[str, int]:
    """Requests, body bytes and connections the sink has seen so far."""
    stats: dict[str, int] = json.loads(sink_get(port, "/_sink/stats"))
    return stats


def run_measurement(kinds: Mapping[str, Callable[[dict[str, Any]], dict[str, Any]]], spec_json: str) -> NoReturn:
    """Run one measurement in a measured process, print its JSON line and end at once.

    ``spec_json`` names the measurement (``kind``, a key of ``kinds``) and its sizes. The
    process ends with ``os._exit``, so neither SDK's exit hooks (flushing what is still
    queued) run; a measurement that fails prints its traceback and ends with status 1.
    """
    spec = json.loads(spec_json)
    try:
        result = kinds[spec["kind"]](spec)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    os._exit(0)
