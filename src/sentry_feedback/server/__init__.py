"""A local Sentry envelope receiver for tests and development: stdlib only.

:class:`LocalReceiver` serves ``POST /api/<project_id>/envelope/`` on a local port,
checks auth and envelopes the way Sentry does, and stores feedback, events,
transactions, sessions, attachments and client reports in a SQLite :class:`FeedbackStore`::

    from sentry_feedback.server import LocalReceiver

    with LocalReceiver() as receiver:
        ...  # point an SDK at receiver.dsn
        assert receiver.wait_for_envelopes(1)
        feedback = receiver.store.list_feedback()

Tests can script answers (:meth:`LocalReceiver.respond_with`), wait without sleeping
(:meth:`LocalReceiver.wait_for_envelopes`) and inspect every request
(:attr:`LocalReceiver.received`). :func:`serve` runs a receiver until Ctrl-C.
"""

from __future__ import annotations

from ._app import Arrival, FeedbackApp, create_app
from ._config import ApiToken, Project, ServerConfig
from ._receiver import DEFAULT_MAX_BODY_SIZE, LocalReceiver, ReceivedRequest, serve
from ._records import (
    SessionTotals,
    StoredAttachment,
    StoredEnvelope,
    StoredEvent,
    StoredFeedback,
    StoredSession,
    StoredSessionAggregate,
    StoredSpan,
    StoredTransaction,
)
from ._store import FeedbackStore

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "ApiToken",
    "Arrival",
    "FeedbackApp",
    "FeedbackStore",
    "LocalReceiver",
    "Project",
    "ReceivedRequest",
    "ServerConfig",
    "SessionTotals",
    "StoredAttachment",
    "StoredEnvelope",
    "StoredEvent",
    "StoredFeedback",
    "StoredSession",
    "StoredSessionAggregate",
    "StoredSpan",
    "StoredTransaction",
    "create_app",
    "serve",
]
