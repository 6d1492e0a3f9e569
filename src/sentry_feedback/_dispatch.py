"""Delivery: the queue between the caller and the transport, rate limits, outcomes and client reports.

Everything here runs on the background thread except :meth:`Dispatcher.submit`, which
only appends to a bounded queue. Every item that does not reach the server with a 2xx
answer is counted once in the client's :class:`ClientReportRecorder` (except for 429
answers, which the server counts itself).
"""

from __future__ import annotations

import threading
import time

from ._cache import CachedEnvelope, EnvelopeCache
from ._client_reports import ClientReportRecorder, DiscardReason
from ._envelope import Envelope, EnvelopeItem, PayloadReadError
from ._log import logger
from ._ratelimit import RateLimiter
from ._spotlight import SpotlightSender
from ._transport import OK, Transport, TransportResponse
from ._worker import BackgroundWorker, clamp_timeout
from .exceptions import (
    AttachmentReadError,
    FeedbackDroppedError,
    FeedbackError,
    NetworkError,
    RateLimitedError,
    ServerError,
    TransportError,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, ClassVar, TypeVar

    from ._options import Options

    _T = TypeVar("_T")

__all__ = ["DeliveryTicket", "Dispatcher", "record_dropped_items"]


#: Item types that carry an event; their attachments are dropped with them.
EVENT_ITEM_TYPES = frozenset({"event", "feedback", "transaction"})
CLIENT_REPORT_INTERVAL = 30.0
#: With ``cache_dir``: in-memory attachment bytes written to disk on the caller's thread at
#: capture, at most. Larger and file attachments are written by the background thread.
EARLY_WRITE_BUDGET = 64 * 1024
#: Pause between two envelopes sent from the offline cache while new envelopes are queued
#: (without them, the drain sends back to back while the server accepts).
DRAIN_INTERVAL = 0.1
#: How often a flush waiting for the offline cache looks again, at most.
_CACHE_POLL = 0.05


class DeliveryTicket:
    """The outcome of one envelope, for callers that wait for it (``send_feedback``)."""

    __slots__ = ("_done", "error")

    def __init__(self) -> None:
        self._done = threading.Event()
        self.error: FeedbackError | None = None

    def resolve(self, error: FeedbackError | None = None) -> None:
        """Record the outcome (``None`` means delivered) and wake the waiter. The first outcome wins."""
        if not self._done.is_set():
            self.error = error
            self._done.set()

    def wait(self, timeout: float | None) -> bool:
        """Wait for the outcome; ``True`` when there is one."""
        return self._done.wait(None if timeout is None else clamp_timeout(timeout))


class _Unwatched(DeliveryTicket):
    """The ticket of an envelope nobody waits for: outcomes go nowhere (no event to set per envelope)."""

    __slots__ = ()

    def __init__(self) -> None:
        self.error = None

    def resolve(self, error: FeedbackError | None = None) -> None:
        """Nothing to record: nobody waits."""

    def wait(self, timeout: float | None) -> bool:
        """Never called: nobody waits."""
        return True


_UNWATCHED = _Unwatched()


class _Task:
    __slots__ = (
        "attempt",
        "cached",
        "cached_complete",
        "call",
        "envelope",
        "journal_data",
        "journal_key",
        "kind",
        "ticket",
    )

    def __init__(
        self,
        envelope: Envelope | None,
        ticket: DeliveryTicket | None = None,
        attempt: int = 1,
        cached: CachedEnvelope | None = None,
        kind: str = "send",
        cached_complete: bool = True,
        journal_key: str | None = None,
        journal_data: bytes | None = None,
        call: Callable[[], None] | None = None,
    ) -> None:
        # None: a control task (see kind)
        self.envelope = envelope
        self.ticket = ticket
        self.attempt = attempt
        self.cached = cached
        # "send"; "reports": send pending client reports now; "drain": the offline cache;
        # "final_reports": a retired dispatcher's last report, once its queue is done.
        self.kind = kind
        # False: what capture wrote (``cached`` or the journal's put) lacks some attachments.
        self.cached_complete = cached_complete
        # Written at capture to the journal under this key (see :meth:`Dispatcher._persist_early`),
        # with these bytes; the worker writes the cache file.
        self.journal_key = journal_key
        self.journal_data = journal_data
        # kind "call": run this on the background thread.
        self.call = call


class _Early:
    """What capture wrote to the offline cache: a journal put, else a cache file, else nothing."""

    __slots__ = ("cached", "complete", "data", "key")

    def __init__(
        self,
        key: str | None = None,
        data: bytes | None = None,
        cached: CachedEnvelope | None = None,
        complete: bool = True,
    ) -> None:
        self.key = key
        self.data = data
        self.cached = cached
        self.complete = complete


_NOTHING_EARLY = _Early()


class _Sent:
    """How a send ended (three constants, compared with ``is``)."""

    __slots__ = ("name",)
    DELIVERED: ClassVar[_Sent]
    FINAL: ClassVar[_Sent]  # an answer that ends it: dropped and counted (or counted by the server)
    NETWORK: ClassVar[_Sent]  # not reached: may be tried again

    def __init__(self, name: str) -> None:
        self.name = name


_Sent.DELIVERED, _Sent.FINAL, _Sent.NETWORK = (
    _Sent("delivered"),
    _Sent("final"),
    _Sent("network"),
)


def _label(envelope: Envelope) -> str:
    """How log lines name ``envelope``: its event id, else its item types (a session envelope has no id)."""
    return envelope.event_id or "({})".format(", ".join(dict.fromkeys(item.type for item in envelope.items)) or "empty")


def record_dropped_items(recorder: ClientReportRecorder, reason: str, items: list[EnvelopeItem]) -> None:
    """Count each item (attachments by bytes) as dropped for ``reason``; client reports are not counted.

    A transaction counts its spans too (``span``: its spans plus one).
    """
    for item in items:
        kind = item.type
        if kind != "client_report":
            recorder.record(reason, item.data_category, item.quantity())
            if kind == "transaction":
                recorder.record(reason, "span", item.span_quantity())


def rfc3339_now() -> str:
    """The current UTC time as RFC 3339 with milliseconds, for ``sent_at``."""
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Dispatcher:
    """Owns the queue, the worker thread and the rate limiter for one client and transport."""

    def __init__(
        self,
        transport: Transport,
        options: Options,
        recorder: ClientReportRecorder,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.transport = transport
        self.recorder = recorder
        self.limiter = limiter or RateLimiter()
        self._send_reports = options.send_client_reports
        self._max_attachment_size = options.max_attachment_size
        self._last_report = time.monotonic()
        self._retry = options.retry
        self._cache: EnvelopeCache | None = None
        if options.cache_dir is not None:
            try:
                self._cache = EnvelopeCache(options.cache_dir, options.max_cache_items, recorder)
            except OSError as exc:
                logger.error(
                    "cannot use cache_dir %r (%s); envelopes are kept in memory only",
                    options.cache_dir,
                    exc,
                )
        self._spotlight = SpotlightSender.from_option(options.spotlight)
        self._drain_failures = 0
        #: Notified after every step of the drain; guards ``_drain_scheduled``.
        self._drain_progress = threading.Condition(threading.Lock())
        self._drain_scheduled = False
        self._draining = False
        #: Whether the last delivery got an answer (``None``: none tried yet).
        self._server_answers: bool | None = None
        self._finished = False
        self._transport_closed = False
        self._worker: BackgroundWorker[_Task] = BackgroundWorker(
            self._handle,
            max_size=options.transport_queue_size,
            on_idle=self._send_reports_alone if self._send_reports else None,
            idle_interval=CLIENT_REPORT_INTERVAL,
            on_lost=self._lost,
            on_exit=self._close_transport,
        )

    # -- caller side ------------------------------------------------------------------------------

    def submit(self, envelope: Envelope, ticket: DeliveryTicket | None = None) -> bool:
        """Queue ``envelope`` for sending. When the queue is full, count its items and return ``False``.

        With an offline cache, the envelope is written to disk here, before the call returns,
        with its in-memory attachments up to :data:`EARLY_WRITE_BUDGET` bytes in all: one
        append to this process's journal (no fsync: it survives the process being killed),
        else a cache file of its own. The background thread then writes the envelope's cache
        file durably, with every attachment. Until it has, what capture wrote also holds a
        client report that counts the attachments left out, so that a crash in between loses
        nothing silently.
        """
        early = self._persist_early(envelope) if self._cache is not None else _NOTHING_EARLY
        task = _Task(
            envelope,
            ticket,
            cached=early.cached,
            cached_complete=early.complete,
            journal_key=early.key,
            journal_data=early.data,
        )
        if self._worker.submit(task):
            return True
        self._forget_early(task)
        reason = DiscardReason.QUEUE_OVERFLOW
        record_dropped_items(self.recorder, reason, envelope.items)
        logger.warning("transport queue is full; dropped envelope %s", _label(envelope))
        if ticket is not None:
            ticket.resolve(
                FeedbackDroppedError(
                    "the transport queue is full",
                    reason=reason,
                    event_id=envelope.event_id,
                )
            )
        return False

    def _forget_early(self, task: _Task) -> None:
        """What capture wrote for ``task`` is not needed: it was dropped (and counted)."""
        if self._cache is None:
            return
        if task.cached is not None:
            self._cache.remove(task.cached)
        if task.journal_key is not None:
            try:
                self._cache.journal_done(task.journal_key)
            except OSError:
                logger.warning(
                    "could not update the journal for envelope %s",
                    _label(task.envelope) if task.envelope is not None else None,
                    exc_info=True,
                )

    def flush(self, timeout: float) -> bool:
        """Send what is queued, then pending client reports; ``True`` if all was handled in time.

        Envelopes waiting for a retry count as queued. With ``cache_dir``, what the offline
        cache holds (from earlier runs, or left by failed deliveries) is waited for too, within
        ``timeout``, while the drain delivers: a failed delivery or a rate limit ends the wait
        (``False``).
        """
        deadline = time.monotonic() + clamp_timeout(timeout)
        if self._send_reports and self.recorder.has_pending():
            self._worker.submit(_Task(None, kind="reports"))
        flushed = self._worker.flush(timeout)
        return self._wait_for_cache(deadline) and flushed

    def call_later(self, fn: Callable[[], None], delay: float) -> None:
        """Run ``fn`` on the background thread in ``delay`` seconds (it does not hold up :meth:`flush`)."""
        self._worker.submit_later(_Task(None, kind="call", call=fn), delay, background=True)

    def start_drain(self) -> None:
        """Send what earlier runs left in the offline cache, in the background."""
        if self._cache is not None:
            self._schedule_drain(0.0)

    def _schedule_drain(self, delay: float) -> None:
        with self._drain_progress:
            self._drain_scheduled = True
        self._worker.submit_later(_Task(None, kind="drain"), delay, background=True)

    def _wait_for_cache(self, deadline: float) -> bool:
        """Wait while the drain delivers what the offline cache holds; ``False`` only if ``deadline`` came first.

        No wait while the server cannot be reached or rate-limits: the files stay on disk
        (handled, not lost) for the drain, which backs off. Not on the worker's own thread,
        where the drain cannot run while this waits.
        """
        cache = self._cache
        if cache is None or self._worker.closed or self._worker.on_its_thread():
            return True
        while True:
            with self._drain_progress:
                # A step in progress holds its file claimed: not free, not done either.
                if not (self._draining or cache.free_count()):
                    return True
                backing_off = self._server_answers is False or self._drain_failures or self._rate_limit_pause() > 0
                if backing_off and not self._draining:  # (a step in progress: its outcome decides)
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                # One step at a time: a step in progress schedules its successor itself (after a
                # failure, with the back-off, which a step queued here would skip).
                if not (self._drain_scheduled or self._draining):
                    self._drain_scheduled = True
                    self._worker.submit_later(_Task(None, kind="drain"), 0.0, background=True)
                self._drain_progress.wait(min(remaining, _CACHE_POLL))

    def retire(self) -> None:
        """Refuse new envelopes but keep sending what is queued (a newer client took over).

        Once the queue is done, what was counted meanwhile is sent in a last client report.
        """
        self._worker.shutdown(0.0)
        if self._send_reports:
            self._worker.submit_later(_Task(None, kind="final_reports"), 0.0, background=True)

    def close(self, timeout: float) -> bool:
        """Flush within ``timeout`` and stop; what is left is kept on disk (``cache_dir``) or counted.

        Idempotent: a second call returns ``True`` at once.
        """
        if self._finished:
            return True
        deadline = time.monotonic() + clamp_timeout(timeout)
        self._worker.flush(timeout)
        self._wait_for_cache(deadline)
        timeout = max(deadline - time.monotonic(), 0.0)
        self._finished = True
        if self._send_reports and (self.recorder.has_pending() or self._worker.pending()):
            # After what is queued, so that it holds what sending that costs; submit_later
            # (which runs first) only on a retired worker, which refuses submit().
            report = _Task(None, kind="reports")
            if not self._worker.submit(report):
                self._worker.submit_later(report, 0.0)
        flushed = self._worker.shutdown(timeout)
        for task in self._worker.take_pending():
            self._abandon(task)
        if self._cache is not None and self._send_reports and self.recorder.has_pending():
            self._cache_reports()
        if self._cache is not None and flushed:  # (a worker still sending may still mark puts done)
            self._cache.close()
        if flushed:
            self._close_transport()
        return flushed

    def _close_transport(self) -> None:
        """Close the transport once: at :meth:`close`, or when the worker ends after it."""
        if self._transport_closed:
            return
        self._transport_closed = True
        try:
            self.transport.close()
        except Exception:
            logger.exception("the transport failed to close")

    def _lost(self, task: _Task) -> None:
        """The worker thread died while handling ``task``: count what it carried."""
        envelope = task.envelope
        if task.kind != "send" or envelope is None:
            return
        record_dropped_items(self.recorder, DiscardReason.INTERNAL_SDK_ERROR, envelope.items)
        if task.ticket is not None:
            task.ticket.resolve(
                FeedbackDroppedError(
                    "the background thread failed",
                    reason=DiscardReason.INTERNAL_SDK_ERROR,
                    event_id=envelope.event_id,
                )
            )

    def _abandon(self, task: _Task) -> None:
        """Account for a task still waiting at shutdown: to disk with a cache, else counted as lost."""
        envelope = task.envelope
        if task.kind != "send" or envelope is None:
            return
        if self._cache is not None:
            try:
                early = task.cached
                cached = early
                if task.journal_key is not None:
                    cached, _ = self._store_journaled(
                        task,
                        Envelope(envelope.headers, self._materialize(envelope.items)),
                    )
                elif early is None or not task.cached_complete:
                    data = Envelope(envelope.headers, self._materialize(envelope.items))
                    cached, _ = self._readable(
                        data,
                        lambda env: self._cache_store(env) if early is None else self._cache_rewrite(early, env),
                    )
                # Written at capture (claimed by us: free it), or released before its retry was
                # scheduled (then this does nothing): the next start sends it.
                assert cached is not None
                self._cache.release(cached)
                return
            except Exception:
                logger.warning(
                    "could not keep envelope %s in the cache",
                    _label(envelope),
                    exc_info=True,
                )
        logger.warning("envelope %s was not sent before shutdown", _label(envelope))
        record_dropped_items(self.recorder, DiscardReason.NETWORK_ERROR, envelope.items)
        if task.ticket is not None:
            task.ticket.resolve(NetworkError("not sent before shutdown", event_id=envelope.event_id))

    def _cache_reports(self) -> None:
        """Keep the counts that could not be sent for the next start."""
        if self._cache is None:
            return
        self._cache.make_room()  # first: an eviction is itself a count that must go in this report
        report = self.recorder.take()
        if report is None:
            return
        try:
            data = Envelope({}, [EnvelopeItem.from_json("client_report", report)])
            self._cache.release(self._cache.store(data, make_room=False))
        except OSError:
            self.recorder.restore(report)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._worker.closed

    # -- worker side -----------------------------------------------------------------------------

    def _handle(self, task: _Task) -> None:
        if task.kind == "call":
            if task.call is not None:
                task.call()
            return
        if task.kind == "reports":
            self._send_reports_alone(force=True)
            return
        if task.kind == "drain":
            self._drain()
            return
        if task.kind == "final_reports":
            if self._worker.pending():  # the retired queue is not done yet
                self._worker.submit_later(task, 0.2, background=True)
            else:
                self._send_reports_alone(force=True)
            return
        assert task.envelope is not None
        ticket = task.ticket or _UNWATCHED
        try:
            if task.attempt == 1:
                self._deliver(task.envelope, ticket, task)
            else:
                self._retry_send(task, ticket)
        except BaseException as exc:  # SystemExit from user code (a __repr__, a transport) included
            logger.exception("internal error while sending envelope %s", _label(task.envelope))
            record_dropped_items(self.recorder, DiscardReason.INTERNAL_SDK_ERROR, task.envelope.items)
            ticket.resolve(
                FeedbackDroppedError(
                    f"internal SDK error: {exc}",
                    reason=DiscardReason.INTERNAL_SDK_ERROR,
                    event_id=task.envelope.event_id,
                )
            )

    def _deliver(self, envelope: Envelope, ticket: DeliveryTicket, task: _Task) -> None:
        event_id = envelope.event_id
        early = task.cached
        items = self._drop_rate_limited(envelope.items)
        limited_category = next(
            (i.data_category for i in envelope.items if i.type in EVENT_ITEM_TYPES and i not in items),
            None,
        )
        items = self._materialize(items)
        if limited_category is not None:
            retry = self.limiter.retry_after(limited_category)
            ticket.resolve(
                RateLimitedError(
                    f"{limited_category} is rate limited for {retry:.0f} more seconds",
                    retry_after=retry,
                    category=limited_category,
                    event_id=event_id,
                )
            )
        if not items:
            self._forget_early(task)
            ticket.resolve(FeedbackDroppedError("nothing left to send", reason="empty", event_id=event_id))
            return

        outgoing = Envelope(envelope.headers, items)
        cached: CachedEnvelope | None
        if task.journal_key is not None:
            cached, outgoing = self._store_journaled(task, outgoing, unchanged=len(items) == len(envelope.items))
        elif early is not None and self._cache is not None:
            if task.cached_complete and len(items) == len(envelope.items):
                self._cache.sync(early)
                cached = early
            else:
                # What goes out differs from what capture wrote: swap the file in one rename,
                # so that a crash leaves one or the other, never neither nor both.
                cached, outgoing = self._rewrite(early, outgoing)
        else:
            cached, outgoing = self._persist(outgoing)
        self._send(outgoing, ticket, 1, cached)
        if self._spotlight is not None:
            self._spotlight.send(outgoing)

    def _persist_early(self, envelope: Envelope) -> _Early:
        """On the caller's thread: write ``envelope`` to disk, within :data:`EARLY_WRITE_BUDGET`.

        A journal put (one ``write``), else a cache file; nothing when both fail (the
        background thread writes the cache file then). ``complete``: it holds every item.
        """
        budget = min(EARLY_WRITE_BUDGET, self._max_attachment_size)
        items: list[EnvelopeItem] = []
        left_out = 0
        for item in envelope.items:
            attachment = item.attachment
            if attachment is not None:
                size = attachment.size() if attachment.path is None else -1
                if size < 0 or size > budget:
                    left_out += item.quantity()
                    continue
                budget -= size
            items.append(item)
        if left_out:
            lost = {
                "timestamp": time.time(),
                "discarded_events": [
                    {
                        "reason": DiscardReason.INTERNAL_SDK_ERROR,
                        "category": "attachment",
                        "quantity": left_out,
                    }
                ],
            }
            items.append(EnvelopeItem.from_json("client_report", lost))
        cache = self._cache
        assert cache is not None
        try:
            data = Envelope(envelope.headers, items).serialize()
        except Exception:
            logger.debug(
                "could not serialize envelope %s early",
                _label(envelope),
                exc_info=True,
            )
            return _NOTHING_EARLY
        try:
            return _Early(key=cache.journal_put(data), data=data, complete=not left_out)
        except Exception:
            logger.debug(
                "could not journal envelope %s; writing its file",
                _label(envelope),
                exc_info=True,
            )
        try:
            return _Early(
                cached=cache.store(data, make_room=False, sync=False),
                complete=not left_out,
            )
        except Exception:
            logger.debug(
                "could not write envelope %s to the cache early",
                _label(envelope),
                exc_info=True,
            )
            return _NOTHING_EARLY

    def _store_journaled(
        self, task: _Task, envelope: Envelope, *, unchanged: bool = True
    ) -> tuple[CachedEnvelope | None, Envelope]:
        """Write the cache file of an envelope capture journaled, durably, then mark the put done.

        The journal's bytes when they hold all of ``envelope``; else ``envelope`` itself.
        Returns the file (``None`` when it could not be written: sent without it) and the
        envelope written.
        """
        cache = self._cache
        key = task.journal_key
        assert cache is not None and key is not None
        cached: CachedEnvelope | None = None
        try:
            if unchanged and task.cached_complete and task.journal_data is not None:
                cached = cache.store(task.journal_data, key=key)
            else:
                cached, envelope = self._readable(envelope, lambda env: cache.store(env, key=key))
        except OSError as exc:
            logger.warning(
                "could not write envelope %s to the cache (%s); sending anyway",
                _label(envelope),
                exc,
            )
        try:
            cache.journal_done(key)
        except OSError:
            logger.warning(
                "could not update the journal for envelope %s",
                _label(envelope),
                exc_info=True,
            )
        return cached, envelope

    def _rewrite(self, early: CachedEnvelope, envelope: Envelope) -> tuple[CachedEnvelope, Envelope]:
        """Replace the file written at capture by what is sent now (see :meth:`_persist_early`)."""
        assert self._cache is not None
        try:
            return self._readable(envelope, lambda env: self._cache_rewrite(early, env))
        except OSError as exc:
            logger.warning("could not update envelope %s in the cache (%s)", _label(envelope), exc)
            return early, envelope

    def _persist(self, envelope: Envelope) -> tuple[CachedEnvelope | None, Envelope]:
        """Write ``envelope`` to the offline cache (claimed by us) before sending it."""
        if self._cache is None:
            return None, envelope
        try:
            return self._readable(envelope, self._cache_store)
        except OSError as exc:
            logger.warning(
                "could not write envelope %s to the cache (%s); sending anyway",
                _label(envelope),
                exc,
            )
            return None, envelope

    def _cache_store(self, envelope: Envelope) -> CachedEnvelope:
        assert self._cache is not None
        return self._cache.store(envelope)

    def _cache_rewrite(self, cached: CachedEnvelope, envelope: Envelope) -> CachedEnvelope:
        assert self._cache is not None
        return self._cache.rewrite(cached, envelope)

    def _readable(self, envelope: Envelope, write: Callable[[Envelope], _T]) -> tuple[_T, Envelope]:
        """``write(envelope)``; a file that cannot be read meanwhile is counted, left out, and it runs again.

        Returns what ``write`` returned and the envelope it wrote.
        """
        while True:
            try:
                return write(envelope), envelope
            except PayloadReadError as exc:
                envelope = self._without_unreadable(envelope, exc)

    def _without_unreadable(self, envelope: Envelope, exc: PayloadReadError) -> Envelope:
        """``envelope`` without the item whose file could not be read while it was written (counted)."""
        error = exc.error
        self._drop_attachment(exc.item, error.reason, str(error), error.quantity)
        return Envelope(envelope.headers, [item for item in envelope.items if item is not exc.item])

    def _retry_send(self, task: _Task, ticket: DeliveryTicket) -> None:
        envelope = task.envelope
        assert envelope is not None
        cached = task.cached
        if cached is not None:
            cached = self._cache.claim(cached.free_path) if self._cache is not None else None
            if cached is None:
                # Another process claimed it from the cache and is sending it.
                ticket.resolve(None)
                return
        self._send(envelope, ticket, task.attempt, cached)

    def _drop_rate_limited(self, items: list[EnvelopeItem]) -> list[EnvelopeItem]:
        limiter = self.limiter
        if not limiter.is_any_limited():
            return list(items)
        dropped = [item for item in items if limiter.is_limited(item.data_category)]
        if any(item.type in EVENT_ITEM_TYPES for item in dropped):
            # Attachments never travel without their event.
            dropped += [item for item in items if item.type == "attachment" and item not in dropped]
        if dropped:
            record_dropped_items(self.recorder, DiscardReason.RATELIMIT_BACKOFF, dropped)
            logger.info("rate limited: dropped %d item(s)", len(dropped))
        return [item for item in items if item not in dropped]

    def _materialize(self, items: list[EnvelopeItem]) -> list[EnvelopeItem]:
        """Read files and serialize events now; attachments that fail or are too large are counted and left out."""
        kept: list[EnvelopeItem] = []
        for item in items:
            if item.type != "attachment":
                item.payload  # noqa: B018 - serialize now: a failure drops the whole envelope
                kept.append(item)
                continue
            try:
                item.materialize(self._max_attachment_size)
            except AttachmentReadError as exc:
                self._drop_attachment(item, exc.reason, str(exc), exc.quantity)
                continue
            except Exception as exc:
                self._drop_attachment(item, DiscardReason.INTERNAL_SDK_ERROR, f"could not be read: {exc}")
                continue
            kept.append(item)
        return kept

    def _drop_attachment(self, item: EnvelopeItem, reason: str, why: str, quantity: int | None = None) -> None:
        logger.warning("attachment %r not sent: %s", item.headers.get("filename"), why)
        self.recorder.record(
            reason,
            "attachment",
            max(item.quantity() if quantity is None else quantity, 1),
        )

    def _take_report(self) -> dict[str, Any] | None:
        if not self._send_reports or self.limiter.is_limited("internal"):
            return None
        report = self.recorder.take()
        if report is not None:
            self._last_report = time.monotonic()
        return report

    def _send(
        self,
        envelope: Envelope,
        ticket: DeliveryTicket,
        attempt: int,
        cached: CachedEnvelope | None,
    ) -> _Sent:
        """Send once with a client report attached; settle, retry or keep the envelope by the outcome."""
        event_id = envelope.event_id
        report = self._take_report()
        items = list(envelope.items)
        if report is not None:
            items.append(EnvelopeItem.from_json("client_report", report))
        while True:
            outgoing = Envelope({**envelope.headers, "sent_at": rfc3339_now()}, items)
            try:
                response = self.transport.send(outgoing) or OK
                break
            except PayloadReadError as exc:
                # A file became unreadable while it was sent: the request was abandoned. Send
                # again at once without it, the cache file rewritten to match.
                envelope = self._without_unreadable(envelope, exc)
                items = [item for item in items if item is not exc.item]
                if cached is not None:
                    cached, envelope = self._rewrite(cached, envelope)
            except TransportError as exc:
                self._server_answers = False
                if report is not None:
                    self.recorder.restore(report)
                self._network_failure(envelope, ticket, attempt, cached, exc)
                return _Sent.NETWORK
            except BaseException as exc:  # a custom transport's SystemExit too: the worker goes on
                logger.exception("transport failed to send envelope %s", _label(envelope))
                self._failed(envelope, report, DiscardReason.INTERNAL_SDK_ERROR)
                if cached is not None and self._cache is not None:
                    self._cache.remove(cached)
                ticket.resolve(
                    FeedbackDroppedError(
                        f"transport error: {exc}",
                        reason=DiscardReason.INTERNAL_SDK_ERROR,
                        event_id=event_id,
                    )
                )
                return _Sent.FINAL
        self._server_answers = True
        if cached is not None and self._cache is not None:
            self._cache.remove(cached)  # any answer is final
        return self._outcome(envelope, ticket, report, response)

    def _network_failure(
        self,
        envelope: Envelope,
        ticket: DeliveryTicket,
        attempt: int,
        cached: CachedEnvelope | None,
        exc: Exception,
    ) -> None:
        event_id = envelope.event_id
        if cached is not None and self._cache is not None:
            self._cache.release(cached)
        if attempt < self._retry.max_attempts and not self._worker.closed:
            delay = self._retry.delay(attempt)
            logger.info(
                "could not send envelope %s (%s); retry %d in %.1f s",
                _label(envelope),
                exc,
                attempt,
                delay,
            )
            self._worker.submit_later(_Task(envelope, ticket, attempt + 1, cached), delay)
            return
        if cached is not None:
            logger.warning(
                "could not send envelope %s (%s); it stays in the cache for later",
                _label(envelope),
                exc,
            )
            ticket.resolve(NetworkError(f"{exc} (kept in the offline cache)", event_id=event_id))
            return
        logger.warning("could not send envelope %s after %d attempt(s): %s", _label(envelope), attempt, exc)
        record_dropped_items(self.recorder, DiscardReason.NETWORK_ERROR, envelope.items)
        ticket.resolve(NetworkError(str(exc), event_id=event_id))

    # -- the offline cache's drain --------------------------------------------------------------

    def _drain(self) -> None:
        with self._drain_progress:
            self._drain_scheduled = False
            self._draining = True
        delay: float | None = None
        try:
            delay = self._drain_step()
        finally:
            with self._drain_progress:
                self._draining = False
                # Marked scheduled before a waiting flush looks, so that it does not queue another.
                self._drain_scheduled = self._drain_scheduled or delay is not None
                self._drain_progress.notify_all()
        if delay is not None:
            self._worker.submit_later(_Task(None, kind="drain"), delay, background=True)

    def _drain_step(self) -> float | None:
        """Send the oldest envelope of the offline cache; the delay until the next step, ``None``: done."""
        cache = self._cache
        if cache is None or self._worker.closed:
            return None
        try:
            cache.recover_journals()  # first: the claims of their processes stay until then
        except Exception:
            logger.warning("could not recover the journals in the offline cache", exc_info=True)
        cache.recover_stale_claims()
        pause = self._rate_limit_pause()
        if pause > 0:
            return pause
        cached = cache.claim_next()
        if cached is None:
            return None
        envelope = cache.read(cached)
        if envelope is None:
            return 0.0
        if not any(item.type != "client_report" for item in envelope.items):
            # Counts kept at an earlier shutdown: merge them into this run's report.
            for item in envelope.items:
                self.recorder.restore(item.get_json())
            cache.remove(cached)
            return 0.0
        # The last attempt: a network error leaves the file in the cache, and the drain backs off.
        sent = self._send(envelope, _UNWATCHED, self._retry.max_attempts, cached)
        if sent is _Sent.NETWORK:
            self._drain_failures += 1
            return self._retry.delay(self._drain_failures)
        self._drain_failures = 0
        # Back to back while the server accepts; paced while new envelopes wait (they go first).
        return DRAIN_INTERVAL if self._worker.pending() else 0.0

    def _rate_limit_pause(self) -> float:
        """Seconds to wait while everything (or feedback and errors) is rate limited."""
        limiter = self.limiter
        if not limiter.is_any_limited():
            return 0.0
        return min(limiter.retry_after("feedback"), limiter.retry_after("error"))

    def _outcome(
        self,
        envelope: Envelope,
        ticket: DeliveryTicket,
        report: dict[str, Any] | None,
        response: TransportResponse,
    ) -> _Sent:
        event_id = envelope.event_id
        status = response.status
        self.limiter.update(status, response.headers)
        if 200 <= status < 300:
            ticket.resolve(None)
            return _Sent.DELIVERED
        if status == 429:
            # The server counts what it rate-limits: no client report, and no retry.
            if report is not None:
                self.recorder.restore(report)
            self._restore_carried_reports(envelope)
            category = next(
                (i.data_category for i in envelope.items if i.type in EVENT_ITEM_TYPES),
                "default",
            )
            retry = self.limiter.retry_after(category)
            logger.info(
                "rate limited by the server (429) for %.0f s; envelope %s dropped",
                retry,
                _label(envelope),
            )
            ticket.resolve(
                RateLimitedError(
                    "the server rate-limited the envelope (429)",
                    retry_after=retry,
                    category=category,
                    event_id=event_id,
                )
            )
            return _Sent.FINAL
        detail = response.detail
        if status == 413:
            size = sum(item.length for item in envelope.items)
            logger.error(
                "envelope %s (about %d bytes) is too large for the server (413); dropped",
                _label(envelope),
                size,
            )
        else:
            logger.warning("server answered %d to envelope %s: %s", status, _label(envelope), detail)
        self._failed(envelope, report, DiscardReason.SEND_ERROR)
        message = f"the server answered HTTP {status}" + (f": {detail}" if detail else "")
        ticket.resolve(ServerError(message, status=status, detail=detail, event_id=event_id))
        return _Sent.FINAL

    def _failed(self, envelope: Envelope, report: dict[str, Any] | None, reason: str) -> None:
        record_dropped_items(self.recorder, reason, envelope.items)
        if report is not None:
            self.recorder.restore(report)
        self._restore_carried_reports(envelope)

    def _restore_carried_reports(self, envelope: Envelope) -> None:
        """Counts an envelope carried itself (written at capture, see :meth:`_persist_early`) go out later."""
        for item in envelope.items:
            if item.type == "client_report":
                try:
                    self.recorder.restore(item.get_json())
                except Exception:
                    logger.debug(
                        "unreadable client report in envelope %s",
                        _label(envelope),
                        exc_info=True,
                    )

    def _send_reports_alone(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._last_report < CLIENT_REPORT_INTERVAL:
            return
        report = self._take_report()
        if report is None:
            return
        envelope = Envelope(
            {"sent_at": rfc3339_now()},
            [EnvelopeItem.from_json("client_report", report)],
        )
        try:
            response = self.transport.send(envelope) or OK
        except BaseException as exc:
            logger.debug("could not send client report: %s", exc)
            self.recorder.restore(report)
            return
        self.limiter.update(response.status, response.headers)
        if not 200 <= response.status < 300:
            self.recorder.restore(report)
