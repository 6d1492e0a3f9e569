"""Type aliases shared by the public API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeAlias

__all__ = ["BeforeSend", "Event", "EventProcessor", "Hint", "Level"]

#: An event payload as sent to Sentry (a JSON object).
Event: TypeAlias = "dict[str, Any]"
#: Extra information handed to processors and hooks: ``attachments``, ``exc_info``, ...
Hint: TypeAlias = "dict[str, Any]"
#: Severity levels Sentry understands.
Level: TypeAlias = Literal["fatal", "error", "warning", "info", "debug"]
#: ``(event, hint) -> event or None``; returning ``None`` drops the event.
EventProcessor: TypeAlias = "Callable[[Event, Hint], Event | None]"
#: Signature of ``before_send`` and ``before_send_feedback``.
BeforeSend: TypeAlias = "Callable[[Event, Hint], Event | None]"

LEVELS: frozenset[str] = frozenset(("fatal", "error", "warning", "info", "debug"))
