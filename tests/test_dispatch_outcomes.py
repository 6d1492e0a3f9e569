"""What delivery does with each outcome of a send: 2xx, error answers, 429, network errors, rate limits.

Over real HTTP to a :class:`~sentry_feedback.server.LocalReceiver` on 127.0.0.1, with a
misbehaving :class:`FaultServer` in front of it for network errors. Each outcome is
checked for what the caller is told, what is counted in client reports (and reaches the
server later), whether it is tried again, and what stays in the offline cache.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import sentry_feedback as sf
from faults.servers import FaultServer, Forward, Garbage
from sentry_feedback import Envelope, _cache, _dispatch
from sentry_feedback._envelope import EnvelopeItem
from sentry_feedback._transport import HttpTransport, TransportResponse
from sentry_feedback.exceptions import (
    EnvelopeParseError,
    FeedbackDroppedError,
    NetworkError,
    RateLimitedError,
    ServerError,
)
from sentry_feedback.server import LocalReceiver
from sentry_feedback.testing import MockTransport

FAST = sf.RetryPolicy(max_attempts=3, initial=0.01, maximum=0.01, jitter=0.0)
ONCE = sf.RetryPolicy(max_attempts=1)
DETAIL = b'{"detail": "missing event id"}'
NOT_HTTP = Garbage(b"this is not HTTP\r\n\r\n")
ATTACHMENT = b"0123456789"
#: What the transport says when the answer is ``NOT_HTTP``.
NOT_HTTP_ERROR = "could not send to 127.0.0.1:{port}: the server's answer is not HTTP: 'this is not HTTP'"
SENT_AT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")


class TimedFaultServer(FaultServer):
    """A :class:`FaultServer` that notes when it finished each exchange (``times``, monotonic)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.times: list[float] = []

    def _record(self, *args: Any, **kwargs: Any) -> None:
        self.times.append(time.monotonic())
        super()._record(*args, **kwargs)


class FirstSendHeld:
    """A :class:`MockTransport` handler that holds the first send until ``release`` (then raises ``error``, if any)."""

    def __init__(self, error: Exception | None = None) -> None:
        self.sent: list[Envelope] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.error = error

    def __call__(self, envelope: Envelope) -> None:
        self.sent.append(envelope)
        if len(self.sent) == 1:
            self.started.set()
            self.release.wait(10)
            if self.error is not None:
                raise self.error


@pytest.fixture
def faulty(sentry_receiver: LocalReceiver) -> Iterator[Callable[..., FaultServer]]:
    """``faulty(faults, then=Forward())``: a server that misbehaves as scripted, in front of ``sentry_receiver``."""
    servers: list[FaultServer] = []

    def make(faults: list[Any], *, then: Any = None, timed: bool = False) -> FaultServer:
        server = (TimedFaultServer if timed else FaultServer)(faults, then=then, upstream=sentry_receiver).start()
        servers.append(server)
        return server

    yield make
    sf.testing.reset()  # the client stops before its server does
    for server in servers:
        server.stop()


def send_with_attachment(message: str = "hello") -> str:
    return sf.send_feedback(message, timeout=10, attachments=[sf.Attachment(ATTACHMENT, filename="a.txt")])


def report_counts(envelope: Envelope | None) -> dict[tuple[str, str], int]:
    """The counts of the client report items of ``envelope``."""
    counts: dict[tuple[str, str], int] = {}
    for item in envelope.items if envelope is not None else ():
        if item.type == "client_report":
            for entry in item.get_json()["discarded_events"]:
                key = (entry["reason"], entry["category"])
                counts[key] = counts.get(key, 0) + entry["quantity"]
    return counts


def item_types(envelope: Envelope | None) -> list[str]:
    assert envelope is not None
    return [item.type for item in envelope.items]


def drop_a_message() -> None:
    """Leave one count pending: ``before_send`` drops an error event."""
    assert sf.capture_message("dropped by before_send") is None


def drop_everything(event: Any, hint: Any) -> None:
    return None


def cache_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".envelope" in p.name)


def assert_sent_now(envelope: Envelope) -> None:
    """The envelope carries the time it was sent (``sent_at``, RFC 3339 UTC with milliseconds)."""
    sent_at = envelope.headers["sent_at"]
    assert SENT_AT.fullmatch(sent_at), sent_at
    when = datetime.strptime(sent_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    assert abs(when.timestamp() - time.time()) < 60


def feedback_item(message: str) -> EnvelopeItem:
    return EnvelopeItem.from_json(
        "feedback", {"type": "feedback", "timestamp": time.time(), "contexts": {"feedback": {"message": message}}}
    )


def report_item(counts: dict[tuple[str, str], int]) -> EnvelopeItem:
    entries = [{"reason": reason, "category": category, "quantity": n} for (reason, category), n in counts.items()]
    return EnvelopeItem.from_json("client_report", {"timestamp": time.time(), "discarded_events": entries})


def leftover(cache: Path, index: int, *items: EnvelopeItem) -> str:
    """A file an earlier run left in the offline cache (the oldest first by ``index``); its event id."""
    cache.mkdir(exist_ok=True)
    event_id = f"{index:032x}"
    data = Envelope({"event_id": event_id}, list(items)).serialize()
    (cache / f"{index:020d}-1-{index}-0badf00d.envelope").write_bytes(data)
    return event_id


# -- answers --------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 202, 299])
def test_a_2xx_answer_delivers(
    sentry_init: Callable[..., sf.Client], sentry_receiver: LocalReceiver, status: int
) -> None:
    client = sentry_init()
    sentry_receiver.respond_with(status)
    event_id = send_with_attachment()
    assert [fb.event_id for fb in sentry_receiver.store.list_feedback()] == [event_id]
    assert client.client_reports.totals() == {}
    [request] = sentry_receiver.received
    assert request.envelope is not None
    assert_sent_now(request.envelope)


@pytest.mark.parametrize("status", [300, 400, 404, 500, 503])
def test_an_error_answer_is_final_counted_and_explained(
    sentry_init: Callable[..., sf.Client],
    sentry_receiver: LocalReceiver,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    client = sentry_init(retry=FAST)
    sentry_receiver.respond_with(status, body=DETAIL)
    with caplog.at_level(logging.WARNING, logger="sentry_feedback"), pytest.raises(ServerError) as refused:
        send_with_attachment()
    [request] = sentry_receiver.received
    assert request.envelope is not None
    event_id = request.envelope.event_id
    assert str(refused.value) == f"the server answered HTTP {status}: missing event id"
    assert (refused.value.status, refused.value.detail, refused.value.event_id) == (
        status,
        "missing event id",
        event_id,
    )
    assert client.client_reports.totals() == {("send_error", "feedback"): 1, ("send_error", "attachment"): 10}
    assert f"server answered {status} to envelope {event_id}: missing event id" in caplog.messages
    assert sf.flush(5)
    # An answer is final: never sent again; its counts go out in a report of their own.
    assert [item_types(r.envelope) for r in sentry_receiver.received] == [["feedback", "attachment"], ["client_report"]]
    assert sentry_receiver.store.list_feedback() == []
    assert sentry_receiver.store.client_report_totals() == {
        ("send_error", "feedback"): 1,
        ("send_error", "attachment"): 10,
    }


def test_an_error_answer_without_a_body(sentry_init: Callable[..., sf.Client], sentry_receiver: LocalReceiver) -> None:
    sentry_init()
    sentry_receiver.respond_with(500)
    with pytest.raises(ServerError) as refused:
        sf.send_feedback("x", timeout=10)
    assert str(refused.value) == "the server answered HTTP 500"
    assert refused.value.detail == ""


def test_a_413_says_how_large_the_envelope_was(
    sentry_init: Callable[..., sf.Client], sentry_receiver: LocalReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    client = sentry_init()
    sentry_receiver.respond_with(413)
    with caplog.at_level(logging.WARNING, logger="sentry_feedback"), pytest.raises(ServerError) as refused:
        send_with_attachment()
    assert refused.value.status == 413
    [request] = sentry_receiver.received
    assert request.envelope is not None
    size = sum(len(item.payload) for item in request.envelope.items)
    assert caplog.messages == [
        f"envelope {request.envelope.event_id} (about {size} bytes) is too large for the server (413); dropped"
    ]
    assert caplog.records[0].levelno == logging.ERROR
    assert client.client_reports.totals() == {("send_error", "feedback"): 1, ("send_error", "attachment"): 10}


def test_a_429_is_not_counted_and_stops_what_follows(
    sentry_init: Callable[..., sf.Client], sentry_receiver: LocalReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    client = sentry_init(retry=FAST)
    sentry_receiver.respond_with(429, headers={"X-Sentry-Rate-Limits": "30:feedback, 90:error"})
    with caplog.at_level(logging.INFO, logger="sentry_feedback"), pytest.raises(RateLimitedError) as limited:
        send_with_attachment()
    [request] = sentry_receiver.received
    assert request.envelope is not None
    assert str(limited.value) == "the server rate-limited the envelope (429)"
    assert limited.value.category == "feedback"
    assert 25 < limited.value.retry_after <= 30  # the feedback's limit, not the error's
    assert limited.value.event_id == request.envelope.event_id
    assert f"rate limited by the server (429) for 30 s; envelope {request.envelope.event_id} dropped" in caplog.messages
    assert client.client_reports.totals() == {}  # the server counts what it rate-limits

    # What follows is dropped before it is sent, and counted, its attachments with it.
    with caplog.at_level(logging.INFO, logger="sentry_feedback"), pytest.raises(RateLimitedError) as again:
        send_with_attachment()
    assert "rate limited: dropped 2 item(s)" in caplog.messages
    assert re.fullmatch(r"feedback is rate limited for (29|30) more seconds", str(again.value))
    assert again.value.category == "feedback"
    assert client.client_reports.totals() == {
        ("ratelimit_backoff", "feedback"): 1,
        ("ratelimit_backoff", "attachment"): 10,
    }
    assert sf.flush(5)
    assert len(sentry_receiver.received) == 2  # the second request: the client report alone
    assert item_types(sentry_receiver.received[1].envelope) == ["client_report"]


def test_a_429_without_limits_pauses_everything(
    sentry_init: Callable[..., sf.Client], sentry_receiver: LocalReceiver
) -> None:
    client = sentry_init()
    sentry_receiver.respond_with(429, headers={"Retry-After": "20"})
    with pytest.raises(RateLimitedError) as limited:
        sf.send_feedback("x", timeout=10)
    assert 15 < limited.value.retry_after <= 20
    assert client.rate_limiter.is_limited("error")
    assert sf.capture_message("not sent") is not None
    assert sf.flush(5)
    assert client.client_reports.totals() == {("ratelimit_backoff", "error"): 1}


def test_a_limited_attachment_category_drops_attachments_only(
    sentry_init: Callable[..., sf.Client], sentry_receiver: LocalReceiver
) -> None:
    client = sentry_init()
    sentry_receiver.respond_with(200, headers={"X-Sentry-Rate-Limits": "60:attachment"})
    sf.send_feedback("sets the limit", timeout=10)
    event_id = send_with_attachment("still delivered")
    sent = sentry_receiver.received[-1].envelope
    assert item_types(sent) == ["feedback", "client_report"]  # the attachment left out, and counted
    assert report_counts(sent) == {("ratelimit_backoff", "attachment"): 10}
    assert event_id in {fb.event_id for fb in sentry_receiver.store.list_feedback()}
    assert client.client_reports.totals() == {("ratelimit_backoff", "attachment"): 10}


@pytest.mark.parametrize("answer", [429, 500])
def test_counts_carried_by_a_refused_envelope_reach_the_server_later(
    sentry_init: Callable[..., sf.Client], sentry_receiver: LocalReceiver, answer: int
) -> None:
    sentry_init(before_send=drop_everything)
    drop_a_message()
    headers = {"X-Sentry-Rate-Limits": "60:feedback"} if answer == 429 else {}
    sentry_receiver.respond_with(answer, headers=headers)
    with pytest.raises((RateLimitedError, ServerError)):
        sf.send_feedback("refused", timeout=10)
    [refused] = sentry_receiver.received
    assert report_counts(refused.envelope) == {("before_send", "error"): 1}  # it rode along
    assert sf.flush(5)  # sent again, alone
    expected = {("before_send", "error"): 1}
    if answer != 429:
        expected[("send_error", "feedback")] = 1
    assert sentry_receiver.store.client_report_totals() == expected


@pytest.mark.parametrize("status", [300, 500])
def test_a_client_report_refused_by_the_server_is_sent_again(
    sentry_init: Callable[..., sf.Client], sentry_receiver: LocalReceiver, status: int
) -> None:
    sentry_init(before_send=drop_everything)
    drop_a_message()
    sentry_receiver.respond_with(status)
    sf.flush(5)  # the report alone: refused, kept
    assert [item_types(r.envelope) for r in sentry_receiver.received] == [["client_report"]]
    assert sentry_receiver.store.client_report_totals() == {}
    assert sf.flush(5)
    assert sentry_receiver.store.client_report_totals() == {("before_send", "error"): 1}
    assert sf.flush(5)  # nothing left to send
    assert len(sentry_receiver.received) == 2
    for request in sentry_receiver.received:
        assert request.envelope is not None
        assert_sent_now(request.envelope)


def test_a_client_report_refused_with_a_429_learns_the_limit(
    sentry_init: Callable[..., sf.Client], sentry_receiver: LocalReceiver
) -> None:
    client = sentry_init(before_send=drop_everything)
    drop_a_message()
    sentry_receiver.respond_with(429, headers={"Retry-After": "60"})
    sf.flush(5)
    assert client.rate_limiter.is_limited("feedback")
    assert client.client_reports.has_pending()  # kept for later


def test_a_client_report_that_cannot_be_sent_is_kept(
    sentry_init: Callable[..., sf.Client],
    sentry_receiver: LocalReceiver,
    faulty: Callable[..., FaultServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = faulty([NOT_HTTP])
    sentry_init(dsn=server.dsn, before_send=drop_everything)
    drop_a_message()
    with caplog.at_level(logging.DEBUG, logger="sentry_feedback"):
        sf.flush(5)
    [failure] = server.exchanges
    assert item_types(failure.envelope) == ["client_report"]
    assert f"could not send client report: {NOT_HTTP_ERROR.format(port=server.port)}" in caplog.messages
    assert sf.flush(5)
    assert sentry_receiver.store.client_report_totals() == {("before_send", "error"): 1}


def test_client_reports_go_out_alone_when_the_client_is_idle(
    monkeypatch: pytest.MonkeyPatch, sentry_init: Callable[..., sf.Client], sentry_receiver: LocalReceiver
) -> None:
    monkeypatch.setattr(_dispatch, "CLIENT_REPORT_INTERVAL", 0.2)  # instead of 30 s
    sentry_init(before_send=drop_everything)
    sf.send_feedback("the background thread runs from now on", timeout=10)
    for count in (2, 3):
        drop_a_message()
        assert sentry_receiver.wait_for_envelopes(count, timeout=10)  # no flush: the idle worker sends it
        request = sentry_receiver.received[-1]
        assert item_types(request.envelope) == ["client_report"]
        assert report_counts(request.envelope) == {("before_send", "error"): 1}


def test_client_reports_wait_while_the_internal_category_is_limited(
    sentry_init: Callable[..., sf.Client], sentry_receiver: LocalReceiver
) -> None:
    client = sentry_init(before_send=drop_everything)
    sentry_receiver.respond_with(200, headers={"X-Sentry-Rate-Limits": "60:internal"})
    sf.send_feedback("sets the limit", timeout=10)
    drop_a_message()
    sf.send_feedback("goes without the report", timeout=10)
    assert sf.flush(5)
    assert [item_types(r.envelope) for r in sentry_receiver.received] == [["feedback"], ["feedback"]]
    assert client.client_reports.has_pending()
    assert sentry_receiver.store.client_report_totals() == {}


def test_without_send_client_reports_no_report_is_sent(
    sentry_init: Callable[..., sf.Client], sentry_receiver: LocalReceiver
) -> None:
    client = sentry_init(before_send=drop_everything, send_client_reports=False)
    drop_a_message()
    sentry_receiver.respond_with(500)
    with pytest.raises(ServerError):
        sf.send_feedback("refused", timeout=10)
    sf.send_feedback("delivered", timeout=10)
    assert sf.flush(5)
    assert [item_types(r.envelope) for r in sentry_receiver.received] == [["feedback"], ["feedback"]]
    assert client.client_reports.totals() == {("before_send", "error"): 1, ("send_error", "feedback"): 1}


def test_a_transaction_refused_counts_its_spans(
    sentry_init: Callable[..., sf.Client], sentry_receiver: LocalReceiver
) -> None:
    client = sentry_init(traces_sample_rate=1.0)
    sentry_receiver.respond_with(500)
    with sf.start_span("checkout", op="http.server"):
        for i in range(3):
            with sf.start_span(f"query {i}", op="db.query"):
                pass
    assert sf.flush(5)
    assert client.client_reports.totals() == {("send_error", "transaction"): 1, ("send_error", "span"): 4}


# -- network errors ---------------------------------------------------------------------------------


def test_network_errors_are_retried_then_counted(
    sentry_init: Callable[..., sf.Client],
    sentry_receiver: LocalReceiver,
    faulty: Callable[..., FaultServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = faulty([NOT_HTTP] * 3)
    client = sentry_init(dsn=server.dsn, retry=FAST, before_send=drop_everything)
    drop_a_message()
    with caplog.at_level(logging.INFO, logger="sentry_feedback"), pytest.raises(NetworkError) as failed:
        send_with_attachment()
    exchanges = server.exchanges
    assert len(exchanges) == 3
    event_id = exchanges[0].envelope.event_id if exchanges[0].envelope else None
    assert failed.value.event_id == event_id
    error = NOT_HTTP_ERROR.format(port=server.port)
    assert str(failed.value) == error
    # Every attempt carried the pending counts: taken back after each failure, not lost.
    assert [report_counts(e.envelope) for e in exchanges] == [{("before_send", "error"): 1}] * 3
    assert client.client_reports.totals() == {
        ("before_send", "error"): 1,
        ("network_error", "feedback"): 1,
        ("network_error", "attachment"): 10,
    }
    assert [m for m in caplog.messages if m.startswith(f"could not send envelope {event_id}")] == [
        f"could not send envelope {event_id} ({error}); retry 1 in 0.0 s",
        f"could not send envelope {event_id} ({error}); retry 2 in 0.0 s",
        f"could not send envelope {event_id} after 3 attempt(s): {error}",
    ]
    assert sf.flush(5)  # now the server behaves: the counts reach it
    assert sentry_receiver.store.client_report_totals() == {
        ("before_send", "error"): 1,
        ("network_error", "feedback"): 1,
        ("network_error", "attachment"): 10,
    }


def test_a_network_error_then_an_answer_delivers_once(
    sentry_init: Callable[..., sf.Client], sentry_receiver: LocalReceiver, faulty: Callable[..., FaultServer]
) -> None:
    server = faulty([NOT_HTTP, NOT_HTTP])
    client = sentry_init(dsn=server.dsn, retry=FAST)
    event_id = send_with_attachment()
    assert [e.status for e in server.exchanges] == [None, None, 200]
    assert [fb.event_id for fb in sentry_receiver.store.list_feedback()] == [event_id]
    assert client.client_reports.totals() == {}


def test_retries_wait_as_the_policy_says(
    sentry_init: Callable[..., sf.Client], faulty: Callable[..., FaultServer]
) -> None:
    server = faulty([NOT_HTTP])
    sentry_init(dsn=server.dsn, retry=sf.RetryPolicy(max_attempts=2, initial=0.3, maximum=0.3, jitter=0.0))
    started = time.monotonic()
    sf.send_feedback("x", timeout=10)
    assert time.monotonic() - started >= 0.3
    assert len(server.exchanges) == 2


def test_no_retry_once_the_client_has_retired() -> None:
    """A send that fails after a newer client took over is counted at once, not retried."""
    held = FirstSendHeld(sf.TransportError("connection reset"))
    transport = MockTransport(held)
    old = sf.init(transport=transport, retry=sf.RetryPolicy(max_attempts=5, initial=0.01, maximum=0.01))
    sf.capture_feedback("x", attachments=[sf.Attachment(ATTACHMENT, filename="a.txt")])
    assert held.started.wait(10)
    sf.init(transport=MockTransport())  # the old client retires: its queue is closed
    held.release.set()
    assert transport.wait_for(2, timeout=10)  # its last client report, no retry
    calls = held.sent
    assert [item_types(e) for e in calls] == [["feedback", "attachment"], ["client_report"]]
    assert report_counts(calls[1]) == {("network_error", "feedback"): 1, ("network_error", "attachment"): 10}
    assert old.client_reports.totals() == {("network_error", "feedback"): 1, ("network_error", "attachment"): 10}


# -- the offline cache ------------------------------------------------------------------------------


def test_a_network_error_keeps_the_envelope_in_the_cache(
    tmp_path: Path,
    sentry_init: Callable[..., sf.Client],
    sentry_receiver: LocalReceiver,
    faulty: Callable[..., FaultServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = tmp_path / "cache"
    server = faulty([], then=NOT_HTTP)
    client = sentry_init(dsn=server.dsn, cache_dir=str(cache), retry=FAST)
    with caplog.at_level(logging.WARNING, logger="sentry_feedback"), pytest.raises(NetworkError) as failed:
        send_with_attachment("kept")
    error = NOT_HTTP_ERROR.format(port=server.port)
    assert str(failed.value) == f"{error} (kept in the offline cache)"
    assert caplog.messages == [
        f"could not send envelope {failed.value.event_id} ({error}); it stays in the cache for later"
    ]
    assert len(server.exchanges) == 3  # retried, the file claimed again for each attempt
    assert sf.flush(5)  # the server just failed: no drain attempt now
    assert len(server.exchanges) == 3
    assert client.client_reports.totals() == {}  # not lost: on disk
    [name] = cache_files(cache)
    assert name.endswith(".envelope")  # free again, for any process to send
    kept = Envelope.parse((cache / name).read_bytes())
    assert kept.event_id == failed.value.event_id
    assert item_types(kept) == ["feedback", "attachment"]
    sf.testing.reset()

    sentry_init(cache_dir=str(cache))  # the next start, with a server that answers
    assert sentry_receiver.wait_for_envelopes(1, timeout=10)
    assert sf.flush(10)
    assert [fb.event_id for fb in sentry_receiver.store.list_feedback()] == [failed.value.event_id]
    assert cache_files(cache) == []


@pytest.mark.parametrize("status", [200, 429, 500])
def test_any_answer_removes_the_cache_file(
    tmp_path: Path, sentry_init: Callable[..., sf.Client], sentry_receiver: LocalReceiver, status: int
) -> None:
    cache = tmp_path / "cache"
    sentry_init(cache_dir=str(cache))
    sentry_receiver.respond_with(status)
    sf.capture_feedback("x", attachments=[sf.Attachment(ATTACHMENT, filename="a.txt")])
    assert sf.flush(5)
    assert cache_files(cache) == []


def test_a_retry_of_a_file_another_process_took_is_not_sent_twice(
    tmp_path: Path, sentry_init: Callable[..., sf.Client], faulty: Callable[..., FaultServer]
) -> None:
    cache = tmp_path / "cache"
    server = faulty([NOT_HTTP])
    taken: list[str] = []
    client = sentry_init(dsn=server.dsn, cache_dir=str(cache), retry=sf.RetryPolicy(max_attempts=2, initial=0.5))
    sf.capture_feedback("x")
    assert server.wait_for_exchanges(1)
    deadline = time.monotonic() + 5
    while not taken and time.monotonic() < deadline:  # freed for the retry: another process claims it
        for path in cache.iterdir():
            if path.name.endswith(".envelope"):
                path.rename(f"{path}.99999999.sending")
                taken.append(path.name)
        time.sleep(0.01)
    assert taken
    assert sf.flush(5)
    assert len(server.exchanges) == 1  # its claim wins: not sent by us again
    assert client.client_reports.totals() == {}


def test_the_drain_backs_off_while_the_server_cannot_be_reached(
    tmp_path: Path,
    sentry_init: Callable[..., sf.Client],
    faulty: Callable[..., FaultServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = tmp_path / "cache"
    server = faulty([], then=NOT_HTTP)
    sentry_init(dsn=server.dsn, cache_dir=str(cache), retry=ONCE)
    for i in range(3):
        sf.capture_feedback(f"kept {i}")
    assert sf.flush(5)
    sf.testing.reset()
    assert len(cache_files(cache)) == 3
    count = len(server.exchanges)

    caplog.set_level(logging.ERROR, logger="sentry_feedback")
    client = sentry_init(dsn=server.dsn, cache_dir=str(cache), retry=sf.RetryPolicy(initial=30, maximum=30))
    assert server.wait_for_exchanges(count + 1, timeout=10)
    deadline = time.monotonic() + 10
    while not client.flush(0):  # (a zero timeout never starts a drain step) until the first step is over
        assert time.monotonic() < deadline
        time.sleep(0.01)
    started = time.monotonic()
    assert client.flush(5)  # a failed drain attempt ends the wait
    assert time.monotonic() - started < 1
    assert len(server.exchanges) == count + 1  # the next one is 30 s away
    assert [name.endswith(".envelope") for name in cache_files(cache)] == [True] * 3  # all free, none lost
    assert client.client_reports.totals() == {}
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []  # a failed attempt is no worker error


class GatedFaultServer(FaultServer):
    """A :class:`FaultServer` that holds each answer until ``release`` is set; ``arrived`` says one is held."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.arrived = threading.Event()
        self.release = threading.Event()

    def _record(self, *args: Any, **kwargs: Any) -> None:
        super()._record(*args, **kwargs)
        self.arrived.set()
        self.release.wait(10)


def test_a_flush_during_a_failing_drain_step_does_not_retry_at_once(
    tmp_path: Path,
    sentry_init: Callable[..., sf.Client],
    sentry_receiver: LocalReceiver,
) -> None:
    cache = tmp_path / "cache"
    leftover(cache, 1, feedback_item("left by an earlier run"))
    server = GatedFaultServer([], then=NOT_HTTP, upstream=sentry_receiver).start()
    try:
        client = sentry_init(dsn=server.dsn, cache_dir=str(cache), retry=sf.RetryPolicy(initial=30, maximum=30))
        assert server.arrived.wait(10)  # the first drain step is sending, its answer held
        assert not client.flush(0.2)  # the step in progress decides: it cannot end in time
        server.release.set()
        deadline = time.monotonic() + 10
        while not client.flush(0):  # until the step is over
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert client.flush(5)  # backing off: no wait
        # The step that failed scheduled the next one 30 s away; the flush queued none of its own.
        assert not server.wait_for_exchanges(2, timeout=1.0)
        assert len(server.exchanges) == 1
        assert cache_files(cache) == ["00000000000000000001-1-1-0badf00d.envelope"]
        assert client.client_reports.totals() == {}
    finally:
        server.release.set()
        sf.testing.reset()
        server.stop()


def test_log_lines_name_an_envelope_without_an_event_id_by_its_items(
    sentry_init: Callable[..., sf.Client],
    faulty: Callable[..., FaultServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = faulty([], then=NOT_HTTP)
    sentry_init(dsn=server.dsn, retry=ONCE, release="shop@1.0")
    caplog.set_level(logging.WARNING, logger="sentry_feedback")
    sf.start_session()
    sf.capture_session(end=True)
    assert sf.flush(5)
    port = server.port
    assert [r.getMessage() for r in caplog.records] == [
        f"could not send envelope (session) after 1 attempt(s): {NOT_HTTP_ERROR.format(port=port)}"
    ]
    assert _dispatch._label(Envelope({}, [])) == "(empty)"
    items = [feedback_item("a"), feedback_item("b"), report_item({("sample_rate", "error"): 1})]
    assert _dispatch._label(Envelope({}, items)) == "(feedback, client_report)"
    assert _dispatch._label(Envelope({"event_id": "ab" * 16}, items)) == "ab" * 16


def test_counts_kept_in_the_cache_at_shutdown_go_out_at_the_next_start(
    tmp_path: Path,
    sentry_init: Callable[..., sf.Client],
    sentry_receiver: LocalReceiver,
    faulty: Callable[..., FaultServer],
) -> None:
    cache = tmp_path / "cache"
    server = faulty([], then=NOT_HTTP)
    sentry_init(dsn=server.dsn, cache_dir=str(cache), retry=ONCE, before_send=drop_everything)
    drop_a_message()
    drop_a_message()
    sf.testing.reset()  # the counts could not be sent: kept in a file of their own
    assert len(cache_files(cache)) == 1

    client = sentry_init(cache_dir=str(cache))
    sf.send_feedback("a live one", timeout=10)
    deadline = time.monotonic() + 10
    while cache_files(cache) and time.monotonic() < deadline:
        assert sf.flush(1)
    assert cache_files(cache) == []
    assert sf.flush(5)
    assert sentry_receiver.store.client_report_totals() == {("before_send", "error"): 2}
    assert client.client_reports.totals() == {}
    # Merged into this run's report, which went with the feedback: the file itself is not sent.
    [request] = sentry_receiver.received
    assert item_types(request.envelope) == ["feedback", "client_report"]


# -- a transport that fails unexpectedly ----------------------------------------------------------


class Broken(Exception):
    pass


def test_a_transport_that_raises_drops_the_envelope_and_counts_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache"
    calls: list[Envelope] = []

    def handler(envelope: Envelope) -> None:
        calls.append(envelope)
        if len(calls) == 1:
            raise Broken("boom")

    sf.init(transport=MockTransport(handler), cache_dir=str(cache), before_send=drop_everything)
    drop_a_message()
    with caplog.at_level(logging.ERROR, logger="sentry_feedback"), pytest.raises(FeedbackDroppedError) as dropped:
        sf.send_feedback("x", timeout=10, attachments=[sf.Attachment(ATTACHMENT, filename="a.txt")])
    [record] = caplog.records
    assert record.getMessage() == f"transport failed to send envelope {calls[0].event_id}"
    assert record.exc_info is not None and isinstance(record.exc_info[1], Broken)
    assert str(dropped.value) == "transport error: boom"
    assert dropped.value.reason == "internal_sdk_error"
    assert dropped.value.event_id == calls[0].event_id
    assert cache_files(cache) == []  # not sent again
    assert report_counts(calls[0]) == {("before_send", "error"): 1}
    assert sf.flush(5)
    assert len(calls) == 2  # the counts, with what the failure cost
    assert report_counts(calls[1]) == {
        ("before_send", "error"): 1,
        ("internal_sdk_error", "feedback"): 1,
        ("internal_sdk_error", "attachment"): 10,
    }


# -- envelopes an earlier run left in the cache -------------------------------------------------------

CARRIED = {("internal_sdk_error", "attachment"): 70_000}  # counts a capture wrote with its envelope


@pytest.mark.parametrize("answer", [429, 500])
def test_counts_a_cached_envelope_carries_are_kept_when_it_is_refused(
    tmp_path: Path, sentry_init: Callable[..., sf.Client], sentry_receiver: LocalReceiver, answer: int
) -> None:
    cache = tmp_path / "cache"
    leftover(cache, 1, feedback_item("left behind"), report_item(CARRIED))
    headers = {"X-Sentry-Rate-Limits": "60:feedback"} if answer == 429 else {}
    sentry_receiver.respond_with(answer, headers=headers)
    client = sentry_init(cache_dir=str(cache))
    assert sentry_receiver.wait_for_envelopes(1, timeout=10)
    assert sf.flush(5)  # the drain step under way ends
    assert sf.flush(5)  # what it counted goes out
    assert cache_files(cache) == []
    [refused, report] = sentry_receiver.received
    assert report_counts(refused.envelope) == CARRIED  # sent as it was written
    assert item_types(report.envelope) == ["client_report"]
    # The report item itself is not a dropped item; its counts go out again.
    expected = {**CARRIED, ("send_error", "feedback"): 1} if answer == 500 else CARRIED
    assert client.client_reports.totals() == ({("send_error", "feedback"): 1} if answer == 500 else {})
    assert sentry_receiver.store.client_report_totals() == expected


def test_an_unreadable_report_in_a_cached_envelope_is_skipped(
    tmp_path: Path,
    sentry_init: Callable[..., sf.Client],
    sentry_receiver: LocalReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = tmp_path / "cache"
    event_id = leftover(cache, 1, feedback_item("left behind"), EnvelopeItem({"type": "client_report"}, b"{not json"))
    sentry_receiver.respond_with(500)
    with caplog.at_level(logging.DEBUG, logger="sentry_feedback"):
        client = sentry_init(cache_dir=str(cache))
        assert sentry_receiver.wait_for_envelopes(1, timeout=10)
        assert sf.flush(5)  # the drain step under way ends
        assert sf.flush(5)  # what it counted goes out
    [record] = [r for r in caplog.records if r.getMessage().startswith("unreadable client report")]
    assert record.getMessage() == f"unreadable client report in envelope {event_id}"
    assert record.exc_info and isinstance(record.exc_info[1], EnvelopeParseError)  # with its traceback
    assert client.client_reports.totals() == {("send_error", "feedback"): 1}
    assert sentry_receiver.store.client_report_totals() == {("send_error", "feedback"): 1}


def test_a_429_to_an_envelope_without_an_event_names_the_default_category(
    tmp_path: Path,
    sentry_init: Callable[..., sf.Client],
    sentry_receiver: LocalReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = tmp_path / "cache"
    event_id = leftover(cache, 1, EnvelopeItem({"type": "attachment", "filename": "a.txt"}, ATTACHMENT))
    sentry_receiver.respond_with(429, headers={"X-Sentry-Rate-Limits": "60:default"})
    with caplog.at_level(logging.INFO, logger="sentry_feedback"):
        client = sentry_init(cache_dir=str(cache))
        assert sentry_receiver.wait_for_envelopes(1, timeout=10)
        assert sf.flush(5)
    assert f"rate limited by the server (429) for 60 s; envelope {event_id} dropped" in caplog.messages
    assert cache_files(cache) == []
    assert client.client_reports.totals() == {}


def test_a_backlog_drains_back_to_back_and_new_envelopes_go_first(
    tmp_path: Path, sentry_init: Callable[..., sf.Client], sentry_receiver: LocalReceiver
) -> None:
    cache = tmp_path / "cache"
    expected = []
    for i in range(40):
        if i % 10 == 5:
            (cache / f"{i:020d}-1-{i}-0badf00d.envelope").write_bytes(b"not an envelope\n{")
        elif i % 10 == 7:
            leftover(cache, i, report_item({("before_send", "error"): 1}))
        else:
            expected.append(leftover(cache, i, feedback_item(f"backlog {i}")))
    started = time.monotonic()
    client = sentry_init(cache_dir=str(cache))
    new = sf.capture_feedback("new")
    assert sentry_receiver.wait_for_envelopes(len(expected) + 1, timeout=20)
    elapsed = time.monotonic() - started
    sent = [r.envelope.event_id for r in sentry_receiver.received if r.envelope is not None]
    assert new in sent[:3]  # it did not wait for the backlog
    assert [e for e in sent if e != new] == expected  # oldest first, each once
    assert elapsed < 2.5  # back to back: no pause per file while nothing new waits
    assert sf.flush(5)
    assert cache_files(cache) == []
    assert client.client_reports.totals() == {("internal_sdk_error", "default"): 4}
    assert sentry_receiver.store.client_report_totals() == {
        ("before_send", "error"): 4,
        ("internal_sdk_error", "default"): 4,
    }


def test_the_drain_pauses_while_feedback_and_errors_are_limited(
    tmp_path: Path, sentry_init: Callable[..., sf.Client], sentry_receiver: LocalReceiver
) -> None:
    cache = tmp_path / "cache"
    first = leftover(cache, 1, feedback_item("first"))
    leftover(cache, 2, feedback_item("second"))
    sentry_receiver.respond_with(200, headers={"X-Sentry-Rate-Limits": "60:feedback, 30:error"})
    client = sentry_init(cache_dir=str(cache))
    assert sentry_receiver.wait_for_envelopes(1, timeout=10)
    assert client.flush(5)  # paused: nothing to wait for
    assert [r.envelope.event_id for r in sentry_receiver.received if r.envelope] == [first]
    assert len(cache_files(cache)) == 1
    assert 25 < client.rate_limiter.retry_after("error") <= 30


def test_the_drain_resumes_when_a_short_limit_ends(
    tmp_path: Path, sentry_init: Callable[..., sf.Client], sentry_receiver: LocalReceiver
) -> None:
    cache = tmp_path / "cache"
    leftover(cache, 1, feedback_item("first"))
    leftover(cache, 2, feedback_item("second"))
    sentry_receiver.respond_with(200, headers={"X-Sentry-Rate-Limits": "1:feedback, 1:error"})
    sentry_init(cache_dir=str(cache))
    assert sentry_receiver.wait_for_envelopes(1, timeout=10)
    limited_at = time.monotonic()
    assert sentry_receiver.wait_for_envelopes(2, timeout=10)
    assert time.monotonic() - limited_at >= 0.5  # it waited for the limit (1 s) to end


def test_the_drain_backs_off_more_after_each_failure_and_starts_over_after_a_success(
    tmp_path: Path, sentry_init: Callable[..., sf.Client], faulty: Callable[..., FaultServer]
) -> None:
    cache = tmp_path / "cache"
    leftover(cache, 1, feedback_item("first"))
    leftover(cache, 2, feedback_item("second"))
    server = faulty([NOT_HTTP, NOT_HTTP, Forward(), NOT_HTTP], timed=True)
    sentry_init(dsn=server.dsn, cache_dir=str(cache), retry=sf.RetryPolicy(initial=0.5, maximum=10, jitter=0.0))
    assert server.wait_for_exchanges(5, timeout=10)
    assert [e.status for e in server.exchanges] == [None, None, 200, None, 200]
    # When the server had answered each attempt: the next one comes at least the delay later.
    gaps = [later - earlier for earlier, later in itertools.pairwise(server.times)]
    assert gaps[0] >= 0.5  # after the first failure
    assert 1.0 <= gaps[1] < 2.5  # twice as long after the second (not four times)
    assert 0.5 <= gaps[3] < 0.9  # delivered in between: the count started over
    assert sf.flush(5)
    assert cache_files(cache) == []


def test_a_failed_journal_recovery_does_not_stop_the_drain(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sentry_init: Callable[..., sf.Client],
    sentry_receiver: LocalReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = tmp_path / "cache"
    event_id = leftover(cache, 1, feedback_item("left behind"))

    def broken(self: object) -> int:
        raise RuntimeError("journal recovery failed")

    monkeypatch.setattr(_cache.EnvelopeCache, "recover_journals", broken)
    with caplog.at_level(logging.WARNING, logger="sentry_feedback"):
        sentry_init(cache_dir=str(cache))
        assert sentry_receiver.wait_for_envelopes(1, timeout=10)
    assert [fb.event_id for fb in sentry_receiver.store.list_feedback()] == [event_id]
    record = next(r for r in caplog.records if r.getMessage() == "could not recover the journals in the offline cache")
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


def test_a_retired_client_stops_draining(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    for i in range(3):
        leftover(cache, i, feedback_item(f"left behind {i}"))
    held = FirstSendHeld()
    before = set(threading.enumerate())
    sf.init(transport=MockTransport(held), cache_dir=str(cache))
    assert held.started.wait(10)
    workers = [t for t in threading.enumerate() if t not in before]
    sf.init()  # a client without a DSN takes over: the old one retires
    held.release.set()
    for thread in workers:
        thread.join(10)
        assert not thread.is_alive()
    assert len(held.sent) == 1  # the step under way finished; no other began
    assert len(cache_files(cache)) == 2  # for the next start


def test_flush_waits_for_the_backlog_while_the_server_answers(
    tmp_path: Path, sentry_init: Callable[..., sf.Client], sentry_receiver: LocalReceiver
) -> None:
    cache = tmp_path / "cache"
    backlog = [leftover(cache, i, feedback_item(f"backlog {i}")) for i in range(20)]
    sentry_init(cache_dir=str(cache))
    live = sf.send_feedback("live", timeout=10)  # answered: the server is there
    assert sf.flush(20)
    assert cache_files(cache) == []
    assert {fb.event_id for fb in sentry_receiver.store.list_feedback()} == {*backlog, live}


# -- a cache that cannot be written -----------------------------------------------------------------


def unusable_cache(tmp_path: Path, init: Callable[..., sf.Client], **options: Any) -> sf.Client:
    """A client whose cache directory is gone (removed after init): nothing can be written there."""
    cache = tmp_path / "cache"
    client = init(cache_dir=str(cache), **options)
    shutil.rmtree(cache)
    return client


def test_an_unusable_cache_does_not_stop_delivery(
    tmp_path: Path, sentry_init: Callable[..., sf.Client], sentry_receiver: LocalReceiver
) -> None:
    client = unusable_cache(tmp_path, sentry_init)
    event_id = sf.send_feedback("delivered anyway", timeout=10)
    sentry_receiver.respond_with(500)
    with pytest.raises(ServerError):
        sf.send_feedback("refused", timeout=10)
    assert [fb.event_id for fb in sentry_receiver.store.list_feedback()] == [event_id]
    assert client.client_reports.totals() == {("send_error", "feedback"): 1}


def test_an_unusable_cache_and_an_unreachable_server(
    tmp_path: Path, sentry_init: Callable[..., sf.Client], faulty: Callable[..., FaultServer]
) -> None:
    server = faulty([], then=NOT_HTTP)
    client = unusable_cache(tmp_path, sentry_init, dsn=server.dsn, retry=ONCE)
    with pytest.raises(NetworkError) as failed:
        sf.send_feedback("lost", timeout=10)
    assert str(failed.value) == NOT_HTTP_ERROR.format(port=server.port)  # not kept: there is no cache
    assert client.client_reports.totals() == {("network_error", "feedback"): 1}


def test_an_unusable_cache_and_a_transport_that_raises(tmp_path: Path) -> None:
    def broken(envelope: Envelope) -> None:
        raise Broken("boom")

    client = unusable_cache(tmp_path, lambda **options: sf.init(transport=MockTransport(broken), **options))
    with pytest.raises(FeedbackDroppedError) as dropped:
        sf.send_feedback("x", timeout=10)
    assert str(dropped.value) == "transport error: boom"
    assert client.client_reports.totals() == {("internal_sdk_error", "feedback"): 1}  # once


# -- a file that becomes unreadable while it is sent ------------------------------------------------


def shrinking_transport(path: Path, seen: list[list[str]], cache: Path | None) -> type[HttpTransport]:
    class Shrinking(HttpTransport):
        """Shrinks the attachment after it was checked, before it is read for sending; notes the cache."""

        def send(self, envelope: Envelope) -> TransportResponse | None:
            if cache is not None and "feedback" in item_types(envelope):
                files = [cache / name for name in cache_files(cache)]
                seen.append([t for f in files for t in item_types(Envelope.parse_file(str(f)))])
            if path.stat().st_size > 1000:
                os.truncate(path, 1000)
            return super().send(envelope)

    return Shrinking


@pytest.mark.parametrize("cached", [False, True], ids=["no-cache", "cache"])
def test_an_attachment_that_shrinks_while_sent_is_left_out_and_counted(
    tmp_path: Path, sentry_init: Callable[..., sf.Client], sentry_receiver: LocalReceiver, cached: bool
) -> None:
    path = tmp_path / "rotating.log"
    path.write_bytes(b"x" * (2 * 1024 * 1024))
    cache = tmp_path / "cache" if cached else None
    seen: list[list[str]] = []
    options: dict[str, Any] = {"cache_dir": str(cache)} if cache is not None else {}
    client = sentry_init(transport=shrinking_transport(path, seen, cache), **options)
    event_id = sf.send_feedback(
        "log rotated",
        attachments=[sf.Attachment(path=str(path)), sf.Attachment(ATTACHMENT, filename="small.txt")],
        timeout=30,
    )
    # (The first attempt was cut off halfway: the server saw a request it could not read.)
    [request] = [r for r in sentry_receiver.received if r.envelope is not None and r.envelope.event_id == event_id]
    assert item_types(request.envelope) == ["feedback", "attachment"]
    assert [fb.event_id for fb in sentry_receiver.store.list_feedback()] == [event_id]
    assert request.envelope.items[1].payload == ATTACHMENT
    assert client.client_reports.totals() == {("internal_sdk_error", "attachment"): 2 * 1024 * 1024}
    assert sf.flush(5)
    assert sentry_receiver.store.client_report_totals() == {("internal_sdk_error", "attachment"): 2 * 1024 * 1024}
    if cache is not None:
        # The cache file was rewritten to match what was sent the second time.
        assert seen == [["feedback", "attachment", "attachment"], ["feedback", "attachment"]]
        assert cache_files(cache) == []
