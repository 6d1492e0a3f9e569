"""Opening and closing spans: sentry-feedback's ``start_span`` beside sentry-sdk's, on the caller's thread.

Run: ``python benchmarks/bench_spans.py [--repeat 5] [--quick] [--markdown PATH] [--json PATH]``.
Needs ``sentry-sdk`` installed next to ``sentry-feedback``. Nothing leaves the process: both
SDKs get a transport that accepts and discards envelopes (sentry-feedback: a ``Transport``
subclass whose ``send`` returns ``None``; sentry-sdk: a ``Transport`` subclass whose
``capture_envelope`` does nothing), and a DSN on 127.0.0.1 that is never contacted.

Rows (the same code for both SDKs: ``start_span(name=..., op=...)`` of each, and for a root
``sentry_feedback.start_span(name=..., op=...)`` with no span active, against
``sentry_sdk.start_transaction(name=..., op=...)``, which is what sentry-sdk 2.x makes a
transaction with; its ``start_span`` with nothing active makes a span that is never sent):

A. a child span, ``with start_span(...): pass``, inside an active root, ``traces_sample_rate=1.0``;
   each span timed on its own (median and p99). Both SDKs keep at most 1,000 spans per
   transaction (``max_spans``), so the root is ended and a new one started every 500 child
   spans, outside the timed region; each SDK is then flushed, untimed, so the transaction
   just sent is not being serialized while the next spans are timed;
B. a root span with 5 child spans (a transaction) opened and closed, timed as a whole,
   ``traces_sample_rate=1.0``, each after a short sleep (the application's own waiting, which
   lets a background thread work, as in ``bench_compare.py``). Then ``flush()`` is timed
   until the transport had every transaction (a separate figure), and the process's CPU
   time (all threads) over the timed transactions and the flush, per transaction;
C. tracing off (``traces_sample_rate`` unset): ``with start_span(...): pass`` inside a root
   started the same way (a request's instrumentation when nothing is sampled), and with no
   span active at all.

Each repetition runs every measurement in new processes (``python -S`` over an import path
holding only the two SDKs and their dependencies, as ``bench_compare.py`` does), the two
SDKs one after the other in alternating order; a row's ratio is the median over
repetitions of the ratio within each repetition. Before measuring, the packages are
compiled to bytecode and a warm-up round runs. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import _paired as paired
from _common import OURS, percentiles, run_measurement, set_scope_data

SCRIPT = Path(__file__).resolve()
MARKERS = paired.Markers("<!-- spans:start -->", "<!-- spans:end -->", keep_unmarked=True)
DSN = "http://public@127.0.0.1:9/1"  # never contacted: the transports discard
ROOT_NAME, ROOT_OP = "GET /checkout", "http.server"
CHILD_NAME, CHILD_OP = "SELECT * FROM cart WHERE id = %s", "db.query"


@dataclass(frozen=True)
class Sizes:
    repeat: int
    child_n: int  # A and C: spans timed
    child_warmup: int
    batch: int  # A and C: child spans per root
    tx_n: int  # B: transactions timed
    tx_warmup: int
    children: int  # B: child spans per transaction
    pause: float  # B: seconds of sleep before each timed transaction


DEFAULT = Sizes(
    repeat=5,
    child_n=20000,
    child_warmup=1000,
    batch=500,
    tx_n=2000,
    tx_warmup=200,
    children=5,
    pause=0.0001,
)
QUICK = replace(DEFAULT, repeat=1, child_n=600, child_warmup=100, batch=100, tx_n=60, tx_warmup=10)


@dataclass(frozen=True)
class Row:
    case: str
    key: str
    title: str
    unit: str  # "us" or "ms"
    ratio: bool = True  # whether a ratio means something


ROWS = [
    Row("A", "child_p99", "child span inside a root span, tracing on: p99 per span", "us"),
    Row("A", "child_median", "child span inside a root span, tracing on: median per span", "us"),
    Row("B", "tx_p99", "root span with {children} child spans (a transaction) opened and closed: p99", "us"),
    Row("B", "tx_median", "root span with {children} child spans (a transaction) opened and closed: median", "us"),
    Row("B", "tx_flush", "`flush()` after the last transaction, until the transport had them all", "ms", ratio=False),
    Row("B", "tx_cpu", "CPU time of the process (all threads) per transaction, loop and flush", "us"),
    Row("C", "off_child_p99", "tracing off, span inside a root span: p99 per span", "us"),
    Row("C", "off_child_median", "tracing off, span inside a root span: median per span", "us"),
    Row("C", "off_top_p99", "tracing off, span with no span active: p99 per span", "us"),
    Row("C", "off_top_median", "tracing off, span with no span active: median per span", "us"),
]

# -- the measured process ----------------------------------------------------------------------------


class Counter:
    """Transactions that reached the transport (incremented on whichever thread calls it)."""

    transactions = 0


def init_sdk(side: str, tracing: bool, queue_size: int) -> Any:
    """Import and initialize one SDK with a discarding transport that counts transactions."""
    options: dict[str, Any] = {"traces_sample_rate": 1.0} if tracing else {}
    if side == OURS:
        import sentry_feedback

        class DiscardTransport(sentry_feedback.Transport):
            def send(self, envelope: Any) -> None:
                Counter.transactions += sum(1 for item in envelope.items if item.type == "transaction")

        sentry_feedback.init(dsn=DSN, transport=DiscardTransport(), transport_queue_size=queue_size, **options)
        sdk: Any = sentry_feedback
    else:
        import sentry_sdk
        from sentry_sdk.transport import Transport

        class SdkDiscardTransport(Transport):
            def capture_envelope(self, envelope: Any) -> None:
                Counter.transactions += sum(1 for item in envelope.items if item.type == "transaction")

        # As in bench_compare.py: no default integrations (per-event work with no counterpart here).
        sentry_sdk.init(dsn=DSN, default_integrations=False, transport=SdkDiscardTransport, **options)
        sdk = sentry_sdk
    set_scope_data(sdk)
    return sdk


def root_opener(side: str, sdk: Any) -> Callable[..., Any]:
    """What starts a root span: ``start_span`` with nothing active, or sentry-sdk's ``start_transaction``."""
    return sdk.start_span if side == OURS else sdk.start_transaction  # type: ignore[no-any-return]


def timed_spans(sdk: Any, open_root: Callable[..., Any] | None, count: int, batch: int) -> list[int]:
    """Time ``count`` spans, ``with start_span(...): pass``, one by one; nanoseconds each.

    With ``open_root``, the spans run in batches of ``batch``, each batch inside a root that
    is started before and ended after it, untimed; ``flush()`` follows each batch, untimed.
    """
    open_span = sdk.start_span
    clock = time.perf_counter_ns
    samples: list[int] = []
    append = samples.append
    done = 0
    while done < count:
        size = min(batch, count - done)
        root = open_root(name=ROOT_NAME, op=ROOT_OP) if open_root is not None else contextlib.nullcontext()
        with root:
            for _ in range(size):
                start = clock()
                with open_span(name=CHILD_NAME, op=CHILD_OP):
                    pass
                append(clock() - start)
        if open_root is not None:
            sdk.flush(60)
        done += size
    return samples


def measure_child(spec: dict[str, Any]) -> dict[str, Any]:
    """A: child spans inside a root, tracing on."""
    side, n, warmup, batch = spec["side"], spec["n"], spec["warmup"], spec["batch"]
    sdk = init_sdk(side, True, 1000)
    open_root = root_opener(side, sdk)
    timed_spans(sdk, open_root, warmup, batch)
    gc.collect()
    samples = timed_spans(sdk, open_root, n, batch)
    sdk.flush(60)
    expected = -(-warmup // batch) - (-n // batch)
    if Counter.transactions != expected:
        raise RuntimeError(f"{Counter.transactions} transactions reached the transport, not {expected}")
    median, p99 = percentiles(samples)
    return {"median_us": median, "p99_us": p99, "n": n, "transactions": expected}


def transactions(sdk: Any, open_root: Callable[..., Any], count: int, children: int, pause: float) -> list[int]:
    """Time ``count`` transactions (a root and ``children`` child spans), each after ``pause`` s of sleep."""
    open_span = sdk.start_span
    clock = time.perf_counter_ns
    sleep = time.sleep
    samples: list[int] = []
    append = samples.append
    for _ in range(count):
        if pause:
            sleep(pause)
        start = clock()
        with open_root(name=ROOT_NAME, op=ROOT_OP):
            for _ in range(children):
                with open_span(name=CHILD_NAME, op=CHILD_OP):
                    pass
        append(clock() - start)
    return samples


def measure_transaction(spec: dict[str, Any]) -> dict[str, Any]:
    """B: whole transactions; then the flush, and the CPU time of the process."""
    side, n, warmup, children, pause = spec["side"], spec["n"], spec["warmup"], spec["children"], spec["pause"]
    sdk = init_sdk(side, True, n + warmup + 100)
    open_root = root_opener(side, sdk)
    transactions(sdk, open_root, warmup, children, pause)
    sdk.flush(60)
    before = Counter.transactions
    gc.collect()
    cpu_start = time.process_time()
    samples = transactions(sdk, open_root, n, children, pause)
    delivered_during = Counter.transactions - before
    flush_start = time.perf_counter()
    flushed = sdk.flush(120)
    flush_s = time.perf_counter() - flush_start
    cpu_s = time.process_time() - cpu_start
    if flushed is False or Counter.transactions != warmup + n:
        raise RuntimeError(f"{Counter.transactions} transactions reached the transport, not {warmup + n}")
    median, p99 = percentiles(samples)
    return {
        "median_us": median,
        "p99_us": p99,
        "n": n,
        "flush_ms": flush_s * 1000,
        "cpu_us": cpu_s / n * 1e6,
        "delivered_during": delivered_during,
    }


def measure_off(spec: dict[str, Any]) -> dict[str, Any]:
    """C: tracing off, spans inside a root, then spans with nothing active."""
    side, n, warmup, batch = spec["side"], spec["n"], spec["warmup"], spec["batch"]
    sdk = init_sdk(side, False, 1000)
    open_root = root_opener(side, sdk)
    result: dict[str, Any] = {"n": n}
    for key, root in (("child", open_root), ("top", None)):
        timed_spans(sdk, root, warmup, batch)
        gc.collect()
        median, p99 = percentiles(timed_spans(sdk, root, n, batch))
        result.update({f"{key}_median_us": median, f"{key}_p99_us": p99})
    sdk.flush(60)
    if Counter.transactions:
        raise RuntimeError(f"{Counter.transactions} transactions were sent with tracing off")
    return result


KINDS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "child": measure_child,
    "transaction": measure_transaction,
    "off": measure_off,
}


# -- the driver --------------------------------------------------------------------------------------


def specs(sizes: Sizes, side: str) -> list[dict[str, Any]]:
    spans = {"side": side, "n": sizes.child_n, "warmup": sizes.child_warmup, "batch": sizes.batch}
    return [
        {"kind": "child", **spans},
        {
            "kind": "transaction",
            "side": side,
            "n": sizes.tx_n,
            "warmup": sizes.tx_warmup,
            "children": sizes.children,
            "pause": sizes.pause,
        },
        {"kind": "off", **spans},
    ]


def run_repetition(runner: paired.Runner, sizes: Sizes, repetition: int) -> paired.Figures:
    figures: paired.Figures = {row.key: {} for row in ROWS}
    sides = paired.ordered(repetition)
    for index in range(len(specs(sizes, OURS))):
        for side in sides:
            spec = specs(sizes, side)[index]
            data = runner.measure(spec)
            if spec["kind"] == "child":
                figures["child_p99"][side] = data["p99_us"]
                figures["child_median"][side] = data["median_us"]
            elif spec["kind"] == "transaction":
                figures["tx_p99"][side] = data["p99_us"]
                figures["tx_median"][side] = data["median_us"]
                figures["tx_flush"][side] = data["flush_ms"]
                figures["tx_cpu"][side] = data["cpu_us"]
                runner.notes.setdefault(f"delivered_{side}", []).append(f"{data['delivered_during']}/{data['n']}")
            else:
                for key in ("child", "top"):
                    figures[f"off_{key}_p99"][side] = data[f"{key}_p99_us"]
                    figures[f"off_{key}_median"][side] = data[f"{key}_median_us"]
    return figures


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "ms":
        return f"{value:.2f} ms" if value < 10 else f"{value:.0f} ms"
    if value < 10:
        return f"{value:.2f} µs"
    return f"{value:.1f} µs" if value < 100 else f"{value:.0f} µs"


def summarize(reps: list[paired.Figures], sizes: Sizes) -> list[dict[str, Any]]:
    return [paired.summary_entry(row.key, row.title.format(children=sizes.children), reps, row.ratio) for row in ROWS]


def markdown(summary: list[dict[str, Any]], info: dict[str, Any], notes: paired.Notes, command: str) -> str:
    sizes = info["sizes"]
    rows = {row.key: row for row in ROWS}

    def cells(entry: dict[str, Any]) -> paired.Cells:
        row = rows[entry["key"]]
        return paired.Cells([row.case], [], [row.case, row.key], partial(fmt, unit=row.unit))

    detail = (
        f"A and C: {sizes['child_n']} spans, a new root every {sizes['batch']}; "
        f"B: {sizes['tx_n']} transactions, each after a {sizes['pause'] * 1e6:g} µs sleep"
    )
    lines = paired.tables(summary, info, command, detail, paired.Cells(["case"], [], ["case", "metric"]), cells)
    lines += [
        "",
        f"B, transactions the transport had when the timed loop ended (per repetition): sentry-feedback "
        f"{paired.joined(notes, 'delivered_ours')}; sentry-sdk {paired.joined(notes, 'delivered_sentry_sdk')}.",
        "",
        paired.machine_line(info),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = paired.options(
        __doc__,
        MARKERS,
        pause_help="sleep before each timed transaction of B, in microseconds (default 100; 0: back to back)",
    )
    parser.add_argument("--measure", metavar="SPEC", help=argparse.SUPPRESS)  # in a measured process
    args = parser.parse_args()
    if args.measure is not None:
        run_measurement(KINDS, args.measure)
    run = paired.start(args, MARKERS, DEFAULT, QUICK, "bench_spans.py")
    sizes = run.sizes

    with tempfile.TemporaryDirectory(prefix="bench-spans-") as tmp:
        runner = paired.Runner(Path(tmp), 0, args.verbose, [str(SCRIPT), "--measure"], kind_width=11)
        runner.compile_bytecode()
        # Warm-up: every module either SDK loads is read before anything is timed.
        for side in paired.SIDES:
            for spec in specs(QUICK, side):
                runner.measure({**spec, "n": 20, "warmup": 5, "batch": 10})
        reps = paired.repetitions(sizes.repeat, lambda repetition: run_repetition(runner, sizes, repetition))

    run.finish(summarize(reps, sizes), reps, runner.notes, markdown)


if __name__ == "__main__":
    main()
