from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

# The fixtures users get too: sentry_receiver, sentry_init, mock_transport.
pytest_plugins = ["sentry_feedback.testing"]


@pytest.fixture(autouse=True)
def _pristine_sdk() -> Iterator[None]:
    from sentry_feedback.testing import reset

    reset()
    yield
    reset()


@pytest.fixture(autouse=True)
def _every_sent_event_is_valid_for_sentry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run Sentry's normalizer on every event, feedback and transaction item any test serializes for sending,
    and the session protocol's rules on every session item."""
    from sentry_feedback import Envelope
    from sentry_feedback.testing import check_session_item, normalize_with_relay

    problems: list[str] = []
    original = Envelope.chunks

    def checked(self: Envelope, *args: Any, **kwargs: Any) -> Iterator[bytes | memoryview]:
        # What goes on the wire: the payload bytes each item is written with, as the server parses them.
        for item in self.items:
            if item.type in ("event", "feedback", "transaction"):
                try:
                    normalize_with_relay(json.loads(item.payload))
                except AssertionError as exc:
                    problems.append(str(exc))
            elif item.type in ("session", "sessions"):
                try:
                    check_session_item(item.type, json.loads(item.payload))
                except AssertionError as exc:
                    problems.append(str(exc))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Envelope, "chunks", checked)
    yield
    assert not problems, problems
