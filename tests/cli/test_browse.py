"""``list``, ``show`` and ``download`` against a live server."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

import sentry_feedback
from sentry_feedback import Attachment, _context
from sentry_feedback._cli import main
from sentry_feedback.server import LocalReceiver

from .conftest import Result, assert_no_traceback, sdk_error_and_feedback, sdk_feedback

HOSTILE = "pay \x1b[31mRED\x1b[0m button\nsecond line\r\x07\u202eevil"


def test_list_prints_a_table_with_the_full_id(server: LocalReceiver, run_cli: Callable[..., Result]) -> None:
    feedback_id = sdk_feedback(server, "The pay button does nothing", email="jane@example.com", name="Jane")
    result = run_cli("list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "TIME", "(UTC)", "STATUS", "PROJECT", "ENVIRONMENT", "CONTACT", "MESSAGE"]
    assert len(lines) == 2
    row = lines[1]
    assert row.startswith(feedback_id)
    for text in ("unresolved", "default", "production", "Jane <jane@example.com>", "The pay button does nothing"):
        assert text in row
    assert "\x1b" not in result.stdout  # no terminal, no colours
    # What the table shows is what show takes.
    shown = run_cli("show", row.split()[0])
    assert shown.returncode == 0, shown.stderr


def test_list_when_nothing_matches(run_cli: Callable[..., Result]) -> None:
    result = run_cli("list")
    assert result.returncode == 0
    assert result.stdout == ""
    assert "no feedback matches" in result.stderr


def test_list_json_lines_parse(server: LocalReceiver, run_cli: Callable[..., Result]) -> None:
    ids = {sdk_feedback(server, f"feedback {n}") for n in range(3)}
    result = run_cli("list", "--json")
    assert result.returncode == 0, result.stderr
    items = [json.loads(line) for line in result.stdout.splitlines()]
    assert {item["id"] for item in items} == ids
    assert all(item["status"] == "unresolved" and item["message"].startswith("feedback ") for item in items)
    # --field: only what was asked for (as the server sent it).
    result = run_cli("list", "--json", "--field", "message", "--field", "id")
    items = [json.loads(line) for line in result.stdout.splitlines()]
    assert items and all(set(item) <= {"id", "message"} for item in items)


def test_list_pages(server: LocalReceiver, client_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    client = sentry_feedback.init(dsn=server.dsn)
    try:
        for n in range(23):
            assert sentry_feedback.capture_feedback(f"feedback number {n}") is not None
        assert client.flush(10)
    finally:
        client.close(5)
        _context.set_client(None)
    assert main(["list", *client_args, "--per-page", "10"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 11
    assert "showing 10 of 23" in err and "--all" in err
    assert main(["list", *client_args, "--per-page", "10", "--all", "--json"]) == 0
    out, err = capsys.readouterr()
    assert len({json.loads(line)["id"] for line in out.splitlines()}) == 23
    assert main(["list", *client_args, "--limit", "15", "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 15
    assert main(["list", *client_args, "--all"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 24
    assert main(["list", *client_args, "--sort=timestamp", "--limit", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["message"] == "feedback number 0"


def test_list_filters(server: LocalReceiver, client_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    staging = sdk_feedback(server, "broken on staging", options={"environment": "staging"})
    prod = sdk_feedback(server, "broken on prod", options={"environment": "production"}, email="ops@example.com")
    main(["resolve", *client_args, prod])
    capsys.readouterr()

    def ids(*args: str) -> set[str]:
        assert main(["list", *client_args, "--json", *args]) == 0
        return {json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()}

    assert ids("--environment", "staging") == {staging}
    assert ids("--environment", "staging", "--environment", "production") == {staging, prod}
    assert ids("--status", "resolved") == {prod}
    assert ids("--status", "unresolved") == {staging}
    assert ids("-q", "message:*prod*") == {prod}
    assert ids("--query", "contact_email:ops@example.com", "--status", "resolved") == {prod}
    assert ids("--project", "default", "--period", "1h") == {staging, prod}
    assert ids("--project", "1") == {staging, prod}
    assert ids("--start", "2000-01-01T00:00:00Z", "--end", "2000-01-02T00:00:00Z") == set()


def test_list_bad_filters(run_cli: Callable[..., Result]) -> None:
    result = run_cli("list", "--period", "yesterday")  # the server says why
    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
    assert_no_traceback(result)
    for args in (
        ["--per-page", "1000000000000"],
        ["--per-page", "0"],
        ["--per-page", "ten"],
        ["--limit", "-1"],
        ["--status", "open"],
        ["--sort", "random"],
        ["--start", "2024-01-01T00:00:00Z"],
        ["--start", "2024-01-01", "--end", "2024-01-02", "--period", "1d"],
        ["--bogus"],
    ):
        result = run_cli("list", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert "usage:" in result.stderr
        assert_no_traceback(result)


def test_hostile_content_never_reaches_the_terminal_raw(server: LocalReceiver, run_cli: Callable[..., Result]) -> None:
    feedback_id = sdk_feedback(server, HOSTILE, name="\x1b]0;title\x07Mallory", email="m@example.com")
    listed = run_cli("list")
    shown = run_cli("show", feedback_id)
    for result in (listed, shown):
        assert result.returncode == 0, result.stderr
        for raw in ("\x1b", "\x07", "\r", "\u202e"):
            assert raw not in result.stdout
        assert "\\x1b[31mRED" in result.stdout
        assert "\\u202eevil" in result.stdout
    # The table keeps one line per feedback; show keeps the message's lines.
    assert len(listed.stdout.splitlines()) == 2
    assert "pay \\x1b[31mRED\\x1b[0m button second line" in listed.stdout
    assert "second line" in shown.stdout.split("\n")[2]
    # JSON keeps the content exactly (escaped by JSON itself).
    item = json.loads(run_cli("list", "--json").stdout)
    assert item["message"] == HOSTILE


def test_show_everything(server: LocalReceiver, run_cli: Callable[..., Result]) -> None:
    error_id, feedback_id = sdk_error_and_feedback(server, "It crashed when I clicked")
    result = run_cli("show", feedback_id)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.splitlines()[0] == f"feedback {feedback_id}"
    for text in ("message:", "It crashed when I clicked", "status:", "unresolved", "error_ids:", error_id, "sdk.name:"):
        assert text in out
    assert "attachments (0): none" in out
    assert f"linked error {error_id}: ZeroDivisionError: the total is zero" in out
    as_json = json.loads(run_cli("show", feedback_id, "--json").stdout)
    assert as_json["feedback"]["id"] == feedback_id
    assert as_json["attachments"] == []
    assert as_json["error"]["eventID"].replace("-", "") == error_id


def test_show_attachments_and_missing_error(server: LocalReceiver, run_cli: Callable[..., Result]) -> None:
    missing_error = "ab" * 16
    feedback_id = sdk_feedback(
        server,
        "See the screenshot",
        associated_event_id=missing_error,
        attachments=[
            Attachment(b"\x89PNG fake", filename="screenshot.png"),
            Attachment(b"log line\n" * 200, filename="app.log"),
        ],
    )
    result = run_cli("show", feedback_id.upper())  # ids are accepted in any case, with dashes too
    assert result.returncode == 0, result.stderr
    assert "attachments (2)" in result.stdout
    assert "screenshot.png  image/png  9 B" in result.stdout
    assert "app.log  text/plain  1.8 KiB" in result.stdout
    assert f"linked error {missing_error}: not found on the server" in result.stdout
    dashed = f"{feedback_id[:8]}-{feedback_id[8:12]}-{feedback_id[12:16]}-{feedback_id[16:20]}-{feedback_id[20:]}"
    assert run_cli("show", dashed).returncode == 0


def test_show_unknown_and_weird_ids(server: LocalReceiver, run_cli: Callable[..., Result]) -> None:
    result = run_cli("show", "0123456789abcdef0123456789abcdef")
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "not found" in result.stderr
    assert_no_traceback(result)
    for weird in ("../../etc/passwd", "", "0123", "g" * 32, "0" * 33, "%2e%2e", "\x1b[2J" + "0" * 28, "id:*"):
        result = run_cli("show", weird)
        assert result.returncode == 2, (weird, result.stderr)
        assert "not a feedback id" in result.stderr
        assert "\x1b" not in result.stderr
        assert_no_traceback(result)


def test_show_in_process(server: LocalReceiver, client_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    feedback_id = sdk_feedback(server, "multi\nline", tags={"page": "checkout"})
    assert main(["show", *client_args, feedback_id, "--project", "default"]) == 0
    out = capsys.readouterr().out
    assert "tags.page:" in out and "checkout" in out
    assert "linked error: none" in out


def test_download_saves_attachments_safely(
    server: LocalReceiver, run_cli: Callable[..., Result], tmp_path: Path
) -> None:
    hostile_names = ["../../escape.txt", "..\\..\\win.txt", "/etc/passwd", "..", "\x1b[2Jcon.log", "NUL.txt"]
    feedback_id = sdk_feedback(
        server,
        "files",
        attachments=[
            Attachment(b"png", filename="screenshot.png"),
            Attachment(b"first", filename="app.log"),
            Attachment(b"second", filename="app.log"),
            *(Attachment(name.encode(), filename=name) for name in hostile_names),
        ],
    )
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "screenshot.png").write_bytes(b"mine")  # never overwritten
    result = run_cli("download", feedback_id, "--to", "out")
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout
    files = {path.name: path.read_bytes() for path in folder.iterdir()}
    assert files["screenshot.png"] == b"mine"
    assert files["screenshot-1.png"] == b"png"
    assert {files["app.log"], files["app-1.log"]} == {b"first", b"second"}
    assert len(files) == 3 + 1 + len(hostile_names)
    # Nothing was written anywhere but the folder.
    for path in tmp_path.rglob("*"):
        assert path == folder or path.parent == folder, path
    assert not any(name.startswith(".") for name in files)
    assert all("/" not in name and "\\" not in name and "\x1b" not in name for name in files)
    # Default folder: ./ID
    result = run_cli("download", feedback_id)
    assert result.returncode == 0
    assert len(os.listdir(tmp_path / feedback_id)) == 3 + len(hostile_names)


def test_download_without_attachments_and_unknown(server: LocalReceiver, run_cli: Callable[..., Result]) -> None:
    feedback_id = sdk_feedback(server, "no files")
    result = run_cli("download", feedback_id)
    assert result.returncode == 0
    assert "has no attachments" in result.stderr
    result = run_cli("download", "f" * 32)
    assert result.returncode == 1
    assert_no_traceback(result)


def test_download_and_errors_in_process(
    server: LocalReceiver, client_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    feedback_id = sdk_feedback(server, "with a file", attachments=[Attachment(b"data", filename="notes.txt")])
    assert main(["download", *client_args, feedback_id, "--to", str(tmp_path / "a" / "b")]) == 0
    assert (tmp_path / "a" / "b" / "notes.txt").read_bytes() == b"data"
    assert f"saved {tmp_path / 'a' / 'b' / 'notes.txt'} (4 B)" in capsys.readouterr().out
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["download", *client_args, feedback_id, "--to", str(blocker / "sub")]) == 1
    assert capsys.readouterr().err.startswith("error: cannot create")
    assert main(["list", "--url", server.url, "--token", "wrong-token-1"]) == 1
    assert main(["list", *client_args, "--all", "--query", "message:nothing-like-this"]) == 0
    out, err = capsys.readouterr()
    assert out == "" and "no feedback matches" in err


def test_json_output_is_ascii_and_fields_keep_the_id(server: LocalReceiver, run_cli: Callable[..., Result]) -> None:
    feedback_id = sdk_feedback(server, HOSTILE)
    result = run_cli("list", "--json", "--field", "message")
    assert result.returncode == 0, result.stderr
    assert result.stdout.isascii() and "\x1b" not in result.stdout and "\r" not in result.stdout
    (line,) = result.stdout.splitlines()
    assert json.loads(line) == {"id": feedback_id, "message": HOSTILE}  # lossless, and the id is always there
    table = run_cli("list", "--field", "message")
    assert feedback_id in table.stdout
    shown = run_cli("show", "--json", feedback_id)
    assert shown.stdout.isascii() and json.loads(shown.stdout)["feedback"]["message"] == HOSTILE
