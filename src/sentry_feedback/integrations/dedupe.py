"""Drops a second event for an exception that was already captured."""

from __future__ import annotations

import contextlib

from . import Integration

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import ClassVar

    from .._client import Client
    from .._types import Event, Hint

__all__ = ["DedupeIntegration"]

_MARK = "__sentry_feedback_captured__"


class DedupeIntegration(Integration):
    """Drops an error event whose exception object was already captured.

    The same exception often reaches the SDK twice: ``capture_exception`` in a handler,
    then a ``logger.exception`` call, or the excepthook after a re-raise. The second
    event is dropped (counted as ``event_processor``). The exception object is marked
    with an attribute, so no reference to it (or its frames) is kept.
    """

    identifier: ClassVar[str] = "dedupe"

    def setup(self, client: Client) -> None:
        """Register the processor on ``client``."""

        def dedupe(event: Event, hint: Hint) -> Event | None:
            exc_info = hint.get("exc_info")
            error = exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) == 3 else None
            if not isinstance(error, BaseException):
                return event
            if getattr(error, _MARK, False):
                return None
            with contextlib.suppress(AttributeError, TypeError):  # exceptions with __slots__ cannot be marked
                setattr(error, _MARK, True)
            return event

        client.add_event_processor(dedupe)
