"""The store's SQL: the schema, opening an existing database, and the sort orders with their keyset conditions."""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from ._records import StoredFeedback

__all__ = ["SCHEMA", "SCHEMA_VERSION", "SORTS", "beyond", "connect_existing", "migrate", "sort_key"]

#: The schema's version, kept in SQLite's ``user_version``. Version 2 added ``transactions``, ``sessions``
#: and ``session_aggregates``; a database of version 1 gets them when a writer opens it (see :func:`migrate`).
SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS envelopes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  TEXT    NOT NULL,
    event_id    TEXT,
    received_at REAL    NOT NULL,
    headers     TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    item_types  TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    TEXT    NOT NULL UNIQUE,
    envelope_id INTEGER NOT NULL REFERENCES envelopes(id),
    project_id  TEXT    NOT NULL,
    type        TEXT    NOT NULL,
    level       TEXT,
    message     TEXT,
    timestamp   REAL,
    received_at REAL    NOT NULL,
    data        TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS events_project ON events(project_id);
CREATE TABLE IF NOT EXISTS feedback (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id            TEXT    NOT NULL UNIQUE,
    envelope_id         INTEGER NOT NULL REFERENCES envelopes(id),
    project_id          TEXT    NOT NULL,
    message             TEXT    NOT NULL,
    contact_email       TEXT,
    name                TEXT,
    url                 TEXT,
    associated_event_id TEXT,
    replay_id           TEXT,
    source              TEXT,
    environment         TEXT,
    release             TEXT,
    dist                TEXT,
    platform            TEXT,
    timestamp           REAL,
    tags                TEXT    NOT NULL,
    user                TEXT,
    trace_id            TEXT,
    sdk                 TEXT,
    status              TEXT    NOT NULL DEFAULT 'unresolved',
    received_at         REAL    NOT NULL,
    data                TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_project ON feedback(project_id);
CREATE INDEX IF NOT EXISTS feedback_project_timestamp ON feedback(project_id, timestamp DESC, id);
CREATE INDEX IF NOT EXISTS feedback_timestamp ON feedback(timestamp DESC, id);
CREATE INDEX IF NOT EXISTS feedback_project_number ON feedback(CAST(project_id AS INTEGER), timestamp DESC, id);
CREATE INDEX IF NOT EXISTS feedback_project_number_desc
    ON feedback(CAST(project_id AS INTEGER) DESC, timestamp DESC, id);
CREATE INDEX IF NOT EXISTS feedback_status ON feedback(status, timestamp DESC);
CREATE INDEX IF NOT EXISTS feedback_environment ON feedback(environment, timestamp DESC);
CREATE TABLE IF NOT EXISTS attachments (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    envelope_id     INTEGER NOT NULL REFERENCES envelopes(id),
    project_id      TEXT    NOT NULL,
    event_id        TEXT,
    filename        TEXT    NOT NULL,
    content_type    TEXT    NOT NULL,
    attachment_type TEXT    NOT NULL,
    size            INTEGER NOT NULL,
    data            BLOB    NOT NULL,
    received_at     REAL    NOT NULL
);
CREATE INDEX IF NOT EXISTS attachments_event ON attachments(event_id);
CREATE TABLE IF NOT EXISTS client_reports (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    envelope_id INTEGER NOT NULL REFERENCES envelopes(id),
    project_id  TEXT    NOT NULL,
    timestamp   REAL,
    reason      TEXT    NOT NULL,
    category    TEXT    NOT NULL,
    quantity    INTEGER NOT NULL,
    received_at REAL    NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS transactions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT    NOT NULL UNIQUE,
    envelope_id     INTEGER NOT NULL REFERENCES envelopes(id),
    project_id      TEXT    NOT NULL,
    trace_id        TEXT    NOT NULL,
    span_id         TEXT    NOT NULL,
    parent_span_id  TEXT,
    name            TEXT,
    op              TEXT,
    status          TEXT,
    start_timestamp REAL    NOT NULL,
    timestamp       REAL    NOT NULL,
    release         TEXT,
    environment     TEXT,
    received_at     REAL    NOT NULL,
    data            TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS transactions_trace ON transactions(trace_id, start_timestamp, id);
CREATE TABLE IF NOT EXISTS sessions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  TEXT    NOT NULL,
    sid         TEXT    NOT NULL,
    did         TEXT,
    init        INTEGER NOT NULL,
    started     REAL    NOT NULL,
    timestamp   REAL    NOT NULL,
    status      TEXT    NOT NULL,
    errors      INTEGER NOT NULL,
    duration    REAL,
    release     TEXT    NOT NULL,
    environment TEXT,
    received_at REAL    NOT NULL,
    data        TEXT    NOT NULL,
    UNIQUE (project_id, sid)
);
CREATE INDEX IF NOT EXISTS sessions_release ON sessions(release, environment);
CREATE TABLE IF NOT EXISTS session_aggregates (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  TEXT    NOT NULL,
    started     REAL    NOT NULL,
    release     TEXT    NOT NULL,
    environment TEXT    NOT NULL,
    did         TEXT    NOT NULL,
    exited      INTEGER NOT NULL,
    errored     INTEGER NOT NULL,
    abnormal    INTEGER NOT NULL,
    crashed     INTEGER NOT NULL,
    received_at REAL    NOT NULL,
    UNIQUE (project_id, release, environment, started, did)
);
"""

_PROJECT_NUMBER = "CAST(project_id AS INTEGER)"
#: Each sort as (column, descending) pairs; ``id`` breaks ties so that the order is total.
#: ``timestamp`` is the exact reverse of ``-timestamp``: one index serves both.
#: Project ids sort as numbers (10 after 9), through an index on that expression.
SORTS: dict[str, tuple[tuple[str, bool], ...]] = {
    "timestamp": (("timestamp", False), ("id", True)),
    "-timestamp": (("timestamp", True), ("id", False)),
    "projectId": ((_PROJECT_NUMBER, False), ("timestamp", True), ("id", False)),
    "-projectId": ((_PROJECT_NUMBER, True), ("timestamp", True), ("id", False)),
}


def connect_existing(path: str, mode: str) -> sqlite3.Connection:
    """Open the existing database file ``path`` with SQLite's URI ``mode`` (never creating it).

    Raises FileNotFoundError naming ``path`` when there is no such file.
    """
    missing = FileNotFoundError(errno.ENOENT, "FeedbackStore database file does not exist", path)
    if not os.path.exists(path):
        raise missing
    uri = f"{Path(path).absolute().as_uri()}?mode={mode}"
    try:
        return sqlite3.connect(uri, uri=True, check_same_thread=False)
    except sqlite3.OperationalError:
        if not os.path.exists(path):  # removed between the check and the open
            raise missing from None
        raise


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the database of ``conn`` to :data:`SCHEMA_VERSION` (it must be writable).

    Every step is idempotent, so two processes opening the same file at once are fine. Version 1 to 2:
    the tables for transactions and sessions, created by :data:`SCHEMA`'s ``CREATE TABLE IF NOT EXISTS``.
    A database of a newer version keeps its number: this code reads and writes the tables it knows.
    """
    conn.executescript(SCHEMA)
    with conn:  # databases written before feedback timestamps were always set
        conn.execute("UPDATE feedback SET timestamp = received_at WHERE timestamp IS NULL")
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if int(version) < SCHEMA_VERSION:
        with conn:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def sort_key(order: tuple[tuple[str, bool], ...], feedback: StoredFeedback) -> tuple[object, ...]:
    """The values of ``order``'s columns for ``feedback``."""
    return tuple(_project_number(feedback) if c == _PROJECT_NUMBER else getattr(feedback, c) for c, _ in order)


def _project_number(feedback: StoredFeedback) -> int:
    try:
        return int(feedback.project_id)
    except ValueError:
        return 0  # as SQLite casts text that is not a number


def beyond(
    order: tuple[tuple[str, bool], ...], key: Sequence[object], *, backwards: bool, inclusive: bool = False
) -> tuple[str, list[object]]:
    """The SQL condition "comes after ``key`` in ``order``" (before it when ``backwards``), and its values."""
    if len(key) != len(order):
        raise ValueError(f"a key of this sort has {len(order)} values, not {len(key)}")
    alternatives: list[str] = []
    values: list[object] = []
    for index, (column, desc) in enumerate(order):
        later = desc == backwards  # ascending column: later means greater
        parts = [f"{name} = ?" for name, _ in order[:index]] + [f"{column} {'>' if later else '<'} ?"]
        alternatives.append("(" + " AND ".join(parts) + ")")
        values += [*key[:index], key[index]]
    if inclusive:
        alternatives.append("(" + " AND ".join(f"{name} = ?" for name, _ in order) + ")")
        values += list(key)
    # The same, plus a plain bound on the first column: with it SQLite reads one range of the
    # sort's index in order (without it, an OR of ranges and a sort of everything after the key).
    first, desc = order[0]
    bound = f"{first} {'>=' if desc == backwards else '<='} ?"
    return f"({bound} AND (" + " OR ".join(alternatives) + "))", [key[0], *values]
