"""The records a :class:`~sentry_feedback.server.FeedbackStore` returns: small frozen dataclasses built from rows."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

__all__ = ["StoredAttachment", "StoredEnvelope", "StoredEvent", "StoredFeedback", "from_row"]


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


_JSON_COLUMNS = frozenset({"data", "tags", "user", "sdk"})
_Row = TypeVar("_Row", StoredEvent, StoredFeedback, StoredAttachment)


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
    return cls(**values)
