"""The driver shared by ``bench_compare.py`` and ``bench_spans.py``: sentry-feedback beside sentry-sdk.

Both scripts take the same options (:func:`options`: ``--repeat``, ``--quick``, ``--markdown``,
``--pause-us``, ``--json``, ``--verbose``), run every measurement in a new ``python -S`` process
over an import path holding only the two SDKs and their dependencies (:class:`Runner`), run
the two SDKs one after the other in alternating order (:func:`ordered`), pair their figures
per repetition (:func:`summary_entry`), and print Markdown tables (:func:`tables`) that
``--markdown`` writes between two marker comments of a page (:class:`Markers`). A script's
``main`` is :func:`options`, :func:`start`, its measurements, then :meth:`Run.finish`.
Standard library only; imports no SDK.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Generic, NamedTuple, Protocol, TypeVar

from _common import OURS, SENTRY_SDK

SIDES = (OURS, SENTRY_SDK)
DISTRIBUTIONS = {OURS: "sentry-feedback", SENTRY_SDK: "sentry-sdk"}
MODULES = {OURS: "sentry_feedback", SENTRY_SDK: "sentry_sdk"}
TIMES = "\N{MULTIPLICATION SIGN}"
EN_DASH = "\N{EN DASH}"
RATIO_HEAD = f"sentry-feedback / sentry-sdk: median (min{EN_DASH}max)"

#: One repetition's figures: row key -> side -> value.
Figures = dict[str, dict[str, float]]
#: What a run saw besides the figures: note key -> one text per repetition.
Notes = dict[str, list[str]]
#: A script's Markdown: (summary rows, machine, notes, command) -> the text.
Markdown = Callable[[list[dict[str, Any]], dict[str, Any], Notes, str], str]


class Sizes(Protocol):
    """A script's sizes: a frozen dataclass with at least these two fields."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def repeat(self) -> int: ...

    @property
    def pause(self) -> float: ...  # seconds of sleep before each timed operation


SizesT = TypeVar("SizesT", bound=Sizes)


# -- options, start and finish ------------------------------------------------------------------------


@dataclass(frozen=True)
class Markers:
    """The two comments of a page between which ``--markdown`` writes the table.

    ``keep_unmarked``: an existing page without them is left alone (the script stops before
    measuring); otherwise such a page is overwritten by the table.
    """

    start: str
    end: str
    keep_unmarked: bool

    def help(self) -> str:
        if self.keep_unmarked:
            return f"write the table into PATH, between {self.start} and {self.end} (a new file: the whole file)"
        return f"write the table to PATH (between {self.start} and {self.end} when PATH has them)"

    def find(self, text: str) -> tuple[int, int] | None:
        """Where the start and end markers are in ``text``, if both are, in that order."""
        start = text.find(self.start)
        end = text.find(self.end, start)
        return (start, end) if 0 <= start < end else None

    def check(self, path: Path) -> None:
        """Stop (before measuring) when ``path`` is a page to keep that has no markers."""
        if self.keep_unmarked and path.exists() and self.find(path.read_text(encoding="utf-8")) is None:
            sys.exit(f"{path} exists without {self.start} and {self.end}; not overwritten")

    def write(self, path: Path, table: str) -> None:
        """Write the table between the markers of an existing page, or as the whole file."""
        if path.exists():
            text = path.read_text(encoding="utf-8")
            found = self.find(text)
            if found is not None:
                start, end = found
                path.write_text(text[: start + len(self.start)] + "\n\n" + table + "\n" + text[end:], encoding="utf-8")
                return
            self.check(path)
        path.write_text(table, encoding="utf-8")


def options(description: str | None, markers: Markers, pause_help: str) -> argparse.ArgumentParser:
    """The options both scripts take."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, help="repetitions (default 5; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="few iterations: a smoke test, not figures to quote")
    parser.add_argument("--markdown", type=Path, metavar="PATH", help=markers.help())
    parser.add_argument("--pause-us", type=float, help=pause_help)
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every figure to PATH as JSON")
    parser.add_argument("--verbose", action="store_true", help="print each measurement as it comes")
    return parser


@dataclass(frozen=True)
class Run(Generic[SizesT]):
    """One run of a script: its options, its sizes, the command to quote, the machine, when it started."""

    args: argparse.Namespace
    markers: Markers
    sizes: SizesT
    command: str
    machine: dict[str, Any]
    started: float = field(default_factory=time.perf_counter)

    def finish(self, rows: list[dict[str, Any]], reps: list[Figures], notes: Notes, markdown: Markdown) -> None:
        """Print the table and the time the run took; write it (``--markdown``) and every figure (``--json``)."""
        table = markdown(rows, self.machine, notes, self.command)
        print(table)
        print(f"({time.perf_counter() - self.started:.0f} s)", file=sys.stderr)
        if self.args.markdown:
            self.markers.write(self.args.markdown, table)
        if self.args.json:
            self.args.json.write_text(
                json.dumps({"machine": self.machine, "rows": rows, "repetitions": reps, "notes": notes}, indent=2),
                encoding="utf-8",
            )


def start(args: argparse.Namespace, markers: Markers, default: SizesT, quick: SizesT, script: str) -> Run[SizesT]:
    """The run the options ask for (sizes, command, machine); exits when it cannot go on."""
    if args.markdown:
        markers.check(args.markdown)
    sizes = quick if args.quick else default
    if args.repeat is not None:
        sizes = replace(sizes, repeat=max(1, args.repeat))
    if args.pause_us is not None:
        sizes = replace(sizes, pause=max(0.0, args.pause_us) / 1e6)
    for name in DISTRIBUTIONS.values():
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            sys.exit(f"{name} is not installed (pip install sentry-sdk)")
    command = shlex.join(["python", f"benchmarks/{script}", *sys.argv[1:]])
    return Run(args, markers, sizes, command, machine_info(sizes))


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


# -- the measured processes ---------------------------------------------------------------------------


class Runner:
    """Starts the measured processes: ``python -S`` over an import path holding only the SDKs and their dependencies.

    A measurement is ``python -S *measure_command '<spec as JSON>'``, which prints one JSON line.
    """

    def __init__(
        self, workdir: Path, port: int, verbose: bool, measure_command: Sequence[str], kind_width: int = 10
    ) -> None:
        self.workdir = workdir
        self.port = port
        self.verbose = verbose
        self.measure_command = list(measure_command)
        self.kind_width = kind_width
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
        self.notes: Notes = {}

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
        """One measurement in a new process."""
        result, _ = self.run([*self.measure_command, json.dumps(spec)], f"{spec['kind']} ({spec['side']})")
        data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        if self.verbose:
            print(f"    {spec['kind']:<{self.kind_width}} {spec['side']:<10} {data}", file=sys.stderr)
        return data


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
        spec = importlib.util.find_spec(dist.metadata["Name"].replace("-", "_"))
        if spec is not None and spec.submodule_search_locations:
            paths.append(Path(next(iter(spec.submodule_search_locations))))
        elif spec is not None and spec.origin:
            paths.append(Path(spec.origin))
    return paths


# -- repetitions and figures --------------------------------------------------------------------------


def ordered(repetition: int) -> tuple[str, str]:
    """The two sides in the order a repetition runs them: alternating, sentry-feedback first in the first."""
    return SIDES if repetition % 2 == 0 else (SIDES[1], SIDES[0])


def repetitions(count: int, run_one: Callable[[int], Figures], timed: bool = False) -> list[Figures]:
    """Run ``count`` repetitions, saying on stderr which one is running (and, ``timed``, how long it took)."""
    reps = []
    for repetition in range(count):
        print(f"repetition {repetition + 1}/{count} ...", file=sys.stderr, flush=True)
        rep_started = time.perf_counter()
        reps.append(run_one(repetition))
        if timed:
            print(f"  ({time.perf_counter() - rep_started:.0f} s)", file=sys.stderr)
    return reps


def summary_entry(key: str, title: str, reps: list[Figures], ratio: bool = True) -> dict[str, Any]:
    """One row over the repetitions: each side's median and figures, and the ratios paired per repetition.

    ``ratio=False``: a ratio would mean nothing for this row; none is given.
    """
    ours = [rep[key][OURS] for rep in reps]
    sdk = [rep[key][SENTRY_SDK] for rep in reps if SENTRY_SDK in rep[key]]
    ratios = [rep[key][OURS] / rep[key][SENTRY_SDK] for rep in reps if rep[key].get(SENTRY_SDK)] if ratio else []
    return {
        "key": key,
        "title": title,
        "ours": statistics.median(ours),
        "ours_all": ours,
        "sentry_sdk": statistics.median(sdk) if sdk else None,
        "sentry_sdk_all": sdk,
        "ratio": statistics.median(ratios) if ratios else None,
        "ratios": ratios,
    }


# -- the Markdown tables ------------------------------------------------------------------------------


class Cells(NamedTuple):
    """What a script puts in a row's cells besides the title, the figures and the ratio."""

    lead: Sequence[str]  # the summary table's cells before the title
    tail: Sequence[str]  # the summary table's cells after the ratio
    rep_lead: Sequence[str]  # the repetitions table's cells before the figures
    fmt: Callable[[float | None], str] = str  # a figure of this row, with its unit (not used in the heads)


def tables(
    summary: list[dict[str, Any]],
    info: dict[str, Any],
    command: str,
    detail: str,
    heads: Cells,
    cells: Callable[[dict[str, Any]], Cells],
) -> list[str]:
    """The line that says what ran (``detail``: the sizes), the summary table and the table of each repetition.

    ``heads``: the column heads of the cells that ``cells`` gives for each summary entry.
    """
    row_cells = [cells(entry) for entry in summary]
    lead = [*heads.lead, "metric", f"sentry-sdk {info['versions']['sentry-sdk']}", "sentry-feedback", RATIO_HEAD]
    lines = [heading(info, command, detail), "", table_row(*lead, *heads.tail), table_rule(len(lead) + len(heads.tail))]
    for entry, row in zip(summary, row_cells, strict=True):
        figures = [row.fmt(entry["sentry_sdk"]), row.fmt(entry["ours"]), ratio_cell(entry)]
        lines.append(table_row(*row.lead, entry["title"], *figures, *row.tail))
    reps = len(summary[0]["ours_all"])
    lines += [
        "",
        "Each repetition, sentry-feedback / sentry-sdk:",
        "",
        table_row(*heads.rep_lead, *(f"repetition {i + 1}" for i in range(reps))),
        table_rule(len(heads.rep_lead) + reps),
    ]
    for entry, row in zip(summary, row_cells, strict=True):
        lines.append(table_row(*row.rep_lead, *paired_cells(entry, row.fmt)))
    return lines


def table_row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def table_rule(columns: int) -> str:
    return "|" + "---|" * columns


def heading(info: dict[str, Any], command: str, detail: str) -> str:
    """The line above the tables: versions, repetitions, date, the command and ``detail`` (the sizes)."""
    versions = info["versions"]
    return (
        f"sentry-feedback {versions['sentry-feedback']} beside sentry-sdk {versions['sentry-sdk']}, "
        f"{info['sizes']['repeat']} repetition(s), {info['date']}: `{command}` ({detail})."
    )


def ratio_cell(entry: dict[str, Any]) -> str:
    """The median paired ratio and its range, or a dash."""
    ratios = entry["ratios"]
    return f"{entry['ratio']:.2f}{TIMES} ({min(ratios):.2f}{EN_DASH}{max(ratios):.2f})" if ratios else "—"


def paired_cells(entry: dict[str, Any], fmt: Callable[[float | None], str]) -> list[str]:
    """Each repetition's ``ours / sentry-sdk`` (ours alone where sentry-sdk has no figure)."""
    theirs_all = entry["sentry_sdk_all"] or [None] * len(entry["ours_all"])
    return [
        fmt(ours) if theirs is None else f"{fmt(ours)} / {fmt(theirs)}"
        for ours, theirs in zip(entry["ours_all"], theirs_all, strict=True)
    ]


def joined(notes: Notes, key: str, separator: str = ", ") -> str:
    return separator.join(notes.get(key, [])) or "—"


def machine_line(info: dict[str, Any], also: Sequence[str] = ()) -> str:
    """The machine, the interpreter and the versions of the two SDKs (and of the distributions ``also``)."""
    versions = info["versions"]
    load = info["load_average"]
    load_text = f", load average {load[0]:.2f} at the start" if load else ""
    packages = [f"{name} {versions[name]}" for name in ("sentry-feedback", "sentry-sdk", *also)]
    return (
        f"Machine: {info['cpu']}, {info['cpu_count']} CPUs ({info['usable_cpus']} usable){load_text}; "
        f"{info['system']}; {info['python']}; {', '.join(packages)}."
    )
