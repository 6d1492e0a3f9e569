"""The CLI against hostile input: misbehaving servers, odd events, unusable streams, unreadable or unwritable files."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sentry_feedback
from api.scripted import Answer, Recorded, ScriptedServer
from sentry_feedback import Attachment, _context
from sentry_feedback._cli import _send, main
from sentry_feedback._cli._browse import event_summary, feedback_json
from sentry_feedback.api import UserFeedback
from sentry_feedback.server import LocalReceiver

from .conftest import TOKEN, Result, assert_no_traceback, cli_env, sdk_feedback

FEEDBACK_ID = "1ffe0775ac0f4417aed9de36d9f6f8dc"
ERROR_ID = "4f0e18332d11431c9b97d924edecb76e"
ORG = "acme"
PROJECT = "web"
ITEM_PATH = f"/api/0/projects/{ORG}/{PROJECT}/user-feedback/{FEEDBACK_ID}/"
EVENT_PATH = f"/api/0/projects/{ORG}/{PROJECT}/events/{ERROR_ID}/"
FEEDBACK = {"id": FEEDBACK_ID, "message": "It broke", "status": "unresolved", "error_ids": [ERROR_ID]}


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedServer]:
    """A scripted server on 127.0.0.1; the environment holds no SENTRY_* settings."""
    for name in ("SENTRY_URL", "SENTRY_AUTH_TOKEN", "SENTRY_ORG", "SENTRY_PROJECT", "SENTRY_DSN", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    with ScriptedServer() as server:
        yield server


def serve_show(
    server: ScriptedServer, *, attachments: Answer, event: Answer, feedback: dict[str, Any] | None = None
) -> None:
    """Answer ``show``'s three requests: the feedback, its attachments and its linked error."""
    answers = {
        ITEM_PATH: Answer(200, {"data": feedback or FEEDBACK}),
        ITEM_PATH + "attachments/": attachments,
        EVENT_PATH: event,
    }

    def handler(request: Recorded) -> Answer:
        return answers.get(request.path, Answer(404, {"detail": "unexpected request"}))

    server.handler = handler


def show(server: ScriptedServer, *extra: str) -> int:
    return main(
        ["show", "--url", server.url, "--token", TOKEN, "--org", ORG, "--project", PROJECT, FEEDBACK_ID, *extra]
    )


# -- show: the server fails part of the way -----------------------------------------------------


def test_show_reports_failed_attachment_and_error_lookups_and_goes_on(
    scripted: ScriptedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    serve_show(
        scripted,
        attachments=Answer(500, {"detail": "storage \x1b[2Jexploded"}),
        event=Answer(403, {"detail": "You do not have permission"}),
    )
    assert show(scripted) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == f"feedback {FEEDBACK_ID}"
    assert "attachments: unavailable (storage \\x1b[2Jexploded)" in lines
    assert f"linked error {ERROR_ID}: could not be fetched: You do not have permission" in lines
    assert "\x1b" not in out
    assert [r.path for r in scripted.requests] == [ITEM_PATH, ITEM_PATH + "attachments/", EVENT_PATH]


def test_show_json_gives_null_for_what_could_not_be_fetched(
    scripted: ScriptedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    serve_show(scripted, attachments=Answer(502, b"<html>bad gateway</html>"), event=Answer(500, {"detail": "boom"}))
    assert show(scripted, "--json") == 0
    document = json.loads(capsys.readouterr().out)
    assert document == {"feedback": FEEDBACK, "attachments": None, "error": None}


# -- show: what the linked error says -----------------------------------------------------------

EXCEPTION_ENTRY = {
    "type": "exception",
    "data": {"values": [{"type": "OSError", "value": "inner"}, {"type": "KeyError"}]},
}


@pytest.mark.parametrize(
    ("event", "summary"),
    [
        # No metadata type: the last exception of the exception entry.
        ({"entries": [{"type": "message"}, EXCEPTION_ENTRY]}, "KeyError"),
        (
            {
                "metadata": {"title": "t"},
                "entries": [{"type": "exception", "data": {"values": [{"type": "E", "value": "v"}]}}],
            },
            "E: v",
        ),
        ({"metadata": {"type": "TypeError", "value": "bad"}, "entries": [EXCEPTION_ENTRY]}, "TypeError: bad"),
        # No exception at all: the title, else the message, else a placeholder.
        ({"title": "Disk full", "message": "ignored", "entries": [{"type": "message"}]}, "Disk full"),
        ({"message": "just a message", "metadata": "not an object"}, "just a message"),
        ({}, "(no message)"),
        ({"entries": [{"type": "exception", "data": {"values": []}}]}, "(no message)"),
        # Hostile shapes: never a crash, the title instead.
        ({"title": "T", "entries": 5}, "T"),
        ({"title": "T", "entries": "exception"}, "T"),
        ({"title": "T", "entries": [{"type": "exception", "data": ["values"]}]}, "T"),
        ({"title": "T", "entries": [{"type": "exception", "data": {"values": "abc"}}]}, "T"),
        ({"title": "T", "entries": [{"type": "exception", "data": {"values": {"0": {"type": "E"}}}}]}, "T"),
        ({"title": "T", "entries": [{"type": "exception", "data": {"values": [None, 3]}}]}, "T"),
        ({"title": "\x1b[31mred\u202e", "entries": None}, "\\x1b[31mred\\u202e"),
    ],
)
def test_show_summarizes_the_linked_error(
    scripted: ScriptedServer, capsys: pytest.CaptureFixture[str], event: dict[str, Any], summary: str
) -> None:
    serve_show(scripted, attachments=Answer(200, {"data": []}), event=Answer(200, event))
    assert show(scripted) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines()[-1] == f"linked error {ERROR_ID}: {summary}"
    assert "attachments (0): none" in out.splitlines()


def test_show_of_a_hostile_event_as_a_subprocess_has_no_traceback(tmp_path: Path) -> None:
    event = {"entries": [{"type": "exception", "data": {"values": "x"}}], "title": "oops"}
    with ScriptedServer() as server:
        serve_show(server, attachments=Answer(200, {"data": []}), event=Answer(200, event))
        env = cli_env(None, SENTRY_URL=server.url, SENTRY_AUTH_TOKEN=TOKEN, SENTRY_ORG=ORG, SENTRY_PROJECT=PROJECT)
        done = subprocess.run(
            [sys.executable, "-m", "sentry_feedback", "show", FEEDBACK_ID],
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=60,
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    result = Result(done.returncode, done.stdout, done.stderr)
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result)
    assert result.stdout.splitlines()[-1] == f"linked error {ERROR_ID}: oops"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
EVENT_KEYS = st.sampled_from(["entries", "metadata", "title", "message", "type", "data", "values", "value"])


@settings(max_examples=50, deadline=None)
@given(
    st.dictionaries(
        EVENT_KEYS,
        JSON_VALUES
        | st.lists(st.fixed_dictionaries({"type": st.just("exception"), "data": JSON_VALUES}), max_size=3)
        | st.fixed_dictionaries({"type": JSON_VALUES, "value": JSON_VALUES}),
        max_size=5,
    )
)
def test_event_summary_never_raises_on_any_json_event(event: dict[str, Any]) -> None:
    summary = event_summary(event)
    assert isinstance(summary, str) and summary


# -- show: attachments as JSON ---------------------------------------------------------------------


def test_show_json_lists_the_attachments(
    server: LocalReceiver, client_args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(40))
    feedback_id = sdk_feedback(
        server,
        "with files",
        attachments=[Attachment(png, filename="shot.png"), Attachment(b"\x1b[2J", filename="../\x1b[2J.log")],
    )
    assert main(["show", *client_args, "--json", feedback_id]) == 0
    out = capsys.readouterr().out
    assert out.isascii() and "\x1b" not in out
    document = json.loads(out)
    attachments = sorted(document["attachments"], key=lambda att: att["size"])
    assert [set(att) for att in attachments] == [{"id", "name", "mimetype", "size", "sha1", "type", "dateCreated"}] * 2
    log, shot = attachments
    assert (log["name"], log["size"], log["sha1"]) == ("../\x1b[2J.log", 4, hashlib.sha1(b"\x1b[2J").hexdigest())
    assert (shot["name"], shot["mimetype"], shot["size"]) == ("shot.png", "image/png", len(png))
    assert shot["sha1"] == hashlib.sha1(png).hexdigest()
    assert shot["type"] == "event.attachment"
    assert datetime.fromisoformat(shot["dateCreated"].replace("Z", "+00:00")).tzinfo is not None
    assert {att.id for att in server.store.list_attachments(feedback_id)} == {int(att["id"]) for att in attachments}
    assert document["error"] is None


def test_show_names_a_linked_message_event_by_its_message(
    server: LocalReceiver, run_cli: Callable[..., Result]
) -> None:
    client = sentry_feedback.init(dsn=server.dsn)
    try:
        event_id = sentry_feedback.capture_message("the queue is stuck")
        assert event_id is not None
        assert client.flush(5)
        feedback_id = sentry_feedback.send_feedback("see the message", associated_event_id=event_id, timeout=10)
    finally:
        client.close(5)
        _context.set_client(None)
    result = run_cli("show", feedback_id)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"linked error {event_id}: the queue is stuck"


# -- JSON lines of items built in Python ------------------------------------------------------------


def test_feedback_json_turns_python_values_into_json() -> None:
    item = UserFeedback.from_json(
        {
            "id": FEEDBACK_ID,
            "message": "hi",
            "context": MappingProxyType({"page": "checkout"}),
            "seen_by": frozenset({"jane"}),
            "labels": {"a"},
            "at": datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc),
            "price": Decimal("9.99"),
            "pair": ("x", 1),
        }
    )
    line = feedback_json(item, raw=True)
    assert json.loads(line) == {
        "id": FEEDBACK_ID,
        "message": "hi",
        "context": {"page": "checkout"},
        "seen_by": ["jane"],
        "labels": ["a"],
        "at": "2024-05-01T12:30:00+00:00",
        "price": "9.99",
        "pair": ["x", 1],
    }
    assert "\n" not in line and line.isascii()


# -- download: the file system refuses the file -------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs POSIX resource limits")
def test_download_reports_a_file_the_file_system_refuses(server: LocalReceiver, tmp_path: Path) -> None:
    import resource

    limit = 64 * 1024
    feedback_id = sdk_feedback(server, "big file", attachments=[Attachment(b"z" * (4 * limit), filename="big.bin")])

    def limit_file_size() -> None:  # in the child: files may not grow past `limit` bytes (EFBIG beyond)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run(
        [sys.executable, "-m", "sentry_feedback", "download", feedback_id, "--to", "out"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        cwd=tmp_path,
        # Not measured for coverage: its data file would be refused past the limit too.
        env={key: value for key, value in cli_env(server).items() if not key.startswith("COVERAGE_")},
        stdin=subprocess.DEVNULL,
        preexec_fn=limit_file_size,
    )
    result = Result(done.returncode, done.stdout, done.stderr)
    assert result.returncode == 1
    assert result.stderr == f"error: cannot write {Path('out', 'big.bin')}: {os.strerror(errno.EFBIG)}\n"
    assert result.stdout == ""
    assert_no_traceback(result)
    assert list((tmp_path / "out").iterdir()) == []  # nothing half-written is left behind


# -- send: stderr unusable, unreadable attachments, bad DSN with a progress bar ------------------------


def big_file(folder: Path) -> Path:
    path = folder / "big.bin"
    path.write_bytes(b"b" * (_send.PROGRESS_THRESHOLD + 1))
    return path


def closed_stream() -> io.StringIO:
    stream = io.StringIO()
    stream.close()
    return stream


@pytest.mark.parametrize("stderr", [None, closed_stream()], ids=["no-stderr", "closed-stderr"])
def test_send_without_a_usable_stderr_sends_without_a_progress_bar(
    server: LocalReceiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stderr: io.StringIO | None,
) -> None:
    big = big_file(tmp_path)
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    monkeypatch.setattr(sys, "stderr", stderr)
    assert main(["send", "big file, no stderr", "--dsn", server.dsn, "--attach", str(big)]) == 0
    out = capsys.readouterr().out
    assert re.fullmatch(r"[0-9a-f]{32}\n", out)
    sizes = {att.filename: att.size for att in server.store.list_attachments(out.strip())}
    assert sizes == {"big.bin": _send.PROGRESS_THRESHOLD + 1}


@pytest.fixture
def unreadable_file(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A path that stats as a regular file but cannot be read, and the errno reading it gives."""
    if os.name == "posix" and os.geteuid() != 0:
        path = tmp_path / "secret.txt"
        path.write_text("no")
        path.chmod(0)
        yield str(path), errno.EACCES
        path.chmod(0o600)
    elif os.path.isfile("/proc/self/mem"):  # root reads anything, but not address 0 of a process
        yield "/proc/self/mem", errno.EIO
    else:  # pragma: no cover - depends on the platform
        pytest.skip("no unreadable regular file on this platform")


def test_send_reports_an_attachment_that_cannot_be_read_and_ends_the_progress_bar(
    server: LocalReceiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    unreadable_file: tuple[str, int],
) -> None:
    path, code = unreadable_file
    big = big_file(tmp_path)
    monkeypatch.setattr(_send, "_stderr_is_terminal", lambda: True)
    assert main(["send", "hi", "--dsn", server.dsn, "--attach", str(big), path]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    error = err.splitlines()[-1]
    assert error == f"error: cannot read attachment {path}: {os.strerror(code)}"
    assert "reading attachments" in err
    assert err.endswith(f"reading attachments\x1b[K\n{error}\n")  # the bar's line is ended before the error
    assert server.store.list_feedback() == []


def test_send_with_a_bad_dsn_ends_the_progress_bar_as_not_sent(
    server: LocalReceiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    big = big_file(tmp_path)
    monkeypatch.setattr(_send, "_stderr_is_terminal", lambda: True)
    assert main(["send", "hi", "--dsn", "http://127.0.0.1:1/1", "--attach", str(big)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    problem = "invalid DSN 'http://127.0.0.1:1/1': missing public key (before '@')"
    assert err.endswith(f"not sent\x1b[K\nerror: bad DSN or option: {problem}\n")
    assert "100.0%" in err
    assert server.store.list_feedback() == []
