"""The User Feedback REST API's items (seed 003) from stored feedback, and feedback events from create bodies.

:func:`feedback_item` never raises and always gives every attribute of the seed's table;
:func:`event_from_create_body` gives per-field errors in Sentry's ``{"field": ["..."]}`` shape.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, NamedTuple

from .._feedback import MAX_MESSAGE_LENGTH, new_event_id, normalize_event_id
from ..exceptions import InvalidFeedbackError
from ._records import StoredFeedback

__all__ = ["ITEM_KEYS", "CreateResult", "event_from_create_body", "feedback_item", "parse_datetime"]

ITEM_KEYS = (
    *("browser", "contact_email", "device", "dist", "environment", "error_ids", "id", "locale", "message", "os"),
    *("platform", "release", "replay_id", "request", "sdk", "status", "tags", "timestamp", "trace_ids", "url"),
    "user",
)
"""The top-level attributes of an item, in the seed's order; :func:`feedback_item` gives all of them."""

_NAME_VERSION = ("name", "version")  # browser, os and sdk
_DEVICE = ("brand", "family", "model", "name")
_FRACTION = re.compile(r"(?<=:\d\d)\.(\d+)")
_AUTO_IP = "{{auto}}"  # the browser SDKs' placeholder for "the address the request came from"

_NOT_STRING = "Not a valid string."
_BAD_UUID = "Must be a valid UUID (32 hex digits, dashes allowed)."
_NOT_OBJECT = "Expected an object."


# -- stored event -> item ------------------------------------------------------------


def feedback_item(stored: StoredFeedback) -> dict[str, Any]:
    """The seed's browse item for ``stored``: all of :data:`ITEM_KEYS`, JSON-ready. Never raises.

    Read from the stored event (``stored.data``); a value of the wrong type counts as
    absent: ``null``, ``[]`` for ``error_ids``/``trace_ids``, ``{}`` for ``tags``, and
    ``browser``, ``os``, ``device``, ``locale``, ``sdk`` and ``user`` are always objects
    with all their sub-keys. ``timestamp`` is ISO 8601 UTC with microseconds and ``Z``.
    """
    event = _obj(stored.data)
    contexts = _obj(event.get("contexts"))
    feedback = _obj(contexts.get("feedback"))
    culture = _obj(contexts.get("culture"))
    user = _obj(event.get("user"))
    error_id = _id_text(feedback.get("associated_event_id"))
    # The stored columns add what the envelope header says (trace, sdk) and request.url.
    trace_id = _id_text(_obj(contexts.get("trace")).get("trace_id")) or _id_text(stored.trace_id)
    sdk = event.get("sdk") if isinstance(event.get("sdk"), dict) else stored.sdk
    request = event.get("request")
    ip = _text(user.get("ip_address"))
    return {
        "browser": _pick(contexts.get("browser"), _NAME_VERSION),
        "contact_email": _text(feedback.get("contact_email")),
        "device": _pick(contexts.get("device"), _DEVICE),
        "dist": _text(event.get("dist")),
        "environment": _text(event.get("environment")),
        "error_ids": [error_id] if error_id else [],
        "id": _text(stored.event_id) or _id_text(event.get("event_id")),
        "locale": {"lang": _text(culture.get("locale")), "timezone": _text(culture.get("timezone"))},
        "message": _text(feedback.get("message")) or _text(stored.message),
        "os": _pick(contexts.get("os"), _NAME_VERSION),
        "platform": _text(event.get("platform")),
        "release": _text(event.get("release")),
        "replay_id": _id_text(feedback.get("replay_id")),
        "request": copy.deepcopy(request) if isinstance(request, dict) else None,
        "sdk": _pick(sdk, _NAME_VERSION),
        "status": _text(stored.status) or "unresolved",
        "tags": _item_tags(event.get("tags")),
        "timestamp": _first_iso(event.get("timestamp"), stored.timestamp, stored.received_at),
        "trace_ids": [trace_id] if trace_id else [],
        "url": _text(feedback.get("url")) or _text(stored.url),
        "user": {
            "display_name": _text(user.get("name")) or _text(feedback.get("name")),
            "email": _text(user.get("email")),
            "id": _text(user.get("id")),
            "ip": None if ip == _AUTO_IP else ip,
            "username": _text(user.get("username")),
        },
    }


def _obj(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    """A string as is, a number as its text (as the store reads them), anything else None."""
    if isinstance(value, str):
        return value
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _id_text(value: Any) -> str | None:
    """An id as 32 lowercase hex digits when it is a UUID, other text unchanged; None when empty."""
    text = _text(value)
    return (_uuid(text) or text) if text else None


def _uuid(value: Any) -> str | None:
    try:
        return normalize_event_id(value, "id") if isinstance(value, str) else None
    except InvalidFeedbackError:
        return None


def _pick(value: Any, keys: tuple[str, ...]) -> dict[str, str | None]:
    source = _obj(value)
    return {key: _text(source.get(key)) for key in keys}


def _item_tags(value: Any) -> dict[str, str | list[str]]:
    """Event tags (an object, or ``[key, value]`` pairs) as an object; a repeated key gets a list."""
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list):
        pairs = [(pair[0], pair[1]) for pair in value if isinstance(pair, (list, tuple)) and len(pair) == 2]
    else:
        return {}
    collected: dict[str, list[str]] = {}
    as_list: set[str] = set()
    for raw_key, raw_value in pairs:
        key = _text(raw_key)
        texts = [t for t in map(_tag_text, raw_value if isinstance(raw_value, list) else [raw_value]) if t is not None]
        if key is None or not texts:
            continue
        if key in collected or isinstance(raw_value, list):
            as_list.add(key)
        collected.setdefault(key, []).extend(texts)
    return {key: texts if key in as_list else texts[0] for key, texts in collected.items()}


def _tag_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    try:
        return json.dumps(value, ensure_ascii=False, default=str) if isinstance(value, (dict, list)) else _text(value)
    except (ValueError, RecursionError):
        return None


def _first_iso(*candidates: Any) -> str | None:
    parsed = next((moment for moment in map(parse_datetime, candidates) if moment is not None), None)
    return None if parsed is None else _iso(parsed)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_datetime(value: Any) -> datetime | None:
    """An ISO 8601 string (naive means UTC) or Unix seconds as an aware UTC datetime, else None."""
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, timezone.utc)
        if not isinstance(value, str) or not value.strip():
            return None
        text = value.strip()
        text = text[:-1] + "+00:00" if text[-1] in "Zz" else text
        # Python 3.10's fromisoformat takes only 3 or 6 fractional digits.
        text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
        parsed = datetime.fromisoformat(text)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None


# -- create body -> event ------------------------------------------------------------


class CreateResult(NamedTuple):
    """What :func:`event_from_create_body` gives: unpack as ``event, errors = ...``.

    ``errors`` maps a field (``"message"``, ``"user.email"``, ``"error_ids.0"``, ...) to its
    problems; when it is empty, ``event`` is the feedback event to store, else ``{}``.
    """

    event: dict[str, Any]
    errors: dict[str, list[str]]


def event_from_create_body(body: Any, *, now: float) -> CreateResult:
    """Validate a create request body (``{"data": {...}}``, or the bare object) into a feedback event.

    ``message`` is required: a string, not blank, at most ``MAX_MESSAGE_LENGTH``
    characters. ``id``, ``error_ids``, ``trace_ids`` and ``replay_id`` must be UUIDs
    (normalized to 32 lowercase hex); ``id`` defaults to a new one. ``timestamp`` is ISO 8601
    or Unix seconds, else ``now``. ``user`` takes ``ip_address``/``name`` or the browse names
    ``ip``/``display_name``. Unknown keys (``status``, ...) are ignored. Never raises.
    """
    if isinstance(body, dict) and "data" in body:
        body = body["data"]
        if not isinstance(body, dict):
            return CreateResult({}, {"data": [_NOT_OBJECT]})
    if not isinstance(body, dict):
        return CreateResult({}, {"non_field_errors": [_NOT_OBJECT]})
    fields = _Fields(body, {})
    feedback: dict[str, Any] = {"message": fields.message()}
    for key in ("contact_email", "name", "url"):
        _put(feedback, key, fields.string(key))
    _put(feedback, "associated_event_id", next(iter(fields.uuids("error_ids")), None))
    _put(feedback, "replay_id", fields.uuid("replay_id"))
    contexts: dict[str, Any] = {"feedback": feedback}
    trace_id = next(iter(fields.uuids("trace_ids")), None)
    if trace_id is not None:  # Sentry requires a span in a trace context: the feedback's own
        contexts["trace"] = {"type": "trace", "trace_id": trace_id, "span_id": new_event_id()[16:]}
    for key, keys in (("browser", _NAME_VERSION), ("os", _NAME_VERSION), ("device", _DEVICE)):
        _put(contexts, key, _typed(key, fields.strings(key, keys)))
    locale = fields.strings("locale", ("lang", "timezone"))
    _put(contexts, "culture", _typed("culture", {"locale": locale.get("lang"), "timezone": locale.get("timezone")}))
    event: dict[str, Any] = {
        "event_id": fields.uuid("id") or new_event_id(),
        "type": "feedback",
        "level": "info",
        "timestamp": fields.timestamp(now),
        "platform": fields.string("platform") or "other",
        "contexts": contexts,
    }
    for key in ("environment", "release", "dist"):
        _put(event, key, fields.string(key))
    _put(event, "tags", fields.tags())
    _put(event, "user", fields.user())
    _put(event, "request", copy.deepcopy(fields.object("request")))
    _put(event, "sdk", fields.strings("sdk", _NAME_VERSION))
    return CreateResult({} if fields.errors else event, fields.errors)


class _Fields:
    """Reads one object of a create body, recording problems per (dotted) field name."""

    def __init__(self, data: Mapping[str, Any], errors: dict[str, list[str]], prefix: str = "") -> None:
        self.data, self.errors, self.prefix = data, errors, prefix

    def error(self, key: str, problem: str) -> None:
        self.errors.setdefault(self.prefix + key, []).append(problem)

    def message(self) -> str:
        value = self.data.get("message")
        if value is None:
            self.error("message", "This field is required.")
        elif not isinstance(value, str):
            self.error("message", _NOT_STRING)
        elif not value.strip():
            self.error("message", "This field may not be blank.")
        elif len(value) > MAX_MESSAGE_LENGTH:
            self.error("message", f"Ensure this field has no more than {MAX_MESSAGE_LENGTH} characters.")
        return value if isinstance(value, str) else ""

    def string(self, key: str, *, numbers: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None or isinstance(value, str):
            return value
        if numbers and isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        self.error(key, _NOT_STRING)
        return None

    def uuid(self, key: str) -> str | None:
        value = self.data.get(key)
        normalized = None if value is None else _uuid(value)
        if value is not None and normalized is None:
            self.error(key, _BAD_UUID)
        return normalized

    def uuids(self, key: str) -> list[str]:
        value = self.data.get(key)
        if value is not None and not isinstance(value, list):
            self.error(key, "Expected a list of items.")
        items = value if isinstance(value, list) else []
        for index, item in enumerate(items):
            if _uuid(item) is None:
                self.error(f"{key}.{index}", _BAD_UUID)
        return [normalized for normalized in map(_uuid, items) if normalized is not None]

    def object(self, key: str) -> dict[str, Any] | None:
        value = self.data.get(key)
        if value is None or isinstance(value, dict):
            return value
        self.error(key, _NOT_OBJECT)
        return None

    def strings(self, key: str, keys: tuple[str, ...]) -> dict[str, str]:
        """The string sub-fields ``keys`` of the object at ``key`` that are given."""
        sub = _Fields(self.object(key) or {}, self.errors, f"{self.prefix}{key}.")
        return {name: text for name in keys if (text := sub.string(name)) is not None}

    def timestamp(self, now: float) -> str | float:
        value = self.data.get("timestamp")
        if value is None:
            return now
        parsed = None if isinstance(value, bool) else parse_datetime(value)
        if parsed is None:
            self.error("timestamp", "Must be an ISO 8601 datetime (naive means UTC) or a Unix timestamp in seconds.")
            return now
        # A number stays as given; a string becomes UTC, exact to the microsecond (a float would round it).
        return value if isinstance(value, (int, float)) else _iso(parsed)

    def tags(self) -> dict[str, str] | list[list[str]] | None:
        tags = self.object("tags") or {}
        pairs: list[tuple[str, str]] = []
        for key, value in tags.items():
            values = value if isinstance(value, list) else [value]
            if not values or not all(isinstance(v, str) for v in values):
                self.error(f"tags.{key}", "Tag values must be strings or lists of strings.")
            pairs.extend((key, v) for v in values)
        if any(isinstance(v, list) for v in tags.values()):
            return [[key, v] for key, v in pairs]  # [key, value] pairs: how an event repeats a key
        return dict(pairs) or None

    def user(self) -> dict[str, str] | None:
        user = self.object("user")
        if user is None:
            return None
        sub = _Fields(user, self.errors, f"{self.prefix}user.")
        found = {
            "email": sub.string("email"),
            "id": sub.string("id", numbers=True),
            "ip_address": sub.string("ip_address" if "ip_address" in user else "ip"),
            "name": sub.string("name" if "name" in user else "display_name"),
            "username": sub.string("username"),
        }
        return {key: value for key, value in found.items() if value is not None}


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` only for a value that says something (not None, not empty)."""
    if value is not None and value != {} and value != []:
        target[key] = value


def _typed(context_type: str, values: dict[str, Any]) -> dict[str, Any] | None:
    """A context with its ``type``, or None when none of ``values`` is set."""
    given = {key: value for key, value in values.items() if value is not None}
    return {"type": context_type, **given} if given else None
