"""Fault injection: every item is delivered exactly once or counted exactly once, and the caller never waits.

Each test sends the same known set (5 feedbacks, 3 of them with a small attachment, and
2 error events) at a misbehaving server (see :mod:`.servers`), then checks:

- the caller is never blocked: each capture returns an id within :data:`CAPTURE_BOUND`
  seconds, and ``flush(timeout)`` returns within ``timeout + 1`` seconds;
- the accounting invariant, per category: event ids stored by the well-behaved receiver
  (each stored once) plus the client's own counts (``client_reports.totals()``) equal
  what was sent; for attachments, the same in bytes. Items a server answers with 429
  are counted by the server, not by the SDK: they make up the difference there.

Faults: connection refused, unresolvable host, reset on accept, reset in the middle of
the body (small and multi-megabyte bodies), garbage answers (not HTTP, a bad status
line, a truncated 200), a server that never answers, 20 MB answer bodies (200 and 500),
4xx/5xx storms (with and without the offline cache), 429 with odd headers, flaky servers
(the first k requests fail), an unwritable and a full (EFBIG) cache directory, and an
outage across a restart with the offline cache (end to end, counted by the server).
"""

from __future__ import annotations

import errno
import json
import os
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import sentry_feedback as sf
from sentry_feedback import Client, Envelope
from sentry_feedback.server import LocalReceiver

from .conftest import MakeFaultServer
from .servers import (
    Exchange,
    Fault,
    FaultServer,
    Forward,
    Garbage,
    Hang,
    HugeBody,
    RefusedPort,
    ResetMidBody,
    ResetOnAccept,
    Respond,
)

RETRY = sf.RetryPolicy(max_attempts=3, initial=0.01, maximum=0.05)
HTTP_TIMEOUT = 0.5
#: A capture must return within this many seconds: a "never waits for the network" check, not a benchmark.
CAPTURE_BOUND = 0.5
FLUSH_TIMEOUT = 5.0
FEEDBACKS = 5
ERRORS = 2
#: Feedback ``i`` carries an attachment of ``ATTACHMENTS[i]`` bytes.
ATTACHMENTS = {0: 64, 2: 700, 4: 3000}
UNRESOLVABLE_DSN = "http://public@sentry-feedback-test.invalid:9/1"
CATEGORIES = ("feedback", "error", "attachment")


# -- sending and accounting -----------------------------------------------------------------------


@dataclass
class Sent:
    """What a test captured: event ids by category and attachment bytes by event id."""

    feedback: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    attachment_bytes: dict[str, int] = field(default_factory=dict)

    def amounts(self) -> Counter[str]:
        return Counter(
            {
                "feedback": len(self.feedback),
                "error": len(self.errors),
                "attachment": sum(self.attachment_bytes.values()),
            }
        )


def init(dsn: str, **options: object) -> Client:
    """``sf.init`` with fast retries, a short HTTP timeout and never a proxy."""
    defaults: dict[str, object] = {
        "retry": RETRY,
        "http_timeout": HTTP_TIMEOUT,
        "http_proxy": "",
        "https_proxy": "",
        "default_integrations": False,  # nothing but what the test captures
        "shutdown_timeout": 1.0,
    }
    return sf.init(dsn, **{**defaults, **options})


def timed(call: Callable[[], str | None]) -> str:
    """Run one capture; it must return an id, quickly."""
    start = time.monotonic()
    event_id = call()
    elapsed = time.monotonic() - start
    assert event_id is not None, "the capture was dropped"
    assert elapsed < CAPTURE_BOUND, f"a capture blocked the caller for {elapsed:.3f} s"
    return event_id


def capture_feedback(sent: Sent, message: str, attachment_size: int | None = None) -> str:
    attachments = [sf.Attachment(os.urandom(attachment_size), filename="log.bin")] if attachment_size else []
    event_id = timed(lambda: sf.capture_feedback(message, email="jane@example.com", attachments=attachments))
    sent.feedback.append(event_id)
    if attachment_size:
        sent.attachment_bytes[event_id] = attachment_size
    return event_id


def send_known_set() -> Sent:
    """5 feedbacks (3 with an attachment) and 2 error events."""
    sent = Sent()
    for i in range(FEEDBACKS):
        capture_feedback(sent, f"feedback {i}", ATTACHMENTS.get(i))
    for i in range(ERRORS):
        message = f"error {i}"
        sent.errors.append(timed(lambda: sf.capture_message(message, level="error")))  # noqa: B023 - called at once
    return sent


def flush(client: Client, timeout: float = FLUSH_TIMEOUT) -> bool:
    """``client.flush(timeout)``, which must return within ``timeout + 1`` seconds."""
    start = time.monotonic()
    flushed = client.flush(timeout)
    elapsed = time.monotonic() - start
    assert elapsed < timeout + 1.0, f"flush({timeout}) blocked for {elapsed:.2f} s"
    return flushed


def finish(client: Client, timeout: float = 1.0) -> None:
    """Close the client (bounded like flush) and wait for its worker to finish what it was doing."""
    start = time.monotonic()
    client.close(timeout)
    elapsed = time.monotonic() - start
    assert elapsed < timeout + 1.0, f"close({timeout}) blocked for {elapsed:.2f} s"
    for thread in threading.enumerate():
        if thread.name == "sentry_feedback.worker":
            thread.join(HTTP_TIMEOUT * 4 + 5.0)
            assert not thread.is_alive(), "the SDK worker kept running after close"


def counted(client: Client) -> Counter[str]:
    """The client's counts of dropped items by category, over all reasons."""
    totals: Counter[str] = Counter()
    for (_, category), quantity in client.client_reports.totals().items():
        totals[category] += quantity
    return totals


def reasons(client: Client) -> set[str]:
    return {reason for reason, _ in client.client_reports.totals()}


def items_in(envelopes: Iterable[Envelope | None]) -> Counter[str]:
    """Items by category in ``envelopes`` (attachments in bytes), client reports left out."""
    amounts: Counter[str] = Counter()
    for envelope in envelopes:
        assert envelope is not None, "the fault server could not parse an envelope it answered"
        for item in envelope.items:
            if item.type != "client_report":
                amounts[item.data_category] += len(item.payload) if item.type == "attachment" else 1
    return amounts


def answered(server: FaultServer, predicate: Callable[[Exchange], bool]) -> list[Exchange]:
    return [exchange for exchange in server.exchanges if predicate(exchange)]


def seen_event_ids(server: FaultServer) -> Counter[str]:
    """How often each event id reached the fault server (whole bodies only)."""
    return Counter(x.envelope.event_id for x in server.exchanges if x.envelope is not None and x.envelope.event_id)


@dataclass
class Delivered:
    feedback: set[str]
    errors: set[str]
    attachment_bytes: int

    def amounts(self) -> Counter[str]:
        return Counter({"feedback": len(self.feedback), "error": len(self.errors), "attachment": self.attachment_bytes})


def delivered(receiver: LocalReceiver | None, sent: Sent) -> Delivered:
    """What the well-behaved receiver stored, checking nothing was stored twice or partially."""
    if receiver is None:
        return Delivered(set(), set(), 0)
    store = receiver.store
    feedback = [f.event_id for f in store.list_feedback()]
    errors = [e.event_id for e in store.list_events()]
    envelope_ids = Counter(e.event_id for e in store.list_envelopes() if e.event_id)
    assert not [i for i, n in envelope_ids.items() if n > 1], f"event ids stored twice: {envelope_ids}"
    assert len(set(feedback)) == len(feedback) and len(set(errors)) == len(errors)
    assert set(feedback) <= set(sent.feedback), "the receiver stored feedback nobody sent"
    assert set(errors) <= set(sent.errors), "the receiver stored errors nobody sent"
    attachment_bytes = 0
    for event_id in feedback:
        stored = sum(a.size for a in store.list_attachments(event_id))
        assert stored == sent.attachment_bytes.get(event_id, 0), f"feedback {event_id} arrived without its attachment"
        attachment_bytes += stored
    return Delivered(set(feedback), set(errors), attachment_bytes)


def assert_accounted(
    sent: Sent,
    client: Client,
    receiver: LocalReceiver | None,
    *,
    allowed_reasons: set[str],
    rejected: Counter[str] | None = None,
) -> tuple[Delivered, Counter[str]]:
    """delivered + counted (+ rejected by a 429, which the server counts) == sent, per category."""
    got = delivered(receiver, sent)
    drops = counted(client)
    assert reasons(client) <= allowed_reasons, client.client_reports.totals()
    assert set(drops) <= set(CATEGORIES), client.client_reports.totals()
    expected = sent.amounts()
    rejected = rejected or Counter()
    for category in CATEGORIES:
        total = got.amounts()[category] + drops[category] + rejected[category]
        assert total == expected[category], (
            f"{category}: delivered {got.amounts()[category]} + counted {drops[category]}"
            f" + rejected with 429 {rejected[category]} != sent {expected[category]}"
            f" (client reports: {client.client_reports.totals()})"
        )
    return got, drops


# -- network faults: retried, then counted as network_error ----------------------------------------

NOT_HTTP = b"\x00\xff\xfeSSH-2.0-definitely-not-http\r\n\r\n"
BAD_STATUS_LINE = b"HTTP/1.1 OK-ish\r\n\r\n"
TRUNCATED_200 = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"id":'

NETWORK_FAULTS: dict[str, Fault | None] = {
    "refused": None,
    "unresolvable-host": None,
    "reset-on-accept": ResetOnAccept(),
    "reset-mid-body": ResetMidBody(),
    "garbage-not-http": Garbage(NOT_HTTP),
    "garbage-bad-status-line": Garbage(BAD_STATUS_LINE),
    "garbage-truncated-200": Garbage(TRUNCATED_200),
}


@pytest.mark.parametrize("fault", list(NETWORK_FAULTS))
def test_network_fault_is_retried_then_counted_once(
    fault: str,
    fault_server: MakeFaultServer,
    refused_port: RefusedPort,
    receiver: LocalReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server: FaultServer | None = None
    if fault == "refused":
        dsn = refused_port.dsn
    elif fault == "unresolvable-host":
        dsn = UNRESOLVABLE_DSN
        # The name is made unresolvable at the OS boundary: a real lookup would send a DNS query
        # to the machine's resolver, which is not on the loopback network.
        real_getaddrinfo = socket.getaddrinfo

        def getaddrinfo(host: object, *args: Any, **kwargs: Any) -> Any:
            if isinstance(host, str) and host.endswith(".invalid"):
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    else:
        server = fault_server(then=NETWORK_FAULTS[fault])
        dsn = server.dsn
    client = init(dsn)
    start = time.monotonic()
    sent = send_known_set()
    assert flush(client), "retries of a network error must end within the flush timeout"
    finish(client)
    elapsed = time.monotonic() - start

    _, drops = assert_accounted(sent, client, receiver, allowed_reasons={"network_error"})
    assert drops == sent.amounts()  # nothing delivered: every item counted once
    if server is not None:
        exchanges = server.exchanges
        assert exchanges and all(x.fault == NETWORK_FAULTS[fault] for x in exchanges)
        if isinstance(NETWORK_FAULTS[fault], Garbage):  # the whole body was read: check the attempts
            seen = seen_event_ids(server)
            assert set(seen) == {*sent.feedback, *sent.errors}
            assert set(seen.values()) == {RETRY.max_attempts}, seen
    assert elapsed < FLUSH_TIMEOUT + 2.0


def test_server_that_never_answers_is_bounded_by_http_timeout(
    fault_server: MakeFaultServer, receiver: LocalReceiver
) -> None:
    """Accepts, reads the head, never answers: each attempt ends at ``http_timeout``; flush and close stay bounded."""
    server = fault_server(then=Hang())
    client = init(server.dsn)
    sent = send_known_set()
    start = time.monotonic()
    assert not flush(client, 1.0), "nothing can have been handled: every attempt waits for http_timeout"
    assert time.monotonic() - start >= 1.0
    # The first attempt gave up after http_timeout (0.5 s) and the next one started: not stuck on one socket.
    assert len(server.exchanges) >= 2
    finish(client, 0.0)  # what is queued or waiting for a retry is counted at once; the attempt in flight ends
    _, drops = assert_accounted(sent, client, receiver, allowed_reasons={"network_error"})
    assert drops == sent.amounts()
    assert server.exchanges and all(isinstance(x.fault, Hang) for x in server.exchanges)


# -- flaky: the first k requests fail, then the server behaves -------------------------------------

#: case -> (the faults of the first requests, whether every item must be delivered)
FLAKY: dict[str, tuple[list[Fault], bool]] = {
    "reset-on-accept-x2": ([ResetOnAccept()] * 2, True),
    "reset-mid-body-x2": ([ResetMidBody()] * 2, True),
    "garbage-x2": ([Garbage(NOT_HTTP)] * 2, True),
    "hang-x1": ([Hang()], True),
    "mixed-x2": ([ResetMidBody(), Garbage(BAD_STATUS_LINE)], True),
    # More failures than attempts per envelope: which envelope runs out depends on timing.
    "reset-on-accept-x6": ([ResetOnAccept()] * 6, False),
}


@pytest.mark.parametrize("case", list(FLAKY))
def test_flaky_server_retries_deliver(case: str, fault_server: MakeFaultServer, receiver: LocalReceiver) -> None:
    faults, all_delivered = FLAKY[case]
    server = fault_server(faults)
    client = init(server.dsn)
    sent = send_known_set()
    assert flush(client)
    finish(client)

    got, drops = assert_accounted(sent, client, receiver, allowed_reasons={"network_error"})
    if all_delivered:  # fewer failures in all than attempts per envelope: nothing can be lost
        assert not drops, client.client_reports.totals()
        assert got.amounts() == sent.amounts()
    assert [x.fault for x in server.exchanges[: len(faults)]] == faults
    assert all(isinstance(x.fault, Forward) for x in server.exchanges[len(faults) :])


# -- final answers: 4xx and 5xx are counted as send_error, never retried ---------------------------

STATUS_CASES = {
    "503-storm-x3": [Respond(503, body=b"busy")] * 3,
    "502-storm-x6": [Respond(502)] * 6,
    "500-always": [Respond(500, body=b'{"detail":"boom"}')] * 20,
    "413-always": [Respond(413)] * 20,
    "400-x2": [Respond(400, body=b"bad envelope")] * 2,
    "odd-status-599": [Respond(599)] * 3,
}


@pytest.mark.parametrize("case", list(STATUS_CASES))
def test_error_status_is_counted_once_and_not_retried(
    case: str, fault_server: MakeFaultServer, receiver: LocalReceiver
) -> None:
    server = fault_server(STATUS_CASES[case])
    client = init(server.dsn)
    sent = send_known_set()
    assert flush(client)
    client_totals_after_flush = client.client_reports.totals()
    finish(client)

    failed = answered(server, lambda x: isinstance(x.fault, Respond))
    got, drops = assert_accounted(sent, client, receiver, allowed_reasons={"send_error"})
    # Exactly the items the server refused are counted: not one more, not one less.
    assert drops == items_in(x.envelope for x in failed if x.envelope is not None and x.envelope.event_id)
    assert set(seen_event_ids(server).values()) <= {1}, "a final answer must not be retried"
    if got.feedback or got.errors:
        # The server came back: the counts reached it too, once (a report on a refused envelope is kept).
        assert receiver.store.client_report_totals() == client_totals_after_flush


def test_503_storm_with_cache_leaves_the_cache_empty(
    fault_server: MakeFaultServer, receiver: LocalReceiver, tmp_path: Path
) -> None:
    cache_dir = tmp_path / "cache"
    server = fault_server([Respond(503)] * 3)
    client = init(server.dsn, cache_dir=str(cache_dir))
    sent = send_known_set()
    assert flush(client)
    left = sorted(p.name for p in cache_dir.iterdir() if p.name.endswith((".envelope", ".sending")))
    assert not left, f"503 is a final answer: its cached file must be removed, found {left}"
    finish(client)

    got, drops = assert_accounted(sent, client, receiver, allowed_reasons={"send_error"})
    assert drops == items_in(x.envelope for x in answered(server, lambda x: x.status == 503))
    assert drops["feedback"] + drops["error"] == 3
    assert len(got.feedback) + len(got.errors) == FEEDBACKS + ERRORS - 3
    assert not kept_in(cache_dir), "close() must not leave envelopes in the cache either"


# -- huge answers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [
        pytest.param(HugeBody(200, forward=True), "delivered", id="200-with-20MB-body"),
        pytest.param(HugeBody(500), "send_error", id="500-with-20MB-body"),
    ],
)
def test_huge_answer_body(
    fault: HugeBody, outcome: str, fault_server: MakeFaultServer, receiver: LocalReceiver
) -> None:
    server = fault_server(then=fault)
    client = init(server.dsn)
    sent = send_known_set()
    assert flush(client, 10.0)
    finish(client)

    got, drops = assert_accounted(sent, client, receiver, allowed_reasons={"send_error"})
    if outcome == "delivered":
        assert got.amounts() == sent.amounts() and not drops
    else:
        assert drops == sent.amounts() and not got.feedback and not got.errors
    assert set(seen_event_ids(server).values()) == {1}


# -- 429 with odd headers -------------------------------------------------------------------------

HUGE = "9" * 400  # float() makes it infinity
ALL_LIMITED = frozenset(CATEGORIES)

#: case -> (the 429 answer, the categories it leaves limited)
RATE_LIMITED: dict[str, tuple[Respond, frozenset[str]]] = {
    # An X-Sentry-Rate-Limits header wins over Retry-After and the 60 s default even when none of its
    # limits parses (as in Sentry's Python and JavaScript SDKs): no limit at all.
    "rate-limits-garbage": (Respond(429, (("X-Sentry-Rate-Limits", "garbage"),)), frozenset()),
    "retry-after-soon": (Respond(429, (("Retry-After", "soon"),)), ALL_LIMITED),  # unreadable: 60 s
    "retry-after-huge": (Respond(429, (("Retry-After", HUGE),)), ALL_LIMITED),  # infinite: 60 s
    "retry-after-1e308": (Respond(429, (("Retry-After", "1e308"),)), ALL_LIMITED),
    # An infinite limit is left out (the error one here); the finite 1e308 s one applies.
    "rate-limits-huge": (
        Respond(429, (("X-Sentry-Rate-Limits", f"{HUGE}:error, 1e308:feedback;attachment:organization:quota"),)),
        frozenset({"feedback", "attachment"}),
    ),
    "empty-no-headers": (Respond(429), ALL_LIMITED),  # 60 s for everything
}


def _event_categories(envelope: Envelope | None) -> set[str]:
    assert envelope is not None
    return {item.data_category for item in envelope.items if item.type in ("feedback", "event")}


@pytest.mark.parametrize("case", list(RATE_LIMITED))
def test_429_is_dropped_uncounted_then_limits(
    case: str, fault_server: MakeFaultServer, receiver: LocalReceiver
) -> None:
    """429: the server counts what it refused, the SDK does not; what is sent during the limit is counted."""
    fault, limited = RATE_LIMITED[case]
    server = fault_server(then=fault)
    client = init(server.dsn)
    sent = send_known_set()
    assert flush(client)
    late = capture_feedback(sent, "sent during the limit", 10)
    assert flush(client)
    finish(client)

    assert all(x.envelope is not None for x in server.exchanges)
    # Client-report-only envelopes (no event id) may reach the server too, when "internal" is not limited.
    refused = [x for x in server.exchanges if x.envelope is not None and x.envelope.event_id]
    rejected = items_in(x.envelope for x in refused)
    got, drops = assert_accounted(sent, client, receiver, allowed_reasons={"ratelimit_backoff"}, rejected=rejected)
    assert not got.feedback and not got.errors
    assert refused, "the first envelope reached the server"

    limiter = client.rate_limiter
    assert {c for c in CATEGORIES if limiter.is_limited(c)} == limited, limiter.snapshot()
    assert bool(limiter.snapshot()) == bool(limited)
    # After the first 429, envelopes of a limited category never reach the server again: counted instead.
    assert len([x for x in refused if _event_categories(x.envelope) & limited]) <= 1
    for category in ("feedback", "error"):
        if category in limited:
            assert drops[category] == sent.amounts()[category] - rejected[category] >= len(sent.errors) - 1
        else:
            assert drops[category] == 0 and rejected[category] == sent.amounts()[category]
    late_seen = seen_event_ids(server)[late]
    assert late_seen == (0 if "feedback" in limited else 1)
    if limited == ALL_LIMITED:
        assert len(refused) == 1


# -- the offline cache ----------------------------------------------------------------------------


def _unwritable_cache_dir(tmp_path: Path, how: str) -> str:
    if how == "parent-is-a-file":
        parent = tmp_path / "not-a-directory"
        parent.write_bytes(b"a regular file")
        return str(parent / "cache")
    cache_dir = tmp_path / "read-only"
    cache_dir.mkdir()
    cache_dir.chmod(stat.S_IRUSR | stat.S_IXUSR)  # 0o500
    probe = cache_dir / "probe"
    try:
        probe.write_bytes(b"")
    except PermissionError:
        return str(cache_dir)
    probe.unlink()
    cache_dir.chmod(0o700)
    # Root ignores permissions; a directory of /proc refuses new files even to root.
    if os.path.isdir("/proc/self") and not os.access("/proc/self/probe", os.F_OK):
        return "/proc/self"
    pytest.skip("this process can write into a 0o500 directory (root ignores permissions) and has no /proc")


@pytest.mark.parametrize("how", ["parent-is-a-file", "chmod-0500"])
def test_unwritable_cache_dir_still_sends(
    how: str, fault_server: MakeFaultServer, receiver: LocalReceiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache_dir = _unwritable_cache_dir(tmp_path, how)
    try:
        caplog.set_level("WARNING", logger="sentry_feedback")
        server = fault_server()
        client = init(server.dsn, cache_dir=cache_dir)
        sent = send_known_set()
        assert flush(client)
        finish(client)
    finally:
        if how == "chmod-0500" and cache_dir != "/proc/self":
            Path(cache_dir).chmod(0o700)
    got, drops = assert_accounted(sent, client, receiver, allowed_reasons=set())
    assert got.amounts() == sent.amounts() and not drops
    warnings = [r.getMessage() for r in caplog.records if r.levelname in ("WARNING", "ERROR")]
    assert any("cache" in message for message in warnings), warnings


FULL_DISK_CHILD = textwrap.dedent(
    """
    import errno, json, logging, os, resource, signal, sys, threading, time

    dsn, cache_dir, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.makedirs(cache_dir, exist_ok=True)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    probe_errno = None
    try:
        with open(os.path.join(cache_dir, "probe"), "wb") as fh:
            fh.write(b"x" * (limit + 1))
    except OSError as exc:
        probe_errno = exc.errno
    os.unlink(os.path.join(cache_dir, "probe"))

    import sentry_feedback as sf

    warnings = []

    class Collect(logging.Handler):
        def emit(self, record):
            warnings.append(record.getMessage())

    logging.getLogger("sentry_feedback").addHandler(Collect(logging.WARNING))
    client = sf.init(
        dsn, cache_dir=cache_dir, http_timeout=0.5, http_proxy="", https_proxy="", default_integrations=False,
        retry=sf.RetryPolicy(max_attempts=3, initial=0.01, maximum=0.05),
    )
    sent = {"feedback": 0, "error": 0, "attachment": 0}
    slowest = 0.0
    for i in range(5):
        size = {0: 64, 2: 700, 4: 3000}.get(i)
        attachments = [sf.Attachment(os.urandom(size), filename="log.bin")] if size else []
        start = time.monotonic()
        assert sf.capture_feedback(f"feedback {i}", attachments=attachments) is not None
        slowest = max(slowest, time.monotonic() - start)
        sent["feedback"] += 1
        sent["attachment"] += size or 0
    for i in range(2):
        start = time.monotonic()
        assert sf.capture_message(f"error {i}", level="error") is not None
        slowest = max(slowest, time.monotonic() - start)
        sent["error"] += 1
    start = time.monotonic()
    flushed = client.flush(5.0)
    flush_seconds = time.monotonic() - start
    client.close(1.0)
    for thread in threading.enumerate():
        if thread.name == "sentry_feedback.worker":
            thread.join(10)
    kept = {"feedback": 0, "error": 0, "attachment": 0}
    for name in os.listdir(cache_dir):
        if name.endswith((".envelope", ".sending")):
            with open(os.path.join(cache_dir, name), "rb") as fh:
                for item in sf.Envelope.parse(fh.read()).items:
                    if item.type != "client_report":
                        kept[item.data_category] += len(item.payload) if item.type == "attachment" else 1
    counted = {}
    for (reason, category), quantity in client.client_reports.totals().items():
        counted.setdefault(reason, {})[category] = quantity
    print(json.dumps({
        "probe_errno": probe_errno, "sent": sent, "kept": kept, "counted": counted, "flushed": flushed,
        "flush_seconds": flush_seconds, "slowest_capture": slowest, "warnings": warnings,
    }))
    """
)


def test_full_cache_dir_in_a_subprocess(refused_port: RefusedPort, tmp_path: Path) -> None:
    """Cache writes fail with EFBIG (RLIMIT_FSIZE) and the server refuses: counted or kept, never raised."""
    cache_dir = tmp_path / "cache"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", FULL_DISK_CHILD, refused_port.dsn, str(cache_dir), "256"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["probe_errno"] == errno.EFBIG, result
    assert result["slowest_capture"] < CAPTURE_BOUND, result
    assert result["flushed"] and result["flush_seconds"] < FLUSH_TIMEOUT + 1.0, result
    assert set(result["counted"]) <= {"network_error"}, result
    counts = result["counted"].get("network_error", {})
    for category in CATEGORIES:
        total = counts.get(category, 0) + result["kept"][category]
        assert total == result["sent"][category], (category, result)
    assert any("could not write envelope" in w for w in result["warnings"]), result["warnings"]


# -- the offline cache across a restart: what one process could not send, the next one sends ---------


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Wait for a condition the SDK gives no event for (the background drain of the cache)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def cached_files(cache_dir: Path) -> list[Path]:
    return sorted(p for p in cache_dir.iterdir() if p.name.endswith((".envelope", ".sending")))


def kept_in(cache_dir: Path) -> Counter[str]:
    """Items kept in the cache's files, by category (attachments in bytes)."""
    return items_in(Envelope.parse(p.read_bytes()) for p in cached_files(cache_dir))


@pytest.mark.parametrize(
    ("down", "max_cache_items"),
    [
        pytest.param("refused", 100, id="refused"),
        pytest.param("hang", 100, id="hang-closed-mid-attempt"),
        pytest.param("refused", 3, id="refused-cache-overflow"),
    ],
)
def test_cache_survives_an_outage_and_the_next_start_sends_it(
    down: str,
    max_cache_items: int,
    fault_server: MakeFaultServer,
    refused_port: RefusedPort,
    receiver: LocalReceiver,
    tmp_path: Path,
) -> None:
    """End to end: items are delivered once or reported once to the server, across a restart."""
    cache_dir = tmp_path / "cache"
    dsn = refused_port.dsn if down == "refused" else fault_server(then=Hang()).dsn
    first = init(dsn, cache_dir=str(cache_dir), max_cache_items=max_cache_items)
    sent = send_known_set()
    if down == "hang":
        assert not flush(first, 1.0)
        finish(first, 0.0)  # queued, waiting and in-flight envelopes all go to the cache
    else:
        assert flush(first)
        finish(first)
    kept = kept_in(cache_dir)
    # In the cache nothing is counted yet, but what the cache had to evict is.
    assert reasons(first) <= {"cache_overflow"}, first.client_reports.totals()
    assert kept + counted(first) == sent.amounts(), (kept, first.client_reports.totals())
    assert len([p for p in cached_files(cache_dir) if p.name.endswith(".sending")]) == 0

    # The server is back: the next start drains the cache in the background.
    server = fault_server()
    second = init(server.dsn, cache_dir=str(cache_dir), max_cache_items=max_cache_items)
    assert wait_until(lambda: not cached_files(cache_dir)), cached_files(cache_dir)
    assert flush(second)
    finish(second)

    got = delivered(receiver, sent)
    reported: Counter[str] = Counter()
    for (_, category), quantity in receiver.store.client_report_totals().items():
        reported[category] += quantity
    assert got.amounts() == kept
    for category in CATEGORIES:
        assert got.amounts()[category] + reported[category] == sent.amounts()[category], (
            category,
            got.amounts(),
            receiver.store.client_report_totals(),
            first.client_reports.totals(),
        )


def test_reset_while_the_client_is_still_sending(fault_server: MakeFaultServer, receiver: LocalReceiver) -> None:
    """Large incompressible attachments: the reset arrives while the body is still being written."""
    server = fault_server([ResetMidBody()] * 2)
    client = init(server.dsn)
    sent = Sent()
    for i in range(3):
        capture_feedback(sent, f"big {i}", 4 * 1024 * 1024)
    assert flush(client, 10.0)
    finish(client)
    got, drops = assert_accounted(sent, client, receiver, allowed_reasons={"network_error"})
    assert got.amounts() == sent.amounts() and not drops
    assert [type(x.fault) for x in server.exchanges[:2]] == [ResetMidBody, ResetMidBody]


def test_reinit_during_an_outage_keeps_the_counts(fault_server: MakeFaultServer, receiver: LocalReceiver) -> None:
    failing = fault_server(then=Respond(503))
    first = init(failing.dsn)
    sent = send_known_set()
    assert wait_until(lambda: sum(counted(first).values()) == sum(sent.amounts().values()))
    good = fault_server()
    second = init(good.dsn)  # retires `first`, which could not send its client report yet
    assert flush(second)
    finish(second)
    assert counted(first) == sent.amounts()
    reported: Counter[str] = Counter()
    for (_, category), quantity in receiver.store.client_report_totals().items():
        reported[category] += quantity
    assert reported == sent.amounts(), (receiver.store.client_report_totals(), first.client_reports.totals())
