"""The command-line tool, run as a real subprocess."""

from __future__ import annotations

import subprocess
import sys


def test_demo_sends_feedback_and_shows_what_arrived() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sentry_feedback", "demo"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "demo succeeded" in out
    assert "attachment:          screenshot.png (image/png" in out
    assert "attachment:          app.log (text/plain" in out
    assert "127.0.0.1" in out
    assert result.stderr == ""


def test_version_flag() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sentry_feedback", "--version"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert result.stdout.startswith("sentry-feedback ")
