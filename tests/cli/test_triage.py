"""``resolve``, ``unresolve`` and ``delete`` against a live server."""

from __future__ import annotations

import builtins
from collections.abc import Callable

import pytest

from sentry_feedback._cli import _triage, main
from sentry_feedback.server import LocalReceiver

from .conftest import READ_TOKEN, Result, assert_no_traceback, sdk_feedback


def status_of(server: LocalReceiver, feedback_id: str) -> str | None:
    found = server.store.get_feedback(feedback_id)
    return None if found is None else found.status


def test_resolve_and_unresolve(server: LocalReceiver, run_cli: Callable[..., Result]) -> None:
    first = sdk_feedback(server, "one")
    second = sdk_feedback(server, "two")
    result = run_cli("resolve", first, second, first)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"resolved {first}", f"resolved {second}"]
    assert status_of(server, first) == status_of(server, second) == "resolved"
    result = run_cli("unresolve", first, "--project", "default")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"unresolved {first}\n"
    assert status_of(server, first) == "unresolved"


def test_resolve_goes_on_past_an_unknown_id(server: LocalReceiver, run_cli: Callable[..., Result]) -> None:
    known = sdk_feedback(server, "known")
    unknown = "0" * 32
    result = run_cli("resolve", unknown, known)
    assert result.returncode == 1
    assert result.stdout == f"resolved {known}\n"
    assert result.stderr.startswith(f"error: {unknown}: ")
    assert_no_traceback(result)
    assert status_of(server, known) == "resolved"


def test_read_only_token_cannot_change(server: LocalReceiver, run_cli: Callable[..., Result]) -> None:
    feedback_id = sdk_feedback(server, "read only")
    result = run_cli("resolve", feedback_id, "--project", "default", "--token", READ_TOKEN)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
    assert "write scope" in result.stderr
    assert_no_traceback(result)
    assert status_of(server, feedback_id) == "unresolved"
    assert run_cli("list", "--token", READ_TOKEN).returncode == 0  # reading is fine


def test_delete_without_yes_and_without_terminal_refuses(server: LocalReceiver, run_cli: Callable[..., Result]) -> None:
    feedback_id = sdk_feedback(server, "keep me")
    result = run_cli("delete", feedback_id)
    assert result.returncode == 1
    assert "--yes" in result.stderr
    assert result.stderr.startswith("error: ")
    assert_no_traceback(result)
    assert server.store.get_feedback(feedback_id) is not None
    # Piped input is not a terminal either: still refused.
    assert run_cli("delete", feedback_id, input="y\n").returncode == 1
    assert server.store.get_feedback(feedback_id) is not None


def test_delete_with_yes(server: LocalReceiver, run_cli: Callable[..., Result]) -> None:
    feedback_id = sdk_feedback(server, "delete me")
    result = run_cli("delete", "--yes", feedback_id)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"deleted {feedback_id}\n"
    assert server.store.get_feedback(feedback_id) is None
    again = run_cli("delete", "-y", feedback_id)
    assert again.returncode == 1
    assert "not found" in again.stderr


def test_delete_asks_on_a_terminal(
    server: LocalReceiver,
    client_args: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    feedback_id = sdk_feedback(server, "ask first")
    monkeypatch.setattr(_triage, "_stdin_is_terminal", lambda: True)
    prompts: list[str] = []
    answers = iter(["n", "", "yes"])

    def fake_input(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr(builtins, "input", fake_input)
    assert main(["delete", *client_args, feedback_id]) == 1
    assert main(["delete", *client_args, feedback_id]) == 1
    assert server.store.get_feedback(feedback_id) is not None
    assert "nothing deleted" in capsys.readouterr().err
    assert main(["delete", *client_args, feedback_id, feedback_id]) == 0
    assert server.store.get_feedback(feedback_id) is None
    assert all("[y/N]" in prompt and feedback_id in prompt for prompt in prompts)

    def eof(prompt: str = "") -> str:
        raise EOFError

    monkeypatch.setattr(builtins, "input", eof)
    assert main(["delete", *client_args, "1" * 32, "2" * 32]) == 1
    assert "nothing deleted" in capsys.readouterr().err


def test_triage_in_process(server: LocalReceiver, client_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    feedback_id = sdk_feedback(server, "in process")
    assert main(["resolve", *client_args, feedback_id]) == 0
    assert main(["unresolve", *client_args, feedback_id]) == 0
    assert main(["resolve", *client_args, "a" * 32]) == 1
    out, err = capsys.readouterr()
    assert out == f"resolved {feedback_id}\nunresolved {feedback_id}\n"
    assert err.startswith("error: " + "a" * 32)
