"""The tool as a whole: usage, help, errors, colours, and the demo."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from sentry_feedback._cli import main
from sentry_feedback._cli._demo import demo
from sentry_feedback.server import LocalReceiver

from .conftest import Result, assert_no_traceback, cli_env, sdk_feedback


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so nobody else takes it) but not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_usage_errors_exit_2(run_cli: Callable[..., Result]) -> None:
    for args in ([], ["nope"], ["list", "--nope"], ["show"], ["resolve"], ["list", "--timeout", "-1"]):
        result = run_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert "usage: sentry-feedback" in result.stderr
        assert_no_traceback(result)


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("serve", "send", "list", "show", "export", "download", "resolve", "unresolve", "delete", "demo"):
        assert command in out
    assert "SENTRY_AUTH_TOKEN" in out and "exit status" in out
    assert main(["list", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "JSON lines" in out and "$SENTRY_URL, else http://127.0.0.1:8970" in out
    assert "(default: 10.0)" in out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("sentry-feedback ")
    assert main(["list", "--per-page", "500"]) == 2
    assert "1 to 100" in capsys.readouterr().err


def test_bad_token_exits_1(server: LocalReceiver, run_cli: Callable[..., Result]) -> None:
    result = run_cli("list", "--token", "wrong-token")
    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
    assert "--token" in result.stderr
    assert_no_traceback(result)
    env = cli_env(server)
    del env["SENTRY_AUTH_TOKEN"]
    result = run_cli("list", env=env)
    assert result.returncode == 1
    assert "no API token" in result.stderr
    result = run_cli("list", "--token", "bad token with spaces")
    assert result.returncode == 1 and result.stderr.startswith("error: ")
    assert_no_traceback(result)


def test_unknown_org_and_project(run_cli: Callable[..., Result]) -> None:
    result = run_cli("list", "--org", "nobody")
    assert result.returncode == 1 and result.stderr.startswith("error: ")
    result = run_cli("show", "0" * 32, "--project", "nothere")
    assert result.returncode == 1 and result.stderr.startswith("error: ")
    result = run_cli("list", "--url", "ftp://127.0.0.1")
    assert result.returncode == 1 and result.stderr.startswith("error: ")
    assert_no_traceback(result)


def test_connection_refused_says_to_start_serve(run_cli: Callable[..., Result], refused_port: int) -> None:
    for args in (["list"], ["show", "0" * 32], ["resolve", "0" * 32], ["export"]):
        result = run_cli(*args, "--url", f"http://127.0.0.1:{refused_port}")
        assert result.returncode == 1, (args, result.stderr)
        assert result.stderr.startswith(f"error: cannot reach the server at http://127.0.0.1:{refused_port}")
        assert "sentry-feedback serve" in result.stderr
        assert_no_traceback(result)


def test_url_from_the_environment_and_default(
    server: LocalReceiver, refused_port: int, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sdk_feedback(server, "via env")
    monkeypatch.setenv("SENTRY_URL", server.url)
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", "cli-test-token")
    monkeypatch.delenv("SENTRY_ORG", raising=False)  # default org: local
    monkeypatch.setenv("SENTRY_PROJECT", "default")
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert main(["list"]) == 0
    assert "via env" in capsys.readouterr().out
    monkeypatch.delenv("SENTRY_URL")
    assert main(["list", "--url", f"http://127.0.0.1:{refused_port}/api/0/"]) == 1
    assert "cannot reach" in capsys.readouterr().err


def run_on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    """Run the CLI with stdout on a pseudo-terminal; return what it printed there."""
    pty = pytest.importorskip("pty")
    primary, secondary = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "sentry_feedback", *args],
            stdout=secondary,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        os.close(secondary)
        chunks: list[bytes] = []
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the other side is closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=60) == 0
        if process.stderr is not None:
            process.stderr.close()
    finally:
        os.close(primary)
    return b"".join(chunks).decode("utf-8")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_colours_on_a_terminal_unless_no_color(server: LocalReceiver) -> None:
    sdk_feedback(server, "colourful")
    coloured = run_on_a_terminal(["list"], cli_env(server, COLUMNS="200"))
    assert "\x1b[" in coloured and "colourful" in coloured
    plain = run_on_a_terminal(["list"], cli_env(server, COLUMNS="200", NO_COLOR="1"))
    assert "\x1b[" not in plain and "colourful" in plain
    empty = run_on_a_terminal(["list"], cli_env(server, COLUMNS="200", NO_COLOR=""))
    assert "\x1b[" in empty  # NO_COLOR only counts when non-empty
    narrow = run_on_a_terminal(["list"], cli_env(server, COLUMNS="120", NO_COLOR="1"))
    assert all(len(line) <= 120 for line in narrow.splitlines())


def test_demo_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    *_, succeeded, inbox = out.rstrip("\n").splitlines()
    assert succeeded == "demo succeeded"
    assert inbox.startswith("the inbox: ") and "http://127.0.0.1:8970/" in inbox  # the README's demo ends with it
    assert "$ sentry-feedback list" in out
    assert "$ sentry-feedback resolve " in out
    assert "$ sentry-feedback list --status resolved" in out
    assert "attachment:          screenshot.png (image/png" in out
    lines: list[str] = []
    assert demo(lines.append) == 0
    table = lines[lines.index("\n$ sentry-feedback list") + 1]
    assert table.split()[:3] == ["ID", "TIME", "(UTC)"]
