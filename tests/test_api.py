"""Top-level API: init, the disabled mode, lifecycle, messages and events, send_feedback errors."""

from __future__ import annotations

import logging
import threading

import pytest

import sentry_feedback as sf
from sentry_feedback.testing import MockTransport, normalize_with_relay

PUBLIC_NAMES = [
    "Attachment",
    "AttachmentReadError",
    "BeforeSend",
    "Client",
    "ClientReportRecorder",
    "DeliveryError",
    "DiscardReason",
    "Dsn",
    "Envelope",
    "EnvelopeItem",
    "EnvelopeParseError",
    "Event",
    "EventProcessor",
    "EventScrubber",
    "FeedbackDroppedError",
    "FeedbackError",
    "FeedbackFields",
    "FeedbackTimeoutError",
    "FunctionTransport",
    "Hint",
    "HttpTransport",
    "InvalidFeedbackError",
    "Level",
    "MAX_MESSAGE_LENGTH",
    "NetworkError",
    "Options",
    "PropagationContext",
    "RateLimitedError",
    "RetryPolicy",
    "RateLimiter",
    "SDKDisabledError",
    "Scope",
    "SentryFeedbackError",
    "Session",
    "Span",
    "ServerError",
    "Transport",
    "TransportError",
    "TransportResponse",
    "__version__",
    "add_attachment",
    "add_breadcrumb",
    "add_event_processor",
    "capture_event",
    "capture_exception",
    "capture_feedback",
    "capture_message",
    "close",
    "continue_trace",
    "flush",
    "get_baggage",
    "get_trace_headers",
    "get_traceparent",
    "get_client",
    "get_current_scope",
    "get_global_scope",
    "get_isolation_scope",
    "init",
    "is_enabled",
    "last_event_id",
    "new_trace",
    "send_feedback",
    "set_client",
    "set_context",
    "set_extra",
    "set_extras",
    "set_level",
    "set_tag",
    "set_tags",
    "set_user",
    "get_active_span",
    "get_root_span",
    "set_http_status",
    "span_to_json",
    "start_inactive_span",
    "start_span",
    "start_span_manual",
    "suppress_tracing",
    "update_span_name",
    "with_active_span",
    "add_integration",
    "set_conversation_id",
    "start_session",
    "end_session",
    "capture_session",
    "use_isolation_scope",
    "use_scope",
    "with_isolation_scope",
    "with_scope",
]


def test_public_names_are_exactly_these() -> None:
    assert sorted(sf.__all__) == sorted(PUBLIC_NAMES)
    for name in sf.__all__:
        assert getattr(sf, name) is not None


def test_every_public_callable_has_a_docstring() -> None:
    for name in sf.__all__:
        obj = getattr(sf, name)
        if (callable(obj) and not name[0].isupper()) or isinstance(obj, type):
            assert obj.__doc__, name


def test_version() -> None:
    assert sf.__version__.count(".") == 2


def test_without_dsn_the_sdk_is_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    client = sf.init()
    assert not sf.is_enabled()
    assert not client.is_active()
    assert client.transport is None
    assert sf.capture_feedback("hello") is None
    assert sf.capture_message("hello") is None
    assert sf.flush(1) is True
    with pytest.raises(sf.SDKDisabledError):
        sf.send_feedback("hello")


def test_before_init_get_client_is_disabled() -> None:
    assert not sf.get_client().is_active()
    assert sf.capture_feedback("x") is None


def test_dsn_and_options_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_DSN", "http://key@127.0.0.1:9/7")
    monkeypatch.setenv("SENTRY_RELEASE", "env-release")
    monkeypatch.setenv("SENTRY_ENVIRONMENT", "staging")
    client = sf.init(transport=MockTransport())
    assert client.dsn is not None and client.dsn.project_id == "7"
    assert client.options.release == "env-release"
    assert client.options.environment == "staging"
    assert sf.init(transport=MockTransport(), environment="prod").options.environment == "prod"


def test_environment_defaults_to_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENTRY_ENVIRONMENT", raising=False)
    assert sf.init().options.environment == "production"


def test_malformed_dsn_and_unknown_option() -> None:
    with pytest.raises(ValueError, match="project id"):
        sf.init("https://key@host/")
    with pytest.raises(ValueError, match="scheme"):
        sf.init("ftp://key@host/1")
    with pytest.raises(TypeError, match="before_sned"):
        sf.init(before_sned=None)
    with pytest.raises(ValueError, match="sample_rate"):
        sf.init(sample_rate=2)


def test_close_is_idempotent_and_disables_captures() -> None:
    transport = MockTransport()
    sf.init(transport=transport)
    assert sf.capture_feedback("before") is not None
    assert sf.close(5) is True
    assert sf.close(5) is True
    assert not sf.is_enabled()
    assert sf.capture_feedback("after") is None
    assert sf.capture_message("after") is None
    assert len(transport.feedback) == 1


def test_client_is_a_context_manager() -> None:
    transport = MockTransport()
    with sf.Client(sf.Options.build(transport=transport)) as client:
        assert client.capture_feedback("x") is not None
    assert not client.is_active()
    assert len(transport.feedback) == 1


def test_reinit_closes_previous_client_without_losing_queued_items() -> None:
    first, second = MockTransport(), MockTransport()
    sf.init(transport=first)
    sf.capture_feedback("to first")
    sf.init(transport=second)
    sf.capture_feedback("to second")
    assert first.wait_for(1) and sf.flush(5)
    assert [len(first.feedback), len(second.feedback)] == [1, 1]


def test_capture_message_and_event_use_sample_rate_and_before_send() -> None:
    transport = MockTransport()
    client = sf.init(transport=transport, sample_rate=0.0)
    assert sf.capture_message("dropped") is None
    assert sf.capture_feedback("feedback is never sampled") is not None
    assert client.client_reports.totals() == {("sample_rate", "error"): 1}

    transport = MockTransport()
    client = sf.init(transport=transport, before_send=lambda e, h: None if e.get("message") == "no" else e)
    assert sf.capture_message("no") is None
    event_id = sf.capture_event({"message": "yes", "tags": {"k": "v"}})
    assert event_id is not None
    assert client.client_reports.totals() == {("before_send", "error"): 1}
    assert sf.flush(5)
    (event,) = transport.events
    assert event["event_id"] == event_id and event["level"] == "info" and event["tags"] == {"k": "v"}
    normalize_with_relay(event)


def test_last_event_id_tracks_messages_not_feedback() -> None:
    sf.init(transport=MockTransport())
    assert sf.last_event_id() is None
    message_id = sf.capture_message("boom", level="error")
    sf.capture_feedback("about boom", associated_event_id=sf.last_event_id())
    assert sf.last_event_id() == message_id


def test_capture_event_with_own_event_id() -> None:
    transport = MockTransport()
    sf.init(transport=transport)
    wanted = "a" * 32
    assert sf.capture_event({"event_id": wanted, "message": "x"}) == wanted
    assert sf.capture_event({"event_id": "bogus", "message": "x"}) is None


def test_debug_logs_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    sf.init(transport=MockTransport(), debug=True)
    sf.capture_feedback("")
    assert "invalid feedback" in capsys.readouterr().err


def test_quiet_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    sf.init(transport=MockTransport())
    sf.capture_feedback("")
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_internal_error_never_reaches_the_caller(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(sf.Transport):
        def send(self, envelope: sf.Envelope) -> sf.TransportResponse:
            raise ZeroDivisionError("bug in transport")

    client = sf.init(transport=Broken())
    with caplog.at_level(logging.ERROR, logger="sentry_feedback"):
        assert sf.capture_feedback("x") is not None
        assert sf.flush(5)
    assert "bug in transport" in caplog.text
    assert client.client_reports.totals() == {("internal_sdk_error", "feedback"): 1}


# -- send_feedback: every way it can fail ---------------------------------------------------------


def test_send_feedback_returns_id_once_accepted() -> None:
    transport = MockTransport()
    sf.init(transport=transport)
    event_id = sf.send_feedback("hi", timeout=5)
    assert transport.feedback[0]["event_id"] == event_id


def test_send_feedback_server_error() -> None:
    sf.init(transport=MockTransport(lambda env: sf.TransportResponse(500, body=b"boom")))
    with pytest.raises(sf.ServerError) as info:
        sf.send_feedback("hi", timeout=5)
    assert info.value.status == 500 and info.value.event_id
    assert isinstance(info.value, sf.DeliveryError)


def test_send_feedback_network_error() -> None:
    def unreachable(envelope: sf.Envelope) -> None:
        raise sf.TransportError("connection refused")

    transport = MockTransport(unreachable)
    client = sf.init(transport=transport, retry=sf.RetryPolicy(max_attempts=3, initial=0.01))
    with pytest.raises(sf.NetworkError):
        sf.send_feedback("hi", attachments=[sf.Attachment(b"1234", filename="a")], timeout=5)
    assert client.client_reports.totals() == {
        ("network_error", "feedback"): 1,
        ("network_error", "attachment"): 4,
    }


def test_send_feedback_rate_limited_by_429_then_before_sending() -> None:
    headers = {"X-Sentry-Rate-Limits": "120:feedback:key"}
    transport = MockTransport(lambda env: sf.TransportResponse(429, headers))
    client = sf.init(transport=transport)
    with pytest.raises(sf.RateLimitedError) as info:
        sf.send_feedback("first", timeout=5)
    assert 100 < info.value.retry_after <= 120 and info.value.category == "feedback"
    assert client.client_reports.totals() == {}  # the server counted the 429 itself
    with pytest.raises(sf.RateLimitedError):
        sf.send_feedback("second", attachments=[sf.Attachment(b"abc", filename="a")], timeout=5)
    assert client.client_reports.totals() == {
        ("ratelimit_backoff", "feedback"): 1,
        ("ratelimit_backoff", "attachment"): 3,
    }
    assert len(transport.envelopes) == 1


def test_send_feedback_timeout_leaves_feedback_queued() -> None:
    gate = threading.Event()
    transport = MockTransport(lambda env: gate.wait(5) and None)
    sf.init(transport=transport)
    with pytest.raises(sf.FeedbackTimeoutError) as info:
        sf.send_feedback("slow", timeout=0.05)
    assert isinstance(info.value, TimeoutError) and info.value.event_id
    gate.set()
    assert sf.flush(5)
    assert transport.feedback[0]["event_id"] == info.value.event_id


def test_send_feedback_queue_full() -> None:
    gate = threading.Event()
    started = threading.Event()

    def handler(env: sf.Envelope) -> None:
        started.set()
        gate.wait(5)

    sf.init(transport=MockTransport(handler), transport_queue_size=1)
    sf.capture_feedback("holds the worker")
    assert started.wait(5)
    sf.capture_feedback("fills the queue")
    with pytest.raises(sf.FeedbackDroppedError) as info:
        sf.send_feedback("no room", timeout=5)
    assert info.value.reason == "queue_overflow"
    gate.set()


def test_exceptions_share_one_base() -> None:
    for name in (
        "EnvelopeParseError",
        "TransportError",
        "FeedbackError",
        "InvalidFeedbackError",
        "FeedbackDroppedError",
        "SDKDisabledError",
        "RateLimitedError",
        "FeedbackTimeoutError",
        "DeliveryError",
        "ServerError",
        "NetworkError",
    ):
        assert issubclass(getattr(sf, name), sf.SentryFeedbackError)


def test_flush_reports_false_when_it_runs_out_of_time() -> None:
    gate = threading.Event()
    sf.init(transport=MockTransport(lambda env: gate.wait(5) and None))
    sf.capture_feedback("x")
    assert sf.flush(0.01) is False
    gate.set()
    assert sf.flush(5) is True


def test_internal_error_while_building_is_a_feedback_error(monkeypatch: pytest.MonkeyPatch) -> None:
    client = sf.init(transport=MockTransport())

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("bug")

    monkeypatch.setattr("sentry_feedback._client.merge_into_event", broken)
    assert sf.capture_feedback("x") is None
    with pytest.raises(sf.FeedbackDroppedError) as info:
        sf.send_feedback("x", timeout=5)
    assert info.value.reason == "internal_sdk_error"
    assert isinstance(info.value.__cause__, KeyError)
    assert client.client_reports.totals() == {("internal_sdk_error", "feedback"): 2}


def test_unknown_feedback_argument_is_invalid_not_raised() -> None:
    client = sf.init(transport=MockTransport())
    assert sf.capture_feedback("x", emial="typo@example.com") is None  # type: ignore[call-arg]
    assert client.client_reports.totals() == {("invalid", "feedback"): 1}
    with pytest.raises(sf.InvalidFeedbackError, match="emial"):
        sf.send_feedback("x", emial="typo@example.com")  # type: ignore[call-arg]
