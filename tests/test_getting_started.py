"""The demo's output shown in docs/getting-started.md is what the demo prints (ids, ports, token and times aside)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parent.parent / "docs" / "getting-started.md"
#: What differs from run to run, each replaced by a placeholder before comparing.
VARYING = [
    (re.compile(r"\b[0-9a-f]{64}\b"), "<token>"),
    (re.compile(r"\b[0-9a-f]{32}\b"), "<id>"),
    (re.compile(r"127\.0\.0\.1:(?!8970\b)\d+"), "127.0.0.1:<port>"),
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"), "<time>"),
    (re.compile(r"_demo\.py:\d+"), "_demo.py:<line>"),
]


def normalized(text: str) -> list[str]:
    lines = []
    for line in text.rstrip("\n").splitlines():
        for pattern, placeholder in VARYING:
            line = pattern.sub(placeholder, line)
        lines.append(line.rstrip())
    return lines


def documented_output() -> str:
    page = PAGE.read_text(encoding="utf-8")
    after = page.split("python -m sentry_feedback demo\n```", 1)[1]
    return re.search(r"```text\n(.*?)```", after, re.S).group(1)  # type: ignore[union-attr]


def test_the_documented_demo_output_is_what_the_demo_prints() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sentry_feedback", "demo"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert normalized(result.stdout) == normalized(documented_output())
