"""The client: turns captures into envelopes and hands them to the dispatcher."""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sized

from . import _context, _random
from ._attachment import Attachment
from ._client_reports import ClientReportRecorder, DiscardReason
from ._dispatch import DeliveryTicket, Dispatcher
from ._dsn import SDK_NAME
from ._envelope import Envelope, EnvelopeItem
from ._errors import exc_info_of, matches_any
from ._feedback import build_feedback_event, new_event_id, normalize_event_id
from ._log import logger
from ._options import Options, check_timeout
from ._ratelimit import RateLimiter
from ._scope import Scope, merge_into_event
from ._scrubber import EventScrubber, scrub_before_sending
from ._serialize import safe_repr
from ._sessions import RequestSession, Session, SessionFlusher
from ._spans import active_trace_source
from ._tracing import PropagationContext
from ._transport import FunctionTransport, Transport, make_transport
from ._types import LEVELS
from ._version import __version__
from .exceptions import (
    FeedbackDroppedError,
    FeedbackError,
    FeedbackTimeoutError,
    InvalidFeedbackError,
    SDKDisabledError,
)
from .integrations import (
    Integration,
    auto_enabling_integrations,
    default_integrations,
    setup_integrations,
    without_disabled,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType, TracebackType
    from typing import Any, TypeVar

    from typing_extensions import Unpack

    from ._dsn import Dsn
    from ._errors import ExcInfo
    from ._feedback import FeedbackFields
    from ._spans import Segment, Span
    from ._stacktrace import StackOptions
    from ._types import Event, EventProcessor, Hint, Level

    I = TypeVar("I", bound=Integration)  # noqa: E741

__all__ = ["Client"]

_FEEDBACK_FIELDS = frozenset(("email", "name", "url", "associated_event_id", "replay_id", "source", "tags"))
#: The most entries taken from an ``attachments`` iterable that has no length (a generator).
MAX_ATTACHMENT_ENTRIES = 1000


class _Dropped(Exception):
    """Internal: the event was dropped before it was queued (already logged and counted)."""

    def __init__(self, error: FeedbackError) -> None:
        super().__init__(str(error))
        self.error = error


class Client:
    """Sends feedback and events for one DSN. Usually made by :func:`sentry_feedback.init`.

    The client is a context manager: leaving the block closes it, flushing what is
    queued within ``shutdown_timeout``.

    >>> with Client(Options.build("https://key@o1.ingest.sentry.io/42")) as client:
    ...     client.capture_feedback("Works great")
    """

    def __init__(self, options: Options | None = None) -> None:
        self.options = options if options is not None else Options()
        #: Counts of everything this client dropped, by (reason, category).
        self.client_reports = ClientReportRecorder()
        #: The rate limits the server announced to this client.
        self.rate_limiter = RateLimiter()
        self.transport: Transport | None = make_transport(self.options)
        if self.transport is None and self.options.spotlight:
            # Spotlight alone (local debugging without a DSN): envelopes go to the sidecar only.
            self.transport = FunctionTransport(lambda envelope: None)
        self._dispatcher = (
            Dispatcher(self.transport, self.options, self.client_reports, self.rate_limiter) if self.transport else None
        )
        options = self.options
        self._event_processors: list[EventProcessor] = []
        self._default_contexts: dict[str, dict[str, Any]] = {}
        # Made by the first error or stack captured: ``_stacktrace`` is not imported by ``init``.
        self._stack_options: StackOptions | None = None
        scrubber = options.event_scrubber
        self._scrubber: EventScrubber | None = (
            EventScrubber(send_default_pii=options.send_default_pii) if scrubber is True else scrubber or None
        )
        #: The enabled integrations by identifier (none for a disabled client).
        self.integrations: dict[str, Integration] = {}
        #: Release health: collects session updates and request aggregates (none for a disabled client).
        self.sessions: SessionFlusher | None = None
        if self._dispatcher is not None:
            self.sessions = SessionFlusher(
                release=options.release,
                environment=options.environment,
                submit=self._dispatcher.submit,
                schedule=self._dispatcher.call_later,
            )
            self._dispatcher.start_drain()
            wanted = default_integrations() if options.default_integrations else []
            if options.default_integrations and options.auto_enabling_integrations:
                wanted += auto_enabling_integrations()
            wanted = without_disabled([*wanted, *options.integrations], options.disabled_integrations)
            self.integrations = setup_integrations(self, wanted)
        self._sdk = {
            "name": SDK_NAME,
            "version": __version__,
            "packages": [{"name": "pypi:sentry-feedback", "version": __version__}],
            "integrations": sorted(self.integrations),
        }
        server_name = self.options.server_name
        if server_name is None and self.options.send_default_pii:
            import socket

            server_name = socket.gethostname()
        self._server_name = server_name

    @classmethod
    def disabled(cls) -> Client:
        """A client that sends nothing (no DSN, no transport)."""
        return cls(Options())

    @property
    def dsn(self) -> Dsn | None:
        """The parsed DSN, if any."""
        return self.options.dsn

    def is_active(self) -> bool:
        """Whether captures are sent: a DSN or transport is set and the client is not closed."""
        return self._dispatcher is not None and not self._dispatcher.closed

    def get_integration(self, integration: type[I]) -> I | None:
        """This client's instance of ``integration``, or ``None`` when it is not enabled."""
        found = self.integrations.get(integration.identifier)
        return found if isinstance(found, integration) else None

    def add_integration(self, integration: Integration) -> None:
        """Enable ``integration`` now (see :func:`~sentry_feedback.add_integration`). Never raises."""
        if not isinstance(integration, Integration):
            logger.warning("add_integration: %r is not an Integration; ignored", integration)
            return
        if self._dispatcher is None:
            logger.debug("add_integration: the SDK is disabled; %s not set up", integration.identifier)
            return
        if integration.identifier in self.integrations:
            logger.debug("add_integration: %s is enabled already; ignored", integration.identifier)
            return
        if not without_disabled([integration], self.options.disabled_integrations):
            logger.debug("add_integration: %s is in disabled_integrations; ignored", integration.identifier)
            return
        try:
            enabled = setup_integrations(self, [integration])
        except Exception:
            logger.exception("add_integration: could not set up %s", integration.identifier)
            return
        if enabled:
            self.integrations.update(enabled)
            self._sdk["integrations"] = sorted(self.integrations)

    def set_default_context(self, name: str, value: Mapping[str, Any]) -> None:
        """Give every event of this client ``contexts.<name>``, unless the event or a scope sets its own."""
        self._default_contexts[name] = dict(value)

    def add_event_processor(self, processor: EventProcessor) -> None:
        """Run ``processor(event, hint)`` on every event of this client, before the scopes' processors."""
        self._event_processors.append(processor)

    def add_breadcrumb(self, crumb: Mapping[str, Any] | None = None, hint: Hint | None = None, **fields: Any) -> None:
        """Record a breadcrumb on the isolation scope, through ``before_breadcrumb``."""
        _context.get_isolation_scope().add_breadcrumb(crumb, hint, **fields)

    # -- capture ---------------------------------------------------------------------------------

    def capture_feedback(self, message: str, **fields: Unpack[FeedbackFields]) -> str | None:
        """Queue a user feedback; return its event id, or ``None`` if it was dropped (logged and counted).

        The keyword arguments are those of :class:`FeedbackFields`.
        """
        try:
            return self._feedback(message, fields, None)
        except _Dropped:
            return None
        except Exception:
            logger.exception("internal error in capture_feedback")
            self.client_reports.record(DiscardReason.INTERNAL_SDK_ERROR, "feedback")
            return None

    def send_feedback(self, message: str, *, timeout: float = 10.0, **fields: Unpack[FeedbackFields]) -> str:
        """Send a feedback and wait up to ``timeout`` seconds for the server's answer; return the event id.

        Raises a :class:`FeedbackError` subclass saying why when it was not delivered.
        """
        ticket = DeliveryTicket()
        try:
            check_timeout(timeout, "timeout")
        except ValueError as exc:
            problem: str | None = str(exc)  # dropped and counted like any invalid feedback, by _feedback
        else:
            problem = None
        try:
            event_id = self._feedback(message, fields, ticket, problem)
        except _Dropped as dropped:
            raise dropped.error from dropped.error.__cause__
        except Exception as exc:
            logger.exception("internal error in send_feedback")
            self.client_reports.record(DiscardReason.INTERNAL_SDK_ERROR, "feedback")
            raise FeedbackDroppedError(f"internal SDK error: {exc}", reason=DiscardReason.INTERNAL_SDK_ERROR) from exc
        if not ticket.wait(timeout):
            raise FeedbackTimeoutError(
                f"no answer from the server within {timeout} s; the feedback stays queued", event_id=event_id
            )
        if ticket.error is not None:
            raise ticket.error
        return event_id

    def capture_event(self, event: Event, hint: Hint | None = None, scope: Scope | None = None) -> str | None:
        """Queue an event; return its id or ``None`` if it was dropped.

        A ``type: "feedback"`` event follows the feedback rules; any other goes through
        ``sample_rate`` and ``before_send``.
        """
        category = "feedback" if isinstance(event, Mapping) and event.get("type") == "feedback" else "error"
        try:
            problem = _bad_arguments(hint, scope) or (
                None if isinstance(event, Mapping) else f"event must be a mapping, not {type(event).__name__}"
            )
            if problem is not None:
                self._invalid_call("capture_event", problem, category, hint)
                return None
            return self._capture(dict(event), dict(hint) if hint else None, scope, None)
        except _Dropped:
            return None
        except Exception:
            logger.exception("internal error in capture_event")
            self.client_reports.record(DiscardReason.INTERNAL_SDK_ERROR, category)
            return None

    def capture_exception(
        self,
        error: BaseException | ExcInfo | None = None,
        *,
        hint: Hint | None = None,
        scope: Scope | None = None,
        handled: bool = True,
        mechanism_type: str = "generic",
    ) -> str | None:
        """Queue an error event for ``error`` (default: the exception being handled); return its id.

        Returns ``None`` when there is no exception or the event was dropped. ``handled``
        and ``mechanism_type`` describe how the error was caught (integrations set them).
        """
        try:
            try:
                exc_info = exc_info_of(error)
            except TypeError as exc:
                self._invalid_call("capture_exception", str(exc), "error", hint)
                return None
            problem = _bad_arguments(hint, scope)
            if problem is not None:
                self._invalid_call("capture_exception", problem, "error", hint)
                return None
            if exc_info is None:
                return None
            event = self.event_from_exception(exc_info[1], handled=handled, mechanism_type=mechanism_type)
            return self._capture(event, {**(hint or {}), "exc_info": exc_info}, scope, None)
        except _Dropped:
            return None
        except Exception:
            logger.exception("internal error in capture_exception")
            self.client_reports.record(DiscardReason.INTERNAL_SDK_ERROR, "error")
            return None

    def event_from_exception(
        self, error: BaseException, *, handled: bool = True, mechanism_type: str = "generic"
    ) -> Event:
        """The error event payload for ``error``: its chain as ``exception.values`` with frames and locals."""
        from ._stacktrace import exceptions_from_error

        values = exceptions_from_error(error, handled=handled, mechanism_type=mechanism_type, options=self._stacks())
        return {"level": "error", "exception": {"values": values}}

    def current_thread_stacktrace(self, frame: FrameType | None = None) -> dict[str, Any]:
        """``threads`` payload holding the calling stack (for ``attach_stacktrace``)."""
        from ._stacktrace import stacktrace_from_frame

        frame = frame if frame is not None else sys._getframe(1)
        stacktrace = stacktrace_from_frame(frame, options=self._stacks())
        thread = threading.current_thread()
        return {
            "values": [
                {"id": thread.ident, "name": thread.name, "current": True, "crashed": False, "stacktrace": stacktrace}
            ]
        }

    def _stacks(self) -> StackOptions:
        """How this client turns errors and stacks into payloads (made on first use)."""
        stacks = self._stack_options
        if stacks is None:
            from ._stacktrace import StackOptions

            options = self.options
            stacks = self._stack_options = StackOptions(
                in_app_include=options.in_app_include,
                in_app_exclude=options.in_app_exclude,
                include_local_variables=options.include_local_variables,
                include_source_context=options.include_source_context,
            )
        return stacks

    def capture_message(
        self,
        message: str,
        level: Level | None = None,
        *,
        hint: Hint | None = None,
        scope: Scope | None = None,
    ) -> str | None:
        """Queue a message event at ``level`` (the scope's level, else ``info``)."""
        if level is not None and (not isinstance(level, str) or level not in LEVELS):
            self._invalid_call(
                "capture_message", f"level must be one of {sorted(LEVELS)}, not {level!r}", "error", hint
            )
            return None
        event: Event = {"message": message if isinstance(message, str) else safe_repr(message)}
        if level is not None:
            event["level"] = level
        if self.options.attach_stacktrace:
            try:
                threads = self.current_thread_stacktrace(sys._getframe(1))
            except Exception:
                logger.exception("could not collect the stack for attach_stacktrace")
            else:
                if threads["values"][0]["stacktrace"]["frames"]:
                    event["threads"] = threads
        return self.capture_event(event, hint, scope)

    # -- the pipeline ----------------------------------------------------------------------------

    def _feedback(
        self, message: object, fields: FeedbackFields, ticket: DeliveryTicket | None, problem: str | None = None
    ) -> str:
        """Validate a feedback call and capture it; ``problem`` is one the caller found already (a bad timeout)."""
        if not self.is_active():
            raise _Dropped(SDKDisabledError("the SDK is disabled: no DSN or transport, or it was closed"))
        values: dict[str, Any] = dict(fields)
        hint_value = values.pop("hint", None)
        scope: Scope | None = values.pop("scope", None)
        given = values.pop("attachments", None)
        entries = [] if given is None else _attachment_entries(given, "attachments")
        hint: Hint = dict(hint_value) if isinstance(hint_value, Mapping) else {}
        if hint.get("attachments") is not None:
            entries = _attachment_entries(hint["attachments"], "hint['attachments']") + entries
        try:
            if problem is None and (hint_value is not None or scope is not None):
                problem = _bad_arguments(hint_value, scope)
            if problem is not None:
                raise InvalidFeedbackError(problem)
            bad = [(label, value) for label, value in entries if not isinstance(value, Attachment)] if entries else []
            if bad and ticket is not None:
                raise InvalidFeedbackError(_not_an_attachment(*bad[0]))
            unknown = sorted(set(values) - _FEEDBACK_FIELDS)
            if unknown:
                raise InvalidFeedbackError(f"unknown argument(s): {', '.join(unknown)}")
            event = build_feedback_event(message, **values)
        except InvalidFeedbackError as exc:
            logger.warning("invalid feedback dropped: %s", exc)
            self._record_drop(DiscardReason.INVALID, "feedback", [value for _, value in entries])
            raise _Dropped(exc) from None
        for label, value in bad:
            logger.warning("%s; the feedback is sent without it", _not_an_attachment(label, value))
            self.client_reports.record(DiscardReason.INVALID, "attachment", _entry_quantity(value))
        hint["attachments"] = [value for _, value in entries if isinstance(value, Attachment)] if entries else []
        return self._capture(event, hint, scope, ticket)

    def _invalid_call(self, function: str, problem: str, category: str, hint: object) -> None:
        """Log and count a capture dropped for a bad argument (with the attachments its hint carried)."""
        logger.warning("%s: %s; dropped", function, problem)
        attachments = hint.get("attachments") if isinstance(hint, Mapping) else None
        self._record_drop(DiscardReason.INVALID, category, [v for _, v in _attachment_entries(attachments, "")])

    def _hint_attachments(self, hint: Hint, category: str) -> list[Attachment]:
        """The attachments of ``hint``; any other entry is logged and counted as ``invalid``."""
        value = hint.get("attachments")
        if value is None or (type(value) is list and not value):
            return []
        if type(value) is list and all(isinstance(entry, Attachment) for entry in value):
            return value.copy()  # the usual case, without labels
        valid: list[Attachment] = []
        for label, entry in _attachment_entries(value, "hint['attachments']"):
            if isinstance(entry, Attachment):
                valid.append(entry)
                continue
            logger.warning("%s; the %s is sent without it", _not_an_attachment(label, entry), category)
            self.client_reports.record(DiscardReason.INVALID, "attachment", _entry_quantity(entry))
        return valid

    def _capture(
        self,
        event: Event,
        hint: Hint | None,
        scope: Scope | None,
        ticket: DeliveryTicket | None,
        segment: Segment | None = None,
    ) -> str:
        dispatcher = self._dispatcher
        if dispatcher is None or dispatcher.closed:
            raise _Dropped(SDKDisabledError("the SDK is disabled: no DSN or transport, or it was closed"))
        options = self.options
        kind = event.get("type")
        is_feedback = kind == "feedback"
        is_transaction = segment is not None
        category = "feedback" if is_feedback else "transaction" if is_transaction else "error"
        hint = hint if hint is not None else {}
        hint_attachments = self._hint_attachments(hint, category) if not is_transaction else []
        spans = len(event.get("spans") or ()) if is_transaction else 0

        if not is_transaction:
            exc_info = hint.get("exc_info")
            if (
                options.ignore_errors
                and isinstance(exc_info, tuple)
                and len(exc_info) == 3
                and matches_any(exc_info[1], options.ignore_errors)
            ):
                logger.debug("ignored %s (ignore_errors)", type(exc_info[1]).__name__)
                self._record_drop(DiscardReason.EVENT_PROCESSOR, category, hint_attachments)
                raise _Dropped(FeedbackDroppedError("ignored error", reason=DiscardReason.EVENT_PROCESSOR))
            if not is_feedback and options.sample_rate < 1.0 and _random.uniform() >= options.sample_rate:
                self._record_drop(DiscardReason.SAMPLE_RATE, category, hint_attachments)
                raise _Dropped(FeedbackDroppedError("sampled out", reason=DiscardReason.SAMPLE_RATE))

        raw_id = event.get("event_id")
        event_id = normalize_event_id(raw_id, "event_id") if raw_id else new_event_id()
        event["event_id"] = event_id
        event.setdefault("timestamp", time.time())
        event.setdefault("platform", "python")
        if segment is not None:
            scopes = (_context.get_global_scope(), segment.isolation, segment.current)
            span = None
        else:
            scopes = (
                _context.get_global_scope(),
                _context.get_isolation_scope(),
                scope if scope is not None else _context.get_current_scope(),
            )
            span = active_trace_source()
        scope_attachments, processors, propagation = merge_into_event(
            event, scopes, options.max_breadcrumbs, span=span, transaction=is_transaction
        )
        if not is_transaction:
            event.setdefault("level", "info" if is_feedback or "exception" not in event else "error")
        self._apply_client_defaults(event)
        hint["attachments"] = scope_attachments + hint_attachments if not is_transaction else []

        hook = (
            options.before_send_feedback
            if is_feedback
            else options.before_send_transaction
            if is_transaction
            else options.before_send
        )
        if self._event_processors or processors:
            event = self._run_callbacks(
                (*self._event_processors, *processors),
                event,
                hint,
                category,
                DiscardReason.EVENT_PROCESSOR,
                event_id,
                spans,
            )
            spans = self._count_removed_spans(event, spans, DiscardReason.EVENT_PROCESSOR)
        if hook is not None:
            event = self._run_callbacks((hook,), event, hint, category, DiscardReason.BEFORE_SEND, event_id, spans)
            spans = self._count_removed_spans(event, spans, DiscardReason.BEFORE_SEND)

        event["event_id"] = event_id  # the header's id wins; keep the payload consistent
        headers: dict[str, Any] = {"event_id": event_id, "sdk": {"name": SDK_NAME, "version": __version__}}
        if segment is not None:
            trace = segment.frozen_dsc()  # it leaves the SDK: the trace's context from now on
        elif span is not None and span._segment is not None and _same_trace(event, span.trace_id):
            trace = span._segment.frozen_dsc()
        else:
            trace = self._dynamic_sampling_context(event, propagation)
        if trace:
            headers["trace"] = trace
        # Scrubbing runs on the background thread, just before the event is serialized.
        prepare = self._scrub if self._scrubber is not None else None
        item_type = "feedback" if is_feedback else "transaction" if is_transaction else "event"
        items = [EnvelopeItem.from_json(item_type, event, prepare=prepare)]
        if not is_transaction:
            items.extend(EnvelopeItem.from_attachment(a) for a in self._hint_attachments(hint, category))
        envelope = Envelope(headers, items)
        if not dispatcher.submit(envelope, ticket):
            error = ticket.error if ticket is not None and ticket.error else None
            raise _Dropped(error or FeedbackDroppedError("queue full", reason=DiscardReason.QUEUE_OVERFLOW))
        if not is_feedback and not is_transaction:
            isolation = _context.get_isolation_scope()
            isolation._set_last_event_id(event_id)
            if isolation._session is not None and _is_error(event):
                self._session_error(isolation._session, _is_crash(event), event.get("user"))
        return event_id

    # -- release health ----------------------------------------------------------------------------

    def _session_error(self, session: Session | RequestSession, crashed: bool, user: object) -> None:
        """Count an error in ``session``; a crash ends an application-mode session and sends it at once."""
        session.record_error(crashed=crashed)
        if isinstance(session, Session) and self.sessions is not None:
            if isinstance(user, dict) and user:
                session.identify(self._session_user(user) or {})
            self.sessions.add_session(session, now=crashed)

    def start_session(self, scope: Scope, *, user_agent: str | None = None) -> Session | None:
        """Start a session on ``scope`` (an isolation scope), ending and sending the one it had.

        Returns ``None`` (logged) when sessions cannot be counted: no ``release``, or the
        client is disabled.
        """
        if self.sessions is None or not self.is_active():
            logger.debug("start_session: the SDK is disabled; no session")
            return None
        if not self.options.release:
            logger.warning("start_session: sessions need a release (the 'release' option); no session")
            return None
        self.end_session(scope)
        user = self._session_user(scope._user)
        session = Session(
            release=self.options.release,
            environment=self.options.environment,
            user=user,
            user_agent=user_agent,
        )
        scope._session = session
        self.sessions.add_session(session)
        return session

    def end_session(self, scope: Scope, status: str = "exited") -> None:
        """End the session of ``scope`` (if it has one) and send its last update; ``scope`` keeps none."""
        session = scope._session
        if not isinstance(session, Session):
            return
        scope._session = None
        session.close(status)
        if self.sessions is not None:
            self.sessions.add_session(session, now=True)

    def capture_session(self, scope: Scope) -> None:
        """Send the current state of ``scope``'s session now (with the next background step)."""
        session = scope._session
        if isinstance(session, Session) and self.sessions is not None:
            self.sessions.add_session(session, now=True)

    def _session_user(self, user: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """``user`` as a session may keep it: without ``ip_address`` unless ``send_default_pii``."""
        if user and "ip_address" in user and not self.options.send_default_pii:
            return {key: value for key, value in user.items() if key != "ip_address"}
        return user

    def start_application_session(self, scope: Scope) -> None:
        """``auto_session_tracking`` in application mode: a session for the process, ended by :meth:`close`."""
        options = self.options
        wanted = options.auto_session_tracking and options.session_mode == "application" and options.release
        if wanted and self.start_session(scope) is not None and self.sessions is not None:
            self.sessions.process_scope = scope

    def add_request_session(self, session: RequestSession) -> None:
        """Count a finished web request (request mode) in the aggregates."""
        if self.sessions is not None and self.options.release:
            self.sessions.add_request(session)

    def capture_segment(self, root: Span, segment: Segment) -> str | None:
        """Send the transaction of a root span that ended (its finished spans with it); its event id.

        Unsampled segments and spans past ``max_spans`` are counted in client reports.
        Called by :meth:`Span.end`; never raises.
        """
        try:
            finished = list(segment.spans)
            if not segment.sampled:
                self.client_reports.record(DiscardReason.SAMPLE_RATE, "transaction")
                self.client_reports.record(DiscardReason.SAMPLE_RATE, "span", segment.created + 1)
                return None
            if segment.dropped:
                logger.debug("transaction %r had more than max_spans spans; %d left out", root.name, segment.dropped)
                self.client_reports.record(DiscardReason.BUFFER_OVERFLOW, "span", segment.dropped)
            if not self.is_active():
                return None
            trace = root.trace_context()
            trace.setdefault("status", "ok")
            trace["origin"] = root.origin
            if root._attributes:
                trace["data"] = dict(root._attributes)
            event: Event = {
                "type": "transaction",
                "transaction": root.name,
                "transaction_info": {"source": segment.source},
                "start_timestamp": root.start_timestamp,
                "timestamp": root.timestamp,
                "contexts": {"trace": trace},
                "spans": [span.to_json() for span in finished],
            }
            return self._capture(event, None, None, None, segment)
        except _Dropped:
            return None
        except Exception:
            logger.exception("internal error in capture_segment")
            self.client_reports.record(DiscardReason.INTERNAL_SDK_ERROR, "transaction")
            self.client_reports.record(DiscardReason.INTERNAL_SDK_ERROR, "span", len(segment.spans) + 1)
            return None

    def _count_removed_spans(self, event: Event, before: int, reason: str) -> int:
        """Count the spans a processor or hook took out of a transaction; the number left."""
        if not before:
            return 0
        value = event.get("spans")
        after = len(value) if isinstance(value, list) else 0
        if after < before:
            self.client_reports.record(reason, "span", before - after)
        return after

    def _run_callbacks(
        self,
        callbacks: Iterable[EventProcessor],
        event: Event,
        hint: Hint,
        category: str,
        reason: str,
        event_id: str,
        spans: int = 0,
    ) -> Event:
        """Run each callback in turn on the event; a ``None`` result or an exception drops it.

        ``spans``: how many spans a transaction holds (a dropped one counts them too).
        """
        for callback in callbacks:
            try:
                result = callback(event, hint)
            except BaseException as exc:
                if not isinstance(exc, Exception):
                    # KeyboardInterrupt, SystemExit, ...: the program's own control flow. Counted, then
                    # let through, so that Ctrl-C and sys.exit() in a hook still work.
                    logger.warning(
                        "%s raised %s; event %s dropped", _callable_name(callback), type(exc).__name__, event_id
                    )
                    self._record_drop(DiscardReason.CALLBACK_ERROR, category, hint.get("attachments", ()), spans)
                    raise
                name = _callable_name(callback)
                logger.exception("%s raised; event %s dropped", name, event_id)
                self._record_drop(DiscardReason.CALLBACK_ERROR, category, hint.get("attachments", ()), spans)
                error = FeedbackDroppedError(
                    f"{name} raised {type(exc).__name__}: {exc}", reason=DiscardReason.CALLBACK_ERROR, event_id=event_id
                )
                error.__cause__ = exc
                raise _Dropped(error) from exc
            if type(result) is not dict:
                if result is None:
                    logger.info("%s dropped event %s", _callable_name(callback), event_id)
                    self._record_drop(reason, category, hint.get("attachments", ()), spans)
                    raise _Dropped(
                        FeedbackDroppedError(
                            f"{_callable_name(callback)} returned None", reason=reason, event_id=event_id
                        )
                    )
                if not isinstance(result, dict):
                    kind = type(result).__name__
                    logger.error("%s returned %s instead of an event dict; event %s dropped", callback, kind, event_id)
                    self._record_drop(DiscardReason.CALLBACK_ERROR, category, hint.get("attachments", ()), spans)
                    raise _Dropped(
                        FeedbackDroppedError(
                            f"{_callable_name(callback)} returned {kind}",
                            reason=DiscardReason.CALLBACK_ERROR,
                            event_id=event_id,
                        )
                    )
            event = result
        return event

    def _scrub(self, event: Event) -> None:
        if self._scrubber is not None:
            scrub_before_sending(self._scrubber, event)

    def _record_drop(self, reason: str, category: str, attachments: Iterable[object], spans: int = 0) -> None:
        self.client_reports.record(reason, category)
        if category == "transaction":
            self.client_reports.record(reason, "span", spans + 1)
        size = sum(_entry_quantity(a) for a in attachments)
        if size:
            self.client_reports.record(reason, "attachment", size)

    def _apply_client_defaults(self, event: Event) -> None:
        options = self.options
        if options.release is not None:
            event.setdefault("release", options.release)
        event.setdefault("environment", options.environment)
        if options.dist is not None:
            event.setdefault("dist", options.dist)
        if self._server_name is not None:
            event.setdefault("server_name", self._server_name)
        event.setdefault("sdk", self._sdk)
        if self._default_contexts:
            contexts = event.get("contexts")
            if contexts is None:
                contexts = event["contexts"] = {}
            for name, value in self._default_contexts.items():
                if name not in contexts:
                    contexts[name] = value.copy()  # a hook editing it must not edit the client's copy

    def _dynamic_sampling_context(self, event: Event, propagation: PropagationContext | None) -> dict[str, str]:
        """The envelope's ``trace`` header for ``event``: the trace's DSC, frozen if it came from upstream."""
        trace_ctx = (event.get("contexts") or {}).get("trace")
        trace_id = trace_ctx.get("trace_id") if isinstance(trace_ctx, dict) else None
        if not isinstance(trace_id, str) or not trace_id:
            return {}
        if propagation is None or propagation.trace_id != trace_id:
            # A processor moved the event to another trace: we are not its head, but a DSC
            # naming the trace still lets Sentry connect the event to it.
            propagation = PropagationContext(trace_id=trace_id)
        dsn = self.options.dsn
        release, environment = event.get("release"), event.get("environment")
        return propagation.dsc(
            public_key=dsn.public_key if dsn is not None else None,
            release=release if isinstance(release, str) else None,
            environment=environment if isinstance(environment, str) else None,
        )

    # -- lifecycle -------------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued was handled (sent or counted); ``True`` if within ``timeout``.

        ``timeout`` is a finite number of seconds >= 0 (``None``: ``shutdown_timeout``);
        anything else raises ``ValueError``.
        """
        seconds = self.options.shutdown_timeout if timeout is None else check_timeout(timeout, "timeout")
        if self._dispatcher is None:
            return True
        if self.sessions is not None:
            self.sessions.flush()
        return self._dispatcher.flush(seconds)

    def _retire(self) -> None:
        """Stop taking captures but keep sending what is queued (``init`` made a newer client).

        The process's session (application mode) ends, and what the session flusher holds is
        queued first.
        """
        if self._dispatcher is not None:
            self._settle_sessions()
            self._dispatcher.retire()

    def _settle_sessions(self) -> None:
        """End the process's session (application mode) and queue every pending session update."""
        sessions = self.sessions
        if sessions is None or self._dispatcher is None or self._dispatcher.closed:
            return
        if sessions.process_scope is not None:
            self.end_session(sessions.process_scope)
            sessions.process_scope = None
        sessions.flush()

    def close(self, timeout: float | None = None) -> bool:
        """Flush within ``timeout`` (default ``shutdown_timeout``) and stop sending. Idempotent.

        ``timeout`` is a finite number of seconds >= 0; anything else raises ``ValueError``.
        """
        seconds = self.options.shutdown_timeout if timeout is None else check_timeout(timeout, "timeout")
        if self._dispatcher is None:
            return True
        self._settle_sessions()
        return self._dispatcher.close(seconds)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Client dsn={str(self.dsn) if self.dsn else None!r} active={self.is_active()}>"


def _is_error(event: Event) -> bool:
    """Whether ``event`` counts as an error of a session: it holds an exception, or its level is error or fatal."""
    return bool(event.get("exception")) or event.get("level") in ("error", "fatal")


def _is_crash(event: Event) -> bool:
    """Whether ``event`` is an unhandled exception (a mechanism says ``handled: false``)."""
    exception = event.get("exception")
    values = exception.get("values") if isinstance(exception, dict) else None
    if not isinstance(values, list):
        return False
    for value in values:
        mechanism = value.get("mechanism") if isinstance(value, dict) else None
        if isinstance(mechanism, dict) and mechanism.get("handled") is False:
            return True
    return False


def _same_trace(event: Event, trace_id: str) -> bool:
    """Whether ``event`` is still in the trace ``trace_id`` (a processor may have moved it)."""
    trace = (event.get("contexts") or {}).get("trace")
    return isinstance(trace, dict) and trace.get("trace_id") == trace_id


def _callable_name(callback: object) -> str:
    return getattr(callback, "__qualname__", None) or repr(callback)


def _attachment_entries(value: object, label: str) -> list[tuple[str, object]]:
    """The entries of an ``attachments`` value, each with a label naming it in messages.

    A single value that is not a list (an Attachment, bytes, a path) is one entry; an
    iterable without a length (a generator) gives at most ``MAX_ATTACHMENT_ENTRIES``.
    """
    if value is None or (type(value) is list and not value):
        return []
    if (
        isinstance(value, (Attachment, str, bytes, bytearray, memoryview, os.PathLike, Mapping))
        or not isinstance(value, Iterable)
        or callable(getattr(value, "read", None))  # a file or an upload: one entry, never its lines
    ):
        return [(label, value)]
    try:
        values = list(value) if isinstance(value, Sized) else list(itertools.islice(value, MAX_ATTACHMENT_ENTRIES))
    except Exception:
        return [(label, value)]
    return [(f"{label}[{index}]", entry) for index, entry in enumerate(values)]


def _entry_quantity(value: object) -> int:
    """Bytes a dropped attachment entry counts for: its size when known, else 1."""
    if isinstance(value, Attachment):
        return value.counted_size()
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, memoryview):
        return value.nbytes
    return 1


def _not_an_attachment(label: str, value: object) -> str:
    kind = type(value).__name__
    if isinstance(value, (bytes, bytearray, memoryview)):
        advice = "wrap it: Attachment(data, filename=...)"
    elif isinstance(value, (str, os.PathLike)):
        advice = "wrap it: Attachment(path=...)"
    elif callable(getattr(value, "read", None)):
        advice = "wrap it: Attachment.from_upload(upload)"
    else:
        advice = "use sentry_feedback.Attachment"
    return f"{label} is {kind}, not an Attachment ({advice})"


def _bad_arguments(hint: object, scope: object) -> str | None:
    """What is wrong with a capture's ``hint`` or ``scope`` argument, or ``None``."""
    if hint is not None and not isinstance(hint, Mapping):
        return f"hint must be a mapping, not {type(hint).__name__}"
    if scope is not None and not isinstance(scope, Scope):
        return f"scope must be a Scope, not {type(scope).__name__}"
    return None
