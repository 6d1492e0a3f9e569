"""The store's schema helpers: opening existing files, sort keys and keyset conditions."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sentry_feedback.server._schema import SORTS, beyond, connect_existing, sort_key


def test_connect_existing_never_creates_a_file(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.sqlite3"
    with pytest.raises(FileNotFoundError) as raised:
        connect_existing(str(missing), "ro")
    assert raised.value.filename == str(missing)
    assert not missing.exists()


def test_connect_existing_reports_a_path_sqlite_cannot_open(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError):
        connect_existing(str(tmp_path), "ro").execute("SELECT 1 FROM sqlite_master")  # a folder, not a database


def test_the_project_sort_treats_a_non_numeric_project_as_zero() -> None:
    order = SORTS["projectId"]
    feedback: Any = SimpleNamespace(project_id="web", timestamp=5.0, id=3)
    assert sort_key(order, feedback) == (0, 5.0, 3)
    feedback.project_id = "42"
    assert sort_key(order, feedback) == (42, 5.0, 3)


def test_beyond_needs_one_value_per_column() -> None:
    with pytest.raises(ValueError, match="a key of this sort has 2 values, not 1"):
        beyond(SORTS["timestamp"], [1.0], backwards=False)


@pytest.mark.parametrize(("inclusive", "expected_ids"), [(False, [5]), (True, [3, 5])])
def test_beyond_selects_the_rows_after_the_key(inclusive: bool, expected_ids: list[int]) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE feedback (id INTEGER, timestamp REAL)")
    conn.executemany("INSERT INTO feedback VALUES (?, ?)", [(1, 1.0), (2, 2.0), (3, 3.0), (4, 3.0), (5, 4.0)])
    # Ascending timestamp, then descending id: 1, 2, 4, 3, 5; after id 3 comes 5 only.
    order = (("timestamp", False), ("id", True))
    where, values = beyond(order, [3.0, 3], backwards=False, inclusive=inclusive)
    rows = conn.execute(f"SELECT id FROM feedback WHERE {where} ORDER BY timestamp, id DESC", values).fetchall()
    assert [row[0] for row in rows] == expected_ids
    backwards, values = beyond(order, [3.0, 3], backwards=True)
    rows = conn.execute(f"SELECT id FROM feedback WHERE {backwards} ORDER BY timestamp, id DESC", values).fetchall()
    assert [row[0] for row in rows] == [1, 2, 4]
