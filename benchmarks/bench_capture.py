"""Caller-thread cost of capture_feedback, and end-to-end throughput to a local receiver.

Run: ``python benchmarks/bench_capture.py [--n 20000] [--throughput 3000]``.

1. *Caller path*: the time ``capture_feedback`` (and ``capture_exception``, for an
   error raised through 9 frames with locals) spends on the calling thread, with the
   background thread held back so it does not compete for the GIL. When ``sentry-sdk``
   is installed, ``sentry_sdk.capture_message`` is measured in the same run, with the
   same scope data and a no-op transport, as the anchor; the ratio is printed.
2. *With delivery running*: the same, while the background thread sends every envelope
   over HTTP to a local receiver running in a separate process.
3. *Throughput*: feedbacks per second from the first capture until ``flush`` returns,
   over one keep-alive connection to that receiver (connections opened are printed).

All traffic goes to 127.0.0.1. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from _common import MESSAGE, percentiles, receiver_process, set_scope_data, time_calls

import sentry_feedback as sf


def make_error(depth: int = 8) -> BaseException:
    """A fresh exception raised through ``depth`` frames, each with a few locals."""

    def level(n: int, cart: dict[str, object]) -> None:
        order_id = f"order-{n}"
        items = [n, n + 1, n + 2]
        if n == 0:
            raise ValueError(f"payment declined for {order_id} ({len(items)} items, {cart['total']})")
        level(n - 1, cart)

    try:
        level(depth, {"total": 42.5, "currency": "EUR"})
    except ValueError as exc:
        return exc
    raise AssertionError("unreachable")


def time_exception_captures(capture: Callable[[BaseException], object], n: int, **kwargs: object) -> list[int]:
    """Time ``capture(error)`` for ``n`` fresh errors (raising them is not timed)."""
    errors = [make_error() for _ in range(n)]
    return time_calls(lambda i: capture(errors[i]), n, warmup=0, **kwargs)  # type: ignore[arg-type]


@contextmanager
def held_back_sdk() -> Iterator[Callable[[], None]]:
    """sentry_feedback with its background thread held back; yields ``drain()`` to let it catch up.

    Captures are timed while the thread waits, so the figure is the caller's own work; the
    queue is drained, untimed, between batches, so it stays as short as in a real application.
    """
    gate = threading.Event()
    sf.init(transport=lambda envelope: gate.wait(), transport_queue_size=5000)
    set_scope_data(sf)

    def drain() -> None:
        gate.set()
        sf.flush(60)
        gate.clear()

    try:
        yield drain
    finally:
        gate.set()
        sf.close(30)


def sentry_sdk_with_scope_data() -> Any:
    """``sentry_sdk`` initialized with a no-op transport and the same scope data, or ``None``."""
    try:
        import sentry_sdk
    except ImportError:
        return None
    sentry_sdk.init(dsn="http://public@127.0.0.1:9/1", transport=lambda envelope: None, default_integrations=False)
    set_scope_data(sentry_sdk)
    return sentry_sdk


def bench_caller_path(n: int) -> tuple[float, float]:
    with held_back_sdk() as drain:
        capture = lambda i: sf.capture_feedback(MESSAGE, email="jane@example.com", name="Jane")  # noqa: E731
        return percentiles(time_calls(capture, n, between_batches=drain))


def bench_capture_exception(n: int) -> tuple[float, float]:
    with held_back_sdk() as drain:
        for error in [make_error() for _ in range(200)]:  # warm-up
            sf.capture_exception(error)
        drain()
        return percentiles(time_exception_captures(sf.capture_exception, n, between_batches=drain))


def bench_sentry_sdk_exception(n: int) -> tuple[float, float] | None:
    sentry_sdk = sentry_sdk_with_scope_data()
    if sentry_sdk is None:
        return None
    for error in [make_error() for _ in range(200)]:  # warm-up
        sentry_sdk.capture_exception(error)
    samples = time_exception_captures(sentry_sdk.capture_exception, n)
    sentry_sdk.get_client().close()
    return percentiles(samples)


def bench_sentry_sdk(n: int) -> tuple[float, float] | None:
    sentry_sdk = sentry_sdk_with_scope_data()
    if sentry_sdk is None:
        return None
    samples = time_calls(lambda i: sentry_sdk.capture_message(MESSAGE), n)
    sentry_sdk.get_client().close()
    return percentiles(samples)


def bench_with_delivery(dsn: str, n: int) -> tuple[tuple[float, float], int]:
    client = sf.init(dsn=dsn, transport_queue_size=n + 1000)
    set_scope_data(sf)
    samples = time_calls(lambda i: sf.capture_feedback(MESSAGE, email="jane@example.com"), n, warmup=100)
    sf.flush(120)
    dropped = sum(client.client_reports.totals().values())
    sf.close(10)
    return percentiles(samples), dropped


def bench_throughput(dsn: str, n: int) -> tuple[float, int, int]:
    client = sf.init(dsn=dsn, transport_queue_size=n + 10)
    set_scope_data(sf)
    attachment = sf.Attachment(b"12:00:01 INFO cart ok\n" * 50, filename="app.log")
    sf.send_feedback("warm-up: opens the connection", timeout=10)
    start = time.perf_counter()
    for i in range(n):
        sf.capture_feedback(f"feedback {i}", attachments=[attachment] if i % 4 == 0 else None)
    ok = sf.flush(300)
    elapsed = time.perf_counter() - start
    transport = client.transport
    pool = transport._pool.connection_from_url(dsn.replace("public@", ""))  # type: ignore[union-attr]
    connections = pool.num_connections
    dropped = sum(client.client_reports.totals().values())
    sf.close(10)
    if not ok:
        print("  (flush timed out)")
    return n / elapsed, connections, dropped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000, help="captures timed per measurement")
    parser.add_argument("--throughput", type=int, default=3000, help="feedbacks sent for the throughput run")
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, sentry-feedback {sf.__version__}, n={args.n}\n")

    median, p99 = bench_caller_path(args.n)
    print(f"caller path   sentry_feedback.capture_feedback  median {median:7.1f} us   p99 {p99:7.1f} us")
    anchor = bench_sentry_sdk(args.n)
    if anchor is None:
        print("caller path   sentry_sdk.capture_message        (sentry-sdk not installed)")
    else:
        import sentry_sdk

        print(
            f"caller path   sentry_sdk.capture_message        median {anchor[0]:7.1f} us   p99 {anchor[1]:7.1f} us"
            f"   (sentry-sdk {sentry_sdk.VERSION})"
        )
        ratio_median, ratio_p99 = median / anchor[0], p99 / anchor[1]
        print(f"ratio         sentry_feedback / sentry_sdk      median {ratio_median:.3f}   p99 {ratio_p99:.3f}")

    n_exc = max(args.n // 4, 1000)
    median, p99 = bench_capture_exception(n_exc)
    print(
        f"\ncaller path   sentry_feedback.capture_exception median {median:7.1f} us   p99 {p99:7.1f} us   (n={n_exc})"
    )
    anchor = bench_sentry_sdk_exception(n_exc)
    if anchor is not None:
        print(f"caller path   sentry_sdk.capture_exception      median {anchor[0]:7.1f} us   p99 {anchor[1]:7.1f} us")
        ratio_median, ratio_p99 = median / anchor[0], p99 / anchor[1]
        print(f"ratio         sentry_feedback / sentry_sdk      median {ratio_median:.3f}   p99 {ratio_p99:.3f}")

    with receiver_process() as dsn:
        (median, p99), dropped = bench_with_delivery(dsn, min(args.n, 5000))
        print(
            f"\nwith delivery capture_feedback while sending      median {median:7.1f} us   p99 {p99:7.1f} us"
            f"   (dropped: {dropped})"
        )
        rate, connections, dropped = bench_throughput(dsn, args.throughput)
        print(
            f"throughput    {rate:8.0f} feedbacks/s end to end (1 in 4 with a 1.1 KB attachment), "
            f"{connections} connection(s) opened, dropped: {dropped}"
        )


if __name__ == "__main__":
    main()
