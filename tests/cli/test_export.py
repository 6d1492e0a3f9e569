"""``export`` as JSON lines and CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from sentry_feedback._cli import main
from sentry_feedback._cli._export import CSV_COLUMNS, csv_row, neutralize
from sentry_feedback.server import LocalReceiver

from .conftest import Result, assert_no_traceback, sdk_error_and_feedback, sdk_feedback


def test_export_jsonl_to_stdout(server: LocalReceiver, run_cli: Callable[..., Result]) -> None:
    ids = {sdk_feedback(server, f"export {n}") for n in range(12)}
    result = run_cli("export", "--per-page", "5")
    assert result.returncode == 0, result.stderr
    items = [json.loads(line) for line in result.stdout.splitlines()]
    assert {item["id"] for item in items} == ids  # every page, not just the first
    assert "exported 12 feedback to stdout" in result.stderr


def test_export_csv_flattens_and_neutralizes_formulas(server: LocalReceiver, run_cli: Callable[..., Result]) -> None:
    error_id, _ = sdk_error_and_feedback(server, "-crashed, with a comma")
    sdk_feedback(
        server,
        '=HYPERLINK("http://evil.example","click")',
        name="+Mallory",
        email="@mallory@example.com",
        url="https://shop.example.com/a?b=1",
        tags={"page": "=cmd|' /C calc'!A0", "plain": "ok"},
    )
    result = run_cli("export", "--format", "csv", "--sort=timestamp")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == list(CSV_COLUMNS)
    first, second = rows
    assert first["message"] == "'-crashed, with a comma"
    assert first["error_ids"] == error_id
    assert first["user.id"] == "" and first["status"] == "unresolved"
    assert second["message"] == '\'=HYPERLINK("http://evil.example","click")'
    assert second["name"] == "'+Mallory"
    assert second["contact_email"] == "'@mallory@example.com"
    assert second["url"] == "https://shop.example.com/a?b=1"
    assert json.loads(second["tags"]) == {"page": "=cmd|' /C calc'!A0", "plain": "ok"}
    assert second["sdk.name"] and second["os.name"]
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r"))


def test_export_to_a_file_with_filters(
    server: LocalReceiver, client_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keep = sdk_feedback(server, "keep", options={"environment": "staging"})
    sdk_feedback(server, "skip", options={"environment": "production"})
    target = tmp_path / "export.csv"
    args = ["export", *client_args, "--format", "csv", "--environment", "staging", "-o", str(target)]
    assert main(args) == 0
    assert capsys.readouterr().out == ""
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert [row["id"] for row in rows] == [keep]
    # --field narrows the columns; JSON lines to a file too.
    assert main(["export", *client_args, "--format", "csv", "--field", "message", "-o", str(target)]) == 0
    header = target.read_text(encoding="utf-8").splitlines()[0]
    assert header == "id,message"
    jsonl = tmp_path / "export.jsonl"
    assert main(["export", *client_args, "--limit", "1", "--output", str(jsonl)]) == 0
    assert len(jsonl.read_text(encoding="utf-8").splitlines()) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".sentry-feedback-export")]


def test_export_to_a_missing_folder_fails_cleanly(run_cli: Callable[..., Result]) -> None:
    result = run_cli("export", "--output", "no/such/folder/out.jsonl")
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot write")
    assert_no_traceback(result)
    assert run_cli("export", "--format", "xml").returncode == 2


def test_csv_cells() -> None:
    assert neutralize("=1+1") == "'=1+1"
    assert neutralize("\tx") == "'\tx"
    assert neutralize("plain -") == "plain -"
    data = {"id": "x", "user": {"email": "-a@b"}, "tags": {}, "error_ids": ["a", "b"], "attachment_count": 2}
    row = dict(zip(CSV_COLUMNS, csv_row(data), strict=True))
    assert row["user.email"] == "'-a@b"
    assert row["tags"] == ""
    assert row["error_ids"] == "a,b"
    assert row["attachment_count"] == "2"
    assert row["browser.name"] == ""
