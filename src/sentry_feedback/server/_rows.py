"""What an envelope turns into in the store: rows for events, feedback, attachments and client reports.

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

__all__ = ["Prepared", "dumps", "event_message", "normalize_id", "prepare"]

_DEFAULT_CONTENT_TYPE = "application/octet-stream"
_FRACTION = re.compile(r"(?<=:\d\d)\.(\d+)")
_DEFAULT_ATTACHMENT_TYPE = "event.attachment"


@dataclass
class Prepared:
    """The rows one envelope turns into, computed before anything is written."""

    events: list[dict[str, Any]] = field(default_factory=list)
    feedback: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)


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
