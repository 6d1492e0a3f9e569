"""Fork safety: forked, spawned and forkserver children against a real receiver on 127.0.0.1.

A forked child gets fresh locks, an empty queue and its own connection; what the parent
queued is the parent's to send. No test sleeps: children are awaited with a deadline
and killed (failing the test) when they hang, so a deadlock fails fast instead of
hanging the suite. Forked children always leave with ``os._exit``, never into pytest.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import select
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import sentry_feedback as sf
from forking import CHILD_TIMEOUT, fork_running, wait_exit
from sentry_feedback import Envelope, HttpTransport, TransportResponse
from sentry_feedback.server import LocalReceiver
from sentry_feedback.testing import MockTransport

Init = Callable[..., sf.Client]

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

# Python 3.12+ warns on every fork of a process with threads (the receiver and the SDK
# worker are threads): surviving exactly that is what these tests are about.
pytestmark = pytest.mark.filterwarnings("ignore:.*use of fork\\(\\) may lead to deadlocks:DeprecationWarning")


# -- helpers -----------------------------------------------------------------------------------


def _feedback_messages(receiver: LocalReceiver) -> list[str]:
    """The message of every feedback item the receiver was sent (duplicates included), sorted."""
    return sorted(
        item.get_json()["contexts"]["feedback"]["message"]
        for request in receiver.received
        if request.envelope is not None
        for item in request.envelope.items
        if item.type == "feedback"
    )


def _feedback_event_ids(receiver: LocalReceiver) -> list[str | None]:
    return [
        request.envelope.event_id
        for request in receiver.received
        if request.envelope is not None and request.envelope.items_of_type("feedback")
    ]


def _send_from_child(dsn: str | None, tag: str, count: int) -> None:
    """A child process: send ``count`` feedbacks and flush; exit 0 only if all went out.

    Module level so that spawn and forkserver can pickle it. With ``dsn`` the child inits
    the SDK itself (spawn, forkserver); without, it uses the client it inherited (fork).
    """
    code = 1
    try:
        if dsn is not None:
            sf.init(dsn)
        ids = [sf.capture_feedback(f"{tag} {i}") for i in range(count)]
        code = 0 if all(ids) and sf.flush(CHILD_TIMEOUT / 2) else 2
    finally:
        os._exit(code)


class _GatedHttpTransport(HttpTransport):
    """HTTP to the receiver; in the parent, the first send holds ``locks`` until ``release`` is set.

    Holding them on the worker thread while the main thread forks leaves them locked in the child.
    """

    locks: tuple[Any, ...] = ()
    parent_pid = 0
    holding = threading.Event()
    release = threading.Event()

    def send(self, envelope: Envelope) -> TransportResponse | None:
        if os.getpid() == self.parent_pid and not self.holding.is_set():
            for lock in self.locks:
                lock.acquire()
            try:
                self.holding.set()
                self.release.wait(CHILD_TIMEOUT * 2)
            finally:
                for lock in reversed(self.locks):
                    lock.release()
        return super().send(envelope)


@pytest.fixture
def gated_http(sentry_init: Init) -> Iterator[type[_GatedHttpTransport]]:
    """A fresh :class:`_GatedHttpTransport` subclass; its gate is released when the test ends.

    Depends on ``sentry_init`` so that the gate opens before the SDK is reset.
    """

    class Gated(_GatedHttpTransport):
        parent_pid = os.getpid()
        holding = threading.Event()
        release = threading.Event()

    yield Gated
    Gated.release.set()


# -- multiprocessing start methods -------------------------------------------------------------

START_METHODS = ["fork", "forkserver", "spawn"]


@pytest.mark.parametrize("method", START_METHODS)
def test_multiprocessing_children_each_send_their_own(
    method: str, sentry_init: Init, sentry_receiver: LocalReceiver
) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"start method {method!r} is not available here")
    ctx: Any = multiprocessing.get_context(method)
    sentry_init()
    assert sf.capture_feedback("from the parent") is not None
    assert sf.flush(5)  # the parent's worker thread runs and holds a keep-alive connection

    child_dsn = None if method == "fork" else sentry_receiver.dsn
    count = 5
    children = [
        ctx.Process(target=_send_from_child, args=(child_dsn, f"{method} child {n}", count), daemon=True)
        for n in range(2)
    ]
    for child in children:
        child.start()
    try:
        for child in children:
            child.join(CHILD_TIMEOUT)
            assert child.exitcode == 0, f"{child.name} exited with {child.exitcode}"
    finally:
        for child in children:
            if child.is_alive():
                child.kill()
                child.join()

    assert sf.capture_feedback("from the parent, after") is not None
    assert sf.flush(5)
    expected = sorted(
        ["from the parent", "from the parent, after"]
        + [f"{method} child {n} {i}" for n in range(2) for i in range(count)]
    )
    assert _feedback_messages(sentry_receiver) == expected  # each exactly once
    assert sorted(fb.message for fb in sentry_receiver.store.list_feedback()) == expected
    assert all(request.status == 200 for request in sentry_receiver.received)


# -- os.fork ----------------------------------------------------------------------------------


@needs_fork
def test_parent_queue_is_not_sent_by_the_child(sentry_receiver: LocalReceiver) -> None:
    parent_pid = os.getpid()
    gate = threading.Event()

    def hold_in_parent(envelope: Envelope) -> None:
        if os.getpid() == parent_pid:
            gate.wait(CHILD_TIMEOUT * 2)

    mock = MockTransport(hold_in_parent)
    sf.init(transport=mock)
    for i in range(3):
        assert sf.capture_feedback(f"parent {i}") is not None
    assert mock.wait_for(1)  # the worker is inside send for "parent 0"; "parent 1" and "parent 2" are queued
    inherited = sf.get_client()

    def child() -> int:
        seen_at_fork = len(mock.envelopes)
        # The inherited client has nothing queued: flushing it sends nothing, at once.
        if not inherited.flush(1) or len(mock.envelopes) != seen_at_fork:
            return 3
        sf.init(dsn=sentry_receiver.dsn)  # closes the inherited client without waiting
        if sf.capture_feedback("from the child") is None or not sf.flush(5):
            return 4
        return 0 if len(mock.envelopes) == seen_at_fork else 5

    try:
        pid = fork_running(child)
        assert wait_exit(pid) == 0
    finally:
        gate.set()
    assert sf.flush(5)
    assert sorted(fb["contexts"]["feedback"]["message"] for fb in mock.feedback) == ["parent 0", "parent 1", "parent 2"]
    assert len(mock.envelopes) == 3
    assert _feedback_messages(sentry_receiver) == ["from the child"]


@needs_fork
def test_no_deadlock_when_forking_while_the_worker_holds_locks(
    sentry_init: Init, sentry_receiver: LocalReceiver, gated_http: type[_GatedHttpTransport]
) -> None:
    client = sentry_init(transport=gated_http)
    dispatcher = client._dispatcher
    assert dispatcher is not None
    # The worker thread takes these in turn and keeps them while the main thread forks.
    gated_http.locks = (client.client_reports._lock, client.rate_limiter._lock, dispatcher._worker._cond)
    assert sf.capture_feedback("parent, held") is not None
    assert gated_http.holding.wait(5)

    def child() -> int:
        if sf.capture_feedback("") is not None:  # invalid: recorded as a client report
            return 3
        if client.client_reports.totals() != {("invalid", "feedback"): 1}:
            return 4  # the child starts with no counts of its own
        if sf.capture_feedback("from the child") is None or not sf.flush(5):
            return 5
        return 0 if not client.rate_limiter.is_any_limited() else 6

    try:
        pid = fork_running(child)
        assert wait_exit(pid) == 0
    finally:
        gated_http.release.set()
    assert sf.flush(5)
    assert _feedback_messages(sentry_receiver) == ["from the child", "parent, held"]
    # The child's report reached the server once; the parent recorded nothing itself.
    assert sentry_receiver.store.client_report_totals() == {("invalid", "feedback"): 1}
    assert client.client_reports.totals() == {}


@needs_fork
def test_child_does_not_resend_the_parents_pending_client_reports(
    sentry_init: Init, sentry_receiver: LocalReceiver
) -> None:
    client = sentry_init()
    assert sf.capture_feedback("") is None  # pending in the parent: ("invalid", "feedback")
    assert client.client_reports.has_pending()

    def child() -> int:
        if client.client_reports.has_pending() or client.client_reports.totals():
            return 3
        assert sf.capture_feedback("from the child") is not None
        return 0 if sf.flush(5) else 4

    assert wait_exit(fork_running(child)) == 0
    assert sf.flush(5)  # the parent sends its own report
    assert _feedback_messages(sentry_receiver) == ["from the child"]
    assert sentry_receiver.store.client_report_totals() == {("invalid", "feedback"): 1}


@needs_fork
def test_child_keeps_the_parents_rate_limits(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    client = sentry_init()
    sentry_receiver.respond_with(200, headers={"X-Sentry-Rate-Limits": "60:feedback"})
    assert sf.capture_feedback("limits the next ones") is not None
    assert sf.flush(5)
    assert client.rate_limiter.is_limited("feedback")

    def child() -> int:
        if not client.rate_limiter.is_limited("feedback"):
            return 3
        sf.capture_feedback("dropped in the child")  # rate limited: counted, not sent
        if not sf.flush(5):
            return 4
        return 0 if client.client_reports.totals() == {("ratelimit_backoff", "feedback"): 1} else 5

    assert wait_exit(fork_running(child)) == 0
    assert _feedback_messages(sentry_receiver) == ["limits the next ones"]


@needs_fork
def test_prefork_workers_each_send_over_their_own_connection(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    workers, per_worker = 4, 10
    sentry_init()
    assert sf.capture_feedback("from the master") is not None
    assert sf.flush(5)  # the master's worker thread runs and holds a keep-alive connection
    go_read, go_write = os.pipe()

    def worker(n: int) -> int:
        os.close(go_write)
        ready, _, _ = select.select([go_read], [], [], CHILD_TIMEOUT / 2)
        if not ready or os.read(go_read, 1) != b"g":
            return 3
        ids = [sf.capture_feedback(f"worker {n} request {i}") for i in range(per_worker)]
        return 0 if all(ids) and sf.flush(CHILD_TIMEOUT / 2) else 4

    pids: list[int] = []
    try:
        for n in range(workers):
            pids.append(fork_running(functools.partial(worker, n)))
        os.close(go_read)
        os.write(go_write, b"g" * workers)  # all workers start sending at once
    finally:
        os.close(go_write)
    assert [wait_exit(pid) for pid in pids] == [0] * workers

    expected = sorted(
        ["from the master"] + [f"worker {n} request {i}" for n in range(workers) for i in range(per_worker)]
    )
    assert _feedback_messages(sentry_receiver) == expected
    event_ids = _feedback_event_ids(sentry_receiver)
    assert len(event_ids) == len(set(event_ids)) == workers * per_worker + 1
    assert len(sentry_receiver.store.list_feedback()) == workers * per_worker + 1
    assert sentry_receiver.connections_opened >= workers + 1  # the master's, and each worker's own


@needs_fork
def test_closed_client_stays_closed_in_a_forked_child(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    client = sentry_init()
    assert client.close(5)
    assert not sf.is_enabled()

    def child() -> int:
        if sf.is_enabled() or client.is_active():
            return 3
        return 0 if sf.capture_feedback("after close, in the child") is None else 4

    assert wait_exit(fork_running(child)) == 0
    assert _feedback_messages(sentry_receiver) == []


# -- the connection pool at fork time --------------------------------------------------------


@needs_fork
def test_no_deadlock_when_forking_while_the_connection_pool_is_locked(
    sentry_init: Init, sentry_receiver: LocalReceiver
) -> None:
    client = sentry_init()
    assert sf.capture_feedback("from the parent") is not None
    assert sf.flush(5)
    transport = client.transport
    assert isinstance(transport, HttpTransport)
    # The queue of connections urllib3 keeps for the receiver: the worker thread locks it
    # for a moment on every send (to take out and put back the keep-alive connection).
    connections = transport._pool.connection_from_url(sentry_receiver.url).pool
    assert connections is not None
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        with connections.mutex:
            locked.set()
            release.wait(CHILD_TIMEOUT * 2)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    try:
        assert locked.wait(5)
        pid = fork_running(lambda: 0 if sf.capture_feedback("from the child") and sf.flush(5) else 3)
        code = wait_exit(pid, timeout=3)  # the child hangs inside os.fork(), before running any of its code
    finally:
        release.set()
        holder.join(5)
    assert code == 0
