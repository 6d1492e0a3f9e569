"""The comparison benchmarks run end to end and report every row (figures are never checked)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("sentry_sdk")

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@dataclass(frozen=True)
class Benchmark:
    script: str
    heading: str  # the page's text before the start marker
    marker: str  # the markers are <!-- {marker}:start --> and <!-- {marker}:end -->
    rows: list[str]
    only_ours: frozenset[str] = frozenset()  # rows without a sentry-sdk figure
    no_ratio: frozenset[str] = frozenset()  # rows with both figures but no ratio


COMPARE = Benchmark(
    "bench_compare.py",
    "# Performance\n\n",
    "bench_compare",
    [
        "p99_http",
        "median_http",
        "p99_discard",
        "median_discard",
        "import",
        "import_init",
        "throughput",
        "rss_bytes",
        "rss_path",
        "cache_median",
    ],
    only_ours=frozenset({"cache_median"}),
)
SPANS = Benchmark(
    "bench_spans.py",
    "# Performance\n\n## Spans\n\n",
    "spans",
    [
        "child_p99",
        "child_median",
        "tx_p99",
        "tx_median",
        "tx_flush",
        "tx_cpu",
        "off_child_p99",
        "off_child_median",
        "off_top_p99",
        "off_top_median",
    ],
    no_ratio=frozenset({"tx_flush"}),
)


@pytest.mark.parametrize(
    "bench",
    [
        pytest.param(
            COMPARE,
            id="compare",
            marks=pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the benchmark reads /proc"),
        ),
        pytest.param(SPANS, id="spans"),
    ],
)
def test_quick_run_reports_every_row(tmp_path: Path, bench: Benchmark) -> None:
    start, end = f"<!-- {bench.marker}:start -->", f"<!-- {bench.marker}:end -->"
    page = tmp_path / "performance.md"
    page.write_text(f"{bench.heading}{start}\nold\n{end}\n\nAfter.\n")
    figures = tmp_path / "figures.json"
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / bench.script), "--quick", "--markdown", str(page), "--json", str(figures)],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr

    data = json.loads(figures.read_text())
    assert [row["key"] for row in data["rows"]] == bench.rows
    for row in data["rows"]:
        assert math.isfinite(row["ours"]), row
        if row["key"] in bench.only_ours:
            assert row["sentry_sdk"] is None
        else:
            assert math.isfinite(row["sentry_sdk"]), row
        if row["key"] in bench.only_ours | bench.no_ratio:
            assert row["ratio"] is None
        else:
            assert len(row["ratios"]) == 1
    assert data["machine"]["versions"]["sentry-sdk"]

    text = page.read_text()
    assert text.startswith(f"{bench.heading}{start}\n")
    assert text.endswith(f"{end}\n\nAfter.\n")
    assert "old" not in text
    for row in data["rows"]:
        assert f"| {row['title']} |" in text
        assert f"| {row['title']} |" in result.stdout


def test_spans_markdown_leaves_a_page_without_markers_alone(tmp_path: Path) -> None:
    page = tmp_path / "performance.md"
    page.write_text("# Performance\n")
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / SPANS.script), "--quick", "--markdown", str(page)],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode != 0
    assert "spans:start" in result.stderr
    assert page.read_text() == "# Performance\n"
