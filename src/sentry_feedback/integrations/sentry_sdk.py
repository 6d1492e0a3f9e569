"""Working next to sentry-python: feedback takes its user, tags, contexts and trace.

For applications that already report errors with ``sentry_sdk`` and add
``sentry_feedback`` for user feedback. Opt-in::

    sentry_feedback.init(dsn=..., integrations=[SentrySdkIntegration()])

When ``sentry_sdk`` is initialized in the process, each feedback gets the user, tags,
extras and contexts of sentry-sdk's global, isolation and current scopes (set through
``sentry_sdk.set_user`` etc.; values set through sentry_feedback win), sentry-sdk's
trace (so the feedback appears in the same trace as its errors), and, when no
``associated_event_id`` was given, ``sentry_sdk.last_event_id()``.

sentry-sdk offers no public way to read a scope's data, so this reads sentry-sdk 2.x's
scope attributes; if they change, the integration logs at debug level and does nothing.
"""

from __future__ import annotations

from .._log import logger
from . import Integration

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, ClassVar

    from .._client import Client
    from .._types import Event, Hint

__all__ = ["SentrySdkIntegration"]


def _sentry_sdk_scope_data() -> dict[str, Any] | None:
    import sentry_sdk

    if not sentry_sdk.is_initialized():
        return None
    user: dict[str, Any] = {}
    tags: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    contexts: dict[str, Any] = {}
    for scope in (sentry_sdk.get_global_scope(), sentry_sdk.get_isolation_scope(), sentry_sdk.get_current_scope()):
        user.update(getattr(scope, "_user", None) or {})
        tags.update(getattr(scope, "_tags", None) or {})
        extras.update(getattr(scope, "_extras", None) or {})
        contexts.update(getattr(scope, "_contexts", None) or {})
    return {
        "user": user,
        "tags": tags,
        "extra": extras,
        "contexts": contexts,
        "traceparent": sentry_sdk.get_traceparent(),
        "last_event_id": sentry_sdk.last_event_id(),
    }


class SentrySdkIntegration(Integration):
    """Feedback takes user, tags, contexts and trace from ``sentry_sdk`` (see the module docs).

    ``link_last_event=False`` stops filling ``associated_event_id`` from
    ``sentry_sdk.last_event_id()``.
    """

    identifier: ClassVar[str] = "sentry_sdk"

    def __init__(self, *, link_last_event: bool = True) -> None:
        self.link_last_event = link_last_event

    def setup(self, client: Client) -> None:
        """Register the processor on ``client``."""

        def from_sentry_sdk(event: Event, hint: Hint) -> Event:
            if event.get("type") != "feedback":
                return event
            try:
                data = _sentry_sdk_scope_data()
            except Exception:
                logger.debug("could not read sentry_sdk's scope", exc_info=True)
                return event
            if data is not None:
                self._apply(event, data)
            return event

        client.add_event_processor(from_sentry_sdk)

    def _apply(self, event: Event, data: dict[str, Any]) -> None:
        for key in ("user", "tags", "extra"):
            if data[key]:
                event[key] = {**data[key], **(event.get(key) or {})}
        contexts = event.setdefault("contexts", {})
        for name, value in data["contexts"].items():
            if name not in ("trace", "feedback"):
                contexts.setdefault(name, value)
        traceparent = data["traceparent"]
        if isinstance(traceparent, str):
            parts = traceparent.split("-")
            if len(parts) >= 2 and len(parts[0]) == 32 and len(parts[1]) == 16:
                contexts["trace"] = {"trace_id": parts[0], "span_id": parts[1]}
        feedback = contexts.get("feedback")
        last_event_id = data["last_event_id"]
        if (
            self.link_last_event
            and isinstance(feedback, dict)
            and "associated_event_id" not in feedback
            and isinstance(last_event_id, str)
            and len(last_event_id) == 32
        ):
            feedback["associated_event_id"] = last_event_id
