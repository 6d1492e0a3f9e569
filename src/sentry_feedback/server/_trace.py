"""The trace routes of the REST API: a trace's transactions and spans as JSON, for the inbox's trace panel.

- ``GET /api/0/organizations/<org>/traces/<trace_id>/``: the transactions stored for a trace;
- ``GET /api/0/projects/<org>/<project>/user-feedback/<id>/trace/``: the same for a feedback's trace,
  with the feedback's span and time.

Answers are bounded: at most :data:`MAX_TRACE_TRANSACTIONS` transactions and :data:`MAX_TRACE_SPANS`
spans in all (``truncated`` says when more are stored), text cut at :data:`MAX_TEXT` characters.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ._records import StoredFeedback, StoredSpan, StoredTransaction
from ._rows import valid_span_id, valid_trace_id

if TYPE_CHECKING:
    from ._app import FeedbackApp

__all__ = ["MAX_TEXT", "MAX_TRACE_SPANS", "MAX_TRACE_TRANSACTIONS", "feedback_trace_json", "trace_json"]

#: The most transactions one answer lists (the first by start time).
MAX_TRACE_TRANSACTIONS = 100
#: The most spans one answer lists, over all its transactions.
MAX_TRACE_SPANS = 10_000
#: Names, ops, descriptions and statuses longer than this are cut (with an ellipsis).
MAX_TEXT = 1000


def trace_json(app: FeedbackApp, trace_id: str) -> dict[str, Any]:
    """``{"trace_id", "transactions": [...], "truncated"}`` for the stored transactions of ``trace_id``."""
    found = app.store.trace_transactions(trace_id, limit=MAX_TRACE_TRANSACTIONS + 1)
    transactions, truncated = _transactions(app, found)
    return {"trace_id": trace_id, "transactions": transactions, "truncated": truncated}


def feedback_trace_json(app: FeedbackApp, feedback: StoredFeedback) -> dict[str, Any]:
    """The trace of ``feedback`` (as :func:`trace_json`), with the feedback's ``span_id``, ``parent_span_id``
    (of ``contexts.trace``) and ``timestamp`` (Unix seconds). No trace id: no transactions."""
    contexts = feedback.data.get("contexts") if isinstance(feedback.data, dict) else None
    trace = contexts.get("trace") if isinstance(contexts, dict) else None
    trace = trace if isinstance(trace, dict) else {}
    trace_id = valid_trace_id(trace.get("trace_id")) or valid_trace_id(feedback.trace_id)
    found = trace_json(app, trace_id) if trace_id else {"trace_id": None, "transactions": [], "truncated": False}
    return {
        **found,
        "span_id": valid_span_id(trace.get("span_id")),
        "parent_span_id": valid_span_id(trace.get("parent_span_id")),
        "timestamp": _finite(feedback.timestamp if feedback.timestamp is not None else feedback.received_at),
    }


def _transactions(app: FeedbackApp, found: list[StoredTransaction]) -> tuple[list[dict[str, Any]], bool]:
    truncated = len(found) > MAX_TRACE_TRANSACTIONS
    room = MAX_TRACE_SPANS
    transactions = []
    for transaction in found[:MAX_TRACE_TRANSACTIONS]:
        spans = sorted(transaction.spans, key=lambda span: span.start_timestamp)
        if len(spans) > room:
            spans, truncated = spans[:room], True
        room -= len(spans)
        transactions.append(
            {
                "event_id": transaction.event_id,
                "project_id": transaction.project_id,
                "project": app.project_slug(transaction.project_id),
                "trace_id": transaction.trace_id,
                "span_id": transaction.span_id,
                "parent_span_id": transaction.parent_span_id,
                "transaction": _clip(transaction.name),
                "op": _clip(transaction.op),
                "status": _clip(transaction.status),
                "start_timestamp": transaction.start_timestamp,
                "timestamp": transaction.timestamp,
                "duration": _milliseconds(transaction.start_timestamp, transaction.timestamp),
                "release": _clip(transaction.release),
                "environment": _clip(transaction.environment),
                "spans": list(_spans(spans)),
            }
        )
    return transactions, truncated


def _spans(spans: Iterable[StoredSpan]) -> Iterable[dict[str, Any]]:
    for span in spans:
        yield {
            "span_id": span.span_id,
            "parent_span_id": span.parent_span_id,
            "op": _clip(span.op),
            "description": _clip(span.description),
            "status": _clip(span.status),
            "start_timestamp": span.start_timestamp,
            "timestamp": span.timestamp,
            "duration": _milliseconds(span.start_timestamp, span.timestamp),
        }


def _milliseconds(start: float, end: float) -> float | None:
    """``end - start`` in milliseconds, to the microsecond; None when that is no finite number."""
    value = (end - start) * 1000
    return round(value, 3) if math.isfinite(value) else None


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _clip(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_TEXT:
        return text
    return text[: MAX_TEXT - 1] + "\u2026"
