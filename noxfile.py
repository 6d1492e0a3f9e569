"""Developer sessions: ``nox -s tests lint typecheck docs bench mutation coverage``."""

from __future__ import annotations

import fnmatch
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the test suite."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff")
    session.run("ruff", "check", "src", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-e", ".[test]")
    session.run("mypy", "--strict", "src")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site (strict: broken links fail)."""
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict")


@nox.session
def fuzz(session: nox.Session) -> None:
    """The property-based suite with many random examples (HYPOTHESIS_PROFILE=long)."""
    session.install("-e", ".[test]")
    session.run("pytest", "tests/hardening/test_fuzz.py", *session.posargs, env={"HYPOTHESIS_PROFILE": "long"})


@nox.session
def bench(session: nox.Session) -> None:
    """Every row of docs/performance.md, beside sentry-sdk 2.75.0 (--markdown docs/performance.md refreshes it)."""
    session.install("-e", ".[bench]")
    session.run("python", "benchmarks/bench_compare.py", *session.posargs)
    session.run("python", "benchmarks/bench_spans.py", *session.posargs)


@dataclass(frozen=True)
class MutationTarget:
    """A module under mutation testing: its file, the tests that cover it, and what of it is in scope."""

    source: str
    tests: tuple[str, ...]
    #: Globs of mutant names (``module.x_function*``, ``module.xǁClassǁmethod*``): only these
    #: functions are mutated and counted; empty: the whole file.
    only: tuple[str, ...] = ()
    #: Regular expressions of source lines mutmut must leave alone (each with the reason beside it).
    do_not_mutate: tuple[str, ...] = ()


_DISPATCH = "sentry_feedback._dispatch."
#: The dispatcher's outcome handling: what a send's answer does to the envelope, its counts and the cache.
_DISPATCH_OUTCOMES = (
    "_send",
    "_outcome",
    "_network_failure",
    "_failed",
    "_restore_carried_reports",
    "_retry_send",
    "_drop_rate_limited",
    "_take_report",
    "_drain_step",
    "_rate_limit_pause",
)

#: Modules under mutation testing; each run mutates one file and runs only the tests that cover it.
MUTATION_MODULES: dict[str, MutationTarget] = {
    "ratelimit": MutationTarget("src/sentry_feedback/_ratelimit.py", ("tests/test_ratelimit.py",)),
    "envelope": MutationTarget("src/sentry_feedback/_envelope.py", ("tests/test_envelope.py",)),
    "client_reports": MutationTarget("src/sentry_feedback/_client_reports.py", ("tests/test_client_reports.py",)),
    "feedback": MutationTarget("src/sentry_feedback/_feedback.py", ("tests/test_feedback_validation.py",)),
    "journal": MutationTarget("src/sentry_feedback/_journal.py", ("tests/test_journal.py",)),
    "cache": MutationTarget(
        "src/sentry_feedback/_cache.py",
        ("tests/test_cache.py", "tests/test_journal.py", "tests/test_dispatch_outcomes.py"),
        # CachedEnvelope is a frozen record whose __init__ is checked against its fields: a
        # mutmut trampoline there breaks the import, so no mutant of these lines can run.
        do_not_mutate=(r'object\.__setattr__\(self, "(path|free_path)", (path|free_path)\)',),
    ),
    "dispatch": MutationTarget(
        "src/sentry_feedback/_dispatch.py",
        ("tests/test_dispatch_outcomes.py",),
        only=(
            f"{_DISPATCH}x_record_dropped_items__mutmut_*",
            *(f"{_DISPATCH}xǁDispatcherǁ{name}__mutmut_*" for name in _DISPATCH_OUTCOMES),
        ),
    ),
    "query": MutationTarget(
        "src/sentry_feedback/server/_query.py", ("tests/server/test_query.py", "tests/server/test_search.py")
    ),
    "search": MutationTarget("src/sentry_feedback/server/_search.py", ("tests/server/test_search.py",)),
}
#: The share of mutants each module's tests must kill.
MUTATION_MIN_KILL_RATE = 0.90
#: What a run copies of the project (mutmut reads its settings from the copy's pyproject.toml).
MUTATION_COPY = ("src", "tests", "pyproject.toml")
#: The statuses ``mutmut results --all true`` reports, in the order of the summary's columns.
MUTATION_STATUSES = ("killed", "survived", "timeout", "suspicious", "no tests", "segfault", "skipped")


def _mutation_counts(results: str, only: tuple[str, ...]) -> dict[str, int]:
    """Count the mutants of ``mutmut results --all true`` by status, those matching ``only`` if given."""
    counts = dict.fromkeys(MUTATION_STATUSES, 0)
    for line in results.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if not sep or status == "not checked":
            continue
        if only and not any(fnmatch.fnmatchcase(name, pattern) for pattern in only):
            continue
        counts[status] = counts.get(status, 0) + 1
    return counts


@nox.session
def mutation(session: nox.Session) -> None:
    """Mutation testing with mutmut: ``nox -s mutation -- [name ...]`` (names from MUTATION_MODULES; default all).

    Each module is mutated in a copy of the project; a module fails under MUTATION_MIN_KILL_RATE
    killed (a timeout counts as not killed).
    """
    names = session.posargs or list(MUTATION_MODULES)
    unknown = [name for name in names if name not in MUTATION_MODULES]
    if unknown:
        session.error(f"unknown module(s) {', '.join(unknown)}; known: {', '.join(MUTATION_MODULES)}")
    session.install("-e", ".[test]", "mutmut==3.8.1")
    root = Path(__file__).resolve().parent
    rows: list[tuple[str, dict[str, int], float]] = []
    for name in names:
        target = MUTATION_MODULES[name]
        with tempfile.TemporaryDirectory(prefix=f"mutation-{name}-") as tmp:
            work = Path(tmp)
            for entry in MUTATION_COPY:
                if (root / entry).is_dir():
                    shutil.copytree(root / entry, work / entry, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(root / entry, work / entry)
            settings: dict[str, object] = {
                "source_paths": ["src/"],
                "only_mutate": [target.source],
                "pytest_add_cli_args_test_selection": list(target.tests),
                "pytest_add_cli_args": ["-p", "no:cacheprovider"],
                "use_git_change_detection": False,
            }
            if target.do_not_mutate:
                settings["do_not_mutate_patterns"] = list(target.do_not_mutate)
            if "[tool.mutmut]" in (work / "pyproject.toml").read_text(encoding="utf-8"):
                session.error("pyproject.toml has a [tool.mutmut] section: this session writes its own")
            with (work / "pyproject.toml").open("a", encoding="utf-8") as fh:
                fh.write("\n[tool.mutmut]\n")
                fh.writelines(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())
            session.log(f"mutation: {name}: {target.source} against {' '.join(target.tests)}")
            with session.chdir(work):
                start = time.monotonic()
                session.run("mutmut", "run", *target.only)
                elapsed = time.monotonic() - start
                session.run("mutmut", "results")  # the survivors, for the log
                results = session.run("mutmut", "results", "--all", "true", silent=True)
        rows.append((name, _mutation_counts(str(results), target.only), elapsed))
    columns = "".join(f" {status:>10}" for status in MUTATION_STATUSES)
    lines = [f"{'module':<16} {'total':>6}{columns}"]
    below = []
    for name, counts, elapsed in rows:
        total = sum(counts.values())
        rate = counts["killed"] / total if total else 1.0
        if rate < MUTATION_MIN_KILL_RATE:
            below.append(name)
        cells = "".join(f" {counts[status]:>10}" for status in MUTATION_STATUSES)
        lines.append(f"{name:<16} {total:>6}{cells}  {rate:7.1%} killed in {elapsed:.0f} s")
    session.log("mutation summary:\n" + "\n".join(lines))
    if below:
        session.error(f"kill rate below {MUTATION_MIN_KILL_RATE:.0%}: {', '.join(below)}")


#: The least line coverage any module of src/ may have (``nox -s coverage``).
COVERAGE_MIN_PERCENT = 85.0


@nox.session
def coverage(session: nox.Session) -> None:
    """The test suite under coverage, Python subprocesses and forked children included (``[tool.coverage]`` in
    pyproject.toml); prints the table and fails when a module of src/ is under COVERAGE_MIN_PERCENT."""
    session.install("-e", ".[test]", "pytest-cov>=7", "coverage>=7.10")
    session.run("pytest", "--cov", "--cov-report=term-missing", *session.posargs)
    report = Path(session.create_tmp()) / "coverage.json"
    session.run("coverage", "json", "-q", "-o", str(report))
    files = json.loads(report.read_text(encoding="utf-8"))["files"]
    low = {
        name: data["summary"]["percent_covered"]
        for name, data in files.items()
        if data["summary"]["percent_covered"] < COVERAGE_MIN_PERCENT
    }
    for name, percent in sorted(low.items()):
        session.log(f"{name}: {percent:.1f} %")
    if low:
        session.error(f"{len(low)} module(s) under {COVERAGE_MIN_PERCENT:.0f} % line coverage")
