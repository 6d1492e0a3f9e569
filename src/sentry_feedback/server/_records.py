"""The records a :class:`~sentry_feedback.server.FeedbackStore` returns: small frozen dataclasses built from rows."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from ..exceptions import EnvelopeParseError
from ._rows import transaction_spans

__all__ = [
    "SessionTotals",
    "StoredAttachment",
    "StoredEnvelope",
    "StoredEvent",
    "StoredFeedback",
    "StoredSession",
    "StoredSessionAggregate",
    "StoredSpan",
    "StoredTransaction",
    "from_row",
    "transaction_from_row",
]


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


@dataclass(frozen=True)
class StoredSpan:
    """One span of a stored transaction; times are Unix seconds, ``duration`` is in seconds."""

    span_id: str
    parent_span_id: str | None
    trace_id: str
    op: str | None
    description: str | None
    status: str | None
    start_timestamp: float
    timestamp: float
    data: dict[str, Any]

    @property
    def duration(self) -> float:
        """How long the span took, in seconds."""
        return self.timestamp - self.start_timestamp


@dataclass(frozen=True)
class StoredTransaction:
    """One stored ``transaction`` item: a trace's root span (or a service's part of a trace) and its spans.

    ``trace_id``, ``span_id``, ``parent_span_id``, ``op`` and ``status`` come from ``contexts.trace``,
    ``name`` is the event's ``transaction``; ``start_timestamp`` and ``timestamp`` (the end) are Unix
    seconds whichever way the SDK wrote them. ``spans`` are in the order the SDK sent them; ``data`` is
    the full event JSON.
    """

    id: int
    event_id: str
    project_id: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str | None
    op: str | None
    status: str | None
    start_timestamp: float
    timestamp: float
    release: str | None
    environment: str | None
    received_at: float
    spans: tuple[StoredSpan, ...] = field(repr=False)
    data: dict[str, Any] = field(repr=False)

    @property
    def duration(self) -> float:
        """How long the transaction took, in seconds."""
        return self.timestamp - self.start_timestamp


@dataclass(frozen=True)
class StoredSession:
    """The latest state of one session (``session`` items): an update replaces an older one of the same ``sid``.

    ``status`` is ``ok`` (still running), ``exited``, ``errored``, ``crashed`` or ``abnormal``; ``started``
    and ``timestamp`` (the update's time) are Unix seconds; ``data`` is the latest update's JSON.
    """

    id: int
    project_id: str
    sid: str
    did: str | None
    init: bool
    started: float
    timestamp: float
    status: str
    errors: int
    duration: float | None
    release: str
    environment: str | None
    received_at: float
    data: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class StoredSessionAggregate:
    """One bucket of session counts (``sessions`` items): counts of the same bucket are summed.

    A bucket is the ``started`` minute (Unix seconds), the release, the environment and the ``did``
    (None when the SDK sent none); ``received_at`` is when it last changed.
    """

    id: int
    project_id: str
    started: float
    release: str
    environment: str | None
    did: str | None
    exited: int
    errored: int
    abnormal: int
    crashed: int
    received_at: float


@dataclass(frozen=True)
class SessionTotals:
    """How many sessions of a release ended each way, from session updates and aggregates together.

    ``ok`` counts sessions still running without errors; a session that ran or exited with ``errors``
    counts as ``errored``, as in Sentry's release health.
    """

    release: str
    ok: int = 0
    exited: int = 0
    errored: int = 0
    crashed: int = 0
    abnormal: int = 0

    @property
    def total(self) -> int:
        """All sessions counted."""
        return self.ok + self.exited + self.errored + self.crashed + self.abnormal


_JSON_COLUMNS = frozenset({"data", "tags", "user", "sdk"})
_Row = TypeVar("_Row", StoredEvent, StoredFeedback, StoredAttachment, StoredSession, StoredSessionAggregate)


def from_row(cls: type[_Row], row: sqlite3.Row) -> _Row:
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
    if cls is StoredSession:
        values["init"] = bool(values["init"])
    if cls is StoredSessionAggregate:  # stored as "" in the bucket's key
        values["environment"] = values["environment"] or None
        values["did"] = values["did"] or None
    return cls(**values)


def transaction_from_row(row: sqlite3.Row) -> StoredTransaction:
    """A :class:`StoredTransaction` from its row, with its spans read from the event JSON."""
    data = json.loads(row["data"])
    try:
        spans = tuple(StoredSpan(**span) for span in transaction_spans(data, row["trace_id"]))
    except EnvelopeParseError:  # checked when stored: only a row written by other means
        spans = ()
    values = {f.name: row[f.name] for f in fields(StoredTransaction) if f.name not in ("spans", "data")}
    return StoredTransaction(**values, spans=spans, data=data)
