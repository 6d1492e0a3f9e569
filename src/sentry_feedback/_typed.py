"""The public names that need :mod:`typing` at run time: ``Level`` and ``FeedbackFields``.

``import typing`` costs several milliseconds (it imports ``re``, ``contextlib``,
``collections``, ...), which the rest of the SDK does without: this module is imported
the first time one of these names is used (``sentry_feedback.Level``,
``from sentry_feedback import FeedbackFields``), never by ``import sentry_feedback`` or
``init``. Annotations that name them are not evaluated, so they do not import it either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, TypeAlias, TypedDict

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from ._attachment import Attachment
    from ._scope import Scope
    from ._types import Hint

__all__ = ["FeedbackFields", "Level"]

#: Severity levels Sentry understands.
Level: TypeAlias = Literal["fatal", "error", "warning", "info", "debug"]


class FeedbackFields(TypedDict, total=False):
    """The optional keyword arguments of ``capture_feedback`` and ``send_feedback``.

    ``email``, ``name``, ``url``, ``source``: what the user gave, sent as given.
    ``associated_event_id``: the error this feedback is about (a UUID, dashes allowed).
    ``replay_id``: a related Session Replay. ``tags``: tags for this feedback only.
    ``attachments``: files sent in the same envelope. ``hint``: passed to event
    processors and ``before_send_feedback``. ``scope``: used instead of the current scope.
    """

    email: str | None
    name: str | None
    url: str | None
    associated_event_id: str | None
    replay_id: str | None
    source: str | None
    tags: Mapping[str, object] | None
    attachments: Iterable[Attachment] | None
    hint: Hint | None
    scope: Scope | None


FeedbackFields.__module__ = "sentry_feedback._feedback"
