"""One measurement in a fresh process, for ``bench_compare.py``: prints one JSON line and exits.

Run by ``bench_compare.py`` as ``python -S benchmarks/_measure.py '<spec as JSON>'``; the spec
names the measurement (``kind``), the SDK (``side``: ``ours`` or ``sentry_sdk``) and its
sizes. Only public API of each SDK is used. The process ends with ``os._exit`` right after
printing, so neither SDK's exit hooks (flushing what is still queued) run.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

from _common import MESSAGE, OURS, percentiles, run_measurement, set_scope_data, sink_get, sink_stats

#: Request headers replayed by the raw urllib3 loop (the others are the connection's business).
REPLAYED_HEADERS = ("content-type", "content-encoding", "x-sentry-auth", "user-agent")


def dsn_for(port: int) -> str:
    return f"http://public@127.0.0.1:{port}/1"


def init_sdk(side: str, port: int | None, **options: Any) -> Any:
    """Import and initialize one SDK; ``port=None`` installs a transport that accepts and discards."""
    if side == OURS:
        import sentry_feedback

        class DiscardTransport(sentry_feedback.Transport):
            def send(self, envelope: Any) -> None:
                return None

        if port is None:
            options["transport"] = DiscardTransport()
        sentry_feedback.init(dsn=dsn_for(port or 9), **options)
        return sentry_feedback

    import sentry_sdk
    from sentry_sdk.transport import Transport

    class SdkDiscardTransport(Transport):
        def capture_envelope(self, envelope: Any) -> None:
            return None

    if port is None:
        options["transport"] = SdkDiscardTransport
    # Default integrations add per-event work (module list, argv, dedupe) that has no
    # counterpart in sentry-feedback; without them sentry-sdk is at its fastest.
    sentry_sdk.init(dsn=dsn_for(port or 9), default_integrations=False, **options)
    return sentry_sdk


def capture_fn(side: str, sdk: Any) -> Callable[[int], object]:
    if side == OURS:
        return lambda i: sdk.capture_feedback(MESSAGE, email="jane@example.com", name="Jane")
    return lambda i: sdk.capture_message(MESSAGE)


def close(side: str, sdk: Any) -> None:
    if side == OURS:
        sdk.close(10)
    else:
        sdk.get_client().close(timeout=10)


def timed_captures(capture: Callable[[int], object], n: int, port: int | None, pause: float) -> dict[str, Any]:
    """Time ``n`` captures, each after ``pause`` seconds of sleep; with a sink, count what it received meanwhile.

    The sleep stands for the application's own waiting (I/O) between captures: it lets the
    background thread take the interpreter and deliver, as it would in an application, so the
    captures are timed while it is busy. Back to back (``pause=0``), a thread that never
    lets go starves the background thread instead.
    """
    before = sink_stats(port) if port else None
    samples = []
    clock = time.perf_counter_ns
    sleep = time.sleep
    gc.collect()
    for i in range(n):
        if pause:
            sleep(pause)
        start = clock()
        capture(i)
        samples.append(clock() - start)
    result: dict[str, Any] = {}
    if port and before:
        result["delivered_during"] = sink_stats(port)["requests"] - before["requests"]
    median, p99 = percentiles(samples)
    result.update(median_us=median, p99_us=p99, n=n)
    return result


def measure_caller(spec: dict[str, Any]) -> dict[str, Any]:
    """Caller-thread cost per capture, the background thread busy delivering (or discarding)."""
    side, port, n, warmup = spec["side"], spec.get("port"), spec["n"], spec["warmup"]
    sdk = init_sdk(side, port, transport_queue_size=n + warmup + 100)
    set_scope_data(sdk)
    capture = capture_fn(side, sdk)
    for i in range(warmup):  # also starts the background thread, and keeps it busy
        capture(i)
    return timed_captures(capture, n, port, spec["pause"])


def measure_cache(spec: dict[str, Any]) -> dict[str, Any]:
    """capture_feedback with cache_dir, delivering over HTTP meanwhile."""
    port, n, warmup = spec["port"], spec["n"], spec["warmup"]
    size = n + warmup + 100
    sdk = init_sdk(OURS, port, cache_dir=spec["cache_dir"], max_cache_items=size, transport_queue_size=size)
    set_scope_data(sdk)
    capture = capture_fn(OURS, sdk)
    for i in range(warmup):
        capture(i)
    return timed_captures(capture, n, port, spec["pause"])


def parse_recorded(data: bytes) -> list[tuple[dict[str, str], bytes]]:
    frames, offset = [], 0
    while offset < len(data):
        head_len, body_len = struct.unpack_from("!II", data, offset)
        offset += 8
        headers = json.loads(data[offset : offset + head_len])
        offset += head_len
        frames.append((headers, data[offset : offset + body_len]))
        offset += body_len
    return frames


class RawLoop:
    """A bare urllib3 keep-alive loop that POSTs recorded requests again, as they were sent."""

    def __init__(self, port: int) -> None:
        import urllib3

        self.pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=1, block=True, retries=False)

    def replay(self, recorded: list[tuple[dict[str, str], bytes]]) -> float:
        """POST every recorded request over the one connection; the seconds it took."""
        requests = [
            (headers[":target"], {k: v for k, v in headers.items() if k in REPLAYED_HEADERS}, body)
            for headers, body in recorded
        ]
        urlopen = self.pool.urlopen
        start = time.perf_counter()
        for target, headers, body in requests:
            response = urlopen("POST", target, body=body, headers=headers, redirect=False)
            if response.status != 200:
                raise RuntimeError(f"the sink answered {response.status}")
        return time.perf_counter() - start


def measure_throughput(spec: dict[str, Any]) -> dict[str, Any]:
    """Sustained delivery against the raw ceiling, in alternating batches.

    Each batch: ``batch`` captures back to back, timed from the first capture until flush
    returns, while the receiver records the requests; then the raw loop POSTs exactly
    those requests again, timed. Alternating keeps both sides under the same conditions.
    """
    side, port, n, batch = spec["side"], spec["port"], spec["n"], spec["batch"]
    sdk = init_sdk(side, port, transport_queue_size=batch + 100)
    set_scope_data(sdk)
    capture = capture_fn(side, sdk)
    raw = RawLoop(port)
    sink_get(port, "/_sink/record")
    capture(0)
    sdk.flush(30)  # both connections are open from here on
    raw.replay(parse_recorded(sink_get(port, "/_sink/recorded")))
    before = sink_stats(port)
    sdk_seconds = raw_seconds = 0.0
    requests = body_bytes = 0
    done = 0
    while done < n:
        size = min(batch, n - done)
        sink_get(port, "/_sink/record")
        gc.collect()
        start = time.perf_counter()
        for i in range(size):
            capture(i)
        sdk.flush(300)
        sdk_seconds += time.perf_counter() - start
        recorded = parse_recorded(sink_get(port, "/_sink/recorded"))
        if len(recorded) < size:
            raise RuntimeError(f"{len(recorded)} requests arrived for {size} captures")
        raw_seconds += raw.replay(recorded)
        requests += len(recorded)
        body_bytes += sum(len(body) for _, body in recorded)
        done += size
    after = sink_stats(port)
    close(side, sdk)
    return {
        "requests": requests,
        "sdk_per_s": requests / sdk_seconds,
        "raw_per_s": requests / raw_seconds,
        "fraction": raw_seconds / sdk_seconds,
        "new_connections": after["connections"] - before["connections"],
        "mean_body_bytes": body_bytes / requests,
    }


def memory_kib() -> dict[str, int]:
    """VmRSS and VmHWM (peak) of this process, in KiB, from /proc/self/status."""
    values = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":", 1)
                values[name] = int(value.split()[0])
    return values


def reset_peak() -> tuple[int, str]:
    """Reset the peak RSS to the current RSS if the kernel allows; the baseline in bytes and the method."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")  # resets VmHWM to VmRSS (Linux 4.0+)
        return memory_kib()["VmRSS"] * 1024, "VmHWM"
    except OSError:
        return peak_ru_maxrss(), "ru_maxrss"


def peak_ru_maxrss() -> int:
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024


def measure_memory(spec: dict[str, Any]) -> dict[str, Any]:
    """Peak RSS increase while one attachment (bytes or a path) is captured and delivered."""
    side, port, mode, size, path = spec["side"], spec["port"], spec["mode"], spec["size"], spec["path"]
    sdk = init_sdk(side, port)
    small = path + ".small"
    with open(small, "wb") as file:
        file.write(os.urandom(4096))

    def capture_with(payload: bytes | None, file_path: str | None) -> None:
        if side == OURS:
            attachment = (
                sdk.Attachment(payload, filename="screenshot.png")
                if payload is not None
                else sdk.Attachment(path=file_path)
            )
            sdk.capture_feedback(MESSAGE, email="jane@example.com", attachments=[attachment])
        else:
            with sdk.new_scope() as scope:
                if payload is not None:
                    scope.add_attachment(bytes=payload, filename="screenshot.png")
                else:
                    scope.add_attachment(path=file_path, filename=os.path.basename(file_path))
                sdk.capture_message(MESSAGE)

    capture_with(os.urandom(4096), None)  # warm-up: every code path of both kinds, once
    capture_with(None, small)
    sdk.flush(30)
    payload = os.urandom(size) if mode == "bytes" else None
    before = sink_stats(port)
    gc.collect()
    if sys.platform.startswith("linux"):
        baseline, method = reset_peak()
    else:
        baseline, method = peak_ru_maxrss(), "ru_maxrss"
    capture_with(payload, None if mode == "bytes" else path)
    sdk.flush(120)
    peak = memory_kib()["VmHWM"] * 1024 if method == "VmHWM" else peak_ru_maxrss()
    delivered = sink_stats(port)["bytes"] - before["bytes"]
    if delivered < size * 0.9:
        raise RuntimeError(f"only {delivered} bytes arrived for a {size}-byte attachment")
    return {"increase_bytes": peak - baseline, "ratio": (peak - baseline) / size, "method": method}


KINDS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "caller": measure_caller,
    "cache": measure_cache,
    "throughput": measure_throughput,
    "memory": measure_memory,
}


def main() -> None:
    run_measurement(KINDS, sys.argv[1])


if __name__ == "__main__":
    main()
