"""Scopes: the data (tags, user, contexts, breadcrumbs, attachments, trace) applied to events."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Mapping

from ._attachment import Attachment
from ._log import logger
from ._serialize import safe_repr
from ._types import LEVELS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ._sessions import RequestSession, Session
    from ._spans import Span
    from ._tracing import PropagationContext
    from ._types import Event, EventProcessor, Hint, Level

    #: What the scopes contribute besides event fields: their attachments and event
    #: processors, in the order they apply, and the innermost propagation context.
    ScopeData = tuple[list[Attachment], list[EventProcessor], PropagationContext | None]

__all__ = ["Scope"]


class Scope:
    """Data applied to every event captured while the scope is active.

    Setters never raise: a value of the wrong type is logged (``sentry_feedback`` logger,
    warning) and ignored, so that enriching events cannot break a request.

    There are three: the global scope (whole process), the isolation scope (one per
    request or task: fork it with :func:`with_isolation_scope`) and the current scope
    (fork it with :func:`with_scope`). Data merges global, then isolation, then current,
    and the event's own values win over all of them.

    >>> scope = Scope()
    >>> scope.set_tag("page", "checkout")
    >>> scope.tags
    {'page': 'checkout'}
    """

    __slots__ = (
        "_attachments",
        "_breadcrumbs",
        "_contexts",
        "_conversation_id",
        "_event_processors",
        "_extras",
        "_fingerprint",
        "_last_event_id",
        "_level",
        "_propagation_context",
        "_session",
        "_tags",
        "_user",
    )

    def __init__(self) -> None:
        self._tags: dict[str, str] = {}
        self._extras: dict[str, Any] = {}
        self._contexts: dict[str, dict[str, Any]] = {}
        self._user: dict[str, Any] | None = None
        self._level: str | None = None
        self._fingerprint: list[str] | None = None
        self._breadcrumbs: deque[dict[str, Any]] = deque()
        self._attachments: list[Attachment] = []
        self._event_processors: list[EventProcessor] = []
        self._propagation_context: PropagationContext | None = None
        self._last_event_id: str | None = None
        self._session: Session | RequestSession | None = None
        self._conversation_id: str | None = None

    def fork(self) -> Scope:
        """A copy whose changes never reach this scope (and the other way round)."""
        new = Scope.__new__(Scope)
        new._tags = self._tags.copy()
        new._extras = self._extras.copy()
        new._contexts = self._contexts.copy()
        new._user = self._user
        new._level = self._level
        new._fingerprint = self._fingerprint
        new._breadcrumbs = self._breadcrumbs.copy()
        new._attachments = self._attachments.copy()
        new._event_processors = self._event_processors.copy()
        new._propagation_context = self._propagation_context
        new._last_event_id = self._last_event_id
        new._session = self._session  # the same session: errors of a fork count for it
        new._conversation_id = self._conversation_id
        return new

    # -- tags, extras, contexts, user, level, fingerprint -------------------------------------

    def set_tag(self, key: str, value: object) -> None:
        """Set a tag (searchable in Sentry); the key and value are turned into strings."""
        self._tags[_text(key)] = _text(value)

    def set_tags(self, tags: Mapping[str, object]) -> None:
        """Set several tags at once."""
        if _rejected("set_tags", "tags", tags, Mapping):
            return
        for key, value in tags.items():
            self.set_tag(key, value)

    def remove_tag(self, key: str) -> None:
        """Remove a tag if present."""
        self._tags.pop(key, None)

    def set_extra(self, key: str, value: object) -> None:
        """Set additional, unsearchable data (any value: what JSON cannot hold is sent as its ``repr``)."""
        self._extras[_text(key)] = value

    def set_extras(self, extras: Mapping[str, object]) -> None:
        """Set several extras at once."""
        if _rejected("set_extras", "extras", extras, Mapping):
            return
        for key, value in extras.items():
            self.set_extra(key, value)

    def remove_extra(self, key: str) -> None:
        """Remove an extra if present."""
        self._extras.pop(key, None)

    def set_context(self, key: str, value: Mapping[str, Any] | None) -> None:
        """Set a structured context (``contexts.<key>``); ``None`` removes it."""
        if value is None:
            self._contexts.pop(_text(key), None)
        elif not _rejected("set_context", "value", value, Mapping):
            self._contexts[_text(key)] = dict(value)

    def remove_context(self, key: str) -> None:
        """Remove a context if present."""
        self._contexts.pop(key, None)

    def set_user(self, user: Mapping[str, Any] | None) -> None:
        """Set the user (``id``, ``email``, ``username``, ``ip_address``, ...); ``None`` unsets it."""
        if user is None or not _rejected("set_user", "user", user, Mapping):
            self._user = None if user is None else dict(user)
            if self._user and self._session is not None:
                self._session.user_changed(self._user)

    def set_level(self, level: Level | None) -> None:
        """Set the level of events captured in this scope that do not set one themselves."""
        if level is not None and (not isinstance(level, str) or level not in LEVELS):
            logger.warning("set_level: level must be one of %s, not %r; ignored", sorted(LEVELS), level)
            return
        self._level = level

    def set_fingerprint(self, fingerprint: Iterable[str] | None) -> None:
        """Set the grouping fingerprint for events that do not set one."""
        if fingerprint is None:
            self._fingerprint = None
        elif isinstance(fingerprint, str) or not isinstance(fingerprint, Iterable):
            logger.warning(
                "set_fingerprint: fingerprint must be a list of strings, not %s; ignored", type(fingerprint).__name__
            )
        else:
            self._fingerprint = [_text(part) for part in fingerprint]

    # -- breadcrumbs, attachments, processors ---------------------------------------------------

    def add_breadcrumb(self, crumb: Mapping[str, Any] | None = None, hint: Hint | None = None, **fields: Any) -> None:
        """Record a breadcrumb (a dict and/or keyword fields); ``timestamp`` defaults to now.

        The active client's ``before_breadcrumb(crumb, hint)`` may change it or drop it
        (``None``); only the last ``max_breadcrumbs`` are kept.
        """
        from ._context import get_client

        options = get_client().options
        if crumb is not None and _rejected("add_breadcrumb", "crumb", crumb, Mapping):
            return
        if hint is not None and _rejected("add_breadcrumb", "hint", hint, Mapping):
            hint = None
        breadcrumb: dict[str, Any] = dict(crumb or {})
        breadcrumb.update(fields)
        breadcrumb.setdefault("timestamp", time.time())
        hook = options.before_breadcrumb
        if hook is not None:
            try:
                result = hook(breadcrumb, dict(hint or {}))
            except Exception:
                logger.exception("before_breadcrumb raised; breadcrumb dropped")
                return
            if result is None:
                return
            if not isinstance(result, dict):
                logger.warning(
                    "before_breadcrumb returned %s instead of a dict; breadcrumb dropped", type(result).__name__
                )
                return
            breadcrumb = result
        crumbs = self._breadcrumbs
        if crumbs.maxlen != options.max_breadcrumbs:
            # A bounded deque keeps append atomic when threads share a scope.
            crumbs = self._breadcrumbs = deque(crumbs, maxlen=max(options.max_breadcrumbs, 0))
        crumbs.append(breadcrumb)

    def clear_breadcrumbs(self) -> None:
        """Forget all breadcrumbs of this scope."""
        self._breadcrumbs.clear()

    def add_attachment(
        self,
        attachment: Attachment | bytes | None = None,
        *,
        path: str | None = None,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> None:
        """Attach a file to every event and feedback captured in this scope.

        Wrong arguments (what ``Attachment(...)`` refuses) are logged and ignored.
        """
        if not isinstance(attachment, Attachment):
            try:
                attachment = Attachment(attachment, path=path, filename=filename, content_type=content_type)
            except (TypeError, ValueError) as exc:
                logger.warning("add_attachment: %s; ignored", exc)
                return
        self._attachments.append(attachment)

    def clear_attachments(self) -> None:
        """Forget all attachments of this scope."""
        self._attachments.clear()

    def add_event_processor(self, processor: EventProcessor) -> None:
        """Run ``processor(event, hint)`` on every event captured in this scope; ``None`` drops it."""
        if not callable(processor):
            logger.warning("add_event_processor: processor must be callable, not %s; ignored", type(processor).__name__)
            return
        self._event_processors.append(processor)

    def set_conversation_id(self, conversation_id: str | None) -> None:
        """Set the AI conversation id added to AI spans as ``gen_ai.conversation.id``; ``None`` unsets it."""
        if conversation_id is not None and not isinstance(conversation_id, str):
            logger.warning(
                "set_conversation_id: the id must be a string or None, not %s; ignored", type(conversation_id).__name__
            )
            return
        self._conversation_id = conversation_id or None

    @property
    def conversation_id(self) -> str | None:
        """The AI conversation id set on this scope, if any."""
        return self._conversation_id

    def set_propagation_context(self, context: PropagationContext | None) -> None:
        """Put this scope in the given trace (``None`` falls back to the enclosing scope's)."""
        self._propagation_context = context

    def clear(self) -> None:
        """Reset everything but the propagation context."""
        propagation = self._propagation_context
        self.__init__()  # type: ignore[misc]
        self._propagation_context = propagation

    # -- read access ----------------------------------------------------------------------------

    @property
    def tags(self) -> dict[str, str]:
        """A copy of the tags."""
        return self._tags.copy()

    @property
    def extras(self) -> dict[str, Any]:
        """A copy of the extras."""
        return self._extras.copy()

    @property
    def contexts(self) -> dict[str, dict[str, Any]]:
        """A copy of the contexts."""
        return self._contexts.copy()

    @property
    def user(self) -> dict[str, Any] | None:
        """The user, if set."""
        return None if self._user is None else dict(self._user)

    @property
    def level(self) -> str | None:
        """The level, if set."""
        return self._level

    @property
    def breadcrumbs(self) -> list[dict[str, Any]]:
        """A copy of the breadcrumbs, oldest first."""
        return list(self._breadcrumbs.copy())

    @property
    def attachments(self) -> list[Attachment]:
        """A copy of the attachments."""
        return self._attachments.copy()

    @property
    def event_processors(self) -> list[EventProcessor]:
        """A copy of the event processors."""
        return self._event_processors.copy()

    @property
    def propagation_context(self) -> PropagationContext | None:
        """The trace this scope is in, if it has its own."""
        return self._propagation_context

    @property
    def session(self) -> Session | None:
        """The release-health session of this scope (see :func:`~sentry_feedback.start_session`), if any."""
        from ._sessions import Session

        session = self._session
        return session if isinstance(session, Session) else None

    @property
    def last_event_id(self) -> str | None:
        """The id of the last error or message event captured in this scope."""
        return self._last_event_id

    def _set_last_event_id(self, event_id: str) -> None:
        self._last_event_id = event_id

    def __repr__(self) -> str:
        return f"<Scope tags={self._tags!r} user={self._user!r} breadcrumbs={len(self._breadcrumbs)}>"


def _text(value: object) -> str:
    """``value`` as a string for a key or tag; a broken ``__str__`` gives its ``repr`` instead."""
    if isinstance(value, str):
        return value
    try:
        return str(value)
    except KeyboardInterrupt:
        raise
    except BaseException:  # a broken __str__, even one raising SystemExit
        return safe_repr(value)


def _rejected(method: str, name: str, value: object, expected: type) -> bool:
    """Log and return ``True`` when ``value`` is not an ``expected``: scope setters never raise."""
    if isinstance(value, expected):
        return False
    logger.warning(
        "%s: %s must be a %s, not %s; ignored", method, name, expected.__name__.lower(), type(value).__name__
    )
    return True


def merge_into_event(
    event: Event,
    scopes: tuple[Scope, Scope, Scope],
    max_breadcrumbs: int,
    *,
    span: Span | None = None,
    transaction: bool = False,
) -> ScopeData:
    """Apply global, isolation and current scope data to ``event`` (its own values win).

    Returns the scopes' attachments and event processors in the order they apply, and
    the propagation context of the innermost scope that has one. ``span``: the active
    span, whose trace and span ids the event gets instead of the propagation context's.
    A ``transaction`` gets no breadcrumbs (and the caller sends no attachments with it).
    """
    tags: dict[str, str] = {}
    extras: dict[str, Any] = {}
    contexts: dict[str, Any] = {}
    user: dict[str, Any] = {}
    level = fingerprint = None
    propagation: PropagationContext | None = None
    crumbs: list[dict[str, Any]] = []
    attachments: list[Attachment] = []
    processors: list[EventProcessor] = []
    for scope in scopes:
        tags.update(scope._tags)
        extras.update(scope._extras)
        contexts.update(scope._contexts)
        if scope._user:
            user.update(scope._user)
        level = scope._level or level
        fingerprint = scope._fingerprint or fingerprint
        propagation = scope._propagation_context or propagation
        if scope._breadcrumbs and not transaction:
            crumbs.extend(scope._breadcrumbs.copy())
        attachments.extend(scope._attachments)
        processors.extend(scope._event_processors)

    if tags:
        event["tags"] = {**tags, **(event.get("tags") or {})}
    if extras:
        event["extra"] = {**extras, **(event.get("extra") or {})}
    if user:
        event["user"] = {**user, **(event.get("user") or {})}
    if level and not event.get("level"):
        event["level"] = level
    if fingerprint and not event.get("fingerprint"):
        event["fingerprint"] = fingerprint
    own_contexts = event.get("contexts") or {}
    if "trace" not in own_contexts and "trace" not in contexts:
        if span is not None:
            contexts["trace"] = span.trace_context()
        elif propagation is not None:
            contexts["trace"] = propagation.trace_context()
    if contexts or own_contexts:
        # One level deep: a hook editing contexts.<name> must not edit the scope's copy.
        merged = {k: v.copy() if isinstance(v, dict) else v for k, v in contexts.items()}
        merged.update(own_contexts)
        event["contexts"] = merged
    own_crumbs = (event.get("breadcrumbs") or {}).get("values") or []
    if crumbs or own_crumbs:
        all_crumbs = crumbs + list(own_crumbs)
        if max_breadcrumbs >= 0:
            all_crumbs = all_crumbs[-max_breadcrumbs:] if max_breadcrumbs else []
        if all_crumbs:
            event["breadcrumbs"] = {"values": all_crumbs}
        else:
            event.pop("breadcrumbs", None)
    return attachments, processors, propagation
