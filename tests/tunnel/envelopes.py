"""Envelopes as a browser SDK sends them to its tunnel: the DSN in the header, items after it."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

JS_SDK = {"name": "sentry.javascript.browser", "version": "11.12.0"}
#: A small PNG-like binary attachment: every byte value, so that nothing may be re-encoded on the way.
BINARY = bytes(range(256)) * 4 + b"\r\n\x00\n"


def header(dsn: object, **extra: Any) -> bytes:
    """The envelope header line (without newline) naming ``dsn``."""
    return json.dumps({"event_id": uuid.uuid4().hex, "dsn": dsn, "sdk": JS_SDK, **extra}).encode()


def item(item_type: str, payload: bytes, **headers: Any) -> bytes:
    """One item: its header line with an explicit length, then the payload."""
    return json.dumps({"type": item_type, "length": len(payload), **headers}).encode() + b"\n" + payload


def envelope(dsn: object, *items: bytes, **extra: Any) -> bytes:
    """An envelope for ``dsn`` with ``items`` (each from :func:`item`)."""
    return b"\n".join([header(dsn, **extra), *items]) + b"\n"


def error_event(message: str = "TypeError: x is undefined") -> tuple[str, bytes]:
    """An error event as the browser SDK makes one: its id and payload."""
    event_id = uuid.uuid4().hex
    exception = {"values": [{"type": "TypeError", "value": message}]}
    payload = {"event_id": event_id, "timestamp": time.time(), "platform": "javascript", "exception": exception}
    return event_id, json.dumps(payload).encode()


def feedback_event(message: str = "The pay button does nothing", associated: str | None = None) -> tuple[str, bytes]:
    """A feedback event as the browser SDK makes one (``captureFeedback``): its id and payload."""
    event_id = uuid.uuid4().hex
    feedback: dict[str, Any] = {"message": message, "contact_email": "jane@example.com", "name": "Jane"}
    if associated:
        feedback["associated_event_id"] = associated
    payload = {
        "event_id": event_id,
        "timestamp": time.time(),
        "platform": "javascript",
        "type": "feedback",
        "level": "info",
        "contexts": {"feedback": feedback},
    }
    return event_id, json.dumps(payload).encode()


def feedback_envelope(dsn: str, message: str = "The pay button does nothing", attachment: bytes = BINARY) -> bytes:
    """A feedback with a binary attachment, in one envelope."""
    event_id, payload = feedback_event(message)
    return envelope(
        dsn,
        item("feedback", payload),
        item("attachment", attachment, filename="screenshot.png", content_type="image/png"),
        event_id=event_id,
    )


def error_envelope(dsn: str, message: str = "TypeError: x is undefined") -> bytes:
    """An error event in one envelope."""
    event_id, payload = error_event(message)
    return envelope(dsn, item("event", payload), event_id=event_id)
