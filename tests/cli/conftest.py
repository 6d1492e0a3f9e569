"""Fixtures of the CLI tests: a live LocalReceiver on 127.0.0.1 and a way to run the CLI as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import sentry_feedback
from sentry_feedback import _context
from sentry_feedback.server import LocalReceiver

TOKEN = "cli-test-token"
READ_TOKEN = "cli-read-only-token"


@dataclass
class Result:
    """What one run of the CLI did."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def server() -> Iterator[LocalReceiver]:
    """A feedback server on 127.0.0.1 (free port, in-memory) with a read+write and a read-only token."""
    with LocalReceiver(api_token=TOKEN, read_token=READ_TOKEN) as receiver:
        yield receiver


def cli_env(receiver: LocalReceiver | None, **extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: pointed at ``receiver``, no colour or SENTRY_* leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY_") and k != "NO_COLOR"}
    if receiver is not None:
        env.update(SENTRY_URL=receiver.url, SENTRY_AUTH_TOKEN=TOKEN, SENTRY_ORG=receiver.org)
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(extra)
    return env


@pytest.fixture
def run_cli(server: LocalReceiver, tmp_path: Path) -> Callable[..., Result]:
    """Run ``python -m sentry_feedback ARGS`` against ``server``, in ``tmp_path``, without a terminal."""

    def run(*args: str, env: dict[str, str] | None = None, input: str | None = None, **extra: str) -> Result:
        done = subprocess.run(
            [sys.executable, "-m", "sentry_feedback", *args],
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=60,
            cwd=tmp_path,
            env=env if env is not None else cli_env(server, **extra),
            stdin=subprocess.DEVNULL if input is None else None,
            input=input,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    return run


def sdk_feedback(
    target: LocalReceiver | str, message: str, *, options: dict[str, Any] | None = None, **fields: Any
) -> str:
    """Send one feedback through the SDK to ``target`` (a server or a DSN), wait for the answer, return its id."""
    dsn = target if isinstance(target, str) else target.dsn
    client = sentry_feedback.init(dsn=dsn, **(options or {}))
    try:
        return sentry_feedback.send_feedback(message, timeout=10, **fields)
    finally:
        client.close(5)
        _context.set_client(None)


def sdk_error_and_feedback(receiver: LocalReceiver, message: str) -> tuple[str, str]:
    """Capture an error, then send a feedback linked to it; return (error id, feedback id)."""
    client = sentry_feedback.init(dsn=receiver.dsn)
    try:
        try:
            raise ZeroDivisionError("the total is zero")
        except ZeroDivisionError:
            error_id = sentry_feedback.capture_exception()
        assert error_id is not None
        assert client.flush(5)
        feedback_id = sentry_feedback.send_feedback(message, associated_event_id=error_id, timeout=10)
    finally:
        client.close(5)
        _context.set_client(None)
    return error_id, feedback_id


def assert_no_traceback(result: Result) -> None:
    """The CLI failed cleanly: no Python traceback on either stream."""
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout, result.stdout


@pytest.fixture
def client_args(server: LocalReceiver, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The options that point an in-process ``main([...])`` at ``server`` (the environment is cleared)."""
    for name in ("SENTRY_URL", "SENTRY_AUTH_TOKEN", "SENTRY_ORG", "SENTRY_PROJECT", "SENTRY_DSN", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    return ["--url", server.url, "--token", TOKEN, "--org", server.org]
