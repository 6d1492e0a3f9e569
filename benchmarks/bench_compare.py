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

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import HERE, sink_process

OURS = "ours"
SENTRY_SDK = "sentry_sdk"
SIDES = (OURS, SENTRY_SDK)
DISTRIBUTIONS = {OURS: "sentry-feedback", SENTRY_SDK: "sentry-sdk"}
MODULES = {OURS: "sentry_feedback", SENTRY_SDK: "sentry_sdk"}
MiB = 1024 * 1024
START_MARK = "<!-- bench_compare:start -->"
END_MARK = "<!-- bench_compare:end -->"
TIMES = "\N{MULTIPLICATION SIGN}"
EN_DASH = "\N{EN DASH}"

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
QUICK = Sizes(
    repeat=1,
    caller_n=300,
    caller_warmup=50,
    cache_n=100,
    import_runs=2,
    throughput_n=60,
    throughput_batch=30,
    attachment=1 * MiB,
    pause=0.0001,
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
        f"≤ 0.1{TIMES} sentry-sdk",
        lambda ratio, ours: ratio is not None and ratio <= 0.1,
    ),
    Row("1", "median_http", "caller-thread median per capture, while the worker delivers over HTTP", "us", "—", None),
    Row(
        "2",
        "p99_discard",
        "caller-thread p99 per capture, transport that accepts and discards envelopes",
        "us",
        f"≤ 0.1{TIMES} sentry-sdk",
        lambda ratio, ours: ratio is not None and ratio <= 0.1,
    ),
    Row("2", "median_discard", "caller-thread median per capture, transport that discards", "us", "—", None),
    Row(
        "3",
        "import",
        "`import`, wall time minus a bare interpreter",
        "ms",
        f"≤ 0.2{TIMES} sentry-sdk",
        lambda ratio, ours: ratio is not None and ratio <= 0.2,
    ),
    Row(
        "4",
        "import_init",
        "`import` + `init(dsn)` on the caller's thread",
        "ms",
        f"≤ 0.2{TIMES} sentry-sdk",
        lambda ratio, ours: ratio is not None and ratio <= 0.2,
    ),
    Row(
        "5",
        "throughput",
        "sustained delivery over 1 keep-alive connection, fraction of the raw urllib3 ceiling",
        "ceiling",
        f"≥ 0.9{TIMES} of the raw ceiling",
        lambda ratio, ours: ours >= 0.9,
    ),
    Row(
        "6",
        "rss_bytes",
        "peak RSS increase for one {attachment} attachment given as bytes",
        "payload",
        f"≤ 1.1{TIMES} payload",
        lambda ratio, ours: ours <= 1.1,
    ),
    Row(
        "7",
        "rss_path",
        "same, attachment given as a path",
        "payload",
        f"≤ 0.1{TIMES} payload",
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

#: One repetition's figures: row key -> side -> value.
Figures = dict[str, dict[str, float]]


class Runner:
    """Starts the measured processes: ``python -S`` over an import path holding only the SDKs and their dependencies."""

    def __init__(self, workdir: Path, port: int, verbose: bool) -> None:
        self.workdir = workdir
        self.port = port
        self.verbose = verbose
        self.python = sys.executable
        self.path_dir = workdir / "path"
        self.path_dir.mkdir()
        self.linked = link_distributions(self.path_dir, [DISTRIBUTIONS[side] for side in SIDES])
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SENTRY_", "PYTHON")) or k in ("PYTHONHASHSEED", "PYTHONUNBUFFERED")
        }
        self.env["PYTHONPATH"] = str(self.path_dir)
        self.notes: dict[str, list[str]] = {}

    def compile_bytecode(self) -> None:
        """Compile every linked package to bytecode (``PYTHONDONTWRITEBYTECODE`` would forbid it on import)."""
        targets = [str(p.resolve()) for p in self.linked if not p.name.endswith((".dist-info", ".egg-info"))]
        subprocess.run(
            [self.python, "-m", "compileall", "-q", *targets], env=self.env, check=True, stdout=subprocess.DEVNULL
        )

    def run(self, args: list[str], what: str, attempts: int = 2) -> tuple[subprocess.CompletedProcess[str], float]:
        """Run a measured process and time it; a failed one is tried again once (the package may be mid-edit)."""
        for attempt in range(attempts):
            start = time.perf_counter()
            result = subprocess.run(
                [self.python, "-S", *args], env=self.env, capture_output=True, text=True, timeout=600
            )
            elapsed = time.perf_counter() - start
            if result.returncode == 0:
                return result, elapsed
            message = f"{what} failed:\n{result.stderr}"
            if attempt + 1 == attempts:
                raise RuntimeError(message)
            print(f"{message}\ntrying again in 5 s", file=sys.stderr)
            time.sleep(5)
        raise AssertionError("unreachable")

    def measure(self, spec: dict[str, Any]) -> dict[str, Any]:
        """One measurement of ``_measure.py`` in a new process."""
        result, _ = self.run([str(HERE / "_measure.py"), json.dumps(spec)], f"{spec['kind']} ({spec['side']})")
        data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        if self.verbose:
            print(f"    {spec['kind']:<10} {spec['side']:<10} {data}", file=sys.stderr)
        return data

    def wall(self, code: str) -> float:
        """Wall time of ``python -S -c code``, from the start of the process to its end."""
        return self.run(["-c", code], code)[1]

    def init_time(self, side: str) -> float:
        """Seconds ``import`` + ``init(dsn)`` took inside a new interpreter."""
        code = INIT_CODE.format(module=MODULES[side], dsn=f"http://public@127.0.0.1:{self.port}/1")
        return float(self.run(["-c", code], f"import and init ({side})")[0].stdout)


def link_distributions(target: Path, names: Iterable[str]) -> list[Path]:
    """Link the top-level packages and metadata of ``names`` and their dependencies into ``target``."""
    linked: list[Path] = []
    seen: set[str] = set()
    pending = [normalize(name) for name in names]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        for requirement in dist.requires or []:
            if needed(requirement):
                pending.append(normalize(re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0]))
        for source in top_level_paths(dist):
            link = target / source.name
            if not link.exists():
                link.symlink_to(source, target_is_directory=source.is_dir())
                linked.append(link)
    return linked


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def needed(requirement: str) -> bool:
    """Whether a ``Requires-Dist`` applies here (never for an extra)."""
    if ";" not in requirement:
        return True
    marker = requirement.split(";", 1)[1]
    if "extra" in marker:
        return False
    try:
        from packaging.markers import Marker
    except ImportError:
        return True
    return Marker(marker).evaluate()


def top_level_paths(dist: importlib.metadata.Distribution) -> list[Path]:
    """The package directories, modules and metadata directory a distribution installed."""
    tops: set[str] = set()
    for file in dist.files or []:
        parts = file.parts
        if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith(".pth"):
            continue
        tops.add(parts[0])
    paths = [Path(str(dist.locate_file(top))) for top in sorted(tops)]
    paths = [p for p in paths if p.exists()]
    if not any(not p.name.endswith(".dist-info") for p in paths):  # an editable install: find the package
        import importlib.util

        spec = importlib.util.find_spec(dist.metadata["Name"].replace("-", "_"))
        if spec is not None and spec.submodule_search_locations:
            paths.append(Path(next(iter(spec.submodule_search_locations))))
        elif spec is not None and spec.origin:
            paths.append(Path(spec.origin))
    return paths


def ordered(repetition: int) -> tuple[str, str]:
    return SIDES if repetition % 2 == 0 else (SIDES[1], SIDES[0])


def run_repetition(runner: Runner, sizes: Sizes, repetition: int, attachment_path: str) -> Figures:
    figures: Figures = {row.key: {} for row in ROWS}
    port = runner.port
    sides = ordered(repetition)

    # 3. import: wall time of fresh interpreters, interleaved, minus the bare one's.
    walls: dict[str, list[float]] = {"bare": [], OURS: [], SENTRY_SDK: []}
    codes = {"bare": "pass", OURS: f"import {MODULES[OURS]}", SENTRY_SDK: f"import {MODULES[SENTRY_SDK]}"}
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
        return f"{value:.2f}{TIMES} ceiling"
    return f"{value:.2f}{TIMES} payload"


def summarize(reps: list[Figures], sizes: Sizes) -> list[dict[str, Any]]:
    summary = []
    attachment = f"{sizes.attachment / MiB:g} MiB"
    for row in ROWS:
        ours = [rep[row.key][OURS] for rep in reps]
        sdk = [rep[row.key][SENTRY_SDK] for rep in reps if SENTRY_SDK in rep[row.key]]
        ratios = [rep[row.key][OURS] / rep[row.key][SENTRY_SDK] for rep in reps if rep[row.key].get(SENTRY_SDK)]
        entry: dict[str, Any] = {
            "key": row.key,
            "title": row.title.format(attachment=attachment),
            "ours": statistics.median(ours),
            "ours_all": ours,
            "sentry_sdk": statistics.median(sdk) if sdk else None,
            "sentry_sdk_all": sdk,
            "ratio": statistics.median(ratios) if ratios else None,
            "ratios": ratios,
            "goal": row.goal,
        }
        entry["met"] = row.met(entry["ratio"], entry["ours"]) if row.met else None
        summary.append(entry)
    return summary


def machine_info(sizes: Sizes) -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        model = platform.processor()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = {name: importlib.metadata.version(name) for name in ("sentry-feedback", "sentry-sdk", "urllib3")}
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": model or "unknown",
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "system": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "versions": versions,
        "sizes": sizes.__dict__,
    }


def markdown(summary: list[dict[str, Any]], info: dict[str, Any], notes: dict[str, list[str]], command: str) -> str:
    versions = info["versions"]
    rows = {row.key: row for row in ROWS}
    sdk = f"sentry-sdk {versions['sentry-sdk']}"
    ratio_head = f"sentry-feedback / sentry-sdk: median (min{EN_DASH}max)"
    lines = [
        f"sentry-feedback {versions['sentry-feedback']} beside {sdk}, {info['sizes']['repeat']} repetition(s), "
        f"{info['date']}: `{command}` (rows 1, 2 and 8: {info['sizes']['caller_n']} and "
        f"{info['sizes']['cache_n']} captures, each after a {info['sizes']['pause'] * 1e6:g} µs sleep).",
        "",
        f"| # | metric | {sdk} | sentry-feedback | {ratio_head} | goal | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for entry in summary:
        row = rows[entry["key"]]
        ratios = entry["ratios"]
        ratio = f"{entry['ratio']:.2f}{TIMES} ({min(ratios):.2f}{EN_DASH}{max(ratios):.2f})" if ratios else "—"
        met = "—" if entry["met"] is None else ("met" if entry["met"] else "not met")
        lines.append(
            f"| {row.number} | {entry['title']} | {fmt(entry['sentry_sdk'], row.unit)} | "
            f"{fmt(entry['ours'], row.unit)} | {ratio} | {entry['goal']} | {met} |"
        )
    reps = len(summary[0]["ours_all"])
    lines += [
        "",
        "Each repetition, sentry-feedback / sentry-sdk:",
        "",
        "| # | " + " | ".join(f"repetition {i + 1}" for i in range(reps)) + " |",
        "|---|" + "---|" * reps,
    ]
    for entry in summary:
        row = rows[entry["key"]]
        sdk_all = entry["sentry_sdk_all"] or [None] * reps
        cells = [
            fmt(ours, row.unit) if theirs is None else f"{fmt(ours, row.unit)} / {fmt(theirs, row.unit)}"
            for ours, theirs in zip(entry["ours_all"], sdk_all, strict=True)
        ]
        lines.append(f"| {row.number} | " + " | ".join(cells) + " |")

    def joined(key: str, separator: str = ", ") -> str:
        return separator.join(notes.get(key, [])) or "—"

    load = info["load_average"]
    load_text = f", load average {load[0]:.2f} at the start" if load else ""
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
        f"Machine: {info['cpu']}, {info['cpu_count']} CPUs ({info['usable_cpus']} usable){load_text}; "
        f"{info['system']}; {info['python']}; sentry-feedback {versions['sentry-feedback']}, {sdk}, "
        f"urllib3 {versions['urllib3']}.",
    ]
    return "\n".join(lines) + "\n"


def write_markdown(path: Path, table: str) -> None:
    """Write the table between the markers of an existing page, or as the whole file."""
    if path.exists():
        text = path.read_text(encoding="utf-8")
        start = text.find(START_MARK)
        end = text.find(END_MARK, start)
        if 0 <= start < end:
            path.write_text(
                text[: start + len(START_MARK)] + "\n\n" + table + "\n" + text[end:],
                encoding="utf-8",
            )
            return
    path.write_text(table, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, help="repetitions (default 5; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="few iterations: a smoke test, not figures to quote")
    parser.add_argument(
        "--markdown",
        type=Path,
        metavar="PATH",
        help=f"write the table to PATH (between {START_MARK} and {END_MARK} when PATH has them)",
    )
    parser.add_argument(
        "--pause-us",
        type=float,
        help="sleep before each timed capture in rows 1, 2 and 8, in microseconds (default 100; 0: back to back)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every figure to PATH as JSON")
    parser.add_argument("--verbose", action="store_true", help="print each measurement as it comes")
    args = parser.parse_args()
    sizes = QUICK if args.quick else DEFAULT
    if args.repeat is not None:
        sizes = Sizes(**{**sizes.__dict__, "repeat": max(1, args.repeat)})
    if args.pause_us is not None:
        sizes = Sizes(**{**sizes.__dict__, "pause": max(0.0, args.pause_us) / 1e6})
    for name in DISTRIBUTIONS.values():
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            sys.exit(f"{name} is not installed (pip install sentry-sdk)")
    command = shlex.join(["python", "benchmarks/bench_compare.py", *sys.argv[1:]])
    info = machine_info(sizes)
    started = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp, sink_process() as port:
        workdir = Path(tmp)
        runner = Runner(workdir, port, args.verbose)
        runner.compile_bytecode()
        attachment_path = str(workdir / "screenshot.png")
        with open(attachment_path, "wb") as file:
            file.write(os.urandom(sizes.attachment))
        # Warm-up: every module either SDK loads is read (and, where no bytecode was cached
        # yet, compiled and cached) before anything is timed.
        for side in SIDES:
            runner.init_time(side)
            runner.measure({"kind": "caller", "side": side, "port": port, "n": 50, "warmup": 10, "pause": 0})
        reps = []
        for repetition in range(sizes.repeat):
            print(f"repetition {repetition + 1}/{sizes.repeat} ...", file=sys.stderr, flush=True)
            rep_started = time.perf_counter()
            reps.append(run_repetition(runner, sizes, repetition, attachment_path))
            if args.verbose:
                print(f"  ({time.perf_counter() - rep_started:.0f} s)", file=sys.stderr)
        notes = runner.notes

    summary = summarize(reps, sizes)
    table = markdown(summary, info, notes, command)
    print(table)
    print(f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    if args.markdown:
        write_markdown(args.markdown, table)
    if args.json:
        args.json.write_text(
            json.dumps({"machine": info, "rows": summary, "repetitions": reps, "notes": notes}, indent=2),
            encoding="utf-8",
        )


if __name__ == "__main__":
    main()
