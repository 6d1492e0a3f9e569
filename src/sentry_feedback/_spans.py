"""Spans and transactions: timed operations of a trace, sent as ``transaction`` events.

A span is started by :func:`start_span` (active inside its ``with`` block or decorated
function), :func:`start_span_manual` (active inside, ended by the caller) or
:func:`start_inactive_span` (never active by itself). Active spans nest through a
``ContextVar``, so each thread and each asyncio task has its own. A span without a parent
(or started with ``force_transaction=True``) is the root of a *segment*: when it ends,
it is sent as a ``transaction`` event holding the spans of the segment that ended before
it. Sampling is decided once per segment, at its root, and inherited by its spans.

Costs on the caller's thread are kept small: a span is a slotted object with ids from the
SDK's generator; a finished segment becomes an event dict, serialized on the background
thread like every event.
"""

from __future__ import annotations

import contextlib
import time
from contextvars import ContextVar

from . import _random
from ._context import get_client, get_current_scope, get_isolation_scope
from ._log import logger
from ._serialize import safe_repr

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from contextvars import Token
    from types import TracebackType
    from typing import Any, TypeVar

    from ._client import Client
    from ._scope import Scope
    from ._tracing import PropagationContext

    F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "Span",
    "get_active_span",
    "get_root_span",
    "set_http_status",
    "span_to_json",
    "start_inactive_span",
    "start_span",
    "start_span_manual",
    "suppress_tracing",
    "update_span_name",
    "with_active_span",
]

#: The span statuses Sentry knows (``contexts.trace.status`` and ``spans[].status``).
SPAN_STATUSES = frozenset(
    {
        "ok",
        "cancelled",
        "unknown",
        "invalid_argument",
        "deadline_exceeded",
        "not_found",
        "already_exists",
        "permission_denied",
        "resource_exhausted",
        "failed_precondition",
        "aborted",
        "out_of_range",
        "unimplemented",
        "internal_error",
        "unavailable",
        "data_loss",
        "unauthenticated",
    }
)
#: Where a span comes from (``origin``): spans started through this API are ``manual``.
MANUAL = "manual"
MAX_NAME = 2048
#: The attribute an AI span gets from :func:`~sentry_feedback.set_conversation_id`.
GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"

_active_span: ContextVar[Span | None] = ContextVar("sentry_feedback.active_span", default=None)
_suppressed: ContextVar[bool] = ContextVar("sentry_feedback.suppress_tracing", default=False)


class _Unset:
    """The default of ``parent_span``: the active span (``None`` means *no parent*)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<active span>"


UNSET: Any = _Unset()


class Segment:
    """What a root span collects for its transaction: the finished spans, the sampling decision, the scopes.

    ``sampled`` is the decision; ``sample_rate`` the rate it was taken with (``None`` when
    inherited from an incoming trace without one); ``dsc`` the dynamic sampling context,
    kept (frozen) once it has been passed on, or as it came from upstream.
    """

    __slots__ = (
        "client",
        "created",
        "current",
        "dropped",
        "dsc",
        "ended",
        "isolation",
        "max_spans",
        "propagation",
        "root",
        "sample_rand",
        "sample_rate",
        "sampled",
        "source",
        "spans",
    )

    def __init__(
        self,
        client: Client,
        sampled: bool,
        sample_rate: float | None,
        sample_rand: float,
        propagation: PropagationContext | None,
        isolation: Scope,
        current: Scope,
    ) -> None:
        self.client = client
        self.sampled = sampled
        self.sample_rate = sample_rate
        self.sample_rand = sample_rand
        self.propagation = propagation
        self.isolation = isolation
        self.current = current
        self.spans: list[Span] = []
        self.max_spans = client.options.max_spans
        self.dropped = 0  # spans past max_spans
        self.created = 0  # child spans started (an unsampled segment keeps only this count)
        self.ended = False
        self.source = "custom"
        self.root: Span | None = None  # set by the root span
        incoming = propagation.dynamic_sampling_context if propagation is not None else None
        self.dsc: dict[str, str] | None = None
        if incoming is not None and propagation is not None:
            self.dsc = {**incoming, "trace_id": propagation.trace_id}

    def dynamic_sampling_context(self) -> dict[str, str]:
        """The trace's dynamic sampling context as of now: the frozen one, else ours as the head of the trace."""
        if self.dsc is not None:
            return self.dsc
        options = self.client.options
        root = self.root
        dsc = {"trace_id": root.trace_id if root is not None else ""}
        dsn = options.dsn
        if dsn is not None:
            dsc["public_key"] = dsn.public_key
        if options.release:
            dsc["release"] = options.release
        if options.environment:
            dsc["environment"] = options.environment
        if root is not None and root.name and self.source != "url":
            dsc["transaction"] = root.name
        if self.sample_rate is not None:
            dsc["sample_rate"] = repr(self.sample_rate)
        dsc["sampled"] = "true" if self.sampled else "false"
        dsc["sample_rand"] = f"{self.sample_rand:.6f}"
        return dsc

    def frozen_dsc(self) -> dict[str, str]:
        """:meth:`dynamic_sampling_context`, kept from now on: it leaves the SDK (an outgoing call's
        ``baggage``, an envelope's ``trace`` header), and every event of the trace must carry the same."""
        dsc = self.dsc = self.dynamic_sampling_context()
        return dsc


class Span:
    """One timed operation of a trace. Made by :func:`start_span` and its siblings, never directly.

    ``name`` (the description; a root span's is the transaction name), ``op`` (the kind of
    operation, e.g. ``http.server``, ``db.query``), ``attributes`` (``data`` on the wire),
    ``status`` (``ok``, ``internal_error``, ... or ``None``: not set), ``start_timestamp``
    and ``timestamp`` (Unix seconds; ``timestamp`` is ``None`` until :meth:`end`).
    A span that is not recording (not sampled, tracing disabled or suppressed) takes
    every call and sends nothing; it still carries trace and span ids for propagation.
    """

    __slots__ = (
        "_attributes",
        "_perf_start",
        "_root",
        "_segment",
        "name",
        "op",
        "origin",
        "parent_span_id",
        "sampled",
        "span_id",
        "start_timestamp",
        "status",
        "timestamp",
        "trace_id",
    )

    def __init__(
        self,
        name: str,
        op: str | None,
        trace_id: str,
        parent_span_id: str | None,
        sampled: bool | None,
        segment: Segment | None,
        root: Span | None,
        start_time: float | None,
    ) -> None:
        self.name = name
        self.op = op
        self.trace_id = trace_id
        self.span_id = _random.span_id()
        self.parent_span_id = parent_span_id
        self.sampled = sampled
        self._segment = segment
        if root is None:
            root = self
            if segment is not None:
                segment.root = self
        self._root = root
        self._attributes: dict[str, Any] | None = None
        self.status: str | None = None
        self.origin = MANUAL
        self.timestamp: float | None = None
        self._perf_start = time.perf_counter()
        self.start_timestamp = time.time() if start_time is None else start_time

    # -- reading ----------------------------------------------------------------------------------

    @property
    def attributes(self) -> dict[str, Any]:
        """A copy of the attributes set so far."""
        return dict(self._attributes) if self._attributes else {}

    @property
    def is_root(self) -> bool:
        """Whether this span is the root of its segment (sent as the transaction itself)."""
        return self._root is self

    @property
    def duration(self) -> float | None:
        """Seconds from start to end; ``None`` while the span runs."""
        return None if self.timestamp is None else max(self.timestamp - self.start_timestamp, 0.0)

    def is_recording(self) -> bool:
        """Whether this span will be sent (it is sampled and has not ended)."""
        segment = self._segment
        return segment is not None and segment.sampled and self.timestamp is None and not segment.ended

    def span_context(self) -> dict[str, Any]:
        """``{"trace_id", "span_id", "sampled"}``: what identifies this span in the trace."""
        return {"trace_id": self.trace_id, "span_id": self.span_id, "sampled": self.sampled}

    def to_sentry_trace(self) -> str:
        """The ``sentry-trace`` header continuing the trace from this span (no flag: no decision)."""
        if self.sampled is None:
            return f"{self.trace_id}-{self.span_id}"
        return f"{self.trace_id}-{self.span_id}-{'1' if self.sampled else '0'}"

    def to_traceparent(self) -> str:
        """The W3C ``traceparent`` header continuing the trace from this span."""
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"

    def trace_context(self) -> dict[str, Any]:
        """The ``contexts.trace`` of an event captured while this span is active."""
        ctx: dict[str, Any] = {"trace_id": self.trace_id, "span_id": self.span_id}
        if self.parent_span_id:
            ctx["parent_span_id"] = self.parent_span_id
        if self.op:
            ctx["op"] = self.op
        if self.status:
            ctx["status"] = self.status
        return ctx

    def to_json(self) -> dict[str, Any]:
        """The span as Sentry's span JSON (``spans[]`` of a transaction)."""
        out: dict[str, Any] = {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "start_timestamp": self.start_timestamp,
            "origin": self.origin,
        }
        if self.parent_span_id:
            out["parent_span_id"] = self.parent_span_id
        if self.name:
            out["description"] = self.name
        if self.op:
            out["op"] = self.op
        if self.timestamp is not None:
            out["timestamp"] = self.timestamp
        if self.status:
            out["status"] = self.status
        if self._attributes:
            out["data"] = dict(self._attributes)
        return out

    # -- changing ---------------------------------------------------------------------------------

    def set_attribute(self, key: str, value: object) -> None:
        """Set one attribute (``data.<key>``); ``None`` removes it. Never raises."""
        if not isinstance(key, str):
            logger.warning("set_attribute: key must be a string, not %s; ignored", type(key).__name__)
            return
        attributes = self._attributes
        if value is None:
            if attributes:
                attributes.pop(key, None)
            return
        if attributes is None:
            attributes = self._attributes = {}
        attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, object]) -> None:
        """Set several attributes at once (``None`` values remove theirs)."""
        try:
            entries = list(attributes.items())
        except Exception:
            logger.warning("set_attributes: attributes must be a mapping, not %s; ignored", type(attributes).__name__)
            return
        for key, value in entries:
            self.set_attribute(key, value)

    def set_status(self, status: str) -> None:
        """Set the status: one of Sentry's span statuses (``ok``, ``internal_error``, ``not_found``, ...)."""
        if status not in SPAN_STATUSES:
            logger.warning("set_status: %r is not a span status (one of %s); ignored", status, sorted(SPAN_STATUSES))
            return
        self.status = status

    def set_http_status(self, http_status: int) -> None:
        """Set the status from an HTTP status code, and the ``http.response.status_code`` attribute."""
        if isinstance(http_status, bool) or not isinstance(http_status, int):
            logger.warning("set_http_status: the code must be an int, not %s; ignored", type(http_status).__name__)
            return
        self.set_attribute("http.response.status_code", http_status)
        self.status = http_status_to_span_status(http_status)

    def update_name(self, name: str) -> None:
        """Rename the span (a root span: its transaction, with source ``custom``)."""
        if not isinstance(name, str) or not name:
            logger.warning("update_name: name must be a non-empty string, not %r; ignored", name)
            return
        self.name = name[:MAX_NAME]
        segment = self._segment
        if segment is not None and self._root is self:
            segment.source = "custom"

    def end(self, end_time: float | None = None) -> None:
        """End the span (now, or at ``end_time`` in Unix seconds). A second call does nothing.

        Ending a root span sends its transaction (when sampled) on the background thread.
        Never raises.
        """
        if self.timestamp is not None:
            return
        if end_time is None:
            self.timestamp = self.start_timestamp + max(time.perf_counter() - self._perf_start, 0.0)
        elif isinstance(end_time, (int, float)) and not isinstance(end_time, bool) and end_time == end_time:
            self.timestamp = max(float(end_time), self.start_timestamp)
        else:
            logger.warning("end: end_time must be a number of seconds, not %r; now is used", end_time)
            self.timestamp = self.start_timestamp + max(time.perf_counter() - self._perf_start, 0.0)
        segment = self._segment
        if segment is None:
            return
        if self._root is not self:
            if not segment.sampled:
                return
            if segment.ended:
                logger.debug("span %s ended after its transaction was sent; it is not sent", self.span_id)
            elif len(segment.spans) < segment.max_spans:
                segment.spans.append(self)
            else:
                segment.dropped += 1
            return
        segment.ended = True
        try:
            segment.client.capture_segment(self, segment)
        except Exception:
            logger.exception("could not send transaction %r", self.name)

    # -- context manager --------------------------------------------------------------------------

    def __enter__(self) -> Span:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None and self.status is None:
            self.status = "internal_error"
        self.end()

    def __repr__(self) -> str:
        return f"<Span name={self.name!r} op={self.op!r} trace_id={self.trace_id} span_id={self.span_id}>"


def http_status_to_span_status(code: int) -> str:
    """The span status Sentry uses for an HTTP status code (``unknown_error`` ranges map to ``unknown``)."""
    if 100 <= code < 400:
        return "ok"
    if 400 <= code < 500:
        return _HTTP_4XX.get(code, "invalid_argument")
    if 500 <= code < 600:
        return _HTTP_5XX.get(code, "internal_error")
    return "unknown"


_HTTP_4XX = {
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    409: "already_exists",
    413: "failed_precondition",
    429: "resource_exhausted",
    499: "cancelled",
}
_HTTP_5XX = {501: "unimplemented", 503: "unavailable", 504: "deadline_exceeded"}


# -- starting spans ---------------------------------------------------------------------------------


def _start(
    name: object,
    op: object,
    attributes: object,
    start_time: object,
    parent_span: object,
    only_if_parent: bool,
    force_transaction: bool,
) -> Span:
    """A new span, never raising: bad arguments are logged and replaced."""
    if not isinstance(name, str):
        logger.warning("start_span: name must be a string, not %s", type(name).__name__)
        name = safe_repr(name)
    name = name[:MAX_NAME]
    if op is not None and not isinstance(op, str):
        logger.warning("start_span: op must be a string or None, not %s; ignored", type(op).__name__)
        op = None
    if start_time is not None and (
        isinstance(start_time, bool) or not isinstance(start_time, (int, float)) or start_time != start_time
    ):
        logger.warning("start_span: start_time must be a number of seconds, not %r; now is used", start_time)
        start_time = None
    parent: Span | None
    if parent_span is UNSET:
        parent = _active_span.get()
    elif parent_span is None or isinstance(parent_span, Span):
        parent = parent_span
    else:
        logger.warning(
            "start_span: parent_span must be a Span or None, not %s; the active span is used",
            type(parent_span).__name__,
        )
        parent = _active_span.get()
    start = None if start_time is None else float(start_time)
    span = _new_span(name, op, parent, start, only_if_parent, force_transaction)
    if attributes is not None:
        span.set_attributes(attributes)  # type: ignore[arg-type]
    if (
        (op is not None and op.startswith("gen_ai."))
        or name.startswith("ai.")
        or (span._attributes and "ai.operationId" in span._attributes)
    ):
        _add_conversation_id(span)
    return span


def _add_conversation_id(span: Span) -> None:
    """Give an AI span the conversation id of the current or isolation scope (``set_conversation_id``)."""
    conversation = get_current_scope()._conversation_id or get_isolation_scope()._conversation_id
    if conversation and not (span._attributes and GEN_AI_CONVERSATION_ID in span._attributes):
        span.set_attribute(GEN_AI_CONVERSATION_ID, conversation)


def _new_span(
    name: str, op: str | None, parent: Span | None, start_time: float | None, only_if_parent: bool, force: bool
) -> Span:
    if parent is not None and not force:
        if _suppressed.get() or parent.sampled is None:
            # Suppressed, or tracing is off: the span defers to the scope's trace and sends nothing.
            return Span(name, op, parent.trace_id, parent.span_id, None, None, parent._root, start_time)
        segment = parent._segment
        if segment is not None and not segment.ended:
            segment.created += 1
        return Span(name, op, parent.trace_id, parent.span_id, parent.sampled, segment, parent._root, start_time)
    current, isolation = get_current_scope(), get_isolation_scope()
    propagation = current.propagation_context or isolation.propagation_context
    if only_if_parent and parent is None:
        return _deferring(name, op, propagation, start_time)
    client = get_client()
    options = client.options
    if (
        _suppressed.get()
        or not client.is_active()
        or (options.traces_sample_rate is None and options.traces_sampler is None)
    ):
        return _deferring(name, op, propagation, start_time)
    parent_segment = parent._segment if parent is not None else None
    if parent is not None:  # force_transaction: a segment of its own, in the parent's trace
        trace_id = parent.trace_id
        parent_span_id: str | None = parent.span_id
        parent_sampled: bool | None = parent.sampled
        sample_rand = parent_segment.sample_rand if parent_segment is not None else _random.sample_rand()
        parent_rate = parent_segment.sample_rate if parent_segment is not None else None
    elif propagation is not None:
        trace_id, parent_span_id = propagation.trace_id, propagation.parent_span_id
        parent_sampled, sample_rand = propagation.parent_sampled, propagation.sample_rand
        parent_rate = _incoming_rate(propagation)
    else:
        trace_id, parent_span_id, parent_sampled = _random.trace_id(), None, None
        sample_rand, parent_rate = _random.sample_rand(), None
    sampled, rate = _decide(client, name, op, parent_sampled, parent_rate, sample_rand)
    if parent_segment is not None:
        propagation = parent_segment.propagation
    segment = Segment(client, sampled, rate, sample_rand, propagation, isolation, current)
    if parent_segment is not None:
        segment.dsc = parent_segment.frozen_dsc()
    return Span(name, op, trace_id, parent_span_id, sampled, segment, None, start_time)


def _deferring(name: str, op: str | None, propagation: PropagationContext | None, start_time: float | None) -> Span:
    """A span that sends nothing and leaves the trace to the scope's propagation context."""
    if propagation is None:
        return Span(name, op, _random.trace_id(), None, None, None, None, start_time)
    return Span(name, op, propagation.trace_id, propagation.span_id, None, None, None, start_time)


def _incoming_rate(propagation: PropagationContext) -> float | None:
    dsc = propagation.dynamic_sampling_context
    if not dsc:
        return None
    try:
        rate = float(dsc["sample_rate"])
    except (KeyError, ValueError):
        return None
    return rate if 0.0 <= rate <= 1.0 else None


def _decide(
    client: Client, name: str, op: str | None, parent_sampled: bool | None, parent_rate: float | None, rand: float
) -> tuple[bool, float | None]:
    """The sampling decision of a new segment and the rate it was taken with."""
    options = client.options
    sampler = options.traces_sampler
    if sampler is not None:

        def inherit_or_sample_with(fallback: float) -> float:
            if parent_rate is not None:
                return parent_rate
            if parent_sampled is not None:
                return 1.0 if parent_sampled else 0.0
            return fallback

        context = {
            "name": name,
            "op": op,
            "parent_sampled": parent_sampled,
            "parent_sample_rate": parent_rate,
            "sample_rand": rand,
            "inherit_or_sample_with": inherit_or_sample_with,
            "transaction_context": {"name": name, "op": op, "parent_sampled": parent_sampled},
        }
        try:
            value = sampler(context)
        except Exception:
            logger.exception("traces_sampler raised; the transaction %r is not sampled", name)
            return False, 0.0
        if isinstance(value, bool):
            rate = 1.0 if value else 0.0
        elif isinstance(value, (int, float)) and 0.0 <= value <= 1.0:
            rate = float(value)
        else:
            logger.warning("traces_sampler returned %r, not a rate between 0 and 1; not sampled", value)
            return False, 0.0
    elif parent_sampled is not None:
        return parent_sampled, parent_rate
    else:
        rate = options.traces_sample_rate if options.traces_sample_rate is not None else 0.0
    return rand < rate, rate


class _SpanBlock:
    """What :func:`start_span` returns: a context manager, and a decorator for functions and coroutines."""

    __slots__ = ("_args", "_end", "_span", "_token")

    def __init__(self, args: tuple[Any, ...], end: bool) -> None:
        self._args = args
        self._end = end
        self._span: Span | None = None
        self._token: Token[Span | None] | None = None

    def __enter__(self) -> Span:
        span = self._span = _start(*self._args)
        self._token = _active_span.set(span)
        return span

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        span, token = self._span, self._token
        if token is not None:
            try:
                _active_span.reset(token)
            except ValueError:  # left in another context (a generator resumed elsewhere)
                previous = token.old_value
                _active_span.set(None if previous is token.MISSING else previous)
        if span is None:
            return
        if exc is not None and span.status is None:
            span.status = "internal_error"
        if self._end:
            span.end()

    def __call__(self, func: F) -> F:
        import functools
        import inspect

        args, end = self._args, self._end
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*a: Any, **k: Any) -> Any:
                with _SpanBlock(args, end):
                    return await func(*a, **k)

            return run_async  # type: ignore[return-value]

        @functools.wraps(func)
        def run(*a: Any, **k: Any) -> Any:
            with _SpanBlock(args, end):
                return func(*a, **k)

        return run  # type: ignore[return-value]


def start_span(
    name: str,
    *,
    op: str | None = None,
    attributes: Mapping[str, object] | None = None,
    start_time: float | None = None,
    parent_span: Span | None = UNSET,
    only_if_parent: bool = False,
    force_transaction: bool = False,
) -> _SpanBlock:
    """Start a span that is active inside the ``with`` block (or the decorated function) and ends with it.

    >>> with start_span("checkout", op="function") as span:
    ...     span.set_attribute("items", 3)

    The new span is a child of the active span, or of ``parent_span`` when given
    (``None``: a root span, i.e. a new transaction). ``only_if_parent=True`` makes a
    non-recording span when there is no parent; ``force_transaction=True`` sends the span
    as a transaction of its own (still in its parent's trace). An exception leaving the
    block sets the status ``internal_error`` (unless one was set) and goes on unchanged.
    As a decorator, each call of the function (or coroutine) is a span.
    """
    return _SpanBlock((name, op, attributes, start_time, parent_span, only_if_parent, force_transaction), True)


def start_span_manual(
    name: str,
    *,
    op: str | None = None,
    attributes: Mapping[str, object] | None = None,
    start_time: float | None = None,
    parent_span: Span | None = UNSET,
    only_if_parent: bool = False,
    force_transaction: bool = False,
) -> _SpanBlock:
    """Like :func:`start_span`, but the span does not end with the block: call ``span.end()`` yourself.

    It is the active span (the parent of spans started inside) only while the block runs.
    """
    return _SpanBlock((name, op, attributes, start_time, parent_span, only_if_parent, force_transaction), False)


def start_inactive_span(
    name: str,
    *,
    op: str | None = None,
    attributes: Mapping[str, object] | None = None,
    start_time: float | None = None,
    parent_span: Span | None = UNSET,
    only_if_parent: bool = False,
    force_transaction: bool = False,
) -> Span:
    """Start a span that is never active by itself (spans started later are not its children); end it yourself.

    Also a context manager: ``with start_inactive_span("upload") as span:`` ends it at the end of the block.
    """
    return _start(name, op, attributes, start_time, parent_span, only_if_parent, force_transaction)


def get_active_span() -> Span | None:
    """The span active in this thread or task, if any."""
    return _active_span.get()


def get_root_span(span: Span) -> Span:
    """The root span of ``span``'s segment (the span sent as its transaction); ``span`` itself for a root."""
    return span._root


def with_active_span(span: Span | None) -> _ActiveSpan:
    """Make ``span`` the active span for the ``with`` block (``None``: no active span); yields the current scope.

    The block runs in a fork of the current scope, like :func:`with_scope`.
    """
    if span is not None and not isinstance(span, Span):
        logger.warning("with_active_span: span must be a Span or None, not %s; no span is active", type(span).__name__)
        span = None
    return _ActiveSpan(span)


class _ActiveSpan:
    __slots__ = ("_scope_block", "_span", "_token")

    def __init__(self, span: Span | None) -> None:
        self._span = span
        self._token: Token[Span | None] | None = None
        self._scope_block: Any = None

    def __enter__(self) -> Scope:
        from ._context import with_scope

        self._scope_block = with_scope()
        scope: Scope = self._scope_block.__enter__()
        self._token = _active_span.set(self._span)
        return scope

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._token is not None:
            with contextlib.suppress(ValueError):
                _active_span.reset(self._token)
        self._scope_block.__exit__(exc_type, exc, tb)


def span_to_json(span: Span) -> dict[str, Any]:
    """``span`` as Sentry's span JSON: ``trace_id``, ``span_id``, ``parent_span_id``, ``description``, ``op``, ...."""
    return span.to_json()


def update_span_name(span: Span, name: str) -> None:
    """Rename ``span`` (:meth:`Span.update_name`); a root span's transaction takes the name, source ``custom``."""
    if not isinstance(span, Span):
        logger.warning("update_span_name: span must be a Span, not %s; ignored", type(span).__name__)
        return
    span.update_name(name)


def set_http_status(span: Span, http_status: int) -> None:
    """Set ``span``'s status from an HTTP status code (:meth:`Span.set_http_status`)."""
    if not isinstance(span, Span):
        logger.warning("set_http_status: span must be a Span, not %s; ignored", type(span).__name__)
        return
    span.set_http_status(http_status)


class _Suppressed:
    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = _suppressed.set(True)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            _suppressed.reset(self._token)
        except ValueError:
            _suppressed.set(False)


def suppress_tracing() -> _Suppressed:
    """No span started inside the ``with`` block is sent (errors and feedback still are)."""
    return _Suppressed()


def tracing_suppressed() -> bool:
    """Whether :func:`suppress_tracing` is in effect here."""
    return _suppressed.get()


def active_trace_source() -> Span | None:
    """The active span when it carries the trace (a span made with tracing off defers to the scope's trace)."""
    span = _active_span.get()
    return span if span is not None and span.sampled is not None else None


def iter_segment_spans(segment: Segment) -> Iterator[Span]:
    """The finished spans of ``segment`` (a copy, safe while other threads still end spans)."""
    return iter(list(segment.spans))
