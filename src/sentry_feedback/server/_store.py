"""SQLite storage for what the local receiver accepts.

One :class:`FeedbackStore` holds one SQLite connection shared by every thread and
guarded by a lock. File databases use WAL journaling so a second process (a REST API,
a shell) can read while the receiver writes; such a reader can open the file with
``FeedbackStore(path, read_only=True)``, which never creates or changes it.

Tables:

``envelopes``
    Every envelope stored: project, ``event_id`` header, header JSON, size, item types.
    Items of types the store does not understand are kept here only.
``events``
    ``event`` items (errors, messages, ...): type, level, message, timestamp, full JSON.
``feedback``
    ``feedback`` items, with the fields a Sentry-style User Feedback API needs pulled
    out of ``contexts.feedback`` and the event, plus a ``status`` (``unresolved`` at first).
``attachments``
    ``attachment`` items with their bytes, linked to the envelope's ``event_id``.
``client_reports``
    One row per ``discarded_events`` entry of a ``client_report`` item.

Read methods return small frozen dataclasses (:class:`StoredFeedback`,
:class:`StoredEvent`, :class:`StoredAttachment`, :class:`StoredEnvelope`). Times are
Unix timestamps in seconds (``float``); event ids are 32 lowercase hex digits.
"""

from __future__ import annotations

import errno
import json
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from .._envelope import Envelope
from ..exceptions import EnvelopeParseError

__all__ = [
    "FeedbackStore",
    "StoredAttachment",
    "StoredEnvelope",
    "StoredEvent",
    "StoredFeedback",
]

_SCHEMA_VERSION = 1

_SCHEMA = """
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
"""

_SORTS = {
    "timestamp": "timestamp, id DESC",  # the exact reverse of the default: the same index serves both
    "-timestamp": "timestamp DESC, id",
    "projectId": "project_id, timestamp DESC, id",
    "-projectId": "project_id DESC, timestamp DESC, id",
}

_DEFAULT_CONTENT_TYPE = "application/octet-stream"
_FRACTION = re.compile(r"(?<=:\d\d)\.(\d+)")
_DEFAULT_ATTACHMENT_TYPE = "event.attachment"


@dataclass(frozen=True)
class StoredEnvelope:
    """One stored envelope (``id`` is the row id, in arrival order)."""

    id: int
    project_id: str
    event_id: str | None
    received_at: float
    headers: dict[str, Any]
    size: int
    item_types: tuple[str, ...]


@dataclass(frozen=True)
class StoredEvent:
    """One stored ``event`` item.

    ``type`` is the event's own ``type`` or, when absent, ``error`` for an event with an
    ``exception`` and ``default`` otherwise (Sentry's names). ``message`` is the
    ``message``/``logentry`` text or, for errors, ``"Type: value"`` of the last exception.
    """

    id: int
    event_id: str
    project_id: str
    type: str
    level: str | None
    message: str | None
    timestamp: float | None
    received_at: float
    data: dict[str, Any]


@dataclass(frozen=True)
class StoredFeedback:
    """One stored user feedback, shaped for a Sentry-style User Feedback API.

    ``message``, ``contact_email``, ``name``, ``url``, ``associated_event_id``,
    ``replay_id`` and ``source`` come from ``contexts.feedback``; ``url`` falls back to
    ``request.url``, ``trace_id`` and ``sdk`` fall back to the envelope header.
    ``tags`` is always a ``str -> str`` dict; ``data`` is the full event JSON.
    """

    id: int
    event_id: str
    project_id: str
    message: str
    contact_email: str | None
    name: str | None
    url: str | None
    associated_event_id: str | None
    replay_id: str | None
    source: str | None
    environment: str | None
    release: str | None
    dist: str | None
    platform: str | None
    timestamp: float | None
    tags: dict[str, str]
    user: dict[str, Any] | None
    trace_id: str | None
    sdk: dict[str, Any] | None
    status: str
    received_at: float
    data: dict[str, Any]


@dataclass(frozen=True)
class StoredAttachment:
    """One stored attachment with its bytes; ``event_id`` is the envelope's event id."""

    id: int
    event_id: str | None
    project_id: str
    filename: str
    content_type: str
    attachment_type: str
    size: int
    data: bytes = field(repr=False)
    received_at: float


@dataclass
class _Prepared:
    """The rows one envelope turns into, computed before anything is written."""

    events: list[dict[str, Any]] = field(default_factory=list)
    feedback: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)


class FeedbackStore:
    """Thread-safe SQLite storage for received envelopes, events, feedback and attachments.

    ``path`` is a file name or ``":memory:"`` (the default, a new empty database). A file
    database is reopened with its data when it exists. When it does not:

    - ``create=True`` (the default) creates it;
    - ``create=False`` raises :class:`FileNotFoundError` naming the path, and creates nothing.

    ``read_only=True`` opens an existing file for reading only (SQLite's ``mode=ro``),
    for tools that list what a receiver stored, even while it runs: the file must exist
    (:class:`FileNotFoundError` otherwise, whatever ``create`` says), its schema is not
    touched, and the writing methods (:meth:`store_envelope`, :meth:`set_feedback_status`)
    raise :class:`PermissionError`. ``":memory:"`` cannot be opened read-only (``ValueError``).
    Use :meth:`close` when done.

    Event ids are normalized to 32 lowercase hex digits, both when stored and when
    looked up. The first event or feedback stored under an event id wins: a resent
    envelope (an SDK retry) is recorded in ``envelopes`` but its event, feedback and
    attachments are not stored twice.
    """

    def __init__(self, path: str = ":memory:", *, create: bool = True, read_only: bool = False) -> None:
        self._path = path
        self._read_only = read_only
        self._lock = threading.Lock()
        self._closed = False
        in_memory = path == ":memory:" or path.startswith("file::memory:")
        if in_memory and read_only:
            raise ValueError("an in-memory FeedbackStore cannot be read-only: there is nothing to read")
        must_exist = not in_memory and (read_only or not create)
        if must_exist:
            self._conn = _connect_existing(path, "ro" if read_only else "rw")
        else:
            self._conn = sqlite3.connect(path, check_same_thread=False)
        try:
            self._conn.execute("PRAGMA foreign_keys = ON")
            if not in_memory:
                if not read_only:
                    self._conn.execute("PRAGMA journal_mode = WAL")
                    self._conn.execute("PRAGMA synchronous = NORMAL")
                self._conn.execute("PRAGMA busy_timeout = 5000")
            if not read_only:
                self._conn.executescript(_SCHEMA)
                with self._conn:
                    self._conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        except BaseException:
            self._conn.close()
            raise

    @property
    def path(self) -> str:
        """The database path given to the constructor."""
        return self._path

    @property
    def read_only(self) -> bool:
        """Whether the store was opened with ``read_only=True`` (writing methods then raise)."""
        return self._read_only

    # -- writing ---------------------------------------------------------------------

    def store_envelope(self, project_id: str, envelope: Envelope, size: int) -> None:
        """Store ``envelope`` received for ``project_id`` (``size`` bytes), in one transaction.

        Raises :class:`~sentry_feedback.exceptions.EnvelopeParseError` (and stores
        nothing) when an ``event``, ``feedback`` or ``client_report`` payload is not a
        JSON object of the expected shape, a feedback has no ``contexts.feedback.message``,
        or an attachment has no filename. Raises :class:`PermissionError` on a read-only store.
        """
        self._check_writable()
        received_at = time.time()
        envelope_event_id = _normalize_id(envelope.event_id)
        prepared = _prepare(envelope, envelope_event_id, project_id, received_at)
        envelope_row = {
            "project_id": project_id,
            "event_id": envelope_event_id,
            "received_at": received_at,
            "headers": _dumps(envelope.headers),
            "size": size,
            "item_types": _dumps([item.type for item in envelope.items]),
        }
        with self._lock, self._conn:
            envelope_id = self._conn.execute(
                "INSERT INTO envelopes (project_id, event_id, received_at, headers, size, item_types)"
                " VALUES (:project_id, :event_id, :received_at, :headers, :size, :item_types)",
                envelope_row,
            ).lastrowid
            inserted = 0
            for row in prepared.events:
                inserted += self._conn.execute(
                    "INSERT OR IGNORE INTO events (event_id, envelope_id, project_id, type, level,"
                    " message, timestamp, received_at, data) VALUES (:event_id, :envelope_id,"
                    " :project_id, :type, :level, :message, :timestamp, :received_at, :data)",
                    {**row, "envelope_id": envelope_id},
                ).rowcount
            for row in prepared.feedback:
                inserted += self._conn.execute(
                    "INSERT OR IGNORE INTO feedback (event_id, envelope_id, project_id, message,"
                    " contact_email, name, url, associated_event_id, replay_id, source, environment,"
                    " release, dist, platform, timestamp, tags, user, trace_id, sdk, received_at, data)"
                    " VALUES (:event_id, :envelope_id, :project_id, :message, :contact_email, :name,"
                    " :url, :associated_event_id, :replay_id, :source, :environment, :release, :dist,"
                    " :platform, :timestamp, :tags, :user, :trace_id, :sdk, :received_at, :data)",
                    {**row, "envelope_id": envelope_id},
                ).rowcount
            duplicate = bool(prepared.events or prepared.feedback) and inserted == 0
            if not duplicate:
                self._conn.executemany(
                    "INSERT INTO attachments (envelope_id, project_id, event_id, filename, content_type,"
                    " attachment_type, size, data, received_at) VALUES (:envelope_id, :project_id,"
                    " :event_id, :filename, :content_type, :attachment_type, :size, :data, :received_at)",
                    [{**row, "envelope_id": envelope_id} for row in prepared.attachments],
                )
            self._conn.executemany(
                "INSERT INTO client_reports (envelope_id, project_id, timestamp, reason, category,"
                " quantity, received_at) VALUES (:envelope_id, :project_id, :timestamp, :reason,"
                " :category, :quantity, :received_at)",
                [{**row, "envelope_id": envelope_id} for row in prepared.reports],
            )

    def set_feedback_status(self, event_id: str, status: str) -> bool:
        """Set a feedback's ``status`` (e.g. ``resolved``); False when there is no such feedback.

        Raises :class:`PermissionError` on a read-only store.
        """
        self._check_writable()
        if not isinstance(status, str) or not status:
            raise ValueError("status must be a non-empty string")
        key = _normalize_id(event_id)
        with self._lock, self._conn:
            cursor = self._conn.execute("UPDATE feedback SET status = ? WHERE event_id = ?", (status, key))
            return cursor.rowcount > 0

    # -- reading ---------------------------------------------------------------------

    def list_feedback(self, project_id: str | None = None) -> list[StoredFeedback]:
        """All feedback (of ``project_id`` if given), oldest first."""
        rows = self._select("feedback", *_by_project(project_id))
        return [_from_row(StoredFeedback, row) for row in rows]

    def search(
        self,
        *,
        where: str = "1",
        params: Sequence[object] = (),
        projects: Sequence[str] | None = None,
        environments: Sequence[str] | None = None,
        start: float | None = None,
        end: float | None = None,
        sort: str = "-timestamp",
        limit: int = 10,
        offset: int = 0,
    ) -> tuple[list[StoredFeedback], int]:
        """One page of the feedback matching all filters, and how many match in all.

        ``where`` and ``params`` are a SQL condition over ``feedback`` and its bound values, as
        :func:`~._search.compile_query` makes them (never text from a request). ``projects`` and
        ``environments`` keep feedback of those (an empty sequence keeps none); ``start`` and ``end``
        keep timestamps ``start <= t < end``. ``sort`` is ``timestamp``, ``-timestamp`` (newest
        first, the default), ``projectId`` or ``-projectId`` (then newest first); ties are broken
        by ``id`` so that pages do not overlap (``timestamp`` is the exact reverse of ``-timestamp``).
        ``ValueError`` for another ``sort`` or a negative ``limit`` or ``offset``.
        """
        order = _SORTS.get(sort)
        if order is None:
            raise ValueError(f"sort must be one of {', '.join(_SORTS)}, not {sort!r}")
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        clauses, values = [f"({where})"], list(params)
        for column, allowed in (("project_id", projects), ("environment", environments)):
            if allowed is not None:
                clauses.append(f"{column} IN ({', '.join('?' * len(allowed))})" if allowed else "0")
                values += allowed
        for bound, operator in ((start, ">="), (end, "<")):
            if bound is not None:
                clauses.append(f"timestamp {operator} ?")
                values.append(bound)
        condition = " AND ".join(clauses)
        with self._lock:
            cursor = self._conn.cursor()
            cursor.row_factory = sqlite3.Row
            sql = f"SELECT * FROM feedback WHERE {condition} ORDER BY {order} LIMIT ? OFFSET ?"
            rows = list(cursor.execute(sql, [*values, limit, offset]))
            (total,) = self._conn.execute(f"SELECT COUNT(*) FROM feedback WHERE {condition}", values).fetchone()
        return [_from_row(StoredFeedback, row) for row in rows], int(total)

    def get_feedback(self, event_id: str) -> StoredFeedback | None:
        """The feedback with ``event_id`` (dashes and case do not matter), or None."""
        rows = self._select("feedback", "event_id = ?", [_normalize_id(event_id)])
        return _from_row(StoredFeedback, rows[0]) if rows else None

    def list_events(self, project_id: str | None = None, *, event_type: str | None = None) -> list[StoredEvent]:
        """All events (of ``project_id`` and of type ``event_type`` when given), oldest first."""
        clauses: list[str] = []
        params: list[Any] = []
        if project_id is not None:
            clauses.append("project_id = ?")
            params.append(project_id)
        if event_type is not None:
            clauses.append("type = ?")
            params.append(event_type)
        rows = self._select("events", " AND ".join(clauses), params)
        return [_from_row(StoredEvent, row) for row in rows]

    def get_event(self, event_id: str) -> StoredEvent | None:
        """The event with ``event_id`` (dashes and case do not matter), or None."""
        rows = self._select("events", "event_id = ?", [_normalize_id(event_id)])
        return _from_row(StoredEvent, rows[0]) if rows else None

    def list_attachments(self, event_id: str) -> list[StoredAttachment]:
        """The attachments sent for ``event_id``, with their bytes, in arrival order."""
        rows = self._select("attachments", "event_id = ?", [_normalize_id(event_id)])
        return [_from_row(StoredAttachment, row) for row in rows]

    def list_envelopes(self, project_id: str | None = None) -> list[StoredEnvelope]:
        """All stored envelopes (of ``project_id`` if given), oldest first."""
        rows = self._select("envelopes", *_by_project(project_id))
        return [
            StoredEnvelope(
                id=row["id"],
                project_id=row["project_id"],
                event_id=row["event_id"],
                received_at=row["received_at"],
                headers=json.loads(row["headers"]),
                size=row["size"],
                item_types=tuple(json.loads(row["item_types"])),
            )
            for row in rows
        ]

    def client_report_totals(self, project_id: str | None = None) -> dict[tuple[str, str], int]:
        """Summed ``quantity`` of all client-report ``discarded_events`` by ``(reason, category)``."""
        sql = "SELECT reason, category, SUM(quantity) FROM client_reports"
        params: tuple[Any, ...] = ()
        if project_id is not None:
            sql += " WHERE project_id = ?"
            params = (project_id,)
        sql += " GROUP BY reason, category ORDER BY reason, category"
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return {(reason, category): int(total) for reason, category, total in rows}

    def count_envelopes(self) -> int:
        """How many envelopes have been stored."""
        with self._lock:
            (count,) = self._conn.execute("SELECT COUNT(*) FROM envelopes").fetchone()
        return int(count)

    def close(self) -> None:
        """Close the database; later calls do nothing, other methods then raise."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._read_only:
            return f"FeedbackStore({self._path!r}, read_only=True)"
        return f"FeedbackStore({self._path!r})"

    def _check_writable(self) -> None:
        if self._read_only:
            raise PermissionError(f"FeedbackStore {self._path!r} was opened with read_only=True and cannot be written")

    def _select(self, table: str, where: str | None = None, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        # ``table`` and ``where`` are literals from this module; values are always bound.
        sql = f"SELECT * FROM {table}"
        if where:
            sql += f" WHERE {where}"
        sql += " ORDER BY id"
        with self._lock:
            cursor = self._conn.cursor()
            cursor.row_factory = sqlite3.Row
            return list(cursor.execute(sql, params))


def _connect_existing(path: str, mode: str) -> sqlite3.Connection:
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


# -- turning an envelope into rows ------------------------------------------------------


def _by_project(project_id: str | None) -> tuple[str | None, list[Any]]:
    return ("project_id = ?", [project_id]) if project_id is not None else (None, [])


def _prepare(envelope: Envelope, envelope_event_id: str | None, project_id: str, received_at: float) -> _Prepared:
    prepared = _Prepared()
    common = {"project_id": project_id, "received_at": received_at}
    for item in envelope.items:
        if item.type == "event":
            payload = _json_object_payload(item.type, item.get_json())
            event_id = envelope_event_id or _normalize_id(_opt_str(payload, "event_id")) or uuid.uuid4().hex
            prepared.events.append({**common, **_event_fields(payload), "event_id": event_id})
        elif item.type == "feedback":
            payload = _json_object_payload(item.type, item.get_json())
            event_id = envelope_event_id or _normalize_id(_opt_str(payload, "event_id")) or uuid.uuid4().hex
            prepared.feedback.append({**common, **_feedback_fields(payload, envelope), "event_id": event_id})
        elif item.type == "user_report":
            # Older SDKs' feedback: {event_id (of the error), name, email, comments}. It becomes a
            # feedback of its own, linked to that error.
            payload = _json_object_payload(item.type, item.get_json())
            event = _feedback_from_user_report(payload, received_at)
            prepared.feedback.append({**common, **_feedback_fields(event, envelope), "event_id": event["event_id"]})
        elif item.type == "client_report":
            payload = _json_object_payload(item.type, item.get_json())
            prepared.reports.extend({**common, **entry} for entry in _client_report_entries(payload))
    owners = [row["event_id"] for row in prepared.events + prepared.feedback]
    attachment_event_id = envelope_event_id or (owners[0] if len(owners) == 1 else None)
    for item in envelope.items_of_type("attachment"):
        filename = item.headers.get("filename")
        if not isinstance(filename, str) or not filename:
            raise EnvelopeParseError("attachment item has no filename")
        data = item.payload
        prepared.attachments.append(
            {
                **common,
                "event_id": attachment_event_id,
                "filename": filename,
                "content_type": _header_str(item.headers, "content_type", _DEFAULT_CONTENT_TYPE),
                "attachment_type": _header_str(item.headers, "attachment_type", _DEFAULT_ATTACHMENT_TYPE),
                "size": len(data),
                "data": data,
            }
        )
    return prepared


def _event_fields(payload: dict[str, Any]) -> dict[str, Any]:
    event_type = _opt_str(payload, "type") or ("error" if payload.get("exception") else "default")
    return {
        "type": event_type,
        "level": _opt_str(payload, "level"),
        "message": _event_message(payload),
        "timestamp": _parse_timestamp(payload.get("timestamp")),
        "data": _dumps(payload),
    }


def _feedback_fields(payload: dict[str, Any], envelope: Envelope) -> dict[str, Any]:
    contexts = _dict(payload.get("contexts"))
    feedback = contexts.get("feedback")
    if not isinstance(feedback, dict):
        raise EnvelopeParseError("feedback item has no contexts.feedback object")
    message = feedback.get("message")
    if not isinstance(message, str) or not message.strip():
        raise EnvelopeParseError("feedback item has no contexts.feedback.message")
    trace = _dict(contexts.get("trace"))
    header_trace = _dict(envelope.headers.get("trace"))
    request = _dict(payload.get("request"))
    user = payload.get("user")
    sdk = payload.get("sdk") if isinstance(payload.get("sdk"), dict) else envelope.headers.get("sdk")
    return {
        "message": message,
        "contact_email": _opt_str(feedback, "contact_email"),
        "name": _opt_str(feedback, "name"),
        "url": _opt_str(feedback, "url") or _opt_str(request, "url"),
        "associated_event_id": _normalize_id(_opt_str(feedback, "associated_event_id")),
        "replay_id": _opt_str(feedback, "replay_id"),
        "source": _opt_str(feedback, "source"),
        "environment": _opt_str(payload, "environment"),
        "release": _opt_str(payload, "release"),
        "dist": _opt_str(payload, "dist"),
        "platform": _opt_str(payload, "platform"),
        "timestamp": _parse_timestamp(payload.get("timestamp")),
        "tags": _dumps(_tags(payload.get("tags"))),
        "user": _dumps(user) if isinstance(user, dict) else None,
        "trace_id": _opt_str(trace, "trace_id") or _opt_str(header_trace, "trace_id"),
        "sdk": _dumps(sdk) if isinstance(sdk, dict) else None,
        "data": _dumps(payload),
    }


def _feedback_from_user_report(payload: dict[str, Any], received_at: float) -> dict[str, Any]:
    """The feedback event for a ``user_report`` item (``comments`` is the message)."""
    comments = payload.get("comments")
    if not isinstance(comments, str) or not comments.strip():
        raise EnvelopeParseError("user_report item has no comments")
    feedback: dict[str, Any] = {"message": comments}
    for key, field_name in (("email", "contact_email"), ("name", "name")):
        value = payload.get(key)
        if isinstance(value, str) and value:
            feedback[field_name] = value
    associated = _normalize_id(_opt_str(payload, "event_id"))
    if associated:
        feedback["associated_event_id"] = associated
    return {
        "type": "feedback",
        "event_id": uuid.uuid4().hex,
        "timestamp": received_at,
        "platform": "other",
        "level": "info",
        "contexts": {"feedback": feedback},
    }


def _client_report_entries(payload: dict[str, Any]) -> Iterable[dict[str, Any]]:
    timestamp = _parse_timestamp(payload.get("timestamp"))
    discarded = payload.get("discarded_events", [])
    if not isinstance(discarded, list):
        raise EnvelopeParseError("client_report discarded_events must be a list")
    entries = []
    for index, entry in enumerate(discarded):
        if not isinstance(entry, dict):
            raise EnvelopeParseError(f"client_report discarded_events[{index}] must be an object")
        reason, category, quantity = entry.get("reason"), entry.get("category"), entry.get("quantity")
        if not isinstance(reason, str) or not isinstance(category, str):
            raise EnvelopeParseError(f"client_report discarded_events[{index}] needs string reason and category")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
            raise EnvelopeParseError(f"client_report discarded_events[{index}] has an invalid quantity {quantity!r}")
        entries.append({"timestamp": timestamp, "reason": reason, "category": category, "quantity": quantity})
    return entries


def _json_object_payload(item_type: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EnvelopeParseError(f"{item_type} item payload must be a JSON object, not {type(value).__name__}")
    return value


def _event_message(payload: dict[str, Any]) -> str | None:
    for key in ("message", "logentry"):
        value = payload.get(key)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, dict):
            text = _opt_str(value, "formatted") or _opt_str(value, "message")
            if text:
                return text
    values = _dict(payload.get("exception")).get("values")
    if isinstance(values, list) and values and isinstance(values[-1], dict):
        exc_type = _opt_str(values[-1], "type")
        exc_value = _opt_str(values[-1], "value")
        if exc_type and exc_value:
            return f"{exc_type}: {exc_value}"
        return exc_type or exc_value
    return None


def _tags(value: Any) -> dict[str, str]:
    pairs: Iterable[Any]
    if isinstance(value, dict):
        pairs = value.items()
    elif isinstance(value, list):
        pairs = (pair for pair in value if isinstance(pair, (list, tuple)) and len(pair) == 2)
    else:
        return {}
    return {str(key): _text(val) for key, val in pairs if val is not None}


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def _parse_timestamp(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value:
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        # Python 3.10's fromisoformat takes only 3 or 6 fractional digits.
        text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.timestamp()
    return None


def _normalize_id(value: str | None) -> str | None:
    """32 lowercase hex digits for anything that parses as a UUID; other strings unchanged."""
    if value is None:
        return None
    try:
        return uuid.UUID(value.strip()).hex
    except ValueError:
        return value


def _opt_str(mapping: Mapping[str, Any], key: str) -> str | None:
    value = mapping.get(key)
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _header_str(headers: Mapping[str, Any], key: str, default: str) -> str:
    value = headers.get(key)
    return value if isinstance(value, str) and value else default


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


_JSON_COLUMNS = frozenset({"data", "tags", "user", "sdk"})
_Row = TypeVar("_Row", StoredEvent, StoredFeedback, StoredAttachment)


def _from_row(cls: type[_Row], row: sqlite3.Row) -> _Row:
    """Build a stored-record dataclass from the row's columns of the same names.

    JSON text columns are decoded; BLOB columns (attachment data) stay bytes.
    """
    values: dict[str, Any] = {}
    for f in fields(cls):
        value = row[f.name]
        if isinstance(value, str) and f.name in _JSON_COLUMNS:
            value = json.loads(value)
        elif isinstance(value, memoryview):
            value = bytes(value)
        values[f.name] = value
    return cls(**values)
