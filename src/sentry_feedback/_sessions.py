"""Release health: sessions, sent as ``session`` items (one session) and ``sessions`` items (aggregates).

Two ways to count:

* **application mode**: one :class:`Session` per run of a program (or per call of
  :func:`~sentry_feedback.start_session`), kept on the isolation scope; its updates
  (started, errored, ended) are sent as ``session`` items;
* **request mode**: each web request is a session of its own; the web integrations add its
  outcome (``exited``, ``errored``, ``crashed``) to per-minute buckets, sent as one
  ``sessions`` item holding aggregates.

A client's :class:`SessionFlusher` collects both and sends them on the background thread
every :data:`FLUSH_INTERVAL` seconds, and at ``flush()`` and ``close()``. Sessions need a
``release``: without one, nothing is counted.
"""

from __future__ import annotations

import os
import threading
import time
import weakref

from . import _random
from ._log import logger

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from ._envelope import Envelope
    from ._scope import Scope

__all__ = ["Session"]

#: Seconds between two sends of what the flusher collected.
FLUSH_INTERVAL = 60.0
#: The most ``session`` items in one envelope (Relay's limit is 100).
MAX_SESSIONS_PER_ENVELOPE = 100
#: Session statuses: ``ok`` while it runs, then one of the others.
STATUSES = ("ok", "exited", "crashed", "abnormal")


def _iso(seconds: float) -> str:
    """``seconds`` (Unix time) as RFC 3339 UTC with milliseconds."""
    whole = int(seconds)
    millis = min(int((seconds - whole) * 1000), 999)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def _uuid4() -> str:
    """A random (version 4) UUID from the SDK's generator, in its dashed form."""
    value = int(_random.trace_id(), 16)
    value = (value & ~(0xF000 << 64)) | (0x4000 << 64)  # version 4
    value = (value & ~(0xC000 << 48)) | (0x8000 << 48)  # RFC 4122 variant
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def distinct_id(user: Mapping[str, Any] | None) -> str | None:
    """The session's ``did`` for a user: its ``id``, else ``email``, else ``username``."""
    if not user:
        return None
    for key in ("id", "email", "username"):
        value = user.get(key)
        if value is not None and value != "":
            return str(value)[:256]
    return None


class Session:
    """One release-health session (application mode). Made by :func:`~sentry_feedback.start_session`.

    ``sid`` (a UUID), ``did`` (the user's id, email or username), ``started`` and
    ``timestamp`` (Unix seconds), ``status`` (``ok`` while it runs; ``exited``,
    ``crashed`` or ``abnormal`` once ended), ``errors`` (errors captured while it ran),
    ``release``, ``environment``.
    """

    __slots__ = (
        "_perf_start",
        "_sent_init",
        "did",
        "environment",
        "errors",
        "ip_address",
        "release",
        "sid",
        "started",
        "status",
        "timestamp",
        "user_agent",
    )

    def __init__(
        self,
        *,
        release: str | None,
        environment: str | None,
        user: Mapping[str, Any] | None = None,
        user_agent: str | None = None,
    ) -> None:
        self.sid = _uuid4()
        self.did = distinct_id(user)
        self.ip_address = str(user["ip_address"]) if user and user.get("ip_address") else None
        self.user_agent = user_agent
        self.release = release
        self.environment = environment
        self.started = self.timestamp = time.time()
        self._perf_start = time.perf_counter()
        self.status = "ok"
        self.errors = 0
        self._sent_init = False

    @property
    def ended(self) -> bool:
        """Whether the session has ended (its status is no longer ``ok``)."""
        return self.status != "ok"

    @property
    def duration(self) -> float:
        """Seconds from start to the last update."""
        return max(self.timestamp - self.started, 0.0)

    def _touch(self) -> None:
        self.timestamp = self.started + max(time.perf_counter() - self._perf_start, 0.0)

    def identify(self, user: Mapping[str, Any]) -> None:
        """Take the user's id (``did``) and IP address, when the session has none yet."""
        if self.did is None:
            self.did = distinct_id(user)
        if self.ip_address is None and user.get("ip_address"):
            self.ip_address = str(user["ip_address"])

    def user_changed(self, user: Mapping[str, Any]) -> None:
        """The scope's user was set: the running session is that user's (``did``)."""
        if not self.ended:
            self.did = distinct_id(user) or self.did

    def record_error(self, *, crashed: bool = False) -> None:
        """Count an error captured in this session; ``crashed``: an unhandled one, which ends it."""
        if self.ended:
            return
        self.errors += 1
        self._touch()
        if crashed:
            self.status = "crashed"

    def close(self, status: str = "exited") -> None:
        """End the session with ``status`` (``exited``, ``crashed`` or ``abnormal``); a second call does nothing."""
        if self.ended:
            return
        if status not in STATUSES[1:]:
            logger.warning("a session ends as exited, crashed or abnormal, not %r; exited is used", status)
            status = "exited"
        self._touch()
        self.status = status

    def to_json(self) -> dict[str, Any]:
        """The ``session`` item payload of the session's current state."""
        attrs: dict[str, Any] = {"release": self.release}
        if self.environment:
            attrs["environment"] = self.environment
        if self.ip_address:
            attrs["ip_address"] = self.ip_address
        if self.user_agent:
            attrs["user_agent"] = self.user_agent
        payload: dict[str, Any] = {
            "sid": self.sid,
            "init": not self._sent_init,
            "started": _iso(self.started),
            "timestamp": _iso(self.timestamp),
            "status": self.status,
            "errors": self.errors,
            "duration": round(self.duration, 3),
            "attrs": attrs,
        }
        if self.did is not None:
            payload["did"] = self.did
        return payload

    def __repr__(self) -> str:
        return f"<Session sid={self.sid} status={self.status} errors={self.errors}>"


class RequestSession:
    """The session of one web request (request mode): how it ended, added to the aggregates at its end."""

    __slots__ = ("errored", "started", "status")

    def __init__(self) -> None:
        self.started = time.time()
        self.status = "exited"
        self.errored = False

    def user_changed(self, user: Mapping[str, Any]) -> None:
        """Aggregates carry no user: nothing to do."""

    def record_error(self, *, crashed: bool = False) -> None:
        """An error was captured while handling the request; ``crashed``: an unhandled one."""
        self.errored = True
        if crashed:
            self.status = "crashed"

    @property
    def outcome(self) -> str:
        """``exited``, ``errored`` or ``crashed``: the aggregate bucket field this request counts in."""
        if self.status == "crashed":
            return "crashed"
        return "errored" if self.errored else "exited"


class SessionFlusher:
    """Collects a client's session updates and request aggregates; sends them on the background thread.

    ``submit(envelope)`` queues an envelope (the dispatcher's); ``schedule(fn, delay)`` runs
    ``fn`` on the background thread after ``delay`` seconds. Thread-safe; a forked child
    starts empty (what the parent collected is the parent's to send).
    """

    def __init__(
        self,
        *,
        release: str | None,
        environment: str | None,
        submit: Callable[[Envelope], bool],
        schedule: Callable[[Callable[[], None], float], None],
        interval: float | None = None,
    ) -> None:
        self.release = release
        self.environment = environment
        self._submit = submit
        self._schedule = schedule
        self.interval = FLUSH_INTERVAL if interval is None else interval
        self._init_state()
        _flushers.add(self)

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        #: The isolation scope holding the process's session (application mode), ended at close.
        #: A forked child has none: that session is the parent's.
        self.process_scope: Scope | None = None
        self._updates: dict[str, dict[str, Any]] = {}
        self._buckets: dict[int, dict[str, int]] = {}
        self._scheduled = False

    def add_session(self, session: Session, *, now: bool = False) -> None:
        """Send ``session`` as it is now with the next flush (``now``: soon, e.g. it ended).

        Updates of one session waiting together are sent as one: the latest, marked ``init``
        when the first of them was.
        """
        payload = session.to_json()
        session._sent_init = True
        with self._lock:
            earlier = self._updates.get(session.sid)
            if earlier is not None and earlier["init"]:
                payload["init"] = True
            self._updates[session.sid] = payload
        self._arm(0.0 if now else self.interval)

    def add_request(self, request: RequestSession) -> None:
        """Count one finished request in its minute's bucket."""
        minute = int(request.started // 60) * 60
        outcome = request.outcome
        with self._lock:
            bucket = self._buckets.get(minute)
            if bucket is None:
                bucket = self._buckets[minute] = {}
            bucket[outcome] = bucket.get(outcome, 0) + 1
        self._arm(self.interval)

    def pending(self) -> bool:
        """Whether anything waits to be sent."""
        return bool(self._updates or self._buckets)

    def _arm(self, delay: float) -> None:
        with self._lock:
            if self._scheduled and delay > 0:
                return
            self._scheduled = True
        try:
            self._schedule(self._tick, delay)
        except Exception:
            logger.exception("could not schedule sending the sessions")

    def _tick(self) -> None:
        with self._lock:
            self._scheduled = False
        self.flush()

    def take(self) -> list[Envelope]:
        """What was collected, as envelopes (at most 100 ``session`` items each, aggregates in the first)."""
        from ._envelope import Envelope, EnvelopeItem

        with self._lock:
            payloads, self._updates = list(self._updates.values()), {}
            buckets, self._buckets = self._buckets, {}
        envelopes: list[Envelope] = []
        if buckets:
            attrs: dict[str, Any] = {"release": self.release}
            if self.environment:
                attrs["environment"] = self.environment
            aggregates = [{"started": _iso(minute), **counts} for minute, counts in sorted(buckets.items())]
            envelopes.append(
                Envelope({}, [EnvelopeItem.from_json("sessions", {"aggregates": aggregates, "attrs": attrs})])
            )
        for start in range(0, len(payloads), MAX_SESSIONS_PER_ENVELOPE):
            chunk = payloads[start : start + MAX_SESSIONS_PER_ENVELOPE]
            items = [EnvelopeItem.from_json("session", payload) for payload in chunk]
            if envelopes and start == 0 and len(envelopes[0].items) + len(items) <= MAX_SESSIONS_PER_ENVELOPE:
                envelopes[0].items.extend(items)
            else:
                envelopes.append(Envelope({}, items))
        return envelopes

    def flush(self) -> None:
        """Queue what was collected for sending now. Never raises."""
        try:
            for envelope in self.take():
                self._submit(envelope)
        except Exception:
            logger.exception("could not send the sessions")


_flushers: weakref.WeakSet[SessionFlusher] = weakref.WeakSet()


def _reset_in_child() -> None:
    for flusher in list(_flushers):
        flusher._init_state()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_reset_in_child)
