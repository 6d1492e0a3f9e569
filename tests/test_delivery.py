"""Retries, the offline cache, its drain, shutdown accounting and Spotlight."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import sentry_feedback as sf
from sentry_feedback.server import LocalReceiver
from sentry_feedback.testing import MockTransport

FAST = sf.RetryPolicy(max_attempts=3, initial=0.01, maximum=0.02)
ONCE = sf.RetryPolicy(max_attempts=1)


def closed_port_dsn() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://public@127.0.0.1:{port}/1"


def cache_files(directory: Path) -> list[str]:
    """Every file of an envelope in the cache, whatever its state.

    Free (``<key>.envelope``), claimed by a process that is sending it
    (``<key>.envelope.<pid>.sending``) or being written (``.<key>.envelope.<pid>.tmp``); not
    the journals or the ``corrupt/`` directory.
    """
    return sorted(p.name for p in directory.iterdir() if p.is_file() and ".envelope" in p.name)


def free_cache_files(directory: Path) -> list[str]:
    """The envelope files of the cache that wait to be sent (claimed by no process)."""
    return [name for name in cache_files(directory) if name.endswith(".envelope") and not name.startswith(".")]


def test_retry_policy_backs_off_exponentially_with_bounded_jitter() -> None:
    policy = sf.RetryPolicy(initial=1.0, maximum=5.0, jitter=0.25)
    for attempt, base in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (10, 5.0)):
        for _ in range(50):
            assert base * 0.75 <= policy.delay(attempt) <= base * 1.25
    assert sf.RetryPolicy(jitter=0.0).delay(3) == 4.0
    with pytest.raises(ValueError, match="max_attempts"):
        sf.RetryPolicy(max_attempts=0)


def test_network_errors_are_retried_then_delivered() -> None:
    failures = [2]

    def flaky(envelope: sf.Envelope) -> None:
        if failures[0] > 0:
            failures[0] -= 1
            raise sf.TransportError("connection reset")

    transport = MockTransport(flaky)
    client = sf.init(transport=transport, retry=FAST)
    event_id = sf.send_feedback("third time lucky", timeout=5)
    assert [e.event_id for e in transport.envelopes] == [event_id] * 3
    assert client.client_reports.totals() == {}


def test_retries_do_not_block_other_envelopes() -> None:
    down = {"first"}

    def handler(envelope: sf.Envelope) -> None:
        message = envelope.items[0].get_json()["contexts"]["feedback"]["message"]
        if message in down:
            down.clear()
            raise sf.TransportError("refused")

    transport = MockTransport(handler)
    sf.init(transport=transport, retry=sf.RetryPolicy(max_attempts=2, initial=0.2, jitter=0.0))
    sf.capture_feedback("first")
    sf.capture_feedback("second")
    assert sf.flush(5)
    sent = [e.items[0].get_json()["contexts"]["feedback"]["message"] for e in transport.envelopes]
    assert sent == ["first", "second", "first"]  # the retry waited; the second went meanwhile


def test_cache_keeps_envelopes_while_the_server_is_down_and_drains_at_next_start(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    dsn = closed_port_dsn()
    client = sf.init(dsn, cache_dir=str(cache), retry=ONCE, http_timeout=1)
    ids = [
        sf.capture_feedback(f"offline {i}", attachments=[sf.Attachment(b"x" * 100, filename="a.txt")]) for i in range(3)
    ]
    assert sf.flush(5)
    assert len(cache_files(cache)) == 3
    assert client.client_reports.totals() == {}  # nothing lost: it is all on disk
    sf.close(1)

    with LocalReceiver() as receiver:
        sf.init(receiver.dsn, cache_dir=str(cache))
        assert receiver.wait_for_envelopes(3, timeout=10)
        stored = {fb.event_id for fb in receiver.store.list_feedback()}
        assert stored == set(ids)
        assert all(len(receiver.store.list_attachments(i)) == 1 for i in ids if i)
        sf.close(5)
        assert cache_files(cache) == []
        assert len(receiver.received) == 3  # each sent once


def test_flush_after_a_restart_waits_for_the_whole_cache(tmp_path: Path) -> None:
    """A process that starts, flushes and exits delivers everything earlier runs left in the cache."""
    cache = tmp_path / "cache"
    sf.init(closed_port_dsn(), cache_dir=str(cache), retry=ONCE, http_timeout=1)
    ids = [sf.capture_feedback(f"left behind {i}") for i in range(20)]
    assert sf.flush(10)
    sf.close(1)
    assert len(cache_files(cache)) == 20
    with LocalReceiver() as receiver:
        code = (
            f"import sentry_feedback as sf\nsf.init({receiver.dsn!r}, cache_dir={str(cache)!r})\nprint(sf.flush(20))\n"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "True"
        assert {fb.event_id for fb in receiver.store.list_feedback()} == set(ids)  # 20 of 20, each once
        assert len(receiver.received) == 20
    assert cache_files(cache) == []


def test_flush_does_not_wait_for_the_cache_while_the_server_is_down(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    sf.init(closed_port_dsn(), cache_dir=str(cache), retry=ONCE, http_timeout=1)
    for i in range(3):
        sf.capture_feedback(f"kept {i}")
    assert sf.flush(5)  # handled: on disk, for the drain
    sf.close(1)
    sf.init(closed_port_dsn(), cache_dir=str(cache), retry=ONCE, http_timeout=1)
    assert sf.flush(30)  # one failed attempt of the drain ends the wait; the files stay
    assert len(cache_files(cache)) == 3
    sf.close(1)


def test_cache_files_are_removed_on_any_final_answer(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with LocalReceiver() as receiver:
        receiver.respond_with(500)
        receiver.respond_with(413)
        receiver.respond_with(429, headers={"Retry-After": "1"})
        client = sf.init(receiver.dsn, cache_dir=str(cache))
        for i in range(3):
            sf.capture_feedback(f"final {i}")
        assert sf.flush(5)
        assert cache_files(cache) == []
        assert not [p for p in cache.iterdir() if p.name.endswith(".sending")]
        assert client.client_reports.totals() == {("send_error", "feedback"): 2}


def test_cache_cap_evicts_the_oldest_as_cache_overflow(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    client = sf.init(closed_port_dsn(), cache_dir=str(cache), max_cache_items=2, retry=ONCE, http_timeout=1)
    for i in range(4):
        sf.capture_feedback(f"n{i}")
    assert sf.flush(5)
    assert len(cache_files(cache)) == 2
    assert client.client_reports.totals() == {("cache_overflow", "feedback"): 2}


def test_corrupt_cache_file_is_moved_aside_and_counted(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "00000000000000000001-1-1-aaaa.envelope").write_bytes(b"this is not an envelope\n{")
    with LocalReceiver() as receiver:
        client = sf.init(receiver.dsn, cache_dir=str(cache))
        sf.send_feedback("a live one", timeout=5)  # the worker is running; now wait for the drain
        sf.close(5)
    assert (cache / "corrupt" / "00000000000000000001-1-1-aaaa.envelope").exists()
    assert cache_files(cache) == []
    assert client.client_reports.totals() == {("internal_sdk_error", "default"): 1}


def test_processes_sharing_a_cache_never_send_one_envelope_twice(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    sf.init(closed_port_dsn(), cache_dir=str(cache), retry=ONCE, http_timeout=1)
    for i in range(20):
        sf.capture_feedback(f"shared {i}")
    assert sf.flush(10)
    sf.close(1)
    assert len(cache_files(cache)) == 20
    with LocalReceiver() as receiver:
        # Four processes start at once on the same cache directory; each runs until told to stop.
        code = (
            "import sys, sentry_feedback as sf\n"
            f"sf.init({receiver.dsn!r}, cache_dir={str(cache)!r})\n"
            "sys.stdin.read()\n"
        )
        procs = [subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE) for _ in range(4)]
        try:
            assert receiver.wait_for_envelopes(20, timeout=30)
        finally:
            for proc in procs:
                proc.communicate(timeout=30)
        assert [proc.returncode for proc in procs] == [0, 0, 0, 0]
        ids = [fb.event_id for fb in receiver.store.list_feedback()]
        assert len(ids) == 20
        envelope_requests = [r for r in receiver.received if r.envelope and r.envelope.items[0].type == "feedback"]
        assert len(envelope_requests) == 20  # never sent twice


def test_close_counts_what_it_could_not_send_without_a_cache() -> None:
    gate = threading.Event()
    transport = MockTransport(lambda envelope: gate.wait(5) and None)
    client = sf.init(transport=transport)
    for i in range(3):
        sf.capture_feedback(f"n{i}", attachments=[sf.Attachment(b"abc", filename="a")])
    assert client.close(timeout=0.05) is False
    gate.set()
    # The one being sent when close gave up may still arrive; the two never started are counted.
    totals = client.client_reports.totals()
    assert totals == {("network_error", "feedback"): 2, ("network_error", "attachment"): 6}
    assert sf.capture_feedback("after close") is None


def test_close_keeps_unsent_envelopes_on_disk_with_a_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    gate = threading.Event()
    started = threading.Event()

    def blocked(envelope: sf.Envelope) -> None:
        started.set()
        gate.wait(5)

    client = sf.init(transport=MockTransport(blocked), cache_dir=str(cache))
    for i in range(3):
        sf.capture_feedback(f"n{i}")
    assert started.wait(5)
    assert client.close(timeout=0.05) is False
    gate.set()
    # The two never started are free again; the third may still be claimed while it is sent.
    assert len(free_cache_files(cache)) == 2
    assert len(cache_files(cache)) in (2, 3)
    assert client.client_reports.totals() == {}


def test_spotlight_gets_a_copy_and_never_affects_delivery(sentry_receiver: LocalReceiver) -> None:
    with LocalReceiver() as spotlight:
        url = f"http://127.0.0.1:{spotlight.port}/api/1/envelope/?sentry_key=public"
        sf.init(sentry_receiver.dsn, spotlight=url)
        sf.capture_feedback("seen twice")
        assert sf.flush(5)
        assert spotlight.wait_for_envelopes(1)
        assert len(sentry_receiver.store.list_feedback()) == 1
        assert len(spotlight.store.list_feedback()) == 1
    sf.init(sentry_receiver.dsn, spotlight=closed_port_dsn().replace("public@", "") + "/stream")
    sf.capture_feedback("spotlight is down")
    assert sf.flush(5)
    assert len(sentry_receiver.store.list_feedback()) == 2


def test_spotlight_without_a_dsn() -> None:
    with LocalReceiver() as spotlight:
        url = f"http://127.0.0.1:{spotlight.port}/api/1/envelope/?sentry_key=public"
        client = sf.init(spotlight=url)
        assert client.is_active()
        sf.capture_feedback("local debugging")
        assert sf.flush(5)
        assert spotlight.wait_for_envelopes(1)


def test_closed_client_stays_closed_after_fork() -> None:
    client = sf.init(transport=MockTransport())
    client.close(1)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if sf.capture_feedback("x") is None and not client.is_active() else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_drain_pauses_while_rate_limited_and_keeps_the_files(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    sf.init(closed_port_dsn(), cache_dir=str(cache), retry=ONCE, http_timeout=1)
    for i in range(3):
        sf.capture_feedback(f"limited {i}")
    assert sf.flush(5)
    sf.close(1)
    with LocalReceiver() as receiver:
        receiver.respond_with(429, headers={"X-Sentry-Rate-Limits": "60::organization"})
        client = sf.init(receiver.dsn, cache_dir=str(cache))
        assert receiver.wait_for_envelopes(1, timeout=10)
        # Without the pause the next file would follow within 0.1 s.
        assert not receiver.wait_for_envelopes(2, timeout=1.0)
        assert client.close(5)
        # The first answer was a 429 for everything: that envelope is gone (the server counted it);
        # the drain waited instead of dropping the other two.
        assert len(cache_files(cache)) == 2
        assert len(receiver.received) == 1
        assert client.client_reports.totals() == {}
        assert client.rate_limiter.snapshot()[""] > 50


def test_without_a_worker_thread_flush_sends_on_the_calling_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Python 3.12+ refuses new threads at interpreter exit; the atexit flush then sends inline."""
    transport = MockTransport()
    sf.init(transport=transport)

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    assert sf.capture_feedback("at exit") is not None
    assert transport.envelopes == []
    assert sf.close(5)
    assert len(transport.feedback) == 1
