"""``send``: a feedback through the SDK, as a subprocess and in-process."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from sentry_feedback._cli import _send, main
from sentry_feedback.server import LocalReceiver

from .conftest import Result, assert_no_traceback, cli_env


def test_send_with_attachments(server: LocalReceiver, run_cli: Callable[..., Result], tmp_path: Path) -> None:
    (tmp_path / "app.log").write_text("12:00 ERROR boom\n")
    (tmp_path / "shot.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    error_id = "cd" * 16
    result = run_cli(
        "send",
        "The checkout is broken",
        "--email",
        "jane@example.com",
        "--name",
        "Jane",
        "--url",
        "https://shop.example.com/checkout",
        "--associated-event-id",
        error_id,
        "--attach",
        "app.log",
        "shot.png",
        "--environment",
        "staging",
        "--release",
        "shop@2",
        env=cli_env(server, SENTRY_DSN=server.dsn),
    )
    assert result.returncode == 0, result.stderr
    feedback_id = result.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", feedback_id)
    assert result.stderr == ""  # no terminal: no progress bar
    stored = server.store.get_feedback(feedback_id)
    assert stored is not None
    assert (stored.message, stored.name, stored.contact_email) == ("The checkout is broken", "Jane", "jane@example.com")
    assert stored.url == "https://shop.example.com/checkout"
    assert stored.associated_event_id == error_id
    assert (stored.environment, stored.release) == ("staging", "shop@2")
    names = {att.filename: att.size for att in server.store.list_attachments(feedback_id)}
    assert names == {"app.log": 17, "shot.png": 8}


def test_send_errors(server: LocalReceiver, run_cli: Callable[..., Result]) -> None:
    for args, expected in (
        (["send", "hi"], "no DSN"),
        (["send", "hi", "--dsn", "not a dsn"], "error: "),
        (["send", "hi", "--dsn", server.dsn, "--attach", "missing.txt"], "cannot read attachment missing.txt"),
        (["send", "hi", "--dsn", server.dsn, "--attach", "."], "not a regular file"),
        (["send", "   ", "--dsn", server.dsn], "not sent"),
        (["send", "hi", "--dsn", server.dsn, "--associated-event-id", "nope"], "not sent"),
        (["send", "hi", "--dsn", server.dsn.replace("public@", "wrong@")], "not sent"),
    ):
        result = run_cli(*args)
        assert result.returncode == 1, (args, result.stderr)
        assert result.stderr.startswith("error: ") and expected in result.stderr, (args, result.stderr)
        assert_no_traceback(result)
    assert run_cli("send").returncode == 2
    for timeout in ("-1", "nan", "inf", "0", "soon"):  # a usage error, not a crash reported to the DSN
        result = run_cli("send", "hi", "--dsn", server.dsn, "--timeout", timeout)
        assert result.returncode == 2 and "--timeout" in result.stderr, (timeout, result.stderr)
        assert_no_traceback(result)
    assert server.store.list_feedback() == [] and server.store.list_events() == []


def test_send_shows_progress_for_large_attachments_on_a_terminal(
    server: LocalReceiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (_send.PROGRESS_THRESHOLD + 300_000))
    small = tmp_path / "small.txt"
    small.write_text("small")
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    monkeypatch.setattr(_send, "_stderr_is_terminal", lambda: True)
    assert main(["send", "big files", "--dsn", server.dsn, "--attach", str(big), str(small)]) == 0
    out, err = capsys.readouterr()
    feedback_id = out.strip()
    assert "[" + "#" * 30 + "] 100.0%" in err
    assert "reading attachments" in err and "sent" in err
    assert err.endswith("\n")
    sizes = {att.filename: att.size for att in server.store.list_attachments(feedback_id)}
    assert sizes == {"big.bin": big.stat().st_size, "small.txt": 5}


def test_send_small_attachments_without_progress(
    server: LocalReceiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    note = tmp_path / "note.txt"
    note.write_text("note")
    monkeypatch.setattr(_send, "_stderr_is_terminal", lambda: True)
    monkeypatch.setenv("SENTRY_DSN", server.dsn)
    assert main(["send", "small", "--attach", str(note)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert server.store.get_feedback(out.strip()) is not None


def test_send_progress_bar_says_not_sent_on_failure(
    server: LocalReceiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"y" * (_send.PROGRESS_THRESHOLD + 1))
    monkeypatch.setattr(_send, "_stderr_is_terminal", lambda: True)
    assert main(["send", " ", "--dsn", server.dsn, "--attach", str(big)]) == 1
    err = capsys.readouterr().err
    assert "not sent" in err and "error: the feedback was not sent" in err
