"""The comparison benchmark runs end to end and reports every row (figures are never checked)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sentry_sdk")

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_compare.py"
ROWS = [
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
]
ONLY_OURS = {"cache_median"}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the benchmark reads /proc")
def test_quick_run_reports_every_row(tmp_path: Path) -> None:
    page = tmp_path / "performance.md"
    page.write_text("# Performance\n\n<!-- bench_compare:start -->\nold\n<!-- bench_compare:end -->\n\nAfter.\n")
    figures = tmp_path / "figures.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--markdown", str(page), "--json", str(figures)],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr

    data = json.loads(figures.read_text())
    assert [row["key"] for row in data["rows"]] == ROWS
    for row in data["rows"]:
        assert math.isfinite(row["ours"]), row
        if row["key"] in ONLY_OURS:
            assert row["sentry_sdk"] is None
        else:
            assert math.isfinite(row["sentry_sdk"]), row
            assert len(row["ratios"]) == 1
    assert data["machine"]["versions"]["sentry-sdk"]

    text = page.read_text()
    assert text.startswith("# Performance\n\n<!-- bench_compare:start -->\n")
    assert text.endswith("<!-- bench_compare:end -->\n\nAfter.\n")
    assert "old" not in text
    for row in data["rows"]:
        assert f"| {row['title']} |" in text
        assert f"| {row['title']} |" in result.stdout


SPANS_SCRIPT = SCRIPT.parent / "bench_spans.py"
SPAN_ROWS = [
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
]
NO_RATIO = {"tx_flush"}


def test_spans_quick_run_reports_every_row(tmp_path: Path) -> None:
    page = tmp_path / "performance.md"
    page.write_text("# Performance\n\n## Spans\n\n<!-- spans:start -->\nold\n<!-- spans:end -->\n\nAfter.\n")
    figures = tmp_path / "figures.json"
    result = subprocess.run(
        [sys.executable, str(SPANS_SCRIPT), "--quick", "--markdown", str(page), "--json", str(figures)],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr

    data = json.loads(figures.read_text())
    assert [row["key"] for row in data["rows"]] == SPAN_ROWS
    for row in data["rows"]:
        assert math.isfinite(row["ours"]), row
        assert math.isfinite(row["sentry_sdk"]), row
        if row["key"] in NO_RATIO:
            assert row["ratio"] is None
        else:
            assert len(row["ratios"]) == 1
    assert data["machine"]["versions"]["sentry-sdk"]

    text = page.read_text()
    assert text.startswith("# Performance\n\n## Spans\n\n<!-- spans:start -->\n")
    assert text.endswith("<!-- spans:end -->\n\nAfter.\n")
    assert "old" not in text
    for row in data["rows"]:
        assert f"| {row['title']} |" in text
        assert f"| {row['title']} |" in result.stdout


def test_spans_markdown_leaves_a_page_without_markers_alone(tmp_path: Path) -> None:
    page = tmp_path / "performance.md"
    page.write_text("# Performance\n")
    result = subprocess.run(
        [sys.executable, str(SPANS_SCRIPT), "--quick", "--markdown", str(page)],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode != 0
    assert "spans:start" in result.stderr
    assert page.read_text() == "# Performance\n"
