"""The feedback event: validation and construction (seed 002, the feedback spec)."""

from __future__ import annotations

import sys
from collections.abc import Mapping

from . import _random
from ._lazy import LazyPattern
from .exceptions import InvalidFeedbackError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ._typed import FeedbackFields as FeedbackFields
    from ._types import Event

__all__ = ["MAX_MESSAGE_LENGTH", "FeedbackFields"]

#: The longest feedback message Sentry accepts, in characters.
MAX_MESSAGE_LENGTH = 4096
_UUID_RE = LazyPattern(r"\A([0-9a-fA-F]{8})-?([0-9a-fA-F]{4})-?([0-9a-fA-F]{4})-?([0-9a-fA-F]{4})-?([0-9a-fA-F]{12})\Z")

if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        """``FeedbackFields`` (a ``typing.TypedDict``) is made on first use: see ``_typed``."""
        if name == "FeedbackFields":
            from ._typed import FeedbackFields

            globals()["FeedbackFields"] = FeedbackFields
            return FeedbackFields
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


new_event_id = _random.event_id


def normalize_event_id(value: object, field: str) -> str:
    """``value`` as 32 lowercase hex characters; dashes accepted. Raise ``InvalidFeedbackError`` otherwise."""
    uuid = sys.modules.get("uuid")  # not imported: ``value`` cannot be a UUID
    if uuid is not None and isinstance(value, uuid.UUID):
        return str(value.hex)
    if isinstance(value, str):
        match = _UUID_RE.match(value.strip())
        if match is not None:
            return "".join(match.groups()).lower()
    raise InvalidFeedbackError(f"{field} must be a UUID (32 hex digits, dashes allowed), not {value!r}")


def _optional_str(value: object, field: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise InvalidFeedbackError(f"{field} must be a string, not {type(value).__name__}")


def build_feedback_event(
    message: object,
    *,
    email: object = None,
    name: object = None,
    url: object = None,
    associated_event_id: object = None,
    replay_id: object = None,
    source: object = None,
    tags: Mapping[str, object] | None = None,
) -> Event:
    """Validate the user's input and return the feedback event (without scope data).

    ``contexts.feedback`` holds only the fields that were given. Raises
    :class:`InvalidFeedbackError` saying what is wrong.
    """
    if not isinstance(message, str):
        raise InvalidFeedbackError(f"message must be a string, not {type(message).__name__}")
    if not message.strip():
        raise InvalidFeedbackError("message is empty")
    if len(message) > MAX_MESSAGE_LENGTH:
        raise InvalidFeedbackError(f"message is {len(message)} characters long; the limit is {MAX_MESSAGE_LENGTH}")
    feedback: dict[str, Any] = {"message": message}
    for key, value in (("contact_email", email), ("name", name), ("url", url), ("source", source)):
        text = _optional_str(value, "email" if key == "contact_email" else key)
        if text is not None:
            feedback[key] = text
    if associated_event_id is not None:
        feedback["associated_event_id"] = normalize_event_id(associated_event_id, "associated_event_id")
    if replay_id is not None:
        feedback["replay_id"] = normalize_event_id(replay_id, "replay_id")
    event: Event = {"type": "feedback", "level": "info", "contexts": {"feedback": feedback}}
    if tags:
        if not isinstance(tags, Mapping):
            raise InvalidFeedbackError(f"tags must be a mapping, not {type(tags).__name__}")
        event["tags"] = {str(k): v if isinstance(v, str) else str(v) for k, v in tags.items()}
    return event
