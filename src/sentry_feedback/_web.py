"""One isolation scope per web request, the request data on its events, and its unhandled errors.

The WSGI and ASGI middlewares (and framework integrations) open a :class:`RequestScope`
for each request, websocket connection or ASGI lifespan. It forks the enclosing isolation
and current scopes (so ``set_user`` in one request never shows in another), continues the
incoming trace, and adds an event processor that puts the request data and the
transaction name on every error, message and feedback captured in it.

An exception that escapes the application is captured once (:meth:`RequestScope.capture`,
mechanism ``handled: false``) and marked, so the dedupe integration and other middlewares
skip it. Then the request's scopes stay active in the caller's context (the server's
thread or task, until the next request starts there), so an outer error handler of the
same request reads that error's id with ``last_event_id()`` and renders a feedback form in
the same trace.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar

from . import _context
from ._context import get_client, get_current_scope, get_isolation_scope, use_isolation_scope, use_scope

# ``FrameworkIntegration`` lives in ``_framework`` (the integrations' base, loaded at init without this module).
from ._framework import DEFAULT_MAX_BODY_SIZE, check_options
from ._framework import FrameworkIntegration as FrameworkIntegration
from ._log import logger
from ._request_data import MAX_TRANSACTION, TRANSACTION_SOURCES, transaction_from_path
from ._sessions import RequestSession
from ._spans import _active_span, start_inactive_span
from ._tracing import PropagationContext, propagation_context_from_headers
from .integrations.dedupe import _MARK
from .integrations.logging import mark_reported

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Generic, TypeVar

    from ._request_data import BodyRecorder, RequestData, TransactionSource
    from ._scope import Scope
    from ._spans import Span
    from ._types import Event, Hint
else:
    from ._shims import Generic, TypeVar

__all__ = ["set_transaction_name"]

_SOURCES = TRANSACTION_SOURCES

#: The request whose scope is active (set inside :meth:`RequestScope.active`).
_active: ContextVar[RequestScope | None] = ContextVar("sentry_feedback.web_request", default=None)


App = TypeVar("App")


class WebMiddleware(Generic[App]):
    """What the WSGI and ASGI middlewares share: the wrapped application and the options.

    ``use_x_forwarded_for=True`` takes the client's IP from the first ``X-Forwarded-For``
    entry (only behind a proxy that sets it: clients can send anything);
    ``max_request_body_size`` bounds the request body kept for events (bytes; ``0``:
    never). A wrong option raises ``TypeError`` or ``ValueError``.
    """

    def __init__(
        self, app: App, *, use_x_forwarded_for: bool = False, max_request_body_size: int = DEFAULT_MAX_BODY_SIZE
    ) -> None:
        if not callable(app):
            raise TypeError(f"app must be a WSGI or ASGI application, not {type(app).__name__}")
        check_options(use_x_forwarded_for, max_request_body_size)
        #: The wrapped application.
        self.app = app
        #: Whether the client's IP comes from ``X-Forwarded-For``.
        self.use_x_forwarded_for = use_x_forwarded_for
        #: The largest request body kept for events, in bytes.
        self.max_request_body_size = max_request_body_size

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.app!r})"


class _Kept:
    """Scopes left active after an exception escaped a request, and the ones they replaced."""

    __slots__ = ("current", "isolation", "outer_current", "outer_isolation")

    def __init__(self, isolation: Scope, current: Scope, outer_isolation: Scope | None, outer_current: Scope | None):
        self.isolation = isolation
        self.current = current
        self.outer_isolation = outer_isolation
        self.outer_current = outer_current


#: Scopes left active in this context, newest first (a few: a request may fail in an error handler's scope).
_kept: ContextVar[tuple[_Kept, ...]] = ContextVar("sentry_feedback.web_kept_scopes", default=())
MAX_KEPT = 8

if TYPE_CHECKING:
    RouteLookup = Callable[[], "str | None"]


class RequestScope:
    """The isolation scope of one request, websocket connection or lifespan, and what it adds to events.

    ``data`` is the request data (``None`` for a lifespan); ``mechanism_type`` names the
    middleware in the mechanism of unhandled errors; ``body`` records the request body as
    the application reads it; ``route`` returns the framework's route for the transaction
    name, when it knows one; ``op`` is the operation of its transaction (``http.server``,
    ``websocket.server``). Making one first puts back the scopes a previous request in
    this context left for its error handler (:func:`restore_outer_scopes`).
    """

    __slots__ = (
        "_ended",
        "_name",
        "_route",
        "_span",
        "_status",
        "body",
        "current",
        "data",
        "isolation",
        "mechanism_type",
        "op",
        "session",
    )

    def __init__(
        self,
        data: RequestData | None,
        *,
        mechanism_type: str,
        body: BodyRecorder | None = None,
        route: RouteLookup | None = None,
        op: str = "http.server",
    ) -> None:
        restore_outer_scopes()
        self.op = op
        self.data = data
        self.mechanism_type = mechanism_type
        self.body = body
        self._route = route
        self._name: tuple[str, str] | None = None
        trace = propagation_context_from_headers(data.trace_headers) if data is not None else PropagationContext()
        self.isolation = isolation = get_isolation_scope().fork()
        self.current = get_current_scope().fork()
        isolation.set_propagation_context(trace)
        # A request starts without the breadcrumbs and the last event of the code around it.
        isolation.clear_breadcrumbs()
        isolation._last_event_id = None
        isolation.add_event_processor(self._process)
        self._span: Span | None = None
        self._status: int | None = None
        self._ended = False
        # Request mode release health: this request is a session of its own, counted at its end.
        self.session: RequestSession | None = None
        if data is not None and _counts_requests():
            self.session = isolation._session = RequestSession()

    @contextlib.contextmanager
    def active(self) -> Iterator[RequestScope]:
        """Make the request's scopes active for the ``with`` block (again, for a streamed response).

        The first time, the request's span starts (its transaction, when tracing is on); it is
        the active span inside the block.
        """
        with use_isolation_scope(self.isolation), use_scope(self.current):
            token = _active.set(self)
            span = self._span
            if span is None and self.data is not None and not self._ended:
                span = self._span = self._start_span()
            span_token = _active_span.set(span) if span is not None else None
            try:
                yield self
            finally:
                if span_token is not None:
                    with contextlib.suppress(ValueError):
                        _active_span.reset(span_token)
                _active.reset(token)

    def _start_span(self) -> Span | None:
        """The request's root span (a transaction named like its events), or ``None`` if it cannot start."""
        try:
            name, source = self.transaction() or ("<unknown>", "url")
            span = start_inactive_span(name, op=self.op, parent_span=None)
            data = self.data
            if data is not None:
                if data.method:
                    span.set_attribute("http.request.method", data.method)
                span.set_attribute("url.path", data.path)
            segment = span._segment
            if segment is not None:
                segment.source = source
            span.origin = f"auto.http.{self.mechanism_type}"
            return span
        except Exception:
            logger.exception("could not start the span of a request")
            return None

    def set_response_status(self, status: int | str) -> None:
        """The HTTP status the application answered with (``200`` or WSGI's ``"200 OK"``). Never raises."""
        try:
            code = int(status.split(None, 1)[0]) if isinstance(status, str) else int(status)
        except (ValueError, IndexError, TypeError):
            return
        if 100 <= code <= 999:
            self._status = code

    @contextlib.contextmanager
    def handling(self, capture_errors: Callable[[], bool] | None = None) -> Iterator[RequestScope]:
        """Run the ``with`` block in the request's scope, as :meth:`active` does; for an exception leaving it:

        capture it (:meth:`capture`; not when ``capture_errors()`` says no), settle the
        request (:meth:`finish`), keep its scopes for the error handler
        (:meth:`keep_for_error_handler`), and let the exception go on unchanged.
        """
        try:
            with self.active():
                try:
                    yield self
                except BaseException as exc:
                    if capture_errors is None or capture_errors():
                        self.capture(exc)
                    span = self._span
                    if span is not None and span.status is None and isinstance(exc, Exception):
                        span.status = "internal_error"
                    raise
        except BaseException:
            self.finish()
            self.keep_for_error_handler()
            raise

    # -- unhandled errors ------------------------------------------------------------------------

    def capture(self, error: BaseException) -> str | None:
        """Capture ``error`` as unhandled by this middleware (see :func:`capture_unhandled`)."""
        return capture_unhandled(error, self.mechanism_type)

    def keep_for_error_handler(self) -> None:
        """Leave the request's scopes active in the caller's context after an exception escaped.

        The code that handles the exception outside the middleware (an error page, the
        server's logging) belongs to the same request. The next request started in the
        same context puts the enclosing scopes back first (:func:`restore_outer_scopes`).
        """
        try:
            kept = _Kept(self.isolation, self.current, _context._isolation_var.get(), _context._current_var.get())
            _context._isolation_var.set(self.isolation)
            _context._current_var.set(self.current)
            _kept.set((kept, *_kept.get())[:MAX_KEPT])
        except Exception:
            logger.exception("could not keep the request's scope for the error handler")

    # -- transaction name --------------------------------------------------------------------------

    def set_transaction_name(self, name: str, source: TransactionSource = "custom") -> None:
        """Name the request's transaction (it wins over the route and the URL)."""
        self._name = (name[:MAX_TRANSACTION], source)

    def transaction(self) -> tuple[str, str] | None:
        """``(name, source)``: the name set, else the framework's route, else the URL path."""
        if self._name is not None:
            return self._name
        if self._route is not None:
            try:
                route = self._route()
            except Exception:
                logger.debug("could not read the route", exc_info=True)
                route = None
            if isinstance(route, str) and route:
                return route[:MAX_TRANSACTION], "route"
        if self.data is not None:
            return transaction_from_path(self.data.path), "url"
        return None

    def finish(self) -> None:
        """The request is over: settle the transaction name, drop the framework's objects, end its span
        (sending its transaction) and count its session. Never raises; a second call does nothing more."""
        if self._route is not None:
            try:
                found = self.transaction()
                if found is not None and found[1] == "route":
                    self._name = found
            except Exception:
                logger.exception("could not settle the transaction name")
            finally:
                self._route = None
        if self._ended:
            return
        self._ended = True
        try:
            self._end_span()
        except Exception:
            logger.exception("could not end the span of a request")
        session = self.session
        if session is not None:
            if self.isolation._session is session:
                self.isolation._session = None
            try:
                get_client().add_request_session(session)
            except Exception:
                logger.exception("could not count the session of a request")

    def _end_span(self) -> None:
        span = self._span
        if span is None:
            return
        found = self.transaction()
        segment = span._segment
        if found is not None and segment is not None and (self._name is not None or segment.source != "custom"):
            span.name, segment.source = found
        if self._status is not None:
            previous = span.status
            span.set_http_status(self._status)
            if previous == "internal_error":
                span.status = previous
        span.end()

    # -- the event processor -------------------------------------------------------------------------

    def _process(self, event: Event, hint: Hint) -> Event:
        handling = _active.get()
        if handling is not None and handling is not self:
            return event  # a scope forked from this request's: the request being handled describes the event
        try:
            self._apply(event)
        except Exception:
            logger.exception("could not add the request data to event %s", event.get("event_id"))
        return event

    def _apply(self, event: Event) -> None:
        data = self.data
        if data is not None:
            own = event.get("request")
            body = self.body.body() if self.body is not None else None
            request = data.to_event(body)
            if isinstance(own, dict):
                request.update(own)  # the event's own values win
            event["request"] = request
            if data.client_ip:
                user = event.get("user")
                user = dict(user) if isinstance(user, dict) else {}
                user.setdefault("ip_address", data.client_ip)
                event["user"] = user
        if not event.get("transaction"):
            found = self.transaction()
            if found is not None:
                event["transaction"], source = found
                event["transaction_info"] = {"source": source}


def _counts_requests() -> bool:
    """Whether requests are counted as sessions: ``auto_session_tracking`` in request mode, with a release."""
    client = get_client()
    options = client.options
    return (
        options.auto_session_tracking
        and options.session_mode == "request"
        and options.release is not None
        and client.is_active()
    )


def capture_unhandled(error: BaseException, mechanism_type: str) -> str | None:
    """Capture ``error`` with mechanism ``{"type": mechanism_type, "handled": false}``; never raises.

    Does nothing for an exception captured before (by the dedupe integration or by another
    middleware or framework integration: they mark it) and for one that is no error:
    ``KeyboardInterrupt``, ``SystemExit`` and ``GeneratorExit`` are the program's control
    flow. Marks ``error``, so that nothing reports it again. Returns the event's id.
    """
    if not isinstance(error, Exception):
        return None
    mark_reported(error)  # the server's or framework's log record of it is no second event
    if getattr(error, _MARK, False):
        return None
    try:
        event_id = get_client().capture_exception(error, handled=False, mechanism_type=mechanism_type)
    except Exception:  # a KeyboardInterrupt from a hook goes through, as it does for capture_exception
        logger.exception("could not capture an unhandled exception")
        event_id = None
    with contextlib.suppress(AttributeError, TypeError):  # exceptions with __slots__ cannot be marked
        setattr(error, _MARK, True)
    return event_id


def restore_outer_scopes() -> None:
    """Undo :meth:`RequestScope.keep_for_error_handler` in this context where it is still in effect.

    Scopes kept in a ``with`` block that has ended since (its own scopes are active again)
    are remembered until that block's scopes are left too.
    """
    remaining = list(_kept.get())
    if not remaining:
        return
    found = True
    while found:  # a scope put back may itself be one kept by an earlier request
        found = False
        isolation, current = _context._isolation_var.get(), _context._current_var.get()
        for kept in remaining:
            if kept.isolation is isolation and kept.current is current:
                _context._isolation_var.set(kept.outer_isolation)
                _context._current_var.set(kept.outer_current)
                remaining.remove(kept)
                found = True
                break
    _kept.set(tuple(remaining))


def active_request() -> RequestScope | None:
    """The request whose scope is active here, if any (a middleware's own, not one kept after an error)."""
    request = _active.get()
    return request if request is not None and request.isolation is get_isolation_scope() else None


def set_transaction_name(name: str, *, source: TransactionSource = "custom") -> None:
    """Name the transaction of the request being handled (``transaction`` on its events).

    By default the middleware uses the framework's route where it knows one (Flask's
    ``url_rule``, Starlette's and FastAPI's ``route``; source ``route``), else the URL
    path (source ``url``). ``source`` is one of ``custom``, ``url``, ``route``, ``view``,
    ``component`` and ``task``. Outside a request, or with a bad argument, nothing
    happens (logged on the ``sentry_feedback`` logger).
    """
    request = _active.get()
    if request is None:
        logger.debug("set_transaction_name(%r) outside a request; ignored", name)
    elif not isinstance(name, str) or not name:
        logger.warning("set_transaction_name: name must be a non-empty string, not %r; ignored", name)
    elif source not in _SOURCES:
        logger.warning("set_transaction_name: source must be one of %s, not %r; ignored", sorted(_SOURCES), source)
    else:
        request.set_transaction_name(name, source)


def status_line(status: int) -> str:
    """``"429 Too Many Requests"``: ``status`` as WSGI's ``start_response`` takes it (``"Unknown"`` as phrase
    for a code that has none)."""
    from http import HTTPStatus  # imports enum: only for the first answer the SDK writes itself

    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    return f"{status} {phrase}"
