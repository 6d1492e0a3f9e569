"""sentry-feedback beside sentry-sdk, every figure from fresh processes, ratios paired per repetition.

Run: ``python benchmarks/bench_compare.py [--repeat 5] [--quick] [--markdown PATH] [--json PATH]``.
Needs ``sentry-sdk`` installed next to ``sentry-feedback``. All traffic goes to 127.0.0.1.

Rows (see docs/performance.md for the method):

1. caller-thread p99 (and median) per capture while the background thread delivers every
   envelope over HTTP to a receiver in another process;
2. the same with a transport that accepts and discards envelopes;
3. ``import`` wall time minus a bare interpreter's;
4. ``import`` + ``init(dsn)`` on the caller's thread;
5. sustained delivery over one keep-alive connection, as a fraction of a raw urllib3
   keep-alive loop POSTing the same compressed envelopes to the same receiver;
6. peak RSS increase for one 5 MiB attachment given as bytes, captured and delivered;
7. the same with the attachment given as a path;
8. ``capture_feedback`` with ``cache_dir``: median caller cost (sentry-feedback only).

Each repetition runs every measurement in new processes, the two SDKs one after the other
(in alternating order); a row's ratio is the median over repetitions of the ratio within
each repetition. Before measuring, the packages are compiled to bytecode and a warm-up round
runs. Figures are printed, never asserted.
"""

from __future__ import annotations

import os
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import _paired as paired
from _common import HERE, OURS, SENTRY_SDK, sink_process

MiB = 1024 * 1024
MARKERS = paired.Markers("<!-- bench_compare:start -->", "<!-- bench_compare:end -->", keep_unmarked=False)

INIT_CODE = """\
import time
start = time.perf_counter()
import {module}
{module}.init(dsn={dsn!r})
elapsed = time.perf_counter() - start
import os
os.write(1, repr(elapsed).encode())
os._exit(0)
"""


@dataclass(frozen=True)
class Sizes:
    repeat: int
    caller_n: int
    caller_warmup: int
    cache_n: int
    import_runs: int
    throughput_n: int
    throughput_batch: int
    attachment: int
    pause: float  # seconds of sleep before each timed capture


DEFAULT = Sizes(
    repeat=5,
    caller_n=5000,
    caller_warmup=500,
    cache_n=2000,
    import_runs=15,
    throughput_n=1500,
    throughput_batch=250,
    attachment=5 * MiB,
    pause=0.0001,
)
QUICK = replace(
    DEFAULT,
    repeat=1,
    caller_n=300,
    caller_warmup=50,
    cache_n=100,
    import_runs=2,
    throughput_n=60,
    throughput_batch=30,
    attachment=1 * MiB,
)


@dataclass(frozen=True)
class Row:
    number: str  # the row's number (rows 1 and 2 have a p99 line and a median line)
    key: str
    title: str
    unit: str  # "us", "ms", "ceiling" or "payload"
    goal: str
    #: Whether the goal is met, from the median paired ratio and ours' median figure; None: no goal.
    met: Callable[[float | None, float], bool] | None


ROWS = [
    Row(
        "1",
        "p99_http",
        "caller-thread p99 per capture, while the worker delivers over HTTP to a receiver in another process",
        "us",
        f"≤ 0.1{paired.TIMES} sentry-sdk",
        lambda ratio, ours: ratio is not None and ratio <= 0.1,
    ),
    Row("1", "median_http", "caller-thread median per capture, while the worker delivers over HTTP", "us", "—", None),
    Row(
        "2",
        "p99_discard",
        "caller-thread p99 per capture, transport that accepts and discards envelopes",
        "us",
        f"≤ 0.1{paired.TIMES} sentry-sdk",
        lambda ratio, ours: ratio is not None and ratio <= 0.1,
    ),
    Row("2", "median_discard", "caller-thread median per capture, transport that discards", "us", "—", None),
    Row(
        "3",
        "import",
        "`import`, wall time minus a bare interpreter",
        "ms",
        f"≤ 0.2{paired.TIMES} sentry-sdk",
        lambda ratio, ours: ratio is not None and ratio <= 0.2,
    ),
    Row(
        "4",
        "import_init",
        "`import` + `init(dsn)` on the caller's thread",
        "ms",
        f"≤ 0.2{paired.TIMES} sentry-sdk",
        lambda ratio, ours: ratio is not None and ratio <= 0.2,
    ),
    Row(
        "5",
        "throughput",
        "sustained delivery over 1 keep-alive connection, fraction of the raw urllib3 ceiling",
        "ceiling",
        f"≥ 0.9{paired.TIMES} of the raw ceiling",
        lambda ratio, ours: ours >= 0.9,
    ),
    Row(
        "6",
        "rss_bytes",
        "peak RSS increase for one {attachment} attachment given as bytes",
        "payload",
        f"≤ 1.1{paired.TIMES} payload",
        lambda ratio, ours: ours <= 1.1,
    ),
    Row(
        "7",
        "rss_path",
        "same, attachment given as a path",
        "payload",
        f"≤ 0.1{paired.TIMES} payload",
        lambda ratio, ours: ours <= 0.1,
    ),
    Row(
        "8",
        "cache_median",
        "`capture_feedback` with `cache_dir`, median caller cost",
        "us",
        "≤ 50 µs",
        lambda ratio, ours: ours <= 50,
    ),
]


class CompareRunner(paired.Runner):
    """The runner of ``_measure.py``, which also times bare interpreters and ``import`` + ``init``."""

    def __init__(self, workdir: Path, port: int, verbose: bool) -> None:
        super().__init__(workdir, port, verbose, [str(HERE / "_measure.py")])

    def wall(self, code: str) -> float:
        """Wall time of ``python -S -c code``, from the start of the process to its end."""
        return self.run(["-c", code], code)[1]

    def init_time(self, side: str) -> float:
        """Seconds ``import`` + ``init(dsn)`` took inside a new interpreter."""
        code = INIT_CODE.format(module=paired.MODULES[side], dsn=f"http://public@127.0.0.1:{self.port}/1")
        return float(self.run(["-c", code], f"import and init ({side})")[0].stdout)


def run_repetition(runner: CompareRunner, sizes: Sizes, repetition: int, attachment_path: str) -> paired.Figures:
    figures: paired.Figures = {row.key: {} for row in ROWS}
    port = runner.port
    sides = paired.ordered(repetition)

    # 3. import: wall time of fresh interpreters, interleaved, minus the bare one's.
    walls: dict[str, list[float]] = {"bare": [], OURS: [], SENTRY_SDK: []}
    codes = {"bare": "pass", OURS: f"import {paired.MODULES[OURS]}", SENTRY_SDK: f"import {paired.MODULES[SENTRY_SDK]}"}
    order = ["bare", *sides]
    for i in range(sizes.import_runs):
        for key in order[i % 3 :] + order[: i % 3]:
            walls[key].append(runner.wall(codes[key]))
    bare = statistics.median(walls["bare"])
    for side in sides:
        figures["import"][side] = (statistics.median(walls[side]) - bare) * 1000

    # 4. import + init(dsn), timed inside the fresh interpreter.
    inits: dict[str, list[float]] = {side: [] for side in sides}
    for _ in range(sizes.import_runs):
        for side in sides:
            inits[side].append(runner.init_time(side))
    for side in sides:
        figures["import_init"][side] = statistics.median(inits[side]) * 1000

    # 1, 2. caller thread with the worker delivering over HTTP, then discarding.
    for key, sink in (("http", port), ("discard", None)):
        for side in sides:
            spec = {
                "kind": "caller",
                "side": side,
                "port": sink,
                "n": sizes.caller_n,
                "warmup": sizes.caller_warmup,
                "pause": sizes.pause,
            }
            data = runner.measure(spec)
            figures[f"p99_{key}"][side] = data["p99_us"]
            figures[f"median_{key}"][side] = data["median_us"]
            if "delivered_during" in data:
                runner.notes.setdefault(f"delivered_{side}", []).append(f"{data['delivered_during']}/{data['n']}")

    # 5. sustained delivery against the raw ceiling.
    for side in sides:
        spec = {
            "kind": "throughput",
            "side": side,
            "port": port,
            "n": sizes.throughput_n,
            "batch": sizes.throughput_batch,
        }
        data = runner.measure(spec)
        figures["throughput"][side] = data["fraction"]
        runner.notes.setdefault(f"throughput_{side}", []).append(
            f"{data['sdk_per_s']:.0f}/s of {data['raw_per_s']:.0f}/s, "
            f"{data['mean_body_bytes']:.0f} B/request, {data['new_connections']} new connection(s)"
        )

    # 6, 7. peak RSS for one attachment.
    for key, mode in (("rss_bytes", "bytes"), ("rss_path", "path")):
        for side in sides:
            spec = {
                "kind": "memory",
                "side": side,
                "port": port,
                "mode": mode,
                "size": sizes.attachment,
                "path": attachment_path,
            }
            data = runner.measure(spec)
            figures[key][side] = data["ratio"]
            runner.notes["rss_method"] = [data["method"]]

    # 8. capture_feedback with cache_dir (ours only).
    with tempfile.TemporaryDirectory(dir=runner.workdir) as cache_dir:
        spec = {
            "kind": "cache",
            "side": OURS,
            "port": port,
            "n": sizes.cache_n,
            "warmup": 100,
            "pause": sizes.pause,
            "cache_dir": cache_dir,
        }
        data = runner.measure(spec)
    figures["cache_median"][OURS] = data["median_us"]
    runner.notes.setdefault("cache_p99", []).append(fmt(data["p99_us"], "us"))
    return figures


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "us":
        return f"{value:.1f} µs" if value < 100 else f"{value:.0f} µs"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "ceiling":
        return f"{value:.2f}{paired.TIMES} ceiling"
    return f"{value:.2f}{paired.TIMES} payload"


def summarize(reps: list[paired.Figures], sizes: Sizes) -> list[dict[str, Any]]:
    summary = []
    attachment = f"{sizes.attachment / MiB:g} MiB"
    for row in ROWS:
        entry = paired.summary_entry(row.key, row.title.format(attachment=attachment), reps)
        entry["goal"] = row.goal
        entry["met"] = row.met(entry["ratio"], entry["ours"]) if row.met else None
        summary.append(entry)
    return summary


def markdown(summary: list[dict[str, Any]], info: dict[str, Any], notes: paired.Notes, command: str) -> str:
    sizes = info["sizes"]
    rows = {row.key: row for row in ROWS}

    def cells(entry: dict[str, Any]) -> paired.Cells:
        row = rows[entry["key"]]
        met = "—" if entry["met"] is None else ("met" if entry["met"] else "not met")
        return paired.Cells([row.number], [entry["goal"], met], [row.number], partial(fmt, unit=row.unit))

    detail = (
        f"rows 1, 2 and 8: {sizes['caller_n']} and {sizes['cache_n']} captures, "
        f"each after a {sizes['pause'] * 1e6:g} µs sleep"
    )
    lines = paired.tables(summary, info, command, detail, paired.Cells(["#"], ["goal", "met"], ["#"]), cells)

    def joined(key: str, separator: str = ", ") -> str:
        return paired.joined(notes, key, separator)

    lines += [
        "",
        "Also seen in the same run (per repetition):",
        "",
        f"- row 1, envelopes the receiver got during the timed captures: sentry-feedback {joined('delivered_ours')}; "
        f"sentry-sdk {joined('delivered_sentry_sdk')}",
        f"- row 5, sentry-feedback: {joined('throughput_ours', '; ')}",
        f"- row 5, sentry-sdk: {joined('throughput_sentry_sdk', '; ')}",
        f"- row 8, p99: {joined('cache_p99')}",
        f"- rows 6 and 7, peak RSS read from: {joined('rss_method')}",
        "",
        paired.machine_line(info, also=["urllib3"]),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    args = paired.options(
        __doc__,
        MARKERS,
        pause_help="sleep before each timed capture in rows 1, 2 and 8, in microseconds (default 100; 0: back to back)",
    ).parse_args()
    run = paired.start(args, MARKERS, DEFAULT, QUICK, "bench_compare.py")
    sizes = run.sizes

    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp, sink_process() as port:
        workdir = Path(tmp)
        runner = CompareRunner(workdir, port, args.verbose)
        runner.compile_bytecode()
        attachment_path = str(workdir / "screenshot.png")
        with open(attachment_path, "wb") as file:
            file.write(os.urandom(sizes.attachment))
        # Warm-up: every module either SDK loads is read (and, where no bytecode was cached
        # yet, compiled and cached) before anything is timed.
        for side in paired.SIDES:
            runner.init_time(side)
            runner.measure({"kind": "caller", "side": side, "port": port, "n": 50, "warmup": 10, "pause": 0})
        reps = paired.repetitions(
            sizes.repeat, lambda repetition: run_repetition(runner, sizes, repetition, attachment_path), args.verbose
        )

    run.finish(summarize(reps, sizes), reps, runner.notes, markdown)


if __name__ == "__main__":
    main()
