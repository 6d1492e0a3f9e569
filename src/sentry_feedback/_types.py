"""Type aliases shared by the public API."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeAlias

    from ._typed import Level as Level

__all__ = ["BeforeSend", "Event", "EventProcessor", "Hint", "Level"]

#: An event payload as sent to Sentry (a JSON object).
Event: TypeAlias = "dict[str, Any]"
#: Extra information handed to processors and hooks: ``attachments``, ``exc_info``, ...
Hint: TypeAlias = "dict[str, Any]"
#: ``(event, hint) -> event or None``; returning ``None`` drops the event.
EventProcessor: TypeAlias = "Callable[[Event, Hint], Event | None]"
#: Signature of ``before_send`` and ``before_send_feedback``.
BeforeSend: TypeAlias = "Callable[[Event, Hint], Event | None]"

LEVELS: frozenset[str] = frozenset(("fatal", "error", "warning", "info", "debug"))

if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        """``Level`` (severity levels Sentry understands, a ``typing.Literal``), made on first use."""
        if name == "Level":
            from ._typed import Level

            globals()["Level"] = Level
            return Level
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
