"""The top-level functions: each delegates to the active client or scope."""

from __future__ import annotations

import atexit
from contextlib import contextmanager

from ._client import Client
from ._context import get_client, get_current_scope, get_isolation_scope, set_client, with_isolation_scope
from ._log import logger, real_logger
from ._options import Options
from ._spans import active_trace_source
from ._tracing import PropagationContext, baggage_header, propagation_context_from_headers

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from collections.abc import Iterator, Mapping
    from types import TracebackType
    from typing import Any

    from typing_extensions import Unpack

    from ._attachment import Attachment
    from ._dsn import Dsn
    from ._feedback import FeedbackFields
    from ._scope import Scope
    from ._sessions import Session
    from ._types import Event, EventProcessor, Hint, Level
    from .integrations import Integration

__all__ = [
    "add_attachment",
    "add_breadcrumb",
    "add_event_processor",
    "add_integration",
    "capture_event",
    "capture_exception",
    "capture_feedback",
    "capture_message",
    "capture_session",
    "close",
    "continue_trace",
    "end_session",
    "flush",
    "get_baggage",
    "get_trace_headers",
    "get_traceparent",
    "init",
    "is_enabled",
    "last_event_id",
    "new_trace",
    "send_feedback",
    "set_context",
    "set_conversation_id",
    "set_extra",
    "set_extras",
    "set_level",
    "set_tag",
    "set_tags",
    "set_user",
    "start_session",
]

_atexit_registered = False
_debug_handler: logging.Handler | None = None


def init(dsn: str | Dsn | None = None, **options: Any) -> Client:
    """Start the SDK: build and validate the options, make the client active and return it.

    ``dsn`` falls back to ``SENTRY_DSN``; without a DSN (and without a ``transport``)
    the SDK is disabled and captures return ``None``. Raises ``ValueError`` for a
    malformed DSN or option value and ``TypeError`` for an unknown option.
    A previous client stops taking captures; what it had queued still goes out.
    """
    global _atexit_registered
    client = Client(Options.build(dsn, **options))
    _configure_debug(client.options.debug)
    previous = get_client()
    set_client(client)
    if previous is not client:
        previous._retire()
        _hand_over_counts(previous, client)
    if not _atexit_registered:
        atexit.register(_shutdown)
        _atexit_registered = True
    client.start_application_session(get_isolation_scope())
    if client.is_active():
        logger.debug("sentry_feedback initialized: %r", client)
    else:
        logger.debug("sentry_feedback is disabled: no DSN")
    return client


def _hand_over_counts(previous: Client, client: Client) -> None:
    """Give the new client what the old one counted but could not report yet, if it is the same project."""
    old, new = previous.dsn, client.dsn
    if old is None or new is None or (old.public_key, old.project_id) != (new.public_key, new.project_id):
        return
    report = previous.client_reports.take()
    if report is not None:
        client.client_reports.restore(report)


def _configure_debug(debug: bool) -> None:
    """Print the SDK's log to stderr with ``debug=True`` (``logging`` is imported only then)."""
    global _debug_handler
    if debug and _debug_handler is None:
        import logging

        _debug_handler = logging.StreamHandler()
        _debug_handler.setFormatter(logging.Formatter(" [sentry_feedback] %(levelname)s: %(message)s"))
        real = real_logger()
        real.addHandler(_debug_handler)
        real.setLevel(logging.DEBUG)
    elif not debug and _debug_handler is not None:
        real = real_logger()
        real.removeHandler(_debug_handler)
        real.setLevel(0)  # logging.NOTSET
        _debug_handler = None


def _shutdown() -> None:
    """The atexit handler: flush within ``shutdown_timeout``; never raises (it would hide the program's own exit)."""
    try:
        get_client().close()
    except Exception:
        logger.exception("could not flush at exit")


def is_enabled() -> bool:
    """Whether the active client sends anything (a DSN or transport is set and it is not closed)."""
    return get_client().is_active()


def flush(timeout: float | None = None) -> bool:
    """Wait up to ``timeout`` seconds (default ``shutdown_timeout``) for queued items.

    Returns ``True`` when everything queued was handled (sent or counted) in time.
    """
    return get_client().flush(timeout)


def close(timeout: float | None = None) -> bool:
    """Flush within ``timeout`` and disable the SDK; later captures return ``None``."""
    return get_client().close(timeout)


def capture_feedback(message: str, **fields: Unpack[FeedbackFields]) -> str | None:
    """Queue a user feedback with optional attachments; return its event id or ``None`` if dropped.

    Keyword arguments (all optional, see :class:`FeedbackFields`): ``email``, ``name``,
    ``url``, ``associated_event_id``, ``replay_id``, ``source``, ``tags``,
    ``attachments``, ``hint``, ``scope``. Never raises and never waits for the network:
    an invalid feedback, or one dropped by an event processor or ``before_send_feedback``,
    is logged and counted in client reports.

    >>> capture_feedback("The pay button does nothing", email="jane@example.com")
    """
    return get_client().capture_feedback(message, **fields)


def send_feedback(message: str, *, timeout: float = 10.0, **fields: Unpack[FeedbackFields]) -> str:
    """Send a feedback and block until the server answered (at most ``timeout`` seconds).

    Takes the keyword arguments of :func:`capture_feedback`. Returns the event id; raises
    a :class:`~sentry_feedback.exceptions.FeedbackError` subclass that says why when the
    feedback was not delivered.
    """
    return get_client().send_feedback(message, timeout=timeout, **fields)


def capture_event(event: Event, hint: Hint | None = None, scope: Scope | None = None) -> str | None:
    """Queue a hand-made event; return its id or ``None`` if it was dropped."""
    return get_client().capture_event(event, hint, scope)


def capture_exception(
    error: BaseException | tuple[type[BaseException], BaseException, TracebackType | None] | None = None,
    *,
    hint: Hint | None = None,
    scope: Scope | None = None,
) -> str | None:
    """Queue an error event for ``error`` (default: the exception being handled); return its id.

    The whole chain (``__cause__``, ``__context__``, exception group members) is sent with
    frames, source context and local variables. Goes through ``ignore_errors``,
    ``sample_rate`` and ``before_send``; sets :func:`last_event_id`. Returns ``None`` when
    there is no exception to report or the event was dropped.
    """
    return get_client().capture_exception(error, hint=hint, scope=scope)


def capture_message(
    message: str, level: Level | None = None, *, hint: Hint | None = None, scope: Scope | None = None
) -> str | None:
    """Queue a message event; return its id or ``None`` if it was dropped or sampled out."""
    return get_client().capture_message(message, level, hint=hint, scope=scope)


def last_event_id() -> str | None:
    """The id of the last error or message event captured in this isolation scope (never a feedback)."""
    return get_isolation_scope().last_event_id


def set_tag(key: str, value: object) -> None:
    """Set a tag on the isolation scope."""
    get_isolation_scope().set_tag(key, value)


def set_tags(tags: Mapping[str, object]) -> None:
    """Set several tags on the isolation scope."""
    get_isolation_scope().set_tags(tags)


def set_context(key: str, value: Mapping[str, Any] | None) -> None:
    """Set (or with ``None`` remove) a context on the isolation scope."""
    get_isolation_scope().set_context(key, value)


def set_extra(key: str, value: object) -> None:
    """Set an extra on the isolation scope."""
    get_isolation_scope().set_extra(key, value)


def set_extras(extras: Mapping[str, object]) -> None:
    """Set several extras on the isolation scope."""
    get_isolation_scope().set_extras(extras)


def set_user(user: Mapping[str, Any] | None) -> None:
    """Set (or with ``None`` unset) the user on the isolation scope."""
    get_isolation_scope().set_user(user)


def set_level(level: Level | None) -> None:
    """Set the default level of events on the isolation scope."""
    get_isolation_scope().set_level(level)


def add_breadcrumb(crumb: Mapping[str, Any] | None = None, hint: Hint | None = None, **fields: Any) -> None:
    """Record a breadcrumb on the isolation scope, through ``before_breadcrumb``.

    Only the last ``max_breadcrumbs`` are kept.
    """
    get_client().add_breadcrumb(crumb, hint, **fields)


def add_attachment(
    attachment: Attachment | bytes | None = None,
    *,
    path: str | None = None,
    filename: str | None = None,
    content_type: str | None = None,
) -> None:
    """Attach a file to every later event and feedback of this isolation scope."""
    get_isolation_scope().add_attachment(attachment, path=path, filename=filename, content_type=content_type)


def add_event_processor(processor: EventProcessor) -> None:
    """Run ``processor(event, hint)`` on every event of the isolation scope; returning ``None`` drops it."""
    get_isolation_scope().add_event_processor(processor)


def set_conversation_id(conversation_id: str | None) -> None:
    """Set the AI conversation id on the isolation scope; ``None`` unsets it.

    Spans of AI operations started later in the scope (``op`` starting with ``gen_ai.``, or a
    name starting with ``ai.``) get it as their ``gen_ai.conversation.id`` attribute, so that
    Sentry can show the calls of one conversation together.
    """
    get_isolation_scope().set_conversation_id(conversation_id)


def add_integration(integration: Integration) -> None:
    """Enable ``integration`` on the active client after ``init``, set up as ``init`` would have.

    Its ``setup_once`` runs if it never ran in this process, then its ``setup(client)``. An
    integration with the same identifier that is already enabled is left as it is (logged
    at debug level); anything that is not an :class:`~sentry_feedback.integrations.Integration`
    is logged and ignored. Never raises.
    """
    get_client().add_integration(integration)


def start_session() -> Session | None:
    """Start a release-health session on the isolation scope (ending and sending the one it had).

    Errors captured in the scope count for it; an unhandled one marks it ``crashed``. Needs the
    ``release`` option: without it (or before ``init``) nothing is started and ``None`` is
    returned. See :func:`end_session`, :func:`capture_session`.
    """
    return get_client().start_session(get_isolation_scope())


def end_session() -> None:
    """End the isolation scope's session (``exited``, or ``crashed`` after an unhandled error) and send it."""
    get_client().end_session(get_isolation_scope())


def capture_session(end: bool = False) -> None:
    """Send the isolation scope's session as it is now; ``end=True`` ends it first (:func:`end_session`)."""
    if end:
        end_session()
    else:
        get_client().capture_session(get_isolation_scope())


def _propagation() -> PropagationContext:
    scope = get_current_scope()
    context = scope.propagation_context or get_isolation_scope().propagation_context
    if context is None:  # only after someone cleared the root's context
        context = PropagationContext()
        get_isolation_scope().set_propagation_context(context)
    return context


@contextmanager
def continue_trace(headers: Mapping[str, str] | None = None) -> Iterator[Scope]:
    """Continue the trace of an incoming request for the ``with`` block; yield its isolation scope.

    Reads ``sentry-trace`` (or W3C ``traceparent``) and ``baggage`` from ``headers``
    (names are case-insensitive; ``os.environ`` with ``SENTRY_TRACE`` / ``SENTRY_BAGGAGE``
    and a WSGI ``environ`` with ``HTTP_SENTRY_TRACE`` / ``HTTP_BAGGAGE`` work too).
    Malformed or missing headers start a new trace. The block runs in a new isolation
    scope, so feedback and errors captured in it share that trace.
    """
    context = propagation_context_from_headers(headers or {})
    with with_isolation_scope() as scope:
        scope.set_propagation_context(context)
        yield scope


def new_trace() -> None:
    """Start a new trace in the current isolation scope (e.g. at the start of a background job)."""
    get_isolation_scope().set_propagation_context(PropagationContext())


def get_traceparent() -> str:
    """The ``sentry-trace`` header value for an outgoing call, continuing the current trace.

    Inside an active span, the call becomes that span's child (with its sampling decision).
    """
    span = active_trace_source()
    if span is not None:
        return span.to_sentry_trace()
    return _propagation().sentry_trace()


def get_baggage() -> str:
    """The ``baggage`` header value for an outgoing call (the trace's dynamic sampling context).

    Inside an active span, the context of its transaction, kept from then on for the trace.
    """
    span = active_trace_source()
    propagation = _propagation()
    if span is not None and span._segment is not None:
        return baggage_header(span._segment.frozen_dsc(), propagation.third_party_baggage)
    options = get_client().options
    return propagation.baggage(
        public_key=options.dsn.public_key if options.dsn is not None else None,
        release=options.release,
        environment=options.environment,
    )


def get_trace_headers(*, w3c: bool = False) -> dict[str, str]:
    """Headers to add to an outgoing request: ``sentry-trace``, ``baggage`` (and ``traceparent`` with ``w3c``)."""
    headers = {"sentry-trace": get_traceparent(), "baggage": get_baggage()}
    if w3c:
        span = active_trace_source()
        headers["traceparent"] = span.to_traceparent() if span is not None else _propagation().traceparent()
    return headers
