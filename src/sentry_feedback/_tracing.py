"""Trace propagation: the propagation context, and the ``sentry-trace``, ``baggage`` and ``traceparent`` headers.

Feedback and errors captured while handling one request share the request's trace, so
Sentry shows them together. Incoming headers are read with :func:`continue_trace`;
outgoing calls get :func:`get_traceparent` and :func:`get_baggage`. Malformed incoming
headers never fail: they start a new trace.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import _random
from ._lazy import LazyPattern
from ._log import logger
from ._record import FACTORY, Frozen

__all__ = ["PropagationContext"]

_SENTRY_TRACE = LazyPattern(r"^[ \t]*([0-9a-fA-F]{32})-([0-9a-fA-F]{16})(?:-([01]))?[ \t]*$")
_TRACEPARENT = LazyPattern(r"^[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?[ \t]*$")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
SENTRY_PREFIX = "sentry-"
MAX_BAGGAGE_LENGTH = 8192


_new_trace_id = _random.trace_id
_new_span_id = _random.span_id
_new_sample_rand = _random.sample_rand


class PropagationContext(Frozen):
    """The trace an isolation scope belongs to.

    ``trace_id`` (32 hex) and ``span_id`` (16 hex) identify our position in the trace;
    ``parent_span_id`` and ``parent_sampled`` come from an incoming ``sentry-trace``
    header; ``dynamic_sampling_context`` holds the incoming ``sentry-*`` baggage entries
    (frozen: we pass them on unchanged); ``third_party_baggage`` keeps other vendors'
    baggage entries so they are propagated too. ``trace_id``, ``span_id`` and
    ``sample_rand`` are random unless given. Frozen; equal when all fields are.
    """

    __slots__ = _fields = (
        "trace_id",
        "span_id",
        "parent_span_id",
        "parent_sampled",
        "dynamic_sampling_context",
        "third_party_baggage",
        "sample_rand",
    )

    trace_id: str
    span_id: str
    parent_span_id: str | None
    parent_sampled: bool | None
    dynamic_sampling_context: Mapping[str, str] | None
    third_party_baggage: str
    sample_rand: float

    def __init__(
        self,
        trace_id: str = FACTORY,
        span_id: str = FACTORY,
        parent_span_id: str | None = None,
        parent_sampled: bool | None = None,
        dynamic_sampling_context: Mapping[str, str] | None = None,
        third_party_baggage: str = "",
        sample_rand: float = FACTORY,
    ) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "trace_id", _new_trace_id() if trace_id is FACTORY else trace_id)
        setattr_(self, "span_id", _new_span_id() if span_id is FACTORY else span_id)
        setattr_(self, "parent_span_id", parent_span_id)
        setattr_(self, "parent_sampled", parent_sampled)
        setattr_(self, "dynamic_sampling_context", dynamic_sampling_context)
        setattr_(self, "third_party_baggage", third_party_baggage)
        setattr_(self, "sample_rand", _new_sample_rand() if sample_rand is FACTORY else sample_rand)

    def trace_context(self) -> dict[str, str]:
        """The event's ``contexts.trace`` object."""
        ctx = {"trace_id": self.trace_id, "span_id": self.span_id}
        if self.parent_span_id:
            ctx["parent_span_id"] = self.parent_span_id
        return ctx

    def sentry_trace(self) -> str:
        """The outgoing ``sentry-trace`` header: ``trace_id-span_id[-sampled]`` (no flag: deferred)."""
        value = f"{self.trace_id}-{self.span_id}"
        if self.parent_sampled is not None:
            value += "-1" if self.parent_sampled else "-0"
        return value

    def traceparent(self) -> str:
        """The outgoing W3C ``traceparent`` header."""
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.parent_sampled else '00'}"

    def dsc(self, *, public_key: str | None, release: str | None, environment: str | None) -> dict[str, str]:
        """The dynamic sampling context: the frozen incoming one, or ours as the head of the trace."""
        if self.dynamic_sampling_context is not None:
            frozen = dict(self.dynamic_sampling_context)
            frozen["trace_id"] = self.trace_id
            return frozen
        own = {"trace_id": self.trace_id, "sample_rand": f"{self.sample_rand:.6f}"}
        for key, value in (("public_key", public_key), ("release", release), ("environment", environment)):
            if value:
                own[key] = value
        return own

    def baggage(self, *, public_key: str | None, release: str | None, environment: str | None) -> str:
        """The outgoing ``baggage`` header: our ``sentry-*`` entries, then other vendors' entries."""
        dsc = self.dsc(public_key=public_key, release=release, environment=environment)
        return baggage_header(dsc, self.third_party_baggage)


def baggage_header(dsc: Mapping[str, str], third_party: str = "") -> str:
    """A ``baggage`` header value: the ``sentry-*`` entries of ``dsc``, then ``third_party``'s entries."""
    from urllib.parse import quote

    items = [f"{SENTRY_PREFIX}{key}={quote(str(value), safe='')}" for key, value in dsc.items()]
    if third_party:
        items.append(third_party)
    return ",".join(items)[:MAX_BAGGAGE_LENGTH]


def parse_sentry_trace(value: str | None) -> tuple[str, str, bool | None] | None:
    """``(trace_id, parent_span_id, sampled)`` from a ``sentry-trace`` header, or ``None`` if malformed."""
    if not value:
        return None
    match = _SENTRY_TRACE.match(value)
    if match is None:
        return None
    trace_id, span_id, sampled = match.groups()
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return trace_id.lower(), span_id.lower(), None if sampled is None else sampled == "1"


def parse_traceparent(value: str | None) -> tuple[str, str, bool] | None:
    """``(trace_id, parent_span_id, sampled)`` from a W3C ``traceparent`` header, or ``None`` if malformed."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if match is None:
        return None
    version, trace_id, span_id, flags = match.groups()
    if version == "ff" or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    if version == "00" and len(value.strip()) != 55:
        return None
    return trace_id, span_id, bool(int(flags, 16) & 1)


def parse_baggage(value: str | None) -> tuple[dict[str, str], str]:
    """Split a ``baggage`` header into our ``sentry-*`` entries (prefix removed, decoded) and the rest.

    Entries that do not look like ``key=value`` are dropped; the rest is kept verbatim.
    """
    sentry: dict[str, str] = {}
    others: list[str] = []
    if not value:
        return sentry, ""
    for raw in value[:MAX_BAGGAGE_LENGTH].split(","):
        entry = raw.strip()
        if not entry:
            continue
        key, sep, rest = entry.partition("=")
        key = key.strip()
        if not sep or not key:
            continue
        if key.startswith(SENTRY_PREFIX):
            name = key[len(SENTRY_PREFIX) :]
            if name:  # "sentry-=x" names nothing
                sentry[name] = _unquote(rest.split(";", 1)[0].strip())
        else:
            others.append(entry)
    return sentry, ",".join(others)


def _unquote(text: str) -> str:
    """``urllib.parse.unquote(text)``; ``urllib.parse`` is imported only for text that has escapes."""
    if "%" not in text:
        return text
    from urllib.parse import unquote

    return unquote(text)


def _header(headers: Mapping[str, str], *names: str) -> str | None:
    wanted = {name.lower() for name in names}
    for key, value in headers.items():
        if not isinstance(key, str) or not isinstance(value, str):
            continue
        name = key.lower().replace("_", "-")
        if name.startswith("http-"):  # a WSGI environ: HTTP_SENTRY_TRACE
            name = name[5:]
        if name in wanted:
            return value
    return None


def propagation_context_from_headers(headers: Mapping[str, str]) -> PropagationContext:
    """The propagation context to continue the trace in ``headers``; a new trace if there is none.

    Reads ``sentry-trace`` (preferred) or W3C ``traceparent``, and ``baggage``; header names
    are case-insensitive, and ``SENTRY_TRACE`` / ``SENTRY_BAGGAGE`` (environment variables)
    and a WSGI ``environ`` (``HTTP_SENTRY_TRACE``, ``HTTP_BAGGAGE``) work too. Anything
    that is not a mapping is logged and starts a new trace.
    """
    if not isinstance(headers, Mapping):
        logger.warning("continue_trace: headers must be a mapping, not %s; a new trace starts", type(headers).__name__)
        return PropagationContext()
    parsed: tuple[str, str, bool | None] | None = parse_sentry_trace(_header(headers, "sentry-trace"))
    if parsed is None:
        parsed = parse_traceparent(_header(headers, "traceparent"))
    if parsed is None:
        return PropagationContext()
    trace_id, parent_span_id, sampled = parsed
    sentry_items, third_party = parse_baggage(_header(headers, "baggage", "sentry-baggage"))
    incoming_trace = sentry_items.get("trace_id")
    dsc: dict[str, str] | None = sentry_items or None
    if incoming_trace is not None and incoming_trace.lower() != trace_id:
        dsc = None  # baggage of another trace: not ours to pass on
    return PropagationContext(
        trace_id=trace_id,
        parent_span_id=parent_span_id,
        parent_sampled=sampled,
        dynamic_sampling_context=dsc,
        third_party_baggage=third_party,
        sample_rand=_sample_rand(sentry_items, sampled),
    )


def _sample_rand(sentry_items: Mapping[str, str], sampled: bool | None) -> float:
    """The incoming ``sample_rand``, or one consistent with the incoming decision and rate."""
    try:
        rand = float(sentry_items["sample_rand"])
        if 0.0 <= rand < 1.0:
            return rand
    except (KeyError, ValueError):
        pass
    try:
        rate = float(sentry_items["sample_rate"])
    except (KeyError, ValueError):
        rate = -1.0
    if sampled is not None and 0.0 < rate <= 1.0:
        low, high = (0.0, rate) if sampled else (rate, 1.0)
        return round(low + _random.uniform() * (high - low), 6) % 1.0 if high > low else low
    return _new_sample_rand()
