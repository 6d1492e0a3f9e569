"""Odd files, wrong types and odd values: nothing hangs, nothing raises into the host, every drop is counted.

Each test reproduces one case that used to hang, crash or lose data silently (the
hardening table in ``docs/reliability.md``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sentry_feedback as sf
from sentry_feedback import Attachment
from sentry_feedback._journal import DONE, PUT, parse_records
from sentry_feedback._worker import BackgroundWorker
from sentry_feedback.server import LocalReceiver
from sentry_feedback.testing import MockTransport

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")


@pytest.fixture
def transport() -> MockTransport:
    transport = MockTransport()
    sf.init(transport=transport)
    return transport


def totals() -> dict[tuple[str, str], int]:
    return sf.get_client().client_reports.totals()


def attachment_names(transport: MockTransport) -> list[list[str]]:
    return [[item.headers["filename"] for item in env.items_of_type("attachment")] for env in transport.envelopes]


# -- file attachments: FIFOs, devices, files larger than they say ------------------------------


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "pipe.log"
    os.mkfifo(path)
    yield path
    # Should a reader still wait in open() (the bug), a writer lets it go.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return
    os.close(fd)


@needs_fifo
def test_fifo_attachment_is_refused_without_blocking_the_worker(
    sentry_init: Any, sentry_receiver: LocalReceiver, fifo: Path
) -> None:
    sentry_init(retry=sf.RetryPolicy(max_attempts=1))
    sf.send_feedback("with a fifo", attachments=[Attachment(path=fifo)], timeout=10)
    sf.send_feedback("the next one", timeout=10)  # the worker is not stuck
    stored = sentry_receiver.store.list_feedback()
    assert [fb.message for fb in stored] == ["with a fifo", "the next one"]
    assert all(not sentry_receiver.store.list_attachments(fb.event_id) for fb in stored)
    assert totals() == {("invalid", "attachment"): 1}
    assert sf.flush(5)


@needs_fifo
def test_fifo_directory_and_device_are_refused_by_read(fifo: Path, tmp_path: Path) -> None:
    for path, kind in ((fifo, "a FIFO"), (tmp_path, "a directory"), (Path(os.devnull), "a character device")):
        with pytest.raises(sf.AttachmentReadError, match=kind) as caught:
            Attachment(path=path).read(limit=10)
        assert (caught.value.reason, caught.value.quantity) == ("invalid", 1)


def test_read_stops_one_byte_past_the_limit_whatever_st_size_says() -> None:
    status = Path("/proc/self/status")
    if not status.exists() or status.stat().st_size != 0:
        pytest.skip("needs a /proc file that reports size 0")
    with pytest.raises(sf.AttachmentReadError, match="larger than max_attachment_size") as caught:
        Attachment(path=status).read(limit=100)
    assert (caught.value.reason, caught.value.quantity) == ("invalid", 101)


def test_a_file_that_grew_past_its_size_is_read_to_the_end(tmp_path: Path) -> None:
    path = tmp_path / "growing.log"
    path.write_bytes(b"x" * 10)
    attachment = Attachment(path=path)
    path.write_bytes(b"x" * 3_000_000)  # st_size is read at open, so this is what a reader sees
    assert len(attachment.read(limit=4_000_000)) == 3_000_000
    with pytest.raises(sf.AttachmentReadError) as caught:
        attachment.read(limit=2_000_000)
    assert caught.value.quantity == 3_000_000


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_dev_zero_is_not_read_at_all() -> None:
    # In a child with 1 GiB of address space: reading /dev/zero until memory runs out (the bug)
    # ends in a MemoryError counted as internal_sdk_error, instead of the refusal counted as invalid.
    code = textwrap.dedent(
        """
        import json, resource
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        import sentry_feedback as sf
        from sentry_feedback.testing import MockTransport
        transport = MockTransport()
        client = sf.init(transport=transport)
        sf.capture_feedback("zeros", attachments=[sf.Attachment(path="/dev/zero")])
        flushed = sf.flush(30)
        totals = {f"{r}/{c}": n for (r, c), n in client.client_reports.totals().items()}
        print(json.dumps({"flushed": flushed, "totals": totals, "feedback": len(transport.feedback)}))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"flushed": True, "totals": {"invalid/attachment": 1}, "feedback": 1}


# -- what is not an attachment -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "kind", "quantity"),
    [
        (b"log lines", "bytes", 9),
        ("/etc/hostname", "str", 1),
        (Path("/etc/hostname"), "PosixPath" if os.name == "posix" else "WindowsPath", 1),
        (42, "int", 1),
        (None, "NoneType", 1),
    ],
)
def test_capture_feedback_sends_without_an_entry_that_is_not_an_attachment(
    transport: MockTransport, caplog: pytest.LogCaptureFixture, entry: object, kind: str, quantity: int
) -> None:
    with caplog.at_level(logging.WARNING, logger="sentry_feedback"):
        assert sf.capture_feedback("x", attachments=[Attachment(b"ok", filename="ok.txt"), entry]) is not None
    assert f"attachments[1] is {kind}, not an Attachment" in caplog.text
    assert sf.flush(5)
    assert attachment_names(transport) == [["ok.txt"]]
    assert totals() == {("invalid", "attachment"): quantity}


def test_a_single_value_is_one_entry_not_a_list_of_characters(transport: MockTransport) -> None:
    assert sf.capture_feedback("x", attachments="screenshot.png") is not None  # type: ignore[arg-type]
    assert sf.capture_feedback("y", attachments=Attachment(b"1", filename="one.txt")) is not None  # type: ignore[arg-type]
    assert sf.flush(5)
    assert attachment_names(transport) == [[], ["one.txt"]]
    assert totals() == {("invalid", "attachment"): 1}


def test_hint_attachments_that_are_not_attachments_are_counted(transport: MockTransport) -> None:
    assert sf.capture_feedback("x", hint={"attachments": [b"xyz"]}) is not None
    assert sf.capture_message("m", hint={"attachments": [b"ab", Attachment(b"1", filename="a.txt")]}) is not None
    assert sf.flush(5)
    assert attachment_names(transport) == [[], ["a.txt"]]
    assert totals() == {("invalid", "attachment"): 5}


def test_a_hook_that_puts_bytes_in_the_hint_is_counted(transport: MockTransport) -> None:
    def hook(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        hint["attachments"] = [b"1234"]
        return event

    sf.init(transport=transport, before_send_feedback=hook)
    assert sf.capture_feedback("x") is not None
    assert sf.flush(5)
    assert attachment_names(transport) == [[]]
    assert totals() == {("invalid", "attachment"): 4}


def test_send_feedback_raises_naming_the_entry_and_sends_nothing(transport: MockTransport) -> None:
    good = Attachment(b"12345", filename="good.txt")
    with pytest.raises(sf.InvalidFeedbackError, match=r"attachments\[1\] is bytes, not an Attachment"):
        sf.send_feedback("x", attachments=[good, b"abc"], timeout=5)
    with pytest.raises(sf.InvalidFeedbackError, match=r"hint\['attachments'\]\[0\] is str"):
        sf.send_feedback("x", hint={"attachments": ["/etc/hostname"]}, timeout=5)
    assert sf.flush(5)
    assert transport.feedback == []
    assert totals() == {("invalid", "feedback"): 2, ("invalid", "attachment"): 5 + 3 + 1}


def test_attachment_refuses_what_it_cannot_send() -> None:
    with pytest.raises(TypeError, match="not int"):
        Attachment(5, filename="x")  # type: ignore[arg-type]  # was 5 NUL bytes
    with pytest.raises(TypeError, match="filename"):
        Attachment(b"x", filename=5)  # type: ignore[arg-type]


# -- wrong-typed arguments to capture functions --------------------------------------------------


@pytest.mark.parametrize("event", [None, [], "event", 42, ("message", "x")])
def test_capture_event_with_something_that_is_not_an_event(transport: MockTransport, event: Any) -> None:
    assert sf.capture_event(event) is None
    assert totals() == {("invalid", "error"): 1}


@pytest.mark.parametrize(
    ("call", "category"),
    [
        (lambda: sf.capture_event({"message": "m"}, hint=5), "error"),  # type: ignore[arg-type]
        (lambda: sf.capture_event({"type": "feedback"}, scope="s"), "feedback"),  # type: ignore[arg-type]
        (lambda: sf.capture_message("m", level="loud"), "error"),  # type: ignore[arg-type]
        (lambda: sf.capture_message("m", hint=[1]), "error"),  # type: ignore[arg-type]
        (lambda: sf.capture_exception("not an exception"), "error"),  # type: ignore[arg-type]
        (lambda: sf.capture_exception(ValueError("x"), scope=object()), "error"),  # type: ignore[arg-type]
        (lambda: sf.capture_feedback("m", hint=5), "feedback"),  # type: ignore[arg-type]
        (lambda: sf.capture_feedback("m", scope=5), "feedback"),  # type: ignore[arg-type]
    ],
)
def test_capture_functions_drop_and_count_wrong_arguments(transport: MockTransport, call: Any, category: str) -> None:
    assert call() is None
    assert totals() == {("invalid", category): 1}


def test_capture_event_does_not_change_the_callers_hint(transport: MockTransport) -> None:
    hint = {"attachments": [Attachment(b"1", filename="a.txt")]}
    sf.capture_event({"message": "m"}, hint=hint)
    assert list(hint) == ["attachments"] and len(hint["attachments"]) == 1


# -- timeouts and option bounds ------------------------------------------------------------------


@pytest.mark.parametrize("timeout", [math.inf, -1, math.nan, "5", None, True])
def test_send_feedback_with_a_bad_timeout_sends_nothing(transport: MockTransport, timeout: Any) -> None:
    with pytest.raises(sf.InvalidFeedbackError, match="timeout"):
        sf.send_feedback("x", timeout=timeout, attachments=[Attachment(b"123", filename="a.txt")])
    assert sf.flush(5)
    assert transport.feedback == []
    assert totals() == {("invalid", "feedback"): 1, ("invalid", "attachment"): 3}


def test_a_huge_finite_timeout_waits_as_long_as_needed(transport: MockTransport) -> None:
    assert sf.send_feedback("x", timeout=1e308)
    assert sf.flush(1e308)
    assert sf.close(1e308)
    assert len(transport.feedback) == 1


@pytest.mark.parametrize("timeout", [math.inf, -0.5, math.nan, "5"])
def test_flush_and_close_reject_a_bad_timeout(transport: MockTransport, timeout: Any) -> None:
    with pytest.raises(ValueError, match="timeout"):
        sf.flush(timeout)
    with pytest.raises(ValueError, match="timeout"):
        sf.close(timeout)
    assert sf.is_enabled()  # the rejected close did nothing


def test_a_huge_wait_is_clamped_not_an_overflow() -> None:
    handled = threading.Event()
    worker: BackgroundWorker[int] = BackgroundWorker(lambda task: handled.set(), max_size=1)
    assert worker.submit(1)
    assert worker.flush(1e300)
    worker.submit_later(2, 1e300)  # a due time far away must not break the worker's wait
    assert worker.submit(3)
    assert worker.flush(5) is False  # the delayed task is still pending
    assert len(worker.take_pending()) == 1
    assert worker.shutdown(1e300)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("shutdown_timeout", 1e12),
        ("http_timeout", 1e308),
        ("http_timeout", math.inf),
        ("max_breadcrumbs", 10**20),
        ("transport_queue_size", 10**12),
        ("max_cache_items", 10**9),
        ("max_attachment_size", 2**40),
    ],
)
def test_option_values_past_their_bounds_are_rejected_at_init(option: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"option '{option}' must be"):
        sf.init(transport=MockTransport(), **{option: value})


def test_retry_policy_bounds() -> None:
    with pytest.raises(ValueError, match=r"retry\.max_attempts"):
        sf.RetryPolicy(max_attempts=10**9)
    with pytest.raises(ValueError, match=r"retry\.maximum"):
        sf.RetryPolicy(maximum=1e12)


def test_the_exit_handler_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenClose(sf.Transport):
        def send(self, envelope: sf.Envelope) -> None:
            return None

        def close(self) -> None:
            raise OverflowError("timeout value is too large")

    sf.init(transport=BrokenClose())
    with caplog.at_level(logging.ERROR, logger="sentry_feedback"):
        sf._api._shutdown()
    assert "transport failed to close" in caplog.text


# -- user code that raises BaseException ---------------------------------------------------------


class ExitingRepr:
    def __repr__(self) -> str:
        raise SystemExit(3)


def test_system_exit_from_a_repr_in_scope_data_does_not_kill_the_worker(transport: MockTransport) -> None:
    sf.set_extra("odd", ExitingRepr())
    assert sf.capture_feedback("first") is not None
    assert sf.capture_feedback("second") is not None
    assert sf.flush(5)
    assert [fb["extra"]["odd"] for fb in transport.feedback] == ["<ExitingRepr object (repr failed: SystemExit)>"] * 2
    assert totals() == {}


def test_system_exit_from_a_transport_is_counted_and_the_worker_goes_on() -> None:
    calls: list[str | None] = []

    def send(envelope: sf.Envelope) -> None:
        calls.append(envelope.event_id)
        if len(calls) == 1:
            raise SystemExit("transport gave up")

    client = sf.init(transport=send)
    first = sf.capture_feedback("lost", attachments=[Attachment(b"1234", filename="a.txt")])
    second = sf.capture_feedback("delivered")
    assert sf.flush(5)
    assert calls == [first, second]
    assert client.client_reports.totals() == {
        ("internal_sdk_error", "feedback"): 1,
        ("internal_sdk_error", "attachment"): 4,
    }


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
@pytest.mark.parametrize("where", ["hook", "processor"])
def test_keyboard_interrupt_and_system_exit_from_a_callback_are_counted_then_raised(
    transport: MockTransport, exc_type: type[BaseException], where: str
) -> None:
    def callback(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        raise exc_type()

    client = sf.init(transport=transport, before_send_feedback=callback) if where == "hook" else sf.get_client()
    with sf.with_scope() as scope:
        if where == "processor":
            scope.add_event_processor(callback)
        with pytest.raises(exc_type):
            sf.capture_feedback("x", attachments=[Attachment(b"12", filename="a.txt")])
    assert client.client_reports.totals() == {("callback_error", "feedback"): 1, ("callback_error", "attachment"): 2}
    sf.init(transport=transport)
    assert sf.capture_feedback("the SDK still works") is not None
    assert sf.flush(5)


def test_a_worker_thread_that_dies_is_replaced_and_its_task_counted(transport: MockTransport) -> None:
    client = sf.get_client()
    worker = client._dispatcher._worker  # type: ignore[union-attr]
    original = worker._call
    died = threading.Event()

    def dying_call(fn: Any, *args: object) -> None:
        if fn == worker._handle and not died.is_set():
            died.set()
            raise SystemExit("thread killed mid-task")  # escapes _call: the thread ends
        original(fn, *args)

    worker._call = dying_call  # type: ignore[method-assign]
    try:
        assert sf.capture_feedback("lost with the thread") is not None
        assert died.wait(5)
        assert sf.flush(5)  # nothing is left pending: the lost task was counted
        assert totals() == {("internal_sdk_error", "feedback"): 1}
        assert sf.capture_feedback("after") is not None  # starts a new thread
        assert sf.flush(5)
    finally:
        worker._call = original  # type: ignore[method-assign]
    assert [fb["contexts"]["feedback"]["message"] for fb in transport.feedback] == ["after"]


# -- scope calls never raise ---------------------------------------------------------------------


def test_scope_setters_log_and_ignore_wrong_types(transport: MockTransport, caplog: pytest.LogCaptureFixture) -> None:
    class BadStr:
        def __str__(self) -> str:
            raise RuntimeError("no")

    with caplog.at_level(logging.WARNING, logger="sentry_feedback"):
        sf.set_user("bob")  # type: ignore[arg-type]
        sf.set_context("c", 5)  # type: ignore[arg-type]
        sf.set_tags(None)  # type: ignore[arg-type]
        sf.set_extras(["a"])  # type: ignore[arg-type]
        sf.set_level(5)  # type: ignore[arg-type]
        sf.set_tag("odd", BadStr())
        sf.add_breadcrumb("not a dict")  # type: ignore[arg-type]
        sf.add_attachment(5)  # type: ignore[arg-type]
        sf.add_event_processor("not callable")  # type: ignore[arg-type]
        sf.get_isolation_scope().set_fingerprint(5)  # type: ignore[arg-type]
    for name in ("set_user", "set_context", "set_tags", "set_extras", "set_level", "add_breadcrumb"):
        assert f"{name}:" in caplog.text
    assert sf.capture_feedback("still fine") is not None
    assert sf.flush(5)
    (feedback,) = transport.feedback
    assert "user" not in feedback
    assert "BadStr object at" in feedback["tags"]["odd"]


@pytest.mark.parametrize("headers", [5, ["sentry-trace"], "sentry-trace: x"])
def test_continue_trace_with_headers_that_are_not_a_mapping_starts_a_new_trace(
    transport: MockTransport, headers: Any
) -> None:
    with sf.continue_trace(headers) as scope:
        assert scope.propagation_context is not None
        assert sf.capture_feedback("in a new trace") is not None
    assert sf.flush(5)
    assert len(transport.feedback[0]["contexts"]["trace"]["trace_id"]) == 32


def test_a_breadcrumb_hook_returning_a_non_dict_drops_the_crumb(transport: MockTransport) -> None:
    sf.init(transport=transport, before_breadcrumb=lambda crumb, hint: "nope")
    sf.add_breadcrumb(message="x")
    assert sf.get_isolation_scope().breadcrumbs == []


# -- cache_dir: what capture writes stays small --------------------------------------------------


class GatedTransport(sf.Transport):
    """Holds every send until ``release`` is set, so a test sees the cache as a crash would leave it."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.sent: list[sf.Envelope] = []

    def send(self, envelope: sf.Envelope) -> None:
        self.release.wait(30)
        self.sent.append(sf.Envelope.parse(envelope.serialize()))


def journaled(directory: Path) -> list[sf.Envelope]:
    """The envelopes capture wrote to this process's journal in ``directory`` and the worker has not yet filed."""
    (journal,) = directory.glob("*.journal")
    records, _ = parse_records(journal.read_bytes())
    done = {key for kind, key, _ in records if kind == DONE}
    return [sf.Envelope.parse(data) for kind, key, data in records if kind == PUT and key not in done]


def test_cache_dir_writes_a_small_record_at_capture_whatever_the_attachments(tmp_path: Path) -> None:
    big = Attachment(b"\x00" * (8 * 1024 * 1024), filename="big.bin")
    small = Attachment(b"small", filename="small.txt")
    gated = GatedTransport()
    sf.init(transport=gated, cache_dir=str(tmp_path))
    try:
        # The worker is held by a first envelope, so the second stays as capture wrote it.
        sf.capture_feedback("first")
        sf.capture_feedback("with a big one", attachments=[big, small])
        assert (tmp_path / next(tmp_path.glob("*.journal")).name).stat().st_size < 64 * 1024
        at_capture = journaled(tmp_path)[-1]
        assert [i.type for i in at_capture.items] == ["feedback", "attachment", "client_report"]
        assert at_capture.items[1].headers["filename"] == "small.txt"
        report = at_capture.items[2].get_json()["discarded_events"]
        assert report == [{"reason": "internal_sdk_error", "category": "attachment", "quantity": len(big.read())}]
    finally:
        gated.release.set()
    assert sf.flush(10)
    assert [[i.headers.get("filename") for i in env.items_of_type("attachment")] for env in gated.sent] == [
        [],
        ["big.bin", "small.txt"],
    ]
    assert not list(tmp_path.glob("*.envelope*"))
    assert sf.get_client().client_reports.totals() == {}


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_crash_before_the_worker_wrote_the_big_attachment_loses_nothing_silently(
    tmp_path: Path, sentry_receiver: LocalReceiver
) -> None:
    crashed = tmp_path / "crashed"
    gated = GatedTransport()
    sf.init(transport=gated, cache_dir=str(tmp_path / "live"))
    try:
        sf.capture_feedback("first")
        event_id = sf.capture_feedback("big", attachments=[Attachment(b"1" * 100_000, filename="big.bin")])
        # What a SIGKILL now leaves on disk: the journal of a process that no longer runs.
        crashed.mkdir()
        (journal,) = (tmp_path / "live").glob("*.journal")
        (crashed / f"{_dead_pid()}-00000000.journal").write_bytes(journal.read_bytes())
    finally:
        gated.release.set()
        sf.flush(10)
    client = sf.init(sentry_receiver.dsn, cache_dir=str(crashed))  # the next start recovers and drains it
    assert sentry_receiver.wait_for_envelopes(1, 10)
    assert sentry_receiver.store.get_feedback(event_id) is not None
    assert sentry_receiver.store.list_attachments(event_id) == []
    assert sentry_receiver.store.client_report_totals() == {("internal_sdk_error", "attachment"): 100_000}
    client.close(5)
    assert not [p for p in crashed.iterdir() if not p.is_dir()]
