"""Developer sessions: ``nox -s tests lint typecheck docs bench mutation coverage``."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
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


#: Modules under mutation testing: short name -> (the source file, the test files that cover it).
#: Each one's run mutates that file alone and runs only those tests.
MUTATION_MODULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "ratelimit": ("src/sentry_feedback/_ratelimit.py", ("tests/test_ratelimit.py",)),
    "envelope": ("src/sentry_feedback/_envelope.py", ("tests/test_envelope.py",)),
    "client_reports": ("src/sentry_feedback/_client_reports.py", ("tests/test_client_reports.py",)),
    "feedback": ("src/sentry_feedback/_feedback.py", ("tests/test_feedback_validation.py",)),
}
#: The share of mutants each module's tests must kill.
MUTATION_MIN_KILL_RATE = 0.90
#: What a run copies of the project (mutmut reads its settings from the copy's pyproject.toml).
MUTATION_COPY = ("src", "tests", "pyproject.toml")


@nox.session
def mutation(session: nox.Session) -> None:
    """Mutation testing with mutmut: ``nox -s mutation -- [name ...]`` (names from MUTATION_MODULES; default all)."""
    names = session.posargs or list(MUTATION_MODULES)
    unknown = [name for name in names if name not in MUTATION_MODULES]
    if unknown:
        session.error(f"unknown module(s) {', '.join(unknown)}; known: {', '.join(MUTATION_MODULES)}")
    session.install("-e", ".[test]", "mutmut==3.8.1")
    root = Path(__file__).resolve().parent
    rows: list[tuple[str, dict[str, int], float]] = []
    for name in names:
        source, tests = MUTATION_MODULES[name]
        with tempfile.TemporaryDirectory(prefix=f"mutation-{name}-") as tmp:
            work = Path(tmp)
            for entry in MUTATION_COPY:
                if (root / entry).is_dir():
                    shutil.copytree(root / entry, work / entry, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(root / entry, work / entry)
            settings = {
                "source_paths": ["src/"],
                "only_mutate": [source],
                "pytest_add_cli_args_test_selection": list(tests),
                "pytest_add_cli_args": ["-p", "no:cacheprovider"],
                "use_git_change_detection": False,
            }
            if "[tool.mutmut]" in (work / "pyproject.toml").read_text(encoding="utf-8"):
                session.error("pyproject.toml has a [tool.mutmut] section: this session writes its own")
            with (work / "pyproject.toml").open("a", encoding="utf-8") as fh:
                fh.write("\n[tool.mutmut]\n")
                fh.writelines(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())
            session.log(f"mutation: {name}: {source} against {' '.join(tests)}")
            with session.chdir(work):
                start = time.monotonic()
                session.run("mutmut", "run")
                elapsed = time.monotonic() - start
                session.run("mutmut", "results")
                session.run("mutmut", "export-cicd-stats", silent=True)
                stats = json.loads((work / "mutants" / "mutmut-cicd-stats.json").read_text(encoding="utf-8"))
        rows.append((name, stats, elapsed))
    header = (
        f"{'module':<16} {'total':>6} {'killed':>6} {'survived':>8} {'timeout':>7} {'suspicious':>10} {'no tests':>8}"
    )
    lines = [header]
    below = []
    for name, stats, elapsed in rows:
        rate = stats["killed"] / stats["total"] if stats["total"] else 1.0
        if rate < MUTATION_MIN_KILL_RATE:
            below.append(name)
        lines.append(
            f"{name:<16} {stats['total']:>6} {stats['killed']:>6} {stats['survived']:>8} {stats['timeout']:>7}"
            f" {stats['suspicious']:>10} {stats['no_tests']:>8}  {rate:7.1%} killed in {elapsed:.0f} s"
        )
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
