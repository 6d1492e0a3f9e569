"""capture_exception and friends through the pipeline (payload details are in test_stacktrace.py)."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from typing import Any

import pytest

import sentry_feedback as sf
from sentry_feedback.testing import MockTransport


class PaymentError(Exception):
    pass


def event_id_of(value: str | None) -> str:
    """``value``, checked to be an event id: 32 lower-case hex digits."""
    assert value is not None and re.fullmatch(r"[0-9a-f]{32}", value), value
    return value


def checkout(cart: dict[str, Any]) -> None:
    card_number = cart["card"]  # noqa: F841 - a local the event shows
    raise PaymentError("card declined")


def test_capture_current_exception_in_handler() -> None:
    transport = MockTransport()
    sf.init(transport=transport, release="shop@1")
    try:
        checkout({"card": "visa"})
    except PaymentError:
        error_id = sf.capture_exception()
    assert sf.last_event_id() == event_id_of(error_id)
    assert sf.flush(5)
    (event,) = transport.events
    assert event["event_id"] == error_id and transport.envelopes[0].event_id == error_id
    assert event["level"] == "error"
    (value,) = event["exception"]["values"]
    assert value["type"] == "PaymentError"
    assert value["value"] == "card declined"
    assert value["mechanism"]["handled"] is True
    frames = value["stacktrace"]["frames"]
    assert frames[-1]["function"] == "checkout"
    assert frames[-1]["context_line"].strip() == 'raise PaymentError("card declined")'
    assert frames[-1]["vars"]["card_number"] == "visa"
    assert frames[-1]["in_app"] is True


def test_explicit_exception_and_exc_info_tuple() -> None:
    transport = MockTransport()
    sf.init(transport=transport)
    error = ValueError("explicit")
    explicit_id = event_id_of(sf.capture_exception(error))
    try:
        raise KeyError("tuple")
    except KeyError:
        import sys

        tuple_id = event_id_of(sf.capture_exception(sys.exc_info()))
    assert sf.flush(5)
    arrived = [
        (e["event_id"], e["exception"]["values"][-1]["type"], e["exception"]["values"][-1]["value"])
        for e in transport.events
    ]
    assert arrived == [(explicit_id, "ValueError", "explicit"), (tuple_id, "KeyError", "'tuple'")]


def test_no_current_exception_returns_none() -> None:
    transport = MockTransport()
    sf.init(transport=transport)
    assert sf.capture_exception() is None
    assert sf.flush(5)
    assert transport.envelopes == []


def test_chained_exceptions_arrive_in_order() -> None:
    transport = MockTransport()
    sf.init(transport=transport)
    try:
        try:
            checkout({"card": "x"})
        except PaymentError as exc:
            raise RuntimeError("checkout failed") from exc
    except RuntimeError:
        sf.capture_exception()
    assert sf.flush(5)
    values = transport.events[0]["exception"]["values"]
    assert [v["type"] for v in values] == ["PaymentError", "RuntimeError"]
    assert values[0]["mechanism"]["source"] == "__cause__"


@pytest.mark.parametrize(
    "ignored", [[PaymentError], ["PaymentError"], [f"{__name__}.PaymentError"], [Exception], ["Exception"]]
)
def test_ignore_errors(ignored: list[Any]) -> None:
    transport = MockTransport()
    client = sf.init(transport=transport, ignore_errors=ignored)
    assert sf.capture_exception(PaymentError("x")) is None
    assert client.client_reports.totals() == {("event_processor", "error"): 1}
    message_id = event_id_of(sf.capture_message("messages are not errors"))
    assert sf.flush(5)
    assert [(e["event_id"], e["message"]) for e in transport.events] == [(message_id, "messages are not errors")]


def test_ignore_errors_does_not_match_unrelated() -> None:
    transport = MockTransport()
    sf.init(transport=transport, ignore_errors=["PaymentErr", KeyError])
    error_id = event_id_of(sf.capture_exception(PaymentError("x")))
    assert sf.flush(5)
    (event,) = transport.events
    assert event["event_id"] == error_id
    assert event["exception"]["values"][-1]["type"] == "PaymentError"


def test_before_send_sees_exc_info_and_can_drop_or_raise(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[Any] = []

    def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
        seen.append(hint["exc_info"][1])
        if isinstance(hint["exc_info"][1], KeyError):
            raise RuntimeError("hook bug")
        return None

    client = sf.init(transport=MockTransport(), before_send=before_send)
    error = PaymentError("x")
    with caplog.at_level(logging.ERROR, logger="sentry_feedback"):
        assert sf.capture_exception(error) is None
        assert sf.capture_exception(KeyError("k")) is None
    assert seen[0] is error
    assert "hook bug" in caplog.text
    assert client.client_reports.totals() == {("before_send", "error"): 1, ("callback_error", "error"): 1}


def test_before_send_feedback_never_sees_errors() -> None:
    calls: list[str] = []
    sf.init(transport=MockTransport(), before_send_feedback=lambda e, h: calls.append("x") or e)
    sf.capture_exception(PaymentError("x"))
    assert calls == []


def test_sample_rate_applies_to_errors() -> None:
    client = sf.init(transport=MockTransport(), sample_rate=0.0)
    assert sf.capture_exception(PaymentError("x")) is None
    assert client.client_reports.totals() == {("sample_rate", "error"): 1}


def test_attach_stacktrace_adds_the_calling_stack_to_messages() -> None:
    transport = MockTransport()
    sf.init(transport=transport, attach_stacktrace=True)
    sf.capture_message("where am I")
    assert sf.flush(5)
    (thread,) = transport.events[0]["threads"]["values"]
    frames = thread["stacktrace"]["frames"]
    assert frames[-1]["function"].endswith("test_attach_stacktrace_adds_the_calling_stack_to_messages")
    assert not any((f.get("module") or "").startswith("sentry_feedback") for f in frames)


def test_local_variables_can_be_turned_off() -> None:
    transport = MockTransport()
    sf.init(transport=transport, include_local_variables=False)
    sf.capture_exception(_raised())
    assert sf.flush(5)
    frames = transport.events[0]["exception"]["values"][0]["stacktrace"]["frames"]
    assert all("vars" not in frame for frame in frames)


def _raised() -> BaseException:
    try:
        checkout({"card": "x"})
    except PaymentError as exc:
        return exc
    raise AssertionError("unreachable")


def test_in_app_exclude_and_include() -> None:
    transport = MockTransport()
    sf.init(transport=transport, in_app_exclude=[__name__])
    sf.capture_exception(_raised())
    assert sf.flush(5)
    sf.init(transport=transport, in_app_exclude=[__name__], in_app_include=[__name__])
    sf.capture_exception(_raised())
    assert sf.flush(5)
    first, second = (e["exception"]["values"][0]["stacktrace"]["frames"][-1]["in_app"] for e in transport.events)
    assert (first, second) == (False, True)


def test_last_event_id_is_per_isolation_scope_across_threads() -> None:
    transport = MockTransport()
    sf.init(transport=transport)
    barrier = threading.Barrier(4)
    results: dict[int, tuple[str | None, str | None]] = {}

    def request(n: int) -> None:
        with sf.with_isolation_scope():
            own = sf.capture_exception(PaymentError(str(n)))
            barrier.wait(5)  # everyone captured before anyone reads
            sf.capture_feedback("feedback never becomes the last event id")
            results[n] = (own, sf.last_event_id())

    threads = [threading.Thread(target=request, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 4
    for own, last in results.values():
        assert event_id_of(own) == last
    assert sf.flush(5)
    errors = {e["event_id"]: e["exception"]["values"][-1]["value"] for e in transport.events}
    assert errors == {own: str(n) for n, (own, _) in results.items()}  # each id is the event of its thread


def test_last_event_id_is_per_isolation_scope_across_tasks() -> None:
    transport = MockTransport()
    sf.init(transport=transport)

    async def request(n: int, arrived: list[int], both: asyncio.Event) -> tuple[str | None, str | None]:
        with sf.with_isolation_scope():
            own = sf.capture_message(f"error {n}", level="error")
            arrived.append(n)
            if len(arrived) == 2:
                both.set()
            await asyncio.wait_for(both.wait(), 5)  # both captured before either reads
            return own, sf.last_event_id()

    async def main() -> list[tuple[str | None, str | None]]:
        arrived: list[int] = []
        both = asyncio.Event()
        return list(await asyncio.gather(request(1, arrived, both), request(2, arrived, both)))

    results = asyncio.run(main())
    assert all(event_id_of(own) == last for own, last in results)
    assert sf.flush(5)
    messages = {e["event_id"]: e["message"] for e in transport.events}
    assert messages == {results[0][0]: "error 1", results[1][0]: "error 2"}
