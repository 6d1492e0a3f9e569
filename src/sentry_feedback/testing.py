"""Helpers for testing code that uses sentry_feedback.

``MockTransport`` captures envelopes in memory (and can answer like a server would);
``reset()`` puts the SDK back to its pristine state between tests. With pytest, add
``pytest_plugins = ["sentry_feedback.testing"]`` to your ``conftest.py`` to get the
fixtures ``sentry_receiver`` (a :class:`~sentry_feedback.server.LocalReceiver` on
127.0.0.1), ``sentry_init`` (init bound to that receiver) and ``mock_transport``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from . import _api, _context
from ._client import Client
from ._envelope import Envelope
from ._tracing import PropagationContext
from ._transport import Transport, TransportResponse
from ._types import Event

__all__ = ["MockTransport", "check_session_item", "normalize_with_relay", "reset"]


class MockTransport(Transport):
    """A transport that keeps every envelope in memory instead of sending it.

    ``handler(envelope)`` may return a :class:`TransportResponse` (say a 429 with
    rate-limit headers) or raise :class:`~sentry_feedback.exceptions.TransportError`
    to act like an unreachable server; by default every envelope is accepted.

    >>> transport = MockTransport()
    >>> client = sentry_feedback.init(transport=transport)
    """

    def __init__(self, handler: Callable[[Envelope], TransportResponse | None] | None = None) -> None:
        self.handler = handler
        self.envelopes: list[Envelope] = []
        self._cond = threading.Condition()

    def send(self, envelope: Envelope) -> TransportResponse | None:
        """Record ``envelope`` (serialized and parsed back, exactly as a server would see it)."""
        received = Envelope.parse(envelope.serialize())
        with self._cond:
            self.envelopes.append(received)
            self._cond.notify_all()
        return self.handler(received) if self.handler is not None else None

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until at least ``count`` envelopes arrived; ``True`` if they did within ``timeout``."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.envelopes) >= count, timeout)

    def items(self, item_type: str) -> list[Any]:
        """The JSON payloads of every item of ``item_type`` received so far."""
        with self._cond:
            envelopes = list(self.envelopes)
        return [item.get_json() for env in envelopes for item in env.items if item.type == item_type]

    @property
    def feedback(self) -> list[Event]:
        """Every feedback event received."""
        return self.items("feedback")

    @property
    def events(self) -> list[Event]:
        """Every error or message event received."""
        return self.items("event")

    def discarded(self) -> dict[tuple[str, str], int]:
        """Client report counts received so far, summed by ``(reason, category)``."""
        totals: dict[tuple[str, str], int] = {}
        for report in self.items("client_report"):
            for entry in report.get("discarded_events", ()):
                key = (entry["reason"], entry["category"])
                totals[key] = totals.get(key, 0) + entry["quantity"]
        return totals


def normalize_with_relay(event: Event) -> Event:
    """Run Sentry's own event normalizer (``pip install sentry-relay``) on ``event``.

    Raises ``AssertionError`` listing the problems when Sentry would flag the event
    (anything under ``errors``, or an ``err`` note in ``_meta``); returns the normalized
    event otherwise. ``_meta`` remarks that only say a value was filtered are fine.
    """
    import importlib

    normalizer = importlib.import_module("sentry_relay").StoreNormalizer(is_renormalize=False)
    normalized: Event = normalizer.normalize_event(event)
    problems: dict[str, Any] = {}
    if normalized.get("errors"):
        problems["errors"] = normalized["errors"]
    meta_errors = _meta_errors(normalized.get("_meta") or {}, "")
    if meta_errors:
        problems["_meta"] = meta_errors
    if problems:
        raise AssertionError(f"Sentry would flag this event: {problems}")
    return normalized


_SESSION_STATUSES = frozenset({"ok", "exited", "crashed", "abnormal", "errored"})
_AGGREGATE_COUNTS = ("exited", "errored", "abnormal", "crashed")


def check_session_item(item_type: str, payload: Any) -> None:
    """Check a ``session`` or ``sessions`` item payload against the rules Sentry's ingestion applies.

    The ``sentry-relay`` package normalizes events only, so the session protocol's rules are
    written out here: ``sid`` a UUID, RFC 3339 times (``timestamp`` not before ``started``),
    a known ``status``, counts that are integers >= 0, and ``attrs.release`` a release that
    ``sentry_relay.parse_release`` accepts. Raises ``AssertionError`` naming each problem.
    """
    import importlib
    import uuid

    relay = importlib.import_module("sentry_relay")
    problems: list[str] = []

    def check_time(name: str, value: object) -> float | None:
        from datetime import datetime

        if not isinstance(value, str):
            problems.append(f"{name} must be an RFC 3339 string, not {value!r}")
            return None
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            problems.append(f"{name} is not RFC 3339: {value!r}")
            return None
        if parsed.tzinfo is None:
            problems.append(f"{name} has no time zone: {value!r}")
            return None
        return parsed.timestamp()

    def check_count(name: str, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            problems.append(f"{name} must be an integer >= 0, not {value!r}")

    if not isinstance(payload, dict):
        raise AssertionError(f"a {item_type} payload must be an object, not {type(payload).__name__}")
    attrs = payload.get("attrs")
    release = attrs.get("release") if isinstance(attrs, dict) else None
    if not isinstance(release, str) or not release:
        problems.append("attrs.release is required")
    else:
        try:
            relay.parse_release(release)
        except Exception as exc:
            problems.append(f"attrs.release {release!r} is refused: {exc}")
    if item_type == "session":
        try:
            uuid.UUID(str(payload.get("sid")))
        except ValueError:
            problems.append(f"sid must be a UUID, not {payload.get('sid')!r}")
        started = check_time("started", payload.get("started"))
        if "timestamp" in payload:
            stamp = check_time("timestamp", payload["timestamp"])
            if started is not None and stamp is not None and stamp < started:
                problems.append("timestamp is before started")
        if payload.get("status") not in _SESSION_STATUSES:
            problems.append(f"status must be one of {sorted(_SESSION_STATUSES)}, not {payload.get('status')!r}")
        check_count("errors", payload.get("errors", 0))
        duration = payload.get("duration", 0.0)
        if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not duration >= 0:
            problems.append(f"duration must be a number >= 0, not {duration!r}")
        if not isinstance(payload.get("init", False), bool):
            problems.append("init must be a boolean")
        if "did" in payload and not isinstance(payload["did"], str):
            problems.append("did must be a string")
    elif item_type == "sessions":
        aggregates = payload.get("aggregates")
        if not isinstance(aggregates, list) or not aggregates:
            problems.append("aggregates must be a non-empty list")
        else:
            for index, aggregate in enumerate(aggregates):
                if not isinstance(aggregate, dict):
                    problems.append(f"aggregates[{index}] must be an object")
                    continue
                check_time(f"aggregates[{index}].started", aggregate.get("started"))
                for name in _AGGREGATE_COUNTS:
                    if name in aggregate:
                        check_count(f"aggregates[{index}].{name}", aggregate[name])
    else:
        problems.append(f"not a session item type: {item_type!r}")
    if problems:
        raise AssertionError(f"Sentry would refuse this {item_type} item: {problems}")


def _meta_errors(meta: Any, path: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if isinstance(meta, dict):
        for key, value in meta.items():
            if key == "" and isinstance(value, dict) and value.get("err"):
                found[path or "."] = value["err"]
            else:
                found.update(_meta_errors(value, f"{path}.{key}" if path else str(key)))
    return found


def reset() -> None:
    """Close the active client and clear the global and root scopes (for test isolation)."""
    from . import _web

    _web.restore_outer_scopes()  # a request's scopes kept for the error handler after an exception escaped
    client = _context.get_client()
    client.close(timeout=0)
    _context.set_client(None)
    for scope in (_context.get_global_scope(), _context._root_isolation, _context._root_current):
        scope.clear()
    _context._root_isolation.set_propagation_context(PropagationContext())
    _api._configure_debug(False)


try:
    import pytest
except ImportError:  # pragma: no cover - pytest is optional
    pass
else:
    from .server import LocalReceiver

    @pytest.fixture
    def sentry_receiver() -> Iterator[LocalReceiver]:
        """A local receiver on a free port of 127.0.0.1 with an in-memory database."""
        with LocalReceiver() as receiver:
            yield receiver

    @pytest.fixture
    def sentry_init(sentry_receiver: LocalReceiver) -> Iterator[Callable[..., Client]]:
        """``sentry_init(**options)``: init bound to ``sentry_receiver``; the SDK is reset afterwards."""
        reset()

        def init(**options: Any) -> Client:
            options.setdefault("dsn", sentry_receiver.dsn)
            return _api.init(**options)

        yield init
        reset()

    @pytest.fixture
    def mock_transport() -> Iterator[MockTransport]:
        """A :class:`MockTransport`, with the SDK initialized on it and reset afterwards."""
        reset()
        transport = MockTransport()
        _api.init(transport=transport)
        yield transport
        reset()
