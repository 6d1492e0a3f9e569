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
``transactions``
    ``transaction`` items: trace and span ids, name, op, status, start and end, full JSON
    (with the spans). Indexed by trace id, so that a trace's transactions are found at once.
``sessions``
    The latest state of each session (``session`` items), one row per project and ``sid``.
``session_aggregates``
    ``sessions`` items' counts, one row per project, release, environment, minute and ``did``.

Read methods return small frozen dataclasses (:class:`StoredFeedback`,
:class:`StoredEvent`, :class:`StoredAttachment`, :class:`StoredEnvelope`,
:class:`StoredTransaction`, :class:`StoredSession`, :class:`StoredSessionAggregate`,
:class:`SessionTotals`). Times are Unix timestamps in seconds (``float``); event ids
and trace ids are 32 lowercase hex digits.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._envelope import Envelope
from ._records import (
    SessionTotals,
    StoredAttachment,
    StoredEnvelope,
    StoredEvent,
    StoredFeedback,
    StoredSession,
    StoredSessionAggregate,
    StoredTransaction,
    from_row,
    transaction_from_row,
)
from ._rows import MAX_COUNT, SESSION_STATUSES, dumps, normalize_id, prepare
from ._schema import SORTS, beyond, connect_existing, migrate, sort_key

__all__ = [
    "FeedbackStore",
    "SessionTotals",
    "StoredAttachment",
    "StoredEnvelope",
    "StoredEvent",
    "StoredFeedback",
    "StoredSession",
    "StoredSessionAggregate",
    "StoredTransaction",
]


@dataclass(frozen=True)
class FeedbackPage:
    """What :meth:`FeedbackStore.page` finds: the items, the total matching, and whether pages lie either side."""

    items: list[StoredFeedback]
    total: int
    has_next: bool
    has_previous: bool


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
            self._conn = connect_existing(path, "ro" if read_only else "rw")
        else:
            self._conn = sqlite3.connect(path, check_same_thread=False)
        # Free-text search folds case the way Python does (SQLite's lower() knows ASCII only).
        self._conn.create_function("casefold", 1, _casefold, deterministic=True)
        try:
            self._conn.execute("PRAGMA foreign_keys = ON")
            if not in_memory:
                if not read_only:
                    self._conn.execute("PRAGMA journal_mode = WAL")
                    self._conn.execute("PRAGMA synchronous = NORMAL")
                self._conn.execute("PRAGMA busy_timeout = 5000")
            if not read_only:
                migrate(self._conn)
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
        nothing) when an ``event``, ``feedback``, ``transaction``, ``session``, ``sessions`` or
        ``client_report`` payload is not a JSON object of the expected shape, a feedback has no
        ``contexts.feedback.message``, or an attachment has no filename. Raises
        :class:`PermissionError` on a read-only store.

        A transaction is stored once per event id, like an event. A session update replaces the
        stored state of its ``sid`` unless that state is newer (a later ``timestamp``); aggregate
        counts are added to those of the same bucket.
        """
        self._check_writable()
        received_at = time.time()
        envelope_event_id = normalize_id(envelope.event_id)
        prepared = prepare(envelope, envelope_event_id, project_id, received_at)
        envelope_row = {
            "project_id": project_id,
            "event_id": envelope_event_id,
            "received_at": received_at,
            "headers": dumps(envelope.headers),
            "size": size,
            "item_types": dumps([item.type for item in envelope.items]),
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
            for row in prepared.transactions:
                inserted += self._conn.execute(
                    "INSERT OR IGNORE INTO transactions (event_id, envelope_id, project_id, trace_id, span_id,"
                    " parent_span_id, name, op, status, start_timestamp, timestamp, release, environment,"
                    " received_at, data) VALUES (:event_id, :envelope_id, :project_id, :trace_id, :span_id,"
                    " :parent_span_id, :name, :op, :status, :start_timestamp, :timestamp, :release,"
                    " :environment, :received_at, :data)",
                    {**row, "envelope_id": envelope_id},
                ).rowcount
            duplicate = bool(prepared.events or prepared.feedback or prepared.transactions) and inserted == 0
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
            # The latest update of a session wins, whatever order they arrive in.
            self._conn.executemany(
                "INSERT INTO sessions (project_id, sid, did, init, started, timestamp, status, errors, duration,"
                " release, environment, received_at, data) VALUES (:project_id, :sid, :did, :init, :started,"
                " :timestamp, :status, :errors, :duration, :release, :environment, :received_at, :data)"
                " ON CONFLICT (project_id, sid) DO UPDATE SET did = excluded.did, init = excluded.init,"
                " started = excluded.started, timestamp = excluded.timestamp, status = excluded.status,"
                " errors = excluded.errors, duration = excluded.duration, release = excluded.release,"
                " environment = excluded.environment, received_at = excluded.received_at, data = excluded.data"
                " WHERE excluded.timestamp >= sessions.timestamp",
                prepared.sessions,
            )
            self._conn.executemany(
                "INSERT INTO session_aggregates (project_id, started, release, environment, did, exited,"
                " errored, abnormal, crashed, received_at) VALUES (:project_id, :started, :release,"
                " :environment, :did, :exited, :errored, :abnormal, :crashed, :received_at)"
                " ON CONFLICT (project_id, release, environment, started, did) DO UPDATE SET"
                f" exited = MIN(exited + excluded.exited, {MAX_COUNT}),"
                f" errored = MIN(errored + excluded.errored, {MAX_COUNT}),"
                f" abnormal = MIN(abnormal + excluded.abnormal, {MAX_COUNT}),"
                f" crashed = MIN(crashed + excluded.crashed, {MAX_COUNT}),"
                " received_at = excluded.received_at",
                prepared.aggregates,
            )

    def set_feedback_status(self, event_id: str, status: str) -> bool:
        """Set a feedback's ``status`` (e.g. ``resolved``); False when there is no such feedback.

        Raises :class:`PermissionError` on a read-only store.
        """
        self._check_writable()
        if not isinstance(status, str) or not status:
            raise ValueError("status must be a non-empty string")
        key = normalize_id(event_id)
        with self._lock, self._conn:
            cursor = self._conn.execute("UPDATE feedback SET status = ? WHERE event_id = ?", (status, key))
            return cursor.rowcount > 0

    def delete_feedback(self, event_id: str) -> bool:
        """Delete a feedback and the attachments sent with it; False when there is no such feedback.

        Raises :class:`PermissionError` on a read-only store.
        """
        self._check_writable()
        key = normalize_id(event_id)
        with self._lock, self._conn:
            deleted = self._conn.execute("DELETE FROM feedback WHERE event_id = ?", (key,)).rowcount
            if deleted:
                self._conn.execute("DELETE FROM attachments WHERE event_id = ?", (key,))
            return deleted > 0

    def setting(self, key: str, default: str) -> str:
        """The value stored under ``key``; stores ``default`` first when there is none (the first writer wins).

        Several processes sharing the database (workers of one server) agree on the value.
        """
        with self._lock:
            if not self._read_only:
                with self._conn:
                    self._conn.execute("INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)", (key, default))
            row = self._conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row is not None else default

    # -- reading ---------------------------------------------------------------------

    def list_feedback(self, project_id: str | None = None) -> list[StoredFeedback]:
        """All feedback (of ``project_id`` if given), oldest first."""
        rows = self._select("feedback", *_by_project(project_id))
        return [from_row(StoredFeedback, row) for row in rows]

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

        The same as :meth:`page` without a cursor, as a pair ``(items, total)``.
        """
        found = self.page(
            where=where,
            params=params,
            projects=projects,
            environments=environments,
            start=start,
            end=end,
            sort=sort,
            limit=limit,
            offset=offset,
        )
        return found.items, found.total

    def page(
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
        after: Sequence[object] | None = None,
        before: Sequence[object] | None = None,
        max_total: int | None = None,
    ) -> FeedbackPage:
        """One page of the feedback matching all filters, whether there are more, and how many match in all.

        ``where`` and ``params`` are a SQL condition over ``feedback`` and its bound values, as
        :func:`~._search.compile_query` makes them (never text from a request). ``projects`` and
        ``environments`` keep feedback of those (an empty sequence keeps none); ``start`` and ``end``
        keep timestamps ``start <= t < end``. ``sort`` is ``timestamp``, ``-timestamp`` (newest
        first, the default), ``projectId`` or ``-projectId`` (then newest first); ties are broken
        by ``id``, so the order is total and pages never overlap.

        ``after`` (or ``before``) is the :meth:`sort_key` of an item: the page then holds the
        items that come after (before) it in that order, skipping ``offset`` more. Keys, unlike
        offsets, keep pages free of duplicates and gaps while new feedback arrives.
        ``total`` counts at most ``max_total`` items when it is given.
        ``ValueError`` for another ``sort``, a negative ``limit`` or ``offset``, a key of the wrong
        length, or both ``after`` and ``before``.
        """
        order = SORTS.get(sort)
        if order is None:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}, not {sort!r}")
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        if after is not None and before is not None:
            raise ValueError("give after or before, not both")
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
        backwards = before is not None
        key = before if backwards else after
        page_condition, page_values = condition, values
        if key is not None:
            condition_beyond, beyond_values = beyond(order, key, backwards=backwards)
            page_condition, page_values = f"{condition} AND {condition_beyond}", [*values, *beyond_values]
        sql_order = (
            ", ".join(f"{column} {'ASC' if desc else 'DESC'}" for column, desc in order)
            if backwards
            else (", ".join(f"{column} {'DESC' if desc else 'ASC'}" for column, desc in order))
        )
        with self._lock:
            cursor = self._conn.cursor()
            cursor.row_factory = sqlite3.Row
            sql = f"SELECT * FROM feedback WHERE {page_condition} ORDER BY {sql_order} LIMIT ? OFFSET ?"
            rows = list(cursor.execute(sql, [*page_values, limit + 1, offset]))
            more = len(rows) > limit
            rows = rows[:limit]
            if backwards:
                rows.reverse()
            items = [from_row(StoredFeedback, row) for row in rows]
            if max_total is None:
                (total,) = self._conn.execute(f"SELECT COUNT(*) FROM feedback WHERE {condition}", values).fetchone()
            else:  # counting stops there: the cost of a count is bounded too
                sql = f"SELECT COUNT(*) FROM (SELECT 1 FROM feedback WHERE {condition} LIMIT ?)"
                (total,) = self._conn.execute(sql, [*values, max_total]).fetchone()
            # The other direction: is there anything before the first item (after the last)?
            if key is None and not offset:
                other = 0  # the page starts at the very beginning
            elif not items and key is None:
                other = total
            else:
                if items:
                    edge = items[-1] if backwards else items[0]
                    other_condition, other_values = beyond(order, sort_key(order, edge), backwards=not backwards)
                else:
                    assert key is not None
                    other_condition, other_values = beyond(order, key, backwards=not backwards, inclusive=True)
                sql = f"SELECT EXISTS (SELECT 1 FROM feedback WHERE {condition} AND {other_condition})"
                (other,) = self._conn.execute(sql, [*values, *other_values]).fetchone()
        has_next, has_previous = (bool(other), more) if backwards else (more, bool(other))
        return FeedbackPage(items, int(total), has_next, has_previous)

    @staticmethod
    def sort_key(feedback: StoredFeedback, sort: str) -> tuple[object, ...]:
        """Where ``feedback`` stands in the order ``sort`` (a key for :meth:`page`'s ``after``/``before``)."""
        order = SORTS.get(sort)
        if order is None:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}, not {sort!r}")
        return sort_key(order, feedback)

    def get_feedback(self, event_id: str) -> StoredFeedback | None:
        """The feedback with ``event_id`` (dashes and case do not matter), or None."""
        rows = self._select("feedback", "event_id = ?", [normalize_id(event_id)])
        return from_row(StoredFeedback, rows[0]) if rows else None

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
        return [from_row(StoredEvent, row) for row in rows]

    def get_event(self, event_id: str) -> StoredEvent | None:
        """The event with ``event_id`` (dashes and case do not matter), or None."""
        rows = self._select("events", "event_id = ?", [normalize_id(event_id)])
        return from_row(StoredEvent, rows[0]) if rows else None

    def list_attachments(self, event_id: str) -> list[StoredAttachment]:
        """The attachments sent for ``event_id``, with their bytes, in arrival order."""
        rows = self._select("attachments", "event_id = ?", [normalize_id(event_id)])
        return [from_row(StoredAttachment, row) for row in rows]

    def get_attachment(self, attachment_id: int) -> StoredAttachment | None:
        """The attachment with this row id, with its bytes, or None."""
        rows = self._select("attachments", "id = ?", [attachment_id])
        return from_row(StoredAttachment, rows[0]) if rows else None

    def environments(self) -> list[str]:
        """The environments feedback was sent from, sorted (feedback without one is left out)."""
        sql = "SELECT DISTINCT environment FROM feedback WHERE environment IS NOT NULL ORDER BY environment"
        with self._lock:
            return [str(name) for (name,) in self._conn.execute(sql)]

    def attachment_counts(self, event_ids: Sequence[str]) -> dict[str, int]:
        """How many attachments each of ``event_ids`` has (ids without any are left out)."""
        keys = [normalize_id(event_id) for event_id in event_ids]
        if not keys:
            return {}
        sql = (
            f"SELECT event_id, COUNT(*) FROM attachments WHERE event_id IN ({', '.join('?' * len(keys))})"
            " GROUP BY event_id"
        )
        with self._lock:
            return {str(event_id): int(count) for event_id, count in self._conn.execute(sql, keys)}

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
        """Summed ``quantity`` of all client-report ``discarded_events`` by ``(reason, category)``.

        The sums are taken as SQLite's ``TOTAL`` (a float, exact up to 2**53), which never overflows as
        ``SUM`` of many large counts would.
        """
        sql = "SELECT reason, category, TOTAL(quantity) FROM client_reports"
        params: tuple[Any, ...] = ()
        if project_id is not None:
            sql += " WHERE project_id = ?"
            params = (project_id,)
        sql += " GROUP BY reason, category ORDER BY reason, category"
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return {(reason, category): int(total) for reason, category, total in rows}

    def list_transactions(self, project_id: str | None = None) -> list[StoredTransaction]:
        """All transactions (of ``project_id`` if given), in arrival order."""
        rows = self._select_new("transactions", *_by_project(project_id))
        return [transaction_from_row(row) for row in rows]

    def trace_transactions(self, trace_id: str, *, limit: int | None = None) -> list[StoredTransaction]:
        """The transactions of the trace ``trace_id`` of every project, by start time (at most ``limit``).

        The trace id is taken as the store keeps it: 32 lowercase hex digits (dashes and case do not matter).
        """
        if limit is not None and limit < 0:
            raise ValueError("limit must not be negative")
        sql = "SELECT * FROM transactions WHERE trace_id = ? ORDER BY start_timestamp, id LIMIT ?"
        rows = self._query_new(sql, [normalize_id(trace_id), -1 if limit is None else limit])
        return [transaction_from_row(row) for row in rows]

    def get_transaction(self, event_id: str) -> StoredTransaction | None:
        """The transaction with ``event_id`` (dashes and case do not matter), or None."""
        rows = self._select_new("transactions", "event_id = ?", [normalize_id(event_id)])
        return transaction_from_row(rows[0]) if rows else None

    def list_sessions(self, project_id: str | None = None, *, release: str | None = None) -> list[StoredSession]:
        """The latest state of every session (of ``project_id`` and ``release`` when given), by first arrival."""
        clauses, params = _filters(project_id=project_id, release=release)
        rows = self._select_new("sessions", clauses, params)
        return [from_row(StoredSession, row) for row in rows]

    def list_session_aggregates(
        self, project_id: str | None = None, *, release: str | None = None
    ) -> list[StoredSessionAggregate]:
        """Every bucket of aggregated session counts (of ``project_id`` and ``release`` when given)."""
        clauses, params = _filters(project_id=project_id, release=release)
        rows = self._select_new("session_aggregates", clauses, params)
        return [from_row(StoredSessionAggregate, row) for row in rows]

    def session_totals(
        self, project_id: str | None = None, *, environment: str | None = None
    ) -> dict[str, SessionTotals]:
        """How many sessions of each release ended each way, by release (sorted).

        Counts session updates (each session once, in its latest state) and aggregates together: a
        session still running is ``ok``, one that ran or exited with ``errors`` is ``errored``.
        """
        clauses, params = _filters(project_id=project_id, environment=environment)
        where = f" WHERE {clauses}" if clauses else ""
        individual = (
            "SELECT release, CASE WHEN status IN ('ok', 'exited') AND errors > 0 THEN 'errored' ELSE status END,"
            f" COUNT(*) FROM sessions{where} GROUP BY 1, 2"
        )
        aggregated = (
            "SELECT release, TOTAL(exited), TOTAL(errored), TOTAL(crashed), TOTAL(abnormal)"
            f" FROM session_aggregates{where} GROUP BY release"
        )
        counts: dict[str, dict[str, int]] = {}
        for release, status, count in self._query_new(individual, params):
            found = counts.setdefault(str(release), {})
            if status in SESSION_STATUSES:
                found[status] = found.get(status, 0) + int(count)
        for release, *sums in self._query_new(aggregated, params):
            found = counts.setdefault(str(release), {})
            for name, total in zip(("exited", "errored", "crashed", "abnormal"), sums, strict=True):
                found[name] = found.get(name, 0) + int(total)
        return {release: SessionTotals(release, **counts[release]) for release in sorted(counts)}

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

    def _select_new(self, table: str, where: str | None = None, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """:meth:`_select` on a table of schema version 2: nothing in a read-only database of version 1."""
        sql = f"SELECT * FROM {table}" + (f" WHERE {where}" if where else "") + " ORDER BY id"
        return self._query_new(sql, params)

    def _query_new(self, sql: str, params: Sequence[Any]) -> list[sqlite3.Row]:
        with self._lock:
            cursor = self._conn.cursor()
            cursor.row_factory = sqlite3.Row
            try:
                return list(cursor.execute(sql, params))
            except sqlite3.OperationalError as exc:
                # A reader of a database no writer of version 2 has opened yet: none of these tables.
                if self._read_only and str(exc).startswith("no such table"):
                    return []
                raise

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


def _by_project(project_id: str | None) -> tuple[str | None, list[Any]]:
    return ("project_id = ?", [project_id]) if project_id is not None else (None, [])


def _filters(**columns: str | None) -> tuple[str, list[Any]]:
    """``column = ?`` for each column given a value, joined with AND, and the values."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in columns.items():
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    return " AND ".join(clauses), params


def _casefold(value: str | None) -> str | None:
    return value.casefold() if isinstance(value, str) else value
