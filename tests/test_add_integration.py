"""add_integration and set_conversation_id: what init would have done, later; AI spans get the conversation."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

import sentry_feedback as sf
from sentry_feedback.integrations import Integration
from sentry_feedback.testing import MockTransport

DSN = "http://public@127.0.0.1:9/1"


class Counting(Integration):
    identifier: ClassVar[str] = "counting-test"
    once = 0

    def __init__(self) -> None:
        self.clients: list[sf.Client] = []

    def setup_once(self) -> None:
        type(self).once += 1

    def setup(self, client: sf.Client) -> None:
        self.clients.append(client)
        client.add_event_processor(self.tag)

    def tag(self, event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        event.setdefault("tags", {})["counted"] = "yes"
        return event


def start(**options: Any) -> MockTransport:
    transport = MockTransport()
    sf.init(dsn=DSN, transport=transport, default_integrations=False, **options)
    return transport


def test_add_integration_sets_up_like_init() -> None:
    transport = start()
    integration = Counting()
    once = Counting.once
    sf.add_integration(integration)
    assert integration.clients == [sf.get_client()]
    assert Counting.once in (once, once + 1)  # setup_once ran, unless an earlier test in this process ran it
    assert sf.get_client().get_integration(Counting) is integration
    sf.add_integration(Counting())  # already enabled: ignored
    assert sf.get_client().get_integration(Counting) is integration
    sf.capture_message("hello")
    sf.flush(5)
    (event,) = [i.get_json() for e in transport.envelopes for i in e.items if i.type == "event"]
    assert event["tags"] == {"counted": "yes"}
    assert "counting-test" in event["sdk"]["integrations"]


def test_add_integration_runs_setup_once_once_per_process() -> None:
    start()
    sf.add_integration(Counting())
    after_first = Counting.once
    start()  # a new client: setup runs again, setup_once does not
    second = Counting()
    sf.add_integration(second)
    assert Counting.once == after_first and second.clients == [sf.get_client()]


def test_add_integration_honours_disabled_integrations() -> None:
    start(disabled_integrations=[Counting])
    sf.add_integration(Counting())
    assert sf.get_client().get_integration(Counting) is None


def test_add_integration_before_init_and_with_bad_input(caplog: pytest.LogCaptureFixture) -> None:
    sf.add_integration(Counting())  # disabled client: nothing
    assert sf.get_client().integrations == {}
    start()
    sf.add_integration("counting")  # type: ignore[arg-type]
    assert "is not an Integration" in caplog.text


def test_ai_spans_get_the_conversation_id() -> None:
    transport = start(traces_sample_rate=1.0)
    sf.set_conversation_id("conv_abc123")
    assert sf.get_isolation_scope().conversation_id == "conv_abc123"
    with sf.start_span("handle", op="http.server"):
        with sf.start_span("chat gpt-4o", op="gen_ai.chat"):
            pass
        with sf.start_span("ai.generateText"):
            pass
        with sf.start_span("db", op="db.query"):
            pass
        with sf.start_span("given", op="gen_ai.chat", attributes={"gen_ai.conversation.id": "explicit"}):
            pass
    sf.set_conversation_id(None)
    with sf.start_span("later", op="gen_ai.chat"):
        pass
    sf.flush(5)
    transactions = [i.get_json() for e in transport.envelopes for i in e.items if i.type == "transaction"]
    spans = {s["description"]: s.get("data", {}) for s in transactions[0]["spans"]}
    assert spans["chat gpt-4o"] == {"gen_ai.conversation.id": "conv_abc123"}
    assert spans["ai.generateText"] == {"gen_ai.conversation.id": "conv_abc123"}
    assert spans["db"] == {}
    assert spans["given"] == {"gen_ai.conversation.id": "explicit"}
    assert "data" not in transactions[1]["contexts"]["trace"]
    assert transactions[0]["contexts"]["trace"].get("data") is None


def test_the_current_scope_conversation_wins() -> None:
    start(traces_sample_rate=1.0)
    sf.set_conversation_id("outer")
    with sf.with_scope() as scope:
        scope.set_conversation_id("inner")
        with sf.start_span("x", op="gen_ai.chat") as span:
            assert span.attributes == {"gen_ai.conversation.id": "inner"}
