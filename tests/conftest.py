from __future__ import annotations

from collections.abc import Iterator

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
    """Run Sentry's normalizer on every event and feedback item any test serializes for sending."""
    from sentry_feedback import Envelope
    from sentry_feedback.testing import normalize_with_relay

    problems: list[str] = []
    original = Envelope.serialize

    def checked(self: Envelope) -> bytes:
        data = original(self)
        if any(item.type in ("event", "feedback") for item in self.items):
            # What goes on the wire, as the server parses it.
            for item in Envelope.parse(data).items:
                if item.type in ("event", "feedback"):
                    try:
                        normalize_with_relay(item.get_json())
                    except AssertionError as exc:
                        problems.append(str(exc))
        return data

    monkeypatch.setattr(Envelope, "serialize", checked)
    yield
    assert not problems, problems
