"""What an envelope turns into in the store: rows for events, feedback, transactions, sessions, attachments
and client reports.

:func:`prepare` validates every item and computes all rows before anything is written, so an
envelope is stored whole or not at all.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .._envelope import Envelope
from ..exceptions import EnvelopeParseError

__all__ = [
    "MAX_COUNT",
    "MAX_DISCARDED_EVENTS",
    "MAX_SESSION_AGGREGATES",
    "MAX_SPANS",
    "SESSION_STATUSES",
    "Prepared",
    "dumps",
    "event_message",
    "normalize_id",
    "prepare",
    "time_span",
    "transaction_spans",
    "valid_span_id",
    "valid_trace_id",
]

_DEFAULT_CONTENT_TYPE = "application/octet-stream"
_FRACTION = re.compile(r"(?<=:\d\d)\.(\d+)")
_DEFAULT_ATTACHMENT_TYPE = "event.attachment"
_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_SPAN_ID = re.compile(r"[0-9a-f]{16}")
#: The most spans one transaction may hold (SDKs send at most 1000 by default); more is refused.
MAX_SPANS = 10_000
#: The most entries one ``sessions`` item's ``aggregates`` may hold; more is refused.
MAX_SESSION_AGGREGATES = 10_000
#: The largest count a session, an aggregate or a client report may give (JavaScript's largest safe integer);
#: more is refused.
MAX_COUNT = 2**53 - 1
#: The statuses of a session update (Sentry's release health).
SESSION_STATUSES = ("ok", "exited", "errored", "crashed", "abnormal")
_AGGREGATE_COUNTS = ("exited", "errored", "abnormal", "crashed")
#: Sentry's limits on a session's release and environment names; a session id is a UUID.
_MAX_RELEASE = 200
_MAX_ENVIRONMENT = 64
_MAX_SID = 128
#: The most entries one ``client_report`` item's ``discarded_events`` may hold; more is refused.
MAX_DISCARDED_EVENTS = 10_000
#: The longest ``reason`` or ``category`` of a client report entry (Relay drops longer reasons).
_MAX_REPORT_TEXT = 200


@dataclass
class Prepared:
    """The rows one envelope turns into, computed before anything is written."""

    events: list[dict[str, Any]] = field(default_factory=list)
    feedback: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)
    transactions: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    aggregates: list[dict[str, Any]] = field(default_factory=list)


def prepare(envelope: Envelope, envelope_event_id: str | None, project_id: str, received_at: float) -> Prepared:
    prepared = Prepared()
    common = {"project_id": project_id, "received_at": received_at}
    for item in envelope.items:
        if item.type == "event":
            payload = _json_object_payload(item.type, item.get_json())
            event_id = envelope_event_id or normalize_id(_opt_str(payload, "event_id")) or uuid.uuid4().hex
            prepared.events.append({**common, **_event_fields(payload), "event_id": event_id})
        elif item.type == "feedback":
            payload = _json_object_payload(item.type, item.get_json())
            event_id = envelope_event_id or normalize_id(_opt_str(payload, "event_id")) or uuid.uuid4().hex
            prepared.feedback.append({**common, **_feedback_fields(payload, envelope), "event_id": event_id})
            prepared.feedback[-1]["timestamp"] = prepared.feedback[-1]["timestamp"] or received_at
        elif item.type == "user_report":
            # Older SDKs' feedback: {event_id (of the error), name, email, comments}. It becomes a
            # feedback of its own, linked to that error.
            payload = _json_object_payload(item.type, item.get_json())
            event = _feedback_from_user_report(payload, received_at)
            prepared.feedback.append({**common, **_feedback_fields(event, envelope), "event_id": event["event_id"]})
        elif item.type == "client_report":
            payload = _json_object_payload(item.type, item.get_json())
            prepared.reports.extend({**common, **entry} for entry in _client_report_entries(payload))
        elif item.type == "transaction":
            payload = _json_object_payload(item.type, item.get_json())
            event_id = envelope_event_id or normalize_id(_opt_str(payload, "event_id")) or uuid.uuid4().hex
            prepared.transactions.append({**common, **_transaction_fields(payload), "event_id": event_id})
        elif item.type == "session":
            payload = _json_object_payload(item.type, item.get_json())
            prepared.sessions.append({**common, **_session_fields(payload, received_at)})
        elif item.type == "sessions":
            payload = _json_object_payload(item.type, item.get_json())
            prepared.aggregates.extend({**common, **entry} for entry in _aggregate_entries(payload))
    owners = [row["event_id"] for row in prepared.events + prepared.feedback + prepared.transactions]
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
        "message": event_message(payload),
        "timestamp": _parse_timestamp(payload.get("timestamp")),
        "data": dumps(payload),
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
        "associated_event_id": normalize_id(_opt_str(feedback, "associated_event_id")),
        "replay_id": _opt_str(feedback, "replay_id"),
        "source": _opt_str(feedback, "source"),
        "environment": _opt_str(payload, "environment"),
        "release": _opt_str(payload, "release"),
        "dist": _opt_str(payload, "dist"),
        "platform": _opt_str(payload, "platform"),
        "timestamp": _parse_timestamp(payload.get("timestamp")),
        "tags": dumps(_tags(payload.get("tags"))),
        "user": dumps(user) if isinstance(user, dict) else None,
        "trace_id": normalize_id(_opt_str(trace, "trace_id") or _opt_str(header_trace, "trace_id")),
        "sdk": dumps(sdk) if isinstance(sdk, dict) else None,
        "data": dumps(payload),
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
    associated = normalize_id(_opt_str(payload, "event_id"))
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
    """The rows of a ``client_report`` item (one per ``discarded_events`` entry); EnvelopeParseError for an
    invalid one: a ``quantity`` must be a count (:func:`_count`), ``reason`` and ``category`` short text."""
    timestamp = _parse_timestamp(payload.get("timestamp"))
    discarded = payload.get("discarded_events", [])
    if not isinstance(discarded, list):
        raise EnvelopeParseError("client_report discarded_events must be a list")
    if len(discarded) > MAX_DISCARDED_EVENTS:
        raise EnvelopeParseError(
            f"client_report has {len(discarded)} discarded_events; at most {MAX_DISCARDED_EVENTS} are allowed"
        )
    entries = []
    for index, entry in enumerate(discarded):
        where = f"client_report discarded_events[{index}]"
        if not isinstance(entry, dict):
            raise EnvelopeParseError(f"{where} must be an object")
        reason, category = entry.get("reason"), entry.get("category")
        if not isinstance(reason, str) or not isinstance(category, str):
            raise EnvelopeParseError(f"{where} needs string reason and category")
        for name, text in (("reason", reason), ("category", category)):
            if len(text) > _MAX_REPORT_TEXT:
                raise EnvelopeParseError(f"{where} {name} is longer than {_MAX_REPORT_TEXT} characters")
        quantity = _count(f"{where} quantity", entry.get("quantity"))
        entries.append({"timestamp": timestamp, "reason": reason, "category": category, "quantity": quantity})
    return entries


def _transaction_fields(payload: dict[str, Any]) -> dict[str, Any]:
    """The row of a ``transaction`` item; EnvelopeParseError for what Sentry would refuse too.

    Required: start and end times (Unix seconds or RFC 3339), the end not before the start, and
    ``contexts.trace`` with a ``trace_id`` (32 hex digits) and a ``span_id`` (16); every span must be
    valid as :func:`transaction_spans` says.
    """
    event_type = payload.get("type", "transaction")
    if event_type != "transaction":
        raise EnvelopeParseError(f"transaction item has type {_shown(event_type)}, not 'transaction'")
    start, end = time_span("transaction", payload)
    trace = _dict(payload.get("contexts")).get("trace")
    if not isinstance(trace, dict):
        raise EnvelopeParseError("transaction item has no contexts.trace object")
    trace_id = valid_trace_id(trace.get("trace_id"))
    if trace_id is None:
        raise EnvelopeParseError("transaction item has no valid contexts.trace.trace_id (32 hex digits)")
    span_id = valid_span_id(trace.get("span_id"))
    if span_id is None:
        raise EnvelopeParseError("transaction item has no valid contexts.trace.span_id (16 hex digits)")
    transaction_spans(payload, trace_id)  # refuses invalid spans
    return {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": valid_span_id(trace.get("parent_span_id")),
        "name": _opt_str(payload, "transaction"),
        "op": _opt_str(trace, "op"),
        "status": _opt_str(trace, "status"),
        "start_timestamp": start,
        "timestamp": end,
        "release": _opt_str(payload, "release"),
        "environment": _opt_str(payload, "environment"),
        "data": dumps(payload),
    }


def transaction_spans(payload: dict[str, Any], trace_id: str) -> list[dict[str, Any]]:
    """The spans of a transaction event, checked: ``span_id``, ``parent_span_id``, ``trace_id``, ``op``,
    ``description``, ``status``, ``start_timestamp``, ``timestamp`` (Unix seconds) and ``data`` of each.

    Raises EnvelopeParseError for a ``spans`` that is not a list (absent is none), more than :data:`MAX_SPANS`
    spans, or a span without a valid ``span_id``, with a ``trace_id`` or ``parent_span_id`` that is not one,
    or without valid start and end times. Text of another type counts as absent.
    """
    spans = payload.get("spans")
    if spans is None:
        return []
    if not isinstance(spans, list):
        raise EnvelopeParseError(f"transaction spans must be a list, not {type(spans).__name__}")
    if len(spans) > MAX_SPANS:
        raise EnvelopeParseError(f"transaction has {len(spans)} spans; at most {MAX_SPANS} are allowed")
    found = []
    for index, span in enumerate(spans):
        where = f"transaction spans[{index}]"
        if not isinstance(span, dict):
            raise EnvelopeParseError(f"{where} must be an object")
        span_id = valid_span_id(span.get("span_id"))
        if span_id is None:
            raise EnvelopeParseError(f"{where} has no valid span_id (16 hex digits)")
        span_trace = span.get("trace_id")
        if span_trace is not None and valid_trace_id(span_trace) is None:
            raise EnvelopeParseError(f"{where} has an invalid trace_id")
        parent = span.get("parent_span_id")
        if parent is not None and valid_span_id(parent) is None:
            raise EnvelopeParseError(f"{where} has an invalid parent_span_id")
        start, end = time_span(where, span)
        data = span.get("data")
        found.append(
            {
                "span_id": span_id,
                "parent_span_id": valid_span_id(parent),
                "trace_id": valid_trace_id(span_trace) or trace_id,
                "op": _opt_str(span, "op"),
                "description": _opt_str(span, "description"),
                "status": _opt_str(span, "status"),
                "start_timestamp": start,
                "timestamp": end,
                "data": data if isinstance(data, dict) else {},
            }
        )
    return found


def time_span(where: str, payload: Mapping[str, Any]) -> tuple[float, float]:
    """``start_timestamp`` and ``timestamp`` of ``payload`` (Unix seconds); EnvelopeParseError naming ``where``
    when either is missing or invalid, or the end comes before the start."""
    start = _parse_timestamp(payload.get("start_timestamp"))
    end = _parse_timestamp(payload.get("timestamp"))
    if start is None:
        raise EnvelopeParseError(f"{where} has no valid start_timestamp (Unix seconds or RFC 3339)")
    if end is None:
        raise EnvelopeParseError(f"{where} has no valid timestamp (Unix seconds or RFC 3339)")
    if end < start:
        raise EnvelopeParseError(f"{where} ends before it starts")
    return start, end


def _session_fields(payload: dict[str, Any], received_at: float) -> dict[str, Any]:
    """The row of a ``session`` item (one session's update); EnvelopeParseError for an invalid one."""
    sid = payload.get("sid")
    if not isinstance(sid, str) or not sid.strip():
        raise EnvelopeParseError("session item has no sid")
    if len(sid) > _MAX_SID:
        raise EnvelopeParseError(f"session item sid is longer than {_MAX_SID} characters")
    started = _parse_timestamp(payload.get("started"))
    if started is None:
        raise EnvelopeParseError("session item has no valid started time (RFC 3339)")
    timestamp = payload.get("timestamp")
    updated = received_at if timestamp is None else _parse_timestamp(timestamp)
    if updated is None:
        raise EnvelopeParseError("session item has an invalid timestamp")
    status = payload.get("status", "ok")
    if status not in SESSION_STATUSES:
        raise EnvelopeParseError(f"session item has an invalid status {_shown(status)}")
    errors = _count("session item errors", payload.get("errors", 0))
    duration = payload.get("duration")
    if duration is not None and (_parse_number(duration) is None or duration < 0):
        raise EnvelopeParseError(f"session item has an invalid duration {_shown(duration)}")
    init = payload.get("init", False)
    if not isinstance(init, bool):
        raise EnvelopeParseError(f"session item has an invalid init {_shown(init)}")
    release, environment = _session_attrs("session item", payload)
    return {
        "sid": normalize_id(sid.strip()),
        "did": _opt_str(payload, "did"),
        "init": int(init),
        "started": started,
        "timestamp": updated,
        "status": status,
        "errors": errors,
        "duration": None if duration is None else float(duration),
        "release": release,
        "environment": environment,
        "data": dumps(payload),
    }


def _aggregate_entries(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of a ``sessions`` item (counts per minute); EnvelopeParseError for an invalid one."""
    release, environment = _session_attrs("sessions item", payload)
    aggregates = payload.get("aggregates")
    if not isinstance(aggregates, list):
        raise EnvelopeParseError("sessions item has no aggregates list")
    if len(aggregates) > MAX_SESSION_AGGREGATES:
        raise EnvelopeParseError(
            f"sessions item has {len(aggregates)} aggregates; at most {MAX_SESSION_AGGREGATES} are allowed"
        )
    entries = []
    for index, entry in enumerate(aggregates):
        where = f"sessions aggregates[{index}]"
        if not isinstance(entry, dict):
            raise EnvelopeParseError(f"{where} must be an object")
        started = _parse_timestamp(entry.get("started"))
        if started is None:
            raise EnvelopeParseError(f"{where} has no valid started time (RFC 3339)")
        did = entry.get("did")
        if did is not None and _opt_str(entry, "did") is None:
            raise EnvelopeParseError(f"{where} has an invalid did")
        row: dict[str, Any] = {
            "started": started,
            "release": release,
            "environment": environment or "",
            "did": _opt_str(entry, "did") or "",
        }
        for name in _AGGREGATE_COUNTS:
            row[name] = _count(f"{where} {name}", entry.get(name, 0))
        entries.append(row)
    return entries


def _session_attrs(where: str, payload: dict[str, Any]) -> tuple[str, str | None]:
    attrs = payload.get("attrs")
    if not isinstance(attrs, dict):
        raise EnvelopeParseError(f"{where} has no attrs object")
    release = attrs.get("release")
    if not isinstance(release, str) or not release.strip():
        raise EnvelopeParseError(f"{where} has no attrs.release")
    if len(release) > _MAX_RELEASE:
        raise EnvelopeParseError(f"{where} attrs.release is longer than {_MAX_RELEASE} characters")
    environment = attrs.get("environment")
    if environment is not None and not isinstance(environment, str):
        raise EnvelopeParseError(f"{where} has an invalid attrs.environment")
    if environment is not None and len(environment) > _MAX_ENVIRONMENT:
        raise EnvelopeParseError(f"{where} attrs.environment is longer than {_MAX_ENVIRONMENT} characters")
    return release, environment or None


def _count(where: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_COUNT:
        raise EnvelopeParseError(f"{where} must be an integer from 0 to {MAX_COUNT}, not {_shown(value)}")
    return value


def _parse_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return _parse_timestamp(value)


def valid_trace_id(value: Any) -> str | None:
    """32 lowercase hex digits (a UUID's dashes and case do not matter), or None."""
    if not isinstance(value, str):
        return None
    normalized = normalize_id(value)
    return normalized if normalized is not None and _TRACE_ID.fullmatch(normalized) else None


def valid_span_id(value: Any) -> str | None:
    """16 lowercase hex digits, or None."""
    if not isinstance(value, str):
        return None
    lowered = value.strip().lower()
    return lowered if _SPAN_ID.fullmatch(lowered) else None


def _shown(value: Any) -> str:
    """A value for an error message: its JSON, cut short."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= 60 else text[:59] + "\u2026"


def _json_object_payload(item_type: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EnvelopeParseError(f"{item_type} item payload must be a JSON object, not {type(value).__name__}")
    return value


def event_message(payload: dict[str, Any]) -> str | None:
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
        try:
            number = float(value)
        except OverflowError:  # an integer too large for a float
            return None
        return number if math.isfinite(number) else None
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


def normalize_id(value: str | None) -> str | None:
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


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
